// SPDX-License-Identifier: Apache-2.0
//! Device memory (a drive's DRAM, a card's DDR or HBM, the host's DRAM): capacity and
//! bandwidth. Capacity bounds the pipelining chunk (two chunks in flight, double buffering);
//! bandwidth is a pipeline stage of its own.

use crate::error::SimError;
use crate::rate::Bandwidth;

/// Memory with a capacity and a bandwidth.
#[derive(Clone, Debug, PartialEq)]
pub struct Memory {
    capacity_bytes: u64,
    bandwidth: Bandwidth,
}

impl Memory {
    /// Memory of `capacity_bytes` (at least 1) at `bandwidth`.
    pub fn new(capacity_bytes: u64, bandwidth: Bandwidth) -> Result<Self, SimError> {
        if capacity_bytes == 0 {
            return Err(SimError::figure(
                "memory",
                "capacity",
                0,
                "device memory must hold at least one byte",
            ));
        }
        Ok(Self {
            capacity_bytes,
            bandwidth,
        })
    }

    /// Capacity in bytes.
    pub fn capacity_bytes(&self) -> u64 {
        self.capacity_bytes
    }

    /// Bandwidth.
    pub fn bandwidth(&self) -> Bandwidth {
        self.bandwidth
    }

    /// The largest chunk that double buffering fits: half the capacity, at least one byte.
    pub fn max_chunk_bytes(&self) -> u64 {
        (self.capacity_bytes / 2).max(1)
    }
}
