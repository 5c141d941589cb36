// SPDX-License-Identifier: Apache-2.0
//! The device's command queue as the backend keeps it: the commands outstanding (running or
//! waiting) with their modelled service times, bounded by the profile's queue depth.
//!
//! A new command's wait is what the sim's FIFO model gives behind the outstanding ones
//! ([`quarry_sim::wait_behind`] over the device's engines): it counts each outstanding command
//! whole, as if they had all just arrived, which overstates the wait behind a command that is
//! part done. A full queue refuses at once; the caller answers `503 SlowDown`.

use std::sync::{Mutex, MutexGuard};

use quarry_sim::{SimDuration, wait_behind};

use crate::backend::Load;

/// Outstanding commands of one device.
#[derive(Debug)]
pub(super) struct Commands {
    engines: u32,
    depth: u32,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    outstanding: Vec<(u64, SimDuration)>,
}

/// One admitted command; leaves the queue when dropped.
#[derive(Debug)]
pub(super) struct Command<'a> {
    id: u64,
    /// Its modelled wait behind the commands ahead of it.
    pub(super) wait: SimDuration,
    commands: &'a Commands,
}

/// The queue held `depth` commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct QueueFull {
    pub(super) depth: u32,
}

impl Commands {
    pub(super) fn new(engines: u32, depth: u32) -> Self {
        Self {
            engines: engines.max(1),
            depth: depth.max(1),
            state: Mutex::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Admits a command expected to keep an engine busy for `service`.
    pub(super) fn admit(&self, service: SimDuration) -> Result<Command<'_>, QueueFull> {
        let mut state = self.state();
        if state.outstanding.len() >= self.depth as usize {
            return Err(QueueFull { depth: self.depth });
        }
        let wait = self.wait_behind(&state);
        let id = state.next_id;
        state.next_id += 1;
        state.outstanding.push((id, service));
        Ok(Command {
            id,
            wait,
            commands: self,
        })
    }

    /// The wait a command submitted now would have.
    pub(super) fn wait_now(&self) -> SimDuration {
        self.wait_behind(&self.state())
    }

    fn wait_behind(&self, state: &State) -> SimDuration {
        let ahead: Vec<SimDuration> = state.outstanding.iter().map(|&(_, s)| s).collect();
        wait_behind(self.engines, &ahead)
    }

    /// Commands running (one per engine at most) and waiting.
    pub(super) fn load(&self) -> Load {
        let outstanding = self.state().outstanding.len();
        let capacity = self.engines as usize;
        Load {
            running: outstanding.min(capacity),
            capacity,
            queued: outstanding.saturating_sub(capacity),
        }
    }
}

impl Drop for Command<'_> {
    fn drop(&mut self) {
        let id = self.id;
        self.commands.state().outstanding.retain(|&(i, _)| i != id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(v: u64) -> SimDuration {
        SimDuration::from_micros(v)
    }

    #[test]
    fn commands_wait_behind_the_outstanding_ones_and_leave_when_dropped() {
        let q = Commands::new(1, 8);
        let a = q.admit(us(10)).unwrap();
        let b = q.admit(us(5)).unwrap();
        assert_eq!(a.wait, SimDuration::ZERO);
        assert_eq!(b.wait, us(10));
        assert_eq!(q.wait_now(), us(15));
        assert_eq!(q.load().running, 1);
        assert_eq!(q.load().queued, 1);
        drop(a);
        assert_eq!(q.wait_now(), us(5));
        drop(b);
        assert_eq!(q.wait_now(), SimDuration::ZERO);
    }

    #[test]
    fn a_full_queue_refuses_until_a_command_leaves() {
        let q = Commands::new(2, 2);
        let a = q.admit(us(1)).unwrap();
        let _b = q.admit(us(1)).unwrap();
        assert_eq!(q.admit(us(1)).unwrap_err(), QueueFull { depth: 2 });
        drop(a);
        assert!(q.admit(us(1)).is_ok());
    }
}
