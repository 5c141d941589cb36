// SPDX-License-Identifier: Apache-2.0
//! The TOML shape of a device profile, as written in `sim/profiles/*.toml`, and its
//! conversion into checked models. Unknown keys are refused; every figure is range checked
//! with an error naming the profile, the key and what a valid value looks like.
//!
//! Units are in the key names: `_gb_s` and `_mb_s` are decimal (10^9, 10^6 bytes/s),
//! `_gib`, `_mib`, `_kib` binary sizes, `_us` microseconds, `_mhz` megahertz.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::card::Card;
use crate::clock::SimDuration;
use crate::compute::{ComputeEngines, EngineKind, KernelRate};
use crate::csd::Csd;
use crate::error::SimError;
use crate::flash::Flash;
use crate::fpga::FpgaCard;
use crate::gpu::Gpu;
use crate::host::HostCpu;
use crate::link::{PcieGen, PcieLink};
use crate::memory::Memory;
use crate::profile::Device;
use crate::rate::Bandwidth;

/// Which model a profile feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RawKind {
    Csd,
    Fpga,
    Gpu,
    Host,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProfile {
    pub(crate) name: String,
    pub(crate) kind: RawKind,
    pub(crate) summary: String,
    link: Option<RawLink>,
    flash: Option<RawFlash>,
    memory: RawMemory,
    compute: RawCompute,
    queue: Option<RawQueue>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    generation: u8,
    lanes: u8,
    efficiency: f64,
    latency_us: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlash {
    channels: u32,
    channel_mb_s: f64,
    page_kib: u64,
    read_latency_us: f64,
    queue_depth: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMemory {
    capacity_gib: u64,
    bandwidth_gb_s: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCompute {
    engine: EngineKind,
    engines: u32,
    #[serde(default = "default_chunk_mib")]
    chunk_mib: u64,
    kernels: BTreeMap<String, RawKernel>,
}

fn default_chunk_mib() -> u64 {
    4
}

/// Either `gb_s`, or an FPGA pipeline `ii` x `clock_mhz` x `lanes` (x `bytes_per_item`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKernel {
    gb_s: Option<f64>,
    ii: Option<u32>,
    clock_mhz: Option<f64>,
    lanes: Option<u32>,
    bytes_per_item: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    depth: u32,
}

impl RawProfile {
    /// The checked model this profile describes.
    pub(crate) fn into_device(self) -> Result<Device, SimError> {
        let name = self.name.clone();
        let need = |section: &'static str, present: bool| -> Result<(), SimError> {
            if present {
                Ok(())
            } else {
                Err(SimError::figure(
                    &name,
                    section,
                    "(missing)",
                    "this kind of device needs the section; see docs/simulator.md",
                ))
            }
        };
        let refuse = |section: &'static str, present: bool| -> Result<(), SimError> {
            if present {
                Err(SimError::figure(
                    &name,
                    section,
                    "(present)",
                    "this kind of device has no such part; remove the section",
                ))
            } else {
                Ok(())
            }
        };
        let memory = self.memory.into_model(&name)?;
        let chunk_bytes = mib(&name, "compute.chunk_mib", self.compute.chunk_mib)?;
        let compute = self.compute.into_model(&name)?;
        match self.kind {
            RawKind::Host => {
                refuse("[link]", self.link.is_some())?;
                refuse("[flash]", self.flash.is_some())?;
                refuse("[queue]", self.queue.is_some())?;
                Ok(Device::Host(HostCpu {
                    name,
                    memory,
                    compute,
                }))
            }
            RawKind::Csd => {
                need("[link]", self.link.is_some())?;
                need("[flash]", self.flash.is_some())?;
                need("[queue]", self.queue.is_some())?;
                let (Some(link), Some(flash), Some(queue)) = (self.link, self.flash, self.queue)
                else {
                    unreachable!("checked just above")
                };
                Ok(Device::Csd(Csd {
                    link: link.into_model(&name)?,
                    flash: flash.into_model(&name)?,
                    queue_depth: queue.into_depth(&name)?,
                    name,
                    memory,
                    compute,
                    chunk_bytes,
                }))
            }
            RawKind::Fpga | RawKind::Gpu => {
                refuse("[flash]", self.flash.is_some())?;
                need("[link]", self.link.is_some())?;
                need("[queue]", self.queue.is_some())?;
                let (Some(link), Some(queue)) = (self.link, self.queue) else {
                    unreachable!("checked just above")
                };
                let card = Card {
                    link: link.into_model(&name)?,
                    queue_depth: queue.into_depth(&name)?,
                    memory,
                    compute,
                    chunk_bytes,
                };
                Ok(if self.kind == RawKind::Fpga {
                    Device::Fpga(FpgaCard { name, card })
                } else {
                    Device::Gpu(Gpu { name, card })
                })
            }
        }
    }
}

fn micros(owner: &str, key: &str, us: f64) -> Result<SimDuration, SimError> {
    if us.is_finite() && us >= 0.0 {
        Ok(SimDuration::from_secs_f64(us * 1e-6))
    } else {
        Err(SimError::figure(
            owner,
            key,
            us,
            "a time in microseconds, 0 or more",
        ))
    }
}

fn mib(owner: &str, key: &str, n: u64) -> Result<u64, SimError> {
    match n.checked_mul(1 << 20) {
        Some(bytes) if bytes > 0 => Ok(bytes),
        _ => Err(SimError::figure(owner, key, n, "a size in MiB, at least 1")),
    }
}

/// Re-labels a model's own range error with the profile's name and the TOML key.
fn in_profile(owner: &str, key: &str, err: SimError) -> SimError {
    match err {
        SimError::InvalidFigure {
            value, expected, ..
        } => SimError::figure(owner, key, value, expected),
        other => other,
    }
}

impl RawLink {
    fn into_model(self, owner: &str) -> Result<PcieLink, SimError> {
        let generation = PcieGen::from_number(self.generation).ok_or_else(|| {
            SimError::figure(owner, "link.generation", self.generation, "3, 4 or 5")
        })?;
        let latency = micros(owner, "link.latency_us", self.latency_us)?;
        PcieLink::new(generation, self.lanes, self.efficiency, latency)
            .map_err(|e| in_profile(owner, "link", e))
    }
}

impl RawFlash {
    fn into_model(self, owner: &str) -> Result<Flash, SimError> {
        let channel = Bandwidth::new(self.channel_mb_s * 1e6, owner, "flash.channel_mb_s")?;
        let page_bytes = self.page_kib.checked_mul(1024).ok_or_else(|| {
            SimError::figure(owner, "flash.page_kib", self.page_kib, "a page size in KiB")
        })?;
        let latency = micros(owner, "flash.read_latency_us", self.read_latency_us)?;
        Flash::new(
            self.channels,
            channel,
            page_bytes,
            latency,
            self.queue_depth,
        )
        .map_err(|e| in_profile(owner, "flash", e))
    }
}

impl RawMemory {
    fn into_model(self, owner: &str) -> Result<Memory, SimError> {
        let bandwidth =
            Bandwidth::from_gb_per_sec(self.bandwidth_gb_s, owner, "memory.bandwidth_gb_s")?;
        let capacity = self.capacity_gib.checked_mul(1 << 30).ok_or_else(|| {
            SimError::figure(
                owner,
                "memory.capacity_gib",
                self.capacity_gib,
                "a size in GiB",
            )
        })?;
        Memory::new(capacity, bandwidth).map_err(|e| in_profile(owner, "memory.capacity_gib", e))
    }
}

impl RawQueue {
    fn into_depth(self, owner: &str) -> Result<u32, SimError> {
        if self.depth == 0 {
            Err(SimError::figure(
                owner,
                "queue.depth",
                0,
                "at least 1 command",
            ))
        } else {
            Ok(self.depth)
        }
    }
}

impl RawCompute {
    fn into_model(self, owner: &str) -> Result<ComputeEngines, SimError> {
        let mut kernels = BTreeMap::new();
        for (kernel, raw) in self.kernels {
            let key = format!("compute.kernels.{kernel}");
            let rate = raw.into_rate(owner, &key)?;
            rate.bandwidth().map_err(|e| in_profile(owner, &key, e))?;
            kernels.insert(kernel, rate);
        }
        ComputeEngines::new(self.engine, self.engines, kernels)
            .map_err(|e| in_profile(owner, "compute.engines", e))
    }
}

impl RawKernel {
    fn into_rate(self, owner: &str, key: &str) -> Result<KernelRate, SimError> {
        match (self.gb_s, self.ii, self.clock_mhz, self.lanes) {
            (Some(gb_s), None, None, None) if self.bytes_per_item.is_none() => Ok(
                KernelRate::Throughput(Bandwidth::from_gb_per_sec(gb_s, owner, key)?),
            ),
            (None, Some(ii), Some(clock_mhz), Some(lanes)) => Ok(KernelRate::Pipeline {
                initiation_interval: ii,
                clock_hz: clock_mhz * 1e6,
                lanes,
                bytes_per_item: self.bytes_per_item.unwrap_or(1),
            }),
            _ => Err(SimError::figure(
                owner,
                key,
                "(mixed or incomplete)",
                "give either gb_s, or ii, clock_mhz and lanes (and optionally bytes_per_item)",
            )),
        }
    }
}
