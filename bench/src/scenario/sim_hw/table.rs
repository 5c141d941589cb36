// SPDX-License-Identifier: Apache-2.0
//! The printed table: per kernel and drive, a grid of object size x selectivity whose cells
//! name the best plan and its time, and mark where the chooser picked another; then the
//! pushdown's speedup over the host plan, and the checks.

use std::io::{self, Write};

use super::checks::CHOICE_TOLERANCE;
use super::grid::{DRIVES, KERNELS, Plan, SELECTIVITY_PER_MILLE, SIZES};
use super::report::SimHwReport;
use super::sweep::Point;
use crate::scenario::options::size_label;

const CELL: usize = 15;

/// Writes the tables and the checks.
pub fn write_table(report: &SimHwReport, out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "sim-hw: {} points, virtual time from quarry-sim models; plans: host (the object read \
         over the drive's link, scanned on {}), gpu ({}), fpga ({}), csd (pushdown)",
        report.points.len(),
        report.models.host,
        report.models.gpu,
        report.models.fpga
    )?;
    writeln!(
        out,
        "cells: best plan and its time; `*` the chooser picked another plan within {:.0}%, \
         `!` more than {:.0}% slower",
        CHOICE_TOLERANCE * 100.0,
        CHOICE_TOLERANCE * 100.0
    )?;
    for kernel in KERNELS {
        for drive in DRIVES {
            write_header(out, &format!("{kernel} on {drive}"))?;
            for size in SIZES {
                write!(out, "{:<32}", format!("  {}", size_label(size)))?;
                for p in row(report, kernel, drive, size) {
                    write!(out, "{:>CELL$}", best_cell(p))?;
                }
                writeln!(out)?;
            }
        }
    }
    writeln!(out)?;
    writeln!(out, "csd speedup over the host plan (host time / csd time)")?;
    for kernel in KERNELS {
        for size in [SIZES[3], SIZES[4]] {
            write_header(out, &format!("{kernel}, {}", size_label(size)))?;
            for drive in DRIVES {
                write!(out, "{:<32}", format!("  {drive}"))?;
                for p in row(report, kernel, drive, size) {
                    write!(
                        out,
                        "{:>CELL$}",
                        format!("{:.2}x", p.ratio(Plan::Host, Plan::Csd))
                    )?;
                }
                writeln!(out)?;
            }
        }
    }
    writeln!(out)?;
    writeln!(out, "chooser: {}", report.chooser)?;
    for c in &report.checks {
        let verdict = if c.passed { "PASS" } else { "FAIL" };
        writeln!(out, "{verdict} {}: {}", c.name, c.detail)?;
        writeln!(out, "     rule: {}", c.rule)?;
        for v in &c.violations {
            writeln!(out, "     - {v}")?;
        }
    }
    Ok(())
}

fn write_header(out: &mut impl Write, title: &str) -> io::Result<()> {
    write!(out, "{title:<32}")?;
    for per_mille in SELECTIVITY_PER_MILLE {
        write!(out, "{:>CELL$}", format!("{}%", per_mille as f64 / 10.0))?;
    }
    writeln!(out)
}

fn row<'a>(
    report: &'a SimHwReport,
    kernel: &'a str,
    drive: &'a str,
    size: u64,
) -> impl Iterator<Item = &'a Point> {
    report
        .points
        .iter()
        .filter(move |p| p.kernel == kernel && p.drive == drive && p.input_bytes == size)
}

fn best_cell(p: &Point) -> String {
    let mark = if p.chosen == p.best {
        ""
    } else if p.chosen_over_best > 1.0 + CHOICE_TOLERANCE {
        "!"
    } else {
        "*"
    };
    format!("{} {}{mark}", p.best, short_time(p.time_ns(p.best)))
}

/// `1.23ms`, `45.6s`: three significant digits.
pub fn short_time(ns: u64) -> String {
    let (value, unit) = match ns {
        0..1_000 => (ns as f64, "ns"),
        1_000..1_000_000 => (ns as f64 / 1e3, "us"),
        1_000_000..1_000_000_000 => (ns as f64 / 1e6, "ms"),
        _ => (ns as f64 / 1e9, "s"),
    };
    let digits = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.digits$}{unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_keep_three_significant_digits() {
        assert_eq!(short_time(999), "999ns");
        assert_eq!(short_time(1_234), "1.23us");
        assert_eq!(short_time(45_600_000), "45.6ms");
        assert_eq!(short_time(123_400_000_000), "123s");
    }
}
