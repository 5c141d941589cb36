// SPDX-License-Identifier: Apache-2.0
//! `quarryd`: the Quarry storage-node daemon. Thin: parse flags, load config, start, wait
//! for a signal, drain.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use quarry_agent::config::{self, ProcessEnv, QuarryConfig};
use quarry_agent::{systemd, telemetry, wiring};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info};

/// Default location of the node's config file; used when it exists and --config is not given.
const SYSTEM_CONFIG: &str = "/etc/quarry/quarry.toml";

/// quarryd: serve objects over S3 and run functions next to them.
#[derive(Debug, Parser)]
#[command(name = "quarryd", version, about)]
struct Args {
    /// Config file (default: /etc/quarry/quarry.toml if it exists, else the embedded default).
    #[arg(long, env = "QUARRY_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (overrides server.data_dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// S3 listen address (overrides server.listen).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Admin API and /metrics listen address (overrides server.admin_listen).
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// Validate the configuration, print the effective one (secrets redacted), and exit.
    #[arg(long)]
    check_config: bool,
}

fn load(args: &Args) -> anyhow::Result<QuarryConfig> {
    let path = args.config.clone().or_else(|| {
        let system = PathBuf::from(SYSTEM_CONFIG);
        system.exists().then_some(system)
    });
    let mut cfg = match &path {
        Some(path) => config::load(path)?,
        None => QuarryConfig::default(),
    };
    if let Some(dir) = &args.data_dir {
        cfg.server.data_dir = dir.clone();
    }
    if let Some(addr) = args.listen {
        cfg.server.listen = addr;
    }
    if let Some(addr) = args.admin_listen {
        cfg.server.admin_listen = addr;
    }
    Ok(cfg)
}

#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the binary reports to its terminal"
)]
fn main() -> ExitCode {
    let args = Args::parse();
    let cfg = match load(&args) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("quarryd: {e:#}");
            return ExitCode::from(2);
        }
    };
    if args.check_config {
        return match config::validate(&cfg, &ProcessEnv) {
            Ok(()) => match toml::to_string_pretty(&cfg) {
                Ok(text) => {
                    println!("# effective configuration (valid)\n{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("quarryd: failed to print the configuration: {e}");
                    ExitCode::FAILURE
                }
            },
            Err(e) => {
                eprintln!("quarryd: {e}");
                ExitCode::from(2)
            }
        };
    }
    telemetry::init(&cfg.log, &ProcessEnv);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("quarryd: failed to start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            eprintln!("quarryd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(cfg: QuarryConfig) -> anyhow::Result<()> {
    let mut term =
        signal(SignalKind::terminate()).context("failed to install the SIGTERM handler")?;
    let mut int =
        signal(SignalKind::interrupt()).context("failed to install the SIGINT handler")?;
    let node = wiring::start(cfg, &ProcessEnv).await?;
    let which = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    info!(signal = which, "shutting down");
    systemd::notify_stopping();
    node.shutdown().await;
    info!("stopped");
    Ok(())
}
