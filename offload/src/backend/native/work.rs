// SPDX-License-Identifier: Apache-2.0
//! The part of a native job that runs on a worker thread: pieces of input in, framed into
//! chunks of whole records, fed to the kernel's CPU run, output sent as it is produced.
//!
//! Chunks are slices of the input pieces (no copy) except a record that straddles two pieces,
//! which the [`Framer`] joins. The thread checks the stop flag between chunks, so a job whose
//! reader went away or whose time ran out ends within one chunk.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use quarry_kernels::{CpuRun, Framer, Framing, FramingError, KernelError};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Everything a worker needs for one job.
pub(super) struct Work {
    pub(super) run: Box<dyn CpuRun>,
    pub(super) framing: Framing,
    pub(super) max_record: usize,
    pub(super) max_output: u64,
    pub(super) pieces: mpsc::Receiver<io::Result<Bytes>>,
    pub(super) out: mpsc::Sender<io::Result<Bytes>>,
    /// Set by the async side when the job must end now (reader gone, time limit).
    pub(super) stop: Arc<AtomicBool>,
}

/// What a finished job measured.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Counters {
    pub(super) bytes_in: u64,
    pub(super) bytes_out: u64,
    /// Time spent inside the kernel.
    pub(super) busy: Duration,
}

/// Why a job ended early.
#[derive(Debug)]
pub(super) enum WorkFailure {
    /// The kernel refused a parameter at run time.
    Param(KernelError),
    /// The kernel refused its input.
    Kernel(KernelError),
    /// A record was longer than the limit.
    Framing(FramingError),
    /// The input stream failed.
    Input(io::Error),
    /// The reader of the output went away.
    Cancelled,
    /// The output grew past the function's limit.
    OutputLimit,
    /// The async side asked it to stop (time limit or cancellation noticed there).
    Stopped,
}

impl From<KernelError> for WorkFailure {
    fn from(e: KernelError) -> Self {
        match e {
            KernelError::Param { .. } => Self::Param(e),
            KernelError::Input(_) => Self::Kernel(e),
        }
    }
}

impl Work {
    /// Runs the job to its end on the calling (worker) thread.
    pub(super) fn run(mut self) -> (Counters, Result<(), WorkFailure>) {
        let mut counters = Counters::default();
        let result = self.drive(&mut counters);
        (counters, result)
    }

    fn drive(&mut self, counters: &mut Counters) -> Result<(), WorkFailure> {
        let mut framer = Framer::new(self.framing, self.max_record);
        let mut buf = Vec::new();
        while let Some(piece) = self.pieces.blocking_recv() {
            self.check_stop()?;
            let piece = piece.map_err(WorkFailure::Input)?;
            counters.bytes_in += piece.len() as u64;
            for chunk in framer.push(piece).map_err(WorkFailure::Framing)? {
                self.feed(&chunk, &mut buf, counters)?;
                self.check_stop()?;
            }
        }
        self.check_stop()?;
        if let Some(rest) = framer.finish() {
            self.feed(&rest, &mut buf, counters)?;
        }
        let started = Instant::now();
        self.run.finish(&mut buf)?;
        counters.busy += started.elapsed();
        self.emit(&mut buf, counters)
    }

    fn feed(
        &mut self,
        chunk: &[u8],
        buf: &mut Vec<u8>,
        counters: &mut Counters,
    ) -> Result<(), WorkFailure> {
        let started = Instant::now();
        self.run.feed(chunk, buf)?;
        counters.busy += started.elapsed();
        self.emit(buf, counters)
    }

    /// Sends what the kernel has produced so far (nothing when it produced nothing).
    fn emit(&mut self, buf: &mut Vec<u8>, counters: &mut Counters) -> Result<(), WorkFailure> {
        if buf.is_empty() {
            return Ok(());
        }
        counters.bytes_out += buf.len() as u64;
        if counters.bytes_out > self.max_output {
            return Err(WorkFailure::OutputLimit);
        }
        let bytes = Bytes::from(std::mem::take(buf));
        self.out
            .blocking_send(Ok(bytes))
            .map_err(|_| WorkFailure::Cancelled)
    }

    fn check_stop(&self) -> Result<(), WorkFailure> {
        if self.out.is_closed() {
            Err(WorkFailure::Cancelled)
        } else if self.stop.load(Ordering::Acquire) {
            Err(WorkFailure::Stopped)
        } else {
            Ok(())
        }
    }
}
