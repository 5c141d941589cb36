// SPDX-License-Identifier: Apache-2.0
#![forbid(unsafe_code)]
//! # quarry-sim
//!
//! ## Overview
//!
//! Deterministic models of the devices Quarry can offload to when the real ones are absent:
//! computational-storage drives ([`Csd`]), FPGA accelerator cards ([`FpgaCard`]), GPUs
//! ([`Gpu`]), and the host CPU for host-side plans ([`HostCpu`]). A model answers "how long
//! would this device take" with a [`Timing`] that breaks the time down by [`Stage`] (flash,
//! device memory, compute, link, queue) and names the bottleneck; the real kernels produce
//! the real bytes elsewhere. Models are built from [`Profile`]s: TOML files under
//! `sim/profiles/`, compiled in, each figure cited.
//!
//! Time is virtual ([`SimDuration`], [`SimInstant`], [`VirtualClock`], [`EventQueue`]): no
//! wall clock is read anywhere, and nothing is random, so the same inputs always give the
//! same timings.
//!
//! ## Example
//!
//! ```
//! use quarry_sim::{Csd, HostCpu, Profile, Stage};
//!
//! let csd = Csd::from_profile(&Profile::builtin("smartssd")?)?;
//! let host = HostCpu::from_profile(&Profile::builtin("xeon-host")?)?;
//!
//! // A 1 GiB CSV scan that keeps 1 % of the bytes.
//! let input = 1 << 30;
//! let pushdown = csd.pushdown("csv-filter", input, input / 100)?;
//! let on_host = csd.host_scan(&host, "csv-filter", input)?;
//! assert_eq!(pushdown.bottleneck, Some(Stage::Flash));
//! assert_eq!(on_host.bottleneck, Some(Stage::HostCompute));
//! assert!(on_host.total > pushdown.total);
//!
//! // Jobs queue FIFO over the device's engines.
//! let mut queue = csd.command_queue()?;
//! let first = queue.submit(quarry_sim::SimInstant::START, pushdown.total)?;
//! let second = queue.submit(quarry_sim::SimInstant::START, pushdown.total)?;
//! assert_eq!(second.wait(), first.finish.since_start());
//! # Ok::<(), quarry_sim::SimError>(())
//! ```
//!
//! ## Design notes
//!
//! - Each model is a pure function of its profile and the job's sizes; queueing state lives
//!   in a separate [`CommandQueue`] the caller owns, so `&self` models are freely shared.
//! - Pipelined jobs cost the slowest stage plus one chunk of every other stage (fill and
//!   drain); see `docs/simulator.md` for every formula and the profiles' sources.
//! - This crate does not implement the offload `Backend` seam; the adapter lives in
//!   `quarry-offload`, which keeps this crate free of async and I/O.

mod card;
pub mod clock;
pub mod compute;
pub mod csd;
mod error;
pub mod flash;
pub mod fpga;
pub mod gpu;
pub mod host;
pub mod link;
pub mod memory;
pub mod pipeline;
pub mod profile;
pub mod queue;
pub mod rate;

pub use clock::{EventQueue, SimDuration, SimInstant, VirtualClock};
pub use compute::{ComputeEngines, EngineKind, KernelRate};
pub use csd::Csd;
pub use error::SimError;
pub use flash::Flash;
pub use fpga::FpgaCard;
pub use gpu::Gpu;
pub use host::HostCpu;
pub use link::{DEFAULT_PROTOCOL_EFFICIENCY, PcieGen, PcieLink};
pub use memory::Memory;
pub use pipeline::{Stage, StageTime, Timing};
pub use profile::{Device, Profile};
pub use queue::{CommandQueue, Slot, wait_behind};
pub use rate::Bandwidth;

#[cfg(test)]
mod tests;
