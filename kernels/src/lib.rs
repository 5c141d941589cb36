// SPDX-License-Identifier: Apache-2.0
#![forbid(unsafe_code)]
//! # quarry-kernels
//!
//! Will own Quarry's built-in kernels: the kernel contract (shape: map, filter, reduce,
//! stream; framing: bytes, lines, fixed-size records, CSV rows; typed parameters), and for
//! each kernel a Rust CPU implementation and an OpenCL C source that give bit-identical
//! results. No I/O and no async runtime: pure functions over byte chunks.
//!
//! Nothing is implemented yet; this crate holds its place in the dependency order
//! (`kernels`, `ebpf` → `sim` → `offload` → `interceptor` → `agent`).
