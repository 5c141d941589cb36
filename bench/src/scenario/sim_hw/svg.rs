// SPDX-License-Identifier: Apache-2.0
//! The chart (bench/reports/sim_hw.svg), written by hand from the points: one panel per
//! kernel (row) and drive (column) for objects of [`CHART_SIZE`]; x is the selectivity (log),
//! y each plan's time (log); a ring marks the plan the chooser picked.

use std::fmt::Write as _;

use super::grid::{DRIVES, KERNELS, Plan};
use super::report::SimHwReport;
use super::sweep::Point;
use super::table::short_time;

/// The object size the chart shows (1 GiB).
pub const CHART_SIZE: u64 = 1 << 30;

const PANEL_W: f64 = 300.0;
const PANEL_H: f64 = 210.0;
const MARGIN_L: f64 = 70.0;
const MARGIN_T: f64 = 80.0;
const GAP_X: f64 = 40.0;
const GAP_Y: f64 = 70.0;

fn color(plan: Plan) -> &'static str {
    match plan {
        Plan::Host => "#555555",
        Plan::Gpu => "#2a9d55",
        Plan::Fpga => "#d2691e",
        Plan::Csd => "#1f5fbf",
    }
}

/// The chart as SVG text.
pub fn render(report: &SimHwReport) -> String {
    let width = MARGIN_L + DRIVES.len() as f64 * (PANEL_W + GAP_X) + 20.0;
    let height = MARGIN_T + KERNELS.len() as f64 * (PANEL_H + GAP_Y) + 10.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{MARGIN_L}" y="24" font-size="16">Simulated scan of a 1 GiB object stored on a computational SSD: time per plan (virtual, quarry-sim)</text>"#
    );
    for (i, plan) in Plan::ALL.iter().enumerate() {
        let x = MARGIN_L + i as f64 * 150.0;
        let _ = writeln!(
            s,
            r#"<line x1="{x}" y1="46" x2="{x2}" y2="46" stroke="{c}" stroke-width="3"/><text x="{tx}" y="50">{name}</text>"#,
            x2 = x + 24.0,
            c = color(*plan),
            tx = x + 30.0,
            name = plan_label(*plan, report),
        );
    }
    let _ = writeln!(
        s,
        r#"<circle cx="{x}" cy="46" r="6" fill="none" stroke="black" stroke-width="1.5"/><text x="{tx}" y="50">chosen by the scheduler</text>"#,
        x = MARGIN_L + 600.0 + 12.0,
        tx = MARGIN_L + 600.0 + 24.0,
    );
    for (row, kernel) in KERNELS.iter().enumerate() {
        let points: Vec<&Point> = report
            .points
            .iter()
            .filter(|p| p.kernel == *kernel && p.input_bytes == CHART_SIZE)
            .collect();
        let (lo, hi) = decades(&points);
        for (col, drive) in DRIVES.iter().enumerate() {
            let x0 = MARGIN_L + col as f64 * (PANEL_W + GAP_X);
            let y0 = MARGIN_T + row as f64 * (PANEL_H + GAP_Y);
            let panel: Vec<&Point> = points
                .iter()
                .copied()
                .filter(|p| p.drive == *drive)
                .collect();
            draw_panel(
                &mut s,
                &format!("{kernel} on {drive}"),
                x0,
                y0,
                lo,
                hi,
                &panel,
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

fn plan_label(plan: Plan, report: &SimHwReport) -> String {
    match plan {
        Plan::Host => format!("host ({})", report.models.host),
        Plan::Gpu => format!("gpu ({})", report.models.gpu),
        Plan::Fpga => format!("fpga ({})", report.models.fpga),
        Plan::Csd => "csd pushdown".to_owned(),
    }
}

/// Whole decades (log10 of seconds) covering every plan's time in `points`.
fn decades(points: &[&Point]) -> (i32, i32) {
    let secs = points
        .iter()
        .flat_map(|p| p.plans.iter().map(|t| t.total_ns as f64 / 1e9));
    let (min, max) = secs.fold((f64::INFINITY, 0.0_f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !min.is_finite() || max <= 0.0 {
        return (-3, 0);
    }
    #[expect(
        clippy::cast_possible_truncation,
        reason = "log10 of positive finite seconds is a small integer after floor/ceil"
    )]
    let (lo, hi) = (min.log10().floor() as i32, max.log10().ceil() as i32);
    (lo, hi.max(lo + 1))
}

fn draw_panel(s: &mut String, title: &str, x0: f64, y0: f64, lo: i32, hi: i32, points: &[&Point]) {
    let xs = |sel: f64| x0 + (sel.log10() + 3.0) / 3.0 * PANEL_W;
    let ys = |ns: u64| {
        let v = (ns as f64 / 1e9).log10();
        y0 + PANEL_H - (v - f64::from(lo)) / f64::from(hi - lo) * PANEL_H
    };
    let _ = writeln!(
        s,
        r##"<g><text x="{x0}" y="{ty}" font-size="13" font-weight="bold">{title}</text><rect x="{x0}" y="{y0}" width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="#999"/>"##,
        ty = y0 - 8.0
    );
    for d in lo..=hi {
        let y = y0 + PANEL_H - f64::from(d - lo) / f64::from(hi - lo) * PANEL_H;
        let ns = u32::try_from(d + 9).map_or(1, |e| 10u64.saturating_pow(e));
        let label = short_time(ns);
        let _ = writeln!(
            s,
            r##"<line x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}" stroke="#eee"/><text x="{tx}" y="{ly:.1}" text-anchor="end" font-size="10">{label}</text>"##,
            x1 = x0 + PANEL_W,
            tx = x0 - 4.0,
            ly = y + 3.0
        );
    }
    for (sel, label) in [(0.001, "0.1%"), (0.01, "1%"), (0.1, "10%"), (1.0, "100%")] {
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{y}" text-anchor="middle" font-size="10">{label}</text>"#,
            x = xs(sel),
            y = y0 + PANEL_H + 14.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{x:.1}" y="{y}" text-anchor="middle" font-size="10">selectivity (share of the object kept)</text>"#,
        x = x0 + PANEL_W / 2.0,
        y = y0 + PANEL_H + 28.0
    );
    for plan in Plan::ALL {
        let path: Vec<String> = points
            .iter()
            .map(|p| format!("{:.1},{:.1}", xs(p.selectivity), ys(p.time_ns(plan))))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
            path.join(" "),
            color(plan)
        );
    }
    for p in points {
        let _ = writeln!(
            s,
            r#"<circle cx="{:.1}" cy="{:.1}" r="6" fill="none" stroke="black" stroke-width="1.5"/>"#,
            xs(p.selectivity),
            ys(p.time_ns(p.chosen))
        );
    }
    s.push_str("</g>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decades_cover_the_times() {
        let p = crate::scenario::sim_hw::tests::small_report();
        let points: Vec<&Point> = p.points.iter().collect();
        let (lo, hi) = decades(&points);
        assert!(lo < hi);
        for q in &points {
            for t in &q.plans {
                let v = (t.total_ns as f64 / 1e9).log10();
                assert!(
                    v >= f64::from(lo) && v <= f64::from(hi),
                    "{v} not in {lo}..{hi}"
                );
            }
        }
    }

    #[test]
    fn the_chart_is_one_svg_with_a_panel_per_kernel_and_drive() {
        let svg = render(&crate::scenario::sim_hw::tests::small_report());
        assert!(svg.starts_with("<svg "));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<g>").count(), KERNELS.len() * DRIVES.len());
        assert_eq!(
            svg.matches("<polyline").count(),
            KERNELS.len() * DRIVES.len() * Plan::ALL.len()
        );
    }
}
