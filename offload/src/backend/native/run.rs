// SPDX-License-Identifier: Apache-2.0
//! The async side of one native job: bind the kernel to the job's params, wait for a worker
//! slot (bounded queue, `Overloaded` after the queue timeout), hand the work to a worker thread,
//! feed it the input stream, and classify how it ended.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use quarry_kernels::{BoundKernel, Kernel, Params};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::NativeBackend;
use super::work::{Counters, Work, WorkFailure};
use crate::backend::{
    BackendError, BackendId, ChunkStream, FunctionFailure, Job, OutputSink, RunReport,
};
use crate::function::{FunctionLimits, Variant};

/// Input pieces buffered between the input stream and the worker.
const INPUT_DEPTH: usize = 4;

/// What the worker sends back: its counters and outcome, or the panic that ended it.
type Outcome = Result<(Counters, Result<(), WorkFailure>), Box<dyn Any + Send>>;

/// Runs `job` on `backend`'s workers; reports and errors name `name` (the native backend's
/// own id, or that of a simulated device whose fixed programs run here).
pub(super) async fn run(
    backend: &NativeBackend,
    name: &BackendId,
    job: Job,
    mut input: ChunkStream,
    out: OutputSink,
) -> Result<RunReport, BackendError> {
    let label = job.function.label();
    let backend_name = name.0.clone();
    let failed = |cause: FunctionFailure| BackendError::FunctionFailed {
        function: label.clone(),
        backend: backend_name.clone(),
        cause,
    };
    let bound = bind(&job, &label, &backend_name)?;
    let Some(cpu_run) = bound.cpu() else {
        return Err(BackendError::Unsupported {
            function: label.clone(),
            backend: backend_name.clone(),
        });
    };
    let limits = job.function.limits;

    let permit = backend.admit().await?;
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let (piece_tx, piece_rx) = mpsc::channel(INPUT_DEPTH);
    let (done_tx, mut done_rx) = oneshot::channel::<Outcome>();
    let work = Work {
        run: cpu_run,
        framing: bound.framing(),
        max_record: backend.max_record,
        max_output: limits.max_output.as_u64(),
        pieces: piece_rx,
        out: out.sender().clone(),
        stop: Arc::clone(&stop),
    };
    let task = Box::new(move || {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work.run()));
        drop(permit);
        let _ = done_tx.send(outcome);
    });
    if backend.pool.submit(task).is_err() {
        return Err(BackendError::Setup {
            function: label.clone(),
            backend: backend_name.clone(),
            message: "the worker pool has stopped".to_owned(),
        });
    }

    // Feed the worker until it finishes; stop it when the reader leaves or time runs out.
    let feed = async move {
        while let Some(item) = input.next().await {
            let last = item.is_err();
            if piece_tx.send(item).await.is_err() || last {
                break;
            }
        }
    };
    tokio::pin!(feed);
    let deadline = tokio::time::sleep(limits.timeout);
    tokio::pin!(deadline);
    let mut fed = false;
    let outcome = loop {
        tokio::select! {
            done = &mut done_rx => break Ending::Finished(done),
            () = &mut feed, if !fed => fed = true,
            () = &mut deadline => break Ending::Timeout,
            () = out.sender().closed() => break Ending::Cancelled,
        }
    };
    stop.store(true, Ordering::Release);
    let report = |counters: Counters| RunReport {
        backend: backend_name.clone(),
        bytes_in: counters.bytes_in,
        bytes_out: counters.bytes_out,
        cpu_time: counters.busy,
        wall_time: started.elapsed(),
        device_time: None,
    };
    let result = match outcome {
        Ending::Timeout => Err(failed(FunctionFailure::Timeout {
            limit: limits.timeout,
        })),
        Ending::Cancelled => Err(failed(FunctionFailure::Cancelled)),
        Ending::Finished(Err(_)) => Err(failed(FunctionFailure::Trap(
            "the worker thread ended without a result".to_owned(),
        ))),
        Ending::Finished(Ok(Err(panic))) => Err(failed(FunctionFailure::Trap(format!(
            "the kernel panicked: {}",
            panic_message(panic.as_ref())
        )))),
        Ending::Finished(Ok(Ok((counters, Ok(()))))) => Ok(report(counters)),
        Ending::Finished(Ok(Ok((_, Err(failure))))) => {
            Err(classify(failure, &label, limits, &failed))
        }
    };
    if let Err(e) = &result {
        tracing::debug!(target: "quarry::function", function = %label, backend = %backend_name, "{e}");
    }
    result
}

/// How the wait for the worker ended.
enum Ending {
    Finished(Result<Outcome, oneshot::error::RecvError>),
    Timeout,
    Cancelled,
}

/// The job's kernel bound to the job's params, or a `BadParams` naming the fix.
fn bind(job: &Job, label: &str, backend: &str) -> Result<Arc<dyn BoundKernel>, BackendError> {
    let kernel: Option<&Arc<dyn Kernel>> = job.function.variants.iter().find_map(|v| match v {
        Variant::Kernel(k) if k.info().cpu => Some(k),
        _ => None,
    });
    let Some(kernel) = kernel else {
        return Err(BackendError::Unsupported {
            function: label.to_owned(),
            backend: backend.to_owned(),
        });
    };
    let bad = |e: quarry_kernels::KernelError| BackendError::BadParams {
        function: label.to_owned(),
        message: e.to_string(),
    };
    let params = Params::new(job.context.params.clone())
        .validate(kernel.info())
        .map_err(bad)?;
    kernel.bind(&params).map_err(bad)
}

fn classify(
    failure: WorkFailure,
    label: &str,
    limits: FunctionLimits,
    failed: &dyn Fn(FunctionFailure) -> BackendError,
) -> BackendError {
    match failure {
        WorkFailure::Param(e) => BackendError::BadParams {
            function: label.to_owned(),
            message: e.to_string(),
        },
        WorkFailure::Kernel(e) => failed(FunctionFailure::Input(e.to_string())),
        WorkFailure::Framing(e) => failed(FunctionFailure::Input(e.to_string())),
        WorkFailure::Input(e) => failed(FunctionFailure::Input(e.to_string())),
        WorkFailure::Cancelled | WorkFailure::Stopped => failed(FunctionFailure::Cancelled),
        WorkFailure::OutputLimit => failed(FunctionFailure::OutputLimit {
            limit: limits.max_output,
        }),
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}
