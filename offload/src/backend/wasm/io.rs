// SPDX-License-Identifier: Apache-2.0
//! The function's standard streams: stdin from the job's input chunks, stdout into the job's
//! output sink (counted, limited, first byte noticed), stderr lines into the daemon log.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures::StreamExt;
use tokio::io::AsyncWrite;
use tokio_util::io::StreamReader;
use tokio_util::sync::PollSender;

use crate::backend::{ChunkStream, OutputSink};

/// Most stderr bytes logged per invocation; the rest is counted and dropped.
const MAX_STDERR_LOGGED: usize = 64 * 1024;
/// Longest stderr line logged as one record.
const MAX_STDERR_LINE: usize = 4096;

/// Counters and flags shared between the streams and the driver of one invocation.
#[derive(Debug, Default)]
pub(super) struct StreamState {
    pub(super) bytes_in: AtomicU64,
    pub(super) bytes_out: AtomicU64,
    pub(super) input_failed: AtomicBool,
    pub(super) output_exceeded: AtomicBool,
    pub(super) reader_gone: AtomicBool,
    first_byte_seen: AtomicBool,
}

impl StreamState {
    /// Whether the function has written anything yet.
    pub(super) fn wrote_any(&self) -> bool {
        self.first_byte_seen.load(Ordering::Acquire)
    }
}

/// The job's input as the `AsyncRead` WASI reads stdin from, counting bytes and remembering an
/// input error (so the driver blames the input, not the function).
pub(super) fn stdin_reader(
    input: ChunkStream,
    state: Arc<StreamState>,
) -> StreamReader<ChunkStream, Bytes> {
    let counted = input.map(move |item| match item {
        Ok(bytes) => {
            state
                .bytes_in
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            Ok(bytes)
        }
        Err(e) => {
            state.input_failed.store(true, Ordering::Release);
            Err(e)
        }
    });
    StreamReader::new(Box::pin(counted) as ChunkStream)
}

/// stdout: each write becomes one chunk of the job's output, with backpressure from the reader.
pub(super) struct StdoutWriter {
    tx: PollSender<io::Result<Bytes>>,
    state: Arc<StreamState>,
    limit: u64,
}

impl StdoutWriter {
    pub(super) fn new(sink: &OutputSink, state: Arc<StreamState>, limit: u64) -> Self {
        Self {
            tx: PollSender::new(sink.sender().clone()),
            state,
            limit,
        }
    }
}

impl AsyncWrite for StdoutWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let written = self.state.bytes_out.load(Ordering::Relaxed);
        if written.saturating_add(buf.len() as u64) > self.limit {
            self.state.output_exceeded.store(true, Ordering::Release);
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                "output limit reached",
            )));
        }
        if ready!(self.tx.poll_reserve(cx)).is_err() {
            self.state.reader_gone.store(true, Ordering::Release);
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if self.tx.send_item(Ok(Bytes::copy_from_slice(buf))).is_err() {
            self.state.reader_gone.store(true, Ordering::Release);
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        self.state
            .bytes_out
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.state.first_byte_seen.store(true, Ordering::Release);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// stderr: complete lines go to the daemon log at info level, tagged with the function.
pub(super) struct StderrLogger {
    function: Arc<str>,
    line: Vec<u8>,
    logged: usize,
    dropped: usize,
}

impl StderrLogger {
    pub(super) fn new(function: Arc<str>) -> Self {
        Self {
            function,
            line: Vec::new(),
            logged: 0,
            dropped: 0,
        }
    }

    fn emit(&mut self) {
        if self.line.is_empty() {
            return;
        }
        if self.logged >= MAX_STDERR_LOGGED {
            self.dropped += self.line.len();
        } else {
            self.logged += self.line.len();
            let text = String::from_utf8_lossy(&self.line);
            tracing::info!(target: "quarry::function", function = %self.function, "{}", text.trim_end());
        }
        self.line.clear();
    }
}

impl AsyncWrite for StderrLogger {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        for &b in buf {
            if b == b'\n' {
                self.emit();
            } else if self.line.len() < MAX_STDERR_LINE {
                self.line.push(b);
            } else {
                self.emit();
                self.line.push(b);
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.emit();
        Poll::Ready(Ok(()))
    }
}

impl Drop for StderrLogger {
    fn drop(&mut self) {
        self.emit();
        if self.dropped > 0 {
            tracing::info!(
                target: "quarry::function",
                function = %self.function,
                dropped_bytes = self.dropped,
                "stderr beyond {MAX_STDERR_LOGGED} bytes was not logged"
            );
        }
    }
}
