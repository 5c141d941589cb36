// SPDX-License-Identifier: Apache-2.0
//! When a failed event is tried again.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Delivery attempts and the backoff between them (`[events]` in quarry.toml).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventConfig {
    /// Attempts before an event moves to the dead-letter list.
    pub max_attempts: u32,
    /// Wait after the first failure; doubles with each further failure.
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    /// The longest wait between attempts.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// Events delivered at once.
    pub concurrency: usize,
}

impl Default for EventConfig {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            concurrency: 4,
        }
    }
}

impl EventConfig {
    /// Problems with the values, each naming the key.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !(1..=100).contains(&self.max_attempts) {
            out.push(format!(
                "events.max_attempts = {} must be between 1 and 100",
                self.max_attempts
            ));
        }
        if !(1..=256).contains(&self.concurrency) {
            out.push(format!(
                "events.concurrency = {} must be between 1 and 256",
                self.concurrency
            ));
        }
        if self.backoff_base > self.backoff_max {
            out.push("events.backoff_base must not exceed events.backoff_max".to_owned());
        }
        out
    }

    /// The wait after failed attempt number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(20);
        self.backoff_base
            .saturating_mul(factor)
            .min(self.backoff_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_ceiling() {
        let c = EventConfig {
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(5),
            ..EventConfig::default()
        };
        assert_eq!(c.backoff(1), Duration::from_secs(1));
        assert_eq!(c.backoff(2), Duration::from_secs(2));
        assert_eq!(c.backoff(3), Duration::from_secs(4));
        assert_eq!(c.backoff(4), Duration::from_secs(5));
        assert_eq!(c.backoff(60), Duration::from_secs(5));
    }
}
