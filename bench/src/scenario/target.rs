// SPDX-License-Identifier: Apache-2.0
//! The systems under load, as one closed set, and the loop over their cells.
//!
//! Cell order per target: for each size, for each concurrency, every write op, then the warm
//! GET, then the cold GET. A GET cell at concurrency N reads the N objects its PUT cell just
//! wrote (worker `i` owns object `i`), so no extra data is written to fill reads, and the
//! RAM-backed Ceph peer holds at most `max(concurrency)` objects per size.
//!
//! A cold GET cell first writes back, evicts and probes the files it will read
//! ([`EvictionCheck`], which ends with an eviction), then evicts them again before every op
//! but each worker's first, untimed: for plain files the worker's own file, for quarryd every
//! data file (they are named by id, not by key, and there are at most a few hundred). The
//! first op needs no eviction of its own: nothing read the files since the check. Skipping it
//! matters at concurrency 32 with 64 MiB objects (one op per worker): a worker evicting every
//! data file would drop pages the other workers' GETs have read ahead.

use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;

use super::load::{CellBudget, run_cell, run_cell_with_setup};
use super::options::{S3Options, TargetKind, size_label};
use super::page_cache::{self, EvictionCheck};
use super::plain::PlainTarget;
use super::report::{CellResult, Op};
use super::s3::S3Target;

/// A system the scenario measures.
#[derive(Debug, Clone)]
pub enum Target {
    /// An S3 endpoint (quarryd, a Ceph peer or the loopback server).
    S3 {
        /// The client.
        s3: Arc<S3Target>,
        /// The server's data files on this machine, when the harness can evict them from the
        /// page cache (quarryd: `<data dir>/data`); such a target also gets cold GETs.
        data_files: Option<Arc<Path>>,
    },
    /// Plain files.
    Plain(Arc<PlainTarget>),
}

/// The files a cold cell evicts before each op, open for the whole cell.
#[derive(Debug)]
struct Eviction {
    scope: EvictionScope,
    /// Per worker: whether its first op has started (it needs no eviction of its own).
    started: Vec<AtomicBool>,
}

/// Which files an op evicts.
#[derive(Debug)]
enum EvictionScope {
    /// Every op evicts all of them: a server's data files, which cannot be told apart by key.
    All(Vec<File>),
    /// Worker `slot` evicts file `slot`: one plain file per worker.
    PerSlot(Vec<File>),
}

impl Eviction {
    fn new(scope: EvictionScope, workers: usize) -> Self {
        Self {
            scope,
            started: (0..workers).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    fn files(&self) -> &[File] {
        match &self.scope {
            EvictionScope::All(files) | EvictionScope::PerSlot(files) => files,
        }
    }

    /// Evicts what worker `slot` reads next, unless this is its first op. The files are
    /// clean (the check before the cell wrote them back and nothing writes during a GET
    /// cell), so no fsync.
    fn evict(&self, slot: usize) -> Result<()> {
        let started = self
            .started
            .get(slot)
            .with_context(|| format!("no worker {slot}"))?;
        if !started.swap(true, Ordering::Relaxed) {
            return Ok(());
        }
        match &self.scope {
            EvictionScope::All(files) => files
                .iter()
                .try_for_each(|file| page_cache::evict(file, false)),
            EvictionScope::PerSlot(files) => {
                let file = files
                    .get(slot)
                    .with_context(|| format!("no file for worker {slot}"))?;
                page_cache::evict(file, false)
            }
        }
    }
}

impl Target {
    /// An S3 target without cold GETs (its data is not on this machine's disk, or not ours).
    pub fn s3(s3: S3Target) -> Self {
        Self::S3 {
            s3: Arc::new(s3),
            data_files: None,
        }
    }

    /// The ops measured, in order. Writes come before the GETs, which read what they wrote.
    pub fn ops(&self) -> &'static [Op] {
        match self {
            Self::S3 {
                data_files: None, ..
            } => &[Op::Put, Op::GetWarm],
            Self::S3 {
                data_files: Some(_),
                ..
            } => &[Op::Put, Op::GetWarm, Op::GetCold],
            Self::Plain(_) => &[Op::PutNofsync, Op::Put, Op::GetWarm, Op::GetCold],
        }
    }

    async fn run_op(&self, op: Op, name: &str, payload: &Bytes) -> Result<u64> {
        let len = u64::try_from(payload.len()).context("payload length overflows u64")?;
        match (self, op) {
            (Self::S3 { s3, .. }, Op::Put) => s3.put(name, payload.clone()).await,
            (Self::S3 { s3, .. }, Op::GetWarm | Op::GetCold) => s3.get(name, len).await,
            (Self::S3 { .. }, Op::PutNofsync) => bail!("S3 targets have no put_nofsync"),
            (Self::Plain(plain), Op::Put) => plain.put(name, payload.clone(), true).await,
            (Self::Plain(plain), Op::PutNofsync) => plain.put(name, payload.clone(), false).await,
            (Self::Plain(plain), Op::GetWarm | Op::GetCold) => plain.get(name, len).await,
        }
    }

    /// Untimed work before a cell: open the connections the cell's workers will use.
    async fn before_cell(&self, concurrency: usize) -> Result<()> {
        match self {
            Self::S3 { s3, .. } => s3.warm_up(concurrency).await,
            Self::Plain(_) => Ok(()),
        }
    }

    /// Untimed work before a cold cell: opens the files its ops will evict (`names` are the
    /// workers' objects), then writes them back, evicts and probes them.
    async fn prepare_cold(&self, names: &[String]) -> Result<(Eviction, EvictionCheck)> {
        let workers = names.len();
        let (data_files, paths) = match self {
            Self::S3 {
                data_files: Some(dir),
                ..
            } => (Some(Arc::clone(dir)), Vec::new()),
            Self::S3 { .. } => bail!("this S3 target has no data files to evict"),
            Self::Plain(plain) => (None, names.iter().map(|n| plain.path(n)).collect()),
        };
        tokio::task::spawn_blocking(move || {
            let scope = match data_files {
                // A data file the server removed since the listing (an overwritten object's,
                // freed late) is no longer read by anyone.
                Some(dir) => EvictionScope::All(
                    page_cache::files_under(&dir)?
                        .iter()
                        .filter_map(|p| match File::open(p) {
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                            opened => Some(
                                opened.with_context(|| format!("failed to open {}", p.display())),
                            ),
                        })
                        .collect::<Result<Vec<_>>>()?,
                ),
                None => EvictionScope::PerSlot(
                    paths
                        .iter()
                        .map(|p| {
                            File::open(p).with_context(|| format!("failed to open {}", p.display()))
                        })
                        .collect::<Result<Vec<_>>>()?,
                ),
            };
            let eviction = Eviction::new(scope, workers);
            let check = EvictionCheck::run(eviction.files())?;
            Ok((eviction, check))
        })
        .await
        .context("eviction task panicked")?
    }

    /// Untimed work after a cell: write back what a no-fsync cell left dirty.
    async fn after_cell(&self, op: Op, names: &[String]) -> Result<()> {
        match (self, op) {
            (Self::Plain(plain), Op::PutNofsync) => {
                plain.flush(names.iter().map(String::as_str)).await
            }
            _ => Ok(()),
        }
    }

    /// Deletes the objects a run wrote, so that the peer does not keep them; plain files go
    /// with the work directory.
    pub async fn clean_up(&self, names: &[String]) -> Result<()> {
        match self {
            Self::S3 { s3, .. } => {
                futures::future::try_join_all(names.iter().map(|name| s3.delete(name)))
                    .await
                    .map(drop)
            }
            Self::Plain(_) => Ok(()),
        }
    }
}

/// The object (or file) worker `slot` uses for `size`-byte ops.
pub fn object_name(size: u64, slot: usize) -> String {
    format!("{}-{slot}", size_label(size))
}

/// Every object name a run with these options uses.
pub fn object_names(options: &S3Options) -> Vec<String> {
    let workers = options.concurrency.iter().copied().max().unwrap_or(0);
    options
        .sizes
        .iter()
        .flat_map(|&size| (0..workers).map(move |slot| object_name(size, slot)))
        .collect()
}

/// A payload of `size` bytes that no layer can compress or deduplicate (xorshift output).
pub fn make_payload(size: u64) -> Result<Bytes> {
    let len = usize::try_from(size).context("object size does not fit in memory")?;
    let mut state = 0x9E37_79B9_7F4A_7C15_u64 ^ size;
    let mut data = Vec::with_capacity(len + 8);
    while data.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        data.extend_from_slice(&state.to_le_bytes());
    }
    data.truncate(len);
    Ok(Bytes::from(data))
}

/// Runs every cell of `target` and appends the results. Stops at the first failing cell;
/// the cells before it stay in `results`.
pub async fn run_cells(
    kind: TargetKind,
    target: &Target,
    options: &S3Options,
    payloads: &[(u64, Bytes)],
    results: &mut Vec<CellResult>,
) -> Result<()> {
    for (size, payload) in payloads {
        let size = *size;
        for &concurrency in &options.concurrency {
            for &op in target.ops() {
                let label = format!("{kind} {} {} x{concurrency}", op.as_str(), size_label(size));
                target
                    .before_cell(concurrency)
                    .await
                    .with_context(|| format!("{label}: warm-up"))?;
                let budget = CellBudget::new(
                    concurrency,
                    options.duration_per_cell,
                    options.max_ops_per_cell,
                    options.max_bytes_per_cell,
                    size,
                );
                let names: Vec<String> = (0..concurrency)
                    .map(|slot| object_name(size, slot))
                    .collect();
                let ops = || {
                    let (target, payload) = (target.clone(), payload.clone());
                    move |slot| {
                        let (target, payload) = (target.clone(), payload.clone());
                        async move { target.run_op(op, &object_name(size, slot), &payload).await }
                    }
                };
                let (outcome, check) = if op == Op::GetCold {
                    let (eviction, check) = target
                        .prepare_cold(&names)
                        .await
                        .with_context(|| format!("{label}: eviction check"))?;
                    let eviction = Arc::new(eviction);
                    let evict = move |slot| {
                        let eviction = Arc::clone(&eviction);
                        async move {
                            tokio::task::spawn_blocking(move || eviction.evict(slot))
                                .await
                                .context("eviction task panicked")?
                        }
                    };
                    (run_cell_with_setup(budget, evict, ops()).await, Some(check))
                } else {
                    (run_cell(budget, ops()).await, None)
                };
                let outcome = outcome.with_context(|| label.clone())?;
                target
                    .after_cell(op, &names)
                    .await
                    .with_context(|| format!("{label}: after cell"))?;
                let mut result = CellResult::new(kind, op, size, concurrency, &outcome);
                result.eviction = check;
                let cold = check.map_or_else(String::new, |c| {
                    format!(
                        ", eviction check: {} files, {} of {} probed pages cached after eviction",
                        c.files, c.cached_after_eviction, c.probed_pages
                    )
                });
                progress(&format!(
                    "{label}: {} ops, {:.1} MB/s, p50 {:.3} ms, p99 {:.3} ms{cold}",
                    result.ops, result.mb_per_s, result.p50_ms, result.p99_ms
                ));
                results.push(result);
            }
        }
    }
    Ok(())
}

/// One line of progress on stderr; the report and the table are the output, this is only
/// for the person waiting.
pub fn progress(line: &str) {
    // A closed stderr must not fail the run.
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_has_the_size_and_does_not_repeat() {
        let payload = make_payload(4096 + 3).unwrap();
        assert_eq!(payload.len(), 4099);
        assert_ne!(payload[..8], payload[8..16]);
    }

    /// A worker's first op uses the check's eviction; its later ops evict their own.
    #[test]
    fn eviction_skips_each_workers_first_op() {
        let dir = tempfile::Builder::new()
            .prefix(".eviction-test-")
            .tempdir_in(env!("CARGO_MANIFEST_DIR"))
            .unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![3u8; 8192]).unwrap();
        let file = File::open(&path).unwrap();
        file.sync_all().unwrap();
        let cached = |file: &File| page_cache::page_cached(file, 0).unwrap();
        assert_eq!(std::fs::read(&path).unwrap().len(), 8192);
        assert_eq!(cached(&file), Some(true));

        let eviction = Eviction::new(EvictionScope::PerSlot(vec![file]), 1);
        eviction.evict(0).unwrap();
        assert_eq!(
            cached(&eviction.files()[0]),
            Some(true),
            "first op: no eviction"
        );
        eviction.evict(0).unwrap();
        assert_eq!(
            cached(&eviction.files()[0]),
            Some(false),
            "second op: evicted"
        );
        assert!(eviction.evict(1).is_err());
    }

    #[test]
    fn names_cover_every_size_and_worker() {
        use clap::Parser as _;
        let super::super::Cli::S3(options) = super::super::Cli::parse_from([
            "scenario",
            "s3",
            "--sizes",
            "4KiB,1MiB",
            "--concurrency",
            "1,3",
        ]) else {
            panic!("s3 parses as s3");
        };
        assert_eq!(
            object_names(&options),
            ["4KiB-0", "4KiB-1", "4KiB-2", "1MiB-0", "1MiB-1", "1MiB-2"]
        );
    }
}
