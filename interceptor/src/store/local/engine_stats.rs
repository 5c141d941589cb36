// SPDX-License-Identifier: Apache-2.0
//! What the store's I/O engine did: reads, writes and fsyncs with their bytes, and the bytes
//! the store copied on the way to a consumer.
//!
//! One [`IoCounters`] per store, shared by its body streams and writers, updated with relaxed
//! atomics (each counter is a total on its own; no reader needs two of them to agree). The
//! agent exports them as `quarry_store_io_*{engine}` (see `docs/metrics.md`), and tests read
//! them through [`crate::LocalStore::io_stats`].
//!
//! `copied_bytes` counts bytes the store copies between the engine's buffers and the chunks
//! it hands out. A file-backed body is never copied (its chunks own the pool buffers the
//! engine filled); an inline object's bytes are copied once out of the index's read
//! transaction, and counted.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::read_engine::ReadEngineKind;

/// Running totals of one store's I/O.
#[derive(Debug, Default)]
pub(super) struct IoCounters {
    reads: AtomicU64,
    read_bytes: AtomicU64,
    writes: AtomicU64,
    write_bytes: AtomicU64,
    syncs: AtomicU64,
    copied_bytes: AtomicU64,
}

impl IoCounters {
    /// One completed read of `n` bytes into a buffer.
    pub(super) fn add_read(&self, n: usize) {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.read_bytes.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// One buffer of `n` bytes written to a data file.
    pub(super) fn add_write(&self, n: usize) {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.write_bytes.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// One data file fsynced.
    pub(super) fn add_sync(&self) {
        self.syncs.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` body bytes copied on their way to a consumer.
    pub(super) fn add_copied(&self, n: usize) {
        self.copied_bytes.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// The totals so far, labelled with the engine.
    pub(super) fn snapshot(&self, engine: ReadEngineKind) -> IoStats {
        IoStats {
            engine,
            reads: self.reads.load(Ordering::Relaxed),
            read_bytes: self.read_bytes.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            write_bytes: self.write_bytes.load(Ordering::Relaxed),
            syncs: self.syncs.load(Ordering::Relaxed),
            copied_bytes: self.copied_bytes.load(Ordering::Relaxed),
        }
    }
}

/// What a store's I/O engine did since the store opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoStats {
    /// The engine that did it (reads and writes go through the same one).
    pub engine: ReadEngineKind,
    /// Reads completed into pool buffers (a short read continued counts again).
    pub reads: u64,
    /// Bytes those reads returned.
    pub read_bytes: u64,
    /// Buffers written to data files.
    pub writes: u64,
    /// Bytes written to data files.
    pub write_bytes: u64,
    /// Data files fsynced.
    pub syncs: u64,
    /// Body bytes the store copied on their way to a consumer (inline objects only; file
    /// bodies are handed out in the buffers the engine filled).
    pub copied_bytes: u64,
}
