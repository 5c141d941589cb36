// SPDX-License-Identifier: Apache-2.0
//! `scenario`: runs an end-to-end scenario, writes its JSON report and prints a short table.
//!
//! ```text
//! cargo run --release -p quarry-bench --bin scenario -- s3 --ceph-env /tmp/ceph-nodelay/env \
//!     --ceph-default-env /tmp/ceph-default/env --out bench/reports/s3-foundation.json
//! cargo run --release -p quarry-bench --bin scenario -- functions \
//!     --out bench/reports/functions.json
//! cargo run --release -p quarry-bench --bin scenario -- kernels --size 256MiB \
//!     --out bench/reports/kernels.json
//! cargo run --release -p quarry-bench --bin scenario -- io-path --out bench/reports/io_path.json
//! cargo run --release -p quarry-bench --bin scenario -- scheduler \
//!     --out bench/reports/scheduler.json
//! cargo run --release -p quarry-bench --bin scenario -- sim-hw \
//!     --out bench/reports/sim_hw.json --svg bench/reports/sim_hw.svg
//! ```
//!
//! (How to start the two Ceph peers, and what `functions` needs built: the crate docs.)
//!
//! Exits non-zero when a target (or a part) failed; ratios that miss their targets are
//! reported, not treated as errors.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Parser as _;
use quarry_bench::scenario::{self, Cli, functions, io_path, kernels, scheduler, sim_hw, table};
use serde::Serialize;

#[tokio::main]
async fn main() -> Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    let (out, failed) = match Cli::parse() {
        Cli::S3(options) => {
            let report = scenario::run_s3(&options).await?;
            write_report(&options.out, &report)?;
            table::write_table(&report, &mut stdout)?;
            (options.out, report.summary.failed_targets)
        }
        Cli::Functions(options) => {
            let report = scenario::run_functions(&options).await?;
            write_report(&options.out, &report)?;
            functions::write_table(&report, &mut stdout)?;
            (options.out, report.summary.failed_targets)
        }
        Cli::Kernels(options) => {
            let report = scenario::run_kernels(&options).await?;
            write_report(&options.out, &report)?;
            kernels::write_table(&report, &mut stdout)?;
            (options.out, report.summary.failed_targets)
        }
        Cli::IoPath(options) => {
            let report = io_path::run_io_path(&options).await?;
            write_report(&options.out, &report)?;
            io_path::write_table(&report, &mut stdout)?;
            (options.out, report.summary.failed_targets)
        }
        Cli::Scheduler(options) => {
            let report = scheduler::run_scheduler(&options).await?;
            write_report(&options.out, &report)?;
            scheduler::write_table(&report, &mut stdout)?;
            // Misses are reported, not treated as errors.
            (options.out, 0)
        }
        Cli::SimHw(options) => {
            let report = sim_hw::run_sim_hw(&options).await?;
            write_report(&options.out, &report)?;
            sim_hw::write_svg(&options.svg, &report)?;
            sim_hw::write_table(&report, &mut stdout)?;
            writeln!(stdout, "chart: {}", options.svg.display())?;
            // A broken invariant fails the run.
            (options.out, report.summary.failed_checks.len())
        }
    };
    writeln!(stdout, "report: {}", out.display())?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn write_report(out: &Path, report: &impl Serialize) -> Result<()> {
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("failed to create {}", parent.display()))?;
    }
    let json = serde_json::to_string_pretty(report).context("failed to serialize the report")?;
    std::fs::write(out, json + "\n").with_context(|| format!("failed to write {}", out.display()))
}
