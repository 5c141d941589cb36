// SPDX-License-Identifier: Apache-2.0
//! The native backend with test kernels: output independent of how the input is cut, params
//! checked with clear errors, a bounded queue, cancellation, panics contained.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use quarry_kernels::{
    BoundKernel, CpuRun, DeviceRun, Framing, Kernel, KernelError, KernelInfo, ParamSpec, ParamType,
    Params, Shape,
};
use quarry_offload::{
    Backend, BackendError, ChunkStream, Effects, Flow, FunctionFailure, FunctionLimits,
    FunctionSpec, InvocationContext, Job, NativeBackend, NativeConfig, OutputSink, Policy,
    RunReport, Variant, VariantKind,
};

// === test kernels ===

const REVERSE_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "suffix",
        ty: ParamType::Text,
        default: Some(""),
        doc: "text appended to every line",
    },
    ParamSpec {
        name: "panic",
        ty: ParamType::Bool,
        default: Some("false"),
        doc: "panic on the first chunk",
    },
];

/// Map over lines: each line reversed, then `suffix`. Wrong output if a line were split.
#[derive(Debug)]
pub(crate) struct ReverseLines(KernelInfo);

impl ReverseLines {
    pub(crate) fn kernel() -> Arc<dyn Kernel> {
        Arc::new(Self(KernelInfo {
            name: Cow::Borrowed("reverse-lines"),
            summary: Cow::Borrowed("reverses every line"),
            shape: Shape::Map,
            params: Cow::Borrowed(REVERSE_PARAMS),
            cpu: true,
            opencl: false,
        }))
    }
}

#[derive(Debug)]
struct BoundReverse {
    suffix: Vec<u8>,
    panic: bool,
}

struct ReverseRun {
    suffix: Vec<u8>,
    panic: bool,
}

impl Kernel for ReverseLines {
    fn info(&self) -> &KernelInfo {
        &self.0
    }

    fn bind(&self, params: &Params) -> Result<Arc<dyn BoundKernel>, KernelError> {
        Ok(Arc::new(BoundReverse {
            suffix: params.text("suffix")?.as_bytes().to_vec(),
            panic: params.bool("panic")?,
        }))
    }
}

impl BoundKernel for BoundReverse {
    fn framing(&self) -> Framing {
        Framing::Lines
    }

    fn cpu(&self) -> Option<Box<dyn CpuRun>> {
        Some(Box::new(ReverseRun {
            suffix: self.suffix.clone(),
            panic: self.panic,
        }))
    }

    fn device(&self) -> Option<Box<dyn DeviceRun>> {
        None
    }
}

impl CpuRun for ReverseRun {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), KernelError> {
        assert!(!self.panic, "asked to panic");
        out.extend(reverse_lines(chunk, &self.suffix));
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<u8>) -> Result<(), KernelError> {
        Ok(())
    }
}

/// The reference: what `reverse-lines` gives for a whole input.
pub(crate) fn reverse_lines(input: &[u8], suffix: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    for line in input.split_inclusive(|&b| b == b'\n') {
        let (body, nl) = match line.strip_suffix(b"\n") {
            Some(body) => (body, true),
            None => (line, false),
        };
        out.extend(body.iter().rev());
        out.extend_from_slice(suffix);
        if nl {
            out.push(b'\n');
        }
    }
    out
}

const COUNT_PARAMS: &[ParamSpec] = &[ParamSpec {
    name: "needle",
    ty: ParamType::Text,
    default: None,
    doc: "the text to look for",
}];

/// Reduce: the number of lines holding `needle` (required, non-empty), written at the end.
#[derive(Debug)]
pub(crate) struct CountLines(KernelInfo);

impl CountLines {
    pub(crate) fn kernel() -> Arc<dyn Kernel> {
        Arc::new(Self(KernelInfo {
            name: Cow::Borrowed("count-lines"),
            summary: Cow::Borrowed("counts lines holding a needle"),
            shape: Shape::Reduce,
            params: Cow::Borrowed(COUNT_PARAMS),
            cpu: true,
            opencl: false,
        }))
    }
}

#[derive(Debug)]
struct BoundCount(Vec<u8>);

struct CountRun {
    needle: Vec<u8>,
    count: u64,
}

impl Kernel for CountLines {
    fn info(&self) -> &KernelInfo {
        &self.0
    }

    fn bind(&self, params: &Params) -> Result<Arc<dyn BoundKernel>, KernelError> {
        let needle = params.text("needle")?;
        if needle.is_empty() {
            return Err(KernelError::param("needle", "must not be empty"));
        }
        Ok(Arc::new(BoundCount(needle.as_bytes().to_vec())))
    }
}

impl BoundKernel for BoundCount {
    fn framing(&self) -> Framing {
        Framing::Lines
    }

    fn cpu(&self) -> Option<Box<dyn CpuRun>> {
        Some(Box::new(CountRun {
            needle: self.0.clone(),
            count: 0,
        }))
    }

    fn device(&self) -> Option<Box<dyn DeviceRun>> {
        None
    }
}

impl CpuRun for CountRun {
    fn feed(&mut self, chunk: &[u8], _out: &mut Vec<u8>) -> Result<(), KernelError> {
        let n = self.needle.len();
        self.count += chunk
            .split_inclusive(|&b| b == b'\n')
            .filter(|line| line.windows(n).any(|w| w == self.needle.as_slice()))
            .count() as u64;
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), KernelError> {
        out.extend_from_slice(format!("{}\n", self.count).as_bytes());
        Ok(())
    }
}

// === helpers ===

pub(crate) fn kernel_function(kernel: Arc<dyn Kernel>) -> Arc<FunctionSpec> {
    Arc::new(FunctionSpec {
        name: kernel.info().name.to_string(),
        version: 1,
        limits: FunctionLimits::default(),
        permissions: Vec::new(),
        variants: vec![Variant::Kernel(kernel)],
    })
}

pub(crate) fn job(function: Arc<FunctionSpec>, params: &[(&str, &str)]) -> Job {
    Job {
        function,
        context: InvocationContext {
            event: "invoke".to_owned(),
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..InvocationContext::default()
        },
        flow: Flow::Read,
        effects: Effects::new(),
        bucket: None,
        policy: Policy::Auto,
    }
}

/// `data` cut into pieces of `size` bytes.
pub(crate) fn pieces(data: &[u8], size: usize) -> ChunkStream {
    let data = Bytes::copy_from_slice(data);
    let count = data.len().div_ceil(size);
    Box::pin(
        futures::stream::iter(0..count)
            .map(move |i| Ok(data.slice(i * size..((i + 1) * size).min(data.len())))),
    )
}

/// Runs `job` while reading all its output.
pub(crate) async fn run_all(
    backend: &dyn Backend,
    job: Job,
    input: ChunkStream,
) -> (Result<RunReport, BackendError>, Vec<u8>) {
    let (sink, mut rx) = OutputSink::channel(4);
    let read = async move {
        let mut out = Vec::new();
        while let Some(Ok(chunk)) = rx.recv().await {
            out.extend_from_slice(&chunk);
        }
        out
    };
    tokio::join!(backend.run(job, input, sink), read)
}

fn native(workers: u32, max_queued: u32, queue_timeout: Duration) -> NativeBackend {
    NativeBackend::new(&NativeConfig {
        workers: Some(workers),
        max_queued,
        queue_timeout,
        ..NativeConfig::default()
    })
    .unwrap()
}

fn text(lines: usize) -> Vec<u8> {
    (0..lines)
        .map(|i| format!("line {i} of the input, quarry {}\n", i % 7))
        .collect::<String>()
        .into_bytes()
}

// === tests ===

#[tokio::test]
async fn output_does_not_depend_on_how_the_input_is_cut() {
    let backend = native(2, 8, Duration::from_secs(5));
    let function = kernel_function(ReverseLines::kernel());
    let mut input = text(2_000);
    input.extend_from_slice(b"a last line without newline");
    let expected = reverse_lines(&input, b"!");
    for piece in [1, 7, 100, 4096, input.len()] {
        let job = job(Arc::clone(&function), &[("suffix", "!")]);
        let (result, out) = run_all(&backend, job, pieces(&input, piece)).await;
        let report = result.unwrap();
        assert_eq!(out, expected, "pieces of {piece} bytes");
        assert_eq!(report.bytes_in, input.len() as u64);
        assert_eq!(report.bytes_out, expected.len() as u64);
        assert_eq!(report.backend, "native");
    }
}

#[tokio::test]
async fn a_reduce_writes_its_result_at_the_end() {
    let backend = native(1, 8, Duration::from_secs(5));
    let function = kernel_function(CountLines::kernel());
    let input = text(700);
    let (result, out) = run_all(
        &backend,
        job(function, &[("needle", "quarry 3")]),
        pieces(&input, 333),
    )
    .await;
    result.unwrap();
    assert_eq!(out, b"100\n");
}

/// A kernel, params that do not fit it, and what the error must say.
type BadParamCase = (
    Arc<dyn Kernel>,
    &'static [(&'static str, &'static str)],
    &'static str,
);

#[tokio::test]
async fn bad_params_are_refused_naming_the_parameter() {
    let backend = native(1, 8, Duration::from_secs(5));
    let cases: [BadParamCase; 4] = [
        (ReverseLines::kernel(), &[("sufix", "x")], "parameter sufix"),
        (
            ReverseLines::kernel(),
            &[("panic", "maybe")],
            "not true or false",
        ),
        (CountLines::kernel(), &[], "parameter needle: is required"),
        (CountLines::kernel(), &[("needle", "")], "must not be empty"),
    ];
    for (kernel, params, want) in cases {
        let (result, out) = run_all(
            &backend,
            job(kernel_function(kernel), params),
            pieces(b"x\n", 2),
        )
        .await;
        let err = result.unwrap_err();
        assert!(matches!(err, BackendError::BadParams { .. }), "{err:?}");
        assert!(err.is_invalid_request());
        assert!(
            err.to_string().contains(want),
            "{err} should contain {want}"
        );
        assert!(out.is_empty());
    }
}

#[tokio::test]
async fn a_full_pool_answers_overloaded_and_the_queue_is_bounded() {
    let backend = Arc::new(native(1, 1, Duration::from_millis(100)));
    let function = kernel_function(ReverseLines::kernel());
    // Holds the only worker: its input never ends.
    let (hold_sink, _hold_rx) = OutputSink::channel(1);
    let holder = {
        let backend = Arc::clone(&backend);
        let job = job(Arc::clone(&function), &[]);
        tokio::spawn(async move {
            backend
                .run(job, Box::pin(futures::stream::pending()), hold_sink)
                .await
        })
    };
    while backend.load().running == 0 {
        tokio::task::yield_now().await;
    }
    // One job may wait; it times out.
    let waiter = {
        let backend = Arc::clone(&backend);
        let job = job(Arc::clone(&function), &[]);
        tokio::spawn(async move { run_all(backend.as_ref(), job, pieces(b"a\n", 2)).await })
    };
    while backend.load().queued == 0 {
        tokio::task::yield_now().await;
    }
    // A second waiter finds the queue full and is refused at once.
    let (refused, _) = run_all(
        backend.as_ref(),
        job(Arc::clone(&function), &[]),
        pieces(b"b\n", 2),
    )
    .await;
    let err = refused.unwrap_err();
    assert!(err.is_overload(), "{err:?}");
    let (waited, _) = waiter.await.unwrap();
    let err = waited.unwrap_err();
    assert!(err.is_overload(), "{err:?}");
    assert!(err.to_string().contains("native is busy"), "{err}");
    assert_eq!(backend.load().queued, 0);
    holder.abort();
}

#[tokio::test]
async fn dropping_the_reader_stops_the_job() {
    let backend = native(1, 8, Duration::from_secs(5));
    let function = kernel_function(ReverseLines::kernel());
    // Endless input: the job ends only because its reader goes away.
    let line = Bytes::from_static(b"an endless stream of lines\n");
    let input: ChunkStream = Box::pin(futures::stream::repeat_with(move || Ok(line.clone())));
    let (sink, mut rx) = OutputSink::channel(1);
    let reader = async move {
        let first = rx.recv().await;
        drop(rx);
        first
    };
    let (result, first) = tokio::join!(backend.run(job(function, &[]), input, sink), reader);
    assert!(first.is_some());
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            BackendError::FunctionFailed {
                cause: FunctionFailure::Cancelled,
                ..
            }
        ),
        "{err:?}"
    );
    // The worker is free again.
    let (again, out) = run_all(
        &backend,
        job(kernel_function(ReverseLines::kernel()), &[]),
        pieces(b"ab\n", 3),
    )
    .await;
    again.unwrap();
    assert_eq!(out, b"ba\n");
}

#[tokio::test]
async fn a_panicking_kernel_fails_its_job_only() {
    let backend = native(1, 8, Duration::from_secs(5));
    let function = kernel_function(ReverseLines::kernel());
    let (result, _) = run_all(
        &backend,
        job(Arc::clone(&function), &[("panic", "true")]),
        pieces(b"x\n", 2),
    )
    .await;
    let err = result.unwrap_err();
    assert!(
        err.to_string().contains("panicked: asked to panic"),
        "{err}"
    );
    let (result, out) = run_all(&backend, job(function, &[]), pieces(b"xy\n", 2)).await;
    result.unwrap();
    assert_eq!(out, b"yx\n");
}

#[tokio::test]
async fn a_failed_input_fails_the_job_as_an_input_error() {
    let backend = native(1, 8, Duration::from_secs(5));
    let input: ChunkStream = Box::pin(futures::stream::iter(vec![
        Ok(Bytes::from_static(b"a\n")),
        Err(std::io::Error::other("disk on fire")),
    ]));
    let (result, _) = run_all(
        &backend,
        job(kernel_function(ReverseLines::kernel()), &[]),
        input,
    )
    .await;
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            BackendError::FunctionFailed {
                cause: FunctionFailure::Input(_),
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn it_runs_only_kernels_with_a_cpu_variant() {
    let backend = native(1, 1, Duration::from_secs(1));
    let function = kernel_function(ReverseLines::kernel());
    assert_eq!(backend.variant_for(&function), Some(VariantKind::Native));
    let none = FunctionSpec {
        variants: Vec::new(),
        ..(*function).clone()
    };
    assert_eq!(backend.variant_for(&none), None);
}
