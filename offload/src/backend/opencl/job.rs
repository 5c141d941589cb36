// SPDX-License-Identifier: Apache-2.0
//! One job on an OpenCL device: bind the kernel to the job's params, wait for a slot, then run
//! the executor on a blocking thread, fed by a task that reads the input stream ahead.
//!
//! The executor blocks (OpenCL calls, lane threads), so it runs under `spawn_blocking`, never
//! on an async worker. It stops at the next chunk when the output's reader goes away, the
//! function's time limit passes or its output limit is crossed; the job's slot stays taken
//! until the device work has really ended.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use futures::StreamExt as _;
use quarry_kernels::Params;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::backend::OpenClBackend;
use super::executor::{ExecError, ExecStats, execute};
use crate::backend::{
    Backend as _, BackendError, ChunkStream, FunctionFailure, Job, OutputSink, RunReport,
};

/// Input pieces read ahead of the executor.
const READ_AHEAD: usize = 4;

/// Why the executor was told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Running,
    Cancelled,
    Timeout,
}

/// What the async side and the executor thread share.
#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    output_limit_hit: AtomicBool,
    bytes_out: AtomicU64,
}

pub(super) async fn run(
    backend: &OpenClBackend,
    job: Job,
    input: ChunkStream,
    out: OutputSink,
) -> Result<RunReport, BackendError> {
    let function = Arc::clone(&job.function);
    let label = function.label();
    let backend_name = backend.id.0.clone();
    let failed = |cause: FunctionFailure| BackendError::FunctionFailed {
        function: label.clone(),
        backend: backend_name.clone(),
        cause,
    };
    let Some(kernel) = backend.kernel_for(&function) else {
        return Err(BackendError::Unsupported {
            function: label.clone(),
            backend: backend_name.clone(),
        });
    };
    let bad_params = |e: quarry_kernels::KernelError| BackendError::BadParams {
        function: label.clone(),
        message: e.to_string(),
    };
    let params = Params::new(job.context.params.clone())
        .validate(kernel.info())
        .map_err(bad_params)?;
    let bound = kernel.bind(&params).map_err(bad_params)?;
    let Some(device_run) = bound.device() else {
        return Err(BackendError::Unsupported {
            function: label.clone(),
            backend: backend_name.clone(),
        });
    };

    // A slot on the device, or overload after the queue timeout.
    let waited_from = Instant::now();
    backend.queued.fetch_add(1, Ordering::Relaxed);
    let permit = tokio::time::timeout(
        backend.config.queue_timeout,
        Arc::clone(&backend.slots).acquire_owned(),
    )
    .await;
    backend.queued.fetch_sub(1, Ordering::Relaxed);
    let Ok(Ok(permit)) = permit else {
        return Err(BackendError::Overloaded {
            backend: backend_name.clone(),
            capacity: backend.load().capacity,
            waited: waited_from.elapsed(),
        });
    };

    let started = Instant::now();
    let limits = function.limits;
    let shared = Arc::new(Shared::default());
    let (piece_tx, mut piece_rx) = mpsc::channel(READ_AHEAD);
    let reader = tokio::spawn(read_ahead(input, piece_tx));
    let device = Arc::clone(&backend.device);
    let framing = bound.framing();
    let exec = backend.config.exec();
    let max_output = limits.max_output.as_u64();
    let sink = out.sender().clone();
    let thread_shared = Arc::clone(&shared);
    let mut work = tokio::task::spawn_blocking(move || {
        // Held until the device work has ended, whatever the async side has answered.
        let _permit = permit;
        let shared = thread_shared;
        let pieces = std::iter::from_fn(|| {
            if shared.stop.load(Ordering::Relaxed) {
                return Some(Err(ExecError::Cancelled));
            }
            piece_rx.blocking_recv()
        });
        execute(&device, device_run, framing, &exec, pieces, |bytes| {
            let total = shared
                .bytes_out
                .fetch_add(bytes.len() as u64, Ordering::Relaxed)
                + bytes.len() as u64;
            if total > max_output {
                shared.output_limit_hit.store(true, Ordering::Relaxed);
                return Err(ExecError::Cancelled);
            }
            sink.blocking_send(Ok(Bytes::from(bytes)))
                .map_err(|_| ExecError::Cancelled)
        })
    });

    let mut stop = Stop::Running;
    let outcome = tokio::select! {
        joined = &mut work => Some(joined),
        () = tokio::time::sleep(limits.timeout) => { stop = Stop::Timeout; None }
        () = out.sender().closed() => { stop = Stop::Cancelled; None }
    };
    let outcome = match outcome {
        Some(joined) => joined,
        None => {
            // Tell the executor to stop at its next piece and stop reading; the slot is
            // freed by the blocking thread when it has drained its lanes.
            shared.stop.store(true, Ordering::Relaxed);
            reader.abort();
            return Err(failed(match stop {
                Stop::Timeout => FunctionFailure::Timeout {
                    limit: limits.timeout,
                },
                Stop::Running | Stop::Cancelled => FunctionFailure::Cancelled,
            }));
        }
    };
    reader.abort();
    let report = |stats: &ExecStats| RunReport {
        backend: backend_name.clone(),
        bytes_in: stats.bytes_in,
        bytes_out: stats.bytes_out,
        cpu_time: std::time::Duration::ZERO,
        wall_time: started.elapsed(),
        device_time: None,
    };
    match outcome {
        Ok(Ok(stats)) => {
            tracing::debug!(
                function = %label, backend = %backend_name, chunks = stats.chunks,
                bytes_in = stats.bytes_in, bytes_out = stats.bytes_out, copied = stats.copied,
                "OpenCL job done"
            );
            Ok(report(&stats))
        }
        Ok(Err(e)) => Err(failed(classify(e, &shared, max_output))),
        Err(join) => Err(failed(FunctionFailure::Trap(format!(
            "the OpenCL executor stopped unexpectedly: {join}"
        )))),
    }
}

/// Reads the input stream ahead of the executor; ends when the stream ends or fails (the
/// error is passed on) or the executor is gone.
async fn read_ahead(mut input: ChunkStream, tx: mpsc::Sender<Result<Bytes, ExecError>>) {
    while let Some(item) = input.next().await {
        let failed = item.is_err();
        let item = item.map_err(|e| ExecError::Input(e.to_string()));
        if tx.send(item).await.is_err() || failed {
            return;
        }
    }
}

/// The function failure an executor error stands for.
fn classify(e: ExecError, shared: &Shared, max_output: u64) -> FunctionFailure {
    match e {
        ExecError::Cancelled if shared.output_limit_hit.load(Ordering::Relaxed) => {
            FunctionFailure::OutputLimit {
                limit: bytesize::ByteSize::b(max_output),
            }
        }
        ExecError::Cancelled => FunctionFailure::Cancelled,
        ExecError::Input(message) => FunctionFailure::Input(message),
        ExecError::Kernel(e) => FunctionFailure::Input(e.to_string()),
        ExecError::Framing(e) => FunctionFailure::Input(e.to_string()),
        ExecError::Device(e) => FunctionFailure::Trap(format!("the device failed: {e}")),
    }
}
