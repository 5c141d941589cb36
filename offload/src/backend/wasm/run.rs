// SPDX-License-Identifier: Apache-2.0
//! One job on the WebAssembly pool: wait for a slot, instantiate from the pre-instantiated
//! module, run `_start` under the function's limits, and classify how it ended.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::cli::{AsyncStdinStream, AsyncStdoutStream};

use super::WasmBackend;
use super::abi::{HostCalls, HostState, Rejection};
use super::io::{StderrLogger, StdoutWriter, StreamState, stdin_reader};
use super::limits::{CpuMeter, MemoryLimiter};
use super::window::InputWindow;
use crate::backend::{
    Backend, BackendError, ChunkStream, FunctionFailure, Job, OutputSink, RunReport,
};
use crate::function::Variant;

/// Bytes WASI buffers between the guest's stdout writes and the output sink.
const STDOUT_BUDGET: usize = 64 * 1024;

/// How a call ended before classification.
enum Ending {
    Returned(wasmtime::Result<()>),
    Timeout,
    FirstByteTimeout,
    Cancelled,
}

pub(super) async fn run(
    backend: &WasmBackend,
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
    let wasm = function.variants.iter().find_map(|v| match v {
        Variant::Wasm(m) => Some(Arc::clone(m)),
        Variant::Kernel(_) | Variant::Ebpf(_) => None,
    });
    let Some(module) = wasm else {
        return Err(BackendError::Unsupported {
            function: label.clone(),
            backend: backend_name.clone(),
        });
    };
    let limits = function.limits;
    let flow = job.flow;

    // A slot in the pool, or 503 after the queue timeout.
    let waited_from = Instant::now();
    backend.queued.fetch_add(1, Ordering::Relaxed);
    let permit = tokio::time::timeout(
        backend.config.queue_timeout,
        Arc::clone(&backend.slots).acquire_owned(),
    )
    .await;
    backend.queued.fetch_sub(1, Ordering::Relaxed);
    let Ok(Ok(_permit)) = permit else {
        return Err(BackendError::Overloaded {
            backend: backend_name.clone(),
            capacity: backend.load().capacity,
            waited: waited_from.elapsed(),
        });
    };

    let started = Instant::now();
    let streams = Arc::new(StreamState::default());
    // A window module (ABI v2) takes its input through `input_next`; its stdin is empty.
    let (stdin, window) = if module.window {
        let empty: ChunkStream = Box::pin(futures::stream::empty());
        (empty, InputWindow::new(input))
    } else {
        (input, InputWindow::default())
    };
    let wasi = WasiCtxBuilder::new()
        .stdin(AsyncStdinStream::new(stdin_reader(
            stdin,
            Arc::clone(&streams),
        )))
        .stdout(AsyncStdoutStream::new(
            STDOUT_BUDGET,
            StdoutWriter::new(&out, Arc::clone(&streams), limits.max_output.as_u64()),
        ))
        .stderr(AsyncStdoutStream::new(
            STDOUT_BUDGET,
            StderrLogger::new(Arc::from(label.as_str())),
        ))
        .envs(&job.context.environment(&function.name))
        .arg(&function.name)
        .build_p1();
    let state = HostState {
        wasi,
        memory: MemoryLimiter::new(limits.memory.as_u64()),
        cpu: CpuMeter::new(backend.config.epoch_tick, limits.cpu_time),
        calls: HostCalls {
            flow,
            effects: Arc::clone(&job.effects),
            permissions: function.permissions.clone(),
            bucket: job.bucket.clone(),
            streams: Arc::clone(&streams),
            window,
        },
    };
    let mut store = Store::new(&backend.engine, state);
    store.limiter(|s| &mut s.memory);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut ctx| {
        if ctx.data_mut().cpu.on_tick(Instant::now()) {
            Ok(UpdateDeadline::Yield(1))
        } else {
            Ok(UpdateDeadline::Interrupt)
        }
    });

    let ending = {
        let call = async {
            let instance = module.pre.instantiate_async(&mut store).await?;
            let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
            start.call_async(&mut store, ()).await
        };
        let first_byte = async {
            tokio::time::sleep(limits.first_byte_timeout).await;
            if streams.wrote_any() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            result = call => Ending::Returned(result),
            () = tokio::time::sleep(limits.timeout) => Ending::Timeout,
            () = first_byte => Ending::FirstByteTimeout,
            () = out.sender().closed() => Ending::Cancelled,
        }
    };

    let report = RunReport {
        backend: backend_name.clone(),
        bytes_in: streams.bytes_in.load(Ordering::Relaxed),
        bytes_out: streams.bytes_out.load(Ordering::Relaxed),
        cpu_time: store.data().cpu.used(),
        wall_time: started.elapsed(),
        device_time: None,
    };
    let host = store.data();
    let window_copied = host.calls.window.copied_bytes();
    let outcome = match ending {
        Ending::Timeout => Err(failed(FunctionFailure::Timeout {
            limit: limits.timeout,
        })),
        Ending::FirstByteTimeout => Err(failed(FunctionFailure::FirstByteTimeout {
            limit: limits.first_byte_timeout,
        })),
        Ending::Cancelled => Err(failed(FunctionFailure::Cancelled)),
        Ending::Returned(Ok(())) => Ok(report),
        Ending::Returned(Err(err)) => {
            if let Some(rejection) = err.downcast_ref::<Rejection>() {
                Err(BackendError::Rejected {
                    function: label.clone(),
                    status: rejection.status,
                    message: rejection.message.clone(),
                })
            } else if host.cpu.exceeded {
                Err(failed(FunctionFailure::CpuTime {
                    limit: limits.cpu_time,
                }))
            } else if host.memory.breached {
                Err(failed(FunctionFailure::MemoryLimit {
                    limit: limits.memory,
                }))
            } else if streams.output_exceeded.load(Ordering::Acquire) {
                Err(failed(FunctionFailure::OutputLimit {
                    limit: limits.max_output,
                }))
            } else if streams.input_failed.load(Ordering::Acquire) {
                Err(failed(FunctionFailure::Input(format!("{err:#}"))))
            } else if streams.reader_gone.load(Ordering::Acquire) {
                Err(failed(FunctionFailure::Cancelled))
            } else if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
                if exit.0 == 0 {
                    Ok(report)
                } else {
                    Err(failed(FunctionFailure::Exit(exit.0)))
                }
            } else {
                tracing::warn!(target: "quarry::function", function = %label, error = ?err, "function trapped");
                Err(failed(FunctionFailure::Trap(first_line(&err))))
            }
        }
    };
    // A function that exited on its own but hit a limit on the way (it ignored the write error)
    // still broke the limit.
    let outcome = match outcome {
        Ok(_) if streams.output_exceeded.load(Ordering::Acquire) => {
            Err(failed(FunctionFailure::OutputLimit {
                limit: limits.max_output,
            }))
        }
        Ok(_) if streams.input_failed.load(Ordering::Acquire) => Err(failed(
            FunctionFailure::Input("the input stream failed".to_owned()),
        )),
        other => other,
    };
    drop(store);
    match &outcome {
        Ok(r) => tracing::debug!(
            target: "quarry::function", function = %label, bytes_in = r.bytes_in,
            bytes_out = r.bytes_out, window_copied_bytes = window_copied,
            cpu_us = duration_us(r.cpu_time),
            wall_us = duration_us(r.wall_time), "function finished"
        ),
        Err(e) => tracing::info!(target: "quarry::function", function = %label, "{e}"),
    }
    outcome
}

/// The first line of an error chain's display: the trap's name without the backtrace.
fn first_line(err: &wasmtime::Error) -> String {
    let text = format!("{err}");
    let mut line = text.lines().next().unwrap_or("trap").to_owned();
    if let Some(trap) = err.downcast_ref::<wasmtime::Trap>() {
        line = format!("{line} ({trap})");
    }
    line
}

fn duration_us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
