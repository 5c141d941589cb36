// SPDX-License-Identifier: Apache-2.0
//! `crc32c`: the CRC-32C (Castagnoli) of the whole input, as 8 lowercase hex digits.
//!
//! CPU: the `crc32c` crate (SSE 4.2 / ARMv8 CRC instructions, software tables elsewhere),
//! appended chunk by chunk. Device: each work-item computes the finished CRC of its 4096-byte
//! block; the host joins the block CRCs in order with `crc32c_combine` (the GF(2) shift of
//! the CRC so far by the block's length), so the result is the CRC of the concatenation.

use std::borrow::Cow;
use std::sync::Arc;

use crate::blocks::{BLOCK_BYTES, block_items, device_words};
use crate::contract::{
    BoundKernel, CpuRun, Framing, Kernel, KernelError, KernelInfo, Params, Shape,
};
use crate::device::{ChunkPlan, ClProgram, DeviceRun, Launch};

/// The `crc32c` kernel.
#[derive(Debug)]
pub struct Crc32c;

static INFO: KernelInfo = KernelInfo {
    name: Cow::Borrowed("crc32c"),
    summary: Cow::Borrowed("CRC-32C (Castagnoli) of the whole input, in hex"),
    shape: Shape::Reduce,
    params: Cow::Borrowed(&[]),
    cpu: true,
    opencl: true,
};

static PROGRAM: ClProgram = ClProgram {
    name: "builtin-crc32c",
    source: concat!(include_str!("../blocks.cl"), include_str!("crc32c.cl")),
    options: "",
};

impl Kernel for Crc32c {
    fn info(&self) -> &KernelInfo {
        &INFO
    }

    fn bind(&self, _params: &Params) -> Result<Arc<dyn BoundKernel>, KernelError> {
        Ok(Arc::new(BoundCrc32c))
    }
}

/// `crc32c` (it has no parameters).
#[derive(Debug)]
struct BoundCrc32c;

impl BoundKernel for BoundCrc32c {
    fn framing(&self) -> Framing {
        Framing::Bytes
    }

    fn cpu(&self) -> Option<Box<dyn CpuRun>> {
        Some(Box::new(Crc32cRun { crc: 0 }))
    }

    fn device(&self) -> Option<Box<dyn DeviceRun>> {
        Some(Box::new(Crc32cRun { crc: 0 }))
    }
}

/// The CRC of the input so far (the CPU and the device run keep the same state).
struct Crc32cRun {
    crc: u32,
}

/// The output line for a finished CRC.
fn render(crc: u32) -> Vec<u8> {
    format!("{crc:08x}\n").into_bytes()
}

impl CpuRun for Crc32cRun {
    fn feed(&mut self, chunk: &[u8], _out: &mut Vec<u8>) -> Result<(), KernelError> {
        self.crc = ::crc32c::crc32c_append(self.crc, chunk);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), KernelError> {
        out.extend_from_slice(&render(self.crc));
        Ok(())
    }
}

impl DeviceRun for Crc32cRun {
    fn plan(&mut self, chunk: &[u8]) -> Result<ChunkPlan, KernelError> {
        Ok(ChunkPlan {
            program: &PROGRAM,
            input: 0..chunk.len(),
            consts: Vec::new(),
            launch: Launch::Fixed {
                entry: "crc32c_blocks",
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
        let blocks = chunk.chunks(BLOCK_BYTES);
        for (block, crc) in blocks.zip(device_words(device_out, block_items(chunk.len()), 1)?) {
            self.crc = ::crc32c::crc32c_combine(self.crc, crc, block.len());
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), KernelError> {
        CpuRun::finish(self, out)
    }
}

#[cfg(test)]
mod tests;
