// SPDX-License-Identifier: Apache-2.0
//! Loading the OpenCL library at run time and finding every device.
//!
//! The library (`libOpenCL.so.1`, the ICD loader) is opened with `dlopen` when
//! [`OpenClRuntime::load`] is called, never linked: a node without it runs everything else and
//! gets an [`OpenClUnavailable`] value saying why. `OPENCL_DYLIB_PATH` (paths separated by `;`)
//! names other library files to try first.

use std::path::PathBuf;
use std::sync::Arc;

use opencl3::device::CL_DEVICE_TYPE_ALL;
use opencl3::platform::get_platforms;

use super::device::ClDevice;
use super::error::OpenClUnavailable;

/// The OpenCL devices of this node.
#[derive(Debug, Clone)]
pub struct OpenClRuntime {
    devices: Vec<Arc<ClDevice>>,
}

impl OpenClRuntime {
    /// Loads the OpenCL library and opens every device of every platform, with program
    /// binaries cached in memory only.
    pub fn load() -> Result<Self, OpenClUnavailable> {
        Self::load_with_cache(None)
    }

    /// Like [`OpenClRuntime::load`], caching built program binaries under `cache_dir` too.
    pub fn load_with_cache(cache_dir: Option<PathBuf>) -> Result<Self, OpenClUnavailable> {
        if let Err(e) = cl3::load_library() {
            return Err(OpenClUnavailable {
                reason: format!(
                    "the OpenCL library (libOpenCL.so.1) could not be loaded: {e}; install an \
                     ICD loader and a driver (e.g. ocl-icd-libopencl1 with pocl-opencl-icd or \
                     the GPU vendor's driver) or set OPENCL_DYLIB_PATH"
                ),
            });
        }
        let platforms = get_platforms().map_err(|e| OpenClUnavailable {
            reason: format!(
                "the OpenCL library found no platform ({e}); install a driver (ICD) such as \
                 pocl-opencl-icd or the GPU vendor's OpenCL driver"
            ),
        })?;
        let mut devices = Vec::new();
        let mut problems = Vec::new();
        for platform in &platforms {
            let ids = match platform.get_devices(CL_DEVICE_TYPE_ALL) {
                Ok(ids) => ids,
                Err(e) => {
                    problems.push(format!(
                        "platform {}: {e}",
                        platform.name().unwrap_or_default()
                    ));
                    continue;
                }
            };
            for id in ids {
                match ClDevice::open(devices.len(), platform, id, cache_dir.clone()) {
                    Ok(device) => {
                        tracing::info!(device = %device.info(), "found OpenCL device");
                        devices.push(Arc::new(device));
                    }
                    Err(e) => problems.push(e.to_string()),
                }
            }
        }
        if devices.is_empty() {
            return Err(OpenClUnavailable {
                reason: format!(
                    "{} OpenCL platform(s) but no usable device{}",
                    platforms.len(),
                    if problems.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", problems.join("; "))
                    }
                ),
            });
        }
        for problem in problems {
            tracing::warn!(%problem, "skipped an OpenCL device");
        }
        Ok(Self { devices })
    }

    /// Every usable device, in platform order.
    pub fn devices(&self) -> &[Arc<ClDevice>] {
        &self.devices
    }
}
