// SPDX-License-Identifier: Apache-2.0
//! End-to-end scenarios. Scenario `s3`: PUT and GET throughput and latency of quarryd, the
//! Ceph RADOS Gateway peer and plain file I/O, over loopback, with ratios against targets.
//! GETs of quarryd and plain files run twice: warm (page cache) and cold (the files evicted
//! from the page cache before every op, so the read comes from the disk). Scenario
//! [`functions`]: the latency an identity trigger adds to a small GET, and wordcount in
//! WebAssembly against native Rust. Scenario [`kernels`]: the built-in kernels on one CPU core
//! and on every OpenCL device, with each device's host-to-device bandwidth.
//!
//! Invariants of an `s3` run:
//! - every target asked for appears in the report as ran, skipped (with the reason and the
//!   way to include it) or failed (with the error); nothing is dropped silently;
//! - quarryd runs on a fresh data dir inside a fresh work subdirectory, on the same disk as
//!   the plain baseline, and is stopped (SIGTERM) whatever happens to its cells;
//! - ratios come only from cells of this run;
//! - cold ratios count only when the page-cache self-test of this run showed that eviction
//!   works on this machine's disk.

pub mod ceph;
pub mod functions;
pub mod io_path;
pub mod kernels;
pub mod load;
pub mod loopback;
pub mod machine;
pub mod options;
pub mod page_cache;
pub mod plain;
pub mod quarryd;
pub mod ratios;
pub mod report;
pub mod s3;
pub mod scheduler;
pub mod sim_hw;
pub mod table;
pub mod target;

pub use self::functions::{FunctionsReport, run_functions};
pub use self::kernels::{KernelsReport, run_kernels};
pub use self::options::{
    Cli, FunctionsOptions, FunctionsPart, KernelsOptions, S3Options, TargetKind,
};
pub use self::report::Report;

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow, ensure};
use bytes::Bytes;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::time::Instant;

use self::ceph::CephPeer;
use self::loopback::LoopbackServer;
use self::plain::PlainTarget;
use self::quarryd::QuarrydProcess;
use self::report::{
    CAVEATS, CellResult, QuarrydFacts, Settings, Summary, TargetReport, TargetStatus, round3,
};
use self::s3::{S3Endpoint, S3Target};
use self::target::{Target, make_payload, object_names, progress, run_cells};

/// The bucket every S3 target is measured in.
pub const BUCKET: &str = "quarry-bench";

/// Runs scenario `s3` and returns its report. Target failures are recorded in the report
/// (see [`Summary::failed_targets`]); only a broken setup (bad options, no work dir) is an
/// `Err`.
pub async fn run_s3(options: &S3Options) -> Result<Report> {
    ensure!(!options.sizes.is_empty(), "--sizes is empty");
    ensure!(
        !options.concurrency.is_empty() && options.concurrency.iter().all(|&c| c > 0),
        "--concurrency needs at least one level, each at least 1"
    );
    let started_at = now_rfc3339();
    let mut machine = machine::MachineInfo::read();
    let work = run_dir(&options.work_dir, "run-")?;
    let payloads = options
        .sizes
        .iter()
        .map(|&size| Ok((size, make_payload(size)?)))
        .collect::<Result<Vec<(u64, Bytes)>>>()?;
    let largest = payloads
        .iter()
        .max_by_key(|(size, _)| *size)
        .map(|(_, payload)| payload.clone())
        .unwrap_or_default();
    let self_test_dir = work.path().to_owned();
    let page_cache =
        tokio::task::spawn_blocking(move || page_cache::self_test(&self_test_dir, &largest))
            .await
            .context("page-cache self-test panicked")?;
    progress(&format!(
        "page cache: eviction {} ({} of {} probed pages cached after a read, {} after eviction; \
         {} MiB read warm in {} ms, cold in {} ms){}",
        if page_cache.eviction_works {
            "works"
        } else {
            "DOES NOT WORK"
        },
        page_cache.cached_after_read,
        page_cache.probed_pages,
        page_cache.cached_after_eviction,
        page_cache.file_bytes >> 20,
        page_cache.warm_read_ms,
        page_cache.cold_read_ms,
        page_cache
            .error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default(),
    ));

    let mut run = Run {
        options,
        work: work.path(),
        payloads,
        results: Vec::new(),
    };
    let mut targets = Vec::new();
    for &kind in &options.targets {
        let mut target_report = TargetReport::new(kind);
        let outcome = match kind {
            TargetKind::Quarryd => run.quarryd(&mut target_report).await,
            TargetKind::Ceph | TargetKind::CephDefault => run.ceph(kind, &mut target_report).await,
            TargetKind::Plain => run.plain(&mut target_report).await,
            TargetKind::Loopback => run.loopback(&mut target_report).await,
        };
        if let Err(error) = outcome {
            progress(&format!("{kind} FAILED: {error:#}"));
            target_report.status = TargetStatus::Failed;
            target_report.message = Some(format!("{error:#}"));
        }
        targets.push(target_report);
    }
    let results = run.results;

    if options.keep_work {
        let kept = work.keep();
        progress(&format!("work dir kept: {}", kept.display()));
    }
    machine.load_average_end = machine::load_average();
    let quarryd = targets.iter().find_map(|t| t.quarryd.as_ref());
    let ratios = ratios::compute(
        &results,
        &options.concurrency,
        quarryd,
        page_cache.eviction_works,
    );
    let summary = Summary::new(&ratios, &targets);
    Ok(Report {
        scenario: "s3",
        format_version: report::FORMAT_VERSION,
        started_at,
        finished_at: now_rfc3339(),
        revision: git_revision(),
        machine,
        settings: Settings {
            targets: options.targets.clone(),
            sizes: options.sizes.clone(),
            concurrency: options.concurrency.clone(),
            duration_per_cell_s: options.duration_per_cell.as_secs_f64(),
            max_ops_per_cell: options.max_ops_per_cell,
            max_bytes_per_cell: options.max_bytes_per_cell,
            work_dir: std::fs::canonicalize(&options.work_dir)
                .unwrap_or_else(|_| options.work_dir.clone())
                .display()
                .to_string(),
        },
        caveats: CAVEATS.to_vec(),
        page_cache,
        targets,
        results,
        ratios,
        summary,
    })
}

/// One run in progress: what every target's runner needs, and the cells measured so far.
struct Run<'a> {
    options: &'a S3Options,
    /// This run's fresh work subdirectory: quarryd's data dir and the plain files.
    work: &'a Path,
    /// One shared payload per size.
    payloads: Vec<(u64, Bytes)>,
    results: Vec<CellResult>,
}

impl Run<'_> {
    async fn cells(&mut self, kind: TargetKind, target: &Target) -> Result<()> {
        run_cells(
            kind,
            target,
            self.options,
            &self.payloads,
            &mut self.results,
        )
        .await
    }

    /// A client for `endpoint`, with the bench bucket created.
    async fn s3_client(&self, endpoint: &S3Endpoint) -> Result<S3Target> {
        let s3 = S3Target::new(endpoint, BUCKET, self.options)?;
        s3.create_bucket().await?;
        Ok(s3)
    }

    /// Starts quarryd, reads its idle RSS, runs its cells, reads its RSS again and stops it.
    async fn quarryd(&mut self, report: &mut TargetReport) -> Result<()> {
        let binary = &self.options.quarryd;
        ensure!(
            binary.is_file(),
            "quarryd binary {} not found: build it with \
             `cargo build --release -p quarry-agent --bin quarryd` or pass --quarryd PATH",
            binary.display()
        );
        let data_dir = self.work.join("quarryd-data");
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("failed to create {}", data_dir.display()))?;
        let spawned = Instant::now();
        let process =
            QuarrydProcess::start(binary, &data_dir, &self.work.join("quarryd.log")).await?;
        let mut facts = QuarrydFacts {
            binary: binary.display().to_string(),
            pid: process.pid(),
            start_s: round3(spawned.elapsed().as_secs_f64()),
            ..QuarrydFacts::default()
        };
        report.endpoint = Some(process.endpoint.url.to_string());
        report.dir = Some(data_dir.display().to_string());
        progress(&format!(
            "quarryd pid {} healthy on {} after {:.2} s",
            facts.pid, process.endpoint.url, facts.start_s
        ));

        tokio::time::sleep(self.options.settle).await;
        let cells = async {
            facts.idle = Some(process.rss()?);
            let target = Target::S3 {
                s3: Arc::new(self.s3_client(&process.endpoint).await?),
                data_files: Some(Arc::from(data_dir.join("data"))),
            };
            self.cells(TargetKind::Quarryd, &target).await?;
            facts.after_run = Some(process.rss()?);
            anyhow::Ok(())
        }
        .await;
        // The cells' client is gone by now, so quarryd drains no connection of ours.
        let log_tail = process.log_tail();
        let stopped = process.stop().await;
        if let Ok((status, took)) = &stopped {
            facts.exit_status = Some(status.to_string());
            facts.shutdown_s = Some(round3(took.as_secs_f64()));
        }
        report.quarryd = Some(facts);
        match (cells, stopped) {
            (Ok(()), Ok((status, _))) => {
                ensure!(
                    status.success(),
                    "quarryd exited with {status} after SIGTERM; log:\n{log_tail}"
                );
                Ok(())
            }
            (Ok(()), Err(stop)) => Err(stop),
            (Err(cells), Ok(_)) => Err(anyhow!("{cells:#}\nquarryd log tail:\n{log_tail}")),
            (Err(cells), Err(stop)) => Err(anyhow!(
                "{cells:#}\nthen: {stop:#}\nquarryd log tail:\n{log_tail}"
            )),
        }
    }

    /// Runs the cells against an already-running Ceph peer (`ceph`: the judged one, from
    /// `--ceph-env`; `ceph_default`: the context one, from `--ceph-default-env`), or records
    /// why it was skipped.
    async fn ceph(&mut self, kind: TargetKind, report: &mut TargetReport) -> Result<()> {
        let (env, why) = if kind == TargetKind::CephDefault {
            (
                &self.options.ceph_default_env,
                "no --ceph-default-env given: start a second peer with \
                 `CEPH_PEER_DIR=/tmp/ceph-default CEPH_PEER_RGW_PORT=7482 \
                 CEPH_PEER_MON_PORT=3302 bash shared/tools/ceph-peer/start.sh` and pass \
                 `--ceph-default-env /tmp/ceph-default/env`; the context ratios against \
                 the peer without tcp_nodelay are not measured",
            )
        } else {
            (
                &self.options.ceph_env,
                "no --ceph-env given: start the peer from a copy of \
                 shared/tools/ceph-peer/start.sh with `tcp_nodelay=1` added to \
                 `rgw frontends` and pass `--ceph-env $CEPH_PEER_DIR/env` (see the crate \
                 docs); Ceph ratios are not measured",
            )
        };
        let Some(env_path) = env else {
            progress(&format!("{kind} SKIPPED: {why}"));
            report.status = TargetStatus::Skipped;
            report.message = Some(why.to_owned());
            return Ok(());
        };
        let peer = CephPeer::from_env_file(env_path)?;
        report.endpoint = Some(peer.endpoint.url.to_string());
        match peer.frontends() {
            Some(frontends) => {
                let nodelay = frontends.split_whitespace().any(|o| o == "tcp_nodelay=1");
                report
                    .notes
                    .push(format!("ceph.conf: rgw frontends = {frontends}"));
                if kind == TargetKind::Ceph && !nodelay {
                    report.notes.push(
                        "the judged peer runs without tcp_nodelay=1: its small GETs wait for \
                         delayed ACKs, which inflates the ratios against it"
                            .to_owned(),
                    );
                }
            }
            None => report
                .notes
                .push("rgw frontends unknown (no CEPH_CONF, or no such line in it)".to_owned()),
        }
        let target = Target::s3(self.s3_client(&peer.endpoint).await.with_context(|| {
            format!(
                "Ceph peer at {} is not usable (is it running?)",
                peer.endpoint.url
            )
        })?);
        let cells = self.cells(kind, &target).await;
        // The peer keeps objects in RAM: give the space back, whatever happened to the cells.
        let cleaned = async {
            let names = object_names(self.options);
            target
                .clean_up(&names)
                .await
                .context("deleting the run's objects")?;
            peer.collect_garbage().await
        }
        .await;
        report.notes.push(match &cleaned {
            Ok(()) => "objects deleted and RGW garbage collected after the run".to_owned(),
            Err(e) => {
                format!("cleanup incomplete, the peer may keep this run's data in RAM: {e:#}")
            }
        });
        cells
    }

    /// Runs the plain-file baseline next to quarryd's data dir.
    async fn plain(&mut self, report: &mut TargetReport) -> Result<()> {
        let plain = PlainTarget::new(&self.work.join("plain"))?;
        report.dir = Some(plain.dir().display().to_string());
        self.cells(TargetKind::Plain, &Target::Plain(Arc::new(plain)))
            .await
    }

    /// Runs the cells against an in-process HTTP server that answers from memory.
    async fn loopback(&mut self, report: &mut TargetReport) -> Result<()> {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let server = LoopbackServer::start(&self.payloads, threads)?;
        let endpoint = S3Endpoint {
            url: server
                .url()
                .parse()
                .context("loopback address is not a URL")?,
            region: "us-east-1".to_owned(),
            access_key: "loopback".to_owned(),
            secret_key: "loopback".to_owned(),
        };
        report.endpoint = Some(endpoint.url.to_string());
        let target = Target::s3(self.s3_client(&endpoint).await?);
        self.cells(TargetKind::Loopback, &target).await
    }
}

/// Best effort: a report without a revision is still a report.
fn git_revision() -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    output.status.success().then(|| text.trim().to_owned())
}

fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// A fresh directory for one run inside `work_dir` (created if missing), removed when dropped.
pub(crate) fn run_dir(work_dir: &Path, prefix: &str) -> Result<tempfile::TempDir> {
    std::fs::create_dir_all(work_dir)
        .with_context(|| format!("failed to create work dir {}", work_dir.display()))?;
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(work_dir)
        .with_context(|| format!("failed to create a run dir in {}", work_dir.display()))
}
