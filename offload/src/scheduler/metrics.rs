// SPDX-License-Identifier: Apache-2.0
//! Placement metrics: jobs, bytes and busy time by backend and kernel, queue depth by backend,
//! simulated device time by backend and work.
//!
//! The agent owns the registry; the scheduler updates these on every job. Label values come
//! from bounded sets: backend ids found at start, deployed kernel and function names, and the
//! fixed outcomes of [`Outcome::as_str`].

use prometheus::{CounterVec, IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::backend::{BackendError, FunctionFailure, Load, RunReport};

/// How a placed job ended, as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It finished.
    Ok,
    /// Its backend was full.
    Overloaded,
    /// Its reader went away.
    Cancelled,
    /// Bad parameters.
    BadParams,
    /// Anything else.
    Failed,
}

impl Outcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Overloaded => "overloaded",
            Self::Cancelled => "cancelled",
            Self::BadParams => "bad_params",
            Self::Failed => "failed",
        }
    }

    /// The outcome of a job's result.
    pub fn of(result: &Result<RunReport, BackendError>) -> Self {
        match result {
            Ok(_) => Self::Ok,
            Err(BackendError::Overloaded { .. }) => Self::Overloaded,
            Err(BackendError::BadParams { .. }) => Self::BadParams,
            Err(BackendError::FunctionFailed {
                cause: FunctionFailure::Cancelled,
                ..
            }) => Self::Cancelled,
            Err(_) => Self::Failed,
        }
    }
}

/// The scheduler's metrics. Cheap to clone (the handles are shared).
#[derive(Debug, Clone)]
pub struct SchedulerMetrics {
    /// `quarry_offload_jobs_total{backend, kernel, outcome}`.
    pub jobs: IntCounterVec,
    /// `quarry_offload_bytes_in_total{backend, kernel}`.
    pub bytes_in: IntCounterVec,
    /// `quarry_offload_bytes_out_total{backend, kernel}`.
    pub bytes_out: IntCounterVec,
    /// `quarry_offload_busy_seconds_total{backend, kernel}`: wall time of finished jobs.
    pub busy: CounterVec,
    /// `quarry_offload_queue_depth{backend}`: jobs running or waiting, at the last placement
    /// or completion on that backend.
    pub queue_depth: IntGaugeVec,
    /// `quarry_offload_device_seconds_total{backend, work}`: simulated device time of finished
    /// jobs on modelled devices (queue wait included).
    pub device_seconds: CounterVec,
}

impl SchedulerMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let jobs = IntCounterVec::new(
            Opts::new(
                "quarry_offload_jobs_total",
                "jobs placed by the scheduler, by backend, kernel and outcome",
            ),
            &["backend", "kernel", "outcome"],
        )?;
        let bytes_in = IntCounterVec::new(
            Opts::new(
                "quarry_offload_bytes_in_total",
                "input bytes of finished jobs, by backend and kernel",
            ),
            &["backend", "kernel"],
        )?;
        let bytes_out = IntCounterVec::new(
            Opts::new(
                "quarry_offload_bytes_out_total",
                "output bytes of finished jobs, by backend and kernel",
            ),
            &["backend", "kernel"],
        )?;
        let busy = CounterVec::new(
            Opts::new(
                "quarry_offload_busy_seconds_total",
                "wall time of finished jobs, by backend and kernel",
            ),
            &["backend", "kernel"],
        )?;
        let queue_depth = IntGaugeVec::new(
            Opts::new(
                "quarry_offload_queue_depth",
                "jobs running or waiting on a backend",
            ),
            &["backend"],
        )?;
        let device_seconds = CounterVec::new(
            Opts::new(
                "quarry_offload_device_seconds_total",
                "simulated device time of finished jobs on modelled devices, by backend and work",
            ),
            &["backend", "work"],
        )?;
        registry.register(Box::new(jobs.clone()))?;
        registry.register(Box::new(bytes_in.clone()))?;
        registry.register(Box::new(bytes_out.clone()))?;
        registry.register(Box::new(busy.clone()))?;
        registry.register(Box::new(queue_depth.clone()))?;
        registry.register(Box::new(device_seconds.clone()))?;
        Ok(Self {
            jobs,
            bytes_in,
            bytes_out,
            busy,
            queue_depth,
            device_seconds,
        })
    }

    /// Records a backend's load.
    pub fn record_load(&self, backend: &str, load: Load) {
        let depth = i64::try_from(load.running + load.queued).unwrap_or(i64::MAX);
        self.queue_depth.with_label_values(&[backend]).set(depth);
    }

    /// Records a job's end.
    pub fn record_job(
        &self,
        backend: &str,
        kernel: &str,
        result: &Result<RunReport, BackendError>,
    ) {
        let outcome = Outcome::of(result);
        self.jobs
            .with_label_values(&[backend, kernel, outcome.as_str()])
            .inc();
        if let Ok(report) = result {
            let labels = [backend, kernel];
            self.bytes_in
                .with_label_values(&labels)
                .inc_by(report.bytes_in);
            self.bytes_out
                .with_label_values(&labels)
                .inc_by(report.bytes_out);
            self.busy
                .with_label_values(&labels)
                .inc_by(report.wall_time.as_secs_f64());
            if let Some(device) = report.device_time {
                self.device_seconds
                    .with_label_values(&labels)
                    .inc_by(device.as_secs_f64());
            }
        }
    }
}
