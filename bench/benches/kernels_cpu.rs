// SPDX-License-Identifier: Apache-2.0
//! Criterion group `kernels_cpu`: the CPU runs of the line kernels and reductions over 16 MiB
//! held in memory, in bytes per second on the bench thread (one core), so a change to a
//! kernel's hot loop shows up here before it shows up in the `kernels` scenario.
//!
//! - `grep_count`, `grep_lines`, `grep_count_ignore_case`: a 5-letter pattern in log lines of
//!   about 90 bytes, one in 64 of which holds it. Target for `grep_count`: 10 GB/s.
//! - `jsonl_filter_eq`: a top-level string field compared in JSON lines of about 110 bytes,
//!   every line holding the field, one in 8 with the value.
//! - `csv_filter_eq`, `csv_agg_all`: rows of about 60 bytes with a quoted last field (commas
//!   and doubled quotes inside it); the filter keeps one row in 20 by a text compare, the
//!   aggregate sums a numeric column. Target for `csv_filter_eq`: 1.5 GB/s.
//! - `crc32c`, `byte_histogram`, `xxh3`: the same bytes as the log lines.
//!
//! Each iteration feeds the whole input as one chunk to a fresh run and finishes it.
//! Run with `cargo bench -p quarry-bench --bench kernels_cpu`; the figures land in
//! `target/criterion/kernels_cpu/<id>/new/estimates.json`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use quarry_kernels::{BoundKernel, Params};

/// Input size per iteration.
const INPUT_BYTES: usize = 16 << 20;

/// Log lines: `LINE_EVERY`-th line holds `ERROR`.
fn log_lines() -> Vec<u8> {
    const LINE_EVERY: usize = 64;
    let mut out = Vec::with_capacity(INPUT_BYTES + 128);
    let mut n = 0usize;
    while out.len() < INPUT_BYTES {
        let level = if n.is_multiple_of(LINE_EVERY) {
            "ERROR"
        } else {
            "info"
        };
        out.extend_from_slice(
            format!(
                "2026-11-23T17:{:02}:{:02}Z {level} node-{} request {n} served in {} us\n",
                n / 60 % 60,
                n % 60,
                n % 7,
                n * 37 % 1000
            )
            .as_bytes(),
        );
        n += 1;
    }
    out.truncate(INPUT_BYTES);
    out
}

/// JSON lines: one in 8 has `"level":"error"`.
fn json_lines() -> Vec<u8> {
    let mut out = Vec::with_capacity(INPUT_BYTES + 256);
    let mut n = 0usize;
    while out.len() < INPUT_BYTES {
        let level = if n.is_multiple_of(8) { "error" } else { "info" };
        out.extend_from_slice(
            format!(
                "{{\"ts\":{n},\"ctx\":{{\"node\":{},\"tags\":[\"a\",\"b\"]}},\"level\":\"{level}\",\"msg\":\"request {n} served\"}}\n",
                n % 7
            )
            .as_bytes(),
        );
        n += 1;
    }
    out.truncate(INPUT_BYTES);
    out
}

/// CSV rows `id,status,bytes,path,agent` under a header: one in 20 has status 500.
fn csv_rows() -> Vec<u8> {
    const AGENTS: [&str; 3] = ["curl/8.5.0", "aws-cli/2.15, botocore", "say \"\"hi\"\""];
    let mut out = Vec::with_capacity(INPUT_BYTES + 128);
    out.extend_from_slice(b"id,status,bytes,path,agent\n");
    let mut n = 0usize;
    while out.len() < INPUT_BYTES {
        let status = if n.is_multiple_of(20) { 500 } else { 200 };
        out.extend_from_slice(
            format!(
                "{n},{status},{},/api/v1/items/{},\"{}\"\n",
                n * 7919 % 100_000,
                n % 97,
                AGENTS[n % 3]
            )
            .as_bytes(),
        );
        n += 1;
    }
    out.truncate(INPUT_BYTES);
    out
}

/// One benchmark: its id, the kernel, its parameters and its input.
type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a [u8]);

/// The built-in kernel `name` bound to `params`.
fn bind(name: &str, params: &[(&str, &str)]) -> std::sync::Arc<dyn BoundKernel> {
    let kernel = quarry_kernels::find(name).expect("a built-in kernel");
    let params = Params::new(
        params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    )
    .validate(kernel.info())
    .expect("valid parameters");
    kernel.bind(&params).expect("bindable parameters")
}

/// One whole CPU run over `input`; returns the output length.
fn run_once(bound: &dyn BoundKernel, input: &[u8], out: &mut Vec<u8>) -> usize {
    out.clear();
    let mut run = bound.cpu().expect("a CPU variant");
    run.feed(input, out).expect("feed");
    run.finish(out).expect("finish");
    out.len()
}

fn kernels_cpu(c: &mut Criterion) {
    let logs = log_lines();
    let json = json_lines();
    let csv = csv_rows();
    let cases: [Case<'_>; 9] = [
        (
            "grep_count",
            "grep",
            &[("pattern", "ERROR"), ("mode", "count")],
            &logs,
        ),
        ("grep_lines", "grep", &[("pattern", "ERROR")], &logs),
        (
            "grep_count_ignore_case",
            "grep",
            &[
                ("pattern", "error"),
                ("mode", "count"),
                ("ignore_case", "true"),
            ],
            &logs,
        ),
        (
            "jsonl_filter_eq",
            "jsonl-filter",
            &[("field", "level"), ("value", "error")],
            &json,
        ),
        (
            "csv_filter_eq",
            "csv-filter",
            &[("column", "status"), ("value", "500")],
            &csv,
        ),
        (
            "csv_agg_all",
            "csv-agg",
            &[("column", "bytes"), ("fn", "all")],
            &csv,
        ),
        ("crc32c", "crc32c", &[], &logs),
        ("byte_histogram", "byte-histogram", &[], &logs),
        ("xxh3", "xxh3", &[], &logs),
    ];
    let mut group = c.benchmark_group("kernels_cpu");
    group
        .throughput(Throughput::Bytes(INPUT_BYTES as u64))
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));
    let mut out = Vec::with_capacity(INPUT_BYTES);
    for (id, kernel, params, input) in cases {
        let bound = bind(kernel, params);
        group.bench_function(id, |b| {
            b.iter(|| black_box(run_once(bound.as_ref(), black_box(input), &mut out)));
        });
    }
    group.finish();
}

criterion_group!(benches, kernels_cpu);
criterion_main!(benches);
