// SPDX-License-Identifier: Apache-2.0
//! `jsonl-filter`: the JSON-object lines whose top-level field compares true with a value.
//!
//! The field's raw value text is compared bytewise: for a string, the text between its quotes
//! with escapes left as written; for any other value, the token (or the bracketed object or
//! array) as written. Lines that are not objects or lack the field never match, whatever the
//! operator. How a line is read is specified by `scan`, which `jsonl_filter.cl` follows step
//! for step.
//!
//! CPU: a line can hold the field only if it holds `"field"` (a key's raw text sits between
//! quotes), so the block-mask search of `line_search` for that needle skips every other line
//! at SIMD speed; each line with a hit is scanned, and the search resumes at the next line. Device: the block
//! decomposition of `blocks`, scanning every line of the block.

mod scan;

use std::borrow::Cow;
use std::sync::Arc;

use memchr::memmem;

use crate::blocks::{LineFilterDeviceRun, push_u32};
use crate::contract::{
    BoundKernel, CpuRun, Framing, Kernel, KernelError, KernelInfo, ParamSpec, ParamType, Params,
    Shape,
};
use crate::device::{ClProgram, DeviceRun};
use crate::line_search::LineSearch;

/// The `jsonl-filter` kernel.
#[derive(Debug)]
pub struct JsonlFilter;

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "field",
        ty: ParamType::Text,
        default: None,
        doc: "the top-level key to test, as written between its quotes (escapes not decoded)",
    },
    ParamSpec {
        name: "op",
        ty: ParamType::Choice(&["eq", "ne", "contains", "exists"]),
        default: Some("eq"),
        doc: "eq / ne: the raw value is / is not `value`; contains: it holds `value`; \
              exists: the field is present",
    },
    ParamSpec {
        name: "value",
        ty: ParamType::Text,
        default: Some(""),
        doc: "the raw value text to compare with (a string's text without its quotes)",
    },
];

static INFO: KernelInfo = KernelInfo {
    name: Cow::Borrowed("jsonl-filter"),
    summary: Cow::Borrowed("JSON-object lines whose top-level field compares true"),
    shape: Shape::Filter,
    params: Cow::Borrowed(PARAMS),
    cpu: true,
    opencl: true,
};

static PROGRAM: ClProgram = ClProgram {
    name: "builtin-jsonl-filter",
    source: concat!(
        include_str!("../blocks.cl"),
        include_str!("jsonl_filter.cl")
    ),
    options: "",
};

/// How the field's raw value is tested (the numbers are the device's `op` codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq = 0,
    Ne = 1,
    Contains = 2,
    Exists = 3,
}

impl Op {
    fn parse(word: &str) -> Result<Self, KernelError> {
        match word {
            "eq" => Ok(Self::Eq),
            "ne" => Ok(Self::Ne),
            "contains" => Ok(Self::Contains),
            "exists" => Ok(Self::Exists),
            other => Err(KernelError::param(
                "op",
                format!("{other:?} is not one of eq, ne, contains, exists"),
            )),
        }
    }
}

impl Kernel for JsonlFilter {
    fn info(&self) -> &KernelInfo {
        &INFO
    }

    fn bind(&self, params: &Params) -> Result<Arc<dyn BoundKernel>, KernelError> {
        let field = params.text("field")?.as_bytes().to_vec();
        let value = params.text("value")?.as_bytes().to_vec();
        for (name, text) in [("field", &field), ("value", &value)] {
            if text.contains(&b'\n') {
                return Err(KernelError::param(
                    name,
                    "holds a newline, which no JSON line can contain; give one line's text",
                ));
            }
        }
        let op = Op::parse(params.text("op")?)?;
        let mut needle = Vec::with_capacity(field.len() + 2);
        needle.push(b'"');
        needle.extend_from_slice(&field);
        needle.push(b'"');
        Ok(Arc::new(BoundJsonlFilter {
            consts: device_consts(&field, &value, op)?,
            test: Arc::new(LineTest {
                search: LineSearch::new(&needle, false),
                value_finder: memmem::Finder::new(&value).into_owned(),
                field,
                value,
                op,
            }),
        }))
    }
}

/// The `consts` of `jsonl_filter.cl`: field length, value length, op, field, value.
fn device_consts(field: &[u8], value: &[u8], op: Op) -> Result<Vec<u8>, KernelError> {
    let mut consts = Vec::with_capacity(12 + field.len() + value.len());
    push_u32(&mut consts, field.len())?;
    push_u32(&mut consts, value.len())?;
    push_u32(&mut consts, op as usize)?;
    consts.extend_from_slice(field);
    consts.extend_from_slice(value);
    Ok(consts)
}

/// The test one line must pass, with the searchers built once per bind.
#[derive(Debug)]
struct LineTest {
    /// Finds the lines holding `"field"`, which every matching line holds.
    search: LineSearch,
    /// Finds `value` inside a raw value (for `contains`).
    value_finder: memmem::Finder<'static>,
    field: Vec<u8>,
    value: Vec<u8>,
    op: Op,
}

impl LineTest {
    /// Whether `line` (without its `\n`) is kept.
    fn matches(&self, line: &[u8]) -> bool {
        let Some(raw) = scan::field_value(line, &self.field) else {
            return false;
        };
        match self.op {
            Op::Eq => raw == self.value.as_slice(),
            Op::Ne => raw != self.value.as_slice(),
            Op::Contains => self.value_finder.find(raw).is_some(),
            Op::Exists => true,
        }
    }

    /// Appends to `out` every kept line of `chunk`, with its `\n`, in order.
    fn filter(&self, chunk: &[u8], out: &mut Vec<u8>) {
        self.search.for_each_line(chunk, |start, end| {
            let line = &chunk[start..end];
            if self.matches(line.strip_suffix(b"\n").unwrap_or(line)) {
                out.extend_from_slice(line);
            }
        });
    }
}

/// `jsonl-filter` with its parameters.
#[derive(Debug)]
struct BoundJsonlFilter {
    consts: Vec<u8>,
    test: Arc<LineTest>,
}

impl BoundKernel for BoundJsonlFilter {
    fn framing(&self) -> Framing {
        Framing::Lines
    }

    fn cpu(&self) -> Option<Box<dyn CpuRun>> {
        Some(Box::new(JsonlFilterCpuRun {
            test: Arc::clone(&self.test),
        }))
    }

    fn device(&self) -> Option<Box<dyn DeviceRun>> {
        Some(Box::new(LineFilterDeviceRun::new(
            &PROGRAM,
            "jsonl_filter_count",
            "jsonl_filter_emit",
            self.consts.clone(),
        )))
    }
}

/// One `jsonl-filter` job on the CPU (it keeps no state between chunks).
struct JsonlFilterCpuRun {
    test: Arc<LineTest>,
}

impl CpuRun for JsonlFilterCpuRun {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), KernelError> {
        self.test.filter(chunk, out);
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<u8>) -> Result<(), KernelError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
