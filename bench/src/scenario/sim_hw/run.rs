// SPDX-License-Identifier: Apache-2.0
//! The scenario end to end: two independent runs (fresh models, a fresh scheduler and fresh
//! backends each), compared byte for byte, and the outputs written.

use std::path::Path;

use anyhow::{Context as _, Result};

use super::choice::SchedulerChooser;
use super::grid::DRIVES;
use super::models::Models;
use super::report::SimHwReport;
use super::sample::run_samples;
use super::{SimHwOptions, build_report, finish, svg};

/// Runs the scenario twice and returns the first run's report with every check.
pub async fn run_sim_hw(options: &SimHwOptions) -> Result<SimHwReport> {
    let first = once(options).await?;
    let second = once(options).await?;
    finish(first, &second)
}

async fn once(options: &SimHwOptions) -> Result<SimHwReport> {
    let models = Models::builtin(&DRIVES)?;
    let mut chooser = SchedulerChooser::new(models.clone())?;
    let samples = run_samples(options.sample_size).await?;
    build_report(&models, &mut chooser, samples)
}

/// Writes the chart of `report` to `path` (creating its folder).
pub fn write_svg(path: &Path, report: &SimHwReport) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("failed to create {}", parent.display()))?;
    }
    std::fs::write(path, svg::render(report))
        .with_context(|| format!("failed to write {}", path.display()))
}
