// SPDX-License-Identifier: Apache-2.0
//! A device's command queue: FIFO over its engines, bounded by a queue depth.
//!
//! Jobs start in arrival order on the engine that frees up first (lowest index on ties); a
//! job's wait is its start minus its arrival. The depth bounds commands outstanding (waiting
//! or running): a job arriving while `depth` commands are outstanding is refused, the way an
//! NVMe submission queue refuses a command when full. Arrivals earlier than the previous
//! arrival are taken as arriving with it, so the order stays FIFO.

use crate::clock::{SimDuration, SimInstant};
use crate::error::SimError;

/// Where a job landed: when it arrived, started and finished, and on which engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// When it was submitted.
    pub arrival: SimInstant,
    /// When an engine took it.
    pub start: SimInstant,
    /// When it finished.
    pub finish: SimInstant,
    /// Index of the engine that ran it.
    pub engine: usize,
}

impl Slot {
    /// Time between arrival and start.
    pub fn wait(&self) -> SimDuration {
        self.start.duration_since(self.arrival)
    }
}

/// A command queue of a fixed depth in front of a fixed number of engines.
#[derive(Clone, Debug)]
pub struct CommandQueue {
    device: String,
    depth: u32,
    engine_free_at: Vec<SimInstant>,
    /// Finish times of commands admitted and possibly still outstanding.
    outstanding: Vec<SimInstant>,
    last_arrival: SimInstant,
}

impl CommandQueue {
    /// A queue for `device` with `engines` engines (at least 1) and room for `depth`
    /// outstanding commands (at least 1).
    pub fn new(device: &str, engines: u32, depth: u32) -> Result<Self, SimError> {
        if engines == 0 {
            return Err(SimError::figure(device, "compute.engines", 0, "at least 1"));
        }
        if depth == 0 {
            return Err(SimError::figure(device, "queue.depth", 0, "at least 1"));
        }
        Ok(Self {
            device: device.to_owned(),
            depth,
            engine_free_at: vec![SimInstant::START; engines as usize],
            outstanding: Vec::new(),
            last_arrival: SimInstant::START,
        })
    }

    /// The queue depth.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// Commands outstanding (waiting or running) at `at`.
    pub fn outstanding_at(&self, at: SimInstant) -> usize {
        self.outstanding.iter().filter(|&&f| f > at).count()
    }

    /// Admits a job arriving at `arrival` that needs `service` on an engine; refused with
    /// [`SimError::QueueFull`] when `depth` commands are outstanding at its arrival.
    pub fn submit(&mut self, arrival: SimInstant, service: SimDuration) -> Result<Slot, SimError> {
        let arrival = arrival.max(self.last_arrival);
        self.outstanding.retain(|&finish| finish > arrival);
        if self.outstanding.len() >= self.depth as usize {
            return Err(SimError::QueueFull {
                device: self.device.clone(),
                depth: self.depth,
            });
        }
        let (engine, free_at) = self
            .engine_free_at
            .iter()
            .copied()
            .enumerate()
            .min_by_key(|&(i, t)| (t, i))
            .expect("a queue has at least one engine");
        let start = arrival.max(free_at);
        let finish = start + service;
        self.engine_free_at[engine] = finish;
        self.outstanding.push(finish);
        self.last_arrival = arrival;
        Ok(Slot {
            arrival,
            start,
            finish,
            engine,
        })
    }
}

/// The wait of a job that arrives together with, and behind, jobs needing `ahead` service
/// times, on `engines` engines (FIFO, no depth limit).
pub fn wait_behind(engines: u32, ahead: &[SimDuration]) -> SimDuration {
    let engines = engines.max(1) as usize;
    let mut free_at = vec![SimDuration::ZERO; engines];
    for &service in ahead {
        let (i, _) = free_at
            .iter()
            .enumerate()
            .min_by_key(|&(i, t)| (*t, i))
            .expect("at least one engine");
        free_at[i] += service;
    }
    free_at.into_iter().min().unwrap_or(SimDuration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(v: u64) -> SimDuration {
        SimDuration::from_micros(v)
    }

    fn at(v: u64) -> SimInstant {
        SimInstant::from_start(us(v))
    }

    #[test]
    fn one_engine_serves_in_arrival_order() {
        let mut q = CommandQueue::new("d", 1, 8).unwrap();
        let a = q.submit(at(0), us(10)).unwrap();
        let b = q.submit(at(2), us(5)).unwrap();
        let c = q.submit(at(30), us(1)).unwrap();
        assert_eq!((a.start, a.finish), (at(0), at(10)));
        assert_eq!((b.start, b.wait()), (at(10), us(8)));
        assert_eq!((c.start, c.wait()), (at(30), SimDuration::ZERO));
    }

    #[test]
    fn jobs_go_to_the_engine_that_frees_first() {
        // Two engines; jobs of 10, 20, 30 us at t=0: the third starts on engine 0 at 10 us,
        // and a fourth waits for engine 1 at 20 us.
        let mut q = CommandQueue::new("d", 2, 8).unwrap();
        let slots: Vec<_> = [10, 20, 30, 5]
            .into_iter()
            .map(|s| q.submit(at(0), us(s)).unwrap())
            .collect();
        assert_eq!(slots[2].engine, 0);
        assert_eq!(slots[2].wait(), us(10));
        assert_eq!(slots[3].engine, 1);
        assert_eq!(slots[3].wait(), us(20));
        assert_eq!(wait_behind(2, &[us(10), us(20), us(30)]), us(20));
    }

    #[test]
    fn wait_behind_is_zero_with_a_free_engine_and_sums_on_one() {
        assert_eq!(wait_behind(4, &[us(10), us(10)]), SimDuration::ZERO);
        assert_eq!(wait_behind(1, &[us(10), us(20), us(5)]), us(35));
    }

    #[test]
    fn a_full_queue_refuses_until_a_command_finishes() {
        let mut q = CommandQueue::new("csd0", 1, 2).unwrap();
        q.submit(at(0), us(10)).unwrap();
        q.submit(at(0), us(10)).unwrap();
        let err = q.submit(at(5), us(10)).unwrap_err();
        assert!(err.is_overload());
        assert!(err.to_string().contains("csd0"), "{err}");
        assert_eq!(q.outstanding_at(at(5)), 2);
        // The first finishes at 10 us: room again.
        let slot = q.submit(at(10), us(10)).unwrap();
        assert_eq!(slot.start, at(20));
    }

    #[test]
    fn late_reported_arrivals_keep_fifo_order() {
        let mut q = CommandQueue::new("d", 1, 8).unwrap();
        q.submit(at(10), us(1)).unwrap();
        let slot = q.submit(at(3), us(1)).unwrap();
        assert_eq!(slot.arrival, at(10));
        assert_eq!(slot.start, at(11));
    }
}
