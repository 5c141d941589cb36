// SPDX-License-Identifier: Apache-2.0
//! Real bytes: each kernel at each selectivity over a small sample (1 MiB by default, never
//! the sweep's sizes), run through the simulated drive backend with the object on its
//! namespace and through the native CPU backend. The drive's output must equal the CPU's; the
//! kept share shows the sample matches the sweep's selectivity; the device time is the drive
//! model's for this sample.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use bytes::Bytes;
use quarry_offload::backend::DataLocation;
use quarry_offload::backend::sim::{SimDeviceBackend, SimDeviceConfig};
use quarry_offload::{
    Backend, BackendId, ChunkStream, Effects, Flow, InvocationContext, Job, NativeBackend,
    NativeConfig, OutputSink, Policy, RunReport,
};
use quarry_sim::Profile;

use super::choice::builtin_function;
use super::corpus;
use super::grid::{KERNELS, SELECTIVITY_PER_MILLE};
use super::report::SampleRun;
use super::sweep::round4;

/// The drive the samples run on.
pub const SAMPLE_DRIVE: &str = "smartssd";
/// The sample size.
pub const SAMPLE_BYTES: u64 = 1 << 20;
/// Pieces the sample is fed in, as the store hands out buffers.
const PIECE: usize = 64 << 10;

/// Runs every kernel at every selectivity over `size` bytes on a simulated [`SAMPLE_DRIVE`]
/// and on the native CPU backend.
pub async fn run_samples(size: u64) -> Result<Vec<SampleRun>> {
    let config = NativeConfig {
        workers: Some(1),
        ..NativeConfig::default()
    };
    let native = Arc::new(NativeBackend::new(&config).context("starting the native backend")?);
    let drive_id = BackendId("csd0".to_owned());
    let drive = SimDeviceBackend::new(
        drive_id.clone(),
        &Profile::builtin(SAMPLE_DRIVE)?,
        Arc::clone(&native),
        SimDeviceConfig::default(),
    )?;
    let mut runs = Vec::new();
    for kernel in KERNELS {
        for per_mille in SELECTIVITY_PER_MILLE {
            let (data, params) = input(kernel, size, per_mille);
            let data = Bytes::from(data);
            let location = DataLocation::Device(drive_id.clone());
            let (on_drive, drive_out) = run_one(
                &drive,
                job(kernel, &params, &data, location.clone())?,
                &data,
            )
            .await?;
            let (_, cpu_out) = run_one(
                native.as_ref(),
                job(kernel, &params, &data, location)?,
                &data,
            )
            .await?;
            runs.push(SampleRun {
                kernel: kernel.to_owned(),
                drive: SAMPLE_DRIVE.to_owned(),
                selectivity: per_mille as f64 / 1000.0,
                input_bytes: data.len() as u64,
                output_bytes: drive_out.len() as u64,
                kept: round4(drive_out.len() as f64 / data.len().max(1) as f64),
                same_as_cpu: drive_out == cpu_out,
                device_time_ns: on_drive
                    .device_time
                    .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            });
        }
    }
    Ok(runs)
}

fn input(kernel: &str, size: u64, per_mille: u64) -> (Vec<u8>, Vec<(&'static str, &'static str)>) {
    if kernel == "csv-filter" {
        (
            corpus::csv(size, per_mille),
            vec![("column", corpus::CSV_COLUMN), ("value", corpus::CSV_VALUE)],
        )
    } else {
        (
            corpus::text(size, per_mille),
            vec![("pattern", corpus::GREP_PATTERN)],
        )
    }
}

fn job(kernel: &str, params: &[(&str, &str)], data: &Bytes, location: DataLocation) -> Result<Job> {
    let mut context = InvocationContext {
        event: "invoke".to_owned(),
        params: params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        location,
        ..InvocationContext::default()
    };
    context.facts.size = Some(data.len() as u64);
    Ok(Job {
        function: builtin_function(kernel)?,
        context,
        flow: Flow::Read,
        effects: Effects::new(),
        bucket: None,
        policy: Policy::Auto,
    })
}

async fn run_one(backend: &dyn Backend, job: Job, data: &Bytes) -> Result<(RunReport, Vec<u8>)> {
    let pieces: Vec<std::io::Result<Bytes>> = (0..data.len())
        .step_by(PIECE)
        .map(|at| Ok(data.slice(at..(at + PIECE).min(data.len()))))
        .collect();
    let input: ChunkStream = Box::pin(futures::stream::iter(pieces));
    let (sink, mut rx) = OutputSink::channel(8);
    let collect = async move {
        let mut out = Vec::new();
        while let Some(item) = rx.recv().await {
            out.extend_from_slice(&item?);
        }
        std::io::Result::Ok(out)
    };
    let (report, out) = tokio::join!(backend.run(job, input, sink), collect);
    let report = report.with_context(|| format!("running the sample on {}", backend.id()))?;
    Ok((report, out.context("reading the sample's output")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_drive_returns_the_cpu_bytes_at_the_sweep_selectivities() {
        let runs = run_samples(128 << 10).await.expect("samples");
        assert_eq!(runs.len(), KERNELS.len() * SELECTIVITY_PER_MILLE.len());
        for r in &runs {
            assert!(r.same_as_cpu, "{r:?}");
            assert!(r.output_bytes > 0, "{r:?}");
            assert!(r.device_time_ns.is_some_and(|t| t > 0), "{r:?}");
            // The kept share follows the selectivity (csv-filter adds its header line).
            assert!(
                (r.kept - r.selectivity).abs() <= 0.1 * r.selectivity + 0.002,
                "{r:?}"
            );
        }
    }
}
