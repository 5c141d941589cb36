// SPDX-License-Identifier: Apache-2.0
//! Scenario `sim-hw`: the simulated-hardware benchmark. A scan of an object stored on a
//! computational-storage drive can run four ways: the host reads the object over the
//! drive's PCIe link and scans it on its CPU, or hands it on to a GPU or an FPGA card, or the
//! drive scans it internally and ships only the result. The sweep times every plan with the
//! `quarry-sim` models (virtual time, cited profiles) over kernel x drive x object size
//! (1 MiB to 16 GiB) x selectivity (0.1 % to 100 %), asks a [`Chooser`] (the node's
//! scheduler) which plan it would pick, and checks the model's invariants:
//!
//! - two runs in one process give byte-identical reports ([`checks::determinism`]);
//! - the chosen plan is within 10 % of the best in at least 95 % of the points
//!   ([`checks::choice`]);
//! - the `smartssd` profile reproduces the published 3.04x end-to-end scan speedup within
//!   20 % ([`checks::smartssd_speedup`]);
//! - offload loses where it should: at 100 % selectivity the pushdown is no faster than
//!   moving every byte off the drive ([`checks::offload_loses_at_full_selectivity`]);
//! - real kernels over small samples on a simulated drive backend give the native CPU
//!   backend's bytes ([`checks::samples_real`]).
//!
//! The chooser is the real scheduler over simulated device backends ([`choice`]); the
//! sample runs are in [`sample`]; [`run_sim_hw`] runs it all twice and compares.
//!
//! The report (JSON), the table and the chart (SVG) carry no wall-clock figure, so a run is
//! reproducible bit for bit; the whole sweep is arithmetic and takes well under a second.

pub mod checks;
pub mod choice;
pub mod corpus;
pub mod grid;
pub mod models;
pub mod report;
pub mod run;
pub mod sample;
pub mod svg;
pub mod sweep;
pub mod table;

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Args;

pub use self::grid::Plan;
pub use self::models::Models;
pub use self::report::SimHwReport;
pub use self::run::{run_sim_hw, write_svg};
pub use self::sweep::{Chooser, Point, ScanJob};
pub use self::table::write_table;

use self::report::{CAVEATS, FORMAT_VERSION, Grid, ModelsUsed, SampleRun, Summary};

/// Options of the `sim-hw` scenario.
#[derive(Debug, Clone, Args)]
pub struct SimHwOptions {
    /// Where the JSON report is written.
    #[arg(long, default_value = "target/scenario/sim_hw.json")]
    pub out: PathBuf,

    /// Where the SVG chart is written.
    #[arg(long, default_value = "target/scenario/sim_hw.svg")]
    pub svg: PathBuf,

    /// Size of the samples the real kernels run over (the sweep itself is modelled).
    #[arg(long, default_value = "1MiB", value_parser = super::options::parse_size)]
    pub sample_size: u64,
}

/// One run: the sweep over `models` with `chooser`, the `samples` already run, and the checks
/// that need one run only.
pub fn build_report(
    models: &Models,
    chooser: &mut dyn Chooser,
    samples: Vec<SampleRun>,
) -> Result<SimHwReport> {
    let points = sweep::sweep(models, chooser)?;
    let checks = vec![
        checks::choice(&points),
        checks::smartssd_speedup(&points),
        checks::offload_loses_at_full_selectivity(&points),
        checks::samples_real(&samples),
    ];
    Ok(SimHwReport {
        scenario: "sim-hw",
        format_version: FORMAT_VERSION,
        models: ModelsUsed {
            drives: models.drives.iter().map(|d| d.name().to_owned()).collect(),
            ..ModelsUsed::default()
        },
        chooser: chooser.describe(),
        grid: Grid::default(),
        caveats: CAVEATS.to_vec(),
        summary: Summary::new(&points, &checks),
        samples,
        points,
        checks,
    })
}

/// The first run's report with the comparison against a second, independent run added as
/// the first check.
pub fn finish(mut first: SimHwReport, second: &SimHwReport) -> Result<SimHwReport> {
    let a = serde_json::to_string(&first).context("serializing the first run")?;
    let b = serde_json::to_string(second).context("serializing the second run")?;
    first.checks.insert(0, checks::determinism(&a, &b));
    first.summary = Summary::new(&first.points, &first.checks);
    Ok(first)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::grid::DRIVES;
    use super::sweep::tests::Always;
    use super::*;

    pub(crate) fn small_report() -> SimHwReport {
        report_with(Plan::Csd)
    }

    fn report_with(plan: Plan) -> SimHwReport {
        let models = Models::builtin(&DRIVES).expect("profiles");
        build_report(&models, &mut Always(plan), Vec::new()).expect("report")
    }

    #[test]
    fn identical_runs_pass_and_a_run_that_changed_fails_determinism() {
        let same = finish(report_with(Plan::Host), &report_with(Plan::Host)).expect("finish");
        assert_eq!(same.checks[0].name, "deterministic");
        assert!(same.checks[0].passed, "{:?}", same.checks[0]);
        let changed = finish(report_with(Plan::Host), &report_with(Plan::Gpu)).expect("finish");
        assert!(!changed.checks[0].passed);
        assert!(changed.summary.failed_checks.contains(&"deterministic"));
    }

    #[test]
    fn a_chooser_that_ignores_the_data_fails_the_choice_check() {
        let r = report_with(Plan::Host);
        let choice = r
            .checks
            .iter()
            .find(|c| c.name == "scheduler-choice")
            .expect("check");
        assert!(!choice.passed, "{choice:?}");
    }

    #[test]
    fn a_host_cpu_calibrated_elsewhere_breaks_the_smartssd_check() {
        // The published speedup rests on the host filtering at 1.05 GB/s; a host three times
        // faster makes the drive's advantage vanish, and the check must say so.
        let text = include_str!("../../../../sim/profiles/xeon-host.toml");
        let fast = text.replacen("gb_s = 1.05", "gb_s = 3.15", 1);
        assert_ne!(
            fast, text,
            "the profile's csv-filter rate moved; update this test"
        );
        let mut models = Models::builtin(&DRIVES).expect("profiles");
        models.host = quarry_sim::HostCpu::from_profile(
            &quarry_sim::Profile::from_toml("fast-host", &fast).expect("profile"),
        )
        .expect("host");
        let r = build_report(&models, &mut Always(Plan::Csd), Vec::new()).expect("report");
        let c = r
            .checks
            .iter()
            .find(|c| c.name == "smartssd-3x")
            .expect("check");
        assert!(!c.passed, "{c:?}");
        assert!(
            small_report()
                .checks
                .iter()
                .any(|c| c.name == "smartssd-3x" && c.passed)
        );
    }

    #[test]
    fn the_shipped_models_keep_offload_from_winning_at_full_selectivity() {
        let r = small_report();
        let c = r
            .checks
            .iter()
            .find(|c| c.name == "offload-loses-at-100pct")
            .expect("check");
        assert!(c.passed, "{c:?}");
    }
}
