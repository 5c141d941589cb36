// SPDX-License-Identifier: Apache-2.0
//! The kernel contract: what a kernel is (shape, framing, parameters) and the traits every
//! built-in kernel implements.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::device::DeviceRun;

/// How a kernel's output relates to its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// Each record maps to output independently; outputs are concatenated in input order.
    Map,
    /// Each record is kept (emitted verbatim or projected) or dropped; order is kept.
    Filter,
    /// Partial results per chunk, combined into one result at the end.
    Reduce,
    /// A stateful transform that must see the input in order.
    Stream,
}

impl Shape {
    /// Its name in listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Map => "map",
            Self::Filter => "filter",
            Self::Reduce => "reduce",
            Self::Stream => "stream",
        }
    }
}

/// How the input is cut into records. A chunk handed to a kernel always holds whole records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framing {
    /// No records: any cut is allowed.
    Bytes,
    /// Lines ending in `\n` (the last line may lack it).
    Lines,
    /// Records of a fixed size in bytes (the last may be shorter).
    Records {
        /// Record size in bytes (at least 1).
        size: usize,
    },
    /// CSV rows (RFC 4180): rows end in `\n` outside double quotes; a quoted field may hold
    /// newlines and `""` escapes.
    CsvRows,
}

impl fmt::Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bytes => f.write_str("bytes"),
            Self::Lines => f.write_str("lines"),
            Self::Records { size } => write!(f, "records({size})"),
            Self::CsvRows => f.write_str("csv-rows"),
        }
    }
}

/// The type of a kernel parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// Any UTF-8 text (may be required to be non-empty by the kernel).
    Text,
    /// `true` or `false`.
    Bool,
    /// A non-negative integer within `min..=max`.
    UInt {
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
    },
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
}

/// One parameter a kernel accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamSpec {
    /// Its name (`x-quarry-param-NAME`, `--param NAME=...`).
    pub name: &'static str,
    /// Its type.
    pub ty: ParamType,
    /// The value used when none is given; `None` makes the parameter required.
    pub default: Option<&'static str>,
    /// One line for `quarry kernel ls` and the docs.
    pub doc: &'static str,
}

/// The description of a kernel (static for built-ins, owned for user kernels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelInfo {
    /// Its name; deployable as a function of this name.
    pub name: Cow<'static, str>,
    /// One line saying what it computes.
    pub summary: Cow<'static, str>,
    /// Its shape.
    pub shape: Shape,
    /// The parameters it accepts; others are refused.
    pub params: Cow<'static, [ParamSpec]>,
    /// Whether it has a CPU variant (`false` for user OpenCL kernels).
    pub cpu: bool,
    /// Whether it has an OpenCL variant (`false`: CPU-only, said in listings).
    pub opencl: bool,
}

/// Why a kernel could not be bound or run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    /// A parameter is missing, unknown or malformed; the message names the fix.
    #[error("parameter {name}: {message}")]
    Param {
        /// The parameter.
        name: String,
        /// What is wrong and what is expected.
        message: String,
    },
    /// The input does not fit the kernel (e.g. a record longer than the limit).
    #[error("input: {0}")]
    Input(String),
}

impl KernelError {
    /// A parameter error.
    pub fn param(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Param {
            name: name.into(),
            message: message.into(),
        }
    }
}

/// Parameter values as given (text), checked against a kernel's [`ParamSpec`]s by
/// [`Params::validate`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    /// Parameters from name/value pairs.
    pub fn new(values: impl IntoIterator<Item = (String, String)>) -> Self {
        Self(values.into_iter().collect())
    }

    /// The given value of `name`, if any.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Refuses parameters `info` does not declare and values that do not parse as their type,
    /// and fills in defaults. Returns the complete, checked set.
    pub fn validate(&self, info: &KernelInfo) -> Result<Self, KernelError> {
        if let Some(unknown) = self
            .0
            .keys()
            .find(|k| !info.params.iter().any(|p| p.name == k.as_str()))
        {
            let known: Vec<&str> = info.params.iter().map(|p| p.name).collect();
            return Err(KernelError::param(
                unknown.as_str(),
                format!(
                    "kernel {} has no such parameter (it takes: {})",
                    info.name,
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }
        let mut out = BTreeMap::new();
        for spec in info.params.iter() {
            let value = match (self.0.get(spec.name), spec.default) {
                (Some(v), _) => v.clone(),
                (None, Some(d)) => d.to_owned(),
                (None, None) => {
                    return Err(KernelError::param(
                        spec.name,
                        format!("is required by kernel {} ({})", info.name, spec.doc),
                    ));
                }
            };
            check_type(spec, &value)?;
            out.insert(spec.name.to_owned(), value);
        }
        Ok(Self(out))
    }

    /// Refuses parameters `info` does not declare and values that do not parse as their
    /// type, without requiring the required ones: for defaults set ahead of the request (a
    /// deploy's or a trigger's params), which the request may complete.
    pub fn check_given(&self, info: &KernelInfo) -> Result<(), KernelError> {
        let mut complete = self.0.clone();
        for spec in info.params.iter() {
            if spec.default.is_none() && !complete.contains_key(spec.name) {
                // A stand-in of the right type, so only the given values are judged.
                let stand_in = match spec.ty {
                    ParamType::Text => "x".to_owned(),
                    ParamType::Bool => "false".to_owned(),
                    ParamType::UInt { min, .. } => min.to_string(),
                    ParamType::Choice(words) => words.first().copied().unwrap_or("").to_owned(),
                };
                complete.insert(spec.name.to_owned(), stand_in);
            }
        }
        Self(complete).validate(info).map(drop)
    }

    /// A text parameter (after [`Params::validate`]).
    pub fn text(&self, name: &str) -> Result<&str, KernelError> {
        self.raw(name)
            .ok_or_else(|| KernelError::param(name, "is missing"))
    }

    /// A boolean parameter (after [`Params::validate`]).
    pub fn bool(&self, name: &str) -> Result<bool, KernelError> {
        match self.text(name)? {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(KernelError::param(
                name,
                format!("{other:?} is not true or false"),
            )),
        }
    }

    /// An integer parameter (after [`Params::validate`]).
    pub fn uint(&self, name: &str) -> Result<u64, KernelError> {
        let v = self.text(name)?;
        v.parse()
            .map_err(|_| KernelError::param(name, format!("{v:?} is not a non-negative integer")))
    }
}

fn check_type(spec: &ParamSpec, value: &str) -> Result<(), KernelError> {
    match spec.ty {
        ParamType::Text => Ok(()),
        ParamType::Bool => match value {
            "true" | "false" => Ok(()),
            _ => Err(KernelError::param(
                spec.name,
                format!("{value:?} is not true or false"),
            )),
        },
        ParamType::UInt { min, max } => match value.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(()),
            _ => Err(KernelError::param(
                spec.name,
                format!("{value:?} is not an integer in {min}..={max}"),
            )),
        },
        ParamType::Choice(words) => {
            if words.contains(&value) {
                Ok(())
            } else {
                Err(KernelError::param(
                    spec.name,
                    format!("{value:?} is not one of {}", words.join(", ")),
                ))
            }
        }
    }
}

/// A built-in kernel: its description, and binding to parameters.
pub trait Kernel: Send + Sync + fmt::Debug + 'static {
    /// What it is.
    fn info(&self) -> &KernelInfo;
    /// Binds checked parameters (see [`Params::validate`]); refuses values that are well-typed
    /// but unusable (an empty grep pattern, k + m over the limit...).
    fn bind(&self, params: &Params) -> Result<Arc<dyn BoundKernel>, KernelError>;
}

/// A kernel with its parameters: the factory of runs, one per job.
pub trait BoundKernel: Send + Sync + fmt::Debug + 'static {
    /// How its input must be cut (may depend on parameters, e.g. a stripe size).
    fn framing(&self) -> Framing;
    /// A run on the CPU, or `None` for a device-only kernel (a user OpenCL kernel).
    fn cpu(&self) -> Option<Box<dyn CpuRun>>;
    /// A run on an OpenCL device, or `None` for a CPU-only kernel.
    fn device(&self) -> Option<Box<dyn DeviceRun>>;
}

/// One job on the CPU: chunks in order, then [`CpuRun::finish`].
pub trait CpuRun: Send {
    /// Processes one chunk of whole records (see [`BoundKernel::framing`]), appending any
    /// output to `out`.
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), KernelError>;
    /// Ends the input, appending the remaining output (a reduce's result) to `out`.
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), KernelError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[ParamSpec] = &[
        ParamSpec {
            name: "pattern",
            ty: ParamType::Text,
            default: None,
            doc: "what to look for",
        },
        ParamSpec {
            name: "mode",
            ty: ParamType::Choice(&["lines", "count"]),
            default: Some("lines"),
            doc: "what to emit",
        },
    ];

    fn info() -> KernelInfo {
        KernelInfo {
            name: Cow::Borrowed("test"),
            summary: Cow::Borrowed("a test kernel"),
            shape: Shape::Filter,
            params: Cow::Borrowed(SPECS),
            cpu: true,
            opencl: false,
        }
    }

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    #[test]
    fn validate_fills_defaults_and_requires_the_rest() {
        let checked = params(&[("pattern", "x")])
            .validate(&info())
            .expect("valid");
        assert_eq!(checked.text("mode").expect("defaulted"), "lines");
        let err = params(&[])
            .validate(&info())
            .expect_err("pattern is required");
        assert!(err.to_string().contains("pattern"), "{err}");
    }

    #[test]
    fn unknown_names_and_bad_values_are_refused_naming_the_fix() {
        let err = params(&[("pattern", "x"), ("mod", "count")])
            .validate(&info())
            .expect_err("unknown");
        assert!(err.to_string().contains("pattern, mode"), "{err}");
        let err = params(&[("pattern", "x"), ("mode", "all")])
            .validate(&info())
            .expect_err("bad choice");
        assert!(err.to_string().contains("lines, count"), "{err}");
    }

    #[test]
    fn check_given_judges_only_what_is_given() {
        assert!(params(&[("mode", "count")]).check_given(&info()).is_ok());
        assert!(params(&[("mode", "all")]).check_given(&info()).is_err());
        assert!(params(&[("other", "1")]).check_given(&info()).is_err());
    }
}
