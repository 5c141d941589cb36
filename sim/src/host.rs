// SPDX-License-Identifier: Apache-2.0
//! The host CPU as a compute stage, for host-side plans (read the bytes, then scan them on
//! the host). A job of a kernel runs at the kernel's rate, capped by host memory bandwidth.

use crate::clock::SimDuration;
use crate::compute::ComputeEngines;
use crate::error::SimError;
use crate::memory::Memory;
use crate::pipeline::{Stage, StageTime, Timing};
use crate::profile::{Device, Profile};
use crate::rate::Bandwidth;

/// A host CPU model.
#[derive(Clone, Debug, PartialEq)]
pub struct HostCpu {
    pub(crate) name: String,
    pub(crate) memory: Memory,
    pub(crate) compute: ComputeEngines,
}

impl HostCpu {
    /// The host a host profile describes; refused if the profile is of another kind.
    pub fn from_profile(profile: &Profile) -> Result<Self, SimError> {
        match profile.device() {
            Device::Host(host) => Ok(host.clone()),
            other => Err(SimError::WrongKind {
                profile: profile.name().to_owned(),
                actual: other.kind_name(),
                wanted: "host",
            }),
        }
    }

    /// The profile name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The compute engines (cores given to jobs).
    pub fn compute(&self) -> &ComputeEngines {
        &self.compute
    }

    /// Rate of one job of `kernel`: its rate, capped by memory bandwidth.
    pub fn rate(&self, kernel: &str) -> Result<Bandwidth, SimError> {
        Ok(self
            .compute
            .rate(&self.name, kernel)?
            .min(self.memory.bandwidth()))
    }

    /// The host-compute stage of `kernel` over `bytes`.
    pub fn compute_stage(&self, kernel: &str, bytes: u64) -> Result<StageTime, SimError> {
        Ok(StageTime::new(
            Stage::HostCompute,
            SimDuration::ZERO,
            self.rate(kernel)?.time_for(bytes),
        ))
    }

    /// Time to run `kernel` over `bytes` already in host memory.
    pub fn run(&self, kernel: &str, bytes: u64) -> Result<Timing, SimError> {
        Ok(Timing::pipelined(
            vec![self.compute_stage(kernel, bytes)?],
            1,
        ))
    }
}
