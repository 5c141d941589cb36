// SPDX-License-Identifier: Apache-2.0
//! Configuration of placement (`[functions.scheduler]`).

use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

/// How the scheduler calibrates backends and what it assumes when it cannot know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerConfig {
    /// The input size assumed when a job's size is unknown (a PUT body without a length).
    pub default_input_size: ByteSize,
    /// Whether to measure every (kernel, backend) pair at start.
    pub calibrate: bool,
    /// The most time calibration may take in all; pairs left over keep their defaults and are
    /// learned from real jobs.
    #[serde(with = "humantime_serde")]
    pub calibration_budget: Duration,
    /// The larger of the two synthetic inputs each pair is measured on (the smaller is 1/16 of
    /// it).
    pub calibration_size: ByteSize,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            default_input_size: ByteSize::mib(8),
            calibrate: true,
            calibration_budget: Duration::from_secs(5),
            calibration_size: ByteSize::mib(4),
        }
    }
}

impl SchedulerConfig {
    /// Problems with the values, each naming the key, for `quarryd --check-config`.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.calibration_size < ByteSize::kib(64) || self.calibration_size > ByteSize::gib(1) {
            out.push(format!(
                "functions.scheduler.calibration_size = {} must be between 64KiB and 1GiB",
                self.calibration_size
            ));
        }
        if self.calibration_budget > Duration::from_secs(600) {
            out.push(format!(
                "functions.scheduler.calibration_budget = {:?} must be at most 10m",
                self.calibration_budget
            ));
        }
        out
    }
}
