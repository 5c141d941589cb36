// SPDX-License-Identifier: Apache-2.0
//! The sweep: every kernel x drive x object size x selectivity, each plan's modelled time,
//! the best plan, and the plan a [`Chooser`] (the scheduler) picks for it.

use anyhow::{Context as _, Result};
use quarry_sim::Stage;
use serde::Serialize;

use super::grid::{KERNELS, Plan, SELECTIVITY_PER_MILLE, SIZES, output_bytes};
use super::models::Models;

/// One scan to place: an object on a drive, a kernel and how much of the object it keeps.
#[derive(Clone, Copy, Debug)]
pub struct ScanJob<'a> {
    /// The drive's profile name (the object lives on it).
    pub drive: &'a str,
    /// The kernel.
    pub kernel: &'a str,
    /// Object size.
    pub input_bytes: u64,
    /// Result size.
    pub output_bytes: u64,
}

/// Picks the plan for a scan, as the node would.
pub trait Chooser {
    /// What picks (for the report).
    fn describe(&self) -> String;
    /// The plan chosen for `job`.
    fn choose(&mut self, job: &ScanJob<'_>) -> Result<Plan>;
}

/// One plan's modelled time at a point.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlanTime {
    /// The plan.
    pub plan: Plan,
    /// End-to-end time, nanoseconds of virtual time.
    pub total_ns: u64,
    /// The stage that bounds it.
    pub bottleneck: Option<Stage>,
}

/// One point of the sweep.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Point {
    /// The kernel.
    pub kernel: String,
    /// The drive the object lives on.
    pub drive: String,
    /// Object size.
    pub input_bytes: u64,
    /// Share of the input kept (0.001 to 1).
    pub selectivity: f64,
    /// Result size.
    pub output_bytes: u64,
    /// Every plan's time, in [`Plan::ALL`] order.
    pub plans: Vec<PlanTime>,
    /// The fastest plan (the first in [`Plan::ALL`] order on a tie).
    pub best: Plan,
    /// The plan the chooser picked.
    pub chosen: Plan,
    /// The chosen plan's time over the best's (1 when the choice is the best).
    pub chosen_over_best: f64,
}

impl Point {
    /// The modelled time of `plan` in nanoseconds.
    pub fn time_ns(&self, plan: Plan) -> u64 {
        self.plans
            .iter()
            .find(|p| p.plan == plan)
            .map_or(u64::MAX, |p| p.total_ns)
    }

    /// `numerator`'s time over `denominator`'s.
    pub fn ratio(&self, numerator: Plan, denominator: Plan) -> f64 {
        self.time_ns(numerator) as f64 / self.time_ns(denominator).max(1) as f64
    }
}

/// Runs the whole sweep over `models`' drives, asking `chooser` at every point.
pub fn sweep(models: &Models, chooser: &mut dyn Chooser) -> Result<Vec<Point>> {
    let mut points = Vec::new();
    for kernel in KERNELS {
        for drive in &models.drives {
            for input in SIZES {
                for per_mille in SELECTIVITY_PER_MILLE {
                    let output = output_bytes(input, per_mille);
                    let plans = Plan::ALL
                        .iter()
                        .map(|&plan| {
                            let t = models.time(drive, plan, kernel, input, output)?;
                            Ok(PlanTime {
                                plan,
                                total_ns: t.total.as_nanos(),
                                bottleneck: t.bottleneck,
                            })
                        })
                        .collect::<Result<Vec<_>>>()
                        .with_context(|| format!("{kernel} on {}", drive.name()))?;
                    let job = ScanJob {
                        drive: drive.name(),
                        kernel,
                        input_bytes: input,
                        output_bytes: output,
                    };
                    let chosen = chooser.choose(&job).with_context(|| {
                        format!(
                            "choosing a plan for {kernel} over {input} bytes on {}",
                            drive.name()
                        )
                    })?;
                    points.push(point(job, per_mille, plans, chosen));
                }
            }
        }
    }
    Ok(points)
}

fn point(job: ScanJob<'_>, per_mille: u64, plans: Vec<PlanTime>, chosen: Plan) -> Point {
    let best = plans
        .iter()
        .min_by_key(|p| p.total_ns)
        .map_or(Plan::Host, |p| p.plan);
    let mut p = Point {
        kernel: job.kernel.to_owned(),
        drive: job.drive.to_owned(),
        input_bytes: job.input_bytes,
        selectivity: per_mille as f64 / 1000.0,
        output_bytes: job.output_bytes,
        plans,
        best,
        chosen,
        chosen_over_best: 1.0,
    };
    p.chosen_over_best = round4(p.ratio(chosen, best));
    p
}

/// `x` to four decimals (reports stay short and compare exactly).
pub fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::scenario::sim_hw::grid::DRIVES;

    /// Always picks one plan.
    pub(crate) struct Always(pub Plan);

    impl Chooser for Always {
        fn describe(&self) -> String {
            format!("always {}", self.0)
        }
        fn choose(&mut self, _: &ScanJob<'_>) -> Result<Plan> {
            Ok(self.0)
        }
    }

    #[test]
    fn the_sweep_covers_the_whole_grid_with_every_plan() {
        let models = Models::builtin(&DRIVES).expect("profiles");
        let points = sweep(&models, &mut Always(Plan::Csd)).expect("sweep");
        assert_eq!(points.len(), 2 * 4 * 5 * 5);
        for p in &points {
            assert_eq!(p.plans.len(), 4);
            assert!(p.plans.iter().all(|t| t.total_ns > 0), "{p:?}");
            assert!(p.time_ns(p.best) <= p.plans.iter().map(|t| t.total_ns).min().unwrap_or(0));
            assert!(p.chosen_over_best >= 1.0);
            assert_eq!(p.chosen, Plan::Csd);
        }
        // Output follows the selectivity.
        let full = points
            .iter()
            .find(|p| p.selectivity == 1.0)
            .expect("a 100 % point");
        assert_eq!(full.output_bytes, full.input_bytes);
    }

    #[test]
    fn larger_objects_take_longer_on_every_plan() {
        let models = Models::builtin(&DRIVES).expect("profiles");
        let points = sweep(&models, &mut Always(Plan::Host)).expect("sweep");
        for w in points.windows(SELECTIVITY_PER_MILLE.len() + 1) {
            let (a, b) = (&w[0], &w[SELECTIVITY_PER_MILLE.len()]);
            if a.drive == b.drive && a.kernel == b.kernel && b.input_bytes > a.input_bytes {
                for plan in Plan::ALL {
                    assert!(b.time_ns(plan) > a.time_ns(plan), "{plan}: {a:?} vs {b:?}");
                }
            }
        }
    }
}
