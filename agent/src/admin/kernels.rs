// SPDX-License-Identifier: Apache-2.0
//! `/v1/kernels`: the kernels functions can run.
//!
//! - `GET /v1/kernels`: every kernel, built-in and registered, as
//!   [`KernelListing`](quarry_interceptor::functions::KernelListing)s by name.

use http::StatusCode;
use quarry_interceptor::functions::KernelListing;

use super::{AdminResponse, AdminState, json};

pub(super) fn list(state: &AdminState) -> AdminResponse {
    let kernels = state.hooks.registry.kernels();
    let mut listings: Vec<KernelListing> = kernels
        .all()
        .iter()
        .map(|k| {
            let origin = if quarry_kernels::find(&k.info().name).is_some() {
                "builtin"
            } else {
                "user"
            };
            KernelListing::new(k.as_ref(), origin)
        })
        .collect();
    listings.sort_by(|a, b| a.name.cmp(&b.name));
    json(StatusCode::OK, &listings)
}
