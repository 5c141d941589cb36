// SPDX-License-Identifier: Apache-2.0
//! Simulated devices as backends: a computational-storage drive, an FPGA card or a GPU described
//! by a `quarry_sim` profile, behind the same [`Backend`] trait as the real ones.
//!
//! A job runs for real: its fixed program (a built-in kernel) runs through the kernel's CPU
//! implementation on the native backend's workers, so the output bytes are those of the CPU
//! run. The device model gives the time the device would take: for a CSD with the object on its
//! namespace, flash reads, device memory, its engines and only the result over the link; for
//! data elsewhere (and always for a card), the input over the link first. That time, queue
//! wait behind the device's outstanding commands included, is the job's `device_time`
//! ([`RunReport::device_time`], the `x-quarry-device-time` header, the device-seconds metric).
//! The job does not wait it out unless [`SimDeviceConfig::pace`] asks.
//!
//! The scheduler costs these backends through [`Backend::estimate`] (the model, not calibrated
//! rates) and a CSD's [`Backend::host_read_time`] (what another backend pays to read data placed
//! on it). Invariants: admission never blocks (a full command queue answers `Overloaded` at once);
//! a command leaves the queue when its job ends, however it ends.

mod commands;
mod config;
mod model;
mod output;
mod program;

pub use self::config::SimDeviceConfig;

use std::sync::Arc;

use async_trait::async_trait;
use quarry_sim::{Profile, SimDuration};
use tokio::time::Instant;

use self::commands::Commands;
use self::model::{DeviceModel, split, to_std};
use self::program::{Program, profile_kernel, program_for};
use crate::backend::native::NativeBackend;
use crate::backend::{
    Backend, BackendError, BackendId, ChunkStream, DataLocation, Demand, DeviceClass,
    DeviceEstimate, FunctionFailure, Job, Link, Load, OutputSink, RunReport, VariantKind,
};
use crate::function::FunctionSpec;

/// Output chunks buffered between the kernel run and the hold.
const OUTPUT_DEPTH: usize = 16;

/// Why a simulated device could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SimDeviceError {
    /// The profile describes the host CPU, which is no device to offload to.
    #[error(
        "device profile {profile} describes a host CPU, not a device; use a csd, fpga or gpu profile"
    )]
    NotADevice {
        /// The profile.
        profile: String,
    },
}

/// A device simulated from a profile (see the module docs).
pub struct SimDeviceBackend {
    id: BackendId,
    profile: String,
    summary: String,
    model: DeviceModel,
    commands: Commands,
    executor: Arc<NativeBackend>,
    config: SimDeviceConfig,
}

impl std::fmt::Debug for SimDeviceBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimDeviceBackend")
            .field("id", &self.id)
            .field("profile", &self.profile)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SimDeviceBackend {
    /// The device `profile` describes, named `id`, running its programs' bytes on `executor`'s
    /// workers.
    pub fn new(
        id: BackendId,
        profile: &Profile,
        executor: Arc<NativeBackend>,
        config: SimDeviceConfig,
    ) -> Result<Self, SimDeviceError> {
        let model = DeviceModel::from_profile(profile)?;
        Ok(Self {
            id,
            profile: profile.name().to_owned(),
            summary: profile.summary().to_owned(),
            commands: Commands::new(model.engines(), model.queue_depth()),
            model,
            executor,
            config,
        })
    }

    /// The name of the profile it was built from.
    pub fn profile(&self) -> &str {
        &self.profile
    }

    /// One line for device listings: the class, profile and what it describes.
    pub fn description(&self) -> String {
        format!(
            "simulated {} ({}): {}",
            self.model.class(),
            self.profile,
            self.summary
        )
    }

    /// The kernels the device has fixed programs for (profile names: `grep`, `csv-filter`).
    pub fn programs(&self) -> Vec<&str> {
        self.model.programs()
    }

    /// Its settings.
    pub fn config(&self) -> &SimDeviceConfig {
        &self.config
    }

    fn program(&self, function: &FunctionSpec) -> Option<Program> {
        program_for(function, &self.model)
    }

    /// The modelled service time of `program` (queue wait excluded).
    fn service(&self, program: &Program, input: u64, output: u64, in_place: bool) -> SimDuration {
        self.model
            .timing(program.model_name(), input, output, in_place)
            .map_or(SimDuration::ZERO, |t| t.total)
    }
}

#[async_trait]
impl Backend for SimDeviceBackend {
    fn id(&self) -> &BackendId {
        &self.id
    }

    fn class(&self) -> DeviceClass {
        self.model.class()
    }

    fn variant_for(&self, function: &FunctionSpec) -> Option<VariantKind> {
        self.program(function).map(|_| VariantKind::Native)
    }

    fn load(&self) -> Load {
        self.commands.load()
    }

    fn describe(&self) -> String {
        self.description()
    }

    fn link(&self) -> Option<Link> {
        Some(self.model.link())
    }

    fn estimate(&self, demand: &Demand<'_>) -> Option<DeviceEstimate> {
        let in_place = demand.location.is_on(&self.id);
        let timing = self
            .model
            .timing(
                profile_kernel(demand.work),
                demand.input_bytes,
                demand.output_bytes,
                in_place,
            )
            .ok()?
            .after_queue_wait(self.commands.wait_now());
        Some(split(&timing))
    }

    fn host_read_time(&self, bytes: u64) -> Option<std::time::Duration> {
        self.model.host_read(bytes).map(|t| to_std(t.total))
    }

    fn accepts_auto(&self, location: &DataLocation) -> bool {
        !self.model.holds_data() || location.is_on(&self.id)
    }

    async fn run(
        &self,
        job: Job,
        input: ChunkStream,
        out: OutputSink,
    ) -> Result<RunReport, BackendError> {
        let label = job.function.label();
        let Some(program) = self.program(&job.function) else {
            return Err(BackendError::Unsupported {
                function: label,
                backend: self.id.0.clone(),
            });
        };
        let in_place = job.context.location.is_on(&self.id);
        let size = job.context.facts.size.unwrap_or(0);
        // Admitted with the object's size and, not knowing the result yet, a result as large.
        let command = self
            .commands
            .admit(self.service(&program, size, size, in_place))
            .map_err(|full| BackendError::Overloaded {
                backend: self.id.0.clone(),
                capacity: full.depth as usize,
                waited: std::time::Duration::ZERO,
            })?;
        let started = Instant::now();
        let effects = Arc::clone(&job.effects);
        let (inner, rx) = OutputSink::channel(OUTPUT_DEPTH);
        let projected = to_std(command.wait + self.service(&program, size, size, in_place));
        let (result, mut held) = tokio::join!(
            self.executor.run_as(&self.id, job, input, inner),
            output::hold(rx, &out, || effects.add_device_time(projected)),
        );
        let mut report = result?;
        let service = self.service(&program, report.bytes_in, report.bytes_out, in_place);
        let device_time = to_std(command.wait + service);
        drop(command);
        if !held.released_early {
            effects.add_device_time(device_time);
        }
        if self.config.pace {
            tokio::time::sleep_until(started + device_time).await;
        }
        if held.reader_gone || !held.release(&out).await {
            return Err(BackendError::FunctionFailed {
                function: label,
                backend: self.id.0.clone(),
                cause: FunctionFailure::Cancelled,
            });
        }
        report.device_time = Some(device_time);
        report.wall_time = started.elapsed();
        Ok(report)
    }
}

#[cfg(test)]
mod tests;
