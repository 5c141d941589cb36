// SPDX-License-Identifier: Apache-2.0
//! The device programs shipped with Quarry (`programs/*.c`), each the twin of a built-in CPU
//! kernel: `grep-count` (grep with mode=count), `csv-filter` (csv-filter with op=eq, whole
//! rows) and `crc32c`. They are compiled by `build.rs` when the `ebpf` feature is on; without
//! it [`object()`] and [`kernel()`] say so at run time.

use std::borrow::Cow;
use std::sync::Arc;

use quarry_kernels::{Framing, KernelError, ParamSpec, ParamType, Params, Shape};

use crate::kernel::{EbpfKernel, KernelSpec, ParamCheck};
use crate::limits::Limits;
use crate::program::Program;

/// Longest `pattern` grep-count takes (its state holds the pattern).
pub const GREP_MAX_PATTERN: usize = 1024;
/// Longest `value` csv-filter takes.
pub const CSV_MAX_VALUE: usize = 4096;
/// Longest column name csv-filter takes.
pub const CSV_MAX_NAME: usize = 1024;

/// A built-in device program.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// Its name.
    pub name: &'static str,
    /// One line saying what it computes.
    pub summary: &'static str,
    /// The built-in CPU kernel it gives the same bytes as.
    pub twin: &'static str,
    /// Its shape.
    pub shape: Shape,
    /// Its framing.
    pub framing: Framing,
    /// Its parameters.
    pub params: &'static [ParamSpec],
    check: ParamCheck,
    object: Option<&'static [u8]>,
}

#[cfg(feature = "ebpf")]
macro_rules! object {
    ($stem:literal) => {
        Some(include_bytes!(concat!(env!("OUT_DIR"), "/", $stem, ".o")).as_slice())
    };
}

#[cfg(not(feature = "ebpf"))]
macro_rules! object {
    ($stem:literal) => {
        None
    };
}

const GREP_PARAMS: &[ParamSpec] = &[ParamSpec {
    name: "pattern",
    ty: ParamType::Text,
    default: None,
    doc: "the literal text to look for (1 to 1024 bytes, no newline; case-sensitive)",
}];

const CSV_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "column",
        ty: ParamType::Text,
        default: None,
        doc: "the column compared: a header name, or #N (0-based index)",
    },
    ParamSpec {
        name: "value",
        ty: ParamType::Text,
        default: None,
        doc: "what the field must equal (at most 4096 bytes)",
    },
    ParamSpec {
        name: "numeric",
        ty: ParamType::Bool,
        default: Some("false"),
        doc: "compare as fixed-point decimals; rows whose field is not a number do not match",
    },
    ParamSpec {
        name: "header",
        ty: ParamType::Bool,
        default: Some("true"),
        doc: "the first row is a header: it names the columns and is emitted first",
    },
];

static BUILTINS: [Builtin; 3] = [
    Builtin {
        name: "grep-count",
        summary: "how many lines hold a literal pattern (case-sensitive), on the device",
        twin: "grep",
        shape: Shape::Reduce,
        framing: Framing::Lines,
        params: GREP_PARAMS,
        check: check_grep,
        object: object!("grep_count"),
    },
    Builtin {
        name: "csv-filter",
        summary: "CSV rows whose field equals a value (text or number), on the device",
        twin: "csv-filter",
        shape: Shape::Filter,
        framing: Framing::CsvRows,
        params: CSV_PARAMS,
        check: check_csv,
        object: object!("csv_filter"),
    },
    Builtin {
        name: "crc32c",
        summary: "CRC-32C (Castagnoli) of the whole input, in hex, on the device",
        twin: "crc32c",
        shape: Shape::Reduce,
        framing: Framing::Bytes,
        params: &[],
        check: check_none,
        object: object!("crc32c"),
    },
];

/// The built-in programs, in listing order.
pub fn all() -> &'static [Builtin] {
    &BUILTINS
}

/// Whether the built-in programs were compiled in (the `ebpf` feature).
pub fn available() -> bool {
    cfg!(feature = "ebpf")
}

/// Why a built-in program cannot be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuiltinError {
    /// No built-in program has that name.
    #[error(
        "no built-in eBPF program is named {name:?}; there are: grep-count, csv-filter, crc32c"
    )]
    Unknown {
        /// The name asked for.
        name: String,
    },
    /// The crate was built without the `ebpf` feature.
    #[error(
        "the built-in eBPF program {name} is absent: this build has no `ebpf` feature (rebuild quarryd with `cargo build --release -p quarry-agent --features ebpf`, which needs clang)"
    )]
    Absent {
        /// The name asked for.
        name: &'static str,
    },
    /// The embedded object did not load (a build problem).
    #[error("the built-in eBPF program {name} does not load: {source}")]
    Load {
        /// The program.
        name: &'static str,
        /// Why.
        #[source]
        source: crate::error::LoadError,
    },
}

/// The built-in program called `name`.
pub fn find(name: &str) -> Result<&'static Builtin, BuiltinError> {
    BUILTINS
        .iter()
        .find(|b| b.name == name)
        .ok_or_else(|| BuiltinError::Unknown {
            name: name.to_owned(),
        })
}

/// The ELF object of the built-in program called `name`.
pub fn object(name: &str) -> Result<&'static [u8], BuiltinError> {
    let builtin = find(name)?;
    builtin
        .object
        .ok_or(BuiltinError::Absent { name: builtin.name })
}

/// The built-in program called `name` as a kernel, run under `limits`.
pub fn kernel(name: &str, limits: Limits) -> Result<EbpfKernel, BuiltinError> {
    let builtin = find(name)?;
    let elf = object(name)?;
    let program =
        Program::load(builtin.name, elf, &limits).map_err(|source| BuiltinError::Load {
            name: builtin.name,
            source,
        })?;
    let spec = KernelSpec {
        name: builtin.name.to_owned(),
        summary: builtin.summary.to_owned(),
        shape: builtin.shape,
        framing: builtin.framing,
        params: Cow::Borrowed(builtin.params),
    };
    Ok(EbpfKernel::new(spec, Arc::new(program), limits).with_check(builtin.check))
}

/// Binds the CPU twin `twin` with `given` plus `fixed` parameters, so the device program
/// refuses exactly what its twin refuses.
fn check_twin(twin: &str, given: &Params, fixed: &[(&str, &str)]) -> Result<(), KernelError> {
    let kernel = quarry_kernels::find(twin)
        .ok_or_else(|| KernelError::Input(format!("the CPU twin {twin} is missing")))?;
    let mut values: Vec<(String, String)> = kernel
        .info()
        .params
        .iter()
        .filter_map(|spec| {
            given
                .raw(spec.name)
                .map(|v| (spec.name.to_owned(), v.to_owned()))
        })
        .collect();
    values.extend(
        fixed
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let checked = Params::new(values).validate(kernel.info())?;
    kernel.bind(&checked).map(drop)
}

fn check_grep(params: &Params) -> Result<(), KernelError> {
    check_twin("grep", params, &[("mode", "count")])?;
    let pattern = params.text("pattern")?;
    if pattern.len() > GREP_MAX_PATTERN {
        return Err(KernelError::param(
            "pattern",
            format!(
                "is {} bytes; the device program takes at most {GREP_MAX_PATTERN} (use the CPU kernel grep for longer ones)",
                pattern.len()
            ),
        ));
    }
    Ok(())
}

fn check_csv(params: &Params) -> Result<(), KernelError> {
    check_twin("csv-filter", params, &[("op", "eq")])?;
    let value = params.text("value")?;
    if value.len() > CSV_MAX_VALUE {
        return Err(KernelError::param(
            "value",
            format!(
                "is {} bytes; the device program takes at most {CSV_MAX_VALUE}",
                value.len()
            ),
        ));
    }
    let column = params.text("column")?;
    if !column.starts_with('#') && column.len() > CSV_MAX_NAME {
        return Err(KernelError::param(
            "column",
            format!(
                "names a column of {} bytes; the device program takes names of at most {CSV_MAX_NAME}",
                column.len()
            ),
        ));
    }
    Ok(())
}

fn check_none(_params: &Params) -> Result<(), KernelError> {
    Ok(())
}
