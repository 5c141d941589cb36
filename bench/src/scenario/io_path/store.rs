// SPDX-License-Identifier: Apache-2.0
//! The in-process rows: Quarry's store opened in this process (io_uring engine) on quarryd's
//! data dir, once quarryd has stopped, serving the file to a consumer without HTTP, plain
//! (chunks counted and dropped) and through the native grep kernel in count mode, as a
//! function's input would reach it: GET chunks, the record framer, the kernel's CPU run.
//!
//! They separate the store's cost (and the kernel's) from the HTTP path's: the same GET and
//! grep count through quarryd are the `quarry_get_*` rows.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result, anyhow, ensure};
use futures::StreamExt as _;
use quarry_interceptor::config::{DirectIo, ReadEngineChoice, StoreLimits};
use quarry_interceptor::store::local::ReadEngineKind;
use quarry_interceptor::{LocalStore, ObjectStore};
use quarry_kernels::{Framer, Params};

use super::cpu::own_cpu;
use super::data::{BLOCK, NEEDLE, expected_count};
use super::report::Sample;
use crate::scenario::page_cache::{evict_path, files_under};

const BUCKET: &str = "io-path";
const KEY: &str = "file";

/// What the consumer does with the body.
#[derive(Debug, Clone, Copy)]
pub enum Consumer {
    /// Counts the chunks' bytes and drops them.
    Plain,
    /// Frames lines and feeds them to the grep kernel (`mode=count`).
    GrepCount,
}

/// The store in this process, on the data dir that holds the file.
pub struct InProcess {
    store: LocalStore,
    dir: PathBuf,
    size: u64,
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcess")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// io_uring with `direct_io = "auto"`, as quarryd runs.
fn limits() -> StoreLimits {
    StoreLimits {
        read_engine: ReadEngineChoice::Uring,
        direct_io: DirectIo::Auto,
        ..StoreLimits::default()
    }
}

impl InProcess {
    /// Opens quarryd's data dir (quarryd stopped) with `direct_io = "auto"`; fails unless it
    /// reads with io_uring and may use `O_DIRECT`.
    pub async fn open(dir: &Path, size: u64) -> Result<Self> {
        let store = LocalStore::open(dir, limits())
            .await
            .map_err(|e| anyhow!("the store does not reopen: {e}"))?;
        let info = store.read_engine();
        ensure!(
            info.engine == ReadEngineKind::Uring && info.direct_io == DirectIo::Auto,
            "the store reads with {info}, not io_uring with direct_io = \"auto\""
        );
        Ok(Self {
            store,
            dir: dir.to_owned(),
            size,
        })
    }

    /// Drops the store's data files from the page cache.
    pub fn evict(&self) -> Result<()> {
        for file in files_under(&self.dir.join("data"))? {
            evict_path(&file, false)?;
        }
        Ok(())
    }

    /// Reads the store's data files once through the page cache, so they are cached.
    pub fn warm(&self) -> Result<()> {
        super::quarry::warm_files(&self.dir)
    }

    /// Bodies read with `O_DIRECT` and through the page cache so far (its I/O counters).
    pub fn bodies(&self) -> (u64, u64) {
        let stats = self.store.io_stats();
        (stats.direct_bodies, stats.cached_bodies)
    }

    /// Bytes the store copied on the way out so far (its I/O counters).
    pub fn copied_bytes(&self) -> u64 {
        self.store.io_stats().copied_bytes
    }

    /// One GET of the file into `consumer`, timed, with this process's CPU time.
    pub async fn get(&self, consumer: Consumer) -> Result<Sample> {
        let cpu_before = own_cpu()?;
        let started = Instant::now();
        let mut body = self
            .store
            .get_object(BUCKET, KEY, None)
            .await
            .map_err(|e| anyhow!("GET from the in-process store: {e}"))?
            .body;
        let mut received = 0u64;
        match consumer {
            Consumer::Plain => {
                while let Some(chunk) = body.next().await {
                    received += chunk.context("GET body failed")?.len() as u64;
                }
            }
            Consumer::GrepCount => {
                let kernel = quarry_kernels::find("grep").context("no grep kernel built in")?;
                let params = Params::new([
                    ("pattern".to_owned(), NEEDLE.to_owned()),
                    ("mode".to_owned(), "count".to_owned()),
                ]);
                let bound = kernel
                    .bind(&params.validate(kernel.info()).map_err(|e| anyhow!("{e}"))?)
                    .map_err(|e| anyhow!("{e}"))?;
                let mut framer = Framer::new(bound.framing(), BLOCK);
                let mut run = bound.cpu().context("grep has no CPU run")?;
                let mut out = Vec::new();
                while let Some(piece) = body.next().await {
                    let piece = piece.context("GET body failed")?;
                    received += piece.len() as u64;
                    for chunk in framer.push(piece).map_err(|e| anyhow!("{e}"))? {
                        run.feed(&chunk, &mut out).map_err(|e| anyhow!("{e}"))?;
                    }
                }
                if let Some(rest) = framer.finish() {
                    run.feed(&rest, &mut out).map_err(|e| anyhow!("{e}"))?;
                }
                run.finish(&mut out).map_err(|e| anyhow!("{e}"))?;
                let text = String::from_utf8_lossy(&out);
                let count: u64 = text
                    .trim()
                    .parse()
                    .with_context(|| format!("grep answered {text:?}, not a count"))?;
                let expected = expected_count(self.size);
                ensure!(
                    count == expected,
                    "grep counted {count}, expected {expected}"
                );
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        let cpu = own_cpu()?.saturating_sub(cpu_before);
        ensure!(
            received == self.size,
            "GET returned {received} bytes, expected {}",
            self.size
        );
        Ok(Sample {
            bytes: received,
            seconds,
            cpu_seconds: cpu.as_secs_f64(),
            client_cpu_seconds: None,
        })
    }
}
