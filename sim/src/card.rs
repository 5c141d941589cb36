// SPDX-License-Identifier: Apache-2.0
//! What FPGA cards and GPUs share: bytes cross the link to the card, land in card memory, the
//! kernel runs, the result crosses back. Stages: link to device, card memory (each input and
//! output byte written and read once), compute, link to host; chunked so the transfers of
//! one chunk overlap compute on another (at most half the card memory per chunk).

use crate::clock::SimDuration;
use crate::compute::ComputeEngines;
use crate::error::SimError;
use crate::link::PcieLink;
use crate::memory::Memory;
use crate::pipeline::{Stage, StageTime, Timing, chunk_count};
use crate::queue::CommandQueue;

/// An accelerator card behind a PCIe link.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Card {
    pub(crate) link: PcieLink,
    pub(crate) memory: Memory,
    pub(crate) compute: ComputeEngines,
    pub(crate) chunk_bytes: u64,
    pub(crate) queue_depth: u32,
}

impl Card {
    pub(crate) fn chunk_bytes(&self) -> u64 {
        self.chunk_bytes.min(self.memory.max_chunk_bytes())
    }

    pub(crate) fn command_queue(&self, device: &str) -> Result<CommandQueue, SimError> {
        CommandQueue::new(device, self.compute.engines(), self.queue_depth)
    }

    pub(crate) fn run(
        &self,
        device: &str,
        kernel: &str,
        input_bytes: u64,
        output_bytes: u64,
    ) -> Result<Timing, SimError> {
        let rate = self.compute.rate(device, kernel)?;
        let stages = vec![
            self.link_stage(Stage::LinkToDevice, input_bytes),
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
            self.link_stage(Stage::LinkToHost, output_bytes),
        ];
        Ok(Timing::pipelined(
            stages,
            chunk_count(input_bytes, self.chunk_bytes()),
        ))
    }

    fn link_stage(&self, stage: Stage, bytes: u64) -> StageTime {
        let latency = if bytes == 0 {
            SimDuration::ZERO
        } else {
            self.link.latency()
        };
        StageTime::new(
            stage,
            latency,
            self.link.effective_bandwidth().time_for(bytes),
        )
    }
}
