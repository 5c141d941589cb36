// SPDX-License-Identifier: Apache-2.0
//! RFC 4180 rows and fields, as both CSV kernels (and their OpenCL sources, `csv_common.cl`)
//! read them.
//!
//! The rules, kept lenient so that every input has one reading:
//! - every `"` toggles "inside quotes" (so an escaped `""` toggles twice and changes nothing);
//! - a row ends at a `\n` outside quotes, or at the end of the chunk; rows start at offset 0
//!   or right after such a `\n`, and a chunk always starts outside quotes;
//! - fields are separated by `,` outside quotes; a `\r` right before the row's `\n` is not part
//!   of the last field;
//! - a field's value is its text with the quoting removed: each `"` is dropped, except that
//!   `""` inside quotes stands for one `"` (`"a""b"` reads `a"b`, `x"y"z` reads `xyz`).
//!
//! Scanning jumps between the bytes that matter (`,` `"` `\n`) with `memchr`, so a row costs a
//! few SIMD searches, not a branch per byte.

use std::ops::Range;

use memchr::{memchr, memchr2, memchr3};

use crate::contract::KernelError;

/// Bytes per device work-item block: work-item `i` owns the rows that start in block `i`.
pub(crate) const BLOCK_BYTES: usize = 4096;

/// Work-items for a device chunk of `len` bytes.
pub(crate) fn block_items(len: usize) -> usize {
    len.div_ceil(BLOCK_BYTES)
}

/// Scans the row starting at `start` (outside quotes) and returns its end: the offset just past
/// its `\n`, or `data.len()`. The ranges of fields `0..=last` (fewer if the row has fewer) are
/// left in `fields`; later fields are skipped without being split.
pub fn scan_row(data: &[u8], start: usize, last: usize, fields: &mut Vec<Range<usize>>) -> usize {
    fields.clear();
    let mut field_start = start;
    let mut pos = start;
    while let Some(i) = memchr3(b',', b'"', b'\n', &data[pos..]) {
        let at = pos + i;
        match data[at] {
            b',' => {
                fields.push(field_start..at);
                field_start = at + 1;
                pos = at + 1;
                if fields.len() > last {
                    return row_end(data, pos);
                }
            }
            b'\n' => {
                let end = if at > field_start && data[at - 1] == b'\r' {
                    at - 1
                } else {
                    at
                };
                fields.push(field_start..end);
                return at + 1;
            }
            _ => match memchr(b'"', &data[at + 1..]) {
                Some(j) => pos = at + 1 + j + 1,
                None => break,
            },
        }
    }
    fields.push(field_start..data.len());
    data.len()
}

/// Calls `on_row(row, fields)` for every row of `data` from `start` (outside quotes) on, in
/// order: `row` is the row's range (with its `\n`, if any) and `fields` the ranges of its fields
/// `0..=last` (fewer if it has fewer), exactly as [`scan_row`] gives them. One pass over the
/// range ([`Structural`]) finds every `,` `"` and `\n`, 64 bytes at a time.
pub fn for_each_row(
    data: &[u8],
    start: usize,
    last: usize,
    fields: &mut Vec<Range<usize>>,
    mut on_row: impl FnMut(Range<usize>, &[Range<usize>]),
) {
    if start >= data.len() {
        return;
    }
    fields.clear();
    let mut row_start = start;
    let mut field_start = start;
    let mut quoted = false;
    for at in Structural::new(data, start) {
        match data[at] {
            b'"' => quoted = !quoted,
            _ if quoted => {}
            b',' => {
                if fields.len() <= last {
                    fields.push(field_start..at);
                }
                field_start = at + 1;
            }
            _ => {
                if fields.len() <= last {
                    let end = if at > field_start && data[at - 1] == b'\r' {
                        at - 1
                    } else {
                        at
                    };
                    fields.push(field_start..end);
                }
                on_row(row_start..at + 1, fields);
                fields.clear();
                row_start = at + 1;
                field_start = at + 1;
            }
        }
    }
    if row_start < data.len() {
        if fields.len() <= last {
            fields.push(field_start..data.len());
        }
        on_row(row_start..data.len(), fields);
    }
}

/// The offsets of every `,` `"` and `\n` in `data` from a start, in order. CSV text is dense
/// with them (one every few bytes), where a `memchr3` search per hit would cost more than the
/// hit: instead each 64-byte block is turned into a bit mask in one branch-free loop (which
/// the compiler vectorizes), and the set bits are walked with `trailing_zeros`.
struct Structural<'a> {
    data: &'a [u8],
    /// Offset of the block `mask` describes.
    block: usize,
    /// The structural bytes of that block not yet returned.
    mask: u64,
}

impl<'a> Structural<'a> {
    fn new(data: &'a [u8], start: usize) -> Self {
        let mut iter = Self {
            data,
            block: start,
            mask: 0,
        };
        iter.mask = iter.block_mask();
        iter
    }

    fn block_mask(&self) -> u64 {
        let end = (self.block + 64).min(self.data.len());
        let mut mask = 0_u64;
        for (i, &b) in self.data[self.block.min(end)..end].iter().enumerate() {
            mask |= u64::from((b == b',') | (b == b'"') | (b == b'\n')) << i;
        }
        mask
    }
}

impl Iterator for Structural<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        while self.mask == 0 {
            self.block += 64;
            if self.block >= self.data.len() {
                return None;
            }
            self.mask = self.block_mask();
        }
        let bit = self.mask.trailing_zeros() as usize;
        self.mask &= self.mask - 1;
        Some(self.block + bit)
    }
}

/// The end of the row that continues at `pos` (outside quotes): just past its `\n`, or
/// `data.len()`.
pub fn row_end(data: &[u8], mut pos: usize) -> usize {
    while let Some(i) = memchr2(b'"', b'\n', &data[pos..]) {
        let at = pos + i;
        if data[at] == b'\n' {
            return at + 1;
        }
        match memchr(b'"', &data[at + 1..]) {
            Some(j) => pos = at + 1 + j + 1,
            None => break,
        }
    }
    data.len()
}

/// The value of a raw field (quoting removed, see the module docs): `raw` itself when it holds
/// no `"`, else the unescaped text built in `scratch`.
pub fn unescape<'a>(raw: &'a [u8], scratch: &'a mut Vec<u8>) -> &'a [u8] {
    if memchr(b'"', raw).is_none() {
        return raw;
    }
    scratch.clear();
    let mut quoted = false;
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'"' {
            if quoted && raw.get(i + 1) == Some(&b'"') {
                scratch.push(b'"');
                i += 2;
                continue;
            }
            quoted = !quoted;
        } else {
            scratch.push(b);
        }
        i += 1;
    }
    scratch
}

/// A column as a parameter names it: a header name, or `#N` (0-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnRef {
    /// The `N` of `#N`.
    Index(usize),
    /// A header name (matched against the header's unescaped values; the first wins).
    Name(String),
}

impl ColumnRef {
    /// Parses the value of parameter `param`.
    pub fn parse(param: &str, text: &str) -> Result<Self, KernelError> {
        if let Some(digits) = text.strip_prefix('#') {
            return digits.parse().map(Self::Index).map_err(|_| {
                KernelError::param(
                    param,
                    format!("{text:?} is not a column index; write #N with N counted from 0"),
                )
            });
        }
        if text.is_empty() {
            return Err(KernelError::param(
                param,
                "is empty; give a header name or #N (0-based index)",
            ));
        }
        Ok(Self::Name(text.to_owned()))
    }

    /// Parses a comma-separated list of columns.
    pub fn parse_list(param: &str, text: &str) -> Result<Vec<Self>, KernelError> {
        text.split(',')
            .map(|c| Self::parse(param, c.trim()))
            .collect()
    }

    /// The index of this column, given the header row's unescaped names (`None` without a
    /// header); `param` names the parameter in errors.
    pub fn resolve(&self, param: &str, header: Option<&[String]>) -> Result<usize, KernelError> {
        match (self, header) {
            (Self::Index(i), _) => Ok(*i),
            (Self::Name(name), Some(names)) => {
                names.iter().position(|n| n == name).ok_or_else(|| {
                    KernelError::param(
                        param,
                        format!(
                            "no column is named {name:?}; the header has: {} (or use #N)",
                            names
                                .iter()
                                .map(|n| format!("{n:?}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                })
            }
            (Self::Name(name), None) => Err(KernelError::param(
                param,
                format!("names column {name:?}, but header is false; use #N (0-based index)"),
            )),
        }
    }
}

/// The unescaped names of a header row.
pub fn header_names(row: &[u8]) -> Vec<String> {
    let mut fields = Vec::new();
    scan_row(row, 0, usize::MAX, &mut fields);
    let mut scratch = Vec::new();
    fields
        .iter()
        .map(|f| String::from_utf8_lossy(unescape(&row[f.clone()], &mut scratch)).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields_of(row: &[u8]) -> (Vec<&[u8]>, usize) {
        let mut fields = Vec::new();
        let end = scan_row(row, 0, usize::MAX, &mut fields);
        (fields.iter().map(|f| &row[f.clone()]).collect(), end)
    }

    #[test]
    fn fields_split_at_commas_outside_quotes() {
        let (fields, end) = fields_of(b"a,\"b,c\",,d\nnext");
        assert_eq!(fields, vec![&b"a"[..], b"\"b,c\"", b"", b"d"]);
        assert_eq!(end, 11);
    }

    #[test]
    fn a_newline_inside_quotes_does_not_end_the_row() {
        let (fields, end) = fields_of(b"\"x\ny\",z\r\nw");
        assert_eq!(fields, vec![&b"\"x\ny\""[..], b"z"]);
        assert_eq!(end, 9);
        assert_eq!(row_end(b"\"x\ny\",z\r\nw", 0), 9);
    }

    #[test]
    fn an_unterminated_row_ends_with_the_chunk() {
        let (fields, end) = fields_of(b"a,b\r");
        assert_eq!(fields, vec![&b"a"[..], b"b\r"]);
        assert_eq!(end, 4);
        let (fields, end) = fields_of(b"a,\"open\n");
        assert_eq!(fields, vec![&b"a"[..], b"\"open\n"]);
        assert_eq!(end, 8);
    }

    #[test]
    fn only_the_fields_asked_for_are_split() {
        let mut fields = Vec::new();
        let end = scan_row(b"a,b,\"c\n\",d\ne", 0, 1, &mut fields);
        assert_eq!(fields, vec![0..1, 2..3]);
        assert_eq!(end, 11);
    }

    #[test]
    fn quoting_is_removed_from_values() {
        let mut scratch = Vec::new();
        assert_eq!(unescape(b"plain", &mut scratch), b"plain");
        assert_eq!(unescape(b"\"a\"\"b\"", &mut scratch), b"a\"b");
        assert_eq!(unescape(b"\"\"", &mut scratch), b"");
        assert_eq!(unescape(b"x\"y\"z", &mut scratch), b"xyz");
        assert_eq!(unescape(b"\"\"\"\"", &mut scratch), b"\"");
    }

    #[test]
    fn columns_resolve_by_name_or_index() {
        let names = header_names(b"id,\"full name\",age\n");
        assert_eq!(names, vec!["id", "full name", "age"]);
        let name = ColumnRef::parse("column", "age").expect("a name");
        assert_eq!(name.resolve("column", Some(&names)), Ok(2));
        assert_eq!(
            ColumnRef::parse("column", "#7")
                .expect("an index")
                .resolve("column", None),
            Ok(7)
        );
        let err = ColumnRef::parse("column", "nope")
            .expect("a name")
            .resolve("column", Some(&names))
            .expect_err("unknown");
        assert!(err.to_string().contains("\"full name\""), "{err}");
        assert!(ColumnRef::parse("column", "#x").is_err());
        assert!(name.resolve("column", None).is_err());
    }

    proptest::proptest! {
        #[test]
        fn for_each_row_reads_rows_like_scan_row(
            text in "[a,\"\r\n]{0,60}",
            start in 0usize..8,
            last in 0usize..4,
        ) {
            let data = text.as_bytes();
            // Rows start outside quotes: only at 0 or after a row end.
            let start = if start == 0 { 0 } else { row_end(data, 0).min(data.len()) };
            let mut expected = Vec::new();
            let mut fields = Vec::new();
            let mut pos = start;
            while pos < data.len() {
                let end = scan_row(data, pos, last, &mut fields);
                expected.push((pos..end, fields.clone()));
                pos = end;
            }
            let mut got = Vec::new();
            for_each_row(data, start, last, &mut fields, |row, f| got.push((row, f.to_vec())));
            proptest::prop_assert_eq!(got, expected);
        }
    }
}
