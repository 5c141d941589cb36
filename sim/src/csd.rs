// SPDX-License-Identifier: Apache-2.0
//! A computational-storage drive: flash, device DRAM, compute engines, a PCIe link to the
//! host and a command queue.
//!
//! Two ways to get at the data:
//! - [`Csd::pushdown`]: the drive reads flash internally, runs the kernel on its engines and
//!   ships only the result over the link. Stages: flash, device memory (each input and output
//!   byte written and read once), compute, link to host.
//! - [`Csd::host_read`]: the host reads the bytes: flash, then the link. [`Csd::host_scan`]
//!   adds the host CPU running the kernel on what arrives.
//!
//! Both are pipelined in chunks (at most half the device memory, double buffered), so the
//! time is the slowest stage plus fill and drain (see [`crate::pipeline`]).

use crate::clock::SimDuration;
use crate::compute::ComputeEngines;
use crate::error::SimError;
use crate::flash::Flash;
use crate::host::HostCpu;
use crate::link::PcieLink;
use crate::memory::Memory;
use crate::pipeline::{Stage, StageTime, Timing, chunk_count};
use crate::profile::{Device, Profile};
use crate::queue::CommandQueue;

/// A computational-storage drive model.
#[derive(Clone, Debug, PartialEq)]
pub struct Csd {
    pub(crate) name: String,
    pub(crate) link: PcieLink,
    pub(crate) flash: Flash,
    pub(crate) memory: Memory,
    pub(crate) compute: ComputeEngines,
    pub(crate) chunk_bytes: u64,
    pub(crate) queue_depth: u32,
}

impl Csd {
    /// The drive a CSD profile describes; refused if the profile is of another kind.
    pub fn from_profile(profile: &Profile) -> Result<Self, SimError> {
        match profile.device() {
            Device::Csd(csd) => Ok(csd.clone()),
            other => Err(SimError::WrongKind {
                profile: profile.name().to_owned(),
                actual: other.kind_name(),
                wanted: "csd",
            }),
        }
    }

    /// The profile name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host link.
    pub fn link(&self) -> &PcieLink {
        &self.link
    }

    /// The flash array.
    pub fn flash(&self) -> &Flash {
        &self.flash
    }

    /// The drive's DRAM.
    pub fn memory(&self) -> &Memory {
        &self.memory
    }

    /// The compute engines.
    pub fn compute(&self) -> &ComputeEngines {
        &self.compute
    }

    /// Pipelining chunk: the profile's chunk, at most half the DRAM.
    pub fn chunk_bytes(&self) -> u64 {
        self.chunk_bytes.min(self.memory.max_chunk_bytes())
    }

    /// Commands the drive accepts outstanding at once.
    pub fn queue_depth(&self) -> u32 {
        self.queue_depth
    }

    /// A fresh command queue for this drive (its engines, its depth).
    pub fn command_queue(&self) -> Result<CommandQueue, SimError> {
        CommandQueue::new(&self.name, self.compute.engines(), self.queue_depth)
    }

    /// Time for the drive to run `kernel` over `input_bytes` read from its flash and send
    /// `output_bytes` of result to the host.
    pub fn pushdown(
        &self,
        kernel: &str,
        input_bytes: u64,
        output_bytes: u64,
    ) -> Result<Timing, SimError> {
        let rate = self.compute.rate(&self.name, kernel)?;
        let stages = vec![
            self.flash_stage(input_bytes),
            StageTime::new(
                Stage::DeviceMemory,
                SimDuration::ZERO,
                self.memory
                    .bandwidth()
                    .time_for(2 * input_bytes.saturating_add(output_bytes)),
            ),
            StageTime::new(
                Stage::Compute,
                SimDuration::ZERO,
                rate.time_for(input_bytes),
            ),
            self.link_stage(output_bytes),
        ];
        Ok(Timing::pipelined(
            stages,
            chunk_count(input_bytes, self.chunk_bytes()),
        ))
    }

    /// Time for the host to read `bytes` from the drive: flash, then the link.
    pub fn host_read(&self, bytes: u64) -> Timing {
        Timing::pipelined(self.host_read_stages(bytes), self.host_chunks(bytes))
    }

    /// Time for the host to read `input_bytes` and run `kernel` over them on `host`, the
    /// host-side plan that a pushdown competes with. `output_bytes` stays in host memory.
    pub fn host_scan(
        &self,
        host: &HostCpu,
        kernel: &str,
        input_bytes: u64,
    ) -> Result<Timing, SimError> {
        let mut stages = self.host_read_stages(input_bytes);
        stages.push(host.compute_stage(kernel, input_bytes)?);
        Ok(Timing::pipelined(stages, self.host_chunks(input_bytes)))
    }

    fn host_read_stages(&self, bytes: u64) -> Vec<StageTime> {
        vec![self.flash_stage(bytes), self.link_stage(bytes)]
    }

    fn host_chunks(&self, bytes: u64) -> u64 {
        chunk_count(bytes, self.chunk_bytes)
    }

    fn flash_stage(&self, bytes: u64) -> StageTime {
        let latency = if bytes == 0 {
            SimDuration::ZERO
        } else {
            self.flash.read_latency()
        };
        StageTime::new(Stage::Flash, latency, self.flash.streaming_time(bytes))
    }

    fn link_stage(&self, bytes: u64) -> StageTime {
        let latency = if bytes == 0 {
            SimDuration::ZERO
        } else {
            self.link.latency()
        };
        StageTime::new(
            Stage::LinkToHost,
            latency,
            self.link.effective_bandwidth().time_for(bytes),
        )
    }
}
