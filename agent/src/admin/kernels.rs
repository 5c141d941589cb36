// SPDX-License-Identifier: Apache-2.0
//! `/v1/kernels`: the kernels functions can run.
//!
//! - `GET /v1/kernels`: every kernel, built-in and registered, as
//!   [`KernelListing`](quarry_interceptor::functions::KernelListing)s by name.
//! - `PUT /v1/kernels/{name}?shape=filter&framing=lines&summary=..&binary_for=DEVICE`: registers
//!   an OpenCL kernel; the body is its OpenCL C source, or with `binary_for` a prebuilt binary
//!   for the named device (FPGA boards). `201` with the record for a new kernel, `200` when it
//!   replaces one (functions using it run the new build from then on). A build failure is
//!   `400` with `build_log`; a node without OpenCL answers `501`.
//! - `GET /v1/kernels/{name}`: the listing of one kernel, with its registration record for a
//!   registered one.
//! - `DELETE /v1/kernels/{name}`: removes a registered kernel; `409` naming the functions and
//!   triggers that still use it.

use std::sync::Arc;

use http::{Request, StatusCode};
use hyper::body::Incoming;
use quarry_interceptor::functions::{
    KernelBuildError, KernelListing, UserKernelError, UserKernelRequest,
    user_kernels::MAX_KERNEL_BYTES,
};

use super::{AdminResponse, AdminState, blocking, json, json_error, read_body};

fn origin(name: &str) -> &'static str {
    if quarry_kernels::find(name).is_some() {
        "builtin"
    } else {
        "user"
    }
}

pub(super) fn list(state: &AdminState) -> AdminResponse {
    let kernels = state.hooks.registry.kernels();
    let mut listings: Vec<KernelListing> = kernels
        .all()
        .iter()
        .map(|k| KernelListing::new(k.as_ref(), origin(&k.info().name)))
        .collect();
    listings.sort_by(|a, b| a.name.cmp(&b.name));
    json(StatusCode::OK, &listings)
}

pub(super) fn show(state: &AdminState, name: &str) -> AdminResponse {
    let Some(kernel) = state.hooks.registry.kernels().kernel(name) else {
        return json_error(
            StatusCode::NOT_FOUND,
            &format!("no kernel named {name:?}: `quarry kernel ls` lists them"),
        );
    };
    let listing = KernelListing::new(kernel.as_ref(), origin(name));
    let mut value = serde_json::to_value(&listing).unwrap_or_default();
    if let (Some(record), Some(map)) = (state.kernels.record(name), value.as_object_mut()) {
        map.insert(
            "registration".to_owned(),
            serde_json::to_value(record).unwrap_or_default(),
        );
    }
    json(StatusCode::OK, &value)
}

pub(super) async fn register(
    state: &Arc<AdminState>,
    name: &str,
    req: Request<Incoming>,
) -> AdminResponse {
    let request = match register_request(name, req.uri().query().unwrap_or("")) {
        Ok(request) => request,
        Err(message) => return json_error(StatusCode::BAD_REQUEST, &message),
    };
    let code = match read_body(req, MAX_KERNEL_BYTES, "kernel code").await {
        Ok(body) => body,
        Err(resp) => return resp,
    };
    let _edit = state.catalog_edit.lock().await;
    let kernels = Arc::clone(&state.kernels);
    let registry = Arc::clone(&state.hooks.registry);
    let existed = kernels.record(name).is_some();
    let result = blocking(move || {
        let record = kernels.register(request, &code, |n| registry.is_deployed(n))?;
        registry.rebind_kernel(&record.name);
        Ok::<_, UserKernelError>(record)
    })
    .await;
    match result {
        Ok(Ok(record)) if existed => json(StatusCode::OK, &record),
        Ok(Ok(record)) => json(StatusCode::CREATED, &record),
        Ok(Err(e)) => kernel_error(&e),
        Err(resp) => resp,
    }
}

pub(super) async fn remove(state: &Arc<AdminState>, name: &str) -> AdminResponse {
    let _edit = state.catalog_edit.lock().await;
    let mut users: Vec<String> = state
        .hooks
        .registry
        .kernel_users(name)
        .into_iter()
        .map(|f| format!("function {f}"))
        .collect();
    users.extend(
        state
            .hooks
            .triggers
            .users_of(name)
            .into_iter()
            .map(|t| format!("trigger {t}")),
    );
    let kernels = Arc::clone(&state.kernels);
    let name = name.to_owned();
    match blocking(move || kernels.remove(&name, &users)).await {
        Ok(Ok(record)) => json(StatusCode::OK, &record),
        Ok(Err(e)) => kernel_error(&e),
        Err(resp) => resp,
    }
}

/// The one mapping from user-kernel errors to statuses.
fn kernel_error(e: &UserKernelError) -> AdminResponse {
    let status = match e {
        UserKernelError::BadName { .. } | UserKernelError::BadRequest(_) => StatusCode::BAD_REQUEST,
        UserKernelError::Build { source, .. } => match source {
            KernelBuildError::Unavailable(_) => StatusCode::NOT_IMPLEMENTED,
            KernelBuildError::Invalid(_) => StatusCode::BAD_REQUEST,
            KernelBuildError::Build { log } => {
                return json(
                    StatusCode::BAD_REQUEST,
                    &serde_json::json!({ "error": e.to_string(), "build_log": log }),
                );
            }
        },
        UserKernelError::NameTaken { .. }
        | UserKernelError::Builtin { .. }
        | UserKernelError::InUse { .. } => StatusCode::CONFLICT,
        UserKernelError::NoSuchKernel { .. } => StatusCode::NOT_FOUND,
        UserKernelError::Catalog(_) | UserKernelError::Io { .. } => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    json_error(status, &e.to_string())
}

/// Parses `shape`, `framing`, `summary` and `binary_for`; anything else is refused by name.
fn register_request(name: &str, query: &str) -> Result<UserKernelRequest, String> {
    let mut request = UserKernelRequest {
        name: name.to_owned(),
        ..UserKernelRequest::default()
    };
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "shape" => request.shape = value.into_owned(),
            "framing" => request.framing = value.into_owned(),
            "summary" => request.summary = value.into_owned(),
            "binary_for" => request.binary_for = Some(value.into_owned()),
            other => {
                return Err(format!(
                    "unknown query parameter {other:?}; use shape, framing, summary or binary_for"
                ));
            }
        }
    }
    if request.shape.is_empty() {
        return Err("shape is required: filter, map or reduce".to_owned());
    }
    if request.framing.is_empty() {
        return Err("framing is required: bytes, lines, csv or records:N".to_owned());
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_request_needs_shape_and_framing_and_names_unknown_keys() {
        let r =
            register_request("k", "shape=filter&framing=records%3A16&binary_for=board0").unwrap();
        assert_eq!(r.framing, "records:16");
        assert_eq!(r.binary_for.as_deref(), Some("board0"));
        assert!(
            register_request("k", "framing=lines")
                .unwrap_err()
                .contains("shape")
        );
        assert!(
            register_request("k", "shape=map")
                .unwrap_err()
                .contains("framing")
        );
        assert!(
            register_request("k", "shape=map&framing=lines&colour=red")
                .unwrap_err()
                .contains("\"colour\"")
        );
    }
}
