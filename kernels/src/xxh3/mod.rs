// SPDX-License-Identifier: Apache-2.0
//! `xxh3`: the XXH3-64 hash of the whole input (with a seed), as 16 lowercase hex digits.
//!
//! CPU: the `xxhash-rust` crate's streaming hasher. Device: XXH3's long-input loop is
//! sequential per 1024-byte block (add the block's stripes to eight accumulators, then
//! scramble them), but what a block adds does not depend on the accumulators. So each
//! work-item sums one block (`xxh3.cl`), and the host applies the sums in stream order with a
//! scramble after each (8 multiplications per KiB) and hashes the last 1 to 1024 bytes itself
//! (`long`). Blocks are aligned to the whole input, not to the chunk: the bytes before a
//! chunk's first aligned block, and a block that ends the chunk (it might be the input's last,
//! which XXH3 treats differently), are held on the host and summed there. Inputs of at most
//! 240 bytes never reach the device: XXH3 hashes them by other paths, which the crate runs.

mod long;

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;

use crate::contract::{
    BoundKernel, CpuRun, Framing, Kernel, KernelError, KernelInfo, ParamSpec, ParamType, Params,
    Shape,
};
use crate::device::{ChunkPlan, ClProgram, DeviceRun, Launch};
use long::{BLOCK_BYTES, Lanes, SECRET_BYTES, STRIPE_BYTES};

/// The `xxh3` kernel.
#[derive(Debug)]
pub struct Xxh3;

const PARAMS: &[ParamSpec] = &[ParamSpec {
    name: "seed",
    ty: ParamType::UInt {
        min: 0,
        max: u64::MAX,
    },
    default: Some("0"),
    doc: "the XXH3 seed, 0 to 18446744073709551615",
}];

static INFO: KernelInfo = KernelInfo {
    name: Cow::Borrowed("xxh3"),
    summary: Cow::Borrowed("XXH3-64 hash of the whole input (seeded), in hex"),
    shape: Shape::Reduce,
    params: Cow::Borrowed(PARAMS),
    cpu: true,
    opencl: true,
};

static PROGRAM: ClProgram = ClProgram {
    name: "builtin-xxh3",
    source: include_str!("xxh3.cl"),
    options: "",
};

/// Bytes a work-item writes: the eight accumulator sums of its block.
const SUM_BYTES: usize = 64;

impl Kernel for Xxh3 {
    fn info(&self) -> &KernelInfo {
        &INFO
    }

    fn bind(&self, params: &Params) -> Result<Arc<dyn BoundKernel>, KernelError> {
        Ok(Arc::new(BoundXxh3 {
            seed: params.uint("seed")?,
        }))
    }
}

/// `xxh3` with its seed.
#[derive(Debug)]
struct BoundXxh3 {
    seed: u64,
}

impl BoundKernel for BoundXxh3 {
    fn framing(&self) -> Framing {
        Framing::Bytes
    }

    fn cpu(&self) -> Option<Box<dyn CpuRun>> {
        Some(Box::new(Xxh3CpuRun {
            hasher: ::xxhash_rust::xxh3::Xxh3::with_seed(self.seed),
        }))
    }

    fn device(&self) -> Option<Box<dyn DeviceRun>> {
        Some(Box::new(Xxh3DeviceRun::new(self.seed)))
    }
}

/// The output line for a finished hash.
fn render(hash: u64) -> Vec<u8> {
    format!("{hash:016x}\n").into_bytes()
}

/// One `xxh3` job on the CPU.
struct Xxh3CpuRun {
    hasher: ::xxhash_rust::xxh3::Xxh3,
}

impl CpuRun for Xxh3CpuRun {
    fn feed(&mut self, chunk: &[u8], _out: &mut Vec<u8>) -> Result<(), KernelError> {
        self.hasher.update(chunk);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), KernelError> {
        out.extend_from_slice(&render(self.hasher.digest()));
        Ok(())
    }
}

/// The blocks of a chunk that go to the device: those aligned to the whole input (the chunk
/// starts `offset` bytes into it) that end before the chunk does, as a range of the chunk
/// (`len..len` when there are none, so that the bytes before the range are always held).
fn device_range(offset: u64, len: usize) -> Range<usize> {
    let block = BLOCK_BYTES as u64;
    let misalign = offset % block;
    let lead = usize::try_from((block - misalign) % block).unwrap_or(usize::MAX);
    let blocks = len.saturating_sub(lead).saturating_sub(1) / BLOCK_BYTES;
    if blocks == 0 {
        // Nothing for the device: the whole chunk is held (the range is empty at its end).
        return len..len;
    }
    lead..lead + blocks * BLOCK_BYTES
}

/// One `xxh3` job on a device. `plan` and `accept` each track their own input offset (the
/// executor may plan ahead), and derive the same device range from it.
struct Xxh3DeviceRun {
    seed: u64,
    secret: [u8; SECRET_BYTES],
    /// Input bytes planned so far.
    planned: u64,
    /// Input bytes accepted so far.
    accepted: u64,
    /// The accumulators after every block summed so far.
    acc: Lanes,
    /// The input after the last block summed (it starts on a block edge).
    held: Vec<u8>,
    /// The last stripe's worth of bytes before `held` (zeros until a block is summed).
    before_held: [u8; STRIPE_BYTES],
}

impl Xxh3DeviceRun {
    fn new(seed: u64) -> Self {
        Self {
            seed,
            secret: long::secret_for(seed),
            planned: 0,
            accepted: 0,
            acc: long::INITIAL_ACC,
            held: Vec::new(),
            before_held: [0; STRIPE_BYTES],
        }
    }

    /// Sums the held blocks on the host: all of them when `followed` (more input is known to
    /// come after them), else all but one that ends the held bytes (it may be the last).
    fn sum_held(&mut self, followed: bool) {
        let blocks = if followed {
            self.held.len() / BLOCK_BYTES
        } else {
            self.held.len().saturating_sub(1) / BLOCK_BYTES
        };
        if blocks == 0 {
            return;
        }
        for block in self.held.chunks_exact(BLOCK_BYTES).take(blocks) {
            let sum = long::block_sum(block, &self.secret);
            long::apply_block(&mut self.acc, &sum, &self.secret);
        }
        let end = blocks * BLOCK_BYTES;
        self.before_held
            .copy_from_slice(&self.held[end - STRIPE_BYTES..end]);
        self.held.drain(..end);
    }
}

/// The eight little-endian u64 of one work-item's output.
fn read_sum(bytes: &[u8]) -> Lanes {
    let mut sum = [0; 8];
    for (lane, word) in sum.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut le = [0u8; 8];
        le.copy_from_slice(word);
        *lane = u64::from_le_bytes(le);
    }
    sum
}

impl DeviceRun for Xxh3DeviceRun {
    fn plan(&mut self, chunk: &[u8]) -> Result<ChunkPlan, KernelError> {
        let input = device_range(self.planned, chunk.len());
        self.planned += chunk.len() as u64;
        Ok(ChunkPlan {
            program: &PROGRAM,
            launch: Launch::Fixed {
                entry: "xxh3_blocks",
                items: input.len() / BLOCK_BYTES,
                out_per_item: SUM_BYTES,
            },
            input,
            consts: self.secret.to_vec(),
        })
    }

    fn accept(
        &mut self,
        chunk: &[u8],
        device_out: &[u8],
        _out: &mut Vec<u8>,
    ) -> Result<(), KernelError> {
        let range = device_range(self.accepted, chunk.len());
        self.accepted += chunk.len() as u64;
        let blocks = range.len() / BLOCK_BYTES;
        if device_out.len() != blocks * SUM_BYTES {
            return Err(KernelError::Input(format!(
                "the device returned {} bytes where {blocks} work-items write {}",
                device_out.len(),
                blocks * SUM_BYTES
            )));
        }
        self.held.extend_from_slice(&chunk[..range.start]);
        if blocks == 0 {
            self.sum_held(false);
            return Ok(());
        }
        self.sum_held(true);
        for sum in device_out.chunks_exact(SUM_BYTES) {
            long::apply_block(&mut self.acc, &read_sum(sum), &self.secret);
        }
        self.before_held
            .copy_from_slice(&chunk[range.end - STRIPE_BYTES..range.end]);
        self.held.clear();
        self.held.extend_from_slice(&chunk[range.end..]);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), KernelError> {
        let hash = if self.accepted <= long::MID_SIZE_MAX as u64 {
            // Nothing was summed: `held` is the whole input.
            ::xxhash_rust::xxh3::xxh3_64_with_seed(&self.held, self.seed)
        } else {
            long::finish(
                &self.acc,
                &self.held,
                &self.before_held,
                self.accepted,
                &self.secret,
            )
        };
        out.extend_from_slice(&render(hash));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
