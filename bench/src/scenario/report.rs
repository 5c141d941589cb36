// SPDX-License-Identifier: Apache-2.0
//! The JSON report of the `s3` scenario: per-cell results, target facts and the ratios.
//!
//! The report is the product; the numbers in it are only as good as their context, so every
//! report carries the machine, the settings, the caveats, and for each target whether it ran,
//! was skipped (and why) or failed (and how). A ratio whose inputs are missing says
//! `not_measured` with the reason, never `pass`.

use serde::Serialize;

use super::load::CellOutcome;
use super::machine::{MachineInfo, RssSample};
use super::options::{TargetKind, size_label};
use super::page_cache::{self, EvictionCheck};

/// Version of this report's shape; bump when a field changes meaning.
/// 2: GET split into `get_warm` and `get_cold`; the `page_cache` self-test; ratio names.
pub const FORMAT_VERSION: u32 = 2;

/// One kind of operation a cell measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// A durable write: S3 PUT, or plain write + fsync.
    Put,
    /// Plain write without fsync (page cache only); the plain target alone has it.
    PutNofsync,
    /// A whole-object read of data just written: from the page cache for quarryd and plain
    /// files, from RAM for the Ceph peer (memstore) and the loopback server.
    GetWarm,
    /// A whole-object read after the target's files were dropped from the page cache: from
    /// the disk. Only targets whose files the harness can reach (quarryd, plain) have it.
    GetCold,
}

impl Op {
    /// The name used in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Put => "put",
            Self::PutNofsync => "put_nofsync",
            Self::GetWarm => "get_warm",
            Self::GetCold => "get_cold",
        }
    }
}

/// The whole report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Always `s3`.
    pub scenario: &'static str,
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// RFC 3339 start time.
    pub started_at: String,
    /// RFC 3339 end time.
    pub finished_at: String,
    /// `git describe --always --dirty` of the directory the harness ran in, when known.
    pub revision: Option<String>,
    /// Where it ran.
    pub machine: MachineInfo,
    /// With which options.
    pub settings: Settings,
    /// What the numbers do and do not say.
    pub caveats: Vec<&'static str>,
    /// Whether cold reads are cold on this machine: the eviction self-test.
    pub page_cache: page_cache::SelfTest,
    /// Per target: ran, skipped or failed, and its facts.
    pub targets: Vec<TargetReport>,
    /// One entry per (target, op, size, concurrency) cell that completed.
    pub results: Vec<CellResult>,
    /// The figures that matter, each with its target and verdict.
    pub ratios: Vec<Ratio>,
    /// Counts of ratio verdicts.
    pub summary: Summary,
}

/// The options a report was taken with.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Targets asked for.
    pub targets: Vec<TargetKind>,
    /// Object sizes in bytes.
    pub sizes: Vec<u64>,
    /// Concurrency levels.
    pub concurrency: Vec<usize>,
    /// Time budget of one cell in seconds.
    pub duration_per_cell_s: f64,
    /// Op budget of one cell.
    pub max_ops_per_cell: u64,
    /// Byte budget of one cell.
    pub max_bytes_per_cell: u64,
    /// The work directory (quarryd data and plain files).
    pub work_dir: String,
}

/// Whether a target was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetStatus {
    /// All its cells ran.
    Ran,
    /// Not measured, on purpose; `message` says why and how to include it.
    Skipped,
    /// Something failed; `message` has the error. Cells before the failure are in `results`.
    Failed,
}

/// What happened to one target.
#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    /// Which target.
    pub target: TargetKind,
    /// Ran, skipped or failed.
    pub status: TargetStatus,
    /// Why it was skipped, or the error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The S3 endpoint, for S3 targets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The directory written, for the plain target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// Process facts, for quarryd.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarryd: Option<QuarrydFacts>,
    /// What else happened to the target (cleanup outcome).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl TargetReport {
    /// A target about to run.
    pub fn new(target: TargetKind) -> Self {
        Self {
            target,
            status: TargetStatus::Ran,
            message: None,
            endpoint: None,
            dir: None,
            quarryd: None,
            notes: Vec::new(),
        }
    }
}

/// What the harness saw of the quarryd process.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QuarrydFacts {
    /// The binary started.
    pub binary: String,
    /// Its process id.
    pub pid: u32,
    /// Seconds from spawn to a 200 from `/health`.
    pub start_s: f64,
    /// Resident memory after start and the settle time, before any load.
    pub idle: Option<RssSample>,
    /// Resident memory after the last cell (and the peak over the run).
    pub after_run: Option<RssSample>,
    /// Seconds from SIGTERM to exit.
    pub shutdown_s: Option<f64>,
    /// The exit status after SIGTERM.
    pub exit_status: Option<String>,
}

/// One measured cell.
#[derive(Debug, Clone, Serialize)]
pub struct CellResult {
    /// Which target.
    pub target: TargetKind,
    /// Which operation.
    pub op: Op,
    /// Object size in bytes.
    pub size_bytes: u64,
    /// Object size, readable.
    pub size: String,
    /// Workers with one op in flight each.
    pub concurrency: usize,
    /// Ops completed.
    pub ops: u64,
    /// Payload bytes moved.
    pub bytes: u64,
    /// Wall time of the cell.
    pub seconds: f64,
    /// Throughput, 10^6 bytes per second.
    pub mb_per_s: f64,
    /// Mean latency (far above p50 when a few ops stall).
    pub mean_ms: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 99th-percentile latency (nearest rank; the maximum below 100 ops).
    pub p99_ms: f64,
    /// Slowest op.
    pub max_ms: f64,
    /// Cold cells: mean untimed time per worker spent evicting before its ops, excluded
    /// from `seconds` and from the latencies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub untimed_setup_ms: Option<f64>,
    /// Cold cells: the eviction check run before the cell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eviction: Option<EvictionCheck>,
}

impl CellResult {
    /// Summarises a cell's outcome.
    pub fn new(
        target: TargetKind,
        op: Op,
        size: u64,
        concurrency: usize,
        outcome: &CellOutcome,
    ) -> Self {
        Self {
            target,
            op,
            size_bytes: size,
            size: size_label(size),
            concurrency,
            ops: outcome.ops,
            bytes: outcome.bytes,
            seconds: round3(outcome.elapsed.as_secs_f64()),
            mb_per_s: round3(outcome.mb_per_s()),
            mean_ms: round3(outcome.mean_ms()),
            p50_ms: round3(outcome.percentile_ms(50)),
            p99_ms: round3(outcome.percentile_ms(99)),
            max_ms: round3(outcome.percentile_ms(100)),
            untimed_setup_ms: (op == Op::GetCold)
                .then(|| round3(outcome.setup.as_secs_f64() * 1e3)),
            eviction: None,
        }
    }
}

/// Three decimals are more than the noise allows; more digits only make the report harder
/// to read.
pub fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// How a ratio's value must compare with its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Comparison {
    /// The value must be at least the target.
    #[serde(rename = ">=")]
    AtLeast,
    /// The value must be at most the target.
    #[serde(rename = "<=")]
    AtMost,
}

/// A ratio's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The value meets the target.
    Pass,
    /// The value misses the target.
    Fail,
    /// An input is missing; `reason` says which.
    NotMeasured,
    /// Reported for context; there is no target.
    Info,
}

impl Verdict {
    /// The name used in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::NotMeasured => "not_measured",
            Self::Info => "info",
        }
    }
}

/// One figure of merit.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    /// Stable identifier.
    pub name: String,
    /// What it compares, in words.
    pub description: String,
    /// The value, when measured.
    pub value: Option<f64>,
    /// How `value` must compare with `target`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
    /// The goal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    /// Pass, fail, not measured, or info.
    pub status: Verdict,
    /// Why it was not measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Counts of verdicts.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Summary {
    /// Ratios meeting their target.
    pub pass: usize,
    /// Ratios missing their target.
    pub fail: usize,
    /// Ratios with a missing input.
    pub not_measured: usize,
    /// Targets that failed.
    pub failed_targets: usize,
}

impl Summary {
    /// Counts verdicts and failed targets.
    pub fn new(ratios: &[Ratio], targets: &[TargetReport]) -> Self {
        let count = |v: Verdict| ratios.iter().filter(|r| r.status == v).count();
        Self {
            pass: count(Verdict::Pass),
            fail: count(Verdict::Fail),
            not_measured: count(Verdict::NotMeasured),
            failed_targets: targets
                .iter()
                .filter(|t| t.status == TargetStatus::Failed)
                .count(),
        }
    }
}

/// What every reader of the report should know before quoting a number.
pub const CAVEATS: [&str; 15] = [
    "Absolute numbers on shared 2-core VMs are noise: compare the ratios, whose two sides are \
     measured back to back in the same run.",
    "GETs of quarryd and plain files run twice. get_cold: before every timed op the files are \
     dropped from the page cache with posix_fadvise(POSIX_FADV_DONTNEED) (untimed; plain: the \
     worker's file, quarryd: every file under <data dir>/data, which are named by id, not by \
     key), so the read comes from the disk; page_cache shows the self-test that proves \
     eviction works here, and each cold cell's `eviction` its own check. get_warm: the data \
     just written, from the page cache. The judged large-GET ratio is the cold one.",
    "Cold means not in this VM's page cache. The disk is virtual (virtio): the host may cache \
     it, so cold reads measure the VM's block path, which may be faster than the physical \
     media. Metadata stays cached on both sides: the plain file's inode and directory entry, \
     quarryd's index (index.redb) and its data files' inodes.",
    "Cold cells: each worker's first op reads what the cell's eviction check evicted just \
     before; its later ops evict first. A quarryd worker evicts every data file, which can \
     also drop pages another worker's GET has read ahead: cold quarryd cells with several \
     ops per worker at concurrency 32 (4 KiB, 1 MiB) err on the slow side. The 64 MiB cells \
     at concurrency 32 have one op per worker, so no eviction overlaps a GET there.",
    "posix_fadvise(DONTNEED) is advice: here it occasionally leaves a file cached for a \
     moment (a page a recent write or read still holds). Every eviction makes two calls; \
     each cold cell's check retries over ~300 ms and reports cached pages after the first \
     eviction and after the retries; a cold ratio whose cells still had cached pages is \
     not_measured.",
    "Cold reads go to a shared virtual disk whose throughput here swings by 2x or more from \
     minute to minute with the neighbours' I/O, and the two sides of a cold ratio are \
     measured minutes apart (quarryd's cells first, plain's later): one run's cold ratio at \
     concurrency 1 is not conclusive; compare several runs.",
    "Warm GETs compare serving paths, not disks: a warm plain read is a memcpy (~10 GB/s), \
     which no HTTP server reaches on two cores shared with its client; the loopback ratios \
     give the ceiling an in-memory HTTP server reaches here.",
    "The load generator, quarryd and the Ceph daemons share the same CPUs and talk over \
     loopback; at concurrency 32 latency is mostly queueing for those CPUs.",
    "Other work on the machine competes too: machine.load_average_start shows it; a run \
     started at a load above nproc says more about the neighbours than about the targets. \
     load_average_end counts the run itself: its cold cells keep up to 32 threads waiting \
     on the disk, and Linux counts those in the load average.",
    "Durability differs: the Ceph peer keeps objects in RAM (memstore: no disk, no fsync), so \
     its PUT is acknowledged after a memory copy, while every quarryd PUT (and plain `put`) \
     is fsynced to disk before it is acknowledged. The 4 KiB PUT ratios compare a durable \
     write with a RAM write and understate quarryd; the 4 KiB GET ratios compare quarryd's \
     page cache with the peer's RAM.",
    "Target `ceph` (judged) is a peer whose beast frontend runs with tcp_nodelay=1 (its notes \
     give the rgw frontends line). `ceph_default` is the peer exactly as \
     shared/tools/ceph-peer/start.sh configures it, without tcp_nodelay: a small GET response \
     (headers, then body) waits for the client's delayed ACK (~40 ms), which dominates its \
     4 KiB GET latency; its ratios are context only.",
    "The Ceph peers given to the harness run during the whole report (idle while other \
     targets are measured); their background work (mon and OSD ticks) competes for the same \
     CPUs.",
    "plain `put_nofsync` writes to the page cache only; its files are fsynced after the cell, \
     outside the timed span.",
    "MB/s is 10^6 bytes per second. Latencies are per op, nearest rank: with fewer than 100 ops \
     (large objects) p99 is the maximum. Cold cells exclude the eviction time \
     (untimed_setup_ms) from latencies and from `seconds`.",
    "Every worker completes at least one op, so 64 MiB cells at concurrency 32 run past their \
     time budget; their op count is set by the byte budget.",
];
