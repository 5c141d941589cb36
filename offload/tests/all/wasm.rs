// SPDX-License-Identifier: Apache-2.0
//! The WebAssembly backend against small WAT modules: the Unix-filter ABI, host calls, every
//! limit, and hostile modules next to well-behaved ones.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use quarry_offload::Flow;
use quarry_offload::pipeline;
use quarry_offload::{
    Backend, BackendError, ChunkStream, CompileError, Effects, FunctionFailure, FunctionLimits,
    FunctionSpec, InvocationContext, Job, Variant, WasmBackend, WasmConfig,
};

/// Copies stdin to stdout (the shipped example).
const IDENTITY: &str = include_str!("../../../examples/functions/wat/identity.wat");

/// Copies its first read (at most 64 KiB) to stdout and exits, like `head`.
const FIRST_CHUNK: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 65536))
    (drop (call $read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.store (i32.const 4) (i32.load (i32.const 8)))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 12)))))"#;

// The shipped hostile modules: an endless loop, a trap, memory growth until refused, 1 GiB of
// output (exit 1 when a write fails), an import nobody offers.
const LOOP: &str = include_str!("../../../examples/functions/hostile/loop.wat");
const TRAP: &str = include_str!("../../../examples/functions/hostile/trap.wat");
const GROW: &str = include_str!("../../../examples/functions/hostile/grow.wat");
const FLOOD: &str = include_str!("../../../examples/functions/hostile/flood.wat");
const BAD_IMPORT: &str = include_str!("../../../examples/functions/hostile/badimport.wat");

/// Sets a header and metadata, then rejects with 422.
const REJECT: &str = r#"(module
  (import "quarry" "set_header" (func $hdr (param i32 i32 i32 i32) (result i32)))
  (import "quarry" "reject" (func $reject (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "x-quarry-seenyesbad input")
  (func (export "_start")
    (drop (call $hdr (i32.const 0) (i32.const 13) (i32.const 13) (i32.const 3)))
    (call $reject (i32.const 422) (i32.const 16) (i32.const 9))))"#;

/// Sets `x-quarry-seen: yes` and exits 0 without output.
const SET_HEADER: &str = r#"(module
  (import "quarry" "set_header" (func $hdr (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "x-quarry-seenyes")
  (global $rc (export "rc") (mut i32) (i32.const 99))
  (func (export "_start")
    (global.set $rc (call $hdr (i32.const 0) (i32.const 13) (i32.const 13) (i32.const 3)))
    (if (global.get $rc) (then unreachable))))"#;

fn backend(max_instances: u32) -> Arc<WasmBackend> {
    Arc::new(
        WasmBackend::new(&WasmConfig {
            max_instances,
            queue_timeout: Duration::from_millis(300),
            ..WasmConfig::default()
        })
        .unwrap(),
    )
}

fn spec(backend: &WasmBackend, wat: &str, limits: FunctionLimits) -> Arc<FunctionSpec> {
    let module = backend.compile(wat.as_bytes()).unwrap();
    Arc::new(FunctionSpec {
        name: "f".to_owned(),
        version: 1,
        limits,
        permissions: Vec::new(),
        variants: vec![Variant::Wasm(module)],
    })
}

fn job(function: Arc<FunctionSpec>, flow: Flow) -> Job {
    Job {
        function,
        context: InvocationContext {
            event: "after-get".to_owned(),
            ..Default::default()
        },
        flow,
        effects: Effects::new(),
        bucket: None,
        policy: quarry_offload::Policy::Auto,
    }
}

fn input(chunks: Vec<Vec<u8>>) -> ChunkStream {
    Box::pin(futures::stream::iter(
        chunks.into_iter().map(|c| Ok(Bytes::from(c))),
    ))
}

/// Runs a chain over `chunks`; returns the output collected up to the first error, and the
/// chain's result.
async fn run_chain(
    backend: Arc<WasmBackend>,
    jobs: Vec<Job>,
    chunks: Vec<Vec<u8>>,
) -> (Vec<u8>, Result<(), BackendError>) {
    let running = pipeline::start(backend, jobs, input(chunks));
    let mut output = running.output;
    let mut collected = Vec::new();
    while let Some(item) = output.next().await {
        match item {
            Ok(b) => collected.extend_from_slice(&b),
            Err(_) => break,
        }
    }
    (collected, running.done.await.map(|_| ()))
}

fn cause(result: Result<(), BackendError>) -> FunctionFailure {
    match result {
        Err(BackendError::FunctionFailed { cause, .. }) => cause,
        other => panic!("expected a function failure, got {other:?}"),
    }
}

fn short() -> FunctionLimits {
    FunctionLimits {
        cpu_time: Duration::from_millis(300),
        timeout: Duration::from_secs(5),
        first_byte_timeout: Duration::from_secs(5),
        ..FunctionLimits::default()
    }
}

#[tokio::test]
async fn identity_streams_every_byte_through() {
    let b = backend(4);
    let f = spec(&b, IDENTITY, FunctionLimits::default());
    let chunks: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 100_000]).collect();
    let expected: Vec<u8> = chunks.concat();
    let (out, result) = run_chain(b, vec![job(f, Flow::Read)], chunks).await;
    result.unwrap();
    assert_eq!(out.len(), expected.len());
    assert!(out == expected);
}

#[tokio::test]
async fn a_pipeline_of_three_identities_is_the_identity() {
    let b = backend(4);
    let f = spec(&b, IDENTITY, FunctionLimits::default());
    let jobs = (0..3).map(|_| job(Arc::clone(&f), Flow::Read)).collect();
    let (out, result) = run_chain(b, jobs, vec![b"hello ".to_vec(), b"world".to_vec()]).await;
    result.unwrap();
    assert_eq!(out, b"hello world");
}

#[tokio::test]
async fn a_stage_that_stops_reading_early_does_not_fail_the_chain() {
    let b = backend(4);
    let identity = spec(&b, IDENTITY, FunctionLimits::default());
    let first = spec(&b, FIRST_CHUNK, FunctionLimits::default());
    let chunks: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i; 65536]).collect();
    let jobs = vec![job(identity, Flow::Read), job(first, Flow::Read)];
    let (out, result) = run_chain(b, jobs, chunks).await;
    result.unwrap();
    assert!(!out.is_empty() && out.len() <= 65536, "{} bytes", out.len());
}

#[tokio::test]
async fn an_empty_input_gives_an_empty_output() {
    let b = backend(2);
    let f = spec(&b, IDENTITY, FunctionLimits::default());
    let (out, result) = run_chain(b, vec![job(f, Flow::Read)], vec![]).await;
    result.unwrap();
    assert!(out.is_empty());
}

#[tokio::test]
async fn an_endless_loop_stops_at_its_cpu_limit() {
    let b = backend(2);
    let f = spec(&b, LOOP, short());
    let (_, result) = run_chain(b, vec![job(f, Flow::Read)], vec![]).await;
    assert!(matches!(cause(result), FunctionFailure::CpuTime { .. }));
}

#[tokio::test]
async fn an_endless_loop_with_a_large_cpu_limit_stops_at_its_time_limit() {
    let b = backend(2);
    let limits = FunctionLimits {
        cpu_time: Duration::from_secs(100),
        timeout: Duration::from_millis(300),
        first_byte_timeout: Duration::from_secs(100),
        ..FunctionLimits::default()
    };
    let f = spec(&b, LOOP, limits);
    let (_, result) = run_chain(b, vec![job(f, Flow::Read)], vec![]).await;
    assert!(matches!(cause(result), FunctionFailure::Timeout { .. }));
}

#[tokio::test]
async fn silence_past_the_first_byte_limit_fails() {
    let b = backend(2);
    let limits = FunctionLimits {
        cpu_time: Duration::from_secs(100),
        first_byte_timeout: Duration::from_millis(200),
        ..FunctionLimits::default()
    };
    let f = spec(&b, LOOP, limits);
    let (_, result) = run_chain(b, vec![job(f, Flow::Read)], vec![]).await;
    assert!(matches!(
        cause(result),
        FunctionFailure::FirstByteTimeout { .. }
    ));
}

#[tokio::test]
async fn a_trap_is_reported_as_a_trap() {
    let b = backend(2);
    let f = spec(&b, TRAP, short());
    let (_, result) = run_chain(b, vec![job(f, Flow::Read)], vec![]).await;
    match cause(result) {
        FunctionFailure::Trap(message) => assert!(message.contains("unreachable"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn memory_growth_past_the_limit_is_reported_as_the_memory_limit() {
    let b = backend(2);
    let limits = FunctionLimits {
        memory: bytesize::ByteSize::mib(8),
        ..short()
    };
    let f = spec(&b, GROW, limits);
    let (_, result) = run_chain(b, vec![job(f, Flow::Read)], vec![]).await;
    assert!(matches!(cause(result), FunctionFailure::MemoryLimit { .. }));
}

#[tokio::test]
async fn output_past_the_limit_is_cut_and_reported() {
    let b = backend(2);
    let limits = FunctionLimits {
        max_output: bytesize::ByteSize::mib(10),
        ..short()
    };
    let f = spec(&b, FLOOD, limits);
    let (out, result) = run_chain(b, vec![job(f, Flow::Read)], vec![]).await;
    assert!(matches!(cause(result), FunctionFailure::OutputLimit { .. }));
    assert!(out.len() <= 10 << 20, "{} bytes got through", out.len());
}

#[tokio::test]
async fn an_unknown_import_is_refused_at_compile_time_naming_it() {
    let b = backend(1);
    let err = b.compile(BAD_IMPORT.as_bytes()).unwrap_err();
    assert!(matches!(err, CompileError::UnknownImport { .. }));
    assert!(err.to_string().contains("env::launch_missiles"), "{err}");
}

#[tokio::test]
async fn garbage_is_refused_at_compile_time() {
    let b = backend(1);
    let err = b.compile(b"\0asm\x01\0\0\0garbage").unwrap_err();
    assert!(matches!(err, CompileError::Invalid { .. }), "{err}");
}

#[tokio::test]
async fn reject_ends_the_function_with_its_status_and_keeps_headers_set_before() {
    let b = backend(1);
    let f = spec(&b, REJECT, short());
    let j = job(f, Flow::Read);
    let effects = Arc::clone(&j.effects);
    let (_, result) = run_chain(b, vec![j], vec![]).await;
    match result {
        Err(BackendError::Rejected {
            status, message, ..
        }) => {
            assert_eq!(status, 422);
            assert_eq!(message, "bad input");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        effects.snapshot().headers,
        vec![("x-quarry-seen".to_owned(), "yes".to_owned())]
    );
}

#[tokio::test]
async fn headers_are_not_available_after_a_write() {
    let b = backend(1);
    let f = spec(&b, SET_HEADER, short());
    // In the read flow the call succeeds; in the post-commit flow it answers "not available"
    // (-5) and the module traps on the non-zero code.
    let (_, ok) = run_chain(
        Arc::clone(&b),
        vec![job(Arc::clone(&f), Flow::Read)],
        vec![],
    )
    .await;
    ok.unwrap();
    let (_, refused) = run_chain(b, vec![job(f, Flow::AfterWrite)], vec![]).await;
    assert!(matches!(cause(refused), FunctionFailure::Trap(_)));
}

#[tokio::test]
async fn a_full_pool_answers_overloaded() {
    let b = backend(1);
    let hog = spec(
        &b,
        LOOP,
        FunctionLimits {
            cpu_time: Duration::from_secs(3),
            first_byte_timeout: Duration::from_secs(3),
            ..FunctionLimits::default()
        },
    );
    let running = pipeline::start(
        Arc::clone(&b) as Arc<dyn Backend>,
        vec![job(hog, Flow::Read)],
        input(vec![]),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let f = spec(&b, IDENTITY, FunctionLimits::default());
    let (_, result) = run_chain(Arc::clone(&b), vec![job(f, Flow::Read)], vec![]).await;
    assert!(
        matches!(result, Err(BackendError::Overloaded { .. })),
        "{result:?}"
    );
    drop(running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_invocations_finish_while_one_loops_forever() {
    let b = backend(80);
    let hog = spec(
        &b,
        LOOP,
        FunctionLimits {
            cpu_time: Duration::from_secs(30),
            first_byte_timeout: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            ..FunctionLimits::default()
        },
    );
    let looping = pipeline::start(
        Arc::clone(&b) as Arc<dyn Backend>,
        vec![job(hog, Flow::Read)],
        input(vec![]),
    );
    let f = spec(&b, IDENTITY, FunctionLimits::default());
    let mut tasks = Vec::new();
    for i in 0..64u32 {
        let b = Arc::clone(&b);
        let f = Arc::clone(&f);
        tasks.push(tokio::spawn(async move {
            let payload = i.to_le_bytes().repeat(1000);
            let (out, result) = run_chain(b, vec![job(f, Flow::Read)], vec![payload.clone()]).await;
            result.unwrap();
            assert_eq!(out, payload);
        }));
    }
    let all = futures::future::join_all(tasks);
    let results = tokio::time::timeout(Duration::from_secs(20), all)
        .await
        .expect("the 64 finished while one function looped");
    for r in results {
        r.unwrap();
    }
    // The loop is still running (it has a 30 s budget) and is cancelled by dropping its output.
    assert_eq!(b.load().running, 1);
    drop(looping.output);
    tokio::time::timeout(Duration::from_secs(5), looping.done)
        .await
        .unwrap()
        .unwrap_err();
}

// ABI v2: the input window.

/// Copies its input to stdout through a 64 KiB input window (the shipped example).
const WINDOW_IDENTITY: &str = include_str!("../../../examples/functions/wat/window_identity.wat");

/// A window module that runs `setup`, then calls `input_next` once and traps unless it
/// answered `expect`.
fn window_probe(setup: &str, expect: i64) -> String {
    format!(
        r#"(module
  (import "quarry" "input_window" (func $input_window (param i32 i32) (result i32)))
  (import "quarry" "input_next" (func $input_next (result i64)))
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (local $rc i64)
    {setup}
    (local.set $rc (call $input_next))
    (if (i64.ne (local.get $rc) (i64.const {expect})) (then unreachable))))"#
    )
}

#[tokio::test]
async fn a_window_module_gets_every_byte_through_its_window() {
    let b = backend(4);
    assert!(
        b.compile(WINDOW_IDENTITY.as_bytes())
            .unwrap()
            .uses_input_window()
    );
    assert!(!b.compile(IDENTITY.as_bytes()).unwrap().uses_input_window());
    let f = spec(&b, WINDOW_IDENTITY, FunctionLimits::default());
    // Chunks larger than the window, smaller ones, and an empty one.
    let mut chunks: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 100_000]).collect();
    chunks.insert(3, Vec::new());
    chunks.push(b"tail".to_vec());
    let expected: Vec<u8> = chunks.concat();
    let (out, result) = run_chain(b, vec![job(f, Flow::Read)], chunks).await;
    result.unwrap();
    assert_eq!(out.len(), expected.len());
    assert!(out == expected);
}

#[tokio::test]
async fn window_and_stdin_modules_chain() {
    let b = backend(4);
    let identity = spec(&b, IDENTITY, FunctionLimits::default());
    let window = spec(&b, WINDOW_IDENTITY, FunctionLimits::default());
    let jobs = vec![
        job(Arc::clone(&identity), Flow::Read),
        job(window, Flow::Read),
        job(identity, Flow::Read),
    ];
    let chunks: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 70_000]).collect();
    let expected = chunks.concat();
    let (out, result) = run_chain(b, jobs, chunks).await;
    result.unwrap();
    assert!(out == expected);
}

#[tokio::test]
async fn an_empty_input_ends_the_window_at_once() {
    let b = backend(2);
    let f = spec(&b, WINDOW_IDENTITY, FunctionLimits::default());
    let (out, result) = run_chain(b, vec![job(f, Flow::Read)], vec![]).await;
    result.unwrap();
    assert!(out.is_empty());
}

#[tokio::test]
async fn input_next_without_a_window_is_invalid() {
    let b = backend(2);
    let f = spec(&b, &window_probe("", -1), short());
    let (_, result) = run_chain(b, vec![job(f, Flow::Read)], vec![b"x".to_vec()]).await;
    result.unwrap();
}

#[tokio::test]
async fn a_window_outside_memory_is_refused() {
    let b = backend(2);
    // One page of memory: a window at 32 KiB of 64 KiB runs past its end.
    let setup = "(if (i32.ne (call $input_window (i32.const 32768) (i32.const 65536)) \
                 (i32.const -1)) (then unreachable))";
    let f = spec(&b, &window_probe(setup, -1), short());
    let (_, result) = run_chain(b, vec![job(f, Flow::Read)], vec![b"x".to_vec()]).await;
    result.unwrap();
}

#[tokio::test]
async fn a_window_module_reads_nothing_on_stdin() {
    let b = backend(2);
    // fd_read of stdin into 1 KiB at 1024 must read 0 bytes; then the window has the input.
    let setup = "(i32.store (i32.const 0) (i32.const 1024)) \
                 (i32.store (i32.const 4) (i32.const 1024)) \
                 (if (call $read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)) \
                   (then unreachable)) \
                 (if (i32.load (i32.const 8)) (then unreachable)) \
                 (if (call $input_window (i32.const 4096) (i32.const 4096)) (then unreachable))";
    let f = spec(&b, &window_probe(setup, 5), short());
    let (_, result) = run_chain(b, vec![job(f, Flow::Read)], vec![b"hello".to_vec()]).await;
    result.unwrap();
}

#[tokio::test]
async fn a_failing_input_is_blamed_on_the_input_not_the_window_module() {
    let b = backend(2);
    let f = spec(&b, WINDOW_IDENTITY, short());
    let chunks: ChunkStream = Box::pin(futures::stream::iter([
        Ok(Bytes::from_static(b"some bytes")),
        Err(std::io::Error::other("the disk went away")),
    ]));
    let running = pipeline::start(b, vec![job(f, Flow::Read)], chunks);
    let mut output = running.output;
    while let Some(item) = output.next().await {
        if item.is_err() {
            break;
        }
    }
    let failure = cause(running.done.await.map(|_| ()));
    assert!(
        matches!(failure, FunctionFailure::Input(_)),
        "expected an input failure, got {failure:?}"
    );
}
