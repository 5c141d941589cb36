// SPDX-License-Identifier: Apache-2.0
//! The device model behind a simulated backend: which `quarry_sim` model it is, the time a job
//! takes on it, and that time split into the parts the scheduler's estimates are made of.
//!
//! A CSD runs a job in place (a pushdown: flash, device memory, engines, only the result over
//! the link) when the job's input sits on its namespace, and otherwise receives the input over
//! its link first, as an FPGA card or a GPU always does.

use std::time::Duration;

use quarry_sim::{
    ComputeEngines, Csd, Device, FpgaCard, Gpu, PcieLink, Profile, SimDuration, SimError, Stage,
    StageTime, Timing,
};

use super::SimDeviceError;
use crate::backend::{DeviceClass, DeviceEstimate, Link};

/// A device model built from a profile.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum DeviceModel {
    Csd(Csd),
    Fpga(FpgaCard),
    Gpu(Gpu),
}

impl DeviceModel {
    /// The model `profile` describes; a host profile is refused (it is not a device).
    pub(super) fn from_profile(profile: &Profile) -> Result<Self, SimDeviceError> {
        match profile.device() {
            Device::Csd(d) => Ok(Self::Csd(d.clone())),
            Device::Fpga(d) => Ok(Self::Fpga(d.clone())),
            Device::Gpu(d) => Ok(Self::Gpu(d.clone())),
            Device::Host(_) => Err(SimDeviceError::NotADevice {
                profile: profile.name().to_owned(),
            }),
        }
    }

    pub(super) fn class(&self) -> DeviceClass {
        match self {
            Self::Csd(_) => DeviceClass::Csd,
            Self::Fpga(_) => DeviceClass::Fpga,
            Self::Gpu(_) => DeviceClass::Gpu,
        }
    }

    fn compute(&self) -> &ComputeEngines {
        match self {
            Self::Csd(d) => d.compute(),
            Self::Fpga(d) => d.compute(),
            Self::Gpu(d) => d.compute(),
        }
    }

    fn pcie(&self) -> &PcieLink {
        match self {
            Self::Csd(d) => d.link(),
            Self::Fpga(d) => d.link(),
            Self::Gpu(d) => d.link(),
        }
    }

    /// Whether the device has a rate for the kernel called `kernel` in its profile.
    pub(super) fn has_program(&self, kernel: &str) -> bool {
        self.compute().kernel_names().any(|k| k == kernel)
    }

    /// The kernels its profile has rates for.
    pub(super) fn programs(&self) -> Vec<&str> {
        self.compute().kernel_names().collect()
    }

    /// Jobs its engines run at once.
    pub(super) fn engines(&self) -> u32 {
        self.compute().engines()
    }

    /// Commands it accepts outstanding at once.
    pub(super) fn queue_depth(&self) -> u32 {
        match self {
            Self::Csd(d) => d.queue_depth(),
            Self::Fpga(d) => d.queue_depth(),
            Self::Gpu(d) => d.queue_depth(),
        }
    }

    /// Whether it is a storage device (holds data of its own).
    pub(super) fn holds_data(&self) -> bool {
        matches!(self, Self::Csd(_))
    }

    /// Its host link, in the offload layer's terms.
    pub(super) fn link(&self) -> Link {
        let pcie = self.pcie();
        Link {
            bytes_per_sec: pcie.effective_bandwidth().bytes_per_sec(),
            latency: to_std(pcie.latency()),
        }
    }

    /// The time the device takes for `kernel` over `input` bytes giving `output` bytes, with
    /// the input on its own namespace (`in_place`, CSDs only) or sent from the host.
    pub(super) fn timing(
        &self,
        kernel: &str,
        input: u64,
        output: u64,
        in_place: bool,
    ) -> Result<Timing, SimError> {
        match self {
            Self::Csd(d) if in_place => d.pushdown(kernel, input, output),
            Self::Csd(d) => from_host(d, kernel, input, output),
            Self::Fpga(d) => d.run(kernel, input, output),
            Self::Gpu(d) => d.run(kernel, input, output),
        }
    }

    /// The time for the host to read `bytes` from its namespace (CSDs only).
    pub(super) fn host_read(&self, bytes: u64) -> Option<Timing> {
        match self {
            Self::Csd(d) => Some(d.host_read(bytes)),
            Self::Fpga(_) | Self::Gpu(_) => None,
        }
    }
}

/// A CSD running a kernel on bytes the host sends it: link in, device memory, engines, link
/// out, pipelined in the drive's chunks (the stages of a card, on the drive's parts).
fn from_host(csd: &Csd, kernel: &str, input: u64, output: u64) -> Result<Timing, SimError> {
    let rate = csd.compute().rate(csd.name(), kernel)?;
    let link = csd.link();
    let over_link = |stage: Stage, bytes: u64| {
        let latency = if bytes == 0 {
            SimDuration::ZERO
        } else {
            link.latency()
        };
        StageTime::new(stage, latency, link.effective_bandwidth().time_for(bytes))
    };
    let stages = vec![
        over_link(Stage::LinkToDevice, input),
        StageTime::new(
            Stage::DeviceMemory,
            SimDuration::ZERO,
            csd.memory()
                .bandwidth()
                .time_for(2 * input.saturating_add(output)),
        ),
        StageTime::new(Stage::Compute, SimDuration::ZERO, rate.time_for(input)),
        over_link(Stage::LinkToHost, output),
    ];
    let chunks = input.div_ceil(csd.chunk_bytes().max(1)).max(1);
    Ok(Timing::pipelined(stages, chunks))
}

/// `timing` split into estimate parts: each stage's share of the pipelined total (its latency,
/// plus its busy time if it is the bottleneck, else one chunk's worth) goes to the part it
/// belongs to, so the parts add up to the total exactly.
pub(super) fn split(timing: &Timing) -> DeviceEstimate {
    let mut parts = DeviceEstimate {
        queue_wait: to_std(timing.queue_wait),
        ..DeviceEstimate::default()
    };
    for s in &timing.stages {
        let busy = if Some(s.stage) == timing.bottleneck {
            s.busy
        } else {
            s.busy.div_parts(timing.chunks)
        };
        let share = to_std(s.latency + busy);
        match s.stage {
            Stage::Flash | Stage::LinkToDevice => parts.transfer_in += share,
            Stage::LinkToHost => parts.transfer_out += share,
            Stage::DeviceMemory | Stage::Compute | Stage::HostCompute => parts.compute += share,
        }
    }
    parts
}

/// A simulated duration as a std one (both are whole nanoseconds).
pub(super) fn to_std(d: SimDuration) -> Duration {
    Duration::from_nanos(d.as_nanos())
}
