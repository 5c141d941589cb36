// SPDX-License-Identifier: Apache-2.0
//! `quarry.toml`: the node's configuration, composed from each crate's typed config.
//!
//! `Default` is the embedded default, so `quarryd` runs with no file at all. Loading is
//! parse, then validate once ([`load`]), collecting every problem before failing. Every option
//! is documented in `docs/config.md`; keep the two in step.

mod devices;
mod env;
mod file;
mod secret;
mod validate;

pub use self::devices::{DeviceEntry, DeviceKind, PlacementEntry, placement_map};
pub use self::env::{EnvSource, MapEnv, ProcessEnv};
pub use self::file::{load, parse_str};
pub use self::secret::Secret;
pub use self::validate::validate;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;
use quarry_interceptor::config::{S3Limits, StoreLimits};
use quarry_interceptor::events::EventConfig;
use quarry_offload::OffloadConfig;
use serde::{Deserialize, Serialize};

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuarryConfig {
    /// Listeners, data directory and shutdown.
    pub server: ServerConfig,
    /// Logging.
    pub log: LogConfig,
    /// The S3 endpoint: credentials, anonymous access, request limits.
    pub s3: S3Config,
    /// The embedded store's limits.
    pub store: StoreLimits,
    /// The admin API.
    pub admin: AdminConfig,
    /// Functions: the WebAssembly worker pool and the ceilings on every function's limits.
    pub functions: OffloadConfig,
    /// Asynchronous trigger events: delivery attempts, backoff and concurrency.
    pub events: EventConfig,
    /// `[[devices]]`: simulated devices (CSD, FPGA card, GPU) the scheduler may place jobs on.
    pub devices: Vec<DeviceEntry>,
    /// `[[placement]]`: buckets whose objects live on a CSD's namespace.
    pub placement: Vec<PlacementEntry>,
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Where the store keeps its index and data files.
    pub data_dir: PathBuf,
    /// S3 listener.
    pub listen: SocketAddr,
    /// Admin API and `/metrics` listener.
    pub admin_listen: SocketAddr,
    /// How long SIGTERM waits for in-flight requests before closing connections.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Largest request head (request line plus headers) the S3 listener accepts.
    pub max_header_bytes: ByteSize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./quarry-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 9000)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9001)),
            shutdown_grace: Duration::from_secs(30),
            max_header_bytes: ByteSize::kib(64),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines without timestamps or colours (journald adds both).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter directive (`info`, `quarry_interceptor=debug,info`); `RUST_LOG`
    /// overrides it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".to_owned(),
        }
    }
}

/// `[s3]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// Root access key; `QUARRY_ROOT_ACCESS_KEY` overrides it.
    pub access_key: Option<String>,
    /// Root secret key; `QUARRY_ROOT_SECRET_KEY` overrides it.
    pub secret_key: Option<Secret>,
    /// Buckets that unsigned requests may read (GET, HEAD, list). Empty: no anonymous access.
    pub anonymous_read_buckets: Vec<String>,
    /// Request limits.
    pub limits: S3Limits,
}

/// `[admin]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Bearer token of the admin API; `QUARRY_ADMIN_TOKEN` overrides it.
    pub token: Option<Secret>,
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("failed to read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema (unknown keys are named here).
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, naming the key and position.
        message: String,
    },
    /// The values are inconsistent; every problem is listed with its key and fix.
    #[error("invalid configuration:\n  - {}", problems.join("\n  - "))]
    Invalid {
        /// One line per problem.
        problems: Vec<String>,
    },
}
