// SPDX-License-Identifier: Apache-2.0
//! A PCIe link: generation x lanes, less the protocol overhead, plus a fixed latency.
//!
//! Raw bandwidth per lane is the transfer rate times the line-code efficiency (Gen3, Gen4 and
//! Gen5 all use 128b/130b: 8, 16 and 32 GT/s). On top of the line code, every TLP carries a
//! header, sequence number, LCRC and framing (5 dwords with a 3-dword header), and the link
//! also carries ACK/flow-control DLLPs and SKP ordered sets. Intel AN 456 ("PCI Express High
//! Performance Reference Design", section 1.1.2,
//! <https://www.intel.com/content/www/us/en/docs/programmable/683541/current/throughput-for-posted-writes.html>)
//! puts the TLP-only bound at 256 / (256 + 20) = 92.8 % for a 256-byte max payload;
//! [`DEFAULT_PROTOCOL_EFFICIENCY`] takes a further 7 % for DLLPs, SKPs and read-completion
//! splitting, which matches what Gen3 x4 NVMe drives deliver (3.5 GB/s of 3.94 GB/s raw).
//!
//! transfer time = latency + bytes / (lanes x GT/s x 128/130 / 8 x efficiency).

use std::fmt;

use crate::clock::SimDuration;
use crate::error::SimError;
use crate::rate::Bandwidth;

/// Protocol efficiency used where a profile gives none: 0.928 (TLP bound at 256-byte MPS,
/// Intel AN 456) x 0.93 (DLLPs, SKP ordered sets, completion splitting; an assumption
/// matched to Gen3 x4 NVMe drives reading 3.5 GB/s) = 0.86.
pub const DEFAULT_PROTOCOL_EFFICIENCY: f64 = 0.86;

/// A PCIe generation with 128b/130b line coding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PcieGen {
    /// 8 GT/s per lane.
    Gen3,
    /// 16 GT/s per lane.
    Gen4,
    /// 32 GT/s per lane.
    Gen5,
}

impl PcieGen {
    /// The generation numbered `n` (3, 4 or 5).
    pub fn from_number(n: u8) -> Option<Self> {
        match n {
            3 => Some(Self::Gen3),
            4 => Some(Self::Gen4),
            5 => Some(Self::Gen5),
            _ => None,
        }
    }

    /// Transfers per second per lane, in GT/s.
    pub fn gigatransfers_per_sec(self) -> f64 {
        match self {
            Self::Gen3 => 8.0,
            Self::Gen4 => 16.0,
            Self::Gen5 => 32.0,
        }
    }

    /// Fraction of transferred bits that carry data after line coding (128b/130b).
    pub fn line_code_efficiency(self) -> f64 {
        128.0 / 130.0
    }

    /// Raw data bytes per second on one lane, after line coding.
    pub fn lane_bytes_per_sec(self) -> f64 {
        self.gigatransfers_per_sec() * 1e9 * self.line_code_efficiency() / 8.0
    }
}

impl fmt::Display for PcieGen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = match self {
            Self::Gen3 => 3,
            Self::Gen4 => 4,
            Self::Gen5 => 5,
        };
        write!(f, "Gen{n}")
    }
}

/// One PCIe link, one direction's bandwidth (links are full duplex: each direction has it).
#[derive(Clone, Debug, PartialEq)]
pub struct PcieLink {
    generation: PcieGen,
    lanes: u8,
    protocol_efficiency: f64,
    latency: SimDuration,
}

impl PcieLink {
    /// A link of `lanes` (1, 2, 4, 8 or 16) at `generation`, keeping `protocol_efficiency`
    /// (in (0, 1]) of the line-coded bandwidth, with `latency` per transfer.
    pub fn new(
        generation: PcieGen,
        lanes: u8,
        protocol_efficiency: f64,
        latency: SimDuration,
    ) -> Result<Self, SimError> {
        if !matches!(lanes, 1 | 2 | 4 | 8 | 16) {
            return Err(SimError::figure(
                "link",
                "lanes",
                lanes,
                "a PCIe link has 1, 2, 4, 8 or 16 lanes",
            ));
        }
        if !(protocol_efficiency > 0.0 && protocol_efficiency <= 1.0) {
            return Err(SimError::figure(
                "link",
                "efficiency",
                protocol_efficiency,
                "the protocol efficiency is a fraction in (0, 1], typically 0.8 to 0.93",
            ));
        }
        Ok(Self {
            generation,
            lanes,
            protocol_efficiency,
            latency,
        })
    }

    /// The generation.
    pub fn generation(&self) -> PcieGen {
        self.generation
    }

    /// The lane count.
    pub fn lanes(&self) -> u8 {
        self.lanes
    }

    /// The fixed latency of one transfer.
    pub fn latency(&self) -> SimDuration {
        self.latency
    }

    /// Bandwidth after line coding, before protocol overhead (Gen3 x4: 3.94 GB/s).
    pub fn raw_bandwidth(&self) -> Bandwidth {
        Bandwidth::new(
            self.generation.lane_bytes_per_sec() * f64::from(self.lanes),
            "link",
            "raw bandwidth",
        )
        .expect("a known generation times 1..=16 lanes is positive and finite")
    }

    /// Bandwidth left for payload after protocol overhead.
    pub fn effective_bandwidth(&self) -> Bandwidth {
        self.raw_bandwidth()
            .scaled(self.protocol_efficiency)
            .expect("efficiency was checked to lie in (0, 1]")
    }

    /// Time to move `bytes` across: latency + bytes / effective bandwidth; nothing to move
    /// takes no time.
    pub fn transfer_time(&self, bytes: u64) -> SimDuration {
        if bytes == 0 {
            SimDuration::ZERO
        } else {
            self.latency + self.effective_bandwidth().time_for(bytes)
        }
    }
}

impl fmt::Display for PcieLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PCIe {} x{} ({} effective)",
            self.generation,
            self.lanes,
            self.effective_bandwidth()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(generation: PcieGen, lanes: u8, eff: f64, latency_ns: u64) -> PcieLink {
        PcieLink::new(generation, lanes, eff, SimDuration::from_nanos(latency_ns)).unwrap()
    }

    #[test]
    fn raw_bandwidth_follows_generation_and_lanes() {
        // 8e9 x 128/130 / 8 x 4 = 3,938,461,538 bytes/s: the "3.94 GB/s" of a Gen3 x4 link.
        let gen3x4 = link(PcieGen::Gen3, 4, 1.0, 0)
            .raw_bandwidth()
            .bytes_per_sec();
        assert!((gen3x4 - 3_938_461_538.46).abs() < 1.0, "{gen3x4}");
        let gen4x4 = link(PcieGen::Gen4, 4, 1.0, 0)
            .raw_bandwidth()
            .bytes_per_sec();
        let gen5x4 = link(PcieGen::Gen5, 4, 1.0, 0)
            .raw_bandwidth()
            .bytes_per_sec();
        assert!((gen4x4 - 2.0 * gen3x4).abs() < 1.0);
        assert!((gen5x4 - 4.0 * gen3x4).abs() < 1.0);
    }

    #[test]
    fn transfer_time_is_latency_plus_bytes_over_effective_bandwidth() {
        // Gen3 x1 at efficiency 0.65: 8e9 x 128/130 / 8 x 0.65 = 640,000,000 bytes/s exactly.
        let l = link(PcieGen::Gen3, 1, 0.65, 1_000);
        assert_eq!(
            l.transfer_time(640_000_000).as_nanos(),
            1_000_000_000 + 1_000
        );
        assert_eq!(l.transfer_time(64).as_nanos(), 100 + 1_000);
        assert_eq!(l.transfer_time(0), SimDuration::ZERO);
    }

    #[test]
    fn bad_lane_counts_and_efficiencies_are_refused() {
        assert!(PcieLink::new(PcieGen::Gen4, 3, 0.9, SimDuration::ZERO).is_err());
        assert!(PcieLink::new(PcieGen::Gen4, 4, 0.0, SimDuration::ZERO).is_err());
        assert!(PcieLink::new(PcieGen::Gen4, 4, 1.2, SimDuration::ZERO).is_err());
        assert!(PcieLink::new(PcieGen::Gen4, 4, f64::NAN, SimDuration::ZERO).is_err());
        assert_eq!(PcieGen::from_number(2), None);
    }
}
