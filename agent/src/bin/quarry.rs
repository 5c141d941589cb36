// SPDX-License-Identifier: Apache-2.0
//! `quarry`: the operator CLI. Thin: parse, run, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use quarry_agent::cli::{self, Cli};

#[allow(
    clippy::print_stderr,
    reason = "the binary reports errors to its terminal"
)]
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match cli::run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut msg = format!("error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                msg.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("{msg}");
            match e {
                cli::CliError::Usage(_) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
