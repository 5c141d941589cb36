// SPDX-License-Identifier: Apache-2.0
//! Facts about the machine and about processes, read from `/proc`.
//!
//! Every read is best effort for machine facts (a report without the CPU model is still a
//! report) and strict for RSS (a ratio computed from a missing figure would be a lie).

use std::path::Path;

use anyhow::{Context as _, Result};
use serde::Serialize;

use super::report::round3;

/// The machine a report was taken on.
#[derive(Debug, Clone, Serialize)]
pub struct MachineInfo {
    /// CPUs this process may use.
    pub nproc: usize,
    /// `uname -r`.
    pub kernel: Option<String>,
    /// The first CPU's model name.
    pub cpu_model: Option<String>,
    /// Physical memory in MiB.
    pub mem_total_mib: Option<u64>,
    /// 1, 5 and 15 minute load averages when the run started: other work on the machine
    /// (builds, tests) competes with the targets, and shows here.
    pub load_average_start: Option<String>,
    /// The same when the run ended.
    pub load_average_end: Option<String>,
}

impl MachineInfo {
    /// Reads what `/proc` tells now; `load_average_end` is left for the caller.
    pub fn read() -> Self {
        let nproc = std::thread::available_parallelism().map_or(1, usize::from);
        let kernel = read_trimmed("/proc/sys/kernel/osrelease");
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|line| line.strip_prefix("model name"))
                    .and_then(|rest| rest.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            });
        let mem_total_mib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| field_kib(&text, "MemTotal:"))
            .map(|kib| kib / 1024);
        Self {
            nproc,
            kernel,
            cpu_model,
            mem_total_mib,
            load_average_start: load_average(),
            load_average_end: None,
        }
    }
}

/// The first three fields of `/proc/loadavg`.
pub fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Resident memory of one process, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RssSample {
    /// `VmRSS`: resident now, in MiB.
    pub rss_mib: f64,
    /// `VmHWM`: the peak resident size so far, in MiB.
    pub peak_rss_mib: f64,
}

impl RssSample {
    /// Reads `VmRSS` and `VmHWM` of process `pid`.
    pub fn read(pid: u32) -> Result<Self> {
        let path = Path::new("/proc").join(pid.to_string()).join("status");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("failed to read {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("no VmRSS/VmHWM in {}", path.display()))
    }

    fn parse(status: &str) -> Option<Self> {
        let mib = |kib: u64| round3(kib as f64 / 1024.0);
        Some(Self {
            rss_mib: mib(field_kib(status, "VmRSS:")?),
            peak_rss_mib: mib(field_kib(status, "VmHWM:")?),
        })
    }
}

/// The value of a `Name:   1234 kB` line.
fn field_kib(text: &str, name: &str) -> Option<u64> {
    let rest = text.lines().find_map(|line| line.strip_prefix(name))?;
    rest.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_is_read_from_status_lines() {
        let status = "Name:\tquarryd\nVmHWM:\t   40960 kB\nVmRSS:\t   20480 kB\nThreads:\t3\n";
        let sample = RssSample::parse(status).unwrap();
        assert_eq!(sample.rss_mib, 20.0);
        assert_eq!(
            RssSample::parse("VmRSS: 8728 kB\nVmHWM: 8728 kB\n")
                .unwrap()
                .rss_mib,
            8.523
        );
        assert_eq!(sample.peak_rss_mib, 40.0);
        assert!(RssSample::parse("Name:\tkthread\n").is_none());
    }

    #[test]
    fn own_process_has_rss() {
        let sample = RssSample::read(std::process::id()).unwrap();
        assert!(sample.rss_mib > 0.0 && sample.peak_rss_mib >= sample.rss_mib);
    }
}
