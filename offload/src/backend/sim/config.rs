// SPDX-License-Identifier: Apache-2.0
//! Settings of one simulated device backend.

use serde::{Deserialize, Serialize};

/// How a simulated device behaves beyond its profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimDeviceConfig {
    /// Hold each job until its simulated device time has passed on the wall clock, so latency
    /// seen by clients matches the device. Off by default: the real kernel usually finishes
    /// sooner, and tests and CI should not wait out simulated seconds; the simulated time is
    /// reported either way (`x-quarry-device-time`, metrics).
    pub pace: bool,
}
