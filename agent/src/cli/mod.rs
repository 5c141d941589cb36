// SPDX-License-Identifier: Apache-2.0
//! The `quarry` command: node status over the admin API, and object basics over S3 like any
//! client (`ls`, `put` and `get` with progress bars, `rm`, `mb`, `rb`).
//!
//! Endpoints and keys come from flags, then environment variables, then the files a local
//! `quarryd` generated in its data directory, so on the node itself no setup is needed.

mod s3;
mod status;
mod target;
mod transfer;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use self::s3::S3Client;
use self::target::ObjectPath;

/// A failed CLI command: the message names what went wrong and, where it can, the fix.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A usage problem the user can fix.
    #[error("{0}")]
    Usage(String),
    /// The server answered with an error.
    #[error("{code}: {message}")]
    Server {
        /// S3 error code or HTTP status.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The request could not be sent or the response read.
    #[error("request to {url} failed; is quarryd running there?")]
    Http {
        /// The endpoint.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// Local file I/O failed.
    #[error("failed to {op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// `quarry`: operate a Quarry node.
#[derive(Debug, Parser)]
#[command(name = "quarry", version, about = "Operate a Quarry storage node")]
pub struct Cli {
    /// S3 endpoint of the node.
    #[arg(
        long,
        env = "QUARRY_ENDPOINT",
        default_value = "http://127.0.0.1:9000",
        global = true
    )]
    pub endpoint: String,
    /// Admin API of the node.
    #[arg(
        long,
        env = "QUARRY_ADMIN_URL",
        default_value = "http://127.0.0.1:9001",
        global = true
    )]
    pub admin_url: String,
    /// Admin bearer token (default: DATA_DIR/admin-token).
    #[arg(
        long,
        env = "QUARRY_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub admin_token: Option<String>,
    /// S3 access key (default: QUARRY_ROOT_ACCESS_KEY, then DATA_DIR/root-credentials.toml).
    #[arg(long, env = "AWS_ACCESS_KEY_ID", global = true)]
    pub access_key: Option<String>,
    /// S3 secret key (default: QUARRY_ROOT_SECRET_KEY, then DATA_DIR/root-credentials.toml).
    #[arg(
        long,
        env = "AWS_SECRET_ACCESS_KEY",
        hide_env_values = true,
        global = true
    )]
    pub secret_key: Option<String>,
    /// Data directory of a local quarryd, used to find generated keys and token.
    #[arg(
        long,
        env = "QUARRY_DATA_DIR",
        default_value = "./quarry-data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show endpoints, version, uptime and store usage.
    Status {
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// List buckets, or objects in BUCKET[/PREFIX].
    Ls {
        /// BUCKET or BUCKET/PREFIX; omit to list buckets.
        path: Option<String>,
        /// List every key under the prefix instead of grouping by "/".
        #[arg(short, long)]
        recursive: bool,
    },
    /// Upload FILE to BUCKET/KEY (KEY defaults to the file name).
    Put {
        /// Local file.
        file: PathBuf,
        /// BUCKET/KEY or BUCKET/.
        dest: String,
    },
    /// Download BUCKET/KEY to FILE (default: the key's last component; "-" for stdout).
    Get {
        /// BUCKET/KEY.
        source: String,
        /// Local file.
        file: Option<PathBuf>,
    },
    /// Delete BUCKET/KEY.
    Rm {
        /// BUCKET/KEY.
        path: String,
    },
    /// Create a bucket.
    Mb {
        /// Bucket name.
        bucket: String,
    },
    /// Delete an empty bucket.
    Rb {
        /// Bucket name.
        bucket: String,
    },
}

/// Runs the parsed command, writing results to stdout.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    match &cli.command {
        Command::Status { json } => status::run(&cli, *json).await,
        Command::Ls { path: None, .. } => status::list_buckets(&cli).await,
        Command::Ls {
            path: Some(path),
            recursive,
        } => {
            let client = S3Client::from_cli(&cli)?;
            let (bucket, prefix) = target::split_bucket(path)?;
            client.list(&bucket, &prefix, *recursive).await
        }
        Command::Put { file, dest } => {
            let client = S3Client::from_cli(&cli)?;
            let dest = ObjectPath::parse_dest(dest, file)?;
            transfer::put(&client, file, &dest).await
        }
        Command::Get { source, file } => {
            let client = S3Client::from_cli(&cli)?;
            let source = ObjectPath::parse(source)?;
            transfer::get(&client, &source, file.as_deref()).await
        }
        Command::Rm { path } => {
            S3Client::from_cli(&cli)?
                .delete_object(&ObjectPath::parse(path)?)
                .await
        }
        Command::Mb { bucket } => S3Client::from_cli(&cli)?.create_bucket(bucket).await,
        Command::Rb { bucket } => S3Client::from_cli(&cli)?.delete_bucket(bucket).await,
    }
}
