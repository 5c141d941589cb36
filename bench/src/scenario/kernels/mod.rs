// SPDX-License-Identifier: Apache-2.0
//! Scenario `kernels`: the built-in kernels' throughput on one CPU core and on every OpenCL
//! device, the host-to-device bandwidth of each device, and how close the pipelined device
//! path comes to it.
//!
//! For each kernel workload the input (generated from a fixed seed, `--size` bytes, held in
//! memory) is fed in `--piece-size` pieces, as the store hands out buffers. The CPU side runs
//! the kernel's `CpuRun` through a `Framer` on one thread. Each device runs its `DeviceRun`
//! through the OpenCL executor (record-aligned chunks of `--chunk-size`, double buffered), the
//! way a job streams from host memory; its output must equal the CPU's. Each figure is the
//! best of `--runs` timed runs after one untimed run (program build, first-touch of buffers).
//!
//! Host-to-device bandwidth is measured with the executor's own upload path (pageable host
//! memory, non-blocking writes on an in-order queue). The pipeline ratio divides a kernel's
//! device throughput by it: on a GPU the target is 0.8 (transfers, not compute, bound the
//! pipeline); on CPU devices (PoCL) "upload" is a memory copy and the ratio is for context.
//!
//! Kernels named in the targets but not built in yet are reported as absent; nothing is
//! estimated.

pub mod corpus;
pub mod cpu_time;

use std::io::{self, Write};

use anyhow::{Context as _, Result};
use bytes::Bytes;
use quarry_kernels::{BoundKernel, Framer, Params};
use quarry_offload::DeviceClass;
use quarry_offload::backend::opencl::{ExecConfig, ExecError, OpenClRuntime, execute};
use serde::Serialize;
use tokio::time::Instant;

use self::corpus::Corpus;
use super::machine::MachineInfo;
use super::options::{KernelsOptions, size_label};
use super::ratios::ratio;
use super::report::{Comparison, Ratio, Summary, round3};
use super::table::write_ratios;
use super::target::progress;
use super::{git_revision, now_rfc3339};

/// Version of this report's shape; bump when a field changes meaning.
pub const FORMAT_VERSION: u32 = 1;

/// What the numbers do and do not say.
pub const CAVEATS: &[&str] = &[
    "GB/s are decimal (1e9 bytes per second) of input consumed, best of --runs after one untimed run.",
    "CPU figures are one thread on one core of this machine; the machine's other engineers' builds share its cores, so figures vary between runs.",
    "cpu_one_core_gbps counts wall-clock time; cpu_one_core_on_cpu_gbps divides by the measuring thread's own CPU time (Linux schedstat), leaving out the time it waited for a core that other work held; the judged figure is the wall-clock one.",
    "OpenCL CPU devices (PoCL) use every core of the machine, not one; their figures are not per core.",
    "Host-to-device bandwidth uses pageable host memory, as the executor does; pinned memory would be faster on a discrete GPU.",
    "Inputs are generated, held in memory and fed in --piece-size pieces; no disk or network is involved.",
];

/// The workloads: a kernel with preset parameters over one corpus.
const WORKLOADS: &[Workload] = &[
    Workload {
        label: "grep count",
        kernel: "grep",
        params: &[("pattern", "banana"), ("mode", "count")],
        corpus: Corpus::Text,
    },
    Workload {
        label: "grep lines",
        kernel: "grep",
        params: &[("pattern", "banana")],
        corpus: Corpus::Text,
    },
    Workload {
        label: "crc32c",
        kernel: "crc32c",
        params: &[],
        corpus: Corpus::Text,
    },
    Workload {
        label: "byte-histogram",
        kernel: "byte-histogram",
        params: &[],
        corpus: Corpus::Text,
    },
    Workload {
        label: "csv-filter",
        kernel: "csv-filter",
        params: &[("column", "status"), ("value", "500")],
        corpus: Corpus::Csv,
    },
    Workload {
        label: "jsonl-filter",
        kernel: "jsonl-filter",
        params: &[("field", "status"), ("value", "500")],
        corpus: Corpus::Jsonl,
    },
    Workload {
        label: "csv-agg",
        kernel: "csv-agg",
        params: &[("column", "bytes"), ("fn", "all")],
        corpus: Corpus::Csv,
    },
    Workload {
        label: "reed-solomon",
        kernel: "reed-solomon",
        params: &[("data", "4"), ("parity", "2"), ("unit", "4096")],
        corpus: Corpus::Text,
    },
    Workload {
        label: "xxh3",
        kernel: "xxh3",
        params: &[],
        corpus: Corpus::Text,
    },
];

/// One kernel with preset parameters over one corpus.
#[derive(Debug, Clone, Copy)]
struct Workload {
    label: &'static str,
    kernel: &'static str,
    params: &'static [(&'static str, &'static str)],
    corpus: Corpus,
}

/// The whole report.
#[derive(Debug, Serialize)]
pub struct KernelsReport {
    /// Always `kernels`.
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
    /// With which options.
    pub settings: KernelsSettings,
    /// What the numbers do and do not say.
    pub caveats: Vec<&'static str>,
    /// Whether OpenCL was found, and why not.
    pub opencl: OpenClStatus,
    /// Every device with its host-to-device bandwidth.
    pub devices: Vec<DeviceReport>,
    /// Every workload.
    pub kernels: Vec<KernelReport>,
    /// The figures that matter, each with its target and verdict.
    pub ratios: Vec<Ratio>,
    /// Counts of verdicts; `failed_targets` counts failed workloads.
    pub summary: Summary,
}

/// The options a report was taken with.
#[derive(Debug, Clone, Serialize)]
pub struct KernelsSettings {
    /// Input bytes per workload.
    pub size: u64,
    /// Bytes per piece fed in.
    pub piece_size: u64,
    /// Bytes per device chunk.
    pub chunk_size: u64,
    /// Chunks in flight per device.
    pub in_flight: usize,
    /// Timed runs per figure.
    pub runs: usize,
}

/// OpenCL on this machine.
#[derive(Debug, Clone, Serialize)]
pub struct OpenClStatus {
    /// Whether a device was found.
    pub available: bool,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One device.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceReport {
    /// Its backend name (`opencl-gpu-0`).
    pub name: String,
    /// `gpu`, `fpga` or `cpu`.
    pub class: &'static str,
    /// Its facts, as listed.
    pub description: String,
    /// Host-to-device bandwidth, GB/s, or why it was not measured.
    pub h2d_gbps: Option<f64>,
    /// The error, when the measurement failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One workload.
#[derive(Debug, Clone, Serialize)]
pub struct KernelReport {
    /// The workload (`grep count`).
    pub label: &'static str,
    /// The kernel.
    pub kernel: &'static str,
    /// Its parameters.
    pub params: Vec<(String, String)>,
    /// Its input.
    pub corpus: Corpus,
    /// `ran`, `absent` (not built in), `failed`.
    pub status: &'static str,
    /// Why it did not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Output bytes of one run.
    pub output_bytes: Option<u64>,
    /// One CPU core, wall-clock.
    pub cpu_one_core_gbps: Option<f64>,
    /// One CPU core, per second of the measuring thread's CPU time (best run); `None` where
    /// the OS does not report thread CPU time.
    pub cpu_one_core_on_cpu_gbps: Option<f64>,
    /// Each device.
    pub devices: Vec<KernelOnDevice>,
}

/// One workload on one device.
#[derive(Debug, Clone, Serialize)]
pub struct KernelOnDevice {
    /// The device's backend name.
    pub device: String,
    /// End-to-end GB/s through the executor from host memory.
    pub gbps: Option<f64>,
    /// `gbps` / the device's host-to-device bandwidth.
    pub ratio_to_h2d: Option<f64>,
    /// Whether the output equals the CPU's.
    pub matches_cpu: Option<bool>,
    /// The error, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Runs scenario `kernels` (blocking work on a blocking thread).
pub async fn run_kernels(options: &KernelsOptions) -> Result<KernelsReport> {
    let options = options.clone();
    tokio::task::spawn_blocking(move || run_blocking(&options))
        .await
        .context("the kernels scenario panicked")?
}

fn run_blocking(options: &KernelsOptions) -> Result<KernelsReport> {
    let started_at = now_rfc3339();
    let size = usize::try_from(options.size).context("--size does not fit in memory")?;
    let exec = ExecConfig {
        chunk_size: usize::try_from(options.chunk_size).context("--chunk-size is too large")?,
        in_flight: options.in_flight.max(1),
        max_record: 64 << 20,
    };
    let runtime = OpenClRuntime::load();
    let (opencl, devices) = match &runtime {
        Ok(rt) => (
            OpenClStatus {
                available: true,
                reason: None,
            },
            rt.devices()
                .iter()
                .map(|d| measure_h2d(d, size, options.runs))
                .collect(),
        ),
        Err(e) => {
            progress(&format!("OpenCL: {e}"));
            (
                OpenClStatus {
                    available: false,
                    reason: Some(e.to_string()),
                },
                Vec::new(),
            )
        }
    };
    let mut kernels = Vec::new();
    let mut inputs: Vec<(Corpus, Bytes)> = Vec::new();
    // Built-in kernels without a preset run with their defaults over text.
    let others: Vec<Workload> = quarry_kernels::builtin()
        .iter()
        .map(|k| k.info().name.as_ref())
        .filter(|name| !WORKLOADS.iter().any(|w| w.kernel == *name))
        .map(|name| Workload {
            label: name,
            kernel: name,
            params: &[],
            corpus: Corpus::Text,
        })
        .collect();
    for workload in WORKLOADS.iter().chain(&others) {
        let input = match inputs.iter().find(|(c, _)| *c == workload.corpus) {
            Some((_, bytes)) => bytes.clone(),
            None => {
                progress(&format!(
                    "generating {} of {:?}",
                    size_label(options.size),
                    workload.corpus
                ));
                let bytes = Bytes::from(workload.corpus.generate(size));
                inputs.push((workload.corpus, bytes.clone()));
                bytes
            }
        };
        let report = run_workload(
            workload,
            &input,
            options,
            &exec,
            runtime.as_ref().ok(),
            &devices,
        );
        progress(&describe(&report));
        kernels.push(report);
    }
    let ratios = judge(&kernels, &devices);
    let mut summary = Summary::new(&ratios, &[]);
    summary.failed_targets = kernels.iter().filter(|k| k.status == "failed").count();
    Ok(KernelsReport {
        scenario: "kernels",
        format_version: FORMAT_VERSION,
        started_at,
        finished_at: now_rfc3339(),
        revision: git_revision(),
        machine: MachineInfo::read(),
        settings: KernelsSettings {
            size: options.size,
            piece_size: options.piece_size,
            chunk_size: options.chunk_size,
            in_flight: options.in_flight,
            runs: options.runs,
        },
        caveats: CAVEATS.to_vec(),
        opencl,
        devices,
        kernels,
        ratios,
        summary,
    })
}

fn measure_h2d(
    device: &quarry_offload::backend::opencl::ClDevice,
    size: usize,
    runs: usize,
) -> DeviceReport {
    let info = device.info();
    let block = vec![0x5au8; size.clamp(1 << 20, 64 << 20)];
    let times = (size / block.len()).max(4);
    let mut best: Option<f64> = None;
    let mut error = None;
    for run in 0..=runs.max(1) {
        let start = Instant::now();
        match device.upload_repeatedly(&block, times) {
            Ok(()) if run > 0 => {
                let gbps = gbps((block.len() * times) as u64, start);
                best = Some(best.map_or(gbps, |b: f64| b.max(gbps)));
            }
            Ok(()) => {}
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    progress(&format!(
        "{}: host-to-device {}",
        info.backend_name(),
        best.map_or_else(|| "failed".to_owned(), |b| format!("{b:.2} GB/s"))
    ));
    DeviceReport {
        name: info.backend_name(),
        class: class_name(info.class),
        description: info.to_string(),
        h2d_gbps: best.map(round3),
        error,
    }
}

fn class_name(class: DeviceClass) -> &'static str {
    match class {
        DeviceClass::Gpu => "gpu",
        DeviceClass::Fpga => "fpga",
        DeviceClass::Cpu => "cpu",
        DeviceClass::Csd => "csd",
    }
}

fn run_workload(
    workload: &Workload,
    input: &Bytes,
    options: &KernelsOptions,
    exec: &ExecConfig,
    runtime: Option<&OpenClRuntime>,
    devices: &[DeviceReport],
) -> KernelReport {
    let mut report = KernelReport {
        label: workload.label,
        kernel: workload.kernel,
        params: workload
            .params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        corpus: workload.corpus,
        status: "ran",
        message: None,
        output_bytes: None,
        cpu_one_core_gbps: None,
        cpu_one_core_on_cpu_gbps: None,
        devices: Vec::new(),
    };
    let Some(kernel) = quarry_kernels::find(workload.kernel) else {
        report.status = "absent";
        report.message = Some(format!(
            "no built-in kernel {} on this revision; not measured",
            workload.kernel
        ));
        return report;
    };
    let bound = match Params::new(report.params.clone())
        .validate(kernel.info())
        .and_then(|p| kernel.bind(&p))
    {
        Ok(b) => b,
        Err(e) => {
            report.status = "failed";
            report.message = Some(format!("bind: {e}"));
            return report;
        }
    };
    let piece = usize::try_from(options.piece_size).unwrap_or(usize::MAX);
    let expected = match time_cpu(bound.as_ref(), input, piece, options.runs) {
        Ok((out, best, on_cpu)) => {
            report.cpu_one_core_gbps = Some(round3(best));
            report.cpu_one_core_on_cpu_gbps = on_cpu.map(round3);
            report.output_bytes = Some(out.len() as u64);
            Some(out)
        }
        Err(e) => {
            report.status = "failed";
            report.message = Some(format!("CPU run: {e}"));
            None
        }
    };
    let Some(runtime) = runtime else {
        return report;
    };
    for (device, facts) in runtime.devices().iter().zip(devices) {
        let mut on = KernelOnDevice {
            device: facts.name.clone(),
            gbps: None,
            ratio_to_h2d: None,
            matches_cpu: None,
            error: None,
        };
        if !kernel.info().opencl {
            on.error = Some("CPU-only kernel".to_owned());
        } else {
            match time_device(device, bound.as_ref(), input, piece, exec, options.runs) {
                Ok((out, best)) => {
                    on.gbps = Some(round3(best));
                    on.ratio_to_h2d = facts.h2d_gbps.map(|h| round3(best / h));
                    on.matches_cpu = expected.as_ref().map(|e| *e == out);
                    if on.matches_cpu == Some(false) {
                        report.status = "failed";
                        report.message = Some(format!(
                            "the output on {} differs from the CPU's",
                            facts.name
                        ));
                    }
                }
                Err(e) => {
                    report.status = "failed";
                    on.error = Some(e);
                }
            }
        }
        report.devices.push(on);
    }
    report
}

fn pieces(input: &Bytes, piece: usize) -> impl Iterator<Item = Bytes> + '_ {
    let piece = piece.max(1);
    (0..input.len().div_ceil(piece))
        .map(move |i| input.slice(i * piece..((i + 1) * piece).min(input.len())))
}

/// The CPU output, the best GB/s, and the best GB/s of the thread's CPU time.
fn time_cpu(
    bound: &dyn BoundKernel,
    input: &Bytes,
    piece: usize,
    runs: usize,
) -> Result<(Vec<u8>, f64, Option<f64>), String> {
    let mut best = 0f64;
    let mut best_on_cpu: Option<f64> = None;
    let mut output = Vec::new();
    for run in 0..=runs.max(1) {
        let mut cpu = bound.cpu().ok_or("no CPU variant")?;
        let mut framer = Framer::new(bound.framing(), 64 << 20);
        let mut out = Vec::new();
        let start = Instant::now();
        let cpu_start = cpu_time::thread_cpu_seconds();
        for p in pieces(input, piece) {
            for chunk in framer.push(p).map_err(|e| e.to_string())? {
                cpu.feed(&chunk, &mut out).map_err(|e| e.to_string())?;
            }
        }
        if let Some(last) = framer.finish() {
            cpu.feed(&last, &mut out).map_err(|e| e.to_string())?;
        }
        cpu.finish(&mut out).map_err(|e| e.to_string())?;
        let cpu_seconds = cpu_start
            .zip(cpu_time::thread_cpu_seconds())
            .map(|(a, b)| b - a)
            .filter(|s| *s > 0.0);
        if run > 0 {
            best = best.max(gbps(input.len() as u64, start));
            if let Some(seconds) = cpu_seconds {
                let on_cpu = input.len() as f64 / seconds / 1e9;
                best_on_cpu = Some(best_on_cpu.map_or(on_cpu, |b| b.max(on_cpu)));
            }
        }
        output = out;
    }
    Ok((output, best, best_on_cpu))
}

/// The device output and the best GB/s.
fn time_device(
    device: &quarry_offload::backend::opencl::ClDevice,
    bound: &dyn BoundKernel,
    input: &Bytes,
    piece: usize,
    exec: &ExecConfig,
    runs: usize,
) -> Result<(Vec<u8>, f64), String> {
    let mut best = 0f64;
    let mut output = Vec::new();
    for run in 0..=runs.max(1) {
        let run_ = bound.device().ok_or("no OpenCL variant")?;
        let mut out = Vec::new();
        let start = Instant::now();
        execute(
            device,
            run_,
            bound.framing(),
            exec,
            pieces(input, piece).map(Ok),
            |bytes| {
                out.extend_from_slice(&bytes);
                Ok::<(), ExecError>(())
            },
        )
        .map_err(|e| e.to_string())?;
        if run > 0 {
            best = best.max(gbps(input.len() as u64, start));
        }
        output = out;
    }
    Ok((output, best))
}

fn gbps(bytes: u64, start: Instant) -> f64 {
    bytes as f64 / start.elapsed().as_secs_f64().max(1e-9) / 1e9
}

/// The judged figures.
fn judge(kernels: &[KernelReport], devices: &[DeviceReport]) -> Vec<Ratio> {
    let cpu = |label: &str| -> Result<f64, String> {
        let k = kernels
            .iter()
            .find(|k| k.label == label)
            .ok_or_else(|| format!("no {label} workload"))?;
        k.cpu_one_core_gbps.ok_or_else(|| {
            k.message
                .clone()
                .unwrap_or_else(|| "not measured".to_owned())
        })
    };
    let mut ratios = vec![
        ratio(
            "grep_count_cpu_gbps_per_core".to_owned(),
            "grep (mode count) GB/s on one CPU core".to_owned(),
            cpu("grep count"),
            Some((Comparison::AtLeast, 10.0)),
        ),
        ratio(
            "csv_filter_cpu_gbps_per_core".to_owned(),
            "csv-filter GB/s on one CPU core".to_owned(),
            cpu("csv-filter"),
            Some((Comparison::AtLeast, 1.5)),
        ),
    ];
    let gpus: Vec<&DeviceReport> = devices.iter().filter(|d| d.class == "gpu").collect();
    for label in ["grep count", "csv-filter"] {
        let on = |device: &str| -> Result<f64, String> {
            kernels
                .iter()
                .find(|k| k.label == label)
                .and_then(|k| k.devices.iter().find(|d| d.device == device))
                .and_then(|d| d.ratio_to_h2d)
                .ok_or_else(|| format!("{label} on {device} was not measured"))
        };
        let key = label.replace([' ', '-'], "_");
        if gpus.is_empty() {
            ratios.push(ratio(
                format!("gpu_pipeline_{key}_vs_h2d"),
                format!("{label} end to end on a GPU / its host-to-device bandwidth"),
                Err("no GPU on this machine".to_owned()),
                Some((Comparison::AtLeast, 0.8)),
            ));
        }
        for device in devices {
            let goal = (device.class == "gpu").then_some((Comparison::AtLeast, 0.8));
            ratios.push(ratio(
                format!("pipeline_{key}_vs_h2d[{}]", device.name),
                format!(
                    "{label} end to end on {} / its host-to-device bandwidth",
                    device.name
                ),
                on(&device.name),
                goal,
            ));
        }
    }
    ratios
}

fn describe(k: &KernelReport) -> String {
    let mut line = format!("{:<16} {:<7}", k.label, k.status);
    if let Some(cpu) = k.cpu_one_core_gbps {
        line.push_str(&format!(" cpu {cpu:.3} GB/s"));
    }
    if let Some(on_cpu) = k.cpu_one_core_on_cpu_gbps {
        line.push_str(&format!(" (on-CPU {on_cpu:.3})"));
    }
    for d in &k.devices {
        match (d.gbps, &d.error) {
            (Some(g), _) => line.push_str(&format!(" | {} {g:.3} GB/s", d.device)),
            (None, Some(e)) => line.push_str(&format!(" | {} failed: {e}", d.device)),
            (None, None) => {}
        }
    }
    if let Some(m) = &k.message {
        line.push_str(&format!(" ({m})"));
    }
    line
}

/// Writes the measurements and the ratios as aligned text.
pub fn write_table(report: &KernelsReport, out: &mut impl Write) -> io::Result<()> {
    for d in &report.devices {
        writeln!(
            out,
            "{}: host-to-device {}",
            d.description,
            d.h2d_gbps
                .map_or_else(|| "not measured".to_owned(), |g| format!("{g:.2} GB/s"))
        )?;
    }
    if let Some(reason) = &report.opencl.reason {
        writeln!(out, "OpenCL not measured: {reason}")?;
    }
    for k in &report.kernels {
        writeln!(out, "{}", describe(k))?;
    }
    writeln!(out)?;
    write_ratios(&report.ratios, out)
}
