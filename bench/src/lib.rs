// SPDX-License-Identifier: Apache-2.0
//! # quarry-bench
//!
//! Benchmarks for Quarry: criterion micro-benchmarks under `benches/` and the end-to-end
//! scenario harness behind the `scenario` binary.
//!
//! ## Overview
//!
//! - [`scenario`]: end-to-end scenarios that drive real processes over loopback and write a
//!   JSON report of **ratios against baselines measured in the same run**. Scenario `s3`
//!   measures PUT and GET throughput and latency against `quarryd` (started by the harness),
//!   the Ceph RADOS Gateway peer (`shared/tools/ceph-peer`), plain file I/O on the same disk,
//!   and an in-memory HTTP server (the ceiling of the HTTP path over loopback).
//! - `benches/store.rs`: `LocalStore` put/get against plain file write+fsync/read in the
//!   same directory (`cargo bench -p quarry-bench --bench store`).
//!
//! ## Example
//!
//! ```text
//! cargo build --release -p quarry-agent --bin quarryd
//! bash shared/tools/ceph-peer/start.sh
//! cargo run --release -p quarry-bench --bin scenario -- s3 \
//!     --ceph-env /tmp/ceph-peer/env --out bench/reports/s3-foundation.json
//! ```
//!
//! The same harness as a library, for a single plain-file cell:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use clap::Parser;
//! use quarry_bench::scenario::{self, Cli};
//! let Cli::S3(options) = Cli::parse_from(["scenario", "s3", "--targets", "plain"]);
//! let report = scenario::run_s3(&options).await?;
//! println!("{}", serde_json::to_string_pretty(&report)?);
//! # Ok(()) }
//! ```
//!
//! ## Design notes
//!
//! - Absolute numbers on shared 2-core VMs are noise; every figure that matters is a ratio of
//!   two cells measured back to back in one run, and the report carries each ratio's target
//!   and verdict.
//! - Load is closed-loop: N workers each issue one request at a time for a fixed time or op
//!   budget. Large payloads are one shared `Bytes`, so 32 workers PUTting 64 MiB hold 64 MiB
//!   of client memory, not 2 GiB.
//! - Targets are a closed set (an enum), so each cell calls the target directly, without a
//!   trait object.

pub mod scenario;
