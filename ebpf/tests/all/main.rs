// SPDX-License-Identifier: Apache-2.0
//! Integration tests of the eBPF VM and the built-in device programs.
#![allow(
    clippy::tests_outside_test_module,
    reason = "an integration-test crate is all tests"
)]

mod common;
mod twins;
mod vm;
