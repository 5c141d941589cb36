// SPDX-License-Identifier: Apache-2.0
//! `scenario`: runs an end-to-end scenario, writes its JSON report and prints a short table.
//!
//! ```text
//! cargo run --release -p quarry-bench --bin scenario -- s3 --ceph-env /tmp/ceph-nodelay/env \
//!     --ceph-default-env /tmp/ceph-default/env --out bench/reports/s3-foundation.json
//! ```
//!
//! (How to start the two Ceph peers: the crate docs.)
//!
//! Exits non-zero when a target failed; ratios that miss their targets are reported, not
//! treated as errors.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Parser as _;
use quarry_bench::scenario::{self, Cli, table};

#[tokio::main]
async fn main() -> Result<ExitCode> {
    let Cli::S3(options) = Cli::parse();
    let report = scenario::run_s3(&options).await?;

    if let Some(parent) = options.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("failed to create {}", parent.display()))?;
    }
    let json = serde_json::to_string_pretty(&report).context("failed to serialize the report")?;
    std::fs::write(&options.out, json + "\n")
        .with_context(|| format!("failed to write {}", options.out.display()))?;

    let mut stdout = std::io::stdout().lock();
    table::write_table(&report, &mut stdout)?;
    writeln!(stdout, "report: {}", options.out.display())?;
    Ok(if report.summary.failed_targets == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
