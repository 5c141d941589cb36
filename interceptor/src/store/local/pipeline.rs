// SPDX-License-Identifier: Apache-2.0
//! The read-ahead pipeline: one body stream over open pieces of data files, with up to
//! `read_depth` reads in flight, handed to the consumer in order.
//!
//! Each piece (a part of one data file) is cut into chunk reads of one pool buffer each. A
//! piece whose file was opened with `O_DIRECT` is read at aligned offsets and lengths: its
//! start is aligned down to [`PAGE`] and its end up (the kernel stops at the end of the file),
//! and the chunk is trimmed to the requested bytes without a copy (`Bytes::slice`). Chunks
//! never span two pieces, so a multipart object's segment boundary is also a chunk boundary.
//!
//! The stream is driven by its consumer's polls: each poll starts reads until `read_depth` are
//! in flight (or the pool is empty), then waits for the oldest one. A short read (the engine
//! read less than asked, before the end of the file) is continued into the same buffer. A
//! chunk becomes the owner of its pool buffer, so the filled bytes reach the consumer as they
//! came from the engine.
//!
//! Dropping the stream drops the receivers of its reads; a read still in flight keeps its
//! buffer in the engine until it completes, and only then does the buffer go back to the pool.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use tokio::sync::oneshot;

use super::engine_stats::IoCounters;
use super::pool::{Acquirer, BufferPool, PAGE, PooledBuf};
use super::read::Piece;
use super::read_engine::ReadEngine;

/// One read lent to an engine: fill `len` bytes of `buf` after its filled bytes, from `offset`
/// in `file`, and send the buffer back through `reply`.
#[derive(Debug)]
pub(super) struct ChunkRead {
    /// The file, kept open until the read completed.
    pub(super) file: Arc<File>,
    /// Where in the file to read.
    pub(super) offset: u64,
    /// Bytes to read, at most the buffer's unfilled length.
    pub(super) len: usize,
    /// The buffer, owned by the read until it completes.
    pub(super) buf: PooledBuf,
    /// Where the completed read goes. A dropped receiver (the stream went away) lets the
    /// buffer go back to the pool.
    pub(super) reply: oneshot::Sender<ReadDone>,
}

/// A completed read: how many bytes it read (`0` at the end of the file), and the buffer.
#[derive(Debug)]
pub(super) struct ReadDone {
    /// Bytes read, or why the read failed.
    pub(super) result: io::Result<usize>,
    /// The buffer, with its filled count not yet advanced by the result.
    pub(super) buf: PooledBuf,
}

impl ChunkRead {
    /// Answers the read without doing it (the engine is gone).
    pub(super) fn refuse(self, error: io::Error) {
        let _ = self.reply.send(ReadDone {
            result: Err(error),
            buf: self.buf,
        });
    }
}

/// One planned chunk: the read of one buffer and the bytes of it to hand out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ChunkPlan {
    /// File offset of the buffer's first byte.
    offset: u64,
    /// Bytes to ask for.
    read_len: usize,
    /// The chunk's first byte in the buffer.
    keep_from: usize,
    /// One past the chunk's last byte in the buffer: the read is done once it filled this much.
    keep_to: usize,
}

/// A piece of a file still to be cut into chunks.
#[derive(Debug)]
struct PieceCursor {
    file: Arc<File>,
    path: Arc<Path>,
    /// File offset of the first requested byte.
    first: u64,
    /// File offset of the next read.
    pos: u64,
    /// One past the last requested byte.
    end: u64,
    /// Read offsets and lengths are multiples of this (`PAGE` for `O_DIRECT`, else 1).
    align: u64,
}

impl PieceCursor {
    fn new(piece: Piece) -> Self {
        let align = if piece.direct { PAGE as u64 } else { 1 };
        Self {
            file: Arc::new(piece.file),
            path: Arc::from(piece.path),
            first: piece.offset,
            pos: piece.offset / align * align,
            end: piece.offset + piece.len,
            align,
        }
    }

    /// The next chunk of at most `chunk` bytes (a multiple of `align`), if any is left.
    fn next_chunk(&mut self, chunk: u64) -> Option<ChunkPlan> {
        if self.pos >= self.end {
            return None;
        }
        let aligned_end = self.end.div_ceil(self.align) * self.align;
        let read_len = chunk.min(aligned_end - self.pos);
        let plan = ChunkPlan {
            offset: self.pos,
            read_len: to_usize(read_len),
            keep_from: to_usize(self.first.saturating_sub(self.pos)),
            keep_to: to_usize(self.end.min(self.pos + read_len) - self.pos),
        };
        self.pos += read_len;
        Some(plan)
    }
}

/// A length within one buffer (at most the buffer size, a `usize`).
fn to_usize(n: u64) -> usize {
    usize::try_from(n).expect("chunk lengths are at most the buffer size")
}

/// A read in flight, in stream order.
#[derive(Debug)]
struct InFlight {
    file: Arc<File>,
    path: Arc<Path>,
    chunk: ChunkPlan,
    done: oneshot::Receiver<ReadDone>,
}

/// The body stream of a file-backed object: see the module doc.
#[derive(Debug)]
pub(super) struct ReadStream {
    engine: ReadEngine,
    pool: BufferPool,
    acquirer: Acquirer,
    /// Pieces not fully planned yet; the front one is being cut.
    pieces: VecDeque<PieceCursor>,
    /// Reads started and not handed out yet, oldest first.
    in_flight: VecDeque<InFlight>,
    /// Most reads in `in_flight`.
    depth: usize,
    /// Set after the last chunk or an error: the stream yields nothing more.
    finished: bool,
    /// Where completed reads are counted.
    counters: Arc<IoCounters>,
}

impl ReadStream {
    /// A stream over `pieces` in order.
    pub(super) fn new(
        engine: ReadEngine,
        pool: BufferPool,
        depth: usize,
        pieces: Vec<Piece>,
        counters: Arc<IoCounters>,
    ) -> Self {
        Self {
            engine,
            acquirer: pool.acquirer(),
            pool,
            pieces: pieces
                .into_iter()
                .filter(|p| p.len > 0)
                .map(PieceCursor::new)
                .collect(),
            in_flight: VecDeque::new(),
            depth: depth.max(1),
            finished: false,
            counters,
        }
    }

    /// Starts reads until `depth` are in flight, the pieces are all planned, or the pool is
    /// empty. With nothing in flight an empty pool gives an overflow buffer, so a stream
    /// whose consumer holds all its chunks still progresses.
    fn start_reads(&mut self, cx: &mut Context<'_>) {
        let chunk = self.pool.buffer_size() as u64;
        while self.in_flight.len() < self.depth {
            // Drop exhausted pieces first, so an empty pool is only waited for with work left.
            while self.pieces.front().is_some_and(|p| p.pos >= p.end) {
                self.pieces.pop_front();
            }
            let Some(piece) = self.pieces.front_mut() else {
                return;
            };
            let buf = match self.acquirer.poll_acquire(cx) {
                Poll::Ready(buf) => buf,
                Poll::Pending if self.in_flight.is_empty() => self.pool.overflow(),
                Poll::Pending => return,
            };
            let plan = piece
                .next_chunk(chunk)
                .expect("the front piece has bytes left");
            let (reply, done) = oneshot::channel();
            self.engine.submit(ChunkRead {
                file: Arc::clone(&piece.file),
                offset: plan.offset,
                len: plan.read_len,
                buf,
                reply,
            });
            self.in_flight.push_back(InFlight {
                file: Arc::clone(&piece.file),
                path: Arc::clone(&piece.path),
                chunk: plan,
                done,
            });
        }
    }

    /// Ends the stream with `error`; reads in flight finish in the engine and free their
    /// buffers there.
    fn fail(&mut self, error: io::Error) -> Poll<Option<io::Result<Bytes>>> {
        self.finished = true;
        self.in_flight.clear();
        self.pieces.clear();
        Poll::Ready(Some(Err(error)))
    }
}

impl Stream for ReadStream {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(None);
        }
        loop {
            this.start_reads(cx);
            let Some(head) = this.in_flight.front_mut() else {
                this.finished = true;
                return Poll::Ready(None);
            };
            let ReadDone { result, mut buf } = match Pin::new(&mut head.done).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(done)) => done,
                Poll::Ready(Err(_)) => {
                    let e = io::Error::other("the read engine stopped");
                    return this.fail(e);
                }
            };
            let n = match result {
                Ok(n) => n,
                Err(e) => {
                    let path = head.path.display();
                    let msg = format!("failed to read data file {path}: {e}");
                    return this.fail(io::Error::new(e.kind(), msg));
                }
            };
            this.counters.add_read(n);
            buf.advance(n);
            let chunk = head.chunk;
            if buf.filled() >= chunk.keep_to {
                this.in_flight.pop_front();
                let bytes = Bytes::from_owner(buf).slice(chunk.keep_from..chunk.keep_to);
                // Keep the device busy while the consumer works on this chunk.
                this.start_reads(cx);
                return Poll::Ready(Some(Ok(bytes)));
            }
            if n == 0 {
                let path = head.path.display();
                let msg = format!("data file {path} ended before its recorded length");
                return this.fail(io::Error::new(io::ErrorKind::UnexpectedEof, msg));
            }
            // A short read: ask for the rest into the same buffer.
            let (reply, done) = oneshot::channel();
            let filled = buf.filled();
            head.done = done;
            this.engine.submit(ChunkRead {
                file: Arc::clone(&head.file),
                offset: chunk.offset + filled as u64,
                len: chunk.read_len - filled,
                buf,
                reply,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(offset: u64, len: u64, align: u64) -> PieceCursor {
        let file = tempfile::tempfile().unwrap();
        PieceCursor {
            file: Arc::new(file),
            path: Arc::from(Path::new("f")),
            first: offset,
            pos: offset / align * align,
            end: offset + len,
            align,
        }
    }

    fn plans(mut c: PieceCursor, chunk: u64) -> Vec<(u64, usize, usize, usize)> {
        std::iter::from_fn(|| c.next_chunk(chunk))
            .map(|p| (p.offset, p.read_len, p.keep_from, p.keep_to))
            .collect()
    }

    #[test]
    fn buffered_pieces_are_cut_at_the_requested_bytes() {
        assert_eq!(
            plans(cursor(100, 10_000, 1), 4096),
            [
                (100, 4096, 0, 4096),
                (4196, 4096, 0, 4096),
                (8292, 1808, 0, 1808)
            ]
        );
    }

    #[test]
    fn direct_pieces_read_aligned_blocks_and_trim_the_ends() {
        // Bytes 100..10_100: the first block starts at 0, the tail is read as a whole block.
        assert_eq!(
            plans(cursor(100, 10_000, 4096), 8192),
            [(0, 8192, 100, 8192), (8192, 4096, 0, 1908)]
        );
        // An aligned start and an end on a block boundary need no trimming.
        assert_eq!(
            plans(cursor(4096, 8192, 4096), 4096),
            [(4096, 4096, 0, 4096), (8192, 4096, 0, 4096)]
        );
    }

    #[test]
    fn a_range_inside_one_block_is_one_read() {
        assert_eq!(
            plans(cursor(5000, 10, 4096), 1 << 20),
            [(4096, 4096, 904, 914)]
        );
    }
}
