// SPDX-License-Identifier: Apache-2.0
//! S3 request and store metrics.
//!
//! The interceptor defines and updates them; the agent owns the registry and exposes it on
//! `/metrics`. Names and labels are documented in `docs/metrics.md`.

use std::time::Duration;

use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

use crate::store::StoreError;

/// Latency buckets in seconds: 100 µs to 30 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// Metrics of the S3 front end. Cheap to clone (the handles are shared).
#[derive(Debug, Clone)]
pub struct S3Metrics {
    /// `quarry_s3_requests_total{op, status}`.
    pub requests: IntCounterVec,
    /// `quarry_s3_request_duration_seconds{op}`: until the response head is ready.
    pub latency: HistogramVec,
    /// `quarry_s3_requests_in_flight`.
    pub in_flight: IntGauge,
    /// `quarry_s3_bytes_in_total`: object bytes stored by PUT, UploadPart and UploadPartCopy.
    pub bytes_in: IntCounter,
    /// `quarry_s3_bytes_out_total`: object bytes sent by GET.
    pub bytes_out: IntCounter,
    /// `quarry_store_errors_total{kind}`: store failures (`io`, `index`, `corrupt`) and
    /// request errors by kind.
    pub store_errors: IntCounterVec,
}

impl S3Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "quarry_s3_requests_total",
                "S3 requests by operation and HTTP status",
            ),
            &["op", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "quarry_s3_request_duration_seconds",
                "S3 request latency until the response head",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["op"],
        )?;
        let in_flight = IntGauge::new("quarry_s3_requests_in_flight", "S3 requests being served")?;
        let bytes_in = IntCounter::new(
            "quarry_s3_bytes_in_total",
            "object bytes received and stored",
        )?;
        let bytes_out =
            IntCounter::new("quarry_s3_bytes_out_total", "object bytes sent to clients")?;
        let store_errors = IntCounterVec::new(
            Opts::new(
                "quarry_store_errors_total",
                "errors returned by the object store, by kind",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(bytes_in.clone()))?;
        registry.register(Box::new(bytes_out.clone()))?;
        registry.register(Box::new(store_errors.clone()))?;
        Ok(Self {
            requests,
            latency,
            in_flight,
            bytes_in,
            bytes_out,
            store_errors,
        })
    }

    /// Metrics registered in a private registry, for tests and tools.
    pub fn unregistered() -> Self {
        Self::register(&Registry::new()).expect("a fresh registry has no name collisions")
    }

    /// Records one finished request.
    pub fn observe_request(&self, op: &str, status: u16, elapsed: Duration) {
        let status = status.to_string();
        self.requests
            .with_label_values(&[op, status.as_str()])
            .inc();
        self.latency
            .with_label_values(&[op])
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a store error by kind.
    pub fn record_store_error(&self, err: &StoreError) {
        self.store_errors
            .with_label_values(&[store_error_kind(err)])
            .inc();
    }
}

/// A stable, low-cardinality label for a store error.
fn store_error_kind(err: &StoreError) -> &'static str {
    match err {
        StoreError::Io { .. } => "io",
        StoreError::Index { .. } => "index",
        StoreError::Corrupt { .. } => "corrupt",
        StoreError::Body { .. } => "body",
        StoreError::NoSuchBucket { .. }
        | StoreError::NoSuchKey { .. }
        | StoreError::NoSuchUpload { .. } => "not_found",
        StoreError::PreconditionFailed { .. } => "precondition",
        StoreError::EntityTooLarge { .. } => "too_large",
        _ => "invalid_request",
    }
}

/// Metrics of function invocations (triggers, explicit invocation, async events).
#[derive(Debug, Clone)]
pub struct FunctionMetrics {
    /// `quarry_function_invocations_total{function, backend, outcome}`; outcome is `ok`,
    /// `failed`, `rejected` or `overloaded`.
    pub invocations: IntCounterVec,
    /// `quarry_function_duration_seconds{function}`: wall time of successful runs.
    pub duration: HistogramVec,
    /// `quarry_function_cpu_seconds_total{function}`: CPU time charged to successful runs.
    pub cpu_seconds: prometheus::CounterVec,
    /// `quarry_function_bytes_in_total{function}`: input bytes read by successful runs.
    pub bytes_in: IntCounterVec,
    /// `quarry_function_bytes_out_total{function}`: output bytes written by successful runs.
    pub bytes_out: IntCounterVec,
}

impl FunctionMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let invocations = IntCounterVec::new(
            Opts::new(
                "quarry_function_invocations_total",
                "function runs by function, backend and outcome",
            ),
            &["function", "backend", "outcome"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "quarry_function_duration_seconds",
                "wall time of successful function runs",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["function"],
        )?;
        let cpu_seconds = prometheus::CounterVec::new(
            Opts::new(
                "quarry_function_cpu_seconds_total",
                "CPU time charged to successful function runs",
            ),
            &["function"],
        )?;
        let bytes_in = IntCounterVec::new(
            Opts::new(
                "quarry_function_bytes_in_total",
                "input bytes read by functions",
            ),
            &["function"],
        )?;
        let bytes_out = IntCounterVec::new(
            Opts::new(
                "quarry_function_bytes_out_total",
                "output bytes written by functions",
            ),
            &["function"],
        )?;
        registry.register(Box::new(invocations.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(cpu_seconds.clone()))?;
        registry.register(Box::new(bytes_in.clone()))?;
        registry.register(Box::new(bytes_out.clone()))?;
        Ok(Self {
            invocations,
            duration,
            cpu_seconds,
            bytes_in,
            bytes_out,
        })
    }

    /// Records a successful run of `function`.
    pub fn record_ok(&self, function: &str, report: &quarry_offload::RunReport) {
        self.invocations
            .with_label_values(&[function, &report.backend, "ok"])
            .inc();
        self.duration
            .with_label_values(&[function])
            .observe(report.wall_time.as_secs_f64());
        self.cpu_seconds
            .with_label_values(&[function])
            .inc_by(report.cpu_time.as_secs_f64());
        self.bytes_in
            .with_label_values(&[function])
            .inc_by(report.bytes_in);
        self.bytes_out
            .with_label_values(&[function])
            .inc_by(report.bytes_out);
    }

    /// Records a failed job.
    pub fn record_err(&self, err: &quarry_offload::BackendError) {
        use quarry_offload::BackendError;
        let (function, backend, outcome) = match err {
            BackendError::FunctionFailed {
                function, backend, ..
            } => (function.as_str(), backend.as_str(), "failed"),
            BackendError::Rejected { function, .. } => (function.as_str(), "-", "rejected"),
            BackendError::BadParams { function, .. } | BackendError::NoBackend { function, .. } => {
                (function.as_str(), "-", "invalid")
            }
            BackendError::Overloaded { backend, .. } => ("-", backend.as_str(), "overloaded"),
            BackendError::Unsupported {
                function, backend, ..
            }
            | BackendError::Setup {
                function, backend, ..
            } => (function.as_str(), backend.as_str(), "failed"),
        };
        let name = function.split('@').next().unwrap_or(function);
        self.invocations
            .with_label_values(&[name, backend, outcome])
            .inc();
    }
}
