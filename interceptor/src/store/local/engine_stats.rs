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

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounterVec, Opts};
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
    direct_bodies: AtomicU64,
    cached_bodies: AtomicU64,
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

    /// One body larger than one buffer opened: to be read with `O_DIRECT` (`direct`) or
    /// through the page cache.
    pub(super) fn add_body(&self, direct: bool) {
        let counter = if direct {
            &self.direct_bodies
        } else {
            &self.cached_bodies
        };
        counter.fetch_add(1, Ordering::Relaxed);
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
            direct_bodies: self.direct_bodies.load(Ordering::Relaxed),
            cached_bodies: self.cached_bodies.load(Ordering::Relaxed),
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
    /// Bodies larger than one buffer read with `O_DIRECT`.
    pub direct_bodies: u64,
    /// Bodies larger than one buffer read through the page cache (`direct_io = "never"`,
    /// pread, a filesystem without `O_DIRECT`, or found mostly cached under `"auto"`).
    pub cached_bodies: u64,
}

/// The store's I/O counters as Prometheus metrics, read at each scrape:
/// `quarry_store_io_ops_total{engine, op}` (`op` = `read`, `write`, `sync`, and per large
/// body `body_direct` or `body_cached`) and
/// `quarry_store_io_bytes_total{engine, op}` (`op` = `read`, `write`, `copied`).
#[derive(Debug, Clone)]
pub struct IoMetrics {
    counters: Arc<IoCounters>,
    engine: ReadEngineKind,
    ops: IntCounterVec,
    bytes: IntCounterVec,
}

impl IoMetrics {
    /// The metrics of `counters`, labelled with `engine`.
    pub(super) fn new(
        counters: Arc<IoCounters>,
        engine: ReadEngineKind,
    ) -> Result<Self, prometheus::Error> {
        let ops = IntCounterVec::new(
            Opts::new(
                "quarry_store_io_ops_total",
                "reads, writes and fsyncs of object data by the store's I/O engine, and large \
                 bodies read with O_DIRECT or through the page cache",
            ),
            &["engine", "op"],
        )?;
        let bytes = IntCounterVec::new(
            Opts::new(
                "quarry_store_io_bytes_total",
                "object bytes read and written by the store's I/O engine, and bytes copied on their way out",
            ),
            &["engine", "op"],
        )?;
        Ok(Self {
            counters,
            engine,
            ops,
            bytes,
        })
    }

    /// Brings the exported counters up to the store's totals.
    fn catch_up(&self) {
        let s = self.counters.snapshot(self.engine);
        let engine = self.engine.as_str();
        let raise = |vec: &IntCounterVec, op: &str, total: u64| {
            let counter = vec.with_label_values(&[engine, op]);
            counter.inc_by(total.saturating_sub(counter.get()));
        };
        raise(&self.ops, "read", s.reads);
        raise(&self.ops, "write", s.writes);
        raise(&self.ops, "sync", s.syncs);
        raise(&self.ops, "body_direct", s.direct_bodies);
        raise(&self.ops, "body_cached", s.cached_bodies);
        raise(&self.bytes, "read", s.read_bytes);
        raise(&self.bytes, "write", s.write_bytes);
        raise(&self.bytes, "copied", s.copied_bytes);
    }
}

impl Collector for IoMetrics {
    fn desc(&self) -> Vec<&Desc> {
        let mut descs = self.ops.desc();
        descs.extend(self.bytes.desc());
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.catch_up();
        let mut families = self.ops.collect();
        families.extend(self.bytes.collect());
        families
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_follow_the_counters_at_each_scrape() {
        let counters = Arc::new(IoCounters::default());
        let metrics = IoMetrics::new(Arc::clone(&counters), ReadEngineKind::Uring).unwrap();
        let registry = prometheus::Registry::new();
        registry.register(Box::new(metrics)).unwrap();
        counters.add_read(4096);
        counters.add_write(100);
        counters.add_write(50);
        counters.add_sync();
        counters.add_body(true);
        let scrape = || {
            let mut out = Vec::new();
            for family in registry.gather() {
                for m in family.get_metric() {
                    let op = m.get_label().iter().find(|l| l.name() == "op").unwrap();
                    out.push(format!(
                        "{} {} {}",
                        family.name(),
                        op.value(),
                        m.get_counter().get_value()
                    ));
                }
            }
            out.sort();
            out
        };
        let first = scrape();
        assert!(
            first.contains(&"quarry_store_io_bytes_total write 150".to_owned()),
            "{first:?}"
        );
        assert!(
            first.contains(&"quarry_store_io_ops_total sync 1".to_owned()),
            "{first:?}"
        );
        assert!(
            first.contains(&"quarry_store_io_ops_total body_direct 1".to_owned())
                && first.contains(&"quarry_store_io_ops_total body_cached 0".to_owned()),
            "{first:?}"
        );
        counters.add_read(10);
        let second = scrape();
        assert!(
            second.contains(&"quarry_store_io_bytes_total read 4106".to_owned()),
            "{second:?}"
        );
        assert!(
            second.contains(&"quarry_store_io_ops_total read 2".to_owned()),
            "{second:?}"
        );
    }
}
