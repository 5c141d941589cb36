// SPDX-License-Identifier: Apache-2.0
//! The HTTP service: s3s configured with Quarry's auth, access policy and limits, wrapped so
//! every request is counted and timed.

use std::sync::Arc;

use futures::future::BoxFuture;
use hyper::body::Incoming;
use s3s::auth::SimpleAuth;
use s3s::config::{S3Config, StaticConfigProvider};
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{HttpError, HttpResponse};
use tokio::time::Instant;

use super::{OperationSlot, QuarryAccess, S3Frontend};
use crate::metrics::S3Metrics;

/// What the S3 HTTP service needs besides the front end.
#[derive(Clone)]
pub struct S3ServiceConfig {
    /// Access key of the root identity.
    pub access_key: String,
    /// Secret key of the root identity.
    pub secret_key: String,
    /// Buckets anyone may read without signing.
    pub anonymous_read_buckets: Vec<String>,
    /// Largest XML request body, in bytes.
    pub max_xml_body_bytes: usize,
}

impl std::fmt::Debug for S3ServiceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3ServiceConfig")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("anonymous_read_buckets", &self.anonymous_read_buckets)
            .field("max_xml_body_bytes", &self.max_xml_body_bytes)
            .finish()
    }
}

/// Builds the metered S3 HTTP service over `frontend`.
pub fn build_service(
    frontend: S3Frontend,
    config: &S3ServiceConfig,
    metrics: S3Metrics,
) -> MeteredS3Service {
    let mut s3_config = S3Config::default();
    s3_config.xml_max_body_size = config.max_xml_body_bytes;
    let mut builder = S3ServiceBuilder::new(frontend);
    builder.set_auth(SimpleAuth::from_single(
        config.access_key.clone(),
        config.secret_key.clone(),
    ));
    builder.set_access(QuarryAccess::new(
        config.anonymous_read_buckets.iter().cloned(),
    ));
    builder.set_config(Arc::new(StaticConfigProvider::new(Arc::new(s3_config))));
    MeteredS3Service {
        inner: builder.build(),
        metrics,
    }
}

/// The s3s service with request metrics: count by operation and status, latency, in-flight.
#[derive(Debug, Clone)]
pub struct MeteredS3Service {
    inner: S3Service,
    metrics: S3Metrics,
}

/// Decrements the in-flight gauge when a request ends, however it ends (including a client
/// that disconnects and drops the future).
struct InFlight(prometheus::IntGauge);

impl InFlight {
    fn enter(gauge: &prometheus::IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl hyper::service::Service<http::Request<Incoming>> for MeteredS3Service {
    type Response = HttpResponse;
    type Error = HttpError;
    type Future = BoxFuture<'static, Result<HttpResponse, HttpError>>;

    fn call(&self, mut req: http::Request<Incoming>) -> Self::Future {
        let slot = OperationSlot::default();
        req.extensions_mut().insert(slot.clone());
        let inner = self.inner.clone();
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let _in_flight = InFlight::enter(&metrics.in_flight);
            let start = Instant::now();
            let result = hyper::service::Service::call(&inner, req).await;
            let op = slot.get().unwrap_or("Unauthenticated");
            let status = result.as_ref().map_or(500, |r| r.status().as_u16());
            metrics.observe_request(op, status, start.elapsed());
            result
        })
    }
}
