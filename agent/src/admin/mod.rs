// SPDX-License-Identifier: Apache-2.0
//! The admin listener: `/health` and `/metrics` (open, for probes and Prometheus) and the
//! JSON admin API under `/v1/` (bearer token).
//!
//! Routes:
//! - `GET /health`: `200 ok` once the node serves.
//! - `GET /metrics`: Prometheus text exposition.
//! - `GET /v1/status`: [`NodeStatus`] as JSON.
//! - `GET /v1/buckets`: `[{"name", "created_unix"}]`.

mod status;

pub use self::status::{DiskUsage, NodeStatus};

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use prometheus::{Encoder, Registry, TextEncoder};
use quarry_interceptor::ObjectStore;

use crate::config::Secret;

/// Facts the admin API reports that do not change while the node runs.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// S3 endpoint URL.
    pub s3_endpoint: String,
    /// Admin endpoint URL.
    pub admin_endpoint: String,
    /// The data directory.
    pub data_dir: std::path::PathBuf,
}

/// Shared state of the admin service.
struct AdminState {
    registry: Registry,
    store: Arc<dyn ObjectStore>,
    token: Secret,
    info: NodeInfo,
    started: tokio::time::Instant,
}

/// The admin HTTP service.
#[derive(Clone)]
pub struct AdminService {
    state: Arc<AdminState>,
}

impl std::fmt::Debug for AdminService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminService")
            .field("info", &self.state.info)
            .finish_non_exhaustive()
    }
}

type AdminResponse = Response<Full<Bytes>>;

impl AdminService {
    /// A service over the node's metrics registry and store.
    pub fn new(
        registry: Registry,
        store: Arc<dyn ObjectStore>,
        token: Secret,
        info: NodeInfo,
    ) -> Self {
        let started = tokio::time::Instant::now();
        Self {
            state: Arc::new(AdminState {
                registry,
                store,
                token,
                info,
                started,
            }),
        }
    }

    async fn route(state: Arc<AdminState>, req: Request<Incoming>) -> AdminResponse {
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/health") => text(StatusCode::OK, "ok\n"),
            (&Method::GET, "/metrics") => metrics(&state.registry),
            (_, path) if path.starts_with("/v1/") => {
                if !authorized(&req, &state.token) {
                    return json_error(
                        StatusCode::UNAUTHORIZED,
                        "missing or wrong bearer token; send Authorization: Bearer $QUARRY_ADMIN_TOKEN",
                    );
                }
                match (req.method(), path) {
                    (&Method::GET, "/v1/status") => {
                        status::handle(&state.store, &state.info, state.started).await
                    }
                    (&Method::GET, "/v1/buckets") => status::buckets(&state.store).await,
                    _ => json_error(StatusCode::NOT_FOUND, "no such admin endpoint"),
                }
            }
            _ => json_error(
                StatusCode::NOT_FOUND,
                "no such endpoint; try /health, /metrics or /v1/status",
            ),
        }
    }
}

impl hyper::service::Service<Request<Incoming>> for AdminService {
    type Response = AdminResponse;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<AdminResponse, Infallible>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let state = Arc::clone(&self.state);
        Box::pin(async move { Ok(Self::route(state, req).await) })
    }
}

fn authorized(req: &Request<Incoming>, token: &Secret) -> bool {
    let Some(value) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(given) = value.strip_prefix("Bearer ") else {
        return false;
    };
    constant_time_eq(given.trim().as_bytes(), token.expose().as_bytes())
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn metrics(registry: &Registry) -> AdminResponse {
    let mut buf = Vec::new();
    let encoder = TextEncoder::new();
    match encoder.encode(&registry.gather(), &mut buf) {
        Ok(()) => response(StatusCode::OK, encoder.format_type(), buf),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("failed to encode metrics: {e}\n"),
        ),
    }
}

fn text(status: StatusCode, body: &str) -> AdminResponse {
    response(
        status,
        "text/plain; charset=utf-8",
        body.as_bytes().to_vec(),
    )
}

pub(crate) fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> AdminResponse {
    match serde_json::to_vec_pretty(value) {
        Ok(body) => response(status, "application/json", body),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("failed to encode JSON: {e}\n"),
        ),
    }
}

pub(crate) fn json_error(status: StatusCode, message: &str) -> AdminResponse {
    json(status, &serde_json::json!({ "error": message }))
}

fn response(status: StatusCode, content_type: &str, body: Vec<u8>) -> AdminResponse {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    if let Ok(v) = header::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison_needs_exact_match() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
