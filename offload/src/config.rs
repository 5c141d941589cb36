// SPDX-License-Identifier: Apache-2.0
//! Configuration of the execution engines (`[functions]` in quarry.toml).

use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

pub use crate::backend::native::NativeConfig;
pub use crate::scheduler::SchedulerConfig;

/// Everything `quarry-offload` reads from the node's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OffloadConfig {
    /// The WebAssembly worker pool.
    pub wasm: WasmConfig,
    /// The OpenCL devices.
    pub opencl: OpenClConfig,
    /// The native-kernel worker pool.
    pub native: NativeConfig,
    /// Placement across backends: calibration and the cost model's defaults.
    pub scheduler: SchedulerConfig,
}

/// The WebAssembly worker pool: how many instances may run at once and the ceilings that every
/// function's own limits must fit under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WasmConfig {
    /// Instances that may run at once (slots in the pooling allocator).
    pub max_instances: u32,
    /// The largest linear memory any function may be given.
    pub max_memory: ByteSize,
    /// How long a job waits for a free instance before the request is answered `503 SlowDown`.
    #[serde(with = "humantime_serde")]
    pub queue_timeout: Duration,
    /// Length of one epoch tick: the granularity of CPU-time accounting and of preemption.
    #[serde(with = "humantime_serde")]
    pub epoch_tick: Duration,
}

impl Default for WasmConfig {
    fn default() -> Self {
        Self {
            max_instances: 128,
            max_memory: ByteSize::mib(256),
            queue_timeout: Duration::from_secs(2),
            epoch_tick: Duration::from_millis(1),
        }
    }
}

impl WasmConfig {
    /// Problems with the values, each naming the key, for `quarryd --check-config`.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.max_instances == 0 || self.max_instances > 10_000 {
            out.push(format!(
                "functions.wasm.max_instances = {} must be between 1 and 10000",
                self.max_instances
            ));
        }
        if self.max_memory < ByteSize::mib(1) || self.max_memory > ByteSize::gib(4) {
            out.push(format!(
                "functions.wasm.max_memory = {} must be between 1MiB and 4GiB",
                self.max_memory
            ));
        }
        if self.epoch_tick < Duration::from_micros(100) || self.epoch_tick > Duration::from_secs(1)
        {
            out.push(format!(
                "functions.wasm.epoch_tick = {:?} must be between 100us and 1s",
                self.epoch_tick
            ));
        }
        out
    }
}

/// The OpenCL devices (`[functions.opencl]`): whether to use them, where built program
/// binaries are cached, and how jobs are cut and queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenClConfig {
    /// Whether to look for OpenCL devices at start (the library is loaded at run time; a node
    /// without one runs everything else).
    pub enabled: bool,
    /// Where built program binaries are cached across restarts; none: build at every start.
    pub cache_dir: Option<std::path::PathBuf>,
    /// Bytes per device chunk (one upload and one launch); devices like big chunks.
    pub chunk_size: ByteSize,
    /// Chunks on a device at once per job (2 is double buffering: the upload of one chunk
    /// overlaps the compute of the one before).
    pub in_flight: usize,
    /// The longest record (line, CSV row) a job accepts.
    pub max_record: ByteSize,
    /// Jobs that may run at once on each device.
    pub slots: usize,
    /// How long a job waits for a free slot before the request is answered `503 SlowDown`.
    #[serde(with = "humantime_serde")]
    pub queue_timeout: Duration,
}

impl Default for OpenClConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            cache_dir: None,
            chunk_size: ByteSize::mib(8),
            in_flight: 2,
            max_record: ByteSize::mib(16),
            slots: 4,
            queue_timeout: Duration::from_secs(2),
        }
    }
}

impl OpenClConfig {
    /// Problems with the values, each naming the key, for `quarryd --check-config`.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.chunk_size < ByteSize::kib(4) || self.chunk_size > ByteSize::gib(1) {
            out.push(format!(
                "functions.opencl.chunk_size = {} must be between 4KiB and 1GiB",
                self.chunk_size
            ));
        }
        if self.in_flight == 0 || self.in_flight > 16 {
            out.push(format!(
                "functions.opencl.in_flight = {} must be between 1 and 16 (2 is double buffering)",
                self.in_flight
            ));
        }
        if self.max_record < ByteSize::b(1) || self.max_record > ByteSize::gib(1) {
            out.push(format!(
                "functions.opencl.max_record = {} must be between 1B and 1GiB",
                self.max_record
            ));
        }
        if self.slots == 0 || self.slots > 1024 {
            out.push(format!(
                "functions.opencl.slots = {} must be between 1 and 1024",
                self.slots
            ));
        }
        out
    }

    /// The executor settings these values give.
    pub fn exec(&self) -> crate::backend::opencl::ExecConfig {
        crate::backend::opencl::ExecConfig {
            chunk_size: usize::try_from(self.chunk_size.as_u64()).unwrap_or(usize::MAX),
            in_flight: self.in_flight.max(1),
            max_record: usize::try_from(self.max_record.as_u64()).unwrap_or(usize::MAX),
        }
    }
}
