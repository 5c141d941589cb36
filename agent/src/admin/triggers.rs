// SPDX-License-Identifier: Apache-2.0
//! `/v1/triggers`: add, list and remove triggers.
//!
//! - `POST /v1/triggers`: the body is a [`TriggerSpec`] as JSON; `201` with the
//!   [`TriggerRecord`](quarry_interceptor::triggers::TriggerRecord). A trigger naming a function
//!   that is not deployed is `400`; one overlapping another synchronous trigger is `409`.
//! - `GET /v1/triggers`: every trigger, by id.
//! - `DELETE /v1/triggers/{id}`: `200` with the removed record.

use std::sync::Arc;

use http::{Request, StatusCode};
use hyper::body::Incoming;
use quarry_interceptor::triggers::{TriggerError, TriggerSpec};

use super::{AdminResponse, AdminState, blocking, json, json_error, read_body};

/// Largest trigger document.
const MAX_SPEC_BYTES: usize = 64 * 1024;

pub(super) async fn add(state: &Arc<AdminState>, req: Request<Incoming>) -> AdminResponse {
    let body = match read_body(req, MAX_SPEC_BYTES, "trigger document").await {
        Ok(body) => body,
        Err(resp) => return resp,
    };
    let spec: TriggerSpec = match serde_json::from_slice(&body) {
        Ok(spec) => spec,
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                &format!("invalid trigger: the body is not a trigger document: {e}"),
            );
        }
    };
    if spec.bucket.is_empty() {
        return json_error(StatusCode::BAD_REQUEST, "invalid trigger: name a bucket");
    }
    let _edit = state.catalog_edit.lock().await;
    let hooks = Arc::clone(&state.hooks);
    match blocking(move || {
        hooks
            .triggers
            .add(spec, |name| hooks.registry.get(name).is_some())
    })
    .await
    {
        Ok(Ok(record)) => json(StatusCode::CREATED, &record),
        Ok(Err(e)) => trigger_error(&e),
        Err(resp) => resp,
    }
}

pub(super) fn list(state: &AdminState) -> AdminResponse {
    json(StatusCode::OK, &state.hooks.triggers.list())
}

pub(super) async fn remove(state: &Arc<AdminState>, id: &str) -> AdminResponse {
    let Ok(id) = id.parse::<u64>() else {
        return json_error(
            StatusCode::BAD_REQUEST,
            &format!("{id:?} is not a trigger id (quarry trigger ls lists them)"),
        );
    };
    let hooks = Arc::clone(&state.hooks);
    match blocking(move || hooks.triggers.remove(id)).await {
        Ok(Ok(record)) => json(StatusCode::OK, &record),
        Ok(Err(e)) => trigger_error(&e),
        Err(resp) => resp,
    }
}

/// The one mapping from trigger errors to statuses.
fn trigger_error(e: &TriggerError) -> AdminResponse {
    let status = match e {
        TriggerError::Invalid { .. } => StatusCode::BAD_REQUEST,
        TriggerError::Overlap { .. } => StatusCode::CONFLICT,
        TriggerError::NoSuchTrigger { .. } => StatusCode::NOT_FOUND,
        TriggerError::Catalog(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    json_error(status, &e.to_string())
}
