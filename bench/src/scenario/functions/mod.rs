// SPDX-License-Identifier: Apache-2.0
//! Scenario `functions`: what running a storage function next to the data costs.
//!
//! - Part `get`: a 1 KiB GET through an identity `after-get` trigger against the same GET
//!   without a trigger, on one quarryd, interleaved; judged: at most 30 us added at the median.
//! - Part `wordcount`: `wordcount.wasm` over 1 GiB of text in memory, through the WebAssembly
//!   pool in this process, against native Rust over the same text; judged: at least 0.5x the
//!   throughput of a native SIMD substring search. Every side must give the same count.
//!
//! Invariants of a run: every part asked for appears in the report as ran or failed (with the
//! error); a ratio whose part failed is `not_measured`, never `pass`; quarryd runs on a fresh
//! data dir and is stopped whatever happens to the measurement.

pub mod admin;
pub mod corpus;
pub mod get;
pub mod report;
pub mod wordcount;

pub use self::report::FunctionsReport;

use std::io::{self, Write};

use anyhow::Result;

use self::report::{CAVEATS, CONTEXT, FunctionsSettings, GetResult, PartReport, WordcountResult};
use super::machine::MachineInfo;
use super::options::{FunctionsOptions, FunctionsPart, size_label};
use super::ratios::ratio;
use super::report::{Comparison, Ratio, Summary, TargetStatus};
use super::table::write_ratios;
use super::target::progress;
use super::{git_revision, now_rfc3339};

/// Most microseconds an identity trigger may add to a small GET at the median.
pub const ADDED_P50_TARGET_US: f64 = 30.0;
/// Least share of native throughput wordcount in wasm must reach.
pub const WORDCOUNT_TARGET: f64 = 0.5;

/// Runs scenario `functions`. Part failures are recorded in the report; only a broken setup
/// (no work dir) is an `Err`.
pub async fn run_functions(options: &FunctionsOptions) -> Result<FunctionsReport> {
    let started_at = now_rfc3339();
    let mut machine = MachineInfo::read();
    let work = super::run_dir(&options.work_dir, "functions-")?;

    let mut parts = Vec::new();
    let (mut get, mut wordcount) = (None, None);
    for &part in &options.parts {
        let outcome = match part {
            FunctionsPart::Get => get::run(options, work.path()).await.map(|r| get = Some(r)),
            FunctionsPart::Wordcount => wordcount::run(options).await.map(|r| wordcount = Some(r)),
        };
        let message = outcome.err().map(|error| {
            progress(&format!("{part} FAILED: {error:#}"));
            format!("{error:#}")
        });
        parts.push(PartReport {
            part,
            status: if message.is_some() {
                TargetStatus::Failed
            } else {
                TargetStatus::Ran
            },
            message,
        });
    }
    if options.keep_work {
        let kept = work.keep();
        progress(&format!("work dir kept: {}", kept.display()));
    }
    machine.load_average_end = super::machine::load_average();

    let ratios = compute_ratios(options, &parts, get.as_ref(), wordcount.as_ref());
    let mut summary = Summary::new(&ratios, &[]);
    summary.failed_targets = parts
        .iter()
        .filter(|p| p.status == TargetStatus::Failed)
        .count();
    Ok(FunctionsReport {
        scenario: "functions",
        format_version: report::FORMAT_VERSION,
        started_at,
        finished_at: now_rfc3339(),
        revision: git_revision(),
        machine,
        settings: FunctionsSettings {
            parts: options.parts.clone(),
            requests: options.requests,
            warmup_requests: options.warmup_requests,
            object_size: options.object_size,
            wordcount_size: options.wordcount_size,
            chunk_size: options.chunk_size,
            wordcount_runs: options.wordcount_runs,
            functions_dir: options.functions_dir.display().to_string(),
        },
        caveats: CAVEATS.to_vec(),
        context: CONTEXT.to_vec(),
        parts,
        get,
        wordcount,
        ratios,
        summary,
    })
}

/// The judged figures and their context, each `not_measured` with the reason when its part did
/// not complete.
fn compute_ratios(
    options: &FunctionsOptions,
    parts: &[PartReport],
    get: Option<&GetResult>,
    wordcount: Option<&WordcountResult>,
) -> Vec<Ratio> {
    let missing = |part: FunctionsPart| {
        parts.iter().find(|p| p.part == part).map_or_else(
            || format!("part {part} not asked for (--parts)"),
            |p| format!("part {part} failed: {}", p.message.as_deref().unwrap_or("")),
        )
    };
    let get_figure =
        |figure: fn(&GetResult) -> f64| get.map(figure).ok_or_else(|| missing(FunctionsPart::Get));
    let size = size_label(options.object_size);
    let mut ratios = vec![
        ratio(
            format!("get_{size}_identity_trigger_added_p50_us"),
            format!(
                "{size} GET through an identity after-get trigger p50 minus the same GET \
                 without a trigger p50, in microseconds"
            ),
            get_figure(|g| g.added_p50_us),
            Some((Comparison::AtMost, ADDED_P50_TARGET_US)),
        ),
        ratio(
            format!("get_{size}_identity_trigger_added_p99_us"),
            "the same at p99, in microseconds (context)".to_owned(),
            get_figure(|g| g.added_p99_us),
            None,
        ),
        ratio(
            format!("get_{size}_identity_trigger_paired_difference_p50_us"),
            "the median over back-to-back pairs of (with trigger - without), in microseconds \
             (context: a second estimate of the median cost)"
                .to_owned(),
            get_figure(|g| g.paired_difference_p50_us),
            None,
        ),
    ];
    let throughput_ratio = |native: fn(&WordcountResult) -> f64| {
        let w = wordcount.ok_or_else(|| missing(FunctionsPart::Wordcount))?;
        let (wasm, native) = (w.wasm.median_mb_per_s, native(w));
        if native > 0.0 {
            Ok(wasm / native)
        } else {
            Err("native throughput is zero".to_owned())
        }
    };
    let text = size_label(options.wordcount_size);
    ratios.push(ratio(
        format!("wordcount_{text}_wasm_vs_native_memmem"),
        format!(
            "wordcount.wasm MB/s through the pool / native Rust memchr::memmem MB/s, same \
             {text} of text in memory, median of the runs"
        ),
        throughput_ratio(|w| w.native_memmem.median_mb_per_s),
        Some((Comparison::AtLeast, WORDCOUNT_TARGET)),
    ));
    ratios.push(ratio(
        format!("wordcount_{text}_wasm_vs_native_bytewise"),
        "wordcount.wasm MB/s / the same byte-at-a-time algorithm compiled natively (context: \
         the engine's share of the gap)"
            .to_owned(),
        throughput_ratio(|w| w.native_bytewise.median_mb_per_s),
        None,
    ));
    ratios.push(ratio(
        format!("wordcount_{text}_wasm_vs_wasm_identity"),
        "wordcount.wasm MB/s / the identity function's MB/s over the same chunks (context: \
         how far the count runs below moving the bytes through a guest)"
            .to_owned(),
        throughput_ratio(|w| w.wasm_identity.median_mb_per_s),
        None,
    ));
    ratios
}

/// Writes the measurements and the ratios as aligned text.
pub fn write_table(report: &FunctionsReport, out: &mut impl Write) -> io::Result<()> {
    if let Some(g) = &report.get {
        writeln!(
            out,
            "{:<40} {:>8} {:>10} {:>10} {:>10} {:>10}",
            "GET", "requests", "mean us", "p50 us", "p90 us", "p99 us"
        )?;
        for (name, s) in [
            ("without trigger", &g.without_trigger),
            ("with identity after-get trigger", &g.with_trigger),
        ] {
            writeln!(
                out,
                "{name:<40} {:>8} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
                s.requests, s.mean_us, s.p50_us, s.p90_us, s.p99_us
            )?;
        }
        writeln!(out)?;
    }
    if let Some(w) = &report.wordcount {
        writeln!(
            out,
            "wordcount over {} ({} lines, {} contain {:?}):",
            w.size, w.lines, w.count, w.word
        )?;
        for (name, t) in [
            ("wasm (pipeline)", &w.wasm),
            ("native memmem", &w.native_memmem),
            ("native bytewise", &w.native_bytewise),
            ("wasm identity", &w.wasm_identity),
        ] {
            writeln!(
                out,
                "  {name:<18} median {:>8.3} s {:>10.1} MB/s",
                t.median_s, t.median_mb_per_s
            )?;
        }
        writeln!(out)?;
    }
    write_ratios(&report.ratios, out)?;
    for p in &report.parts {
        if p.status == TargetStatus::Failed {
            writeln!(
                out,
                "{} FAILED: {}",
                p.part,
                p.message.as_deref().unwrap_or("")
            )?;
        }
    }
    writeln!(
        out,
        "note: {}",
        report.caveats.first().copied().unwrap_or_default()
    )
}
