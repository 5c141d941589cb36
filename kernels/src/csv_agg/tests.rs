// SPDX-License-Identifier: Apache-2.0
//! `csv-agg` against hand-computed outputs and a naive oracle, and independent of chunking.

use proptest::prelude::*;

use super::CsvAgg;
use crate::test_utils::{bind, run_cpu, run_cpu_pieces, try_bind};

fn agg(params: &[(&str, &str)], input: &[u8]) -> String {
    String::from_utf8(run_cpu(&*bind(&CsvAgg, params), input)).expect("utf-8 output")
}

const ITEMS: &[u8] = b"item,price,qty\r\nA,1.50,2\r\nB,\"2.25\",x\r\nC,-0.75,3\r\nD,n/a,1\r\nE\r\n";

#[test]
fn all_reports_every_line_and_counts_skipped_rows() {
    assert_eq!(
        agg(&[("column", "price")], ITEMS),
        "count\t3\nsum\t3.000000\nmin\t-0.750000\nmax\t2.250000\navg\t1.000000\nskipped\t2\n"
    );
}

#[test]
fn each_function_reports_its_line_and_skipped() {
    let cases = [
        ("count", "count\t3\n"),
        ("sum", "sum\t3.000000\n"),
        ("min", "min\t-0.750000\n"),
        ("max", "max\t2.250000\n"),
        ("avg", "avg\t1.000000\n"),
    ];
    for (func, line) in cases {
        assert_eq!(
            agg(&[("column", "#1"), ("fn", func)], ITEMS),
            format!("{line}skipped\t2\n")
        );
    }
}

#[test]
fn where_keeps_only_matching_rows() {
    let params = [
        ("column", "price"),
        ("where_column", "qty"),
        ("where_op", "ge"),
        ("where_value", "2"),
        ("where_numeric", "true"),
    ];
    // B's qty is not a number and E has no qty: neither is considered, so neither is skipped.
    assert_eq!(
        agg(&params, ITEMS),
        "count\t2\nsum\t0.750000\nmin\t-0.750000\nmax\t1.500000\navg\t0.375000\nskipped\t0\n"
    );
    let params = [
        ("column", "price"),
        ("fn", "count"),
        ("where_column", "item"),
        ("where_op", "contains"),
        ("where_value", "D"),
    ];
    assert_eq!(agg(&params, ITEMS), "count\t0\nskipped\t1\n");
}

#[test]
fn no_rows_print_null_extremes() {
    let empty = "count\t0\nsum\t0.000000\nmin\tnull\nmax\tnull\navg\tnull\nskipped\t0\n";
    assert_eq!(agg(&[("column", "#0")], b""), empty);
    assert_eq!(agg(&[("column", "v")], b"v\n"), empty);
    assert_eq!(agg(&[("column", "v")], b"v"), empty);
}

#[test]
fn the_average_rounds_half_away_from_zero() {
    let params = [("column", "#0"), ("fn", "avg"), ("header", "false")];
    assert_eq!(
        agg(&params, b"0.000001\n0.000002\n"),
        "avg\t0.000002\nskipped\t0\n"
    );
    assert_eq!(
        agg(&params, b"-0.000001\n-0.000002"),
        "avg\t-0.000002\nskipped\t0\n"
    );
    assert_eq!(agg(&params, b"1\n1\n2\n"), "avg\t1.333333\nskipped\t0\n");
}

#[test]
fn the_sum_is_exact_past_the_range_of_i64() {
    let input = "999999999999.999999\n".repeat(20);
    assert_eq!(
        agg(&[("column", "#0"), ("header", "false")], input.as_bytes()),
        "count\t20\nsum\t19999999999999.999980\nmin\t999999999999.999999\n\
         max\t999999999999.999999\navg\t999999999999.999999\nskipped\t0\n"
    );
    let input = "-999999999999.999999\n".repeat(10);
    let out = agg(
        &[("column", "#0"), ("fn", "sum"), ("header", "false")],
        input.as_bytes(),
    );
    assert_eq!(out, "sum\t-9999999999999.999990\nskipped\t0\n");
}

#[test]
fn an_unknown_column_names_the_header() {
    let bound = bind(&CsvAgg, &[("column", "cost")]);
    let mut run = bound.cpu().expect("cpu");
    let err = run
        .feed(ITEMS, &mut Vec::new())
        .expect_err("no such column");
    assert!(err.to_string().contains("\"price\""), "{err}");
    let bound = bind(&CsvAgg, &[("column", "price"), ("where_column", "kind")]);
    let mut run = bound.cpu().expect("cpu");
    let err = run
        .feed(ITEMS, &mut Vec::new())
        .expect_err("no such column");
    assert!(err.to_string().contains("where_column"), "{err}");
}

#[test]
fn bad_parameters_are_refused() {
    assert!(try_bind(&CsvAgg, &[]).is_err());
    assert!(try_bind(&CsvAgg, &[("column", "a"), ("fn", "median")]).is_err());
    assert!(try_bind(&CsvAgg, &[("column", "a"), ("where_value", "x")]).is_err());
    assert!(
        try_bind(
            &CsvAgg,
            &[
                ("column", "a"),
                ("where_column", "b"),
                ("where_value", "x"),
                ("where_numeric", "true")
            ]
        )
        .is_err()
    );
    assert!(try_bind(&CsvAgg, &[("column", "a"), ("header", "false")]).is_err());
}

/// An independent reading of simple CSV (no quotes, whole numbers): split on `\n` and `,`;
/// rows whose field 0 is a number at least `min_qty` are aggregated on field `column`. The
/// expected output without its `avg` line.
fn oracle(input: &str, column: usize, min_qty: i64) -> String {
    let (mut count, mut skipped, mut sum) = (0_u64, 0_u64, 0_i128);
    let (mut min, mut max) = (None::<i64>, None::<i64>);
    for line in input.split_terminator('\n') {
        let fields: Vec<&str> = line.split(',').collect();
        if !fields[0].parse::<i64>().is_ok_and(|q| q >= min_qty) {
            continue;
        }
        match fields.get(column).and_then(|f| f.parse::<i64>().ok()) {
            Some(v) => {
                count += 1;
                sum += i128::from(v);
                min = Some(min.map_or(v, |m| m.min(v)));
                max = Some(max.map_or(v, |m| m.max(v)));
            }
            None => skipped += 1,
        }
    }
    let show = |v: Option<i64>| v.map_or_else(|| "null".to_owned(), |v| format!("{v}.000000"));
    format!(
        "count\t{count}\nsum\t{sum}.000000\nmin\t{}\nmax\t{}\nskipped\t{skipped}\n",
        show(min),
        show(max)
    )
}

proptest! {
    #[test]
    fn output_is_independent_of_chunking(
        rows in prop::collection::vec(
            prop::collection::vec(prop_oneof![Just("x".to_owned()), Just("\"1,\n2\"".to_owned()), "-?[0-9]{1,4}(\\.[0-9]{1,8})?"], 0..4),
            0..60,
        ),
        sizes in prop::collection::vec(1usize..64, 1..8),
        filtered in any::<bool>(),
    ) {
        let input = rows.iter().map(|r| r.join(",")).collect::<Vec<_>>().join("\n").into_bytes();
        let mut params = vec![("column", "#1"), ("header", "false")];
        if filtered {
            params.extend([("where_column", "#0"), ("where_op", "gt"), ("where_value", "0"), ("where_numeric", "true")]);
        }
        let bound = bind(&CsvAgg, &params);
        let whole = run_cpu(&*bound, &input);
        prop_assert_eq!(&run_cpu_pieces(&*bound, &input, &sizes), &whole);
        prop_assert_eq!(run_cpu_pieces(&*bound, &input, &[1]), whole);
    }

    #[test]
    fn integers_agree_with_a_naive_oracle(
        rows in prop::collection::vec((-5..20_i64, prop_oneof![Just("n".to_owned()), (-1000..1000_i64).prop_map(|v| v.to_string())]), 0..40),
    ) {
        let input: String = rows.iter().map(|(q, v)| format!("{q},{v}\n")).collect();
        let params = [
            ("column", "#1"), ("fn", "all"), ("header", "false"),
            ("where_column", "#0"), ("where_op", "ge"), ("where_value", "3"), ("where_numeric", "true"),
        ];
        let out = agg(&params, input.as_bytes());
        let without_avg: String = out.lines().filter(|l| !l.starts_with("avg")).map(|l| format!("{l}\n")).collect();
        prop_assert_eq!(without_avg, oracle(&input, 1, 3));
    }
}
