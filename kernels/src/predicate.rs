// SPDX-License-Identifier: Apache-2.0
//! A comparison of one CSV field with a value: the filter of `csv-filter` and the optional
//! `where_*` filter of `csv-agg`, with its packing into a device's `consts`.
//!
//! Text comparisons are bytewise on the field's unescaped value (see [`crate::csv`]);
//! `lt`..`ge` order bytes lexicographically. Numeric comparisons parse the field with
//! [`crate::decimal`]; a field that is not a number matches nothing, not even `ne`. A row
//! without the column matches nothing either.

use memchr::memmem;

use crate::contract::KernelError;
use crate::decimal::parse_decimal;

/// The comparison operators, with the codes the OpenCL sources use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// Equal.
    Eq = 0,
    /// Not equal.
    Ne = 1,
    /// Less than.
    Lt = 2,
    /// Less than or equal.
    Le = 3,
    /// Greater than.
    Gt = 4,
    /// Greater than or equal.
    Ge = 5,
    /// Holds the value as a substring (text only).
    Contains = 6,
}

/// The words of [`CompareOp`], for a parameter's `Choice`.
pub const OP_WORDS: &[&str] = &["eq", "ne", "lt", "le", "gt", "ge", "contains"];

impl CompareOp {
    /// The operator called `word` (one of [`OP_WORDS`]).
    pub fn parse(param: &str, word: &str) -> Result<Self, KernelError> {
        Ok(match word {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "lt" => Self::Lt,
            "le" => Self::Le,
            "gt" => Self::Gt,
            "ge" => Self::Ge,
            "contains" => Self::Contains,
            other => {
                return Err(KernelError::param(
                    param,
                    format!("{other:?} is not one of {}", OP_WORDS.join(", ")),
                ));
            }
        })
    }
}

/// What a field is compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    /// Bytes, compared with the field's unescaped value.
    Text(Vec<u8>),
    /// A fixed-point number in micro-units.
    Number(i64),
}

/// A field comparison: `field OP operand`.
#[derive(Debug, Clone)]
pub struct Predicate {
    op: CompareOp,
    operand: Operand,
    /// The `value` text as given (for both kinds; the device compares text against it).
    text: Vec<u8>,
    contains: Option<memmem::Finder<'static>>,
}

impl Predicate {
    /// A predicate from the parameter values; the names are those of the `op`, `value` and
    /// `numeric` parameters, for errors.
    pub fn new(
        names: [&str; 3],
        op: &str,
        value: &str,
        numeric: bool,
    ) -> Result<Self, KernelError> {
        let [op_name, value_name, numeric_name] = names;
        let op = CompareOp::parse(op_name, op)?;
        let operand = if numeric {
            if op == CompareOp::Contains {
                return Err(KernelError::param(
                    op_name,
                    format!("contains compares text; set {numeric_name}=false or use eq..ge"),
                ));
            }
            Operand::Number(parse_decimal(value.as_bytes()).ok_or_else(|| {
                KernelError::param(
                    value_name,
                    format!(
                        "{value:?} is not a number ([+-]digits[.digits], at most 12 integer digits) as {numeric_name}=true needs"
                    ),
                )
            })?)
        } else {
            Operand::Text(value.as_bytes().to_vec())
        };
        let contains =
            (op == CompareOp::Contains).then(|| memmem::Finder::new(value.as_bytes()).into_owned());
        Ok(Self {
            op,
            operand,
            text: value.as_bytes().to_vec(),
            contains,
        })
    }

    /// Whether a field whose unescaped value is `field` matches.
    pub fn matches(&self, field: &[u8]) -> bool {
        if let (Operand::Text(text), CompareOp::Eq | CompareOp::Ne) = (&self.operand, self.op) {
            return same_bytes(field, text) == (self.op == CompareOp::Eq);
        }
        let ordering = match (&self.operand, &self.contains) {
            (_, Some(finder)) => return finder.find(field).is_some(),
            (Operand::Text(text), None) => field.cmp(text.as_slice()),
            (Operand::Number(number), None) => match parse_decimal(field) {
                Some(value) => value.cmp(number),
                None => return false,
            },
        };
        match self.op {
            CompareOp::Eq => ordering.is_eq(),
            CompareOp::Ne => ordering.is_ne(),
            CompareOp::Lt => ordering.is_lt(),
            CompareOp::Le => ordering.is_le(),
            CompareOp::Gt => ordering.is_gt(),
            CompareOp::Ge => ordering.is_ge(),
            CompareOp::Contains => false,
        }
    }

    /// The value's bytes, which the device finds at the offset the kernel gives.
    pub fn value_bytes(&self) -> &[u8] {
        &self.text
    }

    /// Appends the 24-byte device header of the predicate on column `column`:
    /// `op, numeric, column, value_len` as little-endian u32, then the number as i64 (0 for
    /// text). The value bytes go where the kernel's layout puts them.
    pub fn push_device_header(
        &self,
        column: usize,
        consts: &mut Vec<u8>,
    ) -> Result<(), KernelError> {
        let (numeric, number) = match self.operand {
            Operand::Text(_) => (0, 0),
            Operand::Number(n) => (1, n),
        };
        push_u32(consts, self.op as usize)?;
        push_u32(consts, numeric)?;
        push_u32(consts, column)?;
        push_u32(consts, self.text.len())?;
        consts.extend_from_slice(&number.to_le_bytes());
        Ok(())
    }
}

/// Whether `a` and `b` hold the same bytes: a byte loop, not `memcmp`, for the short fields a
/// filter compares once per row, where the call would cost more than the compare.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// Appends `value` as a little-endian u32, refusing one that does not fit.
pub(crate) fn push_u32(consts: &mut Vec<u8>, value: usize) -> Result<(), KernelError> {
    let value = u32::try_from(value).map_err(|_| {
        KernelError::Input(format!(
            "{value} does not fit the device's 32-bit field; use a smaller column or value"
        ))
    })?;
    consts.extend_from_slice(&value.to_le_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 3] = ["op", "value", "numeric"];

    fn pred(op: &str, value: &str, numeric: bool) -> Predicate {
        Predicate::new(NAMES, op, value, numeric).expect("valid")
    }

    #[test]
    fn text_comparisons_are_bytewise() {
        assert!(pred("eq", "abc", false).matches(b"abc"));
        assert!(!pred("eq", "abc", false).matches(b"abcd"));
        assert!(pred("ne", "abc", false).matches(b"ab"));
        assert!(pred("lt", "b", false).matches(b"abc"));
        assert!(pred("le", "abc", false).matches(b"abc"));
        assert!(pred("gt", "10", false).matches(b"9"));
        assert!(pred("ge", "", false).matches(b""));
        assert!(pred("contains", "b\"c", false).matches(b"ab\"cd"));
        assert!(pred("contains", "", false).matches(b""));
        assert!(!pred("contains", "x", false).matches(b"abc"));
    }

    #[test]
    fn numeric_comparisons_use_fixed_point() {
        assert!(pred("gt", "10", true).matches(b"10.000001"));
        assert!(!pred("gt", "10", true).matches(b"9"));
        assert!(pred("eq", "1.5", true).matches(b"+1.50"));
        assert!(pred("lt", "-2", true).matches(b"-2.1"));
        assert!(!pred("ne", "1", true).matches(b"n/a"));
        assert!(!pred("le", "1", true).matches(b""));
    }

    #[test]
    fn unusable_values_are_refused() {
        assert!(Predicate::new(NAMES, "gt", "ten", true).is_err());
        assert!(Predicate::new(NAMES, "contains", "1", true).is_err());
        assert!(Predicate::new(NAMES, "like", "1", false).is_err());
    }
}
