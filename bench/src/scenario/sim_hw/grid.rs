// SPDX-License-Identifier: Apache-2.0
//! The sweep's axes: kernels, selectivities, object sizes, drive profiles and plans, and the
//! models every plan shares (host, GPU, FPGA card).

use std::fmt;

use serde::Serialize;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// The scans swept: `grep` keeps up with every drive's link on the host CPU (data movement
/// decides), `csv-filter` does not (host compute decides; the SmartSSD letter's case).
pub const KERNELS: [&str; 2] = ["grep", "csv-filter"];

/// Selectivities in thousandths of the input kept: 0.1 %, 1 %, 10 %, 50 %, 100 %. Integers,
/// so output sizes are exact and identical on every machine.
pub const SELECTIVITY_PER_MILLE: [u64; 5] = [1, 10, 100, 500, 1000];

/// Object sizes: 1 MiB, 16 MiB, 256 MiB, 1 GiB, 16 GiB.
pub const SIZES: [u64; 5] = [MIB, 16 * MIB, 256 * MIB, GIB, 16 * GIB];

/// The computational-storage drives the object lives on (built-in `quarry-sim` profiles).
pub const DRIVES: [&str; 4] = [
    "smartssd",
    "scaleflux-csd3000",
    "ngd-newport",
    "generic-gen5",
];

/// The host CPU profile of the host plan.
pub const HOST_PROFILE: &str = "xeon-host";
/// The GPU profile of the GPU plan.
pub const GPU_PROFILE: &str = "a100-pcie";
/// The FPGA card profile of the FPGA plan.
pub const FPGA_PROFILE: &str = "alveo-u250";

/// Bytes of result for `input` bytes at `per_mille` thousandths kept (rounded down, at least
/// one byte of a non-empty input, since a scan that keeps something ships something).
pub fn output_bytes(input: u64, per_mille: u64) -> u64 {
    let kept = u128::from(input) * u128::from(per_mille) / 1000;
    u64::try_from(kept)
        .unwrap_or(u64::MAX)
        .max(u64::from(input > 0))
}

/// Where a scan of an object stored on a drive runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Plan {
    /// The host reads the whole object over the drive's link and scans it on its CPU.
    Host,
    /// The host reads the object over the drive's link and streams it to the GPU model over
    /// the GPU's link; the result comes back to host memory.
    Gpu,
    /// As `Gpu`, with the FPGA card model.
    Fpga,
    /// The drive scans the object internally and ships only the result over its link.
    Csd,
}

impl Plan {
    /// Every plan, in report order.
    pub const ALL: [Self; 4] = [Self::Host, Self::Gpu, Self::Fpga, Self::Csd];

    /// The name used in tables, JSON and the chart.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::Gpu => "gpu",
            Self::Fpga => "fpga",
            Self::Csd => "csd",
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_follows_selectivity_exactly() {
        assert_eq!(output_bytes(MIB, 1000), MIB);
        assert_eq!(output_bytes(MIB, 500), MIB / 2);
        assert_eq!(output_bytes(16 * GIB, 10), 16 * GIB / 100);
        assert_eq!(output_bytes(MIB, 1), 1_048);
        assert_eq!(
            output_bytes(100, 1),
            1,
            "a non-empty scan ships at least a byte"
        );
        assert_eq!(output_bytes(0, 1000), 0);
    }
}
