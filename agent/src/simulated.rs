// SPDX-License-Identifier: Apache-2.0
//! The node's simulated devices: one backend per `[[devices]]` entry, built from its profile,
//! running its fixed programs' bytes on the native kernel pool.

use std::sync::Arc;

use quarry_offload::{Backend, NativeBackend, SimDeviceBackend};
use tracing::info;

use crate::config::DeviceEntry;

/// A device entry that could not be turned into a backend.
#[derive(Debug, thiserror::Error)]
#[error("failed to build simulated device {id:?}: {reason}")]
pub struct SimulatedDeviceError {
    /// The entry's id.
    pub id: String,
    /// Why (names the key and the fix).
    pub reason: String,
}

/// The backends of `entries`, in order, sharing `executor`'s workers.
pub fn build(
    entries: &[DeviceEntry],
    executor: &Arc<NativeBackend>,
) -> Result<Vec<Arc<dyn Backend>>, SimulatedDeviceError> {
    entries
        .iter()
        .map(|entry| {
            let failed = |reason: String| SimulatedDeviceError {
                id: entry.id.clone(),
                reason,
            };
            let profile = entry.load_profile().map_err(failed)?;
            let backend = SimDeviceBackend::new(
                entry.backend_id(),
                &profile,
                Arc::clone(executor),
                entry.sim_config(),
            )
            .map_err(|e| failed(e.to_string()))?;
            info!(
                device = %entry.id,
                class = %backend.class(),
                profile = %backend.profile(),
                programs = %backend.programs().join(", "),
                pace = entry.pace,
                "simulated device ready"
            );
            Ok(Arc::new(backend) as Arc<dyn Backend>)
        })
        .collect()
}
