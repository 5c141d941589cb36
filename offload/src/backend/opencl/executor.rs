// SPDX-License-Identifier: Apache-2.0
//! Running a kernel's [`DeviceRun`] over a stream on one device, pipelined.
//!
//! The input is re-cut into record-aligned chunks of about [`ExecConfig::chunk_size`]
//! ([`Rechunker`]). The calling thread plans each chunk ([`DeviceRun::plan`], in chunk order)
//! and hands it to one of [`ExecConfig::in_flight`] lanes, round robin; each lane is a thread
//! with its own in-order command queue and buffers, so the upload of chunk `i + 1` on one lane
//! overlaps the kernels of chunk `i` on another. Device output is handed to
//! [`DeviceRun::accept`] strictly in chunk order, and the job output goes to the `emit`
//! callback as it is produced.
//!
//! Every call here blocks: run it on a dedicated thread (`spawn_blocking`), never on an async
//! worker.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;

use bytes::Bytes;
use quarry_kernels::{ChunkPlan, DeviceRun, Framing, FramingError, KernelError};

use super::chunker::Rechunker;
use super::device::ClDevice;
use super::error::ClError;
use super::program::BuiltProgram;

/// How the executor cuts and pipelines a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecConfig {
    /// Bytes per device chunk (a chunk may exceed it by one record).
    pub chunk_size: usize,
    /// Chunks on the device at once (lanes; 2 is double buffering).
    pub in_flight: usize,
    /// The longest record accepted.
    pub max_record: usize,
}

impl Default for ExecConfig {
    fn default() -> Self {
        Self {
            chunk_size: 8 << 20,
            in_flight: 2,
            max_record: 16 << 20,
        }
    }
}

/// What one execution measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecStats {
    /// Input bytes read.
    pub bytes_in: u64,
    /// Output bytes emitted.
    pub bytes_out: u64,
    /// Chunks run on the device.
    pub chunks: u64,
    /// Input bytes copied to join records or gather small pieces.
    pub copied: u64,
}

/// Why an execution stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The kernel refused the input.
    #[error(transparent)]
    Kernel(#[from] KernelError),
    /// A record was longer than the limit.
    #[error(transparent)]
    Framing(#[from] FramingError),
    /// The device failed.
    #[error(transparent)]
    Device(#[from] ClError),
    /// The input stream failed.
    #[error("the input failed: {0}")]
    Input(String),
    /// The output's reader went away.
    #[error("the output's reader went away")]
    Cancelled,
}

/// One chunk on its way to a lane.
struct Work {
    chunk: Bytes,
    plan: ChunkPlan,
    program: Arc<BuiltProgram>,
}

/// One chunk back from a lane.
struct Done {
    chunk: Bytes,
    result: Result<Vec<u8>, ClError>,
}

/// Runs `run` over `input` on `device` (see the module docs), passing output to `emit` in
/// order. `emit` returning an error (e.g. [`ExecError::Cancelled`]) stops the execution.
pub fn execute<I, E>(
    device: &ClDevice,
    run: Box<dyn DeviceRun>,
    framing: Framing,
    config: &ExecConfig,
    input: I,
    emit: E,
) -> Result<ExecStats, ExecError>
where
    I: IntoIterator<Item = Result<Bytes, ExecError>>,
    E: FnMut(Vec<u8>) -> Result<(), ExecError>,
{
    let n = config.in_flight.max(1);
    let lanes = device.take_lanes(n)?;
    let (result, lanes) = thread::scope(|scope| {
        let mut to_lanes = Vec::with_capacity(n);
        let mut from_lanes = Vec::with_capacity(n);
        let mut threads = Vec::with_capacity(n);
        for mut lane in lanes {
            let (work_tx, work_rx) = mpsc::sync_channel::<Work>(1);
            let (done_tx, done_rx) = mpsc::sync_channel::<Done>(1);
            threads.push(scope.spawn(move || {
                for work in work_rx {
                    let input = work.chunk.get(work.plan.input.clone()).unwrap_or_default();
                    let result = lane.run(
                        device,
                        &work.program,
                        input,
                        &work.plan.consts,
                        &work.plan.launch,
                    );
                    let failed = result.is_err();
                    if done_tx
                        .send(Done {
                            chunk: work.chunk,
                            result,
                        })
                        .is_err()
                        || failed
                    {
                        return None;
                    }
                }
                Some(lane)
            }));
            to_lanes.push(work_tx);
            from_lanes.push(done_rx);
        }
        let mut pipeline = Pipeline {
            device,
            run,
            emit,
            to_lanes,
            from_lanes,
            in_flight: VecDeque::with_capacity(n),
            next: 0,
            stats: ExecStats::default(),
        };
        let result = pipeline.drive(framing, config, input);
        drop(pipeline);
        let mut back = Vec::with_capacity(n);
        let mut healthy = true;
        for t in threads {
            match t.join() {
                Ok(Some(lane)) => back.push(lane),
                Ok(None) | Err(_) => healthy = false,
            }
        }
        (result, if healthy { back } else { Vec::new() })
    });
    if result.is_ok() {
        device.return_lanes(lanes);
    }
    result
}

/// The calling thread's side: plans, dispatches, accepts in order.
struct Pipeline<'d, E> {
    device: &'d ClDevice,
    run: Box<dyn DeviceRun>,
    emit: E,
    to_lanes: Vec<mpsc::SyncSender<Work>>,
    from_lanes: Vec<mpsc::Receiver<Done>>,
    /// Lanes holding chunks, oldest first.
    in_flight: VecDeque<usize>,
    /// The lane of the next chunk.
    next: usize,
    stats: ExecStats,
}

impl<E> Pipeline<'_, E>
where
    E: FnMut(Vec<u8>) -> Result<(), ExecError>,
{
    fn drive<I>(
        &mut self,
        framing: Framing,
        config: &ExecConfig,
        input: I,
    ) -> Result<ExecStats, ExecError>
    where
        I: IntoIterator<Item = Result<Bytes, ExecError>>,
    {
        let mut chunker = Rechunker::new(framing, config.chunk_size, config.max_record);
        for piece in input {
            let piece = piece?;
            self.stats.bytes_in += piece.len() as u64;
            for chunk in chunker.push(piece)? {
                self.dispatch(chunk)?;
            }
        }
        for chunk in chunker.finish() {
            self.dispatch(chunk)?;
        }
        while !self.in_flight.is_empty() {
            self.accept_oldest()?;
        }
        let mut out = Vec::new();
        self.run.finish(&mut out)?;
        self.output(out)?;
        self.stats.copied = chunker.copied_bytes();
        Ok(self.stats)
    }

    fn dispatch(&mut self, chunk: Bytes) -> Result<(), ExecError> {
        if self.in_flight.len() == self.to_lanes.len() {
            self.accept_oldest()?;
        }
        let plan = self.run.plan(&chunk)?;
        if plan.input.start > plan.input.end || plan.input.end > chunk.len() {
            return Err(KernelError::Input(format!(
                "kernel program {} planned input {:?} outside a chunk of {} bytes",
                plan.program.name,
                plan.input,
                chunk.len()
            ))
            .into());
        }
        let program = self.device.program(plan.program)?;
        let lane = self.next;
        self.next = (self.next + 1) % self.to_lanes.len();
        self.to_lanes[lane]
            .send(Work {
                chunk,
                plan,
                program,
            })
            .map_err(|_| lane_gone())?;
        self.in_flight.push_back(lane);
        self.stats.chunks += 1;
        Ok(())
    }

    fn accept_oldest(&mut self) -> Result<(), ExecError> {
        let Some(lane) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let done = self.from_lanes[lane].recv().map_err(|_| lane_gone())?;
        let device_out = done.result?;
        let mut out = Vec::new();
        self.run.accept(&done.chunk, &device_out, &mut out)?;
        self.output(out)
    }

    fn output(&mut self, out: Vec<u8>) -> Result<(), ExecError> {
        if out.is_empty() {
            return Ok(());
        }
        self.stats.bytes_out += out.len() as u64;
        (self.emit)(out)
    }
}

fn lane_gone() -> ExecError {
    ExecError::Device(ClError::host("run a chunk", "an execution lane stopped"))
}
