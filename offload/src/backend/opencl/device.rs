// SPDX-License-Identifier: Apache-2.0
//! One OpenCL device: its facts for listings, its context, its built programs and its
//! execution lanes.

use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use opencl3::context::Context;
use opencl3::device::{
    CL_DEVICE_TYPE_ACCELERATOR, CL_DEVICE_TYPE_CPU, CL_DEVICE_TYPE_GPU, Device, cl_device_id,
};
use opencl3::platform::Platform;

use super::error::{ClContext, ClError};
use super::ffi::Lane;
use super::program::{BuiltProgram, ProgramCache, ProgramSource};
use crate::backend::DeviceClass;

/// What a device is, for listings (`quarry device ls`) and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Its position among all devices of all platforms (stable for one node's hardware).
    pub index: usize,
    /// The platform's name (`NVIDIA CUDA`, `Portable Computing Language`).
    pub platform: String,
    /// The device's name.
    pub name: String,
    /// Its vendor.
    pub vendor: String,
    /// The driver version.
    pub driver_version: String,
    /// The OpenCL version it reports (`OpenCL 3.0 CUDA`).
    pub opencl_version: String,
    /// GPU, FPGA (an OpenCL ACCELERATOR) or CPU.
    pub class: DeviceClass,
    /// Parallel compute units.
    pub compute_units: u32,
    /// Global memory in bytes.
    pub global_mem: u64,
    /// The largest single buffer in bytes.
    pub max_alloc: u64,
    /// Whether it shares memory with the host (CPU devices, integrated GPUs).
    pub host_unified_memory: bool,
}

impl DeviceInfo {
    /// The backend name for this device (`opencl-gpu-0`, `opencl-cpu-1`).
    pub fn backend_name(&self) -> String {
        let class = match self.class {
            DeviceClass::Gpu => "gpu",
            DeviceClass::Fpga => "fpga",
            DeviceClass::Cpu | DeviceClass::Csd => "cpu",
        };
        format!("opencl-{class}-{}", self.index)
    }
}

impl fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} ({}, {}) on {}; {}, driver {}; {} compute units, {} MiB memory, {} MiB max buffer",
            self.backend_name(),
            self.name,
            self.vendor,
            class_word(self.class),
            self.platform,
            self.opencl_version,
            self.driver_version,
            self.compute_units,
            self.global_mem >> 20,
            self.max_alloc >> 20,
        )
    }
}

fn class_word(class: DeviceClass) -> &'static str {
    match class {
        DeviceClass::Gpu => "GPU",
        DeviceClass::Fpga => "FPGA/accelerator",
        DeviceClass::Cpu => "CPU",
        DeviceClass::Csd => "CSD",
    }
}

/// A device ready to run kernels: its context, its program cache and a pool of lanes (a
/// command queue with its buffers each), reused across jobs.
pub struct ClDevice {
    info: DeviceInfo,
    device: Device,
    context: Context,
    programs: ProgramCache,
    lanes: Mutex<Vec<Lane>>,
    /// Kernels this device cannot run although they have an OpenCL variant: user kernels
    /// given as a prebuilt binary for another device.
    foreign: Mutex<HashSet<String>>,
}

impl fmt::Debug for ClDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClDevice")
            .field("info", &self.info)
            .finish()
    }
}

impl ClDevice {
    /// Opens device `id` of `platform`: reads its facts and creates its context.
    pub(crate) fn open(
        index: usize,
        platform: &Platform,
        id: cl_device_id,
        cache_dir: Option<PathBuf>,
    ) -> Result<Self, ClError> {
        let device = Device::new(id);
        let kind = device
            .dev_type()
            .during(|| "query device type".to_owned())?;
        let class = if kind & CL_DEVICE_TYPE_GPU != 0 {
            DeviceClass::Gpu
        } else if kind & CL_DEVICE_TYPE_ACCELERATOR != 0 {
            DeviceClass::Fpga
        } else if kind & CL_DEVICE_TYPE_CPU != 0 {
            DeviceClass::Cpu
        } else {
            // CUSTOM devices run prebuilt binaries like accelerators.
            DeviceClass::Fpga
        };
        let info = DeviceInfo {
            index,
            platform: platform.name().unwrap_or_default(),
            name: device.name().unwrap_or_default(),
            vendor: device.vendor().unwrap_or_default(),
            driver_version: device.driver_version().unwrap_or_default(),
            opencl_version: device.version().unwrap_or_default(),
            class,
            compute_units: device.max_compute_units().unwrap_or(1),
            global_mem: device.global_mem_size().unwrap_or(0),
            max_alloc: device.max_mem_alloc_size().unwrap_or(0),
            host_unified_memory: device.host_unified_memory().unwrap_or(false),
        };
        let context =
            Context::from_device(&device).during(|| format!("create context on {}", info.name))?;
        let programs = ProgramCache::new(cache_dir, &info);
        Ok(Self {
            info,
            device,
            context,
            programs,
            lanes: Mutex::new(Vec::new()),
            foreign: Mutex::new(HashSet::new()),
        })
    }

    /// Its facts.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// Its OpenCL context.
    pub(crate) fn context(&self) -> &Context {
        &self.context
    }

    /// Its OpenCL device id.
    pub(crate) fn id(&self) -> cl_device_id {
        self.device.id()
    }

    /// The program built from `source` for this device (built, or loaded from the cache, on
    /// first use).
    pub fn program(&self, source: &ProgramSource) -> Result<Arc<BuiltProgram>, ClError> {
        self.programs.get(self, source)
    }

    /// Builds every program in `sources` now (at start), so the first job does not wait.
    pub fn prebuild<'a>(
        &self,
        sources: impl IntoIterator<Item = &'a ProgramSource>,
    ) -> Result<(), ClError> {
        for source in sources {
            self.program(source)?;
        }
        Ok(())
    }

    /// Installs a prebuilt program binary (an FPGA board's) as the program `source.name`, so
    /// that plans naming `source` run it.
    pub fn install_binary(
        &self,
        source: &ProgramSource,
        binary: &[u8],
    ) -> Result<Arc<BuiltProgram>, ClError> {
        self.programs.install_binary(self, source, binary)
    }

    /// Whether this device can run the OpenCL variant of the kernel `name` (every built-in
    /// can; a user kernel given as a prebuilt binary runs only on the device it was built for).
    pub fn can_run(&self, name: &str) -> bool {
        !self
            .foreign
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(name)
    }

    /// Marks whether the kernel `name` can run here (see [`ClDevice::can_run`]).
    pub(crate) fn set_can_run(&self, name: &str, can: bool) {
        let mut foreign = self.foreign.lock().unwrap_or_else(|p| p.into_inner());
        if can {
            foreign.remove(name);
        } else {
            foreign.insert(name.to_owned());
        }
    }

    /// Writes `data` to the device `times` times and waits: the executor's host-to-device
    /// path, for measuring its bandwidth (the `kernels` bench scenario).
    pub fn upload_repeatedly(&self, data: &[u8], times: usize) -> Result<(), ClError> {
        super::ffi::upload_repeatedly(self, data, times)
    }

    /// Up to `n` lanes: idle ones from the pool, new ones for the rest.
    pub(crate) fn take_lanes(&self, n: usize) -> Result<Vec<Lane>, ClError> {
        let mut out = {
            let mut pool = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
            let keep = pool.len().saturating_sub(n);
            pool.split_off(keep)
        };
        while out.len() < n {
            out.push(Lane::new(self)?);
        }
        Ok(out)
    }

    /// Gives lanes back to the pool after a job.
    pub(crate) fn return_lanes(&self, lanes: Vec<Lane>) {
        let mut pool = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        pool.extend(lanes);
    }
}
