// SPDX-License-Identifier: Apache-2.0
//! The interceptor's integration tests, in one binary.

// The whole binary is test code; clippy's lint expects unit tests inside `#[cfg(test)]` modules.
#![allow(
    clippy::tests_outside_test_module,
    reason = "an integration test binary"
)]

mod store_crash;
mod store_model;
