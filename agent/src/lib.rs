// SPDX-License-Identifier: Apache-2.0
#![forbid(unsafe_code)]
//! # quarry-agent
//!
//! The node agent: everything behind the `quarryd` daemon and the `quarry` CLI. The binaries
//! are thin; this library holds what they do so it can be tested.
//!
//! ## Overview
//!
//! - [`config`]: `quarry.toml`, its environment overrides and validation.
//! - [`credentials`]: root S3 keys and the admin token (env, config, or generated).
//! - [`wiring`]: the composition root that starts a node ([`wiring::start`]).
//! - [`server`]: HTTP listeners with a bounded graceful drain.
//! - [`simulated`]: simulated devices (`[[devices]]`) as backends.
//! - [`admin`]: `/health`, `/metrics` and the JSON admin API.
//! - [`systemd`], [`telemetry`]: service-manager and logging integration.
//! - [`cli`]: the `quarry` command.
//!
//! ## Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), quarry_agent::wiring::StartError> {
//! use quarry_agent::config::{ProcessEnv, QuarryConfig};
//! let node = quarry_agent::wiring::start(QuarryConfig::default(), &ProcessEnv).await?;
//! println!("S3 on {}", node.s3_addr);
//! node.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! ## Design notes
//!
//! Start-up is one linear function (Garage's `run_server` style): reading it top to bottom
//! tells what a node consists of.

pub mod admin;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod devices;
pub mod server;
pub mod simulated;
pub mod systemd;
pub mod telemetry;
pub mod wiring;
