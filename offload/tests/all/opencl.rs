// SPDX-License-Identifier: Apache-2.0
//! The OpenCL backend behind the `Backend` seam (params, slots, cancellation) and user kernels
//! (the shipped example, a reduce, build failures with their logs), on every OpenCL device.
//! Without OpenCL these tests return early, as the differential tests do (and fail under
//! `QUARRY_REQUIRE_OPENCL=1`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use quarry_kernels::{Framing, Kernel, Shape};
use quarry_offload::backend::opencl::{
    OpenClBackend, OpenClRuntime, UserKernel, UserKernelError, UserKernelSpec, UserParam,
    UserProgram,
};
use quarry_offload::{
    Backend, BackendError, ChunkStream, Effects, Flow, FunctionFailure, FunctionLimits,
    FunctionSpec, InvocationContext, Job, OpenClConfig, OutputSink, Variant, VariantKind,
};

use crate::kernels_diff::probe::{ProbeCountByte, ProbeNumberedGrep};
use crate::kernels_diff::runtime;

/// The shipped example user kernel.
const CONTAINS_CL: &str = include_str!("../../../examples/kernels/contains.cl");

/// Counts newlines per block (a user reduce).
const COUNT_LINES_CL: &str = r#"
__kernel void quarry_reduce(__global const uchar *in, const ulong len,
                            __global const uchar *consts, __global uchar *out) {
    ulong i = get_global_id(0);
    ulong e = min(i * 4096 + 4096, len);
    ulong n = 0;
    for (ulong p = i * 4096; p < e; p++) n += (in[p] == '\n');
    for (int b = 0; b < 8; b++) out[i * 8 + b] = (uchar)(n >> (8 * b));
}
"#;

fn backends(config: &OpenClConfig) -> Vec<OpenClBackend> {
    runtime()
        .map(|rt| OpenClBackend::for_runtime(rt, config))
        .unwrap_or_default()
}

fn function(kernel: Arc<dyn Kernel>) -> Arc<FunctionSpec> {
    Arc::new(FunctionSpec {
        name: kernel.info().name.to_string(),
        version: 1,
        limits: FunctionLimits::default(),
        permissions: Vec::new(),
        variants: vec![Variant::Kernel(kernel)],
    })
}

fn job(function: Arc<FunctionSpec>, params: &[(&str, &str)]) -> Job {
    Job {
        function,
        context: InvocationContext {
            event: "invoke".to_owned(),
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            ..Default::default()
        },
        flow: Flow::Read,
        effects: Effects::new(),
        bucket: None,
        policy: quarry_offload::Policy::Auto,
    }
}

fn input(bytes: &[u8], piece: usize) -> ChunkStream {
    let pieces: Vec<std::io::Result<Bytes>> = bytes
        .chunks(piece.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(pieces))
}

/// Runs a job to the end; the output bytes, or the error.
async fn run(
    backend: &OpenClBackend,
    job: Job,
    input: ChunkStream,
) -> Result<Vec<u8>, BackendError> {
    let (sink, mut rx) = OutputSink::channel(4);
    let collect = tokio::spawn(async move {
        let mut out = Vec::new();
        while let Some(item) = rx.recv().await {
            out.extend_from_slice(&item.expect("no error items"));
        }
        out
    });
    let result = backend.run(job, input, sink).await;
    let out = collect.await.expect("collector");
    result.map(|_| out)
}

fn lines_with(input: &[u8], needle: &[u8]) -> Vec<u8> {
    input
        .split_inclusive(|&b| b == b'\n')
        .filter(|l| needle.is_empty() || l.windows(needle.len()).any(|w| w == needle))
        .flatten()
        .copied()
        .collect()
}

fn text_input(lines: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..lines {
        let word = ["alpha", "beta", "gamma", "delta needle", "needles"][i % 5];
        out.extend_from_slice(format!("{i} {word} {}\n", "x".repeat(i % 97)).as_bytes());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_binds_its_params_and_gives_the_cpu_runs_bytes() {
    let config = OpenClConfig {
        chunk_size: bytesize::ByteSize::kib(16),
        ..OpenClConfig::default()
    };
    let kernel: Arc<dyn Kernel> = Arc::new(ProbeNumberedGrep::new());
    let data = text_input(5000);
    let bound = kernel
        .bind(
            &quarry_kernels::Params::new([("needle".to_owned(), "needle".to_owned())])
                .validate(kernel.info())
                .expect("valid"),
        )
        .expect("binds");
    let mut cpu = bound.cpu().expect("cpu run");
    let mut expected = Vec::new();
    cpu.feed(&data, &mut expected).expect("cpu");
    cpu.finish(&mut expected).expect("cpu");
    for backend in backends(&config) {
        let f = function(Arc::clone(&kernel));
        assert_eq!(backend.variant_for(&f), Some(VariantKind::OpenCl));
        let got = run(
            &backend,
            job(f, &[("needle", "needle")]),
            input(&data, 1000),
        )
        .await
        .expect("runs");
        assert_eq!(got, expected, "on {}", backend.info());
        assert_eq!(backend.load().running, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_params_are_refused_naming_the_parameter() {
    for backend in backends(&OpenClConfig::default()) {
        let f = function(Arc::new(ProbeNumberedGrep::new()));
        let err = run(&backend, job(Arc::clone(&f), &[]), input(b"x\n", 1))
            .await
            .expect_err("needle is required");
        assert!(err.is_invalid_request(), "{err}");
        assert!(err.to_string().contains("needle"), "{err}");
        let err = run(
            &backend,
            job(f, &[("needle", "a"), ("nedle", "b")]),
            input(b"", 1),
        )
        .await
        .expect_err("unknown param");
        assert!(err.to_string().contains("nedle"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_without_an_opencl_kernel_are_not_taken() {
    for backend in backends(&OpenClConfig::default()) {
        let f = Arc::new(FunctionSpec {
            name: "none".to_owned(),
            version: 1,
            limits: FunctionLimits::default(),
            permissions: Vec::new(),
            variants: Vec::new(),
        });
        assert_eq!(backend.variant_for(&f), None);
        let err = run(&backend, job(f, &[]), input(b"", 1))
            .await
            .expect_err("nothing to run");
        assert!(matches!(err, BackendError::Unsupported { .. }), "{err}");
    }
}

/// An input that yields `piece` forever.
fn endless(piece: &'static [u8]) -> ChunkStream {
    Box::pin(futures::stream::repeat_with(move || {
        Ok(Bytes::from_static(piece))
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_stops_when_its_reader_goes_away() {
    for backend in backends(&OpenClConfig::default()) {
        let f = function(Arc::new(ProbeCountByte::new()));
        let (sink, rx) = OutputSink::channel(1);
        let job = job(f, &[]);
        let running = backend.run(job, endless(&[b'\n'; 65536]), sink);
        drop(rx);
        let result = tokio::time::timeout(Duration::from_secs(120), running)
            .await
            .expect("the job ends once its reader is gone");
        match result {
            Err(BackendError::FunctionFailed {
                cause: FunctionFailure::Cancelled,
                ..
            }) => {}
            other => panic!("expected a cancelled job, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_device_answers_overloaded_after_the_queue_timeout() {
    let config = OpenClConfig {
        slots: 1,
        queue_timeout: Duration::from_millis(50),
        ..OpenClConfig::default()
    };
    for backend in backends(&config) {
        let backend = Arc::new(backend);
        let f = function(Arc::new(ProbeCountByte::new()));
        // The first job holds the only slot: its input never ends.
        let (sink, mut rx) = OutputSink::channel(1);
        let pending: ChunkStream = Box::pin(futures::stream::pending());
        let first = {
            let backend = Arc::clone(&backend);
            let job = job(Arc::clone(&f), &[]);
            tokio::spawn(async move { backend.run(job, pending, sink).await })
        };
        while backend.load().running == 0 {
            tokio::task::yield_now().await;
        }
        let err = run(&backend, job(f, &[]), input(b"x", 1))
            .await
            .expect_err("no slot");
        assert!(err.is_overload(), "{err}");
        rx.close();
        let first = first.await.expect("first job");
        assert!(first.is_err(), "the first job was cancelled");
        drop(rx.recv().await);
    }
}

fn contains_spec(program: UserProgram) -> UserKernelSpec {
    UserKernelSpec {
        name: "contains".to_owned(),
        summary: "user OpenCL filter kernel".to_owned(),
        shape: Shape::Filter,
        framing: Framing::Lines,
        params: vec![UserParam {
            name: "needle".to_owned(),
            default: None,
            doc: "the bytes a line must hold (required)".to_owned(),
        }],
        program,
        options: String::new(),
    }
}

fn user_runtime() -> Option<&'static OpenClRuntime> {
    runtime()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_user_filter_keeps_the_lines_holding_the_needle() {
    let Some(rt) = user_runtime() else { return };
    // As a registration gives it: text fields, the parameter declared in the source.
    let spec = UserKernelSpec::from_request(
        "contains",
        "",
        "filter",
        "lines",
        CONTAINS_CL.as_bytes(),
        None,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        spec,
        contains_spec(UserProgram::Source(CONTAINS_CL.to_owned()))
    );
    let kernel = UserKernel::build(rt, spec).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(kernel.devices().len(), rt.devices().len());
    assert!(!kernel.info().cpu && kernel.info().opencl);
    let kernel: Arc<dyn Kernel> = Arc::new(kernel);
    let data = text_input(20_000);
    let config = OpenClConfig {
        chunk_size: bytesize::ByteSize::kib(64),
        ..OpenClConfig::default()
    };
    for backend in OpenClBackend::for_runtime(rt, &config) {
        for (needle, piece) in [("needle", 4097), ("gamma 1", 1 << 20), ("", 7)] {
            let f = function(Arc::clone(&kernel));
            let got = run(&backend, job(f, &[("needle", needle)]), input(&data, piece))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                got,
                lines_with(&data, needle.as_bytes()),
                "needle {needle:?} on {}",
                backend.info()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_reduce_sums_its_blocks_into_one_decimal_line() {
    let Some(rt) = user_runtime() else { return };
    let spec = UserKernelSpec {
        name: "count-lines".to_owned(),
        summary: "counts newlines".to_owned(),
        shape: Shape::Reduce,
        framing: Framing::Bytes,
        params: Vec::new(),
        program: UserProgram::Source(COUNT_LINES_CL.to_owned()),
        options: String::new(),
    };
    let kernel: Arc<dyn Kernel> =
        Arc::new(UserKernel::build(rt, spec).unwrap_or_else(|e| panic!("{e}")));
    let data = text_input(12_345);
    for backend in OpenClBackend::for_runtime(rt, &OpenClConfig::default()) {
        let f = function(Arc::clone(&kernel));
        let got = run(&backend, job(Arc::clone(&f), &[]), input(&data, 5000))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got, b"12345\n");
        let empty = run(&backend, job(f, &[]), input(b"", 1))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(empty, b"0\n");
    }
}

#[test]
fn a_user_kernel_that_fails_to_build_reports_each_devices_log() {
    let Some(rt) = user_runtime() else { return };
    let broken = "__kernel void quarry_count(__global const uchar *in) { undeclared_name += 1; }";
    let err = UserKernel::build(rt, contains_spec(UserProgram::Source(broken.to_owned())))
        .expect_err("does not compile");
    let UserKernelError::Build { failures, .. } = &err else {
        panic!("expected a build error, got {err}");
    };
    assert_eq!(failures.len(), rt.devices().len());
    let text = err.to_string();
    assert!(
        text.contains("undeclared_name"),
        "the build log is shown: {text}"
    );
    assert!(
        text.contains(&rt.devices()[0].info().backend_name()),
        "{text}"
    );
}

#[test]
fn a_user_kernel_without_its_entry_points_is_refused_naming_them() {
    let Some(rt) = user_runtime() else { return };
    let err = UserKernel::build(
        rt,
        contains_spec(UserProgram::Source(COUNT_LINES_CL.to_owned())),
    )
    .expect_err("a filter needs count and emit");
    let text = err.to_string();
    assert!(text.contains("quarry_count and quarry_emit"), "{text}");
    assert!(text.contains("quarry_reduce"), "{text}");
}

#[test]
fn a_binary_for_an_unknown_device_is_refused_naming_the_devices() {
    let Some(rt) = user_runtime() else { return };
    let err = UserKernel::build(
        rt,
        contains_spec(UserProgram::Binary {
            device: "opencl-fpga-99".to_owned(),
            binary: vec![1, 2, 3],
        }),
    )
    .expect_err("no such device");
    let text = err.to_string();
    assert!(text.contains("opencl-fpga-99"), "{text}");
    assert!(
        text.contains(&rt.devices()[0].info().backend_name()),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prebuilt_binary_runs_on_its_device_only() {
    let Some(rt) = user_runtime() else { return };
    // A binary as an offline compiler would give it: here, the driver's own for device 0.
    let device = &rt.devices()[0];
    let from_source = UserKernel::build(
        rt,
        contains_spec(UserProgram::Source(CONTAINS_CL.to_owned())),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let binary = device
        .program(&quarry_kernels::ClProgram {
            name: "contains-for-binary",
            source: CONTAINS_CL,
            options: "",
        })
        .and_then(|p| p.binary())
        .unwrap_or_else(|e| panic!("{e}"));
    drop(from_source);
    let mut spec = contains_spec(UserProgram::Binary {
        device: device.info().backend_name(),
        binary,
    });
    spec.name = "contains-bin".to_owned();
    let kernel: Arc<dyn Kernel> =
        Arc::new(UserKernel::build(rt, spec).unwrap_or_else(|e| panic!("{e}")));
    let data = text_input(3000);
    for backend in OpenClBackend::for_runtime(rt, &OpenClConfig::default()) {
        let f = function(Arc::clone(&kernel));
        if backend.info().index != device.info().index {
            assert_eq!(backend.variant_for(&f), None, "{}", backend.info());
            continue;
        }
        let got = run(&backend, job(f, &[("needle", "beta")]), input(&data, 9999))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got, lines_with(&data, b"beta"));
    }
}
