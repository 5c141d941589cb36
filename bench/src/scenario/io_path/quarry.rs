// SPDX-License-Identifier: Apache-2.0
//! The Quarry rows: quarryd stores the file once (one streamed PUT) and serves it back with
//! plain GETs and GETs through the grep kernel (count mode), which quarryd runs on the body.
//!
//! The object quarryd stores is the file of the scenario: its data file is what fio and the
//! baselines read, and what the in-process store opens after quarryd stopped.
//!
//! quarryd runs twice on the same data dir, both times with its default `direct_io = "auto"`
//! (each large body read with `O_DIRECT` unless it is mostly in the page cache): for the cold
//! rows its data files are evicted before every run, so it reads with `O_DIRECT`; for the warm
//! rows they are read once through the page cache first, so it serves them from memory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use futures::StreamExt as _;
use reqwest::Client;
use rusty_s3::{Bucket, Credentials, S3Action as _, UrlStyle};

use super::cpu::{own_cpu, process_cpu};
use super::data::{self, NEEDLE, expected_count};
use super::report::Sample;
use crate::scenario::page_cache::{evict_path, files_under};

/// Reads every data file under `data_dir` once, start to end, through the page cache.
pub fn warm_files(data_dir: &Path) -> Result<()> {
    for file in files_under(&data_dir.join("data"))? {
        let mut f = std::fs::File::open(&file)
            .with_context(|| format!("failed to open {}", file.display()))?;
        std::io::copy(&mut f, &mut std::io::sink())
            .with_context(|| format!("failed to read {}", file.display()))?;
    }
    Ok(())
}
use crate::scenario::quarryd::QuarrydProcess;
use crate::scenario::s3::S3Endpoint;

/// The bucket and key the file is stored under.
const BUCKET: &str = "io-path";
const KEY: &str = "file";
/// How long one request may take (a 4 GiB PUT with fsync on a slow disk included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(900);
/// How long a presigned URL stays valid.
const URL_VALIDITY: Duration = Duration::from_secs(3600);

/// What a GET asks for.
#[derive(Debug, Clone, Copy)]
pub enum Get {
    /// The body, read and dropped by the client.
    Plain,
    /// `x-quarry-function=grep` with `pattern` and `mode=count`: the kernel scans the body in
    /// quarryd and answers with the count.
    GrepCount,
}

/// quarryd's store settings, as TOML (its defaults, spelled out).
pub const STORE_CONFIG: &str = "[store]\nread_engine = \"auto\"\ndirect_io = \"auto\"\n";

/// A running quarryd holding the file, with a client for it.
pub struct Quarry {
    process: QuarrydProcess,
    client: Client,
    bucket: Bucket,
    credentials: Credentials,
    data_dir: PathBuf,
    size: u64,
}

impl std::fmt::Debug for Quarry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quarry")
            .field("process", &self.process)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl Quarry {
    /// Starts quarryd on `data_dir`, its config and log in `work` named after `phase`.
    pub async fn start(
        binary: &Path,
        work: &Path,
        data_dir: &Path,
        phase: &str,
        size: u64,
    ) -> Result<Self> {
        let config = work.join(format!("quarryd-{phase}.toml"));
        std::fs::write(&config, STORE_CONFIG)
            .with_context(|| format!("failed to write {}", config.display()))?;
        let log = work.join(format!("quarryd-{phase}.log"));
        let process =
            QuarrydProcess::start_with_config(binary, data_dir, &log, Some(&config)).await?;
        let client = Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("failed to build the HTTP client")?;
        let endpoint: &S3Endpoint = &process.endpoint;
        let bucket = Bucket::new(
            endpoint.url.clone(),
            UrlStyle::Path,
            BUCKET.to_owned(),
            endpoint.region.clone(),
        )
        .map_err(|e| anyhow::anyhow!("invalid S3 endpoint {}: {e:?}", endpoint.url))?;
        let credentials =
            Credentials::new(endpoint.access_key.clone(), endpoint.secret_key.clone());
        Ok(Self {
            process,
            client,
            bucket,
            credentials,
            data_dir: data_dir.to_owned(),
            size,
        })
    }

    /// Creates the bucket and PUTs the scenario's bytes into it (generated, streamed), then
    /// returns the one data file that holds them: every other reader reads that file.
    pub async fn store(&self) -> Result<PathBuf> {
        let url = self
            .bucket
            .create_bucket(&self.credentials)
            .sign(URL_VALIDITY);
        let response = self
            .client
            .put(url)
            .send()
            .await
            .context("CreateBucket failed")?;
        ensure!(
            response.status().is_success(),
            "CreateBucket answered {}",
            response.status()
        );
        let url = self
            .bucket
            .put_object(Some(&self.credentials), KEY)
            .sign(URL_VALIDITY);
        let response = self
            .client
            .put(url)
            .header(reqwest::header::CONTENT_LENGTH, self.size)
            .body(reqwest::Body::wrap_stream(data::stream(self.size)?))
            .send()
            .await
            .context("PUT of the file failed")?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            bail!(
                "PUT answered {status}: {body}; quarryd's log:\n{}",
                self.process.log_tail()
            );
        }
        let files: Vec<PathBuf> = files_under(&self.data_dir.join("data"))?
            .into_iter()
            .filter(|f| std::fs::metadata(f).is_ok_and(|m| m.len() == self.size))
            .collect();
        match files.as_slice() {
            [one] => Ok(one.clone()),
            other => bail!(
                "expected one {}-byte data file under {}, found {other:?}",
                self.size,
                self.data_dir.display()
            ),
        }
    }

    /// Drops quarryd's data files from the page cache.
    pub fn evict(&self) -> Result<()> {
        for file in files_under(&self.data_dir.join("data"))? {
            evict_path(&file, false)?;
        }
        Ok(())
    }

    /// Reads quarryd's data files once through the page cache, so they are cached.
    pub fn warm(&self) -> Result<()> {
        warm_files(&self.data_dir)
    }

    /// One GET of the file, timed, with quarryd's and this process's CPU time.
    pub async fn get(&self, kind: Get) -> Result<Sample> {
        let mut action = self.bucket.get_object(Some(&self.credentials), KEY);
        if let Get::GrepCount = kind {
            let query = action.query_mut();
            query.insert("x-quarry-function", "grep");
            query.insert("x-quarry-param-pattern", NEEDLE);
            query.insert("x-quarry-param-mode", "count");
        }
        let url = action.sign(URL_VALIDITY);
        let server_before = process_cpu(self.process.pid())?;
        let client_before = own_cpu()?;
        let started = Instant::now();
        let response = self.client.get(url).send().await.context("GET failed")?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            bail!("GET answered {status}: {body}");
        }
        let mut body = response.bytes_stream();
        let mut received = 0u64;
        let mut head = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.context("GET body failed")?;
            received += chunk.len() as u64;
            if head.len() < 64 {
                head.extend_from_slice(&chunk[..chunk.len().min(64)]);
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        let client_cpu = own_cpu()?.saturating_sub(client_before);
        let server_cpu = process_cpu(self.process.pid())?.saturating_sub(server_before);
        match kind {
            Get::Plain => ensure!(
                received == self.size,
                "GET returned {received} bytes, expected {}",
                self.size
            ),
            Get::GrepCount => {
                let text = String::from_utf8_lossy(&head);
                let count: u64 = text
                    .trim()
                    .parse()
                    .with_context(|| format!("grep count answered {text:?}, not a number"))?;
                let expected = expected_count(self.size);
                ensure!(
                    count == expected,
                    "grep count answered {count}, expected {expected}"
                );
            }
        }
        Ok(Sample {
            bytes: self.size,
            seconds,
            cpu_seconds: server_cpu.as_secs_f64(),
            client_cpu_seconds: Some(client_cpu.as_secs_f64()),
        })
    }

    /// The store's I/O metrics lines from `/metrics` (engine, bytes read and copied).
    pub async fn io_metrics(&self) -> Result<Vec<String>> {
        let url = format!("http://{}/metrics", self.process.admin);
        let text = self
            .client
            .get(url)
            .send()
            .await
            .context("GET /metrics failed")?
            .text()
            .await
            .context("GET /metrics body failed")?;
        Ok(text
            .lines()
            .filter(|l| l.starts_with("quarry_store_io_"))
            .map(str::to_owned)
            .collect())
    }

    /// Stops quarryd (SIGTERM).
    pub async fn stop(self) -> Result<()> {
        let (status, _) = self.process.stop().await?;
        ensure!(status.success(), "quarryd exited with {status}");
        Ok(())
    }
}
