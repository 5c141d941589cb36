// SPDX-License-Identifier: Apache-2.0
//! Bandwidth: bytes per second, and the time a number of bytes takes at that rate.
//!
//! Invariant: a [`Bandwidth`] is always positive and finite, so every time computed from it is
//! finite. Decimal units (1 GB/s = 10^9 bytes/s), as product sheets use them.

use std::fmt;

use crate::clock::SimDuration;
use crate::error::SimError;

/// A positive, finite rate in bytes per second.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Bandwidth(f64);

impl Bandwidth {
    /// `bytes_per_sec` bytes per second; refused unless positive and finite. `owner` and
    /// `key` name the figure in the error.
    pub fn new(bytes_per_sec: f64, owner: &str, key: &str) -> Result<Self, SimError> {
        if bytes_per_sec.is_finite() && bytes_per_sec > 0.0 {
            Ok(Self(bytes_per_sec))
        } else {
            Err(SimError::figure(
                owner,
                key,
                bytes_per_sec,
                "a bandwidth must be positive and finite",
            ))
        }
    }

    /// `gb_per_sec` decimal gigabytes (10^9 bytes) per second.
    pub fn from_gb_per_sec(gb_per_sec: f64, owner: &str, key: &str) -> Result<Self, SimError> {
        Self::new(gb_per_sec * 1e9, owner, key)
    }

    /// Bytes per second.
    pub fn bytes_per_sec(self) -> f64 {
        self.0
    }

    /// Decimal gigabytes per second.
    pub fn gb_per_sec(self) -> f64 {
        self.0 / 1e9
    }

    /// The slower of two rates.
    pub fn min(self, other: Self) -> Self {
        if other.0 < self.0 { other } else { self }
    }

    /// This rate scaled by `factor`, if the result is still positive and finite.
    pub fn scaled(self, factor: f64) -> Option<Self> {
        let v = self.0 * factor;
        (v.is_finite() && v > 0.0).then_some(Self(v))
    }

    /// Time to move `bytes` at this rate (no latency).
    pub fn time_for(self, bytes: u64) -> SimDuration {
        SimDuration::from_secs_f64(bytes as f64 / self.0)
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2} GB/s", self.gb_per_sec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_for_is_bytes_over_rate() {
        let bw = Bandwidth::from_gb_per_sec(2.0, "t", "bw").unwrap();
        assert_eq!(bw.time_for(2_000_000_000).as_nanos(), 1_000_000_000);
        assert_eq!(bw.time_for(1).as_nanos(), 1); // 0.5 ns rounds half away from zero
        assert_eq!(bw.time_for(0), SimDuration::ZERO);
    }

    #[test]
    fn zero_negative_and_infinite_rates_are_refused() {
        for bad in [0.0, -1.0, f64::INFINITY, f64::NAN] {
            let err = Bandwidth::new(bad, "disk", "gb_s").unwrap_err();
            assert!(err.to_string().contains("disk: gb_s"), "{err}");
        }
    }
}
