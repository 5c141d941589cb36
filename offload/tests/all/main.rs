// SPDX-License-Identifier: Apache-2.0
//! The offload crate's integration tests, in one binary.

#![allow(
    clippy::tests_outside_test_module,
    clippy::unwrap_used,
    reason = "an integration test binary"
)]

mod kernels_diff;
mod native;
mod opencl;
mod scheduler;
mod sim;
mod wasm;
