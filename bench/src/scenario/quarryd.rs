// SPDX-License-Identifier: Apache-2.0
//! A `quarryd` child process: started on a fresh data dir, watched, and stopped with SIGTERM.
//!
//! Ports come from binding `127.0.0.1:0` and releasing the socket just before the start; a
//! race with another program is possible but shows up as a start failure, never as numbers
//! from the wrong server. The child is killed if the harness drops it without `stop` (an
//! error mid-run), so no daemon outlives the harness.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use rustix::process::{Pid, Signal, kill_process};
use tokio::process::{Child, Command};
use tokio::time::Instant;
use url::Url;

use super::machine::RssSample;
use super::s3::S3Endpoint;

/// The admin token the harness starts quarryd with (`QUARRY_ADMIN_TOKEN`).
const ADMIN_TOKEN: &str = "quarry-bench-admin-token-not-for-production";
/// How long quarryd may take to answer `/health`.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long quarryd may take to exit after SIGTERM before it is killed: longer than its
/// default 30 s drain grace, so that a stuck request shows up as a slow stop, not a kill.
const STOP_TIMEOUT: Duration = Duration::from_secs(45);

/// A running quarryd.
#[derive(Debug)]
pub struct QuarrydProcess {
    child: Child,
    pid: u32,
    /// The S3 endpoint with the root keys the harness set.
    pub endpoint: S3Endpoint,
    /// The admin listener (`/health`, `/metrics` and the `/v1/` API).
    pub admin: SocketAddr,
    /// The bearer token of the `/v1/` admin API, which the harness sets.
    pub admin_token: String,
    /// quarryd's stdout and stderr.
    pub log_path: PathBuf,
}

impl QuarrydProcess {
    /// Starts `binary` on `data_dir`, logging to `log_path`, and waits until `/health`
    /// answers 200.
    pub async fn start(binary: &Path, data_dir: &Path, log_path: &Path) -> Result<Self> {
        Self::start_with_config(binary, data_dir, log_path, None).await
    }

    /// Like [`Self::start`], with `--config config` when given.
    pub async fn start_with_config(
        binary: &Path,
        data_dir: &Path,
        log_path: &Path,
        config: Option<&Path>,
    ) -> Result<Self> {
        let [s3, admin] = free_ports()?;
        let endpoint = S3Endpoint {
            url: format!("http://{s3}")
                .parse()
                .context("S3 listen address is not a URL")?,
            region: "us-east-1".to_owned(),
            access_key: "QUARRYBENCHACCESSKEY".to_owned(),
            secret_key: "quarry-bench-secret-key-not-for-production".to_owned(),
        };
        let log = std::fs::File::create(log_path)
            .with_context(|| format!("failed to create quarryd log {}", log_path.display()))?;
        let mut command = Command::new(binary);
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        let child = command
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg(s3.to_string())
            .arg("--admin-listen")
            .arg(admin.to_string())
            .env("QUARRY_ROOT_ACCESS_KEY", &endpoint.access_key)
            .env("QUARRY_ROOT_SECRET_KEY", &endpoint.secret_key)
            .env("QUARRY_ADMIN_TOKEN", ADMIN_TOKEN)
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("failed to share the quarryd log")?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("failed to start {}", binary.display()))?;
        let pid = child.id().context("quarryd exited at once")?;
        let mut process = Self {
            child,
            pid,
            endpoint,
            admin,
            admin_token: ADMIN_TOKEN.to_owned(),
            log_path: log_path.to_owned(),
        };
        process.wait_healthy().await?;
        Ok(process)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// quarryd's resident memory now.
    pub fn rss(&self) -> Result<RssSample> {
        RssSample::read(self.pid)
    }

    async fn wait_healthy(&mut self) -> Result<()> {
        let health: Url = format!("http://{}/health", self.admin)
            .parse()
            .context("bad admin address")?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().context("failed to poll quarryd")? {
                bail!(
                    "quarryd exited with {status} before it was healthy; log:\n{}",
                    self.log_tail()
                );
            }
            let last = match client.get(health.clone()).send().await {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => format!("/health answered {}", response.status()),
                Err(e) => format!("/health failed: {e}"),
            };
            if Instant::now() >= deadline {
                bail!(
                    "quarryd not healthy after {START_TIMEOUT:?} ({last}); log:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends SIGTERM and waits for the exit (SIGKILL after 30 s). Returns the exit status and
    /// how long the shutdown took.
    pub async fn stop(mut self) -> Result<(ExitStatus, Duration)> {
        let pid = i32::try_from(self.pid)
            .ok()
            .and_then(Pid::from_raw)
            .context("invalid quarryd pid")?;
        let start = Instant::now();
        kill_process(pid, Signal::TERM).context("failed to send SIGTERM to quarryd")?;
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(status) => Ok((
                status.context("failed to wait for quarryd")?,
                start.elapsed(),
            )),
            Err(_) => {
                self.child.kill().await.context("failed to kill quarryd")?;
                bail!(
                    "quarryd ignored SIGTERM for {STOP_TIMEOUT:?} and was killed; log:\n{}",
                    self.log_tail()
                )
            }
        }
    }

    /// The last lines of quarryd's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

/// Two distinct ports on 127.0.0.1 that were free a moment ago (both sockets are held until
/// both are known, so the kernel cannot hand out the same port twice).
fn free_ports() -> Result<[SocketAddr; 2]> {
    let bind = || TcpListener::bind("127.0.0.1:0").context("failed to find a free port");
    let listeners = [bind()?, bind()?];
    let addr = |l: &TcpListener| l.local_addr().context("failed to read a free port");
    Ok([addr(&listeners[0])?, addr(&listeners[1])?])
}
