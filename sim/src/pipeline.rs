// SPDX-License-Identifier: Apache-2.0
//! Timing of a chunked pipeline, and its breakdown by stage.
//!
//! A job's bytes flow through stages (flash read, device memory, compute, link...) in chunks,
//! so the stages overlap. Each stage has a fixed latency and a busy time (the time it needs
//! for the whole job at its own rate). With n chunks the slowest stage (the bottleneck) is
//! busy end to end and every other stage adds one chunk's worth of its time (pipeline fill
//! and drain):
//!
//! total = queue wait + sum(latencies) + busy(bottleneck) + sum over other stages of busy / n.
//!
//! One chunk gives the plain sum (no overlap); many chunks tend to the slowest stage.

use std::fmt;

use crate::clock::SimDuration;

/// A pipeline stage (serialized as its [`Stage::as_str`] name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Reading NAND flash inside a drive.
    Flash,
    /// A device's own memory (drive DRAM, card DDR/HBM), written and read once per byte.
    DeviceMemory,
    /// The device's compute engines running the kernel.
    Compute,
    /// Bytes crossing PCIe from host to device.
    LinkToDevice,
    /// Bytes crossing PCIe from device to host.
    LinkToHost,
    /// The host CPU running the kernel (host-side plans).
    HostCompute,
}

impl Stage {
    /// A short stable name (for tables, metrics labels and JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Flash => "flash",
            Self::DeviceMemory => "device-memory",
            Self::Compute => "compute",
            Self::LinkToDevice => "link-to-device",
            Self::LinkToHost => "link-to-host",
            Self::HostCompute => "host-compute",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One stage's share of a job (durations serialize as nanoseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StageTime {
    /// Which stage.
    pub stage: Stage,
    /// Fixed latency before its first byte is out (tR, link latency).
    pub latency: SimDuration,
    /// Time the stage needs for the whole job at its own rate.
    pub busy: SimDuration,
}

impl StageTime {
    /// A stage with a latency and a busy time.
    pub fn new(stage: Stage, latency: SimDuration, busy: SimDuration) -> Self {
        Self {
            stage,
            latency,
            busy,
        }
    }
}

/// How long a job takes and why: its stages, the bottleneck and the overlap (serializable,
/// durations as nanoseconds, for reports).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Timing {
    /// Each stage, in flow order.
    pub stages: Vec<StageTime>,
    /// Chunks the job was split into (at least 1).
    pub chunks: u64,
    /// The stage with the longest busy time (the first such in flow order), if any stage.
    pub bottleneck: Option<Stage>,
    /// Time spent waiting in the device's command queue before starting.
    pub queue_wait: SimDuration,
    /// Sum of the stage latencies.
    pub latency: SimDuration,
    /// Pipeline fill and drain: the non-bottleneck stages' time for one chunk.
    pub fill_drain: SimDuration,
    /// End-to-end time: queue wait + latency + bottleneck busy time + fill/drain.
    pub total: SimDuration,
}

impl Timing {
    /// The timing of `stages` overlapped over `chunks` chunks (0 is taken as 1).
    pub fn pipelined(stages: Vec<StageTime>, chunks: u64) -> Self {
        let chunks = chunks.max(1);
        let mut bottleneck: Option<StageTime> = None;
        for s in &stages {
            if bottleneck.is_none_or(|b| s.busy > b.busy) {
                bottleneck = Some(*s);
            }
        }
        let latency = stages.iter().map(|s| s.latency).sum();
        let fill_drain = stages
            .iter()
            .filter(|s| Some(s.stage) != bottleneck.map(|b| b.stage))
            .map(|s| s.busy.div_parts(chunks))
            .sum();
        let busiest = bottleneck.map_or(SimDuration::ZERO, |b| b.busy);
        Self {
            total: latency + busiest + fill_drain,
            bottleneck: bottleneck.map(|b| b.stage),
            stages,
            chunks,
            queue_wait: SimDuration::ZERO,
            latency,
            fill_drain,
        }
    }

    /// The same timing after waiting `wait` in a command queue first.
    pub fn after_queue_wait(mut self, wait: SimDuration) -> Self {
        self.total = self.total.saturating_sub(self.queue_wait) + wait;
        self.queue_wait = wait;
        self
    }

    /// The entry for `stage`, if the job used it.
    pub fn stage(&self, stage: Stage) -> Option<&StageTime> {
        self.stages.iter().find(|s| s.stage == stage)
    }

    /// Time spent on the device once started (total less the queue wait).
    pub fn service_time(&self) -> SimDuration {
        self.total.saturating_sub(self.queue_wait)
    }
}

impl fmt::Display for Timing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} total", self.total)?;
        if let Some(b) = self.bottleneck {
            write!(f, ", bound by {b}")?;
        }
        for s in &self.stages {
            write!(f, "; {} {}", s.stage, s.busy)?;
        }
        if self.queue_wait > SimDuration::ZERO {
            write!(f, "; queued {}", self.queue_wait)?;
        }
        Ok(())
    }
}

/// Number of chunks of at most `chunk_bytes` that cover `bytes` (at least 1).
pub(crate) fn chunk_count(bytes: u64, chunk_bytes: u64) -> u64 {
    bytes.div_ceil(chunk_bytes.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(v: u64) -> SimDuration {
        SimDuration::from_micros(v)
    }

    fn stages() -> Vec<StageTime> {
        vec![
            StageTime::new(Stage::Flash, us(50), us(400)),
            StageTime::new(Stage::Compute, SimDuration::ZERO, us(1_000)),
            StageTime::new(Stage::LinkToHost, us(1), us(200)),
        ]
    }

    #[test]
    fn one_chunk_is_the_plain_sum() {
        let t = Timing::pipelined(stages(), 1);
        assert_eq!(t.total, us(50 + 1 + 400 + 1_000 + 200));
    }

    #[test]
    fn many_chunks_are_bound_by_the_slowest_stage_plus_fill_and_drain() {
        let t = Timing::pipelined(stages(), 100);
        assert_eq!(t.bottleneck, Some(Stage::Compute));
        assert_eq!(t.fill_drain, us(4 + 2));
        assert_eq!(t.total, us(51) + us(1_000) + us(6));
        // Never faster than the slowest stage, never slower than no overlap at all.
        assert!(t.total >= us(1_000));
        assert!(t.total <= Timing::pipelined(stages(), 1).total);
    }

    #[test]
    fn queue_wait_adds_to_total_once() {
        let t = Timing::pipelined(stages(), 1).after_queue_wait(us(7));
        let again = t.clone().after_queue_wait(us(3));
        assert_eq!(t.total, us(1_651 + 7));
        assert_eq!(again.total, us(1_651 + 3));
        assert_eq!(again.service_time(), us(1_651));
    }

    #[test]
    fn stage_serializes_as_its_name() {
        for stage in [
            Stage::Flash,
            Stage::DeviceMemory,
            Stage::LinkToHost,
            Stage::HostCompute,
        ] {
            let v =
                toml::Value::try_from(std::collections::BTreeMap::from([("s", stage)])).unwrap();
            assert_eq!(v["s"].as_str(), Some(stage.as_str()));
        }
    }

    #[test]
    fn chunk_count_rounds_up_and_is_at_least_one() {
        assert_eq!(chunk_count(0, 10), 1);
        assert_eq!(chunk_count(10, 10), 1);
        assert_eq!(chunk_count(11, 10), 2);
        assert_eq!(chunk_count(5, 0), 5);
    }
}
