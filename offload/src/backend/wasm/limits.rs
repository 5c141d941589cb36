// SPDX-License-Identifier: Apache-2.0
//! Enforcement of a function's memory and CPU-time limits inside its store.

use std::time::Duration;

use tokio::time::Instant;
use wasmtime::ResourceLimiter;

/// Most table elements a function may grow a table to.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Refuses memory growth past the function's limit and remembers that it did, so a failure
/// that follows can be reported as the memory limit rather than as the trap it caused.
#[derive(Debug)]
pub(super) struct MemoryLimiter {
    limit: u64,
    pub(super) breached: bool,
}

impl MemoryLimiter {
    pub(super) fn new(limit: u64) -> Self {
        Self {
            limit,
            breached: false,
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.limit {
            self.breached = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// CPU time of one invocation, counted in epoch ticks.
///
/// The epoch callback runs once per tick while the guest executes. A callback that comes long
/// after the previous one means the guest was waiting (for input, for the reader of its output,
/// for a turn on the executor), so that tick is not charged: time spent waiting is not CPU time.
#[derive(Debug)]
pub(super) struct CpuMeter {
    tick: Duration,
    limit_ticks: u64,
    ticks: u64,
    last: Option<Instant>,
    pub(super) exceeded: bool,
}

/// A callback further apart than this many ticks from the previous one starts a new run of
/// execution and is not charged.
const GAP_TICKS: u32 = 4;

impl CpuMeter {
    pub(super) fn new(tick: Duration, limit: Duration) -> Self {
        let limit_ticks = (limit.as_nanos() / tick.as_nanos().max(1)).max(1);
        Self {
            tick,
            limit_ticks: u64::try_from(limit_ticks).unwrap_or(u64::MAX),
            ticks: 0,
            last: None,
            exceeded: false,
        }
    }

    /// Records one epoch callback at `now`; false once the limit is spent.
    pub(super) fn on_tick(&mut self, now: Instant) -> bool {
        let charged = self
            .last
            .is_some_and(|last| now.duration_since(last) <= self.tick * GAP_TICKS);
        self.last = Some(now);
        if charged {
            self.ticks += 1;
        }
        if self.ticks >= self.limit_ticks {
            self.exceeded = true;
        }
        !self.exceeded
    }

    /// CPU time charged so far.
    pub(super) fn used(&self) -> Duration {
        self.tick
            .saturating_mul(u32::try_from(self.ticks).unwrap_or(u32::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuous_ticks_are_charged_until_the_limit() {
        let tick = Duration::from_millis(1);
        let mut meter = CpuMeter::new(tick, Duration::from_millis(3));
        let t0 = Instant::now();
        assert!(meter.on_tick(t0));
        assert!(meter.on_tick(t0 + tick));
        assert!(meter.on_tick(t0 + tick * 2));
        assert!(!meter.on_tick(t0 + tick * 3));
        assert_eq!(meter.used(), Duration::from_millis(3));
    }

    #[test]
    fn a_tick_after_a_wait_is_not_charged() {
        let tick = Duration::from_millis(1);
        let mut meter = CpuMeter::new(tick, Duration::from_millis(100));
        let t0 = Instant::now();
        meter.on_tick(t0);
        meter.on_tick(t0 + Duration::from_secs(5));
        meter.on_tick(t0 + Duration::from_secs(10));
        assert_eq!(meter.used(), Duration::ZERO);
    }

    #[test]
    fn memory_growth_past_the_limit_is_refused_and_remembered() {
        let mut limiter = MemoryLimiter::new(1 << 20);
        assert!(limiter.memory_growing(0, 1 << 20, None).unwrap());
        assert!(!limiter.breached);
        assert!(!limiter.memory_growing(1 << 20, 2 << 20, None).unwrap());
        assert!(limiter.breached);
    }
}
