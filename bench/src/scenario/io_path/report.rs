// SPDX-License-Identifier: Apache-2.0
//! The JSON report of the `io-path` scenario: one row per reader of the same file, each with
//! its bandwidth and CPU seconds per GB, and the ratios against the targets.

use serde::Serialize;

use crate::scenario::machine::MachineInfo;
use crate::scenario::report::{Ratio, Summary, round3};

/// Version of this report's shape; bump when a field changes meaning.
pub const FORMAT_VERSION: u32 = 2;

/// Bytes in the "GB" of "CPU seconds per GB" (decimal, as disk vendors and fio's MB/s).
pub const GB: f64 = 1e9;

/// The whole report.
#[derive(Debug, Serialize)]
pub struct IoPathReport {
    /// Always `io_path`.
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
    pub settings: IoPathSettings,
    /// What the numbers do and do not say.
    pub caveats: Vec<&'static str>,
    /// The readers, in the order they ran.
    pub rows: Vec<Row>,
    /// quarryd's `quarry_store_io_*` metrics after each phase (`direct` then `buffered`):
    /// the engine that served, its reads and bytes, and the bytes it copied on the way out.
    pub quarryd_io_metrics: Vec<String>,
    /// The figures that matter, each with its target and verdict.
    pub ratios: Vec<Ratio>,
    /// Counts of verdicts; `failed_targets` counts failed rows.
    pub summary: Summary,
}

/// The options a report was taken with.
#[derive(Debug, Clone, Serialize)]
pub struct IoPathSettings {
    /// Size of the file every row reads.
    pub file_size: u64,
    /// Timed runs per row; a row's figures are the medians.
    pub runs: usize,
    /// The fio command line of the ceiling row.
    pub fio_command: String,
    /// The buffer the std::fs and tokio::fs baselines read into.
    pub baseline_buffer: usize,
    /// quarryd's store settings for the cold and warm rows.
    pub quarryd_store: Vec<String>,
    /// The line pattern of the grep-count rows.
    pub grep_pattern: &'static str,
}

/// Whether a row reads from the disk or from the page cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cache {
    /// From the disk: O_DIRECT, or the file evicted from the page cache before every run.
    Cold,
    /// From the page cache (the file read once, untimed, before the runs).
    Warm,
}

/// One timed read of the whole file.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sample {
    /// Bytes the reader delivered (the file size; for a grep count, the file bytes scanned).
    pub bytes: u64,
    /// Wall time.
    pub seconds: f64,
    /// CPU seconds of the side that reads: this process for the baselines, fio's own
    /// accounting for fio, quarryd (all threads) for Quarry rows.
    pub cpu_seconds: f64,
    /// CPU seconds the harness spent as the HTTP client (Quarry rows; context).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cpu_seconds: Option<f64>,
}

/// One reader of the file.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Stable identifier (`fio_io_uring_direct`, `quarry_get_cold`, ...).
    pub name: &'static str,
    /// What it does, in words.
    pub description: String,
    /// Disk or page cache.
    pub cache: Cache,
    /// The timed runs; empty when the row failed.
    pub samples: Vec<Sample>,
    /// Median bandwidth, MiB/s.
    pub mib_per_s: Option<f64>,
    /// Median CPU seconds per GB (10^9 bytes) read.
    pub cpu_s_per_gb: Option<f64>,
    /// Median client CPU seconds per GB (Quarry rows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cpu_s_per_gb: Option<f64>,
    /// Why the row has no figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Row {
    /// A row from its samples (medians computed here) or the error that stopped it.
    pub fn new(
        name: &'static str,
        description: String,
        cache: Cache,
        samples: Result<Vec<Sample>, String>,
    ) -> Self {
        let (samples, error) = match samples {
            Ok(s) => (s, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let mib_per_s = median(samples.iter().filter(|s| s.seconds > 0.0).map(|s| {
            #[expect(clippy::cast_precision_loss, reason = "byte counts far below 2^52")]
            let bytes = s.bytes as f64;
            bytes / s.seconds / f64::from(1u32 << 20)
        }));
        let per_gb = |cpu: f64, bytes: u64| {
            #[expect(clippy::cast_precision_loss, reason = "byte counts far below 2^52")]
            let gb = bytes as f64 / GB;
            cpu / gb
        };
        let cpu_s_per_gb = median(
            samples
                .iter()
                .filter(|s| s.bytes > 0)
                .map(|s| per_gb(s.cpu_seconds, s.bytes)),
        );
        let client_cpu_s_per_gb = median(
            samples
                .iter()
                .filter(|s| s.bytes > 0)
                .filter_map(|s| s.client_cpu_seconds.map(|c| per_gb(c, s.bytes))),
        );
        Self {
            name,
            description,
            cache,
            samples,
            mib_per_s: mib_per_s.map(round3),
            cpu_s_per_gb: cpu_s_per_gb.map(round3),
            client_cpu_s_per_gb: client_cpu_s_per_gb.map(round3),
            error,
        }
    }
}

/// The median (the mean of the middle two for an even count); `None` for no values.
fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        f64::midpoint(v[mid - 1], v[mid])
    } else {
        v[mid]
    })
}

/// What every reader of the report should know before quoting a number.
pub const CAVEATS: [&str; 6] = [
    "Every row reads the same file: quarryd stores the object with one PUT, and fio, std::fs, \
     tokio::fs and the in-process store read that object's data file in quarryd's data dir \
     (quarryd serves it over HTTP).",
    "Cold: the file (quarryd's data files) is dropped from the page cache with \
     posix_fadvise(POSIX_FADV_DONTNEED) before every cold run; fio reads with O_DIRECT, and \
     quarryd and the in-process store (direct_io = \"auto\", their default) choose O_DIRECT \
     for it since its pages are not cached. Warm: the file was read once through the page \
     cache, untimed, before the runs, so \"auto\" reads it from the page cache.",
    "CPU seconds are user + system time from /proc/<pid>/stat (10 ms ticks) for the baselines \
     (this process) and quarryd (the whole daemon, all threads: HTTP, store, kernels), and \
     fio's own usr_cpu + sys_cpu for fio. Quarry rows also give the client's CPU (the harness \
     receiving the body over loopback) as context; it is not part of the judged figure.",
    "Quarry rows are an S3 GET over loopback HTTP: the body is also sent through the TCP stack, \
     which the local readers do not pay, and which shows in quarryd's system time. The \
     tcp_loopback_send row measures that share alone (the same bytes from memory over a \
     loopback socket), tokio_fs_tcp_send_* a minimal file server without HTTP; the judged \
     ratios keep the issue's definition (against tokio::fs reads), and context ratios show \
     them with the socket's share taken out or put on both sides.",
    "The disk is virtual (virtio) on a shared 2-core VM: the host may cache it, and other work \
     on the machine competes. Compare rows of one run, not runs of different days.",
    "The store_* rows open Quarry's store in the harness process (io_uring engine, the same \
     settings as quarryd's rows) and consume the GET body without HTTP: plain (chunks dropped) \
     and through the native grep kernel in count mode (chunks framed into lines and fed to the \
     kernel in place, as a function's input). Bandwidth of a grep row is file bytes scanned \
     per second; CPU is the whole harness process. The quarry_get_grep_count_* rows run the \
     same kernel inside quarryd on a GET (x-quarry-function=grep), end to end.",
];
