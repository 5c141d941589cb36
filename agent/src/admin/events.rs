// SPDX-License-Identifier: Apache-2.0
//! `/v1/events`: the asynchronous event queue.
//!
//! - `GET /v1/events`: [`EventsView`](quarry_interceptor::events::EventsView), the pending
//!   events (intents and ready) and the dead letters, by id.
//! - `POST /v1/events/{id}/retry`: puts a dead letter back in the queue with its attempts
//!   reset; `200` with the event.

use std::sync::Arc;

use http::StatusCode;
use quarry_interceptor::events::EventError;

use super::{AdminResponse, AdminState, blocking, json, json_error};

pub(super) async fn list(state: &Arc<AdminState>) -> AdminResponse {
    let events = Arc::clone(&state.hooks.events);
    match blocking(move || events.list()).await {
        Ok(Ok(view)) => json(StatusCode::OK, &view),
        Ok(Err(e)) => event_error(&e),
        Err(resp) => resp,
    }
}

pub(super) async fn retry(state: &Arc<AdminState>, id: &str) -> AdminResponse {
    let Ok(id) = id.parse::<u64>() else {
        return json_error(
            StatusCode::BAD_REQUEST,
            &format!("{id:?} is not an event id (quarry events ls lists them)"),
        );
    };
    let events = Arc::clone(&state.hooks.events);
    match blocking(move || events.retry(id)).await {
        Ok(Ok(record)) => json(StatusCode::OK, &record),
        Ok(Err(e)) => event_error(&e),
        Err(resp) => resp,
    }
}

/// The one mapping from queue errors to statuses.
fn event_error(e: &EventError) -> AdminResponse {
    let status = match e {
        EventError::NoSuchEvent { .. } => StatusCode::NOT_FOUND,
        EventError::Catalog(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    json_error(status, &e.to_string())
}
