// SPDX-License-Identifier: Apache-2.0
//! Calibration: at start, a short self-test of every (kernel, backend) pair over synthetic
//! input, fitted to a fixed cost and a throughput ([`Rate::fit`]).
//!
//! Each pair runs once on a tiny input (warm-up: program builds, caches), then twice on each of
//! two sizes; the faster of each two is kept. The whole pass stops at the configured budget;
//! pairs left over keep their default rates and learn from real jobs.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use quarry_kernels::{Kernel, KernelInfo, ParamType};
use tokio::time::Instant;

use super::Scheduler;
use super::cost::Rate;
use crate::backend::{Backend, BackendError, BackendId, ChunkStream, Job, OutputSink, RunReport};
use crate::function::{Effects, Flow, FunctionLimits, FunctionSpec, InvocationContext, Variant};

/// Bytes per input piece handed to a backend (the size of a store read buffer).
const PIECE: usize = 256 * 1024;
/// The warm-up input.
const WARM_UP: usize = 4 * 1024;

/// What calibration measured and what it left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CalibrationReport {
    /// Pairs measured: (kernel, backend, fitted rate).
    pub measured: Vec<(String, BackendId, Rate)>,
    /// Pairs not measured: (kernel, backend, why).
    pub skipped: Vec<(String, BackendId, String)>,
    /// How long the pass took.
    pub elapsed: Duration,
}

impl Scheduler {
    /// Measures every (kernel, backend) pair among `kernels` and the backends that hold a
    /// variant, within the configured budget, and sets the fitted rates.
    pub async fn calibrate(&self, kernels: &[Arc<dyn Kernel>]) -> CalibrationReport {
        let started = Instant::now();
        let mut report = CalibrationReport::default();
        let large = usize::try_from(self.config.calibration_size.as_u64())
            .unwrap_or(usize::MAX)
            .max(64 * 1024);
        for kernel in kernels {
            let name = kernel.info().name.to_string();
            let spec = Arc::new(FunctionSpec {
                name: name.clone(),
                version: 0,
                limits: FunctionLimits::default(),
                permissions: Vec::new(),
                variants: vec![Variant::Kernel(Arc::clone(kernel))],
            });
            let params = sample_params(kernel.info());
            let input = sample_input(kernel.info(), large);
            for backend in &self.backends {
                if backend.variant_for(&spec).is_none() || is_modelled(backend.as_ref(), &name) {
                    // A modelled device answers for itself (`Backend::estimate`); measuring
                    // the host running its programs would tell nothing about the device.
                    continue;
                }
                let id = backend.id().clone();
                let Some(left) = self
                    .config
                    .calibration_budget
                    .checked_sub(started.elapsed())
                else {
                    report
                        .skipped
                        .push((name.clone(), id, "calibration budget spent".to_owned()));
                    continue;
                };
                let pair = Pair {
                    backend: backend.as_ref(),
                    spec: &spec,
                    params: &params,
                };
                match tokio::time::timeout(left, pair.measure(&input)).await {
                    Ok(Ok(rate)) => {
                        tracing::info!(
                            target: "quarry::scheduler", kernel = %name, backend = %id,
                            mb_per_sec = rate.bytes_per_sec / 1e6,
                            fixed_us = rate.fixed.as_micros(), "calibrated"
                        );
                        self.set_rate(&name, &id, rate);
                        report.measured.push((name.clone(), id, rate));
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(
                            target: "quarry::scheduler", kernel = %name, backend = %id,
                            "calibration failed, default rate kept: {e}"
                        );
                        report.skipped.push((name.clone(), id, e.to_string()));
                    }
                    Err(_) => report.skipped.push((
                        name.clone(),
                        id,
                        "calibration budget spent".to_owned(),
                    )),
                }
            }
        }
        report.elapsed = started.elapsed();
        tracing::info!(
            target: "quarry::scheduler",
            measured = report.measured.len(),
            skipped = report.skipped.len(),
            elapsed_ms = report.elapsed.as_millis(),
            "calibration done"
        );
        report
    }

    /// Calibrates every built-in kernel (see [`Scheduler::calibrate`]).
    pub async fn calibrate_builtin(&self) -> CalibrationReport {
        let kernels: Vec<Arc<dyn Kernel>> = quarry_kernels::builtin()
            .iter()
            .map(|&k| Arc::new(Builtin(k)) as Arc<dyn Kernel>)
            .collect();
        self.calibrate(&kernels).await
    }
}

/// A built-in kernel (a static) as a shareable kernel.
#[derive(Debug)]
pub(crate) struct Builtin(pub(crate) &'static dyn Kernel);

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

/// Whether `backend` has a device model of its own for `work`.
fn is_modelled(backend: &dyn Backend, work: &str) -> bool {
    let probe = crate::backend::Demand {
        work,
        input_bytes: 0,
        output_bytes: 0,
        location: &crate::backend::DataLocation::Host,
    };
    backend.estimate(&probe).is_some()
}

/// One kernel on one backend.
struct Pair<'a> {
    backend: &'a dyn Backend,
    spec: &'a Arc<FunctionSpec>,
    params: &'a [(String, String)],
}

impl Pair<'_> {
    async fn measure(&self, input: &Bytes) -> Result<Rate, BackendError> {
        let large = input.len();
        let small = (large / 16).max(WARM_UP);
        self.run_once(input.slice(..WARM_UP.min(large))).await?;
        let mut best_small = self.run_once(input.slice(..small)).await?;
        let mut best_large = self.run_once(input.clone()).await?;
        let again_small = self.run_once(input.slice(..small)).await?;
        let again_large = self.run_once(input.clone()).await?;
        if again_small.wall_time < best_small.wall_time {
            best_small = again_small;
        }
        if again_large.wall_time < best_large.wall_time {
            best_large = again_large;
        }
        let compute = |r: &RunReport| {
            let moved = self.backend.link().map_or(Duration::ZERO, |l| {
                l.transfer_time(r.bytes_in) + l.transfer_time(r.bytes_out)
            });
            r.wall_time.saturating_sub(moved)
        };
        let out_ratio = best_large.bytes_out as f64 / best_large.bytes_in.max(1) as f64;
        Ok(Rate::fit(
            (best_small.bytes_in, compute(&best_small)),
            (best_large.bytes_in, compute(&best_large)),
            out_ratio,
        ))
    }

    async fn run_once(&self, input: Bytes) -> Result<RunReport, BackendError> {
        let job = Job {
            function: Arc::clone(self.spec),
            context: InvocationContext {
                event: "invoke".to_owned(),
                params: self.params.iter().cloned().collect(),
                ..InvocationContext::default()
            },
            flow: Flow::Read,
            effects: Effects::new(),
            bucket: None,
            policy: super::Policy::Auto,
        };
        let (sink, mut rx) = OutputSink::channel(16);
        let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let result = self.backend.run(job, pieces(input), sink).await;
        let _ = drain.await;
        result
    }
}

/// `input` as a stream of store-sized pieces.
fn pieces(input: Bytes) -> ChunkStream {
    let count = input.len().div_ceil(PIECE);
    Box::pin(futures::stream::iter(0..count).map(move |i| {
        let end = ((i + 1) * PIECE).min(input.len());
        Ok(input.slice(i * PIECE..end))
    }))
}

/// The record shape a kernel reads, judged from its parameters: a `column` parameter means
/// CSV with a header, a `field` parameter JSON lines, anything else text lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SampleShape {
    Text,
    Csv,
    Jsonl,
}

fn sample_shape(info: &KernelInfo) -> SampleShape {
    if info.params.iter().any(|p| p.name == "column") {
        SampleShape::Csv
    } else if info.params.iter().any(|p| p.name == "field") {
        SampleShape::Jsonl
    } else {
        SampleShape::Text
    }
}

/// About `len` bytes (whole records, never more) of synthetic input of the shape `info`'s
/// kernel reads: records `id, name, score, note` where `name` is `quarry-0` .. `quarry-9`, so
/// [`sample_params`] select one record in ten. Calibration measures on it; benchmarks may too.
pub fn sample_input(info: &KernelInfo, len: usize) -> Bytes {
    let shape = sample_shape(info);
    let mut out = Vec::with_capacity(len + 128);
    if shape == SampleShape::Csv {
        out.extend_from_slice(b"id,name,score,note\n");
    }
    let mut i: u64 = 0;
    while out.len() < len {
        let (name, score, node) = (i % 10, (i * 7919) % 100_000, i % 13);
        let line = match shape {
            SampleShape::Csv | SampleShape::Text => {
                format!("{i},quarry-{name},{score},\"node {node} ok\"\n")
            }
            SampleShape::Jsonl => format!(
                "{{\"id\":{i},\"name\":\"quarry-{name}\",\"score\":{score},\"note\":\"node {node} ok\"}}\n"
            ),
        };
        out.extend_from_slice(line.as_bytes());
        i += 1;
    }
    let cut = out[..len.min(out.len())]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    out.truncate(cut);
    Bytes::from(out)
}

/// Values for the parameters `info`'s kernel requires (those without defaults) that fit
/// [`sample_input`]: `column` / `field` name the `name` column or key, text parameters match
/// one record in ten, other types take their least value.
pub fn sample_params(info: &KernelInfo) -> Vec<(String, String)> {
    let shape = sample_shape(info);
    info.params
        .iter()
        .filter(|p| p.default.is_none() || (shape != SampleShape::Text && p.name == "value"))
        .map(|p| {
            let value = match (p.name, p.ty) {
                ("column" | "field", _) => "name".to_owned(),
                ("value", _) if shape != SampleShape::Text => "quarry-7".to_owned(),
                (_, ParamType::Text) => "quarry-7,".to_owned(),
                (_, ParamType::Bool) => "false".to_owned(),
                (_, ParamType::UInt { min, max }) => 1u64.clamp(min, max).to_string(),
                (_, ParamType::Choice(words)) => {
                    words.first().copied().unwrap_or_default().to_owned()
                }
            };
            (p.name.to_owned(), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_kernel_binds_to_the_sample_params_and_finds_records() {
        for kernel in quarry_kernels::builtin() {
            let info = kernel.info();
            let input = sample_input(info, 100_000);
            assert!(
                input.len() <= 100_000 && input.len() > 99_000,
                "{}",
                input.len()
            );
            assert_eq!(input.last(), Some(&b'\n'));
            let params = quarry_kernels::Params::new(sample_params(info))
                .validate(info)
                .unwrap();
            kernel.bind(&params).unwrap();
        }
    }

    #[test]
    fn sample_text_has_many_lines() {
        let input = sample_input(quarry_kernels::builtin()[0].info(), 100_000);
        assert!(input.iter().filter(|&&b| b == b'\n').count() > 1_000);
    }

    #[tokio::test]
    async fn pieces_cover_the_input_in_order() {
        let input = Bytes::from(vec![b'a'; PIECE * 2 + 10]);
        let got: Vec<Bytes> = pieces(input.clone()).map(|r| r.unwrap()).collect().await;
        assert_eq!(got.len(), 3);
        assert_eq!(got.concat(), input.to_vec());
    }
}
