// SPDX-License-Identifier: Apache-2.0
//! How a body's bytes reach its data file: through the io_uring engine's ring, or with plain
//! `write` calls where the store reads with pread.
//!
//! The writer task (`data.rs`) hashes the body and hands its bytes to a [`FileWriter`], which
//! gathers them into buffers of [`WRITE_BUFFER`] bytes:
//!
//! - [`WriteEngine::Plain`]: a `write` per full buffer on the writer's thread, then `fsync`.
//! - [`WriteEngine::Uring`]: each full buffer becomes one [`ChunkWrite`] lent to the ring by
//!   ownership, with up to [`WRITE_DEPTH`] in flight at distinct offsets. [`FileWriter::finish`]
//!   waits for every data write to complete (a short write is continued from where it stopped)
//!   and only then submits the `fsync` to the ring, so the fsync is ordered after the data: the
//!   kernel has taken every byte into the page cache before the sync starts. (A linked SQE
//!   chain would order the fsync after the writes too, but not after writes that were split
//!   into a continuation; waiting costs one ring round trip per body.)
//!
//! Files are not registered with the ring: each data file is written once, by one task, so a
//! registration would cost as many syscalls as it saves.
//!
//! The durability contract does not change with the engine: [`FileWriter::finish`] returns
//! only after the file's data is fsynced, and the caller fsyncs the directory next.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write as _};
use std::sync::Arc;

use tokio::sync::oneshot;

use super::engine_stats::IoCounters;
use super::uring::UringEngine;

/// Bytes gathered before one write to the data file.
pub(super) const WRITE_BUFFER: usize = 1 << 20;
/// Writes of one body in flight on the ring.
pub(super) const WRITE_DEPTH: usize = 4;

/// One write lent to the ring: write `buf[done..]` at `offset + done` in `file`, and send the
/// buffer back through `reply`.
#[derive(Debug)]
pub(super) struct ChunkWrite {
    /// The file, kept open until the write completed.
    pub(super) file: Arc<File>,
    /// File offset of `buf[0]`.
    pub(super) offset: u64,
    /// The bytes, owned by the write until it completes.
    pub(super) buf: Vec<u8>,
    /// Bytes of `buf` already written by earlier (short) writes.
    pub(super) done: usize,
    /// Where the completed write goes.
    pub(super) reply: oneshot::Sender<WriteDone>,
}

/// A completed write: how many bytes this write wrote, and the write back.
#[derive(Debug)]
pub(super) struct WriteDone {
    /// Bytes written by this submission, or why it failed.
    pub(super) result: io::Result<usize>,
    /// The buffer.
    pub(super) buf: Vec<u8>,
}

impl ChunkWrite {
    /// Answers the write without doing it (the engine is gone).
    pub(super) fn refuse(self, error: io::Error) {
        let _ = self.reply.send(WriteDone {
            result: Err(error),
            buf: self.buf,
        });
    }
}

/// One `fsync` of a file on the ring.
#[derive(Debug)]
pub(super) struct FileSync {
    /// The file, kept open until the sync completed.
    pub(super) file: Arc<File>,
    /// Where the outcome goes.
    pub(super) reply: oneshot::Sender<io::Result<()>>,
}

impl FileSync {
    /// Answers the sync without doing it (the engine is gone).
    pub(super) fn refuse(self, error: io::Error) {
        let _ = self.reply.send(Err(error));
    }
}

/// Which way data files are written; follows the read engine.
#[derive(Debug, Clone)]
pub(super) enum WriteEngine {
    /// Writes and the fsync go through the io_uring engine's ring.
    Uring(Arc<UringEngine>),
    /// `write` and `fsync` calls on the writer's thread.
    Plain,
}

/// What data files are written with: the engine and the store's I/O counters.
#[derive(Debug, Clone)]
pub(super) struct WritePath {
    /// The engine.
    pub(super) engine: WriteEngine,
    /// Where writes and syncs are counted.
    pub(super) counters: Arc<IoCounters>,
}

/// Writes one new data file from the front; blocking (it runs on the writer task's thread).
#[derive(Debug)]
pub(super) enum FileWriter {
    /// See [`WriteEngine::Uring`].
    Uring(RingWriter),
    /// See [`WriteEngine::Plain`].
    Plain(PlainWriter),
}

impl FileWriter {
    /// A writer for `file`, just created and empty.
    pub(super) fn new(path: &WritePath, file: File) -> Self {
        let counters = Arc::clone(&path.counters);
        match &path.engine {
            WriteEngine::Uring(engine) => Self::Uring(RingWriter {
                engine: Arc::clone(engine),
                file: Arc::new(file),
                pending: Vec::with_capacity(WRITE_BUFFER),
                offset: 0,
                in_flight: VecDeque::new(),
                spare: Vec::new(),
                counters,
            }),
            WriteEngine::Plain => Self::Plain(PlainWriter {
                file,
                pending: Vec::with_capacity(WRITE_BUFFER),
                counters,
            }),
        }
    }

    /// Appends `bytes` to the file.
    pub(super) fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Self::Uring(ring) => ring.write_all(bytes),
            Self::Plain(plain) => plain.write_all(bytes),
        }
    }

    /// Writes what is buffered, waits for every write, then fsyncs the file's data.
    pub(super) fn finish(self) -> io::Result<()> {
        match self {
            Self::Uring(ring) => ring.finish(),
            Self::Plain(plain) => plain.finish(),
        }
    }
}

/// The plain side of [`FileWriter`]: the same buffers as the ring's, written in turn.
#[derive(Debug)]
pub(super) struct PlainWriter {
    file: File,
    /// Bytes gathered for the next write.
    pending: Vec<u8>,
    counters: Arc<IoCounters>,
}

impl PlainWriter {
    fn write_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let room = WRITE_BUFFER - self.pending.len();
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            self.pending.extend_from_slice(now);
            bytes = rest;
            if self.pending.len() == WRITE_BUFFER {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.file.write_all(&self.pending)?;
            self.counters.add_write(self.pending.len());
            self.pending.clear();
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<()> {
        self.flush()?;
        self.file.sync_all()?;
        self.counters.add_sync();
        Ok(())
    }
}

/// A write of one buffer on the ring.
#[derive(Debug)]
struct InFlightWrite {
    done: oneshot::Receiver<WriteDone>,
    /// File offset of the buffer's first byte.
    offset: u64,
    /// The buffer's length: the write is done once this many bytes are written.
    len: usize,
}

/// The io_uring side of [`FileWriter`].
#[derive(Debug)]
pub(super) struct RingWriter {
    engine: Arc<UringEngine>,
    file: Arc<File>,
    /// Bytes gathered for the next write.
    pending: Vec<u8>,
    /// File offset of `pending[0]`.
    offset: u64,
    /// Writes submitted, oldest first.
    in_flight: VecDeque<InFlightWrite>,
    /// Buffers back from completed writes, reused for the next ones.
    spare: Vec<Vec<u8>>,
    counters: Arc<IoCounters>,
}

impl RingWriter {
    fn write_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let room = WRITE_BUFFER - self.pending.len();
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            self.pending.extend_from_slice(now);
            bytes = rest;
            if self.pending.len() == WRITE_BUFFER {
                self.submit_pending()?;
            }
        }
        Ok(())
    }

    /// Lends the gathered bytes to the ring, first waiting for the oldest write when
    /// [`WRITE_DEPTH`] are in flight.
    fn submit_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        if self.in_flight.len() >= WRITE_DEPTH {
            self.wait_oldest()?;
        }
        let next = self.spare.pop().unwrap_or_default();
        let buf = std::mem::replace(&mut self.pending, next);
        self.pending.clear();
        self.pending.reserve(WRITE_BUFFER);
        let len = buf.len();
        let offset = self.offset;
        self.offset += len as u64;
        let done = self.submit(offset, buf, 0);
        self.in_flight
            .push_back(InFlightWrite { done, offset, len });
        Ok(())
    }

    fn submit(&self, offset: u64, buf: Vec<u8>, done: usize) -> oneshot::Receiver<WriteDone> {
        let (reply, rx) = oneshot::channel();
        self.engine.submit_write(ChunkWrite {
            file: Arc::clone(&self.file),
            offset,
            buf,
            done,
            reply,
        });
        rx
    }

    /// Waits for the oldest write, continuing it until all its bytes are written.
    fn wait_oldest(&mut self) -> io::Result<()> {
        let Some(InFlightWrite {
            done: mut rx,
            offset,
            len,
        }) = self.in_flight.pop_front()
        else {
            return Ok(());
        };
        let mut written = 0;
        loop {
            let WriteDone { result, buf } = rx.blocking_recv().map_err(|_| stopped())?;
            let n = result?;
            if n == 0 {
                return Err(io::Error::from(io::ErrorKind::WriteZero));
            }
            written += n;
            if written >= len {
                self.counters.add_write(len);
                self.spare.push(buf);
                return Ok(());
            }
            // A short write: the rest of the buffer goes right after what was written.
            // Later writes of this file may be in flight; they cover other offsets.
            rx = self.submit(offset, buf, written);
        }
    }

    fn finish(mut self) -> io::Result<()> {
        self.submit_pending()?;
        while !self.in_flight.is_empty() {
            self.wait_oldest()?;
        }
        // Every data write has completed: only now is the fsync submitted.
        let (reply, rx) = oneshot::channel();
        self.engine.submit_sync(FileSync {
            file: Arc::clone(&self.file),
            reply,
        });
        rx.blocking_recv().map_err(|_| stopped())??;
        self.counters.add_sync();
        Ok(())
    }
}

fn stopped() -> io::Error {
    io::Error::other("the io_uring engine stopped before the write completed")
}
