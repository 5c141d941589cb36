// SPDX-License-Identifier: Apache-2.0
//! # quarry-kernels
//!
//! Quarry's built-in kernels. Each kernel has a contract ([`KernelInfo`]: shape, framing, typed
//! parameters), a Rust CPU implementation ([`CpuRun`]) and, unless it is marked CPU-only, an
//! OpenCL C source with the host-side logic that drives it ([`DeviceRun`]). Both give the same
//! bytes for the same input and parameters, however the input is cut into chunks; the
//! differential tests in `offload` prove it.
//!
//! No I/O and no async runtime: pure functions over byte chunks. The engines that run kernels
//! (the CPU worker pool, the OpenCL executor) live in `quarry-offload`.
//!
//! The semantics of every kernel (parameters, output format) are documented in
//! `docs/kernels.md`; the device protocol is in [`device`].
//!
//! No unsafe code outside `simd` (AVX2 block masks, opened as a zone with its reason).

mod blocks;
pub mod byte_histogram;
pub mod contract;
pub mod crc32c;
pub mod csv;
pub mod csv_agg;
pub mod csv_filter;
pub mod decimal;
pub mod device;
pub mod framing;
pub mod grep;
pub mod jsonl_filter;
mod line_search;
pub mod lz4;
pub mod predicate;
pub mod reed_solomon;
pub mod registry;
mod simd;
#[cfg(test)]
mod test_utils;
pub mod xxh3;

pub use contract::{
    BoundKernel, CpuRun, Framing, Kernel, KernelError, KernelInfo, ParamSpec, ParamType, Params,
    Shape,
};
pub use device::{ChunkPlan, ClProgram, DeviceRun, Launch};
pub use framing::{Framer, FramingError};
pub use registry::{builtin, find};
