// SPDX-License-Identifier: Apache-2.0
//! A GPU on PCIe, for nodes without a real one: per-kernel rates, HBM bandwidth and capacity,
//! a PCIe link. The host sends the input over the link and gets the result back (stages as in the
//! crate-private `card` module: link in, card memory, compute, link out).

use crate::card::Card;
use crate::compute::ComputeEngines;
use crate::error::SimError;
use crate::link::PcieLink;
use crate::memory::Memory;
use crate::pipeline::Timing;
use crate::profile::{Device, Profile};
use crate::queue::CommandQueue;

/// A GPU model.
#[derive(Clone, Debug, PartialEq)]
pub struct Gpu {
    pub(crate) name: String,
    pub(crate) card: Card,
}

impl Gpu {
    /// The device a gpu profile describes; refused if the profile is of another kind.
    pub fn from_profile(profile: &Profile) -> Result<Self, SimError> {
        match profile.device() {
            Device::Gpu(device) => Ok(device.clone()),
            other => Err(SimError::WrongKind {
                profile: profile.name().to_owned(),
                actual: other.kind_name(),
                wanted: "gpu",
            }),
        }
    }

    /// The profile name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host link.
    pub fn link(&self) -> &PcieLink {
        &self.card.link
    }

    /// Card memory.
    pub fn memory(&self) -> &Memory {
        &self.card.memory
    }

    /// The compute engines.
    pub fn compute(&self) -> &ComputeEngines {
        &self.card.compute
    }

    /// Pipelining chunk: the profile's chunk, at most half the card memory.
    pub fn chunk_bytes(&self) -> u64 {
        self.card.chunk_bytes()
    }

    /// Commands the device accepts outstanding at once.
    pub fn queue_depth(&self) -> u32 {
        self.card.queue_depth
    }

    /// A fresh command queue for this device (its engines, its depth).
    pub fn command_queue(&self) -> Result<CommandQueue, SimError> {
        self.card.command_queue(&self.name)
    }

    /// Time to send `input_bytes` from host memory, run `kernel` over them and return
    /// `output_bytes`.
    pub fn run(
        &self,
        kernel: &str,
        input_bytes: u64,
        output_bytes: u64,
    ) -> Result<Timing, SimError> {
        self.card.run(&self.name, kernel, input_bytes, output_bytes)
    }
}
