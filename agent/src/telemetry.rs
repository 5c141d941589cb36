// SPDX-License-Identifier: Apache-2.0
//! The one place that installs a tracing subscriber.
//!
//! Text lines by default, without ANSI colours when stderr is not a terminal and without
//! timestamps under journald (which adds its own); JSON lines on request. `RUST_LOG`, when
//! set, overrides the configured level.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{EnvSource, LogConfig, LogFormat};

/// Installs the global subscriber. Call once, first thing in `main`.
pub fn init(cfg: &LogConfig, env: &dyn EnvSource) {
    let directive = env.var("RUST_LOG").unwrap_or_else(|| cfg.level.clone());
    let filter = EnvFilter::try_new(&directive).unwrap_or_else(|_| EnvFilter::new("info"));
    let under_journald = env.var("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match cfg.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text if under_journald => builder.with_ansi(false).without_time().try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    // A second init (tests calling `run` twice) keeps the first subscriber.
    drop(result);
}
