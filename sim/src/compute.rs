// SPDX-License-Identifier: Apache-2.0
//! Compute engines and their per-kernel rates.
//!
//! A rate is either a measured or quoted throughput (bytes/s for one job) or, for an FPGA
//! pipeline, derived from its shape: clock / initiation interval x lanes x bytes per item
//! (one item leaves each lane every II cycles). `engines` is how many jobs run at once; each
//! job runs at its kernel's rate.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::SimError;
use crate::rate::Bandwidth;

/// What kind of engine computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EngineKind {
    /// Embedded general-purpose cores (ARM) inside a drive.
    Cores,
    /// An FPGA pipeline.
    Fpga,
    /// A GPU.
    Gpu,
    /// The host's CPU cores.
    HostCpu,
}

impl EngineKind {
    /// The name used in profiles.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cores => "cores",
            Self::Fpga => "fpga",
            Self::Gpu => "gpu",
            Self::HostCpu => "host-cpu",
        }
    }
}

/// How fast one job of a kernel runs.
#[derive(Clone, Debug, PartialEq)]
pub enum KernelRate {
    /// A throughput in bytes per second.
    Throughput(Bandwidth),
    /// An FPGA pipeline: `lanes` parallel lanes each taking one item of `bytes_per_item`
    /// bytes every `initiation_interval` cycles of a `clock_hz` clock.
    Pipeline {
        /// Cycles between successive items entering a lane (II), at least 1.
        initiation_interval: u32,
        /// Kernel clock in Hz.
        clock_hz: f64,
        /// Parallel lanes, at least 1.
        lanes: u32,
        /// Bytes per item, at least 1.
        bytes_per_item: u32,
    },
}

impl KernelRate {
    /// The rate as a bandwidth: throughput, or clock / II x lanes x bytes per item.
    pub fn bandwidth(&self) -> Result<Bandwidth, SimError> {
        match *self {
            Self::Throughput(bw) => Ok(bw),
            Self::Pipeline {
                initiation_interval,
                clock_hz,
                lanes,
                bytes_per_item,
            } => {
                if initiation_interval == 0 || lanes == 0 || bytes_per_item == 0 {
                    return Err(SimError::figure(
                        "fpga kernel",
                        "ii, lanes, bytes_per_item",
                        format!("{initiation_interval}, {lanes}, {bytes_per_item}"),
                        "the initiation interval, lane count and item size are each at least 1",
                    ));
                }
                let bytes_per_sec = clock_hz / f64::from(initiation_interval)
                    * f64::from(lanes)
                    * f64::from(bytes_per_item);
                Bandwidth::new(bytes_per_sec, "fpga kernel", "clock_mhz")
            }
        }
    }
}

/// A device's compute engines and the kernels they run.
#[derive(Clone, Debug, PartialEq)]
pub struct ComputeEngines {
    kind: EngineKind,
    engines: u32,
    kernels: BTreeMap<String, Bandwidth>,
}

impl ComputeEngines {
    /// `engines` engines (at least 1) of `kind`, with a rate per kernel name.
    pub fn new(
        kind: EngineKind,
        engines: u32,
        kernels: BTreeMap<String, KernelRate>,
    ) -> Result<Self, SimError> {
        if engines == 0 {
            return Err(SimError::figure(
                "compute",
                "engines",
                0,
                "a device runs at least one job at a time",
            ));
        }
        let kernels = kernels
            .into_iter()
            .map(|(name, rate)| Ok((name, rate.bandwidth()?)))
            .collect::<Result<_, SimError>>()?;
        Ok(Self {
            kind,
            engines,
            kernels,
        })
    }

    /// The engine kind.
    pub fn kind(&self) -> EngineKind {
        self.kind
    }

    /// How many jobs run at once.
    pub fn engines(&self) -> u32 {
        self.engines
    }

    /// The kernels this device has rates for, in name order.
    pub fn kernel_names(&self) -> impl Iterator<Item = &str> {
        self.kernels.keys().map(String::as_str)
    }

    /// The rate of one job of `kernel` on device `device` (named in the error).
    pub fn rate(&self, device: &str, kernel: &str) -> Result<Bandwidth, SimError> {
        self.kernels
            .get(kernel)
            .copied()
            .ok_or_else(|| SimError::UnknownKernel {
                device: device.to_owned(),
                kernel: kernel.to_owned(),
                known: self.kernel_names().collect::<Vec<_>>().join(", "),
            })
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fpga_rate_is_clock_over_ii_times_lanes_times_item() {
        // 250 MHz / II 2 x 8 lanes x 4 bytes = 4 GB/s.
        let rate = KernelRate::Pipeline {
            initiation_interval: 2,
            clock_hz: 250e6,
            lanes: 8,
            bytes_per_item: 4,
        };
        assert_eq!(rate.bandwidth().unwrap().bytes_per_sec(), 4e9);
    }

    #[test]
    fn unknown_kernel_names_the_known_ones_and_the_fix() {
        let mut kernels = BTreeMap::new();
        kernels.insert(
            "grep".to_owned(),
            KernelRate::Throughput(Bandwidth::new(1e9, "t", "k").unwrap()),
        );
        let engines = ComputeEngines::new(EngineKind::Cores, 1, kernels).unwrap();
        let err = engines.rate("ngd", "sha256").unwrap_err().to_string();
        assert!(err.contains("\"sha256\""), "{err}");
        assert!(err.contains("it has: grep"), "{err}");
        assert!(err.contains("[compute.kernels.sha256]"), "{err}");
    }

    #[test]
    fn zero_engines_or_zero_ii_are_refused() {
        assert!(ComputeEngines::new(EngineKind::Fpga, 0, BTreeMap::new()).is_err());
        let bad = KernelRate::Pipeline {
            initiation_interval: 0,
            clock_hz: 1e8,
            lanes: 1,
            bytes_per_item: 1,
        };
        assert!(bad.bandwidth().is_err());
    }
}
