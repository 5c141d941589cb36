// SPDX-License-Identifier: Apache-2.0
//! Command-line options of the scenario harness.
//!
//! Options are parsed once, here, into typed values: sizes in bytes, durations, a target set.
//! Defaults are the figures the foundation report was taken with.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, ValueEnum};
use serde::Serialize;

/// The scenario harness: each subcommand is one scenario.
#[derive(Debug, Parser)]
#[command(
    name = "scenario",
    about = "Quarry end-to-end scenarios with a JSON report of ratios"
)]
pub enum Cli {
    /// PUT/GET throughput and latency: quarryd vs the Ceph peer vs plain file I/O, with cold
    /// (from disk) and warm (page cache) GETs.
    S3(S3Options),
    /// Storage functions: a 1 KiB GET through an identity `after-get` trigger against the same
    /// GET without one (quarryd), and wordcount in WebAssembly against native Rust over 1 GiB
    /// in memory.
    Functions(FunctionsOptions),
    /// Built-in kernels: GB/s on one CPU core and on every OpenCL device, host-to-device
    /// bandwidth per device and the pipelined device path against it.
    Kernels(KernelsOptions),
    /// The read path against the disk: fio (io_uring, O_DIRECT) as the ceiling, std::fs and
    /// tokio::fs, and quarryd GETs (plain and through the grep kernel), cold and warm, all on
    /// one file; bandwidth and CPU seconds per GB.
    IoPath(super::io_path::IoPathOptions),
    /// Placement: over input sizes x built-in kernels x this machine's backends (native CPU,
    /// OpenCL devices), how often the scheduler's pick is the backend that finishes first.
    Scheduler(super::scheduler::SchedulerOptions),
    /// Simulated hardware: a scan of an object on a computational SSD, timed by the quarry-sim
    /// models for the host CPU, a GPU, an FPGA card and the drive itself over kernel x drive x
    /// object size x selectivity, the scheduler's choice at every point, and the model's
    /// invariants (exits non-zero when one fails).
    SimHw(super::sim_hw::SimHwOptions),
}

/// One system the `s3` scenario measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// `quarryd`, started by the harness on a fresh data dir.
    Quarryd,
    /// The Ceph RADOS Gateway peer the latency ratios are judged against, already running
    /// (see `--ceph-env`); its beast frontend should have `tcp_nodelay=1`.
    Ceph,
    /// A second Ceph peer exactly as `shared/tools/ceph-peer/start.sh` configures it (no
    /// `tcp_nodelay`), for context (see `--ceph-default-env`).
    #[value(name = "ceph_default")]
    CephDefault,
    /// Plain file write (with and without fsync) and read in the same directory.
    Plain,
    /// An in-process HTTP server answering from memory: the ceiling of the HTTP path.
    Loopback,
}

impl TargetKind {
    /// The name used in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quarryd => "quarryd",
            Self::Ceph => "ceph",
            Self::CephDefault => "ceph_default",
            Self::Plain => "plain",
            Self::Loopback => "loopback",
        }
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Options of the `s3` scenario.
#[derive(Debug, Clone, Args)]
pub struct S3Options {
    /// Targets to measure, in this order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "quarryd,ceph,ceph_default,plain,loopback"
    )]
    pub targets: Vec<TargetKind>,

    /// Object sizes (B, KiB, MiB, GiB; powers of two).
    #[arg(long, value_delimiter = ',', default_value = "4KiB,1MiB,64MiB", value_parser = parse_size)]
    pub sizes: Vec<u64>,

    /// Numbers of concurrent workers; each keeps one request in flight.
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    pub concurrency: Vec<usize>,

    /// How long each (target, op, size, concurrency) cell runs; every worker completes at
    /// least one op even past this time.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub duration_per_cell: Duration,

    /// Most ops one cell runs.
    #[arg(long, default_value_t = 20_000)]
    pub max_ops_per_cell: u64,

    /// Most bytes one cell moves (bounds disk and the peer's RAM-backed store; at least one op
    /// per worker still runs).
    #[arg(long, default_value = "2GiB", value_parser = parse_size)]
    pub max_bytes_per_cell: u64,

    /// Longest time one S3 request may take; a request past it fails its cell.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// Where the JSON report is written.
    #[arg(long, default_value = "target/scenario/s3-report.json")]
    pub out: PathBuf,

    /// The quarryd binary to start.
    #[arg(long, default_value = "target/release/quarryd")]
    pub quarryd: PathBuf,

    /// Seconds quarryd idles after it reports healthy, before its idle RSS is read.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub settle: Duration,

    /// The `KEY=VALUE` env file of the judged Ceph peer (`$CEPH_PEER_DIR/env`): one started
    /// from a copy of `start.sh` with `tcp_nodelay=1` added to `rgw frontends`. Without it
    /// the `ceph` target is skipped, and the report says so.
    #[arg(long)]
    pub ceph_env: Option<PathBuf>,

    /// The env file of a Ceph peer started by `start.sh` as it is (beast without
    /// `tcp_nodelay`), measured for context. Without it `ceph_default` is skipped.
    #[arg(long)]
    pub ceph_default_env: Option<PathBuf>,

    /// Directory for quarryd's data dir and the plain-file baseline (same disk for both).
    /// A fresh subdirectory is made per run and removed afterwards.
    #[arg(long, default_value = "target/scenario/work")]
    pub work_dir: PathBuf,

    /// Keep the per-run work subdirectory (quarryd's data and log) instead of removing it.
    #[arg(long)]
    pub keep_work: bool,
}

/// One part of the `functions` scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FunctionsPart {
    /// GETs of one small object with and without an identity `after-get` trigger, interleaved,
    /// against quarryd started by the harness.
    Get,
    /// wordcount.wasm through the WebAssembly pool in-process against native Rust.
    Wordcount,
}

impl FunctionsPart {
    /// The name used in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Wordcount => "wordcount",
        }
    }
}

impl fmt::Display for FunctionsPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Options of the `functions` scenario.
#[derive(Debug, Clone, Args)]
pub struct FunctionsOptions {
    /// Parts to run, in this order.
    #[arg(long, value_delimiter = ',', default_value = "get,wordcount")]
    pub parts: Vec<FunctionsPart>,

    /// Timed GETs per side (with and without the trigger), issued one at a time, the two
    /// sides interleaved.
    #[arg(long, default_value_t = 2000)]
    pub requests: usize,

    /// Untimed GETs per side before the timed ones (connection, caches, the pool's first
    /// instances).
    #[arg(long, default_value_t = 200)]
    pub warmup_requests: usize,

    /// Size of the object the GETs read.
    #[arg(long, default_value = "1KiB", value_parser = parse_size)]
    pub object_size: u64,

    /// Size of the text wordcount reads (held in memory, generated from a fixed seed).
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    pub wordcount_size: u64,

    /// Size of the chunks the text is fed to the function in.
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    pub chunk_size: u64,

    /// The word wordcount counts lines of.
    #[arg(long, default_value = "banana")]
    pub word: String,

    /// Timed wordcount runs per side (native and wasm interleaved); the median is judged.
    #[arg(long, default_value_t = 3)]
    pub wordcount_runs: usize,

    /// Where `examples/functions/build.sh` put the modules (`identity.wasm`,
    /// `wordcount.wasm`).
    #[arg(long, default_value = "target/functions")]
    pub functions_dir: PathBuf,

    /// Longest time one S3 or admin request may take.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// Where the JSON report is written.
    #[arg(long, default_value = "target/scenario/functions-report.json")]
    pub out: PathBuf,

    /// The quarryd binary to start.
    #[arg(long, default_value = "target/release/quarryd")]
    pub quarryd: PathBuf,

    /// Directory for quarryd's data dir; a fresh subdirectory is made per run and removed
    /// afterwards.
    #[arg(long, default_value = "target/scenario/work")]
    pub work_dir: PathBuf,

    /// Keep the per-run work subdirectory (quarryd's data and log).
    #[arg(long)]
    pub keep_work: bool,
}

/// Options of the `kernels` scenario.
#[derive(Debug, Clone, Args)]
pub struct KernelsOptions {
    /// Input bytes per kernel (generated from a fixed seed, held in memory); use a small size
    /// such as 64MiB for a quick smoke run.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    pub size: u64,

    /// Size of the pieces the input is fed in (as the store hands out buffers).
    #[arg(long, default_value = "8MiB", value_parser = parse_size)]
    pub piece_size: u64,

    /// Bytes per device chunk.
    #[arg(long, default_value = "8MiB", value_parser = parse_size)]
    pub chunk_size: u64,

    /// Chunks in flight per device (2: double buffering).
    #[arg(long, default_value_t = 2)]
    pub in_flight: usize,

    /// Timed runs per figure (after one untimed run); the best is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,

    /// Where the JSON report is written.
    #[arg(long, default_value = "target/scenario/kernels-report.json")]
    pub out: PathBuf,
}

/// Parses `4KiB`, `1MiB`, `64M`, `4096`: binary units, optional `B`/`iB` suffix.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` does not start with a number"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{text}` (use KiB, MiB, GiB)"
            ));
        }
    };
    let size = value.checked_shl(shift).filter(|s| s >> shift == value);
    match size {
        Some(0) => Err(format!("size `{text}` is zero")),
        Some(size) => Ok(size),
        None => Err(format!("size `{text}` is too large")),
    }
}

/// A short label for a size: `4KiB`, `1MiB`, `1500B`.
pub fn size_label(size: u64) -> String {
    const UNITS: [(u32, &str); 3] = [(30, "GiB"), (20, "MiB"), (10, "KiB")];
    for (shift, unit) in UNITS {
        if size >= 1 << shift && size.trailing_zeros() >= shift {
            return format!("{}{unit}", size >> shift);
        }
    }
    format!("{size}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("1500"), Ok(1500));
        assert!(parse_size("0").is_err());
        assert!(parse_size("4XB").is_err());
        assert!(parse_size("KiB").is_err());
    }

    #[test]
    fn labels_round_trip_through_the_parser() {
        for size in [4096, 1 << 20, 64 << 20, 1500, 3 << 30] {
            assert_eq!(parse_size(&size_label(size)), Ok(size));
        }
        assert_eq!(size_label(4096), "4KiB");
        assert_eq!(size_label(1536), "1536B");
    }

    #[test]
    fn target_names_parse_as_the_report_writes_them() {
        for kind in TargetKind::value_variants() {
            assert_eq!(TargetKind::from_str(kind.as_str(), false), Ok(*kind));
        }
    }

    #[test]
    fn defaults_are_the_foundation_matrix() {
        let Cli::S3(options) = Cli::parse_from(["scenario", "s3"]) else {
            panic!("s3 parses as s3");
        };
        assert_eq!(
            options.targets,
            [
                TargetKind::Quarryd,
                TargetKind::Ceph,
                TargetKind::CephDefault,
                TargetKind::Plain,
                TargetKind::Loopback
            ]
        );
        assert_eq!(options.sizes, [4096, 1 << 20, 64 << 20]);
        assert_eq!(options.concurrency, [1, 32]);
        assert_eq!(options.duration_per_cell, Duration::from_secs(2));
        assert!(options.ceph_env.is_none() && options.ceph_default_env.is_none());
    }

    #[test]
    fn functions_defaults_are_the_issue_figures() {
        let Cli::Functions(options) = Cli::parse_from(["scenario", "functions"]) else {
            panic!("functions parses as functions");
        };
        assert_eq!(
            options.parts,
            [FunctionsPart::Get, FunctionsPart::Wordcount]
        );
        assert_eq!(options.requests, 2000);
        assert_eq!(options.object_size, 1024);
        assert_eq!(options.wordcount_size, 1 << 30);
        assert_eq!(options.chunk_size, 1 << 20);
        assert_eq!(options.word, "banana");
    }
}
