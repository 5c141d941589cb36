// SPDX-License-Identifier: Apache-2.0
//! `grep`: the lines that hold a literal pattern, or how many there are.
//!
//! CPU: each 64-byte block becomes a mask of candidates, the positions where three of the
//! pattern's bytes stand at their offsets (AVX2 where the CPU has it; ASCII letters folded
//! when case is ignored), and each candidate is checked against the whole pattern; a hit
//! yields its line, and the rest of the line is skipped, so a line is reported once however
//! many hits it holds. Because the pattern
//! may not contain `\n`, a hit never spans two lines. Device: the block decomposition of
//! `blocks`, with a first-byte filter and a byte compare per candidate.

use std::borrow::Cow;
use std::sync::Arc;

use crate::blocks::{LineFilterDeviceRun, block_items, device_words, push_u32};
use crate::contract::{
    BoundKernel, CpuRun, Framing, Kernel, KernelError, KernelInfo, ParamSpec, ParamType, Params,
    Shape,
};
use crate::device::{ChunkPlan, ClProgram, DeviceRun, Launch};
use crate::line_search::LineSearch;

/// The `grep` kernel.
#[derive(Debug)]
pub struct Grep;

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "pattern",
        ty: ParamType::Text,
        default: None,
        doc: "the literal text to look for (non-empty, no newline)",
    },
    ParamSpec {
        name: "ignore_case",
        ty: ParamType::Bool,
        default: Some("false"),
        doc: "fold ASCII letters A-Z to a-z before comparing (other bytes compare as they are)",
    },
    ParamSpec {
        name: "mode",
        ty: ParamType::Choice(&["lines", "count"]),
        default: Some("lines"),
        doc: "lines: emit the matching lines; count: emit how many lines match",
    },
];

static INFO: KernelInfo = KernelInfo {
    name: Cow::Borrowed("grep"),
    summary: Cow::Borrowed("lines holding a literal pattern (or their count)"),
    shape: Shape::Filter,
    params: Cow::Borrowed(PARAMS),
    cpu: true,
    opencl: true,
};

static PROGRAM: ClProgram = ClProgram {
    name: "builtin-grep",
    source: concat!(include_str!("../blocks.cl"), include_str!("grep.cl")),
    options: "",
};

impl Kernel for Grep {
    fn info(&self) -> &KernelInfo {
        &INFO
    }

    fn bind(&self, params: &Params) -> Result<Arc<dyn BoundKernel>, KernelError> {
        let pattern = params.text("pattern")?.as_bytes().to_vec();
        if pattern.is_empty() {
            return Err(KernelError::param(
                "pattern",
                "is empty; give the text to look for",
            ));
        }
        if pattern.contains(&b'\n') {
            return Err(KernelError::param(
                "pattern",
                "holds a newline, which no line can contain; search for one line's text",
            ));
        }
        let ignore_case = params.bool("ignore_case")?;
        let count = match params.text("mode")? {
            "lines" => false,
            "count" => true,
            other => {
                return Err(KernelError::param(
                    "mode",
                    format!("{other:?} is not lines or count"),
                ));
            }
        };
        let matcher = LineSearch::new(&pattern, ignore_case);
        Ok(Arc::new(BoundGrep {
            consts: device_consts(&pattern, ignore_case)?,
            count,
            matcher: Arc::new(matcher),
        }))
    }
}

/// `grep` with its parameters.
#[derive(Debug)]
struct BoundGrep {
    consts: Vec<u8>,
    count: bool,
    matcher: Arc<LineSearch>,
}

impl BoundKernel for BoundGrep {
    fn framing(&self) -> Framing {
        Framing::Lines
    }

    fn cpu(&self) -> Option<Box<dyn CpuRun>> {
        Some(Box::new(GrepCpuRun {
            matcher: Arc::clone(&self.matcher),
            count: self.count.then_some(0),
        }))
    }

    fn device(&self) -> Option<Box<dyn DeviceRun>> {
        let consts = self.consts.clone();
        if self.count {
            Some(Box::new(GrepCountDeviceRun { consts, lines: 0 }))
        } else {
            Some(Box::new(LineFilterDeviceRun::new(
                &PROGRAM,
                "grep_count",
                "grep_emit",
                consts,
            )))
        }
    }
}

/// The `consts` of `grep.cl`: length, flag, then the pattern (folded when ignoring case).
fn device_consts(pattern: &[u8], ignore_case: bool) -> Result<Vec<u8>, KernelError> {
    let mut consts = Vec::with_capacity(8 + pattern.len());
    push_u32(&mut consts, pattern.len())?;
    push_u32(&mut consts, usize::from(ignore_case))?;
    if ignore_case {
        consts.extend(pattern.iter().map(u8::to_ascii_lowercase));
    } else {
        consts.extend_from_slice(pattern);
    }
    Ok(consts)
}

/// One `grep` job on the CPU; `count` is `Some(lines so far)` in count mode.
struct GrepCpuRun {
    matcher: Arc<LineSearch>,
    count: Option<u64>,
}

impl CpuRun for GrepCpuRun {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), KernelError> {
        match &mut self.count {
            Some(lines) => self.matcher.for_each_hit_line(chunk, |_, _| *lines += 1),
            None => self
                .matcher
                .for_each_line(chunk, |s, e| out.extend_from_slice(&chunk[s..e])),
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), KernelError> {
        if let Some(lines) = self.count {
            out.extend_from_slice(format!("{lines}\n").as_bytes());
        }
        Ok(())
    }
}

/// One `grep` job in count mode on a device: per-block line counts, summed here.
struct GrepCountDeviceRun {
    consts: Vec<u8>,
    lines: u64,
}

impl DeviceRun for GrepCountDeviceRun {
    fn plan(&mut self, chunk: &[u8]) -> Result<ChunkPlan, KernelError> {
        Ok(ChunkPlan {
            program: &PROGRAM,
            input: 0..chunk.len(),
            consts: self.consts.clone(),
            launch: Launch::Fixed {
                entry: "grep_tally",
                items: block_items(chunk.len()),
                out_per_item: 4,
            },
        })
    }

    fn accept(
        &mut self,
        chunk: &[u8],
        device_out: &[u8],
        _out: &mut Vec<u8>,
    ) -> Result<(), KernelError> {
        for lines in device_words(device_out, block_items(chunk.len()), 1)? {
            self.lines += u64::from(lines);
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), KernelError> {
        out.extend_from_slice(format!("{}\n", self.lines).as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests;
