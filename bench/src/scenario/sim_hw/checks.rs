// SPDX-License-Identifier: Apache-2.0
//! The model's invariants, checked over the sweep's points. Each check carries its exact
//! rule, the figures it saw and the points that broke it; the scenario fails when one fails.

use quarry_sim::Stage;
use serde::Serialize;

use super::grid::Plan;
use super::report::SampleRun;
use super::sweep::{Point, round4};

/// The chosen plan may take at most this much longer than the best...
pub const CHOICE_TOLERANCE: f64 = 0.10;
/// ...in at least this share of the points.
pub const CHOICE_SHARE: f64 = 0.95;

/// Host scan over pushdown on a SmartSSD, Lee et al. 2020 (see [`smartssd_speedup`]).
pub const SMARTSSD_PUBLISHED: f64 = 3.04;
/// Allowed relative distance from [`SMARTSSD_PUBLISHED`].
pub const SMARTSSD_TOLERANCE: f64 = 0.20;
/// The point that stands for the letter's scan: (kernel, drive, object size, selectivity).
pub const SMARTSSD_POINT: (&str, &str, u64, f64) = ("csv-filter", "smartssd", 16 << 30, 0.01);

/// At 100 % selectivity the pushdown may beat a plan that moves every byte by at most this
/// share: pipeline fill and drain differ between plans (one chunk of each non-bottleneck
/// stage), nothing else may.
pub const FULL_SELECTIVITY_NOISE: f64 = 0.01;

/// Offending points listed per check, at most.
const MAX_LISTED: usize = 12;

/// One invariant's verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    /// Short stable name.
    pub name: &'static str,
    /// The exact rule.
    pub rule: String,
    /// Whether it held.
    pub passed: bool,
    /// The figures behind the verdict.
    pub detail: String,
    /// Points that broke it (at most a dozen, then a count).
    pub violations: Vec<String>,
}

impl Check {
    fn new(name: &'static str, rule: String, violations: Vec<String>, detail: String) -> Self {
        let passed = violations.is_empty();
        Self {
            name,
            rule,
            passed,
            detail,
            violations: listed(violations),
        }
    }
}

fn listed(mut all: Vec<String>) -> Vec<String> {
    if all.len() > MAX_LISTED {
        let more = all.len() - MAX_LISTED;
        all.truncate(MAX_LISTED);
        all.push(format!("... and {more} more"));
    }
    all
}

fn label(p: &Point) -> String {
    format!(
        "{} on {}, {} bytes, {}% kept",
        p.kernel,
        p.drive,
        p.input_bytes,
        p.selectivity * 100.0
    )
}

/// Two runs of the whole scenario serialize to the same bytes.
pub fn determinism(first: &str, second: &str) -> Check {
    let rule = "two runs of the sweep in one process serialize to identical JSON".to_owned();
    let differs_at = first
        .bytes()
        .zip(second.bytes())
        .position(|(a, b)| a != b)
        .or_else(|| (first.len() != second.len()).then(|| first.len().min(second.len())));
    match differs_at {
        None => Check::new(
            "deterministic",
            rule,
            Vec::new(),
            format!("{} bytes, identical", first.len()),
        ),
        Some(at) => {
            let around = |s: &str| {
                let start = s.floor_char_boundary(at.saturating_sub(40));
                let end = s.ceil_char_boundary((at + 40).min(s.len()));
                s[start..end].to_owned()
            };
            Check::new(
                "deterministic",
                rule,
                vec![format!(
                    "first difference at byte {at}: `{}` vs `{}`",
                    around(first),
                    around(second)
                )],
                format!("{} vs {} bytes", first.len(), second.len()),
            )
        }
    }
}

/// The chooser's plan is within [`CHOICE_TOLERANCE`] of the best in at least
/// [`CHOICE_SHARE`] of the points.
pub fn choice(points: &[Point]) -> Check {
    let rule = format!(
        "the chosen plan's time is at most {:.0}% over the best plan's in at least {:.0}% of \
         the points",
        CHOICE_TOLERANCE * 100.0,
        CHOICE_SHARE * 100.0
    );
    let misses: Vec<&Point> = points
        .iter()
        .filter(|p| p.chosen_over_best > 1.0 + CHOICE_TOLERANCE)
        .collect();
    let within = points.len() - misses.len();
    let share = within as f64 / points.len().max(1) as f64;
    let exact = points.iter().filter(|p| p.chosen == p.best).count();
    let worst = points
        .iter()
        .map(|p| p.chosen_over_best)
        .fold(1.0_f64, f64::max);
    let detail = format!(
        "{within} of {} points within {:.0}% ({:.1}%); best plan chosen exactly in {exact}; \
         worst choice {worst:.2}x the best",
        points.len(),
        CHOICE_TOLERANCE * 100.0,
        share * 100.0
    );
    let violations = if !points.is_empty() && share >= CHOICE_SHARE {
        Vec::new()
    } else if points.is_empty() {
        vec!["no points".to_owned()]
    } else {
        misses
            .iter()
            .map(|p| {
                format!(
                    "{}: chose {} at {:.2}x the best ({})",
                    label(p),
                    p.chosen,
                    p.chosen_over_best,
                    p.best
                )
            })
            .collect()
    };
    Check::new("scheduler-choice", rule, violations, detail)
}

/// The SmartSSD profile reproduces the published end-to-end scan speedup: Lee et al.,
/// "SmartSSD: FPGA Accelerated Near-Storage Data Analytics on SSD", IEEE Computer
/// Architecture Letters, 2020, report Spark SQL scans of Parquet data 3.04x faster on a
/// SmartSSD than the CPU-based approach. Here: the host plan's time over the CSD plan's at
/// [`SMARTSSD_POINT`] lies within [`SMARTSSD_TOLERANCE`] of 3.04.
pub fn smartssd_speedup(points: &[Point]) -> Check {
    let (kernel, drive, size, selectivity) = SMARTSSD_POINT;
    let rule = format!(
        "host / csd time for {kernel} over {} GiB on {drive} keeping {}% is {SMARTSSD_PUBLISHED} \
         +/- {:.0}% (Lee et al., IEEE CAL 2020: 3.04x end to end for Spark SQL scans on a \
         SmartSSD)",
        size >> 30,
        selectivity * 100.0,
        SMARTSSD_TOLERANCE * 100.0
    );
    let Some(p) = points.iter().find(|p| {
        p.kernel == kernel
            && p.drive == drive
            && p.input_bytes == size
            && p.selectivity == selectivity
    }) else {
        return Check::new(
            "smartssd-3x",
            rule,
            vec!["the point is not in the sweep".to_owned()],
            String::new(),
        );
    };
    let speedup = p.ratio(Plan::Host, Plan::Csd);
    let low = SMARTSSD_PUBLISHED * (1.0 - SMARTSSD_TOLERANCE);
    let high = SMARTSSD_PUBLISHED * (1.0 + SMARTSSD_TOLERANCE);
    let detail = format!(
        "speedup {:.3}x (allowed {low:.3} to {high:.3}); host {:.3} s, csd {:.3} s",
        speedup,
        p.time_ns(Plan::Host) as f64 / 1e9,
        p.time_ns(Plan::Csd) as f64 / 1e9
    );
    let violations = if (low..=high).contains(&speedup) {
        Vec::new()
    } else {
        vec![format!("{}: speedup {:.3}x", label(p), round4(speedup))]
    };
    Check::new("smartssd-3x", rule, violations, detail)
}

/// Offload loses where it should: at 100 % selectivity every byte crosses the drive's link
/// whichever plan runs, so pushing the scan down saves no link time. Exactly, at every point
/// with selectivity 1:
/// (a) t(csd) >= (1 - noise) x min(t(host), t(gpu), t(fpga)): the pushdown is never faster
///     than the fastest plan that moves the whole object off the drive;
/// (b) where the host plan is bound by data movement (flash or link, not host compute),
///     t(csd) >= (1 - noise) x t(host): the pushdown is not faster than the host plan.
///
/// Where the host plan is bound by its CPU (csv-filter), the drive may beat the host on
/// compute; (a) still holds because a card behind the host matches it.
pub fn offload_loses_at_full_selectivity(points: &[Point]) -> Check {
    let rule = format!(
        "at 100% selectivity: (a) csd >= {keep} x min(host, gpu, fpga) everywhere; (b) csd >= \
         {keep} x host where the host plan is bound by flash or link",
        keep = 1.0 - FULL_SELECTIVITY_NOISE
    );
    let keep = 1.0 - FULL_SELECTIVITY_NOISE;
    let full: Vec<&Point> = points.iter().filter(|p| p.selectivity >= 1.0).collect();
    let mut violations = Vec::new();
    let mut data_bound = 0;
    let mut closest = f64::INFINITY;
    for p in &full {
        let csd = p.time_ns(Plan::Csd) as f64;
        let moved = [Plan::Host, Plan::Gpu, Plan::Fpga]
            .into_iter()
            .map(|plan| p.time_ns(plan))
            .min()
            .unwrap_or(u64::MAX) as f64;
        closest = closest.min(csd / moved);
        if csd < keep * moved {
            violations.push(format!(
                "(a) {}: csd {:.3}x the fastest plan moving every byte",
                label(p),
                csd / moved
            ));
        }
        let host = p.plans.iter().find(|t| t.plan == Plan::Host);
        if host.is_some_and(|h| h.bottleneck != Some(Stage::HostCompute)) {
            data_bound += 1;
            let ratio = p.ratio(Plan::Csd, Plan::Host);
            if ratio < keep {
                violations.push(format!("(b) {}: csd {ratio:.3}x the host plan", label(p)));
            }
        }
    }
    if full.is_empty() {
        violations.push("no point at 100% selectivity".to_owned());
    }
    let detail = format!(
        "{} points at 100%; {data_bound} with the host plan bound by flash or link; lowest csd / \
         min(host, gpu, fpga) {closest:.3}",
        full.len()
    );
    Check::new("offload-loses-at-100pct", rule, violations, detail)
}

/// The sample runs produced real bytes: every run's output equals the native CPU backend's
/// and is not empty (every selectivity keeps something).
pub fn samples_real(samples: &[SampleRun]) -> Check {
    let rule = "every sample's output on the simulated drive equals the native CPU backend's, \
                byte for byte, and is not empty"
        .to_owned();
    let mut violations: Vec<String> = samples
        .iter()
        .filter(|s| !s.same_as_cpu || s.output_bytes == 0)
        .map(|s| {
            format!(
                "{} on {} at {}%: {} bytes out, {}",
                s.kernel,
                s.drive,
                s.selectivity * 100.0,
                s.output_bytes,
                if s.same_as_cpu {
                    "same as the CPU's"
                } else {
                    "differs from the CPU's"
                }
            )
        })
        .collect();
    if samples.is_empty() {
        violations.push("no sample ran".to_owned());
    }
    let bytes: u64 = samples.iter().map(|s| s.input_bytes).sum();
    let detail = format!(
        "{} runs over {} bytes in all, {} equal to the CPU's",
        samples.len(),
        bytes,
        samples.iter().filter(|s| s.same_as_cpu).count()
    );
    Check::new("samples-real", rule, violations, detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::sim_hw::sweep::PlanTime;

    fn point(kernel: &str, selectivity: f64, times: [u64; 4], host_bound: Stage) -> Point {
        let plans: Vec<PlanTime> = Plan::ALL
            .iter()
            .zip(times)
            .map(|(&plan, total_ns)| PlanTime {
                plan,
                total_ns,
                bottleneck: Some(if plan == Plan::Host {
                    host_bound
                } else {
                    Stage::Flash
                }),
            })
            .collect();
        let best = plans
            .iter()
            .min_by_key(|t| t.total_ns)
            .map(|t| t.plan)
            .expect("plans");
        Point {
            kernel: kernel.to_owned(),
            drive: "smartssd".to_owned(),
            input_bytes: 16 << 30,
            selectivity,
            output_bytes: 0,
            plans,
            best,
            chosen: best,
            chosen_over_best: 1.0,
        }
    }

    #[test]
    fn samples_must_match_the_cpu_and_keep_something() {
        let run = SampleRun {
            kernel: "grep".to_owned(),
            drive: "smartssd".to_owned(),
            selectivity: 0.01,
            input_bytes: 1 << 20,
            output_bytes: 10_000,
            kept: 0.0095,
            same_as_cpu: true,
            device_time_ns: Some(1),
        };
        assert!(samples_real(std::slice::from_ref(&run)).passed);
        let differs = SampleRun {
            same_as_cpu: false,
            ..run.clone()
        };
        assert!(!samples_real(&[run.clone(), differs]).passed);
        let empty = SampleRun {
            output_bytes: 0,
            ..run
        };
        assert!(!samples_real(&[empty]).passed);
        assert!(!samples_real(&[]).passed);
    }

    #[test]
    fn determinism_names_the_first_difference() {
        assert!(determinism("{\"a\":1}", "{\"a\":1}").passed);
        let c = determinism("{\"a\":1}", "{\"a\":2}");
        assert!(!c.passed);
        assert!(c.violations[0].contains("byte 5"), "{c:?}");
        assert!(!determinism("abc", "abcd").passed);
    }

    #[test]
    fn choice_allows_five_percent_of_misses_and_no_more() {
        let mut points: Vec<Point> = (0..100)
            .map(|_| point("grep", 0.01, [10, 20, 20, 5], Stage::Flash))
            .collect();
        for p in points.iter_mut().take(5) {
            p.chosen = Plan::Host;
            p.chosen_over_best = 2.0;
        }
        assert!(choice(&points).passed, "{:?}", choice(&points));
        points[5].chosen = Plan::Host;
        points[5].chosen_over_best = 2.0;
        let c = choice(&points);
        assert!(!c.passed);
        assert_eq!(c.violations.len(), 6, "{c:?}");
        // Within 10 % is not a miss.
        points
            .iter_mut()
            .take(6)
            .for_each(|p| p.chosen_over_best = 1.1);
        assert!(choice(&points).passed);
        assert!(!choice(&[]).passed);
    }

    #[test]
    fn smartssd_check_accepts_the_band_only() {
        let ok = point(
            "csv-filter",
            0.01,
            [3_040, 1_000, 1_000, 1_000],
            Stage::HostCompute,
        );
        assert!(smartssd_speedup(&[ok]).passed);
        let low = point(
            "csv-filter",
            0.01,
            [2_400, 1_000, 1_000, 1_000],
            Stage::HostCompute,
        );
        assert!(!smartssd_speedup(&[low]).passed);
        let high = point(
            "csv-filter",
            0.01,
            [3_700, 1_000, 1_000, 1_000],
            Stage::HostCompute,
        );
        assert!(!smartssd_speedup(&[high]).passed);
        let elsewhere = point(
            "grep",
            0.01,
            [3_040, 1_000, 1_000, 1_000],
            Stage::HostCompute,
        );
        assert!(!smartssd_speedup(&[elsewhere]).passed);
    }

    #[test]
    fn a_pushdown_faster_than_moving_every_byte_fails() {
        // Sound: the drive is no faster than the link-bound plans.
        let sound = point("grep", 1.0, [1_000, 1_000, 1_000, 1_004], Stage::LinkToHost);
        assert!(offload_loses_at_full_selectivity(std::slice::from_ref(&sound)).passed);
        // A model that forgot to ship the result: the pushdown looks far faster.
        let broken = point("grep", 1.0, [1_000, 1_000, 1_000, 500], Stage::LinkToHost);
        let c = offload_loses_at_full_selectivity(&[sound, broken]);
        assert!(!c.passed);
        assert_eq!(c.violations.len(), 2, "(a) and (b): {c:?}");
        // A CPU-bound host may lose to the drive, as long as a card keeps up: (a) only.
        let cpu_bound = point(
            "csv-filter",
            1.0,
            [3_000, 1_000, 1_000, 1_000],
            Stage::HostCompute,
        );
        assert!(offload_loses_at_full_selectivity(&[cpu_bound]).passed);
        let cards_slow = point(
            "csv-filter",
            1.0,
            [3_000, 2_000, 2_000, 1_000],
            Stage::HostCompute,
        );
        assert!(!offload_loses_at_full_selectivity(&[cards_slow]).passed);
        // Points below 100 % are not judged; none at 100 % is a failure.
        let selective = point("grep", 0.5, [1_000, 1_000, 1_000, 10], Stage::LinkToHost);
        assert!(!offload_loses_at_full_selectivity(&[selective]).passed);
    }
}
