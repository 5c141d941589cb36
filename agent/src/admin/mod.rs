// SPDX-License-Identifier: Apache-2.0
//! The admin listener: `/health` and `/metrics` (open, for probes and Prometheus) and the
//! JSON admin API under `/v1/` (bearer token).
//!
//! Routes:
//! - `GET /health`: `200 ok` once the node serves.
//! - `GET /metrics`: Prometheus text exposition.
//! - `GET /v1/status`: [`NodeStatus`] as JSON.
//! - `GET /v1/buckets`: `[{"name", "created_unix"}]`.
//! - `PUT|GET|DELETE /v1/functions/{name}`, `GET /v1/functions`: deployed functions (the
//!   body of a `PUT` is the package, at most [`MAX_PACKAGE_BYTES`]).
//! - `GET /v1/devices`: the backends jobs are placed on, with load and measured rates.
//! - `GET /v1/kernels`, `GET|PUT|DELETE /v1/kernels/{name}`: the built-in and registered
//!   kernels; a `PUT` registers an OpenCL kernel (the body is its source or binary).
//! - `GET /v1/ebpf`, `GET|PUT|DELETE /v1/ebpf/{name}`: the built-in and registered eBPF
//!   device programs; a `PUT` registers one (the body is its ELF object).
//! - `POST /v1/triggers`, `GET /v1/triggers`, `DELETE /v1/triggers/{id}`.
//! - `GET /v1/events`, `POST /v1/events/{id}/retry`: the async event queue and dead letters.
//!
//! Errors are `{"error": "..."}` with a status that says whose fault it is: 400 for a bad
//! request or package, 404 for an unknown name or id, 409 for a conflict, 413 for a body over
//! the limit, 500 for the node's own failures.

mod devices;
mod ebpf;
mod events;
mod functions;
mod kernels;
mod status;
mod triggers;

pub use self::devices::{DeviceListing, RateListing};
pub use self::functions::{FunctionDetails, MAX_PACKAGE_BYTES};
pub use self::status::{DiskUsage, NodeStatus};

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use prometheus::{Encoder, Registry, TextEncoder};
use quarry_interceptor::ObjectStore;
use quarry_interceptor::functions::NodeKernels;
use quarry_interceptor::hooks::Hooks;
use quarry_offload::Scheduler;

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
    /// The store's read engine (what `LocalStore` chose at open).
    pub read_engine: Option<quarry_interceptor::store::local::ReadEngineInfo>,
}

/// Shared state of the admin service.
struct AdminState {
    registry: Registry,
    store: Arc<dyn ObjectStore>,
    token: Secret,
    info: NodeInfo,
    started: tokio::time::Instant,
    /// Functions, triggers and events (the same ones the S3 front end runs).
    hooks: Arc<Hooks>,
    /// The node's kernels, for registering and removing user kernels.
    kernels: Arc<NodeKernels>,
    /// Places jobs on the node's backends (`/v1/devices`).
    scheduler: Arc<Scheduler>,
    /// Held while a function is deleted or a trigger added, so that a trigger can never come
    /// to name a function deleted at the same moment.
    catalog_edit: tokio::sync::Mutex<()>,
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
    /// A service over the node's metrics registry, store, and functions, triggers and events.
    pub fn new(
        registry: Registry,
        store: Arc<dyn ObjectStore>,
        token: Secret,
        info: NodeInfo,
        hooks: Arc<Hooks>,
        kernels: Arc<NodeKernels>,
        scheduler: Arc<Scheduler>,
    ) -> Self {
        let started = tokio::time::Instant::now();
        Self {
            state: Arc::new(AdminState {
                registry,
                store,
                token,
                info,
                started,
                hooks,
                kernels,
                scheduler,
                catalog_edit: tokio::sync::Mutex::new(()),
            }),
        }
    }

    async fn route(state: Arc<AdminState>, req: Request<Incoming>) -> AdminResponse {
        if req.uri().path().starts_with("/v1/") {
            if !authorized(&req, &state.token) {
                return json_error(
                    StatusCode::UNAUTHORIZED,
                    "missing or wrong bearer token; send Authorization: Bearer $QUARRY_ADMIN_TOKEN",
                );
            }
            return Self::route_v1(state, req).await;
        }
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/health") => text(StatusCode::OK, "ok\n"),
            (&Method::GET, "/metrics") => metrics(&state.registry),
            _ => json_error(
                StatusCode::NOT_FOUND,
                "no such endpoint; try /health, /metrics or /v1/status",
            ),
        }
    }

    /// The `/v1/` endpoints, once the token is checked.
    async fn route_v1(state: Arc<AdminState>, req: Request<Incoming>) -> AdminResponse {
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let segments: Vec<&str> = path.trim_start_matches("/v1/").split('/').collect();
        match (&method, segments.as_slice()) {
            (&Method::GET, ["status"]) => {
                status::handle(&state.store, &state.info, state.started).await
            }
            (&Method::GET, ["buckets"]) => status::buckets(&state.store).await,
            (&Method::GET, ["functions"]) => functions::list(&state),
            (&Method::PUT, ["functions", name]) => functions::deploy(&state, name, req).await,
            (&Method::GET, ["functions", name]) => functions::show(&state, name),
            (&Method::DELETE, ["functions", name]) => functions::remove(&state, name).await,
            (&Method::GET, ["devices"]) => devices::list(&state),
            (&Method::GET, ["kernels"]) => kernels::list(&state),
            (&Method::GET, ["kernels", name]) => kernels::show(&state, name),
            (&Method::PUT, ["kernels", name]) => kernels::register(&state, name, req).await,
            (&Method::DELETE, ["kernels", name]) => kernels::remove(&state, name).await,
            (&Method::GET, ["ebpf"]) => ebpf::list(&state),
            (&Method::GET, ["ebpf", name]) => ebpf::show(&state, name),
            (&Method::PUT, ["ebpf", name]) => ebpf::register(&state, name, req).await,
            (&Method::DELETE, ["ebpf", name]) => ebpf::remove(&state, name).await,
            (&Method::GET, ["triggers"]) => triggers::list(&state),
            (&Method::POST, ["triggers"]) => triggers::add(&state, req).await,
            (&Method::DELETE, ["triggers", id]) => triggers::remove(&state, id).await,
            (&Method::GET, ["events"]) => events::list(&state).await,
            (&Method::POST, ["events", id, "retry"]) => events::retry(&state, id).await,
            _ => json_error(
                StatusCode::NOT_FOUND,
                &format!("no such admin endpoint: {method} {path}"),
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

/// Reads a request body of at most `limit` bytes; a larger one is answered `413`, naming
/// `what` and the limit.
async fn read_body(
    req: Request<Incoming>,
    limit: usize,
    what: &str,
) -> Result<Bytes, AdminResponse> {
    let too_large = || {
        json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "the {what} is larger than the limit of {}",
                bytesize::ByteSize::b(limit as u64)
            ),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(body) => Ok(body.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(json_error(
            StatusCode::BAD_REQUEST,
            &format!("failed to read the {what}: {e}"),
        )),
    }
}

/// Runs catalog work (fsync'd commits, compiles) on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AdminResponse> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("the operation failed unexpectedly: {e}"),
        )
    })
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
