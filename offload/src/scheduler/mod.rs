// SPDX-License-Identifier: Apache-2.0
//! The scheduler: places each job on the backend the cost model expects to finish it first.
//!
//! [`Scheduler`] is itself a [`Backend`], so callers hold one `Arc<dyn Backend>` whatever the
//! node has. For each job the candidates are the backends holding a variant of the function
//! that the job's [`Policy`] allows; each gets an [`Estimate`] (queue wait, transfers over its
//! link, compute from the calibrated rate of that work on that backend) and the smallest total
//! wins. The choice is recorded on the job's effects before any output (the `x-quarry-backend`
//! header), in the [`RunReport`], in the metrics and in a debug log line with the breakdown.
//! Every finished job corrects the rate it was placed by.
//!
//! Invariants: placement never blocks (it reads loads and the rate table only); the rate table
//! lock is never held across an await; a job that fails is not learned from.

mod calibrate;
mod config;
mod cost;
mod metrics;
mod policy;

pub use self::calibrate::{CalibrationReport, sample_input, sample_params};
pub use self::config::SchedulerConfig;
pub use self::cost::{BackendView, CostModel, Estimate, Rate};
pub use self::metrics::{Outcome, SchedulerMetrics};
pub use self::policy::{Policy, PolicyError};

use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::backend::{
    Backend, BackendError, BackendId, ChunkStream, DataLocation, Demand, DeviceClass, Job, Link,
    Load, OutputSink, RunReport, VariantKind,
};
use crate::function::{FunctionSpec, Variant};

/// Places jobs across backends (see the module docs).
pub struct Scheduler {
    id: BackendId,
    backends: Vec<Arc<dyn Backend>>,
    model: Mutex<CostModel>,
    config: SchedulerConfig,
    metrics: Option<SchedulerMetrics>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&BackendId> = self.backends.iter().map(|b| b.id()).collect();
        f.debug_struct("Scheduler")
            .field("backends", &ids)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Where a job goes, and what every candidate was estimated at.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// The winner.
    pub chosen: Estimate,
    /// Every candidate the policy allowed, in backend order (the winner included).
    pub candidates: Vec<Estimate>,
    /// The work the rates are kept for: the kernel's name, or the function's for WebAssembly.
    pub work: String,
    /// The input size the estimate assumed.
    pub input_bytes: u64,
}

/// One backend in a device listing (`quarry devices`).
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceRow {
    /// The backend.
    pub id: BackendId,
    /// Its class.
    pub class: DeviceClass,
    /// Its load now.
    pub load: Load,
    /// Its link, if any.
    pub link: Option<Link>,
    /// Measured rates per work (kernel or function), sorted by name.
    pub rates: Vec<(String, Rate)>,
}

impl Scheduler {
    /// A scheduler over `backends` (in the order ties are broken), with default rates until
    /// [`Scheduler::calibrate`] or real jobs measure them.
    pub fn new(backends: Vec<Arc<dyn Backend>>, config: SchedulerConfig) -> Self {
        Self {
            id: BackendId("scheduler".to_owned()),
            backends,
            model: Mutex::new(CostModel::default()),
            config,
            metrics: None,
        }
    }

    /// Updates `metrics` on every job from now on.
    #[must_use]
    pub fn with_metrics(mut self, metrics: SchedulerMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The backends it places on.
    pub fn backends(&self) -> &[Arc<dyn Backend>] {
        &self.backends
    }

    /// Its configuration.
    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    fn model(&self) -> MutexGuard<'_, CostModel> {
        self.model
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The measured rate of `work` on `backend`, if it has been measured.
    pub fn rate(&self, work: &str, backend: &BackendId) -> Option<Rate> {
        self.model().measured(work, backend)
    }

    /// Sets the rate of `work` on `backend` (tests, and restoring a saved calibration).
    pub fn set_rate(&self, work: &str, backend: &BackendId, rate: Rate) {
        self.model().set_rate(work, backend, rate);
    }

    /// Every backend with its load, link and measured rates, for `quarry devices`.
    pub fn devices(&self) -> Vec<DeviceRow> {
        let rates = self.model().rates();
        self.backends
            .iter()
            .map(|b| DeviceRow {
                id: b.id().clone(),
                class: b.class(),
                load: b.load(),
                link: b.link(),
                rates: rates
                    .iter()
                    .filter(|(id, _, _)| id == b.id())
                    .map(|(_, work, rate)| (work.clone(), *rate))
                    .collect(),
            })
            .collect()
    }

    /// The estimate of every backend the job's policy allows (empty when none).
    pub fn estimates(&self, job: &Job) -> Vec<Estimate> {
        self.place(job).map(|p| p.candidates).unwrap_or_default()
    }

    /// Where `job` would run now, without running it.
    pub fn place(&self, job: &Job) -> Result<Placement, BackendError> {
        self.place_indexed(job).map(|(_, placement)| placement)
    }

    fn place_indexed(&self, job: &Job) -> Result<(usize, Placement), BackendError> {
        let function = &job.function;
        let holders: Vec<(usize, VariantKind)> = self
            .backends
            .iter()
            .enumerate()
            .filter_map(|(i, b)| b.variant_for(function).map(|v| (i, v)))
            .collect();
        let allowed: Vec<(usize, VariantKind)> = match &job.policy {
            Policy::Auto => holders.clone(),
            Policy::Require(class) => holders
                .iter()
                .copied()
                .filter(|(i, _)| self.backends[*i].class() == *class)
                .collect(),
            Policy::Backend(id) => holders
                .iter()
                .copied()
                .filter(|(i, _)| self.backends[*i].id() == id)
                .collect(),
            Policy::Prefer(class) => {
                let preferred: Vec<_> = holders
                    .iter()
                    .copied()
                    .filter(|(i, _)| self.backends[*i].class() == *class)
                    .collect();
                if preferred.is_empty() {
                    holders.clone()
                } else {
                    preferred
                }
            }
        };
        if allowed.is_empty() {
            return Err(self.no_backend(job, &holders));
        }
        let location = &job.context.location;
        let allowed = automatic_only(&self.backends, &job.policy, location, allowed);
        let input_bytes = job
            .context
            .facts
            .size
            .unwrap_or(self.config.default_input_size.as_u64());
        let work = work_name(function, allowed[0].1);
        // The device the input sits on, if any: every other backend pays its host read.
        let source = match location {
            DataLocation::Host => None,
            DataLocation::Device(id) => self.backends.iter().find(|b| b.id() == id),
        };
        let model = self.model();
        let candidates: Vec<Estimate> = allowed
            .iter()
            .map(|&(i, variant)| {
                let b = &self.backends[i];
                let work = work_name(function, variant);
                let view = BackendView {
                    id: b.id(),
                    class: b.class(),
                    variant,
                    load: b.load(),
                    link: b.link(),
                };
                let ratio = model
                    .out_ratio(&work)
                    .unwrap_or_else(|| prior_out_ratio(function));
                let demand = Demand {
                    work: &work,
                    input_bytes,
                    output_bytes: scale(input_bytes, ratio),
                    location,
                };
                let mut estimate = match b.estimate(&demand) {
                    Some(parts) => Estimate::modelled(view, parts),
                    None => model.estimate(&work, input_bytes, view),
                };
                if let Some(read) = source
                    .filter(|s| s.id() != b.id())
                    .and_then(|s| s.host_read_time(input_bytes))
                {
                    estimate.add_host_read(read, input_bytes, view.link.is_none());
                }
                estimate
            })
            .collect();
        drop(model);
        let best = candidates
            .iter()
            .enumerate()
            .min_by_key(|(_, e)| e.total())
            .map_or(0, |(k, _)| k);
        let index = allowed[best].0;
        Ok((
            index,
            Placement {
                chosen: candidates[best].clone(),
                candidates,
                work,
                input_bytes,
            },
        ))
    }

    fn no_backend(&self, job: &Job, holders: &[(usize, VariantKind)]) -> BackendError {
        let available = if holders.is_empty() {
            "none".to_owned()
        } else {
            holders
                .iter()
                .map(|(i, _)| {
                    let b = &self.backends[*i];
                    format!("{} ({})", b.id(), b.class())
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        BackendError::NoBackend {
            function: job.function.label(),
            policy: job.policy.clone(),
            available,
        }
    }
}

/// The candidates automatic placement may use for input at `location`: backends that decline
/// such work under `auto` (`Backend::accepts_auto`: a storage device for data not on it) are
/// dropped unless the policy names their class or id, or nothing would be left.
fn automatic_only(
    backends: &[Arc<dyn Backend>],
    policy: &Policy,
    location: &DataLocation,
    allowed: Vec<(usize, VariantKind)>,
) -> Vec<(usize, VariantKind)> {
    let named = |b: &dyn Backend| match policy {
        Policy::Require(class) | Policy::Prefer(class) => *class == b.class(),
        Policy::Backend(id) => id == b.id(),
        Policy::Auto => false,
    };
    let kept: Vec<_> = allowed
        .iter()
        .copied()
        .filter(|&(i, _)| {
            let b = backends[i].as_ref();
            named(b) || b.accepts_auto(location)
        })
        .collect();
    if kept.is_empty() { allowed } else { kept }
}

/// Output per input byte expected of a function before any job of it finished: a reduction's
/// result is small, anything else is assumed as large as its input.
fn prior_out_ratio(function: &FunctionSpec) -> f64 {
    let reduces = function.variants.iter().any(
        |v| matches!(v, Variant::Kernel(k) if k.info().shape == quarry_kernels::Shape::Reduce),
    );
    if reduces { 0.0 } else { 1.0 }
}

/// `bytes` times `ratio`, in whole bytes.
fn scale(bytes: u64, ratio: f64) -> u64 {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a non-negative estimate; the float-to-int cast saturates"
    )]
    let scaled = (bytes as f64 * ratio.max(0.0)) as u64;
    scaled
}

/// The name rates are kept under: a kernel's name for kernel variants (so every function
/// deployed from one kernel shares its calibration), the function's name for WebAssembly.
pub fn work_name(function: &FunctionSpec, variant: VariantKind) -> String {
    if variant == VariantKind::Wasm {
        return function.name.clone();
    }
    function
        .variants
        .iter()
        .find_map(|v| match v {
            Variant::Kernel(k) if variant != VariantKind::Ebpf => Some(k.info().name.to_string()),
            Variant::Ebpf(k) if variant == VariantKind::Ebpf => Some(format!(
                "ebpf:{}",
                quarry_kernels::Kernel::info(k.as_ref()).name
            )),
            Variant::Kernel(_) | Variant::Ebpf(_) | Variant::Wasm(_) => None,
        })
        .unwrap_or_else(|| function.name.clone())
}

#[async_trait]
impl Backend for Scheduler {
    fn id(&self) -> &BackendId {
        &self.id
    }

    /// The scheduler presents itself as the host; the class that ran a job is on its report.
    fn class(&self) -> DeviceClass {
        DeviceClass::Cpu
    }

    fn variant_for(&self, function: &FunctionSpec) -> Option<VariantKind> {
        self.backends.iter().find_map(|b| b.variant_for(function))
    }

    fn load(&self) -> Load {
        self.backends.iter().fold(Load::default(), |acc, b| {
            let l = b.load();
            Load {
                running: acc.running + l.running,
                capacity: acc.capacity + l.capacity,
                queued: acc.queued + l.queued,
            }
        })
    }

    async fn run(
        &self,
        job: Job,
        input: ChunkStream,
        out: OutputSink,
    ) -> Result<RunReport, BackendError> {
        let (index, placement) = self.place_indexed(&job)?;
        let backend = Arc::clone(&self.backends[index]);
        let chosen = &placement.chosen;
        log_placement(&job, &placement);
        job.effects.set_backend(chosen.backend.clone());
        if let Some(m) = &self.metrics {
            m.record_load(&chosen.backend.0, backend.load());
        }
        let link = backend.link();
        let variant = chosen.variant;
        let work = work_name(&job.function, variant);
        let result = backend.run(job, input, out).await.map(|mut report| {
            report.backend = chosen.backend.0.clone();
            report
        });
        if let Ok(report) = &result {
            self.model()
                .observe(&work, &chosen.backend, variant, link, report);
        }
        if let Some(m) = &self.metrics {
            m.record_job(&chosen.backend.0, &work, &result);
            m.record_load(&chosen.backend.0, backend.load());
        }
        result
    }
}

fn log_placement(job: &Job, placement: &Placement) {
    let c = &placement.chosen;
    let others: Vec<String> = placement
        .candidates
        .iter()
        .filter(|e| e.backend != c.backend)
        .map(|e| format!("{}={}us", e.backend, e.total().as_micros()))
        .collect();
    tracing::debug!(
        target: "quarry::scheduler",
        function = %job.function.label(),
        work = %placement.work,
        policy = %job.policy,
        input_bytes = placement.input_bytes,
        location = %job.context.location,
        backend = %c.backend,
        total_us = c.total().as_micros(),
        queue_us = c.queue_wait.as_micros(),
        transfer_in_us = c.transfer_in.as_micros(),
        compute_us = c.compute.as_micros(),
        transfer_out_us = c.transfer_out.as_micros(),
        overlap_us = c.overlap.as_micros(),
        measured = c.measured,
        modelled = c.modelled,
        others = %others.join(" "),
        "placed job"
    );
}
