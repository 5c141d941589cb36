// SPDX-License-Identifier: Apache-2.0
//! Virtual time: durations and instants in whole nanoseconds, a clock that only moves when told
//! to, and a queue of timed events.
//!
//! Invariants: nothing here reads the wall clock; time never goes backwards; events due at the
//! same instant come out in the order they were scheduled, so a run is reproducible.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fmt;
use std::ops::{Add, AddAssign};

/// A span of simulated time, in whole nanoseconds (serialized as the integer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct SimDuration(u64);

impl SimDuration {
    /// No time at all.
    pub const ZERO: Self = Self(0);

    /// `nanos` nanoseconds.
    pub const fn from_nanos(nanos: u64) -> Self {
        Self(nanos)
    }

    /// `micros` microseconds.
    pub const fn from_micros(micros: u64) -> Self {
        Self(micros.saturating_mul(1_000))
    }

    /// `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis.saturating_mul(1_000_000))
    }

    /// The duration closest to `secs` seconds, rounded to the nanosecond. Negative and NaN
    /// inputs give zero; values past `u64::MAX` nanoseconds (about 584 years) saturate.
    pub fn from_secs_f64(secs: f64) -> Self {
        let nanos = (secs * 1e9).round();
        if nanos.is_nan() || nanos <= 0.0 {
            Self::ZERO
        } else if nanos >= u64::MAX as f64 {
            Self(u64::MAX)
        } else {
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "nanos is a rounded value checked to lie in 0..u64::MAX"
            )]
            Self(nanos as u64)
        }
    }

    /// Whole nanoseconds.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Seconds, as a float (for ratios and display).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// `self + other`, saturating at the largest duration.
    pub const fn saturating_add(self, other: Self) -> Self {
        Self(self.0.saturating_add(other.0))
    }

    /// `self - other`, or zero when `other` is longer.
    pub const fn saturating_sub(self, other: Self) -> Self {
        Self(self.0.saturating_sub(other.0))
    }

    /// This duration split evenly over `parts` parts (rounded down); `parts` of zero gives
    /// the whole duration.
    pub const fn div_parts(self, parts: u64) -> Self {
        match self.0.checked_div(parts) {
            Some(part) => Self(part),
            None => self,
        }
    }
}

impl Add for SimDuration {
    type Output = Self;
    fn add(self, other: Self) -> Self {
        self.saturating_add(other)
    }
}

impl AddAssign for SimDuration {
    fn add_assign(&mut self, other: Self) {
        *self = self.saturating_add(other);
    }
}

impl std::iter::Sum for SimDuration {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::ZERO, Add::add)
    }
}

impl fmt::Display for SimDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0 as f64;
        match self.0 {
            0..1_000 => write!(f, "{} ns", self.0),
            1_000..1_000_000 => write!(f, "{:.3} us", ns / 1e3),
            1_000_000..1_000_000_000 => write!(f, "{:.3} ms", ns / 1e6),
            _ => write!(f, "{:.3} s", ns / 1e9),
        }
    }
}

/// A point in simulated time, measured from the start of the simulation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimInstant(u64);

impl SimInstant {
    /// The start of the simulation.
    pub const START: Self = Self(0);

    /// The instant `since_start` after the start.
    pub const fn from_start(since_start: SimDuration) -> Self {
        Self(since_start.0)
    }

    /// Time elapsed since the start.
    pub const fn since_start(self) -> SimDuration {
        SimDuration(self.0)
    }

    /// Time from `earlier` to `self`, or zero if `earlier` is later.
    pub const fn duration_since(self, earlier: Self) -> SimDuration {
        SimDuration(self.0.saturating_sub(earlier.0))
    }
}

impl Add<SimDuration> for SimInstant {
    type Output = Self;
    fn add(self, d: SimDuration) -> Self {
        Self(self.0.saturating_add(d.0))
    }
}

impl fmt::Display for SimInstant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t+{}", self.since_start())
    }
}

/// A clock that starts at zero and moves only when advanced.
#[derive(Clone, Debug, Default)]
pub struct VirtualClock {
    now: SimInstant,
}

impl VirtualClock {
    /// A clock at the start of the simulation.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current simulated instant.
    pub fn now(&self) -> SimInstant {
        self.now
    }

    /// Moves the clock forward by `d`; returns the new instant.
    pub fn advance(&mut self, d: SimDuration) -> SimInstant {
        self.now = self.now + d;
        self.now
    }

    /// Moves the clock to `t`, or leaves it where it is if `t` is in the past (time never
    /// goes backwards); returns the new instant.
    pub fn advance_to(&mut self, t: SimInstant) -> SimInstant {
        self.now = self.now.max(t);
        self.now
    }
}

/// One scheduled event: its due time, its sequence number (ties break by scheduling order)
/// and what it carries.
#[derive(Debug)]
struct Entry<T> {
    due: SimInstant,
    seq: u64,
    payload: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Entry<T> {
    // Reversed so the std max-heap pops the earliest (due, seq) first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

/// Timed events, delivered in due order (FIFO among events due at the same instant).
#[derive(Debug)]
pub struct EventQueue<T> {
    heap: BinaryHeap<Entry<T>>,
    next_seq: u64,
}

impl<T> Default for EventQueue<T> {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::new(),
            next_seq: 0,
        }
    }
}

impl<T> EventQueue<T> {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Schedules `payload` at `due`.
    pub fn schedule(&mut self, due: SimInstant, payload: T) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry { due, seq, payload });
    }

    /// Schedules `payload` `delay` after the clock's current instant.
    pub fn schedule_after(&mut self, clock: &VirtualClock, delay: SimDuration, payload: T) {
        self.schedule(clock.now() + delay, payload);
    }

    /// Takes the earliest event and advances `clock` to its due time (never backwards).
    pub fn pop(&mut self, clock: &mut VirtualClock) -> Option<(SimInstant, T)> {
        let entry = self.heap.pop()?;
        let at = clock.advance_to(entry.due);
        Some((at, entry.payload))
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no event is pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secs_convert_to_rounded_nanos_and_clamp() {
        assert_eq!(SimDuration::from_secs_f64(1.5e-6).as_nanos(), 1_500);
        assert_eq!(SimDuration::from_secs_f64(2.4e-9).as_nanos(), 2);
        assert_eq!(SimDuration::from_secs_f64(-1.0), SimDuration::ZERO);
        assert_eq!(SimDuration::from_secs_f64(f64::NAN), SimDuration::ZERO);
        assert_eq!(SimDuration::from_secs_f64(1e30).as_nanos(), u64::MAX);
    }

    #[test]
    fn display_picks_a_readable_unit() {
        assert_eq!(SimDuration::from_nanos(999).to_string(), "999 ns");
        assert_eq!(SimDuration::from_micros(12).to_string(), "12.000 us");
        assert_eq!(SimDuration::from_millis(3).to_string(), "3.000 ms");
        assert_eq!(SimDuration::from_millis(2_500).to_string(), "2.500 s");
    }

    #[test]
    fn clock_never_goes_backwards() {
        let mut clock = VirtualClock::new();
        clock.advance(SimDuration::from_micros(5));
        clock.advance_to(SimInstant::from_start(SimDuration::from_micros(2)));
        assert_eq!(clock.now().since_start(), SimDuration::from_micros(5));
    }

    #[test]
    fn events_pop_in_due_order_and_fifo_on_ties() {
        let mut clock = VirtualClock::new();
        let mut q = EventQueue::new();
        let at = |us| SimInstant::from_start(SimDuration::from_micros(us));
        q.schedule(at(30), "c");
        q.schedule(at(10), "a1");
        q.schedule(at(20), "b");
        q.schedule(at(10), "a2");
        let order: Vec<_> = std::iter::from_fn(|| q.pop(&mut clock)).collect();
        assert_eq!(
            order,
            vec![(at(10), "a1"), (at(10), "a2"), (at(20), "b"), (at(30), "c")]
        );
        assert_eq!(clock.now(), at(30));
        assert!(q.is_empty());
    }
}
