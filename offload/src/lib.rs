// SPDX-License-Identifier: Apache-2.0
//! # quarry-offload
//!
//! Will own execution: the `Backend` seam (one execution engine: what it can run, how busy it
//! is, run a job over a stream of chunks), the backends (WebAssembly workers, native CPU
//! kernels, OpenCL devices loaded at run time, simulated devices from `quarry-sim`), the
//! scheduler with its cost model, and the buffer pool that the store fills and functions read
//! in place.
//!
//! Nothing is implemented yet; this crate holds its place in the dependency order.
