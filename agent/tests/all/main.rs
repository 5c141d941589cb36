// SPDX-License-Identifier: Apache-2.0
//! Integration tests of the `quarryd` binary: configuration checks, first start, the
//! graceful drain on SIGTERM, and functions and triggers managed over the admin API and the
//! `quarry` CLI. (Client workflows are in `agent/tests/e2e`, with real clients.)
#![allow(
    clippy::tests_outside_test_module,
    reason = "an integration-test crate is all tests"
)]
#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test on any unexpected error"
)]

mod daemon;
mod functions;
