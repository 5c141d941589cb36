// SPDX-License-Identifier: Apache-2.0
//! Each built-in device program gives the bytes of its CPU twin, on random inputs cut at
//! random places (so records sit at chunk edges), on empty input, and with chunks of one
//! record.

#![cfg(feature = "ebpf")]

use std::sync::Arc;

use proptest::prelude::*;
use quarry_ebpf::{EbpfKernel, Limits, builtin};
use quarry_kernels::{BoundKernel, Kernel, KernelError, Params};

use crate::common::run_pieces;

fn params(pairs: &[(&str, &str)]) -> Params {
    Params::new(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    )
}

fn bind(kernel: &dyn Kernel, pairs: &[(&str, &str)]) -> Result<Arc<dyn BoundKernel>, KernelError> {
    kernel.bind(&params(pairs).validate(kernel.info())?)
}

fn device(name: &str) -> EbpfKernel {
    builtin::kernel(name, Limits::default()).expect("the built-in program loads")
}

fn twin(name: &str) -> &'static dyn Kernel {
    quarry_kernels::find(name).expect("the CPU twin exists")
}

/// Both outputs, or both errors.
fn same(
    device: Result<Vec<u8>, KernelError>,
    cpu: Result<Vec<u8>, KernelError>,
) -> Result<(), TestCaseError> {
    match (device, cpu) {
        (Ok(d), Ok(c)) => {
            prop_assert_eq!(String::from_utf8_lossy(&d), String::from_utf8_lossy(&c));
            prop_assert_eq!(d, c);
        }
        (Err(_), Err(_)) => {}
        (d, c) => prop_assert!(false, "device {:?} but CPU {:?}", d, c),
    }
    Ok(())
}

fn text(alphabet: &'static [u8], max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(proptest::sample::select(alphabet), 0..max)
}

fn pieces() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(1_usize..40, 1..6)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn grep_count_matches_grep(
        input in text(b"ab\n", 400),
        pattern in text(b"ab", 4).prop_filter("non-empty", |p| !p.is_empty()),
        sizes in pieces(),
    ) {
        let pattern = String::from_utf8(pattern).expect("ascii");
        let device = bind(&device("grep-count"), &[("pattern", &pattern)]).expect("binds");
        let cpu = bind(twin("grep"), &[("pattern", &pattern), ("mode", "count")]).expect("binds");
        same(run_pieces(&*device, &input, &sizes), run_pieces(&*cpu, &input, &sizes))?;
    }

    #[test]
    fn crc32c_matches_crc32c(
        input in proptest::collection::vec(any::<u8>(), 0..600),
        sizes in pieces(),
    ) {
        let device = bind(&device("crc32c"), &[]).expect("binds");
        let cpu = bind(twin("crc32c"), &[]).expect("binds");
        same(run_pieces(&*device, &input, &sizes), run_pieces(&*cpu, &input, &sizes))?;
    }

    #[test]
    fn csv_filter_matches_csv_filter(
        input in text(b"ab12,,\"\n\r.-", 300),
        column in proptest::sample::select(&["#0", "#1", "#2", "a", "b", "ab"][..]),
        text_value in text(b"ab12\"", 3),
        number in proptest::sample::select(&["1", "1.0", "-2", "12.50", "0", "+1"][..]),
        numeric in any::<bool>(),
        header in any::<bool>(),
        sizes in pieces(),
    ) {
        let value = if numeric {
            number.to_owned()
        } else {
            String::from_utf8(text_value).expect("ascii")
        };
        let numeric = numeric.to_string();
        let header = header.to_string();
        let pairs = [
            ("column", column),
            ("value", value.as_str()),
            ("numeric", numeric.as_str()),
            ("header", header.as_str()),
        ];
        let device = bind(&device("csv-filter"), &pairs);
        let cpu = bind(twin("csv-filter"), &pairs);
        match (device, cpu) {
            (Ok(device), Ok(cpu)) => {
                same(run_pieces(&*device, &input, &sizes), run_pieces(&*cpu, &input, &sizes))?;
            }
            (Err(d), Err(c)) => prop_assert_eq!(d, c),
            (d, c) => prop_assert!(false, "bind: device {:?} but CPU {:?}", d.err(), c.err()),
        }
    }
}

#[test]
fn empty_input_gives_the_twins_result() {
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a [(&'a str, &'a str)],
        &'a [(&'a str, &'a str)],
    );
    let cases: [Case<'_>; 3] = [
        (
            "grep-count",
            "grep",
            &[("pattern", "x")],
            &[("pattern", "x"), ("mode", "count")],
        ),
        ("crc32c", "crc32c", &[], &[]),
        (
            "csv-filter",
            "csv-filter",
            &[("column", "#0"), ("value", "x")],
            &[("column", "#0"), ("value", "x")],
        ),
    ];
    for (name, twin_name, device_params, cpu_params) in cases {
        let device = bind(&device(name), device_params).expect("binds");
        let cpu = bind(twin(twin_name), cpu_params).expect("binds");
        let d = run_pieces(&*device, b"", &[1]).expect("runs");
        assert_eq!(d, run_pieces(&*cpu, b"", &[1]).expect("runs"), "{name}");
    }
}

#[test]
fn records_at_chunk_edges_are_counted_once() {
    let input = b"xx\nax\nxa\nnone\nx";
    let device = bind(&device("grep-count"), &[("pattern", "x")]).expect("binds");
    for size in 1..input.len() {
        assert_eq!(
            run_pieces(&*device, input, &[size]).expect("runs"),
            b"4\n",
            "pieces of {size}"
        );
    }
}

#[test]
fn csv_filter_keeps_quoted_and_numeric_matches() {
    let input = b"name,qty\n\"a,b\",1.50\nc,1.5\nd,x\n\"e\"\"\",2\n";
    let by_text = bind(
        &device("csv-filter"),
        &[("column", "name"), ("value", "e\"")],
    )
    .expect("binds");
    assert_eq!(
        run_pieces(&*by_text, input, &[7]).expect("runs"),
        b"name,qty\n\"e\"\"\",2\n"
    );
    let by_number = bind(
        &device("csv-filter"),
        &[("column", "qty"), ("value", "1.5"), ("numeric", "true")],
    )
    .expect("binds");
    assert_eq!(
        run_pieces(&*by_number, input, &[5]).expect("runs"),
        b"name,qty\n\"a,b\",1.50\nc,1.5\n"
    );
}

#[test]
fn parameters_the_twin_refuses_are_refused_alike() {
    let err = bind(&device("grep-count"), &[("pattern", "")]).expect_err("empty pattern");
    let twin_err = bind(twin("grep"), &[("pattern", ""), ("mode", "count")]).expect_err("empty");
    assert_eq!(err, twin_err);
    let err = bind(
        &device("csv-filter"),
        &[("column", "#0"), ("value", "x"), ("numeric", "true")],
    )
    .expect_err("not a number");
    assert!(err.to_string().contains("value"), "{err}");
    let long = "x".repeat(builtin::GREP_MAX_PATTERN + 1);
    let err = bind(&device("grep-count"), &[("pattern", &long)]).expect_err("too long");
    assert!(err.to_string().contains("at most 1024"), "{err}");
}

#[test]
fn a_counting_kernel_reports_its_runs_instructions() {
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let kernel = device("crc32c").counting(Arc::clone(&counter));
    let bound = bind(&kernel, &[]).expect("binds");
    let out = run_pieces(&*bound, &[1; 500], &[100]).expect("runs");
    assert_eq!(out.len(), 9);
    let after_one = counter.load(std::sync::atomic::Ordering::Relaxed);
    assert!(after_one > 500, "{after_one}");
    run_pieces(&*bound, &[1; 500], &[100]).expect("runs");
    assert_eq!(
        counter.load(std::sync::atomic::Ordering::Relaxed),
        2 * after_one
    );
}

#[test]
fn runs_count_their_instructions() {
    let kernel = device("crc32c");
    let mut run = kernel.start(&Params::default()).expect("starts");
    let mut out = Vec::new();
    quarry_kernels::CpuRun::feed(&mut run, &[7; 1000], &mut out).expect("feeds");
    let after_one = run.instructions();
    assert!(after_one > 1000, "{after_one}");
    quarry_kernels::CpuRun::feed(&mut run, &[7; 1000], &mut out).expect("feeds");
    assert!(run.instructions() > after_one);
}
