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
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use quarry_sim::{Profile, SimDuration};
use tokio::time::Instant;

use self::commands::Commands;
use self::model::{DeviceModel, split, to_std};
use self::program::{EBPF_INSTRUCTIONS_PER_SEC, Program, profile_kernel, program_for};
use crate::backend::native::NativeBackend;
use crate::backend::{
    Backend, BackendError, BackendId, ChunkStream, DataLocation, Demand, DeviceClass,
    DeviceEstimate, FunctionFailure, Job, Link, Load, OutputSink, RunReport, VariantKind,
};
use crate::function::{FunctionSpec, Variant};

/// Instructions per input byte assumed for an eBPF job before it has run (its admission).
const EBPF_INSTRUCTIONS_PER_BYTE_GUESS: u64 = 16;

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

    /// The modelled service time of `program` (queue wait excluded); for an eBPF program,
    /// before it has run, with [`EBPF_INSTRUCTIONS_PER_BYTE_GUESS`] instructions per byte.
    fn service(&self, program: &Program, input: u64, output: u64, in_place: bool) -> SimDuration {
        match program {
            Program::Fixed { .. } => self
                .model
                .timing(program.model_name(), input, output, in_place)
                .map_or(SimDuration::ZERO, |t| t.total),
            Program::Ebpf { .. } => self.ebpf_service(
                input.saturating_mul(EBPF_INSTRUCTIONS_PER_BYTE_GUESS),
                input,
                output,
                in_place,
            ),
        }
    }

    /// The time of an eBPF program that executed `instructions`: the input over the link
    /// unless it is in place, the instructions on the drive's engines, the result over the
    /// link. (In place, reading flash is taken to keep up with the engines.)
    fn ebpf_service(
        &self,
        instructions: u64,
        input: u64,
        output: u64,
        in_place: bool,
    ) -> SimDuration {
        let link = self.model.link();
        let over_link = |bytes: u64| {
            if bytes == 0 {
                0.0
            } else {
                link.latency.as_secs_f64() + bytes as f64 / link.bytes_per_sec
            }
        };
        let compute = instructions as f64
            / (EBPF_INSTRUCTIONS_PER_SEC * f64::from(self.model.engines().max(1)));
        let input_time = if in_place { 0.0 } else { over_link(input) };
        SimDuration::from_secs_f64(input_time + compute + over_link(output))
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
        self.program(function).map(|program| match program {
            Program::Fixed { .. } => VariantKind::Native,
            Program::Ebpf { .. } => VariantKind::Ebpf,
        })
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
        // An eBPF program runs in the VM on the executor's workers, counting its instructions.
        let instructions = Arc::new(AtomicU64::new(0));
        let job = match &program {
            Program::Fixed { .. } => job,
            Program::Ebpf { program } => {
                let mut function = (*job.function).clone();
                let counting = program.counting(Arc::clone(&instructions));
                function.variants = vec![Variant::Kernel(Arc::new(counting))];
                Job {
                    function: Arc::new(function),
                    ..job
                }
            }
        };
        let started = Instant::now();
        let effects = Arc::clone(&job.effects);
        let (inner, rx) = OutputSink::channel(OUTPUT_DEPTH);
        let projected = to_std(command.wait + self.service(&program, size, size, in_place));
        let (result, mut held) = tokio::join!(
            self.executor.run_as(&self.id, job, input, inner),
            output::hold(rx, &out, || effects.add_device_time(projected)),
        );
        let mut report = result?;
        let service = match &program {
            Program::Fixed { .. } => {
                self.service(&program, report.bytes_in, report.bytes_out, in_place)
            }
            Program::Ebpf { .. } => self.ebpf_service(
                instructions.load(Ordering::Relaxed),
                report.bytes_in,
                report.bytes_out,
                in_place,
            ),
        };
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
