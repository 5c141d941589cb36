// SPDX-License-Identifier: Apache-2.0
//! [`OpenClBackend`]: one OpenCL device behind the [`Backend`] seam.
//!
//! Each device found at start becomes one backend (`opencl-gpu-0`, `opencl-cpu-1`...), so the
//! scheduler weighs devices one by one. A backend runs the OpenCL variant of kernels (built-in
//! ones, and user kernels that hold a program for its device) with at most
//! [`OpenClConfig::slots`] jobs at once; a job that waits longer than
//! [`OpenClConfig::queue_timeout`] for a slot is refused as overloaded.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Semaphore;

use super::device::{ClDevice, DeviceInfo};
use super::error::OpenClUnavailable;
use super::job;
use super::runtime::OpenClRuntime;
use crate::backend::{
    Backend, BackendError, BackendId, ChunkStream, DeviceClass, Job, Link, Load, OutputSink,
    RunReport, VariantKind,
};
use crate::config::OpenClConfig;
use crate::function::{FunctionSpec, Variant};

/// The link assumed for a device with its own memory until the scheduler has measured one:
/// PCIe 4.0 x16 from pageable host memory (about half its 32 GB/s peak), and the cost of one
/// enqueued transfer.
pub const NOMINAL_DEVICE_LINK: Link = Link {
    bytes_per_sec: 12e9,
    latency: Duration::from_micros(20),
};

/// One OpenCL device as an execution engine (see the module docs).
pub struct OpenClBackend {
    pub(super) id: BackendId,
    pub(super) device: Arc<ClDevice>,
    pub(super) runtime: OpenClRuntime,
    pub(super) config: OpenClConfig,
    pub(super) slots: Arc<Semaphore>,
    pub(super) queued: AtomicUsize,
}

impl fmt::Debug for OpenClBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenClBackend")
            .field("id", &self.id)
            .field("device", self.device.info())
            .finish_non_exhaustive()
    }
}

impl OpenClBackend {
    /// Loads the OpenCL library and returns one backend per usable device, in platform order.
    /// Fails with the reason (no library, no platform, no device, or `enabled = false`) so the
    /// daemon can log it and run without OpenCL.
    pub fn discover(config: &OpenClConfig) -> Result<Vec<Self>, OpenClUnavailable> {
        if !config.enabled {
            return Err(OpenClUnavailable {
                reason: "disabled by functions.opencl.enabled = false".to_owned(),
            });
        }
        let runtime = OpenClRuntime::load_with_cache(config.cache_dir.clone())?;
        Ok(Self::for_runtime(&runtime, config))
    }

    /// One backend per device of an already loaded runtime.
    pub fn for_runtime(runtime: &OpenClRuntime, config: &OpenClConfig) -> Vec<Self> {
        runtime
            .devices()
            .iter()
            .map(|device| Self {
                id: BackendId(device.info().backend_name()),
                device: Arc::clone(device),
                runtime: runtime.clone(),
                config: config.clone(),
                slots: Arc::new(Semaphore::new(config.slots.max(1))),
                queued: AtomicUsize::new(0),
            })
            .collect()
    }

    /// The device's facts, for listings and logs.
    pub fn info(&self) -> &DeviceInfo {
        self.device.info()
    }

    /// The device.
    pub fn device(&self) -> &Arc<ClDevice> {
        &self.device
    }

    /// Every device of the node (what [`super::UserKernel::build`] builds for).
    pub fn runtime(&self) -> &OpenClRuntime {
        &self.runtime
    }

    /// Its settings.
    pub fn config(&self) -> &OpenClConfig {
        &self.config
    }

    /// The kernel of `function` this device would run, if any.
    pub(super) fn kernel_for(
        &self,
        function: &FunctionSpec,
    ) -> Option<Arc<dyn quarry_kernels::Kernel>> {
        function.variants.iter().find_map(|v| match v {
            Variant::Kernel(k) if k.info().opencl && self.device.can_run(&k.info().name) => {
                Some(Arc::clone(k))
            }
            Variant::Kernel(_) | Variant::Wasm(_) | Variant::Ebpf(_) => None,
        })
    }
}

#[async_trait]
impl Backend for OpenClBackend {
    fn id(&self) -> &BackendId {
        &self.id
    }

    fn class(&self) -> DeviceClass {
        self.device.info().class
    }

    fn variant_for(&self, function: &FunctionSpec) -> Option<VariantKind> {
        self.kernel_for(function).map(|_| VariantKind::OpenCl)
    }

    fn describe(&self) -> String {
        let text = self.device.info().to_string();
        match text.split_once(": ") {
            Some((_, rest)) => format!("OpenCL {rest}"),
            None => format!("OpenCL {text}"),
        }
    }

    fn load(&self) -> Load {
        let capacity = self.config.slots.max(1);
        Load {
            running: capacity.saturating_sub(self.slots.available_permits()),
            capacity,
            queued: self.queued.load(Ordering::Relaxed),
        }
    }

    /// `None` for devices that share host memory (CPU devices, integrated GPUs: chunks are
    /// handed over in place); [`NOMINAL_DEVICE_LINK`] for the others.
    fn link(&self) -> Option<Link> {
        (!self.device.info().host_unified_memory).then_some(NOMINAL_DEVICE_LINK)
    }

    async fn run(
        &self,
        job: Job,
        input: ChunkStream,
        out: OutputSink,
    ) -> Result<RunReport, BackendError> {
        job::run(self, job, input, out).await
    }
}
