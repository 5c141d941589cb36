// SPDX-License-Identifier: Apache-2.0
//! Part `wordcount`: `wordcount.wasm` through the WebAssembly pool against native Rust, over
//! the same text in memory, in this process.
//!
//! The wasm side is the path the daemon takes for a function over an object: a job on
//! `WasmBackend` (the daemon's default pool configuration) started through `pipeline::start`,
//! its input the text as `chunk_size` slices of one shared buffer (no copy on the host side;
//! the guest's reads copy into its linear memory), its output the count. Timed from the start
//! of the pipeline to its end, so instance start and teardown are included (microseconds).
//!
//! The native sides: `native_memmem`, a SIMD substring search over the whole buffer (what a
//! native implementation would do), and `native_bytewise`, the byte-at-a-time matcher of
//! `wordcount.c` ported to Rust over the same chunks (the same algorithm, so the gap to wasm is
//! the engine's). For context, `wasm_identity` streams the same chunks through the identity
//! function (output drained, not kept): what moving the bytes through a guest costs without
//! any work on them. Runs are interleaved (memmem, wasm, bytewise, identity, then again), and
//! every run must give the same count.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use bytes::Bytes;
use futures::StreamExt as _;
use quarry_offload::pipeline;
use quarry_offload::{
    Backend, ChunkStream, Effects, Flow, FunctionLimits, FunctionSpec, InvocationContext, Job,
    Variant, WasmBackend, WasmConfig,
};
use tokio::time::Instant;

use super::corpus;
use super::report::{Throughput, WordcountResult};
use crate::scenario::options::{FunctionsOptions, size_label};
use crate::scenario::target::progress;

/// Limits of the wasm side: the defaults, with time limits far past what 1 GiB takes (the
/// count comes at the end, so the first-byte limit runs as long as the whole job), so the
/// limits never decide the measurement.
fn limits() -> FunctionLimits {
    let long = Duration::from_secs(600);
    FunctionLimits {
        cpu_time: long,
        first_byte_timeout: long,
        timeout: long,
        ..FunctionLimits::default()
    }
}

/// Runs the part.
pub async fn run(options: &FunctionsOptions) -> Result<WordcountResult> {
    ensure!(
        options.wordcount_runs > 0,
        "--wordcount-runs must be at least 1"
    );
    ensure!(
        !options.word.contains('\n'),
        "--word must not contain a newline"
    );
    let module_path = options.functions_dir.join("wordcount.wasm");
    let module_bytes = std::fs::read(&module_path).with_context(|| {
        format!(
            "cannot read {}: build the example functions with \
             `examples/functions/build.sh {}`",
            module_path.display(),
            options.functions_dir.display()
        )
    })?;
    let len = usize::try_from(options.wordcount_size).context("--wordcount-size too large")?;
    let chunk = usize::try_from(options.chunk_size).context("--chunk-size too large")?;
    ensure!(chunk > 0, "--chunk-size must be at least 1 byte");

    let started = Instant::now();
    let text = tokio::task::spawn_blocking(move || Bytes::from(corpus::generate(len)))
        .await
        .context("text generation panicked")?;
    let lines = u64::try_from(memchr::memchr_iter(b'\n', &text).count())
        .context("line count overflows u64")?;
    progress(&format!(
        "wordcount: {} of text, {lines} lines, generated in {:.1} s",
        size_label(options.wordcount_size),
        started.elapsed().as_secs_f64()
    ));
    let chunks: Arc<[Bytes]> = (0..text.len())
        .step_by(chunk)
        .map(|at| text.slice(at..(at + chunk).min(text.len())))
        .collect();

    let backend = Arc::new(
        WasmBackend::new(&WasmConfig::default())
            .map_err(|e| anyhow::anyhow!("the wasm pool did not start: {e}"))?,
    );
    let module = backend
        .compile(&module_bytes)
        .with_context(|| format!("{} does not compile", module_path.display()))?;
    let function = Arc::new(FunctionSpec {
        name: "wordcount".to_owned(),
        version: 1,
        limits: limits(),
        permissions: Vec::new(),
        variants: vec![Variant::Wasm(module)],
    });

    let (identity, identity_module) = compile_identity(&backend, options)?;

    let word = Bytes::from(options.word.clone().into_bytes());
    let bytes = options.wordcount_size;
    let mut sides = Sides::default();
    let mut count = None;
    for run in 1..=options.wordcount_runs {
        let (n, memmem) = timed_blocking({
            let (text, word) = (text.clone(), word.clone());
            move || corpus::count_memmem(&text, &word)
        })
        .await?;
        agree(&mut count, n, "native_memmem", run)?;
        sides.memmem.push(memmem);

        let (n, wasm) = run_wasm(&backend, &function, &options.word, &chunks).await?;
        agree(&mut count, n, "wasm", run)?;
        sides.wasm.push(wasm);

        let (n, bytewise) = timed_blocking({
            let (chunks, word) = (Arc::clone(&chunks), word.clone());
            move || corpus::count_bytewise(&chunks, &word)
        })
        .await?;
        agree(&mut count, n, "native_bytewise", run)?;
        sides.bytewise.push(bytewise);

        let (_, copied, identity_took) = run_job(&backend, &identity, &[], &chunks, false).await?;
        ensure!(
            copied == bytes,
            "identity wrote {copied} bytes of {bytes} in run {run}"
        );
        sides.identity.push(identity_took);

        progress(&format!(
            "wordcount run {run}: {n} lines; native_memmem {:.3} s, wasm {:.3} s, \
             native_bytewise {:.3} s, wasm identity {:.3} s",
            memmem.as_secs_f64(),
            wasm.as_secs_f64(),
            bytewise.as_secs_f64(),
            identity_took.as_secs_f64()
        ));
    }
    Ok(WordcountResult {
        module: module_path.display().to_string(),
        word: options.word.clone(),
        bytes,
        size: size_label(bytes),
        chunk_size: options.chunk_size,
        lines,
        count: count.unwrap_or_default(),
        wasm: Throughput::new(&sides.wasm, bytes),
        native_memmem: Throughput::new(&sides.memmem, bytes),
        native_bytewise: Throughput::new(&sides.bytewise, bytes),
        identity_module,
        wasm_identity: Throughput::new(&sides.identity, bytes),
    })
}

/// Each side's run times.
#[derive(Debug, Default)]
struct Sides {
    wasm: Vec<Duration>,
    memmem: Vec<Duration>,
    bytewise: Vec<Duration>,
    identity: Vec<Duration>,
}

/// Fails unless `n` is the count every earlier run gave.
fn agree(count: &mut Option<u64>, n: u64, side: &str, run: usize) -> Result<()> {
    match *count {
        Some(expected) if expected != n => {
            bail!("{side} counted {n} lines in run {run}, the earlier runs {expected}")
        }
        _ => {
            *count = Some(n);
            Ok(())
        }
    }
}

/// Runs `count` on the blocking pool and times it there.
async fn timed_blocking(count: impl FnOnce() -> u64 + Send + 'static) -> Result<(u64, Duration)> {
    tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        let n = count();
        (n, start.elapsed())
    })
    .await
    .context("native count panicked")
}

/// One wordcount job over `chunks` through the pipeline; returns its count and wall time.
async fn run_wasm(
    backend: &Arc<WasmBackend>,
    function: &Arc<FunctionSpec>,
    word: &str,
    chunks: &Arc<[Bytes]>,
) -> Result<(u64, Duration)> {
    let params = [("word".to_owned(), word.to_owned())];
    let (output, _, took) = run_job(backend, function, &params, chunks, true).await?;
    let text = std::str::from_utf8(&output).context("wordcount wrote non-UTF-8 output")?;
    let n = text
        .trim_end()
        .parse()
        .with_context(|| format!("wordcount wrote {text:?}, not a count"))?;
    Ok((n, took))
}

/// One job over `chunks` through the pipeline, timed from its start to its end. Returns the
/// output (when `keep` asks for it), the bytes of output and the wall time.
async fn run_job(
    backend: &Arc<WasmBackend>,
    function: &Arc<FunctionSpec>,
    params: &[(String, String)],
    chunks: &Arc<[Bytes]>,
    keep: bool,
) -> Result<(Vec<u8>, u64, Duration)> {
    let job = Job {
        function: Arc::clone(function),
        context: InvocationContext {
            event: "invoke".to_owned(),
            params: params.iter().cloned().collect(),
            ..InvocationContext::default()
        },
        flow: Flow::Read,
        effects: Effects::new(),
        bucket: None,
        policy: quarry_offload::Policy::Auto,
    };
    let input: ChunkStream = {
        let chunks = Arc::clone(chunks);
        Box::pin(futures::stream::iter(
            (0..chunks.len()).map(move |i| Ok(chunks[i].clone())),
        ))
    };
    let backend: Arc<dyn Backend> = Arc::clone(backend) as Arc<dyn Backend>;
    let start = Instant::now();
    let mut running = pipeline::start(backend, vec![job], input);
    let (mut output, mut len) = (Vec::new(), 0u64);
    let name = &function.name;
    while let Some(chunk) = running.output.next().await {
        let chunk = chunk.with_context(|| format!("{name}'s output broke"))?;
        len += u64::try_from(chunk.len()).context("chunk length overflows u64")?;
        if keep {
            output.extend_from_slice(&chunk);
        }
    }
    running
        .done
        .await
        .with_context(|| format!("{name} failed"))?;
    Ok((output, len, start.elapsed()))
}

/// The identity function for the streaming-only side: `identity.wasm` when built, else the
/// WAT it is built from. Returns the function and where its module came from.
fn compile_identity(
    backend: &WasmBackend,
    options: &FunctionsOptions,
) -> Result<(Arc<FunctionSpec>, String)> {
    let (bytes, source) = super::get::identity_module(&options.functions_dir)?;
    let module = backend
        .compile(&bytes)
        .with_context(|| format!("{source} does not compile"))?;
    let function = Arc::new(FunctionSpec {
        name: "identity".to_owned(),
        version: 1,
        limits: limits(),
        permissions: Vec::new(),
        variants: vec![Variant::Wasm(module)],
    });
    Ok((function, source))
}
