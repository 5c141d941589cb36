// SPDX-License-Identifier: Apache-2.0
//! systemd integration: `Type=notify` readiness, `STOPPING=1`, and the watchdog.
//!
//! Every call is a no-op when the daemon does not run under systemd (no `NOTIFY_SOCKET`).

use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// Tells systemd the daemon is ready to serve, with a status line for `systemctl status`.
pub fn notify_ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells systemd the daemon is shutting down.
pub fn notify_stopping() {
    send(&[
        NotifyState::Stopping,
        NotifyState::Status("draining requests"),
    ]);
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(false, states) {
        warn!(%error, "failed to notify systemd");
    }
}

/// The watchdog interval systemd asked for (`WatchdogSec=`), if any.
///
/// As `sd_watchdog_enabled(3)` specifies: `WATCHDOG_USEC` holds the interval, and
/// `WATCHDOG_PID`, when set, must name this process (it is unset when the service manager
/// leaves the choice to the main process).
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// Pings the watchdog at half its interval until `shutdown`. The ping runs on the async
/// runtime, so a stalled runtime stops the pings and systemd restarts the daemon.
pub async fn run_watchdog(interval: Duration, shutdown: CancellationToken) {
    let period = interval / 2;
    debug!(?period, "systemd watchdog enabled");
    let mut ticker = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = ticker.tick() => send(&[NotifyState::Watchdog]),
            () = shutdown.cancelled() => return,
        }
    }
}
