// SPDX-License-Identifier: Apache-2.0
//! Scenario `io-path`: how close a Quarry GET comes to the disk, on one file.
//!
//! quarryd stores one object of `--file-size` bytes (text lines, streamed by one PUT); its data
//! file is the file every reader reads start to end, `--runs` times each:
//! - fio with `--ioengine=io_uring --direct=1 --bs=1M --iodepth=32 --rw=read`: the ceiling;
//! - `std::fs` and `tokio::fs` in this process, cold (evicted before each run) and warm;
//! - quarryd serving it over HTTP with its default `direct_io = "auto"`, cold (data files
//!   evicted, so it reads with O_DIRECT) and warm (read once through the page cache, so it
//!   reads from there);
//! - quarryd running the native grep kernel (count mode) on a GET of it, cold and warm;
//! - loopback TCP sends of the same bytes (from memory, and read with tokio::fs): the socket's
//!   share of serving, as context for the CPU ratios;
//! - Quarry's store in this process (io_uring) on the same data dir, without HTTP, plain and
//!   through the native grep kernel in count mode, cold and warm (context: the store alone).
//!
//! Judged: the cold Quarry GET's bandwidth against fio's (at least 0.9x), and its CPU seconds
//! per GB against tokio::fs's (at most 0.5x, cold and warm). Every row asked for appears in
//! the report, with its figures or the error that stopped it; a ratio with a missing side is
//! `not_measured`.

pub mod cpu;
pub mod data;
pub mod fio;
pub mod local;
pub mod quarry;
pub mod report;
pub mod store;
pub mod tcp;

use std::future::Future;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;

use self::local::Api;
use self::quarry::{Get, Quarry};
use self::report::{CAVEATS, Cache, IoPathReport, IoPathSettings, Row, Sample};
use self::store::{Consumer, InProcess};
use super::machine::{MachineInfo, load_average};
use super::options::parse_size;
use super::page_cache::evict_path;
use super::ratios::ratio;
use super::report::{Comparison, Ratio, Summary};
use super::table::write_ratios;
use super::target::progress;
use super::{git_revision, now_rfc3339, run_dir};

/// Least share of fio's bandwidth a cold Quarry GET must reach.
pub const FIO_SHARE_TARGET: f64 = 0.9;
/// Most CPU per GB a Quarry GET may spend, as a share of tokio::fs's.
pub const CPU_SHARE_TARGET: f64 = 0.5;

/// Options of the `io-path` scenario.
#[derive(Debug, Clone, Args)]
pub struct IoPathOptions {
    /// Size of the file every reader reads (a multiple of 1MiB).
    #[arg(long, default_value = "4GiB", value_parser = parse_size)]
    pub file_size: u64,

    /// Timed runs per row; a row's figures are the medians.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,

    /// Where the JSON report is written.
    #[arg(long, default_value = "target/scenario/io-path-report.json")]
    pub out: PathBuf,

    /// The quarryd binary to start.
    #[arg(long, default_value = "target/release/quarryd")]
    pub quarryd: PathBuf,

    /// Directory for the file and quarryd's data dir (same disk for both); a fresh
    /// subdirectory is made per run and removed afterwards.
    #[arg(long, default_value = "target/scenario/work")]
    pub work_dir: PathBuf,

    /// Keep the per-run work subdirectory (the file, quarryd's data and logs).
    #[arg(long)]
    pub keep_work: bool,
}

/// Runs scenario `io-path`. Row failures are recorded in the report; only a broken setup (no
/// work dir) is an `Err`.
pub async fn run_io_path(options: &IoPathOptions) -> Result<IoPathReport> {
    anyhow::ensure!(options.runs > 0, "--runs must be at least 1");
    let started_at = now_rfc3339();
    let mut machine = MachineInfo::read();
    let work = run_dir(&options.work_dir, "io-path-")?;
    let data_dir = work.path().join("quarryd");
    let mut metrics = Vec::new();
    let mut rows = Vec::new();

    // quarryd stores the file; its data file is what every other reader reads.
    let (quarry_rows, file) =
        quarry_phase(options, work.path(), &data_dir, None, &mut metrics).await;
    rows.extend(quarry_rows);
    if let Some(file) = &file {
        rows.extend(local_rows(options, file).await);
    }
    let (quarry_rows, _) = quarry_phase(
        options,
        work.path(),
        &data_dir,
        file.as_deref(),
        &mut metrics,
    )
    .await;
    rows.extend(quarry_rows);
    rows.extend(store_rows(options, &data_dir, file.is_some()).await);

    if options.keep_work {
        let kept = work.keep();
        progress(&format!("work dir kept: {}", kept.display()));
    }
    machine.load_average_end = load_average();
    let ratios = compute_ratios(&rows);
    let mut summary = Summary::new(&ratios, &[]);
    summary.failed_targets = rows.iter().filter(|r| r.error.is_some()).count();
    let size = options.file_size;
    Ok(IoPathReport {
        scenario: "io_path",
        format_version: report::FORMAT_VERSION,
        started_at,
        finished_at: now_rfc3339(),
        revision: git_revision(),
        machine,
        settings: IoPathSettings {
            file_size: size,
            runs: options.runs,
            fio_command: format!("fio {}", fio::args(Path::new("FILE"), size).join(" ")),
            baseline_buffer: data::BLOCK,
            quarryd_store: vec![quarry::STORE_CONFIG.to_owned()],
            grep_pattern: data::NEEDLE,
        },
        caveats: CAVEATS.to_vec(),
        rows,
        quarryd_io_metrics: metrics,
        ratios,
        summary,
    })
}

/// fio and the std::fs / tokio::fs baselines on `file`.
async fn local_rows(options: &IoPathOptions, file: &Path) -> Vec<Row> {
    let size = options.file_size;
    let mut rows = Vec::new();
    progress("fio");
    rows.push(Row::new(
        "fio_io_uring_direct",
        format!("fio {}", fio::args(file, size).join(" ")),
        Cache::Cold,
        samples(options.runs, || Ok(()), || fio::run(file, size)).await,
    ));
    for (api, cold, warm) in [
        (Api::Std, "std_fs_cold", "std_fs_warm"),
        (Api::Tokio, "tokio_fs_cold", "tokio_fs_warm"),
    ] {
        let what = match api {
            Api::Std => "std::fs::File::read into a 1 MiB buffer on a blocking thread",
            Api::Tokio => "tokio::fs::File::read into a 1 MiB buffer",
        };
        progress(&format!("{what}, cold"));
        rows.push(Row::new(
            cold,
            format!("{what}, the file evicted before each run"),
            Cache::Cold,
            samples(
                options.runs,
                || evict_path(file, false),
                || local::read_once(api, file, size),
            )
            .await,
        ));
        progress(&format!("{what}, warm"));
        let warmed = local::read_once(api, file, size).await;
        rows.push(Row::new(
            warm,
            format!("{what}, after one untimed read"),
            Cache::Warm,
            match warmed {
                Ok(_) => {
                    samples(
                        options.runs,
                        || Ok(()),
                        || local::read_once(api, file, size),
                    )
                    .await
                }
                Err(e) => Err(format!("{e:#}")),
            },
        ));
    }
    rows.extend(serving_rows(options, file).await);
    rows
}

/// The serving baselines: the bytes sent over loopback TCP from memory, and from the file
/// through `tokio::fs` (cold and warm).
async fn serving_rows(options: &IoPathOptions, file: &Path) -> Vec<Row> {
    let size = options.file_size;
    let mut rows = Vec::new();
    progress("loopback TCP send from memory");
    rows.push(Row::new(
        "tcp_loopback_send",
        "the file's size sent from one in-memory 1 MiB buffer over a loopback TCP connection \
         with tokio, received and dropped by a thread (CPU: this process less that thread): \
         the socket's share of a GET"
            .to_owned(),
        Cache::Warm,
        samples(
            options.runs,
            || Ok(()),
            || tcp::send_once(tcp::Source::Memory, file, size),
        )
        .await,
    ));
    let what = "tokio::fs::File::read of 1 MiB, then written to a loopback TCP connection \
                (a minimal file server without HTTP; CPU: this process less the receiving \
                thread)";
    progress("tokio::fs read + loopback TCP send, cold");
    rows.push(Row::new(
        "tokio_fs_tcp_send_cold",
        format!("{what}, the file evicted before each run"),
        Cache::Cold,
        samples(
            options.runs,
            || evict_path(file, false),
            || tcp::send_once(tcp::Source::TokioFs, file, size),
        )
        .await,
    ));
    progress("tokio::fs read + loopback TCP send, warm");
    let warmed = local::read_once(Api::Std, file, size).await;
    rows.push(Row::new(
        "tokio_fs_tcp_send_warm",
        format!("{what}, after one untimed read"),
        Cache::Warm,
        match warmed {
            Ok(_) => {
                samples(
                    options.runs,
                    || Ok(()),
                    || tcp::send_once(tcp::Source::TokioFs, file, size),
                )
                .await
            }
            Err(e) => Err(format!("{e:#}")),
        },
    ));
    rows
}

/// `runs` samples of `measure`, each after `before`; the first error ends the row.
async fn samples<F, Fut>(
    runs: usize,
    mut before: impl FnMut() -> Result<()>,
    mut measure: F,
) -> Result<Vec<Sample>, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Sample>>,
{
    let mut out = Vec::with_capacity(runs);
    for _ in 0..runs {
        before().map_err(|e| format!("{e:#}"))?;
        out.push(measure().await.map_err(|e| format!("{e:#}"))?);
    }
    Ok(out)
}

/// One quarryd phase (`direct_io = "auto"` both times): cold (`stored` is `None`: quarryd
/// stores the file first, and its data files are evicted before each run) or warm (its data
/// files read once through the page cache, then one untimed GET). Its rows, a plain GET and a
/// GET through the grep kernel (count), each failed with the error when it could not run, and
/// the data file the cold phase stored.
async fn quarry_phase(
    options: &IoPathOptions,
    work: &Path,
    data_dir: &Path,
    stored: Option<&Path>,
    metrics: &mut Vec<String>,
) -> (Vec<Row>, Option<PathBuf>) {
    let cold = stored.is_none();
    let (cache, phase, plain_name, grep_name) = if cold {
        (
            Cache::Cold,
            "cold",
            "quarry_get_cold",
            "quarry_get_grep_count_cold",
        )
    } else {
        (
            Cache::Warm,
            "warm",
            "quarry_get_warm",
            "quarry_get_grep_count_warm",
        )
    };
    let how = if cold {
        "quarryd direct_io = \"auto\", its data files evicted before each run (O_DIRECT)"
    } else {
        "quarryd direct_io = \"auto\", its data files read once through the page cache and \
         one untimed GET before the runs (page cache)"
    };
    let gets = [
        (
            Get::Plain,
            plain_name,
            format!("S3 GET over loopback, body read and dropped; {how}"),
        ),
        (
            Get::GrepCount,
            grep_name,
            format!(
                "S3 GET with x-quarry-function=grep, pattern and mode=count: the native grep \
                 kernel scans the body in quarryd, which answers the count; MiB/s of file \
                 bytes scanned; {how}"
            ),
        ),
    ];
    progress(&format!("quarryd, {how}"));
    let started = async {
        let quarry =
            Quarry::start(&options.quarryd, work, data_dir, phase, options.file_size).await?;
        let file = match stored {
            None => {
                progress("PUT of the file");
                quarry.store().await?
            }
            Some(file) => {
                quarry.warm()?;
                quarry.get(Get::Plain).await?;
                file.to_owned()
            }
        };
        anyhow::Ok((quarry, file))
    }
    .await;
    let (quarry, file) = match started {
        Ok(q) => q,
        Err(e) => {
            let message = format!("{e:#}");
            progress(&format!("quarryd FAILED: {message}"));
            let rows = gets
                .into_iter()
                .map(|(_, name, what)| Row::new(name, what, cache, Err(message.clone())))
                .collect();
            return (rows, None);
        }
    };
    let evict = || if cold { quarry.evict() } else { Ok(()) };
    let mut rows = Vec::new();
    for (get, name, what) in gets {
        progress(&format!("quarryd: {name}"));
        let result = samples(options.runs, evict, || quarry.get(get)).await;
        rows.push(Row::new(name, what, cache, result));
    }
    match quarry.io_metrics().await {
        Ok(lines) => metrics.extend(lines.into_iter().map(|l| format!("{phase}: {l}"))),
        Err(e) => progress(&format!("quarryd metrics FAILED: {e:#}")),
    }
    if let Err(e) = quarry.stop().await {
        progress(&format!("quarryd stop FAILED: {e:#}"));
    }
    (rows, Some(file))
}

/// The in-process store rows on quarryd's data dir (quarryd stopped): plain and grep count,
/// cold then warm.
async fn store_rows(options: &IoPathOptions, data_dir: &Path, stored: bool) -> Vec<Row> {
    let names = [
        (true, Consumer::Plain, "store_get_cold"),
        (true, Consumer::GrepCount, "store_get_grep_count_cold"),
        (false, Consumer::Plain, "store_get_warm"),
        (false, Consumer::GrepCount, "store_get_grep_count_warm"),
    ];
    let describe = |cold: bool, consumer: Consumer| {
        let what = match consumer {
            Consumer::Plain => "GET body chunks counted and dropped",
            Consumer::GrepCount => {
                "GET body framed into lines and fed to the native grep kernel (count)"
            }
        };
        let how = if cold {
            "io_uring, direct_io = \"auto\", data files evicted before each run (O_DIRECT)"
        } else {
            "io_uring, direct_io = \"auto\", data files read once through the page cache \
             first (page cache)"
        };
        format!("Quarry's store in this process on quarryd's data dir, no HTTP: {what}; {how}")
    };
    let size = options.file_size;
    let mut rows = Vec::new();
    let opened = if stored {
        InProcess::open(data_dir, size).await
    } else {
        Err(anyhow::anyhow!("quarryd did not store the file"))
    };
    for cold_phase in [true, false] {
        if let (Ok(store), false) = (&opened, cold_phase)
            && let Err(e) = store.warm()
        {
            progress(&format!("warming the data files FAILED: {e:#}"));
        }
        for &(cold, consumer, name) in names.iter().filter(|n| n.0 == cold_phase) {
            let cache = if cold { Cache::Cold } else { Cache::Warm };
            progress(&format!("in-process store: {name}"));
            let result = match &opened {
                Ok(store) => {
                    let evict = || if cold { store.evict() } else { Ok(()) };
                    let before = store.bodies();
                    let out = samples(options.runs, evict, || store.get(consumer)).await;
                    let after = store.bodies();
                    let (direct, cached) = (after.0 - before.0, after.1 - before.1);
                    // The store hands out the buffers its engine filled: nothing is copied;
                    // and "auto" reads cold bodies with O_DIRECT, warm ones from the cache.
                    match out {
                        Ok(_) if store.copied_bytes() != 0 => Err(format!(
                            "the store copied {} body bytes; file bodies must leave in the \
                             engine's buffers",
                            store.copied_bytes()
                        )),
                        Ok(_) if (direct > 0 && !cold) || (cached > 0 && cold) => Err(format!(
                            "{direct} bodies read with O_DIRECT and {cached} through the page \
                             cache: direct_io = \"auto\" chose against the residency"
                        )),
                        other => other,
                    }
                }
                Err(e) => Err(format!("{e:#}")),
            };
            rows.push(Row::new(name, describe(cold, consumer), cache, result));
        }
    }
    rows
}

/// The judged figures and their context.
fn compute_ratios(rows: &[Row]) -> Vec<Ratio> {
    let figure = |name: &str, pick: fn(&Row) -> Option<f64>| -> Result<f64, String> {
        let row = rows
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| format!("row {name} missing"))?;
        if let Some(e) = &row.error {
            return Err(format!("row {name} failed: {e}"));
        }
        pick(row).ok_or_else(|| format!("row {name} has no figure"))
    };
    let share = |num: &str, den: &str, pick: fn(&Row) -> Option<f64>| {
        let (n, d) = (figure(num, pick)?, figure(den, pick)?);
        if d > 0.0 {
            Ok(n / d)
        } else {
            Err(format!("{den} is zero"))
        }
    };
    let bw = |r: &Row| r.mib_per_s;
    let cpu = |r: &Row| r.cpu_s_per_gb;
    // quarryd's CPU less the socket's (the loopback send of the same bytes), against a read.
    let without_socket = |quarry: &str, den: &str| {
        let (q, socket, d) = (
            figure(quarry, cpu)?,
            figure("tcp_loopback_send", cpu)?,
            figure(den, cpu)?,
        );
        if d > 0.0 {
            Ok((q - socket).max(0.0) / d)
        } else {
            Err(format!("{den} is zero"))
        }
    };
    vec![
        ratio(
            "quarry_get_cold_vs_fio_bandwidth".to_owned(),
            "cold Quarry GET MiB/s / fio io_uring O_DIRECT MiB/s, same file, medians".to_owned(),
            share("quarry_get_cold", "fio_io_uring_direct", bw),
            Some((Comparison::AtLeast, FIO_SHARE_TARGET)),
        ),
        ratio(
            "quarry_get_cold_vs_tokio_fs_cold_cpu_per_gb".to_owned(),
            "quarryd CPU s/GB serving a cold GET / tokio::fs CPU s/GB reading the evicted file"
                .to_owned(),
            share("quarry_get_cold", "tokio_fs_cold", cpu),
            Some((Comparison::AtMost, CPU_SHARE_TARGET)),
        ),
        ratio(
            "quarry_get_warm_vs_tokio_fs_warm_cpu_per_gb".to_owned(),
            "quarryd CPU s/GB serving a warm GET / tokio::fs CPU s/GB reading the cached file"
                .to_owned(),
            share("quarry_get_warm", "tokio_fs_warm", cpu),
            Some((Comparison::AtMost, CPU_SHARE_TARGET)),
        ),
        ratio(
            "quarry_get_cold_vs_tokio_fs_tcp_send_cold_cpu_per_gb".to_owned(),
            "quarryd CPU s/GB serving a cold GET / tokio::fs read + loopback TCP send of the \
             evicted file (context: the same bytes served without HTTP or Quarry)"
                .to_owned(),
            share("quarry_get_cold", "tokio_fs_tcp_send_cold", cpu),
            None,
        ),
        ratio(
            "quarry_get_warm_vs_tokio_fs_tcp_send_warm_cpu_per_gb".to_owned(),
            "quarryd CPU s/GB serving a warm GET / tokio::fs read + loopback TCP send of the \
             cached file (context)"
                .to_owned(),
            share("quarry_get_warm", "tokio_fs_tcp_send_warm", cpu),
            None,
        ),
        ratio(
            "quarry_get_cold_less_socket_vs_tokio_fs_cold_cpu_per_gb".to_owned(),
            "(quarryd CPU s/GB, cold GET - loopback TCP send CPU s/GB) / tokio::fs CPU s/GB, \
             cold (context: the judged ratio without the socket's share)"
                .to_owned(),
            without_socket("quarry_get_cold", "tokio_fs_cold"),
            None,
        ),
        ratio(
            "quarry_get_warm_less_socket_vs_tokio_fs_warm_cpu_per_gb".to_owned(),
            "(quarryd CPU s/GB, warm GET - loopback TCP send CPU s/GB) / tokio::fs CPU s/GB, \
             warm (context)"
                .to_owned(),
            without_socket("quarry_get_warm", "tokio_fs_warm"),
            None,
        ),
        ratio(
            "quarry_get_warm_vs_std_fs_warm_bandwidth".to_owned(),
            "warm Quarry GET MiB/s / std::fs MiB/s from the page cache (context)".to_owned(),
            share("quarry_get_warm", "std_fs_warm", bw),
            None,
        ),
        ratio(
            "quarry_get_warm_vs_tokio_fs_warm_bandwidth".to_owned(),
            "warm Quarry GET MiB/s / tokio::fs MiB/s from the page cache (context)".to_owned(),
            share("quarry_get_warm", "tokio_fs_warm", bw),
            None,
        ),
        ratio(
            "quarry_get_cold_vs_std_fs_cold_bandwidth".to_owned(),
            "cold Quarry GET MiB/s / std::fs MiB/s of the evicted file (context)".to_owned(),
            share("quarry_get_cold", "std_fs_cold", bw),
            None,
        ),
        ratio(
            "store_get_cold_vs_fio_bandwidth".to_owned(),
            "cold in-process store GET MiB/s (no HTTP) / fio MiB/s (context)".to_owned(),
            share("store_get_cold", "fio_io_uring_direct", bw),
            None,
        ),
        ratio(
            "store_get_cold_vs_tokio_fs_cold_cpu_per_gb".to_owned(),
            "in-process store CPU s/GB, cold / tokio::fs CPU s/GB, cold (context: the store \
             without HTTP)"
                .to_owned(),
            share("store_get_cold", "tokio_fs_cold", cpu),
            None,
        ),
        ratio(
            "store_grep_count_cold_vs_fio_bandwidth".to_owned(),
            "cold in-process GET through grep (count) MiB/s scanned / fio MiB/s (context)"
                .to_owned(),
            share("store_get_grep_count_cold", "fio_io_uring_direct", bw),
            None,
        ),
        ratio(
            "store_grep_count_warm_vs_store_get_warm_bandwidth".to_owned(),
            "warm in-process GET through grep (count) MiB/s / the same GET plain (context: the \
             kernel's share)"
                .to_owned(),
            share("store_get_grep_count_warm", "store_get_warm", bw),
            None,
        ),
    ]
}

/// Writes the rows and the ratios as aligned text.
pub fn write_table(report: &IoPathReport, out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "{:<30} {:>5} {:>10} {:>10} {:>12}",
        "reader", "cache", "MiB/s", "CPU s/GB", "client s/GB"
    )?;
    let num = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
    for row in &report.rows {
        let cache = match row.cache {
            Cache::Cold => "cold",
            Cache::Warm => "warm",
        };
        writeln!(
            out,
            "{:<30} {:>5} {:>10} {:>10} {:>12}{}",
            row.name,
            cache,
            num(row.mib_per_s),
            num(row.cpu_s_per_gb),
            num(row.client_cpu_s_per_gb),
            row.error
                .as_deref()
                .map(|e| format!("  FAILED: {e}"))
                .unwrap_or_default(),
        )?;
    }
    writeln!(out)?;
    write_ratios(&report.ratios, out)
}
