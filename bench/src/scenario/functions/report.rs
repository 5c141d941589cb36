// SPDX-License-Identifier: Apache-2.0
//! The JSON report of the `functions` scenario: what each part measured, the ratios against
//! their targets, and the context a reader needs before quoting a number.

use std::time::Duration;

use serde::Serialize;

use crate::scenario::load::percentile;
use crate::scenario::machine::MachineInfo;
use crate::scenario::options::FunctionsPart;
use crate::scenario::report::{QuarrydFacts, Ratio, Summary, TargetStatus, round3};

/// Version of this report's shape; bump when a field changes meaning.
pub const FORMAT_VERSION: u32 = 1;

/// The whole report.
#[derive(Debug, Serialize)]
pub struct FunctionsReport {
    /// Always `functions`.
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
    pub settings: FunctionsSettings,
    /// What the numbers do and do not say.
    pub caveats: Vec<&'static str>,
    /// Figures from elsewhere that the targets were set against; not measured here.
    pub context: Vec<&'static str>,
    /// Per part: ran, skipped or failed.
    pub parts: Vec<PartReport>,
    /// Part `get`, when it completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub get: Option<GetResult>,
    /// Part `wordcount`, when it completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wordcount: Option<WordcountResult>,
    /// The figures that matter, each with its target and verdict.
    pub ratios: Vec<Ratio>,
    /// Counts of verdicts; `failed_targets` counts failed parts.
    pub summary: Summary,
}

/// The options a report was taken with.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionsSettings {
    /// Parts asked for.
    pub parts: Vec<FunctionsPart>,
    /// Timed GETs per side.
    pub requests: usize,
    /// Untimed GETs per side before them.
    pub warmup_requests: usize,
    /// Size of the object the GETs read, in bytes.
    pub object_size: u64,
    /// Bytes of text wordcount reads.
    pub wordcount_size: u64,
    /// Bytes per input chunk.
    pub chunk_size: u64,
    /// Timed wordcount runs per side.
    pub wordcount_runs: usize,
    /// Where the modules were read from.
    pub functions_dir: String,
}

/// What happened to one part.
#[derive(Debug, Clone, Serialize)]
pub struct PartReport {
    /// Which part.
    pub part: FunctionsPart,
    /// Ran or failed.
    pub status: TargetStatus,
    /// The error, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Part `get`: one small object read with and without an identity `after-get` trigger.
#[derive(Debug, Clone, Serialize)]
pub struct GetResult {
    /// Object size in bytes.
    pub object_size: u64,
    /// The function as quarryd names it in `x-quarry-function` (`identity@v1`).
    pub function: String,
    /// Where the deployed module came from.
    pub module: String,
    /// The trigger as quarryd stored it.
    pub trigger: serde_json::Value,
    /// The quarryd process.
    pub quarryd: QuarrydFacts,
    /// GETs from the bucket without a trigger.
    pub without_trigger: LatencyStats,
    /// GETs from the bucket whose `after-get` trigger runs the identity function.
    pub with_trigger: LatencyStats,
    /// `with_trigger.p50_us - without_trigger.p50_us`.
    pub added_p50_us: f64,
    /// `with_trigger.p99_us - without_trigger.p99_us`.
    pub added_p99_us: f64,
    /// `with_trigger.mean_us - without_trigger.mean_us`.
    pub added_mean_us: f64,
    /// The median over pairs (the two GETs issued back to back) of the difference, a second
    /// estimate of the median cost that is less sensitive to drift.
    pub paired_difference_p50_us: f64,
}

/// Latencies of one side, in microseconds (nearest rank).
#[derive(Debug, Clone, Serialize)]
pub struct LatencyStats {
    /// Timed requests.
    pub requests: usize,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Slowest.
    pub max_us: f64,
}

impl LatencyStats {
    /// Statistics of `latencies_ns` (any order).
    pub fn new(latencies_ns: &[u64]) -> Self {
        let mut sorted = latencies_ns.to_vec();
        sorted.sort_unstable();
        let us = |p| percentile(&sorted, p).map_or(0.0, |ns| round3(ns as f64 / 1e3));
        let total: u128 = sorted.iter().map(|&ns| u128::from(ns)).sum();
        Self {
            requests: sorted.len(),
            mean_us: round3(total as f64 / sorted.len().max(1) as f64 / 1e3),
            p50_us: us(50),
            p90_us: us(90),
            p99_us: us(99),
            max_us: us(100),
        }
    }
}

/// Part `wordcount`: the function against native Rust over the same text.
#[derive(Debug, Clone, Serialize)]
pub struct WordcountResult {
    /// The module run.
    pub module: String,
    /// The word counted.
    pub word: String,
    /// Bytes of text.
    pub bytes: u64,
    /// The same, readable.
    pub size: String,
    /// Bytes per input chunk of the wasm and bytewise sides.
    pub chunk_size: u64,
    /// Lines in the text.
    pub lines: u64,
    /// Lines containing the word: the count every side gave in every run.
    pub count: u64,
    /// `wordcount.wasm` through the pool.
    pub wasm: Throughput,
    /// Native SIMD substring search over the whole buffer.
    pub native_memmem: Throughput,
    /// Native port of `wordcount.c`'s byte-at-a-time matcher over the same chunks.
    pub native_bytewise: Throughput,
    /// Where the identity module came from.
    pub identity_module: String,
    /// The identity function over the same chunks (context: streaming alone).
    pub wasm_identity: Throughput,
}

/// One side's timed runs.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    /// Seconds of each run, in order.
    pub runs_s: Vec<f64>,
    /// The median run.
    pub median_s: f64,
    /// Bytes over the median run, in MB/s (10^6 bytes per second).
    pub median_mb_per_s: f64,
}

impl Throughput {
    /// The statistics of `runs` over `bytes` each.
    pub fn new(runs: &[Duration], bytes: u64) -> Self {
        let mut sorted = runs.to_vec();
        sorted.sort_unstable();
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or_default();
        let secs = median.as_secs_f64();
        Self {
            runs_s: runs.iter().map(|d| round3_sig(d.as_secs_f64())).collect(),
            median_s: round3_sig(secs),
            median_mb_per_s: if secs > 0.0 {
                round3(bytes as f64 / secs / 1e6)
            } else {
                0.0
            },
        }
    }
}

/// Seconds with microsecond resolution: native runs over 1 GiB take a few tens of
/// milliseconds, where three decimals would lose the figure.
fn round3_sig(secs: f64) -> f64 {
    (secs * 1e6).round() / 1e6
}

/// What every reader of the report should know before quoting a number.
pub const CAVEATS: [&str; 7] = [
    "Absolute numbers on shared 2-core VMs are noise: compare the added latency and the \
     ratios, whose two sides are measured interleaved in the same run.",
    "get: one quarryd, one client connection, the same object in two buckets, one with an \
     after-get trigger running the identity function. Each timed pair issues the two GETs back \
     to back, alternating which goes first; a GET is timed from signing its URL to the last \
     body byte, and its body is checked against the object afterwards, untimed. The trigger \
     side's responses must carry x-quarry-function, the other side's must not.",
    "get: the added latency is everything the trigger costs a request: the trigger lookup, a \
     pool slot, instance start, streaming the body through the function's stdin and stdout, \
     and the x-quarry-* response headers.",
    "get: the client, quarryd and the function share the same two CPUs; p99 over 2000 requests \
     is the 20th slowest, so the added p99 moves with whatever else ran in that second.",
    "wordcount: in this process, from memory, without HTTP or disk. The text is one buffer fed \
     to the function as slices (no host-side copy); the guest's reads copy them into its \
     linear memory, 64 KiB at a time. The wasm run includes instance start and teardown.",
    "wordcount: native_memmem is what a native implementation would do (SIMD substring search \
     over the whole buffer, skipping to the line end after a hit) and is the judged baseline; \
     native_bytewise runs wordcount.c's own byte-at-a-time matcher in Rust over the same \
     chunks, so wasm / native_bytewise is the engine's cost and native_bytewise / memmem the \
     algorithm's. wasm_identity streams the same chunks through the identity function (output \
     counted and dropped): the cost of moving the bytes through a guest, without work on them.",
    "MB/s is 10^6 bytes per second; the judged figure is the median of the runs of each side \
     (the upper median for an even number of runs).",
];

/// Figures from other systems the targets were set against; not measured here.
pub const CONTEXT: [&str; 3] = [
    "A no-op request through Spin on wasmtime takes about 50 us end to end.",
    "Zion (storlets in Docker containers) pays about 0.9 s per container start.",
    "Instance start + call + drop in the pool (target <= 5 us p50) and trigger matching among \
     100,000 triggers (target <= 200 ns p50) are criterion benches: \
     `cargo bench -p quarry-bench --bench functions`.",
];
