// SPDX-License-Identifier: Apache-2.0
//! `/v1/ebpf`: the eBPF device programs functions can run on computational-storage devices.
//!
//! - `GET /v1/ebpf`: every program, built-in and registered, as
//!   [`EbpfListing`](quarry_interceptor::functions::EbpfListing)s.
//! - `PUT /v1/ebpf/{name}?shape=filter&framing=lines&summary=..&params=a,b%3D1`: registers a
//!   program; the body is its eBPF ELF object (`clang -target bpf -O2 -c`). `201` with the
//!   record for a new program, `200` when it replaces one (functions using it run the new
//!   object from then on). An object the loader refuses (not an ELF, not BPF, no
//!   `quarry/chunk` section, an unknown helper, too large) is `400` with the loader's message.
//! - `GET /v1/ebpf/{name}`: the listing of one program, with its registration record for a
//!   registered one.
//! - `DELETE /v1/ebpf/{name}`: removes a registered program; `409` naming the functions that
//!   still run it.

use std::sync::Arc;

use http::{Request, StatusCode};
use hyper::body::Incoming;
use quarry_interceptor::functions::{UserEbpfError, UserEbpfRequest};

use super::{AdminResponse, AdminState, blocking, json, json_error, read_body};

pub(super) fn list(state: &AdminState) -> AdminResponse {
    json(StatusCode::OK, &state.hooks.registry.ebpf().listings())
}

pub(super) fn show(state: &AdminState, name: &str) -> AdminResponse {
    match state.hooks.registry.ebpf().listing(name) {
        Some(listing) => json(StatusCode::OK, &listing),
        None => json_error(
            StatusCode::NOT_FOUND,
            &format!("no eBPF program named {name:?}: `quarry ebpf ls` lists them"),
        ),
    }
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
    let programs = Arc::clone(state.hooks.registry.ebpf());
    let limit = programs.limits().max_object_bytes;
    let elf = match read_body(req, limit, "eBPF object").await {
        Ok(body) => body,
        Err(resp) => return resp,
    };
    let _edit = state.catalog_edit.lock().await;
    let registry = Arc::clone(&state.hooks.registry);
    let existed = programs.record(name).is_some();
    let result = blocking(move || {
        let record = programs.register(request, &elf)?;
        registry.rebind_ebpf(&record.name);
        Ok::<_, UserEbpfError>(record)
    })
    .await;
    match result {
        Ok(Ok(record)) if existed => json(StatusCode::OK, &record),
        Ok(Ok(record)) => json(StatusCode::CREATED, &record),
        Ok(Err(e)) => ebpf_error(&e),
        Err(resp) => resp,
    }
}

pub(super) async fn remove(state: &Arc<AdminState>, name: &str) -> AdminResponse {
    let _edit = state.catalog_edit.lock().await;
    let users: Vec<String> = state
        .hooks
        .registry
        .ebpf_users(name)
        .into_iter()
        .map(|f| format!("function {f}"))
        .collect();
    let programs = Arc::clone(state.hooks.registry.ebpf());
    let name = name.to_owned();
    match blocking(move || programs.remove(&name, &users)).await {
        Ok(Ok(record)) => json(StatusCode::OK, &record),
        Ok(Err(e)) => ebpf_error(&e),
        Err(resp) => resp,
    }
}

/// The one mapping from eBPF-program errors to statuses.
fn ebpf_error(e: &UserEbpfError) -> AdminResponse {
    let status = match e {
        UserEbpfError::BadName { .. }
        | UserEbpfError::BadRequest(_)
        | UserEbpfError::Invalid { .. } => StatusCode::BAD_REQUEST,
        UserEbpfError::Builtin { .. } | UserEbpfError::InUse { .. } => StatusCode::CONFLICT,
        UserEbpfError::NoSuchProgram { .. } => StatusCode::NOT_FOUND,
        UserEbpfError::Catalog(_) | UserEbpfError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    };
    json_error(status, &e.to_string())
}

/// Parses `shape`, `framing`, `summary` and `params`; anything else is refused by name.
fn register_request(name: &str, query: &str) -> Result<UserEbpfRequest, String> {
    let mut request = UserEbpfRequest {
        name: name.to_owned(),
        ..UserEbpfRequest::default()
    };
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "shape" => request.shape = value.into_owned(),
            "framing" => request.framing = value.into_owned(),
            "summary" => request.summary = value.into_owned(),
            "params" => request.params.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned),
            ),
            other => {
                return Err(format!(
                    "unknown query parameter {other:?}; use shape, framing, summary or params"
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
        let r = register_request("p", "shape=reduce&framing=records%3A16&params=a,b%3D1").unwrap();
        assert_eq!(r.framing, "records:16");
        assert_eq!(r.params, ["a", "b=1"]);
        assert!(
            register_request("p", "framing=lines")
                .unwrap_err()
                .contains("shape")
        );
        assert!(
            register_request("p", "shape=map")
                .unwrap_err()
                .contains("framing")
        );
        assert!(
            register_request("p", "shape=map&framing=lines&colour=red")
                .unwrap_err()
                .contains("\"colour\"")
        );
    }
}
