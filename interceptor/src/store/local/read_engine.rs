// SPDX-License-Identifier: Apache-2.0
//! The read-engine seam: which engine moves object bodies from data files into pool buffers.
//!
//! [`ReadEngine`] is a closed set, chosen once when the store opens (`store.read_engine`):
//!
//! - [`ReadEngine::Uring`] (`uring.rs`): one ring thread, the pool's buffers registered as
//!   fixed buffers, `O_DIRECT` for bodies larger than one buffer where the filesystem allows
//!   it (probed at open in the data directory: tmpfs refuses it, and is then read through the
//!   page cache) and `store.direct_io` asks for it: always, or under `auto` (the default)
//!   for bodies not mostly in the page cache already (`residency.rs`), so a warm GET is
//!   served from memory and a cold one straight from the disk.
//! - [`ReadEngine::Pread`] (`pread.rs`): positioned reads on tokio's blocking pool, through
//!   the page cache. The fallback where io_uring is unavailable (`kernel.io_uring_disabled`, a
//!   seccomp filter, an old kernel): `auto` logs one line saying why and goes on with it.
//!
//! Both run under the same pipeline (`pipeline.rs`): the same buffers, the same read-ahead
//! depth, chunks in order. An engine only has to take a [`ChunkRead`] (file, offset, length,
//! a lent buffer) and answer it once the bytes are in the buffer; [`ReadPath`] holds the
//! engine with its pool and settings, and [`ReadEngineInfo`] says which one runs.
//!
//! ## Where an SPDK or NVMe-passthrough engine plugs in
//!
//! A new engine is a new variant here with a `submit(ChunkRead)`, and a branch in
//! [`ReadPath::open`]. Two are foreseen, neither built (SPDK is not in the package registries
//! here):
//!
//! - **NVMe passthrough** (`IORING_OP_URING_CMD` on the namespace's `/dev/ngXnY`, Linux 5.19+):
//!   a ring with 128-byte SQEs next to the one in `uring.rs`, the same fixed buffers, and NVMe
//!   read commands instead of file reads. What it needs besides is the map from a piece of a
//!   data file to LBAs (`FIEMAP` on the file, taken when the object is opened; the file stays
//!   open, so its extents stay put), and a check that the file's extents are written.
//! - **SPDK** (user-space NVMe driver): the device leaves the kernel, so the store would keep
//!   its data on a raw namespace instead of files; the pool's buffers would come from SPDK's
//!   DMA-able memory, and a poller thread would replace the ring thread. The pipeline, the pool
//!   interface and the body chunks stay as they are.

use std::fmt;
use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::path::Path;
use std::sync::Arc;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};
use tracing::{debug, info};

use super::engine_stats::{IoCounters, IoMetrics, IoStats};
use super::pipeline::{ChunkRead, ReadStream};
use super::pool::{AlignedBuf, BufferPool, PAGE, ReadPoolStats};
use super::pread::PreadEngine;
use super::read::Piece;
use super::residency::{self, Span};
use super::uring::{UringEngine, UringStarted};
use super::writer::{WriteEngine, WritePath};
use crate::config::{DirectIo, ReadEngineChoice, StoreLimits};
use crate::store::{BodyStream, StoreError};

/// The engine that runs reads. Cheap to clone: streams hold a clone.
#[derive(Debug, Clone)]
pub(super) enum ReadEngine {
    /// io_uring (`uring.rs`).
    Uring(Arc<UringEngine>),
    /// Positioned reads on the blocking pool (`pread.rs`).
    Pread(PreadEngine),
}

impl ReadEngine {
    /// Starts a read; its reply comes when it completed.
    pub(super) fn submit(&self, read: ChunkRead) {
        match self {
            Self::Uring(engine) => engine.submit(read),
            Self::Pread(engine) => engine.submit(read),
        }
    }
}

/// Which engine a store reads with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadEngineKind {
    /// io_uring.
    #[serde(rename = "io_uring")]
    Uring,
    /// pread on blocking threads.
    #[serde(rename = "pread")]
    Pread,
}

impl ReadEngineKind {
    /// The engine's name in logs, status and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uring => "io_uring",
            Self::Pread => "pread",
        }
    }
}

/// The read path a store opened with: its engine, settings, and why anything is off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadEngineInfo {
    /// The engine.
    pub engine: ReadEngineKind,
    /// When bodies larger than one buffer are read with `O_DIRECT`: `store.direct_io`, or
    /// `never` where the engine (pread) or the filesystem (tmpfs) cannot.
    pub direct_io: DirectIo,
    /// The pool's buffers are registered with the ring as fixed buffers.
    pub fixed_buffers: bool,
    /// Reads in flight per body.
    pub depth: usize,
    /// Buffers in the pool.
    pub buffers: usize,
    /// Bytes per buffer.
    pub buffer_size: u64,
    /// Why io_uring, fixed buffers or `O_DIRECT` are not in use where they were wanted.
    pub notes: Vec<String>,
}

impl fmt::Display for ReadEngineInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.engine.as_str())?;
        match self.direct_io {
            DirectIo::Always => f.write_str(", O_DIRECT")?,
            DirectIo::Auto => f.write_str(", O_DIRECT unless cached")?,
            DirectIo::Never => {}
        }
        if self.fixed_buffers {
            f.write_str(", fixed buffers")?;
        }
        let size = ByteSize::b(self.buffer_size);
        write!(
            f,
            ", depth {}, {} x {size} buffers",
            self.depth, self.buffers
        )?;
        for note in &self.notes {
            write!(f, "; {note}")?;
        }
        Ok(())
    }
}

/// Everything a store reads bodies with: the engine, the buffer pool, and the settings.
#[derive(Debug)]
pub(super) struct ReadPath {
    engine: ReadEngine,
    pool: BufferPool,
    depth: usize,
    info: ReadEngineInfo,
    /// Reads, writes and copies of this store, whichever engine did them.
    counters: Arc<IoCounters>,
}

impl ReadPath {
    /// Builds the pool and starts the configured engine; with `auto`, io_uring where it runs,
    /// else pread with one log line saying why. `data_root` (the `data/` directory, created
    /// already) is where `O_DIRECT` is probed. Blocking.
    pub(super) fn open(limits: &StoreLimits, data_root: &Path) -> Result<Self, StoreError> {
        Self::open_with(limits, data_root, UringEngine::start)
    }

    /// [`ReadPath::open`] with the io_uring start injected (tests make it fail).
    pub(super) fn open_with(
        limits: &StoreLimits,
        data_root: &Path,
        start_uring: impl FnOnce(&BufferPool) -> io::Result<UringStarted>,
    ) -> Result<Self, StoreError> {
        let settings_error = |detail: String| StoreError::Io {
            op: "check the read settings",
            path: data_root.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, detail),
        };
        let problems = limits.read_path_problems();
        if !problems.is_empty() {
            return Err(settings_error(problems.join("; ")));
        }
        let buffer_size = usize::try_from(limits.read_buffer_size.as_u64())
            .map_err(|e| settings_error(e.to_string()))?;
        let pool = BufferPool::new(limits.read_buffers, buffer_size);
        let mut notes = Vec::new();
        let mut fixed_buffers = false;
        let start = |pool: &BufferPool| {
            let started = start_uring(pool)?;
            match started.fixed_buffers {
                Ok(()) => fixed_buffers = true,
                Err(e) => notes.push(format!("fixed buffers unavailable: {e}")),
            }
            io::Result::Ok(ReadEngine::Uring(Arc::new(started.engine)))
        };
        let mut fell_back = None;
        let engine = match limits.read_engine {
            ReadEngineChoice::Pread => ReadEngine::Pread(PreadEngine),
            ReadEngineChoice::Uring => start(&pool).map_err(|source| StoreError::Io {
                op: "start the io_uring read engine",
                path: data_root.to_path_buf(),
                source,
            })?,
            ReadEngineChoice::Auto => start(&pool).unwrap_or_else(|e| {
                fell_back = Some(e.to_string());
                ReadEngine::Pread(PreadEngine)
            }),
        };
        if let Some(reason) = &fell_back {
            notes.push(format!("io_uring unavailable: {reason}"));
        }
        let uring = matches!(engine, ReadEngine::Uring(_));
        let direct_wanted = uring && limits.direct_io != DirectIo::Never;
        let direct_io = if direct_wanted
            && probe_direct(data_root)
                .inspect_err(|e| notes.push(format!("O_DIRECT refused by the filesystem: {e}")))
                .is_ok()
        {
            limits.direct_io
        } else {
            DirectIo::Never
        };
        let info = ReadEngineInfo {
            engine: if uring {
                ReadEngineKind::Uring
            } else {
                ReadEngineKind::Pread
            },
            direct_io,
            fixed_buffers: uring && fixed_buffers,
            depth: limits.read_depth,
            buffers: pool.count(),
            buffer_size: buffer_size as u64,
            notes,
        };
        match fell_back {
            Some(reason) => info!(
                %reason,
                engine = %info,
                "io_uring is unavailable; reading object bodies with the pread engine"
            ),
            None => info!(engine = %info, "reading object bodies with {}", info.engine.as_str()),
        }
        Ok(Self {
            engine,
            pool,
            depth: limits.read_depth,
            info,
            counters: Arc::default(),
        })
    }

    /// Bodies up to this size are read whole when their object is opened.
    pub(super) fn whole_max(&self) -> u64 {
        self.pool.buffer_size() as u64
    }

    /// Chooses how the opened pieces of one body are read, and counts the choice: bodies
    /// larger than one buffer get `O_DIRECT` (turned on in their open files) under
    /// `direct_io = "always"`, and under `"auto"` unless the sampled residency says they are
    /// mostly cached. A residency or `fcntl` failure leaves the body in the page cache (and
    /// logs it at debug): the read itself is what matters. Blocking (a few system calls).
    pub(super) fn choose_direct(&self, pieces: &mut [Piece]) {
        let len: u64 = pieces.iter().map(|p| p.len).sum();
        if len <= self.whole_max() {
            return;
        }
        let direct = match self.info.direct_io {
            DirectIo::Never => false,
            DirectIo::Always => true,
            DirectIo::Auto => {
                let spans: Vec<Span<'_>> = pieces
                    .iter()
                    .map(|p| Span {
                        file: &p.file,
                        offset: p.offset,
                        len: p.len,
                    })
                    .collect();
                residency::sample(&spans)
                    .inspect_err(|e| debug!(error = %e, "page-cache residency unknown"))
                    .is_ok_and(|r| !r.mostly_cached())
            }
        };
        if direct {
            // Per file: a piece whose file keeps buffered reads is read unaligned, as it may.
            for piece in pieces.iter_mut() {
                match residency::set_direct(&piece.file) {
                    Ok(()) => piece.direct = true,
                    Err(e) => debug!(error = %e, path = %piece.path.display(),
                        "O_DIRECT not set; reading through the page cache"),
                }
            }
        }
        self.counters.add_body(pieces.iter().any(|p| p.direct));
    }

    /// The body stream over open pieces.
    pub(super) fn stream(&self, pieces: Vec<Piece>) -> BodyStream {
        if pieces.iter().all(|p| p.len == 0) {
            return Box::pin(futures::stream::empty());
        }
        let engine = self.engine.clone();
        Box::pin(ReadStream::new(
            engine,
            self.pool.clone(),
            self.depth,
            pieces,
            Arc::clone(&self.counters),
        ))
    }

    /// What data files are written with: the io_uring engine's ring when it reads, else
    /// plain writes.
    pub(super) fn write_path(&self) -> WritePath {
        let engine = match &self.engine {
            ReadEngine::Uring(engine) => WriteEngine::Uring(Arc::clone(engine)),
            ReadEngine::Pread(_) => WriteEngine::Plain,
        };
        WritePath {
            engine,
            counters: Arc::clone(&self.counters),
        }
    }

    /// The store's I/O counters.
    pub(super) fn counters(&self) -> &IoCounters {
        &self.counters
    }

    /// What the engine did so far.
    pub(super) fn io_stats(&self) -> IoStats {
        self.counters.snapshot(self.info.engine)
    }

    /// The counters as Prometheus metrics.
    pub(super) fn io_metrics(&self) -> Result<IoMetrics, prometheus::Error> {
        IoMetrics::new(Arc::clone(&self.counters), self.info.engine)
    }

    /// The engine and its settings.
    pub(super) fn info(&self) -> &ReadEngineInfo {
        &self.info
    }

    /// What the buffer pool holds right now.
    pub(super) fn pool_stats(&self) -> ReadPoolStats {
        self.pool.stats()
    }

    /// The address range of every pool buffer, for tests that check a chunk lies in one. Call
    /// it with every buffer back in the pool.
    #[cfg(test)]
    pub(super) fn pool_address_ranges(&self) -> Vec<std::ops::Range<usize>> {
        self.pool.with_free_buffers(|buffers| {
            buffers
                .iter()
                .map(|buf| buf.as_slice().as_ptr_range())
                .map(|r| r.start as usize..r.end as usize)
                .collect()
        })
    }
}

/// Whether files in `dir` can be read with `O_DIRECT`: writes one page to a probe file and
/// reads it back through an `O_DIRECT` descriptor into an aligned buffer. Blocking.
fn probe_direct(dir: &Path) -> io::Result<()> {
    let path = dir.join(".direct-probe");
    let result = (|| {
        std::fs::write(&path, [0x5a; PAGE])?;
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(&path)?;
        let mut buf = AlignedBuf::new(PAGE, None);
        let n = file.read_at(buf.as_mut_slice(), 0)?;
        if n == PAGE && buf.as_slice().iter().all(|&b| b == 0x5a) {
            Ok(())
        } else {
            Err(io::Error::other("an O_DIRECT read returned other bytes"))
        }
    })();
    let _ = std::fs::remove_file(&path);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(engine: ReadEngineChoice) -> StoreLimits {
        StoreLimits {
            read_engine: engine,
            read_buffers: 8,
            ..StoreLimits::default()
        }
    }

    fn refused(_: &BufferPool) -> io::Result<UringStarted> {
        Err(io::Error::from_raw_os_error(libc::EPERM))
    }

    #[test]
    fn auto_falls_back_to_pread_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let path =
            ReadPath::open_with(&limits(ReadEngineChoice::Auto), dir.path(), refused).unwrap();
        let info = path.info();
        assert_eq!(info.engine, ReadEngineKind::Pread);
        assert!(
            info.direct_io == DirectIo::Never && !info.fixed_buffers,
            "{info:?}"
        );
        assert_eq!(info.notes.len(), 1, "{info:?}");
        assert!(
            info.notes[0].starts_with("io_uring unavailable: Operation not permitted"),
            "{info:?}"
        );
        assert!(info.to_string().starts_with("pread, depth 8"), "{info}");
    }

    #[test]
    fn forcing_uring_where_it_is_refused_fails_the_open() {
        let dir = tempfile::tempdir().unwrap();
        let err =
            ReadPath::open_with(&limits(ReadEngineChoice::Uring), dir.path(), refused).unwrap_err();
        assert!(
            err.to_string().contains("io_uring"),
            "the error names the engine: {err}"
        );
    }

    #[test]
    fn forcing_pread_never_starts_io_uring() {
        let dir = tempfile::tempdir().unwrap();
        let path = ReadPath::open_with(&limits(ReadEngineChoice::Pread), dir.path(), |_| {
            panic!("io_uring started under read_engine = pread")
        })
        .unwrap();
        assert_eq!(path.info().engine, ReadEngineKind::Pread);
        assert!(path.info().notes.is_empty());
    }

    #[test]
    fn auto_picks_io_uring_where_it_runs() {
        // The test machines run io_uring, with a temporary directory on a disk that takes
        // O_DIRECT; a machine where either is refused fails here, with the reason, rather
        // than skipping.
        let dir = tempfile::tempdir().unwrap();
        let path = ReadPath::open(&limits(ReadEngineChoice::Auto), dir.path()).unwrap();
        let info = path.info();
        assert_eq!(info.engine, ReadEngineKind::Uring, "{info}");
        assert_eq!(info.direct_io, DirectIo::Auto, "{info}");
        assert!(
            info.to_string().contains("O_DIRECT unless cached"),
            "{info}"
        );
    }

    #[test]
    fn inconsistent_settings_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let bad = StoreLimits {
            read_depth: 16,
            read_buffers: 8,
            ..StoreLimits::default()
        };
        let err = ReadPath::open(&bad, dir.path()).unwrap_err();
        assert!(err.to_string().contains("check the read settings"), "{err}");
    }
}
