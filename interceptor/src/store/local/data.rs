// SPDX-License-Identifier: Apache-2.0
//! Data files: where they live, how a body becomes one, and how they are removed.
//!
//! A data file is named by a random [`FileId`], never by a key:
//! `<data_dir>/data/<first two hex digits>/<id>`. The 256 shard directories are created (and
//! made durable) when the store opens, so writing a file only needs an fsync of the file and
//! of its shard directory.
//!
//! A body is written by one blocking task that hashes (MD5) and writes what the async side
//! forwards over a bounded channel, through the store's engine (`writer.rs`: io_uring, or plain
//! writes under the pread engine); the async side enforces the size limits while it pulls
//! the client's stream. A new file is owned by a [`NewFile`] guard that removes it unless the
//! file was committed to the index ([`NewFile::keep`]) or a failpoint simulates a crash
//! ([`NewFile::abandon`]). The guard travels with the work, so a request dropped mid-way (client
//! gone) still removes its file, and a commit already running finishes with its file intact.
//! Files a commit made unreachable are owned by a [`FreedFiles`] guard in the same way: removed
//! once the caller is done with them, or when dropped, unless a failpoint abandons them.
//!
//! [`BodyLimits`] holds the checks every body goes through, streamed into a file here or
//! collected in memory for an inline object (`inline.rs`).

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use md5::{Digest, Md5};
use tokio::sync::mpsc;
use tracing::warn;

use super::blocking;
use super::index::FileId;
use super::writer::{FileWriter, WritePath};
use crate::store::{BodyStream, StoreError};

/// Body chunks queued between the async side and the writer task.
const WRITE_QUEUE: usize = 16;

/// The `data/` directory of a store.
#[derive(Debug, Clone)]
pub(super) struct DataDir {
    root: Arc<Path>,
}

impl DataDir {
    /// The data directory under a store's root (not created yet).
    pub(super) fn new(root: PathBuf) -> Self {
        Self {
            root: Arc::from(root),
        }
    }

    /// `<data_dir>/data`.
    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    /// The shard directory holding a file.
    pub(super) fn shard_dir(&self, id: FileId) -> PathBuf {
        self.root.join(id.shard())
    }

    /// The path of a data file.
    pub(super) fn path(&self, id: FileId) -> PathBuf {
        self.shard_dir(id).join(id.name())
    }

    /// Creates `data/` and its 256 shard directories, and makes them durable. Blocking.
    pub(super) fn create_layout(&self) -> Result<(), StoreError> {
        let created = !self.root.exists();
        std::fs::create_dir_all(&self.root).map_err(io_err("create data directory", &self.root))?;
        for shard in 0..=u8::MAX {
            let dir = self.root.join(format!("{shard:02x}"));
            if !dir.exists() {
                std::fs::create_dir(&dir).map_err(io_err("create shard directory", &dir))?;
            }
        }
        sync_dir(&self.root)?;
        if created && let Some(parent) = self.root.parent() {
            sync_dir(parent)?;
        }
        Ok(())
    }

    /// Removes files, best effort: a failure is logged, a file already gone is not. Blocking.
    pub(super) fn remove_files(&self, ids: impl IntoIterator<Item = FileId>) {
        for id in ids {
            let path = self.path(id);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => warn!(path = %path.display(), error = %e, "failed to remove data file"),
            }
        }
    }
}

/// Builds the `map_err` closure for an I/O failure on `path`.
pub(super) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { op, path, source }
}

/// Fsyncs a directory so the entries created in it survive a crash. Blocking.
pub(super) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

/// A data file not (yet) referenced by the index: removed on drop unless kept or abandoned.
#[derive(Debug)]
pub(super) struct NewFile {
    data: DataDir,
    id: FileId,
    armed: bool,
}

impl NewFile {
    /// Takes charge of a file just created.
    fn new(data: DataDir, id: FileId) -> Self {
        Self {
            data,
            id,
            armed: true,
        }
    }

    /// The file's id.
    pub(super) fn id(&self) -> FileId {
        self.id
    }

    /// The index now references the file: leave it in place.
    pub(super) fn keep(mut self) -> FileId {
        self.armed = false;
        self.id
    }

    /// A failpoint fired: leave the file behind as a crash would, for recovery to find.
    pub(super) fn abandon(mut self) {
        self.armed = false;
    }

    /// Removes the file on the blocking pool and waits for it.
    pub(super) async fn discard(self) {
        // The drop inside the closure removes the file; a join error only means the runtime
        // is shutting down, and recovery removes the orphan at the next open.
        let _ = blocking(move || {
            drop(self);
            Ok(())
        })
        .await;
    }
}

impl Drop for NewFile {
    fn drop(&mut self) {
        if self.armed {
            self.data.remove_files([self.id]);
        }
    }
}

/// Data files a committed transaction made unreachable (a replaced version, a replaced part,
/// the parts of an aborted upload): removed when dropped, unless abandoned.
#[derive(Debug)]
pub(super) struct FreedFiles {
    data: DataDir,
    ids: Vec<FileId>,
    armed: bool,
}

impl FreedFiles {
    /// Takes charge of files the index no longer references.
    pub(super) fn new(data: DataDir, ids: Vec<FileId>) -> Self {
        Self {
            data,
            ids,
            armed: true,
        }
    }

    /// A failpoint fired: leave the files behind as a crash would, for recovery to find.
    pub(super) fn abandon(mut self) {
        self.armed = false;
    }

    /// Removes the files on the blocking pool and waits for it; no trip there when there are
    /// none.
    pub(super) async fn remove(self) {
        if self.ids.is_empty() {
            return;
        }
        // As in `NewFile::discard`: the drop removes them; a join error leaves orphans that
        // recovery removes at the next open.
        let _ = blocking(move || {
            drop(self);
            Ok(())
        })
        .await;
    }
}

impl Drop for FreedFiles {
    fn drop(&mut self) {
        if self.armed {
            self.data.remove_files(self.ids.drain(..));
        }
    }
}

/// What the async side enforces while pulling a body.
#[derive(Debug, Clone, Copy)]
pub(super) struct BodyLimits {
    /// Largest acceptable body.
    pub(super) max_len: u64,
    /// The length the client declared.
    pub(super) expected_len: Option<u64>,
    /// The `Content-MD5` the client sent.
    pub(super) content_md5: Option<[u8; 16]>,
}

impl BodyLimits {
    /// Refuses a declared length over the limit before any byte is read.
    pub(super) fn check_declared(&self) -> Result<(), StoreError> {
        match self.expected_len {
            Some(expected) if expected > self.max_len => Err(StoreError::EntityTooLarge {
                limit: self.max_len,
            }),
            _ => Ok(()),
        }
    }

    /// Checks the running total after a chunk: over the limit, or past the declared length.
    pub(super) fn check_received(&self, received: u64) -> Result<(), StoreError> {
        if received > self.max_len {
            return Err(StoreError::EntityTooLarge {
                limit: self.max_len,
            });
        }
        match self.expected_len {
            Some(expected) if received > expected => {
                Err(StoreError::IncompleteBody { expected, received })
            }
            _ => Ok(()),
        }
    }

    /// Checks the whole body: its length against the declared one, its digest against
    /// `Content-MD5`.
    pub(super) fn check_complete(&self, len: u64, md5: &[u8; 16]) -> Result<(), StoreError> {
        if let Some(expected) = self.expected_len
            && expected != len
        {
            return Err(StoreError::IncompleteBody {
                expected,
                received: len,
            });
        }
        if self.content_md5.is_some_and(|want| want != *md5) {
            return Err(StoreError::BadDigest);
        }
        Ok(())
    }
}

/// A body written to a durable data file, not yet in the index.
#[derive(Debug)]
pub(super) struct Written {
    /// The file, removed if dropped.
    pub(super) file: NewFile,
    /// Its length.
    pub(super) len: u64,
    /// MD5 of its bytes.
    pub(super) md5: [u8; 16],
}

/// Messages to the writer task.
enum ToWriter {
    Chunk(Bytes),
    Finish,
}

/// How pulling the body ended.
enum Pulled {
    /// The body ended cleanly after this many bytes.
    Complete(u64),
    /// The writer task stopped (its error explains why).
    WriterGone,
}

/// Streams `body` into a new data file, fsyncs it and its directory, and checks the limits,
/// the declared length and the digest. On error the file is gone.
pub(super) async fn write_body(
    data: &DataDir,
    io: &WritePath,
    mut body: BodyStream,
    limits: BodyLimits,
) -> Result<Written, StoreError> {
    limits.check_declared()?;
    let (tx, rx) = mpsc::channel(WRITE_QUEUE);
    let writer = blocking({
        let data = data.clone();
        let io = io.clone();
        move || write_file(&data, &io, rx)
    });
    let pulled = pull_body(&mut body, &tx, limits).await;
    let (file, md5, len) = match pulled {
        Ok(Pulled::Complete(len)) => {
            // A failed send means the writer already stopped; its result says why.
            let _ = tx.send(ToWriter::Finish).await;
            drop(tx);
            let (file, md5) = writer.await?;
            (file, md5, len)
        }
        Ok(Pulled::WriterGone) => {
            drop(tx);
            let (file, _) = writer.await?;
            // The writer only succeeds after `Finish`, which was never sent.
            file.discard().await;
            return Err(StoreError::Body {
                source: io::Error::other("data file writer stopped"),
            });
        }
        Err(e) => {
            drop(tx);
            // The writer sees the channel close without `Finish` and removes its file.
            let _ = writer.await;
            return Err(e);
        }
    };
    if let Err(e) = limits.check_complete(len, &md5) {
        file.discard().await;
        return Err(e);
    }
    Ok(Written { file, len, md5 })
}

/// Pulls the client's body, enforcing the limits, and forwards it to the writer.
async fn pull_body(
    body: &mut BodyStream,
    tx: &mpsc::Sender<ToWriter>,
    limits: BodyLimits,
) -> Result<Pulled, StoreError> {
    let mut received: u64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|source| StoreError::Body { source })?;
        if chunk.is_empty() {
            continue;
        }
        received = received.saturating_add(chunk.len() as u64);
        limits.check_received(received)?;
        if tx.send(ToWriter::Chunk(chunk)).await.is_err() {
            return Ok(Pulled::WriterGone);
        }
    }
    Ok(Pulled::Complete(received))
}

/// The writer task: creates the file, hashes and writes chunks until `Finish`, then fsyncs
/// the file and its directory. Blocking.
fn write_file(
    data: &DataDir,
    io: &WritePath,
    mut rx: mpsc::Receiver<ToWriter>,
) -> Result<(NewFile, [u8; 16]), StoreError> {
    let id = FileId::random();
    let path = data.path(id);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(io_err("create data file", &path))?;
    let guard = NewFile::new(data.clone(), id);
    let mut out = FileWriter::new(io, file);
    let mut md5 = Md5::new();
    loop {
        match rx.blocking_recv() {
            Some(ToWriter::Chunk(chunk)) => {
                md5.update(&chunk);
                out.write_all(&chunk)
                    .map_err(io_err("write data file", &path))?;
            }
            Some(ToWriter::Finish) => break,
            None => {
                return Err(StoreError::Body {
                    source: io::Error::other("body abandoned before its end"),
                });
            }
        }
    }
    out.finish()
        .map_err(io_err("write and fsync data file", &path))?;
    sync_dir(&data.shard_dir(id))?;
    Ok((guard, md5.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::local::pool::{BufferPool, PAGE};
    use crate::store::local::read_engine::ReadEngineKind;
    use crate::store::local::uring::UringEngine;
    use crate::store::local::writer::{WRITE_BUFFER, WRITE_DEPTH, WriteEngine};
    use crate::store::testing::body_from;

    fn plain() -> WritePath {
        WritePath {
            engine: WriteEngine::Plain,
            counters: Arc::default(),
        }
    }

    fn ring() -> WritePath {
        let pool = BufferPool::new(2, PAGE);
        let started = UringEngine::start(&pool).unwrap();
        WritePath {
            engine: WriteEngine::Uring(Arc::new(started.engine)),
            counters: Arc::default(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn both_engines_write_bodies_of_many_buffers_whole_and_fsync_them() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path().join("data"));
        data.create_layout().unwrap();
        // More buffers than the ring keeps in flight, chunks that straddle buffers, and a tail.
        let whole = crate::store::testing::pattern(WRITE_BUFFER * (WRITE_DEPTH + 2) + 12_345, 7);
        for io in [ring(), plain()] {
            let chunks = whole.chunks(65_537).map(Bytes::copy_from_slice).collect();
            let body = crate::store::testing::body_from_chunks(chunks);
            let written = write_body(&data, &io, body, limits(1 << 30)).await.unwrap();
            assert_eq!(
                std::fs::read(data.path(written.file.keep())).unwrap(),
                whole
            );
            let stats = io.counters.snapshot(ReadEngineKind::Uring);
            assert_eq!(stats.write_bytes, whole.len() as u64);
            assert_eq!(stats.syncs, 1);
        }
    }

    fn limits(max_len: u64) -> BodyLimits {
        BodyLimits {
            max_len,
            expected_len: None,
            content_md5: None,
        }
    }

    fn files_in(data: &DataDir) -> usize {
        std::fs::read_dir(data.root())
            .unwrap()
            .map(|d| std::fs::read_dir(d.unwrap().path()).unwrap().count())
            .sum()
    }

    #[tokio::test]
    async fn written_body_lands_in_its_shard_with_its_md5() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path().join("data"));
        data.create_layout().unwrap();
        let written = write_body(&data, &plain(), body_from(&b"hello"[..]), limits(10))
            .await
            .unwrap();
        let id = written.file.keep();
        assert_eq!(std::fs::read(data.path(id)).unwrap(), b"hello");
        assert_eq!(written.len, 5);
        assert_eq!(hex::encode(written.md5), "5d41402abc4b2a76b9719d911017c592");
    }

    #[tokio::test]
    async fn body_of_many_more_chunks_than_the_queue_holds_is_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path().join("data"));
        data.create_layout().unwrap();
        let chunks: Vec<Bytes> = (0..=255u8).map(|i| Bytes::from(vec![i; 100])).collect();
        let whole = chunks.concat();
        let body = crate::store::testing::body_from_chunks(chunks);
        let written = write_body(&data, &plain(), body, limits(1 << 20))
            .await
            .unwrap();
        assert_eq!(
            std::fs::read(data.path(written.file.keep())).unwrap(),
            whole
        );
    }

    #[tokio::test]
    async fn oversized_body_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path().join("data"));
        data.create_layout().unwrap();
        let err = write_body(&data, &plain(), body_from(vec![7u8; 11]), limits(10))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::EntityTooLarge { limit: 10 }));
        assert_eq!(files_in(&data), 0);
    }

    #[tokio::test]
    async fn dropped_new_file_is_removed_but_abandoned_one_stays() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path().join("data"));
        data.create_layout().unwrap();
        let a = write_body(&data, &plain(), body_from(&b"a"[..]), limits(10))
            .await
            .unwrap();
        let b = write_body(&data, &plain(), body_from(&b"b"[..]), limits(10))
            .await
            .unwrap();
        assert_eq!(files_in(&data), 2);
        drop(a);
        assert_eq!(files_in(&data), 1);
        b.file.abandon();
        assert_eq!(files_in(&data), 1);
    }
}
