// SPDX-License-Identifier: Apache-2.0
//! Configuration of the execution engines (`[functions]` in quarry.toml).

use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

/// Everything `quarry-offload` reads from the node's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OffloadConfig {
    /// The WebAssembly worker pool.
    pub wasm: WasmConfig,
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
