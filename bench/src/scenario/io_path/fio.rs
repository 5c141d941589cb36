// SPDX-License-Identifier: Apache-2.0
//! The ceiling: fio reading the file with io_uring and O_DIRECT, 1 MiB blocks, 32 in flight.

use std::path::Path;

use anyhow::{Context as _, Result, bail, ensure};
use serde_json::Value;
use tokio::process::Command;

use super::report::Sample;

/// fio's arguments for `file` of `size` bytes, as the issue fixes them.
pub fn args(file: &Path, size: u64) -> Vec<String> {
    vec![
        "--name=ceiling".to_owned(),
        format!("--filename={}", file.display()),
        "--ioengine=io_uring".to_owned(),
        "--direct=1".to_owned(),
        "--bs=1M".to_owned(),
        "--iodepth=32".to_owned(),
        "--rw=read".to_owned(),
        format!("--size={size}"),
        "--numjobs=1".to_owned(),
        "--output-format=json".to_owned(),
    ]
}

/// Runs fio once and reads its bandwidth and CPU time from its JSON output.
pub async fn run(file: &Path, size: u64) -> Result<Sample> {
    let output = Command::new("fio")
        .args(args(file, size))
        .output()
        .await
        .context("failed to run fio: install the Debian package fio")?;
    if !output.status.success() {
        bail!(
            "fio exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    parse(&output.stdout)
}

/// The first job's read bytes, runtime and CPU (`usr_cpu` + `sys_cpu` are percentages of the
/// job's runtime).
fn parse(json: &[u8]) -> Result<Sample> {
    let report: Value = serde_json::from_slice(json).context("fio's output is not JSON")?;
    let job = &report["jobs"][0];
    let read = &job["read"];
    let bytes = read["io_bytes"]
        .as_u64()
        .context("fio's report has no jobs[0].read.io_bytes")?;
    let runtime_ms = read["runtime"]
        .as_f64()
        .context("fio's report has no jobs[0].read.runtime")?;
    ensure!(runtime_ms > 0.0, "fio read for 0 ms");
    let cpu_percent =
        job["usr_cpu"].as_f64().unwrap_or(0.0) + job["sys_cpu"].as_f64().unwrap_or(0.0);
    let seconds = runtime_ms / 1000.0;
    Ok(Sample {
        bytes,
        seconds,
        cpu_seconds: cpu_percent / 100.0 * seconds,
        client_cpu_seconds: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bandwidth_and_cpu_come_from_the_first_job() {
        let json = br#"{"jobs":[{"usr_cpu":1.5,"sys_cpu":8.5,
            "read":{"io_bytes":4294967296,"runtime":2000,"bw_bytes":2147483648}}]}"#;
        let s = parse(json).unwrap();
        assert_eq!(s.bytes, 1 << 32);
        assert!((s.seconds - 2.0).abs() < 1e-9);
        assert!((s.cpu_seconds - 0.2).abs() < 1e-9);
        assert!(parse(b"{}").is_err());
    }
}
