// SPDX-License-Identifier: Apache-2.0
//! Part `get`: what an identity `after-get` trigger adds to a small GET.
//!
//! One quarryd (started on a fresh data dir), two buckets holding the same object; the identity
//! function is deployed through the admin API and bound to one bucket's `after-get` event. GETs
//! of the two run in pairs, one at a time over one connection, alternating which goes first,
//! so that drift (other load, the CPU's clock, quarryd's caches) hits both sides alike.
//!
//! Every response is checked after its timing ends: the body must be the object, and the
//! `x-quarry-function` header must name the identity function on the trigger side and be
//! absent on the other, so a trigger that did not fire cannot pass for a cheap one.

use std::path::Path;

use anyhow::{Context as _, Result, anyhow, ensure};
use bytes::Bytes;
use serde_json::json;
use tokio::time::Instant;

use super::admin::AdminClient;
use super::report::{GetResult, LatencyStats};
use crate::scenario::options::{FunctionsOptions, size_label};
use crate::scenario::quarryd::QuarrydProcess;
use crate::scenario::report::{QuarrydFacts, round3};
use crate::scenario::s3::{S3Endpoint, S3Target};
use crate::scenario::target::{make_payload, progress};

/// The bucket without a trigger.
const PLAIN_BUCKET: &str = "quarry-bench-plain";
/// The bucket whose `after-get` trigger runs the identity function.
const TRIGGER_BUCKET: &str = "quarry-bench-identity";
/// The object both buckets hold.
const KEY: &str = "object";
/// The function's name.
const FUNCTION: &str = "identity";
/// The identity function as WAT, deployed when `identity.wasm` was not built.
const IDENTITY_WAT: &str = include_str!("../../../../examples/functions/wat/identity.wat");

/// Runs the part against a quarryd it starts in `work`.
pub async fn run(options: &FunctionsOptions, work: &Path) -> Result<GetResult> {
    let binary = &options.quarryd;
    ensure!(
        binary.is_file(),
        "quarryd binary {} not found: build it with \
         `cargo build --release -p quarry-agent --bin quarryd` or pass --quarryd PATH",
        binary.display()
    );
    ensure!(options.requests > 0, "--requests must be at least 1");
    let data_dir = work.join("quarryd-data");
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("failed to create {}", data_dir.display()))?;
    let spawned = Instant::now();
    let process = QuarrydProcess::start(binary, &data_dir, &work.join("quarryd.log")).await?;
    let mut facts = QuarrydFacts {
        binary: binary.display().to_string(),
        pid: process.pid(),
        start_s: round3(spawned.elapsed().as_secs_f64()),
        ..QuarrydFacts::default()
    };
    progress(&format!(
        "quarryd pid {} healthy on {} after {:.2} s",
        facts.pid, process.endpoint.url, facts.start_s
    ));
    let measured = async {
        facts.idle = Some(process.rss()?);
        let result = measure(options, &process).await?;
        facts.after_run = Some(process.rss()?);
        anyhow::Ok(result)
    }
    .await;
    let log_tail = process.log_tail();
    let stopped = process.stop().await;
    if let Ok((status, took)) = &stopped {
        facts.exit_status = Some(status.to_string());
        facts.shutdown_s = Some(round3(took.as_secs_f64()));
    }
    match (measured, stopped) {
        (Ok(mut result), Ok((status, _))) => {
            ensure!(
                status.success(),
                "quarryd exited with {status} after SIGTERM; log:\n{log_tail}"
            );
            result.quarryd = facts;
            Ok(result)
        }
        (Ok(_), Err(stop)) => Err(stop),
        (Err(e), Ok(_)) => Err(anyhow!("{e:#}\nquarryd log tail:\n{log_tail}")),
        (Err(e), Err(stop)) => Err(anyhow!(
            "{e:#}\nthen: {stop:#}\nquarryd log tail:\n{log_tail}"
        )),
    }
}

/// Sets up the buckets, the function and the trigger, then times the GETs.
async fn measure(options: &FunctionsOptions, process: &QuarrydProcess) -> Result<GetResult> {
    let endpoint: &S3Endpoint = &process.endpoint;
    let plain = S3Target::with_pool(endpoint, PLAIN_BUCKET, 1, options.request_timeout)?;
    let triggered = plain.for_bucket(endpoint, TRIGGER_BUCKET)?;
    let payload = make_payload(options.object_size)?;
    for side in [&plain, &triggered] {
        side.create_bucket().await?;
        side.put(KEY, payload.clone()).await?;
    }

    let admin = AdminClient::new(process.admin, &process.admin_token, options.request_timeout)?;
    let (module, module_name) = identity_module(&options.functions_dir)?;
    let record = admin.deploy(FUNCTION, module).await?;
    let version = record
        .get("version")
        .and_then(serde_json::Value::as_u64)
        .with_context(|| format!("the deploy answered a record without a version: {record}"))?;
    let label = format!("{FUNCTION}@v{version}");
    let trigger = admin
        .add_trigger(&json!({
            "bucket": TRIGGER_BUCKET,
            "event": "after-get",
            "functions": [FUNCTION],
        }))
        .await?;
    progress(&format!(
        "get: {label} deployed from {module_name}, after-get trigger on {TRIGGER_BUCKET}; \
         {} warm-up and {} timed GETs of {} per side",
        options.warmup_requests,
        options.requests,
        size_label(options.object_size)
    ));

    let mut without = Vec::with_capacity(options.requests);
    let mut with = Vec::with_capacity(options.requests);
    for i in 0..options.warmup_requests + options.requests {
        let trigger_first = i % 2 == 1;
        let mut pair = [0u64; 2];
        for with_trigger in [trigger_first, !trigger_first] {
            let side = if with_trigger { &triggered } else { &plain };
            let start = Instant::now();
            let (headers, body) = side.get_full(KEY).await?;
            let took = start.elapsed();
            check(
                &headers,
                &body,
                &payload,
                with_trigger.then_some(label.as_str()),
            )
            .with_context(|| format!("GET {i} ({})", side_name(with_trigger)))?;
            pair[usize::from(with_trigger)] =
                u64::try_from(took.as_nanos()).context("a GET took centuries")?;
        }
        if i >= options.warmup_requests {
            without.push(pair[0]);
            with.push(pair[1]);
        }
    }

    let (without_stats, with_stats) = (LatencyStats::new(&without), LatencyStats::new(&with));
    let mut differences: Vec<i128> = with
        .iter()
        .zip(&without)
        .map(|(&w, &p)| i128::from(w) - i128::from(p))
        .collect();
    differences.sort_unstable();
    let paired = differences
        .get(differences.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or_default();
    Ok(GetResult {
        object_size: options.object_size,
        function: label,
        module: module_name,
        trigger,
        quarryd: QuarrydFacts::default(),
        added_p50_us: round3(with_stats.p50_us - without_stats.p50_us),
        added_p99_us: round3(with_stats.p99_us - without_stats.p99_us),
        added_mean_us: round3(with_stats.mean_us - without_stats.mean_us),
        paired_difference_p50_us: round3(paired as f64 / 1e3),
        without_trigger: without_stats,
        with_trigger: with_stats,
    })
}

/// The identity module: `identity.wasm` in `functions_dir` when built, else the WAT it is
/// built from. Returns the bytes and where they came from.
pub fn identity_module(functions_dir: &Path) -> Result<(Vec<u8>, String)> {
    let built = functions_dir.join("identity.wasm");
    match std::fs::read(&built) {
        Ok(bytes) => Ok((bytes, built.display().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((
            IDENTITY_WAT.as_bytes().to_vec(),
            "examples/functions/wat/identity.wat (built in; no identity.wasm in the functions \
             dir)"
                .to_owned(),
        )),
        Err(e) => Err(e).with_context(|| format!("failed to read {}", built.display())),
    }
}

fn side_name(with_trigger: bool) -> &'static str {
    if with_trigger {
        TRIGGER_BUCKET
    } else {
        PLAIN_BUCKET
    }
}

/// The body is the object, and `x-quarry-function` is `function` (or absent when `None`).
fn check(
    headers: &reqwest::header::HeaderMap,
    body: &Bytes,
    payload: &Bytes,
    function: Option<&str>,
) -> Result<()> {
    ensure!(
        body == payload,
        "the body ({} bytes) is not the object ({} bytes)",
        body.len(),
        payload.len()
    );
    let named = headers
        .get("x-quarry-function")
        .map(|v| v.to_str().unwrap_or("<not text>"));
    ensure!(
        named == function,
        "x-quarry-function is {named:?}, expected {function:?} (did the trigger fire?)"
    );
    Ok(())
}
