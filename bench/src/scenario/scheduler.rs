// SPDX-License-Identifier: Apache-2.0
//! Scenario `scheduler`: does the cost model pick the backend that actually finishes first?
//!
//! Over a sweep of input sizes x the built-in kernels x the backends of this machine (the
//! native CPU pool and every OpenCL device found), in this process and from memory: the
//! scheduler is calibrated once (its start-up self-test), then for every point it is asked
//! for its pick (an idle node, the input size known) before every backend that holds a
//! variant runs the point `runs` times; the median wall time of each is its time. Judged: the
//! share of points (with at least two candidates) where the pick was the fastest, target at
//! least 95%. Every miss is listed with what it cost.
//!
//! Invariants: the pick is asked before the point is measured and the measured jobs do not
//! feed the model (the figure judges calibration plus the model, not online learning); every
//! backend of a point reads the same bytes; a backend that fails a point is reported with the
//! error and the point is not judged.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use bytes::Bytes;
use clap::Args;
use futures::StreamExt as _;
use quarry_kernels::{Kernel, KernelInfo};
use quarry_offload::config::OpenClConfig;
use quarry_offload::scheduler::{sample_input, sample_params};
use quarry_offload::{
    Backend, ChunkStream, Effects, Flow, FunctionLimits, FunctionSpec, InvocationContext, Job,
    NativeBackend, NativeConfig, OpenClBackend, OutputSink, Policy, Scheduler, SchedulerConfig,
    Variant,
};
use serde::Serialize;
use tokio::time::Instant;

use super::machine::MachineInfo;
use super::options::{parse_size, size_label};
use super::report::round3;
use super::target::progress;
use super::{git_revision, now_rfc3339};

/// Version of this report's shape; bump when a field changes meaning.
pub const FORMAT_VERSION: u32 = 1;
/// Least share of judged points where the pick must be the fastest backend.
pub const PICK_TARGET: f64 = 0.95;
/// Bytes per input piece handed to a backend (a store read buffer).
const PIECE: usize = 1 << 20;

/// Options of the `scheduler` scenario.
#[derive(Debug, Clone, Args)]
pub struct SchedulerOptions {
    /// Input sizes of the sweep.
    #[arg(long, value_delimiter = ',', value_parser = parse_size,
          default_value = "64KiB,1MiB,16MiB,256MiB")]
    pub sizes: Vec<u64>,

    /// Timed runs per (point, backend); the median is its time.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,

    /// Kernels to sweep (names); empty: every built-in kernel.
    #[arg(long, value_delimiter = ',')]
    pub kernels: Vec<String>,

    /// Leave OpenCL devices out (native CPU only).
    #[arg(long)]
    pub no_opencl: bool,

    /// Where to write the JSON report.
    #[arg(long, default_value = "bench/reports/scheduler.json")]
    pub out: PathBuf,
}

/// The whole report.
#[derive(Debug, Serialize)]
pub struct SchedulerReport {
    /// Always `scheduler`.
    pub scenario: &'static str,
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// RFC 3339 start time.
    pub started_at: String,
    /// RFC 3339 end time.
    pub finished_at: String,
    /// `git describe --always --dirty`, when known.
    pub revision: Option<String>,
    /// Where it ran.
    pub machine: MachineInfo,
    /// Sizes (bytes), runs, kernels asked for.
    pub settings: Settings,
    /// What the numbers do and do not say.
    pub caveats: Vec<String>,
    /// The backends placed on, with what calibration measured.
    pub backends: Vec<BackendRow>,
    /// How long calibration took, and the pairs it left out.
    pub calibration: CalibrationRow,
    /// Every point of the sweep.
    pub points: Vec<Point>,
    /// Judged points where the pick was not the fastest.
    pub misses: Vec<Miss>,
    /// The judged figure.
    pub summary: PickSummary,
}

/// The options a report was taken with.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Input sizes, bytes.
    pub sizes: Vec<u64>,
    /// Timed runs per (point, backend).
    pub runs: usize,
    /// Kernels swept.
    pub kernels: Vec<String>,
    /// Why OpenCL is absent, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opencl_absent: Option<String>,
}

/// One backend and its calibrated rates.
#[derive(Debug, Clone, Serialize)]
pub struct BackendRow {
    /// Backend id.
    pub id: String,
    /// Device class.
    pub class: String,
    /// Calibrated MB/s per kernel.
    pub calibrated_mb_per_sec: BTreeMap<String, f64>,
    /// Calibrated fixed cost per job, microseconds, per kernel.
    pub calibrated_fixed_us: BTreeMap<String, u128>,
}

/// What calibration did.
#[derive(Debug, Clone, Serialize)]
pub struct CalibrationRow {
    /// Wall time of the whole pass, ms.
    pub elapsed_ms: u128,
    /// Pairs measured.
    pub measured: usize,
    /// Pairs left at default rates: `kernel on backend: why`.
    pub skipped: Vec<String>,
}

/// One (kernel, size) point.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// Kernel name.
    pub kernel: String,
    /// Input size asked for (the input is whole records, up to this many bytes).
    pub size: u64,
    /// Input bytes (the estimate assumed them too).
    pub input_bytes: u64,
    /// `size` for people.
    pub size_label: String,
    /// The scheduler's pick, asked before measuring.
    pub pick: String,
    /// Its estimate per backend, ms.
    pub estimate_ms: BTreeMap<String, f64>,
    /// Median measured wall time per backend, ms.
    pub measured_ms: BTreeMap<String, f64>,
    /// Backends that failed the point: id -> error.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub failed: BTreeMap<String, String>,
    /// The backend with the least measured time.
    pub fastest: Option<String>,
    /// Whether the point counts (two or more candidates measured, none failed).
    pub judged: bool,
    /// Whether the pick was the fastest.
    pub hit: bool,
}

/// A judged point where the pick lost.
#[derive(Debug, Clone, Serialize)]
pub struct Miss {
    /// Kernel name.
    pub kernel: String,
    /// Input size.
    pub size_label: String,
    /// The pick.
    pub pick: String,
    /// The fastest.
    pub fastest: String,
    /// Pick's measured time over the fastest's.
    pub slowdown: f64,
}

/// The judged figure.
#[derive(Debug, Clone, Serialize)]
pub struct PickSummary {
    /// Points measured.
    pub points: usize,
    /// Points with two or more candidates, none failed.
    pub judged: usize,
    /// Judged points where the pick was the fastest.
    pub hits: usize,
    /// `hits / judged`, when any point was judged.
    pub fraction: Option<f64>,
    /// [`PICK_TARGET`].
    pub target: f64,
    /// `pass`, `fail`, or `not_measured` (nothing to judge: one backend only).
    pub verdict: &'static str,
    /// Mean slowdown of the pick over the fastest across judged points (1.0: always right).
    pub mean_slowdown: Option<f64>,
}

/// Runs scenario `scheduler`.
pub async fn run_scheduler(options: &SchedulerOptions) -> Result<SchedulerReport> {
    anyhow::ensure!(!options.sizes.is_empty(), "--sizes is empty");
    anyhow::ensure!(options.runs > 0, "--runs must be at least 1");
    let started_at = now_rfc3339();
    let mut machine = MachineInfo::read();
    let kernels = chosen_kernels(&options.kernels)?;

    let native = NativeBackend::new(&NativeConfig::default()).context("native pool")?;
    let mut backends: Vec<Arc<dyn Backend>> = vec![Arc::new(native)];
    let mut opencl_absent = None;
    if options.no_opencl {
        opencl_absent = Some("left out (--no-opencl)".to_owned());
    } else {
        match OpenClBackend::discover(&OpenClConfig::default()) {
            Ok(devices) if devices.is_empty() => opencl_absent = Some("no device".to_owned()),
            Ok(devices) => {
                for d in devices {
                    progress(&format!("OpenCL device {} ({})", d.id(), d.class()));
                    backends.push(Arc::new(d));
                }
            }
            Err(e) => opencl_absent = Some(e.to_string()),
        }
    }
    if let Some(why) = &opencl_absent {
        progress(&format!("OpenCL: none ({why}); native CPU only"));
    }
    let scheduler = Scheduler::new(backends.clone(), SchedulerConfig::default());
    let calibration = scheduler.calibrate(&kernels).await;
    progress(&format!(
        "calibrated {} pairs in {} ms ({} skipped)",
        calibration.measured.len(),
        calibration.elapsed.as_millis(),
        calibration.skipped.len()
    ));

    let mut points = Vec::new();
    for kernel in &kernels {
        let name = kernel.info().name.to_string();
        let spec = function_for(kernel);
        let params = sample_params(kernel.info());
        for &size in &options.sizes {
            let input = sample_input(kernel.info(), usize::try_from(size)?);
            let point = measure_point(&scheduler, &spec, &params, &input, size, options.runs).await;
            progress(&format!(
                "{name} {}: pick {} fastest {} {:?}",
                size_label(size),
                point.pick,
                point.fastest.as_deref().unwrap_or("-"),
                point.measured_ms
            ));
            points.push(point);
        }
    }

    let misses: Vec<Miss> = points
        .iter()
        .filter(|p| p.judged && !p.hit)
        .map(|p| {
            let fastest = p.fastest.clone().unwrap_or_default();
            Miss {
                kernel: p.kernel.clone(),
                size_label: p.size_label.clone(),
                pick: p.pick.clone(),
                slowdown: round3(p.measured_ms[&p.pick] / p.measured_ms[&fastest]),
                fastest,
            }
        })
        .collect();
    let summary = summarize(&points);
    let rows = scheduler
        .devices()
        .into_iter()
        .map(|d| BackendRow {
            id: d.id.0,
            class: d.class.to_string(),
            calibrated_mb_per_sec: d
                .rates
                .iter()
                .map(|(k, r)| (k.clone(), round3(r.bytes_per_sec / 1e6)))
                .collect(),
            calibrated_fixed_us: d
                .rates
                .iter()
                .map(|(k, r)| (k.clone(), r.fixed.as_micros()))
                .collect(),
        })
        .collect();
    machine.load_average_end = super::machine::load_average();
    Ok(SchedulerReport {
        scenario: "scheduler",
        format_version: FORMAT_VERSION,
        started_at,
        finished_at: now_rfc3339(),
        revision: git_revision(),
        machine,
        settings: Settings {
            sizes: options.sizes.clone(),
            runs: options.runs,
            kernels: kernels.iter().map(|k| k.info().name.to_string()).collect(),
            opencl_absent,
        },
        caveats: caveats(),
        backends: rows,
        calibration: CalibrationRow {
            elapsed_ms: calibration.elapsed.as_millis(),
            measured: calibration.measured.len(),
            skipped: calibration
                .skipped
                .iter()
                .map(|(k, b, why)| format!("{k} on {b}: {why}"))
                .collect(),
        },
        points,
        misses,
        summary,
    })
}

fn caveats() -> Vec<String> {
    vec![
        "In this process, from memory, no HTTP or disk: the input is one buffer handed to the backend in 1 MiB slices; a backend's time is from the call to the last output byte read.".to_owned(),
        "The pick is asked before a point is measured, on an idle node, from calibration alone (the sweep's jobs are run on the backends directly and do not teach the model); in service, every finished job also corrects the rates.".to_owned(),
        "Points where two backends finish within noise of each other can go either way; each miss lists the pick's slowdown over the fastest, so a miss of 1.05 costs 5%.".to_owned(),
        "On shared 2-core VMs absolute times are noise; the OpenCL device here, when present, is PoCL on the same CPU cores as the native pool.".to_owned(),
    ]
}

fn summarize(points: &[Point]) -> PickSummary {
    let judged: Vec<&Point> = points.iter().filter(|p| p.judged).collect();
    let hits = judged.iter().filter(|p| p.hit).count();
    let fraction = (!judged.is_empty()).then(|| round3(hits as f64 / judged.len() as f64));
    let mean_slowdown = (!judged.is_empty()).then(|| {
        let sum: f64 = judged
            .iter()
            .filter_map(|p| {
                let fastest = p.fastest.as_ref()?;
                Some(p.measured_ms[&p.pick] / p.measured_ms[fastest])
            })
            .sum();
        round3(sum / judged.len() as f64)
    });
    PickSummary {
        points: points.len(),
        judged: judged.len(),
        hits,
        fraction,
        target: PICK_TARGET,
        verdict: match fraction {
            None => "not_measured",
            Some(f) if f >= PICK_TARGET => "pass",
            Some(_) => "fail",
        },
        mean_slowdown,
    }
}

async fn measure_point(
    scheduler: &Scheduler,
    spec: &Arc<FunctionSpec>,
    params: &[(String, String)],
    input: &Bytes,
    size: u64,
    runs: usize,
) -> Point {
    let placement = scheduler.place(&job(spec, params, input.len() as u64));
    let (pick, estimate_ms) = match &placement {
        Ok(p) => (
            p.chosen.backend.0.clone(),
            p.candidates
                .iter()
                .map(|e| (e.backend.0.clone(), round3(e.total().as_secs_f64() * 1e3)))
                .collect(),
        ),
        Err(e) => (format!("none: {e}"), BTreeMap::new()),
    };
    let mut measured_ms = BTreeMap::new();
    let mut failed = BTreeMap::new();
    for backend in scheduler.backends() {
        if backend.variant_for(spec).is_none() {
            continue;
        }
        let id = backend.id().0.clone();
        match time_backend(backend.as_ref(), spec, params, input, runs).await {
            Ok(median) => {
                measured_ms.insert(id, round3(median.as_secs_f64() * 1e3));
            }
            Err(e) => {
                failed.insert(id, e);
            }
        }
    }
    let fastest = measured_ms
        .iter()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(id, _)| id.clone());
    let judged = failed.is_empty() && measured_ms.len() >= 2 && placement.is_ok();
    let hit = fastest.as_deref() == Some(pick.as_str());
    Point {
        kernel: spec.name.clone(),
        size,
        input_bytes: input.len() as u64,
        size_label: size_label(size),
        pick,
        estimate_ms,
        measured_ms,
        failed,
        fastest,
        judged,
        hit,
    }
}

/// One untimed run (program builds, caches), then `runs` timed runs; the median.
async fn time_backend(
    backend: &dyn Backend,
    spec: &Arc<FunctionSpec>,
    params: &[(String, String)],
    input: &Bytes,
    runs: usize,
) -> Result<Duration, String> {
    run_once(backend, spec, params, input).await?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        times.push(run_once(backend, spec, params, input).await?);
    }
    times.sort();
    Ok(times[times.len() / 2])
}

async fn run_once(
    backend: &dyn Backend,
    spec: &Arc<FunctionSpec>,
    params: &[(String, String)],
    input: &Bytes,
) -> Result<Duration, String> {
    let job = job(spec, params, input.len() as u64);
    let (sink, mut rx) = OutputSink::channel(16);
    let started = Instant::now();
    let drain = async move { while rx.recv().await.is_some() {} };
    let (result, ()) = tokio::join!(backend.run(job, pieces(input.clone()), sink), drain);
    let elapsed = started.elapsed();
    result.map(|_| elapsed).map_err(|e| e.to_string())
}

fn job(spec: &Arc<FunctionSpec>, params: &[(String, String)], size: u64) -> Job {
    let mut context = InvocationContext {
        event: "invoke".to_owned(),
        params: params.iter().cloned().collect(),
        ..InvocationContext::default()
    };
    context.facts.size = Some(size);
    Job {
        function: Arc::clone(spec),
        context,
        flow: Flow::Read,
        effects: Effects::new(),
        bucket: None,
        policy: Policy::Auto,
    }
}

fn pieces(input: Bytes) -> ChunkStream {
    let count = input.len().div_ceil(PIECE);
    Box::pin(futures::stream::iter(0..count).map(move |i| {
        let end = ((i + 1) * PIECE).min(input.len());
        Ok(input.slice(i * PIECE..end))
    }))
}

/// A built-in kernel (a static) as a shareable kernel.
#[derive(Debug)]
struct Builtin(&'static dyn Kernel);

impl Kernel for Builtin {
    fn info(&self) -> &KernelInfo {
        self.0.info()
    }

    fn bind(
        &self,
        params: &quarry_kernels::Params,
    ) -> Result<Arc<dyn quarry_kernels::BoundKernel>, quarry_kernels::KernelError> {
        self.0.bind(params)
    }
}

fn chosen_kernels(names: &[String]) -> Result<Vec<Arc<dyn Kernel>>> {
    let all = quarry_kernels::builtin();
    if names.is_empty() {
        return Ok(all
            .iter()
            .map(|&k| Arc::new(Builtin(k)) as Arc<dyn Kernel>)
            .collect());
    }
    names
        .iter()
        .map(|n| {
            quarry_kernels::find(n)
                .map(|k| Arc::new(Builtin(k)) as Arc<dyn Kernel>)
                .with_context(|| {
                    let known: Vec<_> = all.iter().map(|k| k.info().name.to_string()).collect();
                    format!("no built-in kernel {n:?}; known: {}", known.join(", "))
                })
        })
        .collect()
}

fn function_for(kernel: &Arc<dyn Kernel>) -> Arc<FunctionSpec> {
    Arc::new(FunctionSpec {
        name: kernel.info().name.to_string(),
        version: 1,
        limits: FunctionLimits::default(),
        permissions: Vec::new(),
        variants: vec![Variant::Kernel(Arc::clone(kernel))],
    })
}

/// Prints the summary and the misses.
pub fn write_table(report: &SchedulerReport, out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "{:<16} {:>8}  {:<24} {:<24} measured ms",
        "kernel", "size", "pick", "fastest"
    )?;
    for p in &report.points {
        writeln!(
            out,
            "{:<16} {:>8}  {:<24} {:<24} {:?}",
            p.kernel,
            p.size_label,
            p.pick,
            p.fastest.as_deref().unwrap_or("-"),
            p.measured_ms
        )?;
    }
    let s = &report.summary;
    writeln!(
        out,
        "pick was fastest at {}/{} judged points ({}; target {}): {}",
        s.hits,
        s.judged,
        s.fraction
            .map_or_else(|| "-".to_owned(), |f| format!("{f}")),
        s.target,
        s.verdict
    )?;
    for m in &report.misses {
        writeln!(
            out,
            "  miss: {} {}: picked {}, {} was faster ({}x)",
            m.kernel, m.size_label, m.pick, m.fastest, m.slowdown
        )?;
    }
    Ok(())
}
