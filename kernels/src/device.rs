// SPDX-License-Identifier: Apache-2.0
//! The device protocol: how a kernel's OpenCL variant is driven, chunk by chunk.
//!
//! A kernel's host side ([`DeviceRun`], pure Rust, in this crate) plans each chunk
//! ([`ChunkPlan`]); the OpenCL executor in `quarry-offload` runs the plan on a device and hands
//! the device's output back to [`DeviceRun::accept`], in chunk order. The executor is generic: it
//! knows nothing of any kernel beyond the plan. Every OpenCL entry point has one of the
//! signatures below (`in` is the chunk's planned input range, `len` its length in bytes,
//! `consts` the plan's constant bytes, at least 8 bytes long so that it is never empty).
//!
//! [`Launch::Fixed`] — one pass, fixed output per work-item:
//!
//! ```c
//! __kernel void ENTRY(__global const uchar *in, const ulong len,
//!                     __global const uchar *consts, __global uchar *out);
//! // work-item i writes out[i * out_per_item .. (i + 1) * out_per_item]
//! ```
//!
//! [`Launch::CountEmit`] — variable output (filters, maps), in up to three passes:
//!
//! ```c
//! // optional: one value per work-item; the executor computes prefix[i] = scan[0] + .. + scan[i-1]
//! __kernel void SCAN(__global const uchar *in, const ulong len,
//!                    __global const uchar *consts, __global uint *scan);
//! // the number of output bytes work-item i will write (prefix is all zeros without SCAN)
//! __kernel void COUNT(__global const uchar *in, const ulong len,
//!                     __global const uchar *consts, __global const uint *prefix,
//!                     __global uint *counts);
//! // writes exactly counts[i] bytes at out + offsets[i]; offsets[i] = counts[0] + .. + counts[i-1]
//! __kernel void EMIT(__global const uchar *in, const ulong len,
//!                    __global const uchar *consts, __global const uint *prefix,
//!                    __global const uint *offsets, __global uchar *out);
//! ```
//!
//! Work-items are one-dimensional; the executor picks the local size. The sources are built
//! with `-cl-std=CL1.2`; kernels use only 32- and 64-bit integer arithmetic (no floating
//! point), so every conforming device gives the same bytes.

use std::fmt;
use std::ops::Range;

use crate::contract::KernelError;

/// An OpenCL C program: built once per device (and cached) by the executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClProgram {
    /// A name unique among programs (the build cache key, with the source's hash).
    pub name: &'static str,
    /// The OpenCL C source.
    pub source: &'static str,
    /// Extra build options (beyond `-cl-std=CL1.2`).
    pub options: &'static str,
}

/// The passes to run over one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    /// One pass; work-item `i` writes `out_per_item` bytes at `i * out_per_item`.
    Fixed {
        /// The entry point.
        entry: &'static str,
        /// Work-items to launch (0: nothing runs, the output is empty).
        items: usize,
        /// Output bytes per work-item.
        out_per_item: usize,
    },
    /// Optional scan, then count, then emit (see the module docs).
    CountEmit {
        /// The scan entry point, if the kernel needs one (e.g. CSV quote parity).
        scan: Option<&'static str>,
        /// The count entry point.
        count: &'static str,
        /// The emit entry point.
        emit: &'static str,
        /// Work-items to launch (0: nothing runs, the output is empty).
        items: usize,
    },
}

/// What to run on a device for one chunk.
#[derive(Clone, PartialEq, Eq)]
pub struct ChunkPlan {
    /// The program holding the entry points.
    pub program: &'static ClProgram,
    /// The part of the chunk to upload as `in` (usually all of it).
    pub input: Range<usize>,
    /// Bytes for the `consts` argument (parameters, tables, carried state); the executor
    /// pads an empty or short vector to 8 bytes.
    pub consts: Vec<u8>,
    /// The passes.
    pub launch: Launch,
}

impl fmt::Debug for ChunkPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkPlan")
            .field("program", &self.program.name)
            .field("input", &self.input)
            .field("consts", &self.consts.len())
            .field("launch", &self.launch)
            .finish()
    }
}

/// The host side of one job on a device: plans chunks, takes their device output in order,
/// and produces the job's output bytes.
pub trait DeviceRun: Send {
    /// Plans one chunk of whole records. Called in chunk order; the executor may plan chunk
    /// `i + 1` before [`DeviceRun::accept`] of chunk `i`, so a plan may depend only on the
    /// chunks planned before, never on their device results.
    fn plan(&mut self, chunk: &[u8]) -> Result<ChunkPlan, KernelError>;
    /// Takes the device output for `chunk` (in chunk order), appending job output to `out`.
    fn accept(
        &mut self,
        chunk: &[u8],
        device_out: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), KernelError>;
    /// Ends the input, appending the remaining output to `out`.
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), KernelError>;
}
