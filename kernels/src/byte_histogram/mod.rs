// SPDX-License-Identifier: Apache-2.0
//! `byte-histogram`: how often each byte value occurs in the whole input.
//!
//! Output: one line `<value>\t<count>\n` per byte value that occurs, in byte order, then
//! `total\t<n>\n`. CPU: four interleaved count tables (so that runs of one byte value do not
//! serialize on one counter), added up at the end. Device: 256 counts per 4096-byte block,
//! added up on the host.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;

use crate::blocks::{block_items, device_words};
use crate::contract::{
    BoundKernel, CpuRun, Framing, Kernel, KernelError, KernelInfo, Params, Shape,
};
use crate::device::{ChunkPlan, ClProgram, DeviceRun, Launch};

/// The `byte-histogram` kernel.
#[derive(Debug)]
pub struct ByteHistogram;

static INFO: KernelInfo = KernelInfo {
    name: Cow::Borrowed("byte-histogram"),
    summary: Cow::Borrowed("the count of each byte value in the whole input"),
    shape: Shape::Reduce,
    params: Cow::Borrowed(&[]),
    cpu: true,
    opencl: true,
};

static PROGRAM: ClProgram = ClProgram {
    name: "builtin-byte-histogram",
    source: concat!(
        include_str!("../blocks.cl"),
        include_str!("byte_histogram.cl")
    ),
    options: "",
};

/// Byte values: the device writes one `u32` per value per block.
const VALUES: usize = 256;

impl Kernel for ByteHistogram {
    fn info(&self) -> &KernelInfo {
        &INFO
    }

    fn bind(&self, _params: &Params) -> Result<Arc<dyn BoundKernel>, KernelError> {
        Ok(Arc::new(BoundByteHistogram))
    }
}

/// `byte-histogram` (it has no parameters).
#[derive(Debug)]
struct BoundByteHistogram;

impl BoundKernel for BoundByteHistogram {
    fn framing(&self) -> Framing {
        Framing::Bytes
    }

    fn cpu(&self) -> Option<Box<dyn CpuRun>> {
        Some(Box::new(HistogramRun::new()))
    }

    fn device(&self) -> Option<Box<dyn DeviceRun>> {
        Some(Box::new(HistogramRun::new()))
    }
}

/// The counts so far (the CPU and the device run keep the same state).
struct HistogramRun {
    counts: Box<[u64; VALUES]>,
}

impl HistogramRun {
    fn new() -> Self {
        Self {
            counts: Box::new([0; VALUES]),
        }
    }

    fn render(&self, out: &mut Vec<u8>) {
        let mut text = String::new();
        for (value, &count) in self.counts.iter().enumerate() {
            if count > 0 {
                let _ = writeln!(text, "{value}\t{count}");
            }
        }
        let total: u64 = self.counts.iter().sum();
        let _ = writeln!(text, "total\t{total}");
        out.extend_from_slice(text.as_bytes());
    }
}

impl CpuRun for HistogramRun {
    fn feed(&mut self, chunk: &[u8], _out: &mut Vec<u8>) -> Result<(), KernelError> {
        let mut lanes = [[0u64; VALUES]; 4];
        let mut quads = chunk.chunks_exact(4);
        for q in &mut quads {
            lanes[0][usize::from(q[0])] += 1;
            lanes[1][usize::from(q[1])] += 1;
            lanes[2][usize::from(q[2])] += 1;
            lanes[3][usize::from(q[3])] += 1;
        }
        for &b in quads.remainder() {
            lanes[0][usize::from(b)] += 1;
        }
        for (v, count) in self.counts.iter_mut().enumerate() {
            *count += lanes[0][v] + lanes[1][v] + lanes[2][v] + lanes[3][v];
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), KernelError> {
        self.render(out);
        Ok(())
    }
}

impl DeviceRun for HistogramRun {
    fn plan(&mut self, chunk: &[u8]) -> Result<ChunkPlan, KernelError> {
        Ok(ChunkPlan {
            program: &PROGRAM,
            input: 0..chunk.len(),
            consts: Vec::new(),
            launch: Launch::Fixed {
                entry: "byte_histogram_blocks",
                items: block_items(chunk.len()),
                out_per_item: VALUES * 4,
            },
        })
    }

    fn accept(
        &mut self,
        chunk: &[u8],
        device_out: &[u8],
        _out: &mut Vec<u8>,
    ) -> Result<(), KernelError> {
        let words = device_words(device_out, block_items(chunk.len()), VALUES)?;
        for (i, count) in words.enumerate() {
            self.counts[i % VALUES] += u64::from(count);
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), KernelError> {
        self.render(out);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
