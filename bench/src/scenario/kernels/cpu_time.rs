// SPDX-License-Identifier: Apache-2.0
//! The CPU time of the calling thread, for figures "per core while it runs".
//!
//! On a machine shared with other work the measuring thread waits for a core now and then, and
//! wall-clock throughput counts the waits; the thread's own CPU time does not. Linux reports
//! it, in nanoseconds, as the first field of `/proc/thread-self/schedstat`.

/// Seconds the calling thread has run on a CPU, or `None` where the kernel does not say.
pub fn thread_cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(nanos as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_with_work() {
        let Some(before) = thread_cpu_seconds() else {
            return; // not Linux, or no schedstat: nothing to check
        };
        // Busy for 300 ms of wall time: the scheduler's ticks see this thread run.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
        }
        let after = thread_cpu_seconds().expect("read once, readable again");
        assert!(after > before, "{before} -> {after} ({x})");
    }
}
