// SPDX-License-Identifier: Apache-2.0
//! The scheduler's choice: `Scheduler::place` over a node with the sweep's devices, asked at
//! every point without running anything.
//!
//! Per drive, one scheduler over four backends, as `quarryd` wires them: the native CPU
//! backend (`cpu`), and simulated devices from the same profiles the sweep times:
//! `gpu0` (`a100-pcie`), `fpga0` (`alveo-u250`) and `csd0` (the drive). The job reads an object
//! of the point's size whose bytes sit on `csd0`'s namespace (a bucket placed on the drive),
//! under policy `auto`. The simulated devices answer for themselves through their device
//! models (`Backend::estimate`); the drive's host read is what every other backend pays first.
//!
//! What the scheduler is told, as a running node would know it:
//! - the CPU backend's rate for the kernel is the `xeon-host` model's (a calibration run on
//!   that host would measure it; calibrating on this machine would make the choice depend on
//!   the machine running the benchmark);
//! - the kernel's output ratio is the point's selectivity, as learned from earlier jobs of the
//!   same query (the rate table's `out_ratio`, recorded on the CPU backend's entry).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use quarry_kernels::{BoundKernel, Kernel, KernelError, KernelInfo, Params};
use quarry_offload::backend::sim::{SimDeviceBackend, SimDeviceConfig};
use quarry_offload::backend::{DataLocation, VariantKind};
use quarry_offload::scheduler::work_name;
use quarry_offload::{
    Backend, BackendId, Effects, Flow, FunctionLimits, FunctionSpec, InvocationContext, Job,
    NativeBackend, NativeConfig, Policy, Rate, Scheduler, SchedulerConfig, Variant,
};
use quarry_sim::Profile;

use super::grid::{FPGA_PROFILE, GPU_PROFILE, Plan};
use super::models::Models;
use super::sweep::{Chooser, ScanJob};

const CPU: &str = "cpu";
const GPU: &str = "gpu0";
const FPGA: &str = "fpga0";
const CSD: &str = "csd0";

/// [`Chooser`] through the real scheduler (see the module docs).
pub struct SchedulerChooser {
    models: Models,
    executor: Arc<NativeBackend>,
    nodes: BTreeMap<String, Scheduler>,
}

impl std::fmt::Debug for SchedulerChooser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerChooser")
            .field("nodes", &self.nodes.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl SchedulerChooser {
    /// A chooser over `models`' drives (one scheduler per drive, built on first use).
    pub fn new(models: Models) -> Result<Self> {
        let config = NativeConfig {
            workers: Some(1),
            ..NativeConfig::default()
        };
        let executor =
            Arc::new(NativeBackend::new(&config).context("starting the native CPU backend")?);
        Ok(Self {
            models,
            executor,
            nodes: BTreeMap::new(),
        })
    }

    fn node(&mut self, drive: &str) -> Result<&Scheduler> {
        if !self.nodes.contains_key(drive) {
            let device = |id: &str, profile: &str| -> Result<Arc<dyn Backend>> {
                let profile = Profile::builtin(profile)?;
                let backend = SimDeviceBackend::new(
                    BackendId(id.to_owned()),
                    &profile,
                    Arc::clone(&self.executor),
                    SimDeviceConfig::default(),
                )?;
                Ok(Arc::new(backend))
            };
            let backends: Vec<Arc<dyn Backend>> = vec![
                Arc::clone(&self.executor) as Arc<dyn Backend>,
                device(GPU, GPU_PROFILE)?,
                device(FPGA, FPGA_PROFILE)?,
                device(CSD, drive)?,
            ];
            self.nodes.insert(
                drive.to_owned(),
                Scheduler::new(backends, SchedulerConfig::default()),
            );
        }
        self.nodes
            .get(drive)
            .ok_or_else(|| anyhow!("no scheduler for drive {drive}"))
    }
}

impl Chooser for SchedulerChooser {
    fn describe(&self) -> String {
        format!(
            "Scheduler::place (policy auto) over the native CPU backend (rate of the {} model) \
             and simulated devices {GPU} ({GPU_PROFILE}), {FPGA} ({FPGA_PROFILE}) and {CSD} \
             (the drive, holding the object); output ratio known from earlier jobs",
            self.models.host.name()
        )
    }

    fn choose(&mut self, scan: &ScanJob<'_>) -> Result<Plan> {
        let function = builtin_function(scan.kernel)?;
        let host_rate = self.models.host.rate(scan.kernel)?.bytes_per_sec();
        let work = work_name(&function, VariantKind::Native);
        let out_ratio = scan.output_bytes as f64 / scan.input_bytes.max(1) as f64;
        let scheduler = self.node(scan.drive)?;
        scheduler.set_rate(
            &work,
            &BackendId(CPU.to_owned()),
            Rate {
                fixed: Duration::ZERO,
                bytes_per_sec: host_rate,
                out_ratio,
                samples: 1,
            },
        );
        let mut context = InvocationContext {
            event: "invoke".to_owned(),
            location: DataLocation::Device(BackendId(CSD.to_owned())),
            ..InvocationContext::default()
        };
        context.facts.size = Some(scan.input_bytes);
        let job = Job {
            function,
            context,
            flow: Flow::Read,
            effects: Effects::new(),
            bucket: None,
            policy: Policy::Auto,
        };
        let placement = scheduler.place(&job)?;
        match placement.chosen.backend.0.as_str() {
            CPU => Ok(Plan::Host),
            GPU => Ok(Plan::Gpu),
            FPGA => Ok(Plan::Fpga),
            CSD => Ok(Plan::Csd),
            other => Err(anyhow!("the scheduler chose an unknown backend {other}")),
        }
    }
}

/// A built-in kernel deployed as a function of the same name.
pub(super) fn builtin_function(kernel: &str) -> Result<Arc<FunctionSpec>> {
    let k = quarry_kernels::find(kernel)
        .ok_or_else(|| anyhow!("no built-in kernel {kernel} in quarry-kernels"))?;
    Ok(Arc::new(FunctionSpec {
        name: kernel.to_owned(),
        version: 1,
        limits: FunctionLimits::default(),
        permissions: Vec::new(),
        variants: vec![Variant::Kernel(Arc::new(Builtin(k)))],
    }))
}

/// A `'static` built-in kernel as a deployable variant.
#[derive(Debug)]
struct Builtin(&'static dyn Kernel);

impl Kernel for Builtin {
    fn info(&self) -> &KernelInfo {
        self.0.info()
    }

    fn bind(&self, params: &Params) -> Result<Arc<dyn BoundKernel>, KernelError> {
        self.0.bind(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::sim_hw::grid::DRIVES;
    use crate::scenario::sim_hw::{checks, sweep};

    const GIB: u64 = 1 << 30;

    fn chooser() -> SchedulerChooser {
        SchedulerChooser::new(Models::builtin(&DRIVES).expect("profiles")).expect("chooser")
    }

    fn scan(
        drive: &'static str,
        kernel: &'static str,
        input: u64,
        output: u64,
    ) -> ScanJob<'static> {
        ScanJob {
            drive,
            kernel,
            input_bytes: input,
            output_bytes: output,
        }
    }

    #[test]
    fn a_selective_filter_on_a_smartssd_goes_to_the_drive() {
        let mut c = chooser();
        let plan = c
            .choose(&scan("smartssd", "csv-filter", 16 * GIB, 16 * GIB / 100))
            .expect("placed");
        assert_eq!(plan, Plan::Csd);
    }

    #[test]
    fn a_drive_slower_than_its_link_is_passed_over() {
        // scaleflux-csd3000 greps at 3.2 GB/s behind a 6.8 GB/s link: reading it out wins.
        let mut c = chooser();
        let plan = c
            .choose(&scan("scaleflux-csd3000", "grep", GIB, GIB / 1000))
            .expect("placed");
        assert_ne!(plan, Plan::Csd);
    }

    #[test]
    fn the_scheduler_passes_the_choice_check_over_the_shipped_models() {
        let models = Models::builtin(&DRIVES).expect("profiles");
        let points = sweep::sweep(&models, &mut chooser()).expect("sweep");
        let check = checks::choice(&points);
        assert!(check.passed, "{check:?}");
    }
}
