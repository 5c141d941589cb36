// SPDX-License-Identifier: Apache-2.0
//! CPU time of a process, from `/proc/<pid>/stat` (user + system, in clock ticks of 10 ms:
//! `USER_HZ` is 100 on every Linux architecture the harness runs on).

use std::time::Duration;

use anyhow::{Context as _, Result};

/// Clock ticks per second of the `utime`/`stime` fields (`USER_HZ`).
const TICKS_PER_SECOND: u64 = 100;

/// User plus system CPU time `pid` has used so far (all its threads).
pub fn process_cpu(pid: u32) -> Result<Duration> {
    read_stat(&format!("/proc/{pid}/stat"))
}

/// The same for this process.
pub fn own_cpu() -> Result<Duration> {
    read_stat("/proc/self/stat")
}

/// User plus system CPU time of the calling thread alone.
pub fn thread_cpu() -> Result<Duration> {
    read_stat("/proc/thread-self/stat")
}

fn read_stat(path: &str) -> Result<Duration> {
    let text = std::fs::read_to_string(path).with_context(|| format!("failed to read {path}"))?;
    parse_stat(&text).with_context(|| format!("unexpected format of {path}"))
}

/// `utime + stime` of one `stat` line. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from the last `)`.
fn parse_stat(text: &str) -> Option<Duration> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks = utime + stime;
    Some(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_counted_after_the_command_name() {
        let line = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 \
                    3 0 100 0 0";
        assert_eq!(parse_stat(line), Some(Duration::from_millis(3800)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn own_cpu_reads() {
        assert!(own_cpu().is_ok());
        assert!(thread_cpu().is_ok());
    }
}
