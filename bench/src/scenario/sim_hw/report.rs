// SPDX-License-Identifier: Apache-2.0
//! The `sim-hw` report (bench/reports/sim_hw.json). It carries no wall-clock time, host name
//! or revision, so two runs over the same models give the same bytes.

use serde::Serialize;

use super::checks::Check;
use super::grid::{DRIVES, FPGA_PROFILE, GPU_PROFILE, HOST_PROFILE, KERNELS, SIZES};
use super::sweep::Point;

/// Version of this report's shape; bump when a field changes meaning.
pub const FORMAT_VERSION: u32 = 1;

/// What the numbers do and do not say.
pub const CAVEATS: &[&str] = &[
    "Times are virtual: quarry-sim models computed from cited profiles (sim/profiles/*.toml), not measurements of this machine.",
    "Every object lives on the drive named by the point; the host, GPU and FPGA plans read it over that drive's PCIe link first.",
    "Output size is the input times the selectivity; the kernels' real output bytes are shown by the sample, not by the sweep.",
    "One job at a time on idle devices: no queueing between jobs.",
    "The SmartSSD check is calibrated, not predicted: xeon-host's csv-filter rate is set from the same letter (docs/simulator.md).",
];

/// The scenario's report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimHwReport {
    /// Always `sim-hw`.
    pub scenario: &'static str,
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The profiles behind each plan.
    pub models: ModelsUsed,
    /// What picked the plan at each point.
    pub chooser: String,
    /// The sweep's axes.
    pub grid: Grid,
    /// [`CAVEATS`].
    pub caveats: Vec<&'static str>,
    /// Real kernel runs over small samples (the bytes are real; the times are the models').
    pub samples: Vec<SampleRun>,
    /// Every point, in kernel, drive, size, selectivity order.
    pub points: Vec<Point>,
    /// The invariants.
    pub checks: Vec<Check>,
    /// Counts.
    pub summary: Summary,
}

/// One sample run: a real kernel over a small object, on a simulated drive backend (the
/// object on its namespace) and on the native CPU backend.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SampleRun {
    /// The kernel.
    pub kernel: String,
    /// The drive's profile.
    pub drive: String,
    /// Selectivity the sample was generated for.
    pub selectivity: f64,
    /// Sample size.
    pub input_bytes: u64,
    /// Bytes the drive backend returned.
    pub output_bytes: u64,
    /// Output over input.
    pub kept: f64,
    /// Whether the drive backend's output equals the native CPU backend's, byte for byte.
    pub same_as_cpu: bool,
    /// The drive model's time for this sample (virtual), nanoseconds.
    pub device_time_ns: Option<u64>,
}

/// The profiles behind each plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelsUsed {
    /// Host plan's CPU.
    pub host: &'static str,
    /// GPU plan's card.
    pub gpu: &'static str,
    /// FPGA plan's card.
    pub fpga: &'static str,
    /// Drives swept.
    pub drives: Vec<String>,
}

impl Default for ModelsUsed {
    fn default() -> Self {
        Self {
            host: HOST_PROFILE,
            gpu: GPU_PROFILE,
            fpga: FPGA_PROFILE,
            drives: DRIVES.iter().map(|d| (*d).to_owned()).collect(),
        }
    }
}

/// The sweep's axes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Grid {
    /// Kernels.
    pub kernels: Vec<&'static str>,
    /// Selectivities (share of the input kept).
    pub selectivities: Vec<f64>,
    /// Object sizes in bytes.
    pub sizes: Vec<u64>,
}

impl Default for Grid {
    fn default() -> Self {
        Self {
            kernels: KERNELS.to_vec(),
            selectivities: super::grid::SELECTIVITY_PER_MILLE
                .iter()
                .map(|&m| m as f64 / 1000.0)
                .collect(),
            sizes: SIZES.to_vec(),
        }
    }
}

/// Counts over the points and checks.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Points in the sweep.
    pub points: usize,
    /// Points where the chosen plan is the best.
    pub chosen_best: usize,
    /// Checks that failed, by name.
    pub failed_checks: Vec<&'static str>,
}

impl Summary {
    /// The summary of `points` and `checks`.
    pub fn new(points: &[Point], checks: &[Check]) -> Self {
        Self {
            points: points.len(),
            chosen_best: points.iter().filter(|p| p.chosen == p.best).count(),
            failed_checks: checks
                .iter()
                .filter(|c| !c.passed)
                .map(|c| c.name)
                .collect(),
        }
    }
}
