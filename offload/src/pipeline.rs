// SPDX-License-Identifier: Apache-2.0
//! Chains of functions: each job's output streams into the next one's input, chunk by chunk,
//! with bounded buffering between stages. A single function is a chain of one.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::backend::{
    Backend, BackendError, ChunkStream, FunctionFailure, Job, OutputSink, RunReport,
};

/// Chunks buffered between two stages (and between the last stage and the reader).
const STAGE_DEPTH: usize = 4;

/// A chain that is running.
pub struct Running {
    /// The last stage's output. It ends after the last stage ends; if any stage failed, the
    /// last item is an error.
    pub output: ChunkStream,
    /// Resolves when every stage has ended: the reports in chain order, or the first failure
    /// in chain order (a later stage that failed only because its input broke is not blamed).
    pub done: Pin<Box<dyn Future<Output = Result<Vec<RunReport>, BackendError>> + Send>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running").finish_non_exhaustive()
    }
}

/// Starts `jobs` on `backend` as one chain over `input`.
pub fn start(backend: Arc<dyn Backend>, jobs: Vec<Job>, input: ChunkStream) -> Running {
    let mut input = input;
    let mut handles = Vec::with_capacity(jobs.len());
    for job in jobs {
        let (sink, rx) = OutputSink::channel(STAGE_DEPTH);
        let backend = Arc::clone(&backend);
        let stage_input = std::mem::replace(&mut input, receiver_stream(rx));
        handles.push(tokio::spawn(run_stage(backend, job, stage_input, sink)));
    }
    let done = async move {
        let mut results = Vec::with_capacity(handles.len());
        for handle in handles {
            results.push(handle.await.unwrap_or_else(|e| {
                Err(BackendError::Setup {
                    function: "-".to_owned(),
                    backend: "-".to_owned(),
                    message: format!("the job task failed: {e}"),
                })
            }));
        }
        settle(results)
    };
    Running {
        output: input,
        done: Box::pin(done),
    }
}

/// The chain's outcome from its stages' results: the first failure in chain order, except that
/// a stage cancelled because the next stage stopped reading is not a failure when that next
/// stage succeeded (`head` ends early; everything it needed was produced).
fn settle(results: Vec<Result<RunReport, BackendError>>) -> Result<Vec<RunReport>, BackendError> {
    let stages = results.len();
    let mut downstream_ok = false;
    let mut settled = Vec::with_capacity(stages);
    for (i, result) in results.into_iter().enumerate().rev() {
        let benign = i + 1 < stages
            && downstream_ok
            && matches!(
                &result,
                Err(BackendError::FunctionFailed {
                    cause: FunctionFailure::Cancelled,
                    ..
                })
            );
        if benign {
            settled.push(Ok(RunReport::default()));
        } else {
            downstream_ok = result.is_ok();
            settled.push(result);
        }
    }
    settled.reverse();
    settled.into_iter().collect()
}

/// Runs one stage and, when it fails, ends its output with an error item so the next stage (or
/// the client) sees the stream break rather than end cleanly.
async fn run_stage(
    backend: Arc<dyn Backend>,
    job: Job,
    input: ChunkStream,
    sink: OutputSink,
) -> Result<RunReport, BackendError> {
    let result = backend.run(job, input, sink.clone()).await;
    if let Err(e) = &result {
        sink.fail(io::Error::other(e.to_string())).await;
    }
    result
}

/// The receiving half of a sink as a chunk stream.
pub fn receiver_stream(mut rx: mpsc::Receiver<io::Result<bytes::Bytes>>) -> ChunkStream {
    Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}
