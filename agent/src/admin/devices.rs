// SPDX-License-Identifier: Apache-2.0
//! `/v1/devices`: the backends the scheduler places jobs on.
//!
//! - `GET /v1/devices`: one [`DeviceListing`] per backend, in the scheduler's order (the order
//!   ties are broken in): id, class, a description, load now, link, and the measured rate of
//!   every kernel (or WebAssembly function) calibration or real jobs have measured on it.

use http::StatusCode;
use serde::{Deserialize, Serialize};

use super::{AdminResponse, AdminState, json};

/// One backend as `GET /v1/devices` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceListing {
    /// Its id: the value of `x-quarry-backend`, and what `backend:ID` pins.
    pub id: String,
    /// `cpu`, `gpu`, `fpga` or `csd`.
    pub class: String,
    /// What it is.
    pub description: String,
    /// Jobs running now.
    pub running: usize,
    /// Jobs that can run at once.
    pub capacity: usize,
    /// Jobs waiting for a slot.
    pub queued: usize,
    /// Its link's bandwidth in bytes per second, for a device behind one.
    pub link_bytes_per_sec: Option<f64>,
    /// Measured rates, by kernel or function name.
    pub rates: Vec<RateListing>,
}

/// One measured rate in a [`DeviceListing`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateListing {
    /// The kernel (or WebAssembly function) it was measured for.
    pub work: String,
    /// Input bytes per second once running.
    pub bytes_per_sec: f64,
    /// Fixed cost of one job, in microseconds.
    pub fixed_us: u64,
    /// Measurements it rests on.
    pub samples: u64,
}

pub(super) fn list(state: &AdminState) -> AdminResponse {
    let rows = state.scheduler.devices();
    let listings: Vec<DeviceListing> = rows
        .into_iter()
        .zip(state.scheduler.backends())
        .map(|(row, backend)| DeviceListing {
            id: row.id.0,
            class: row.class.to_string(),
            description: backend.describe(),
            running: row.load.running,
            capacity: row.load.capacity,
            queued: row.load.queued,
            link_bytes_per_sec: row.link.map(|l| l.bytes_per_sec),
            rates: row
                .rates
                .into_iter()
                .map(|(work, rate)| RateListing {
                    work,
                    bytes_per_sec: rate.bytes_per_sec,
                    fixed_us: u64::try_from(rate.fixed.as_micros()).unwrap_or(u64::MAX),
                    samples: rate.samples,
                })
                .collect(),
        })
        .collect();
    json(StatusCode::OK, &listings)
}
