// SPDX-License-Identifier: Apache-2.0
//! Configuration of the native-kernel worker pool (`[functions.native]`).

use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

/// The native-kernel worker pool: its threads, its queue and the longest record it frames.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NativeConfig {
    /// Worker threads, each running one job at a time; unset: one per available core.
    pub workers: Option<u32>,
    /// Jobs that may wait for a worker; one more is answered `503 SlowDown` at once.
    pub max_queued: u32,
    /// How long a job waits for a worker before it is answered `503 SlowDown`.
    #[serde(with = "humantime_serde")]
    pub queue_timeout: Duration,
    /// The longest record (line, CSV row) a kernel accepts; a longer one fails the job.
    pub max_record: ByteSize,
}

impl Default for NativeConfig {
    fn default() -> Self {
        Self {
            workers: None,
            max_queued: 256,
            queue_timeout: Duration::from_secs(2),
            max_record: ByteSize::mib(16),
        }
    }
}

impl NativeConfig {
    /// The worker count in effect: the configured one, or the available cores.
    pub fn effective_workers(&self) -> usize {
        match self.workers {
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX).max(1),
            None => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        }
    }

    /// Problems with the values, each naming the key, for `quarryd --check-config`.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if matches!(self.workers, Some(n) if n == 0 || n > 1024) {
            out.push(format!(
                "functions.native.workers = {} must be between 1 and 1024 (or unset: one per core)",
                self.workers.unwrap_or_default()
            ));
        }
        if self.max_queued > 100_000 {
            out.push(format!(
                "functions.native.max_queued = {} must be at most 100000",
                self.max_queued
            ));
        }
        if self.max_record < ByteSize::kib(1) || self.max_record > ByteSize::gib(1) {
            out.push(format!(
                "functions.native.max_record = {} must be between 1KiB and 1GiB",
                self.max_record
            ));
        }
        out
    }
}
