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
//!   two Ceph RADOS Gateway peers (`shared/tools/ceph-peer`: the judged one with
//!   `tcp_nodelay=1`, and one exactly as `start.sh` configures it, for context), plain file
//!   I/O on the same disk, and an in-memory HTTP server (the ceiling of the HTTP path over
//!   loopback). GETs of quarryd and plain files run warm (page cache) and cold (evicted
//!   before every op, read from disk); the large-GET target is judged cold.
//! - `benches/store.rs`: `LocalStore` put/get against plain file write+fsync/read in the
//!   same directory (`cargo bench -p quarry-bench --bench store`).
//! - Scenario `functions` ([`scenario::functions`]): a 1 KiB GET through an identity
//!   `after-get` trigger against the same GET without one (added p50 at most 30 us), and
//!   `wordcount.wasm` over 1 GiB in memory through the WebAssembly pool against native Rust
//!   (at least 0.5x a `memchr::memmem` count). `benches/functions.rs`: instance start, call and
//!   drop of the `noop` module in the pool (at most 5 us), and trigger matching among 1,000 and
//!   100,000 triggers (at most 200 ns).
//!
//! ## Example
//!
//! `start.sh` is shared and read-only, and its beast frontend has no `tcp_nodelay`; the
//! judged peer comes from a copy outside the repository with the option added:
//!
//! ```text
//! cargo build --release -p quarry-agent --bin quarryd
//! mkdir -p /tmp/ceph-nodelay-tools
//! cp shared/tools/ceph-peer/{start,stop}.sh /tmp/ceph-nodelay-tools/
//! sed -i 's|^rgw frontends = beast endpoint=$IP:$RGW_PORT$|& tcp_nodelay=1|' \
//!     /tmp/ceph-nodelay-tools/start.sh
//! CEPH_PEER_DIR=/tmp/ceph-nodelay CEPH_PEER_RGW_PORT=7481 CEPH_PEER_MON_PORT=3301 \
//!     bash /tmp/ceph-nodelay-tools/start.sh
//! CEPH_PEER_DIR=/tmp/ceph-default CEPH_PEER_RGW_PORT=7482 CEPH_PEER_MON_PORT=3302 \
//!     bash shared/tools/ceph-peer/start.sh
//! cargo run --release -p quarry-bench --bin scenario -- s3 \
//!     --ceph-env /tmp/ceph-nodelay/env --ceph-default-env /tmp/ceph-default/env \
//!     --out bench/reports/s3-foundation.json
//! ```
//!
//! Stop the peers with `CEPH_PEER_DIR=... bash shared/tools/ceph-peer/stop.sh --purge`.
//!
//! Storage functions: the scenario reads the example modules (`examples/functions/build.sh`
//! needs clang, lld, wasi-libc and wabt; see `examples/functions/README.md`) and starts the
//! quarryd binary built from this tree, whose admin API deploys the function and adds the
//! trigger. The criterion bench needs neither.
//!
//! ```text
//! examples/functions/build.sh target/functions
//! cargo build --release -p quarry-agent --bin quarryd
//! cargo run --release -p quarry-bench --bin scenario -- functions \
//!     --out bench/reports/functions.json
//! cargo bench -p quarry-bench --bench functions
//! ```
//!
//! The criterion medians are in `target/criterion/{instance,trigger_match}/*/new/estimates.json`
//! (`median.point_estimate`, in ns).
//!
//! The same harness as a library, for a single plain-file cell:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use clap::Parser;
//! use quarry_bench::scenario::{self, Cli};
//! let Cli::S3(options) = Cli::parse_from(["scenario", "s3", "--targets", "plain"]) else {
//!     anyhow::bail!("s3 parses as s3");
//! };
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
//! - A storage node serves objects from its disk, so the large-GET baseline is a plain read
//!   from the disk, not from the page cache. Cold reads use `posix_fadvise(DONTNEED)`, which
//!   needs no privilege, and the report proves with `preadv2(RWF_NOWAIT)` probes that it
//!   worked; where it does not, cold ratios say `not_measured`.
//! - Load is closed-loop: N workers each issue one request at a time for a fixed time or op
//!   budget. Large payloads are one shared `Bytes`, so 32 workers PUTting 64 MiB hold 64 MiB
//!   of client memory, not 2 GiB.
//! - Targets are a closed set (an enum), so each cell calls the target directly, without a
//!   trait object.

pub mod scenario;
