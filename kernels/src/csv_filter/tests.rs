// SPDX-License-Identifier: Apache-2.0
//! `csv-filter` against hand-computed outputs, and independent of chunking.

use proptest::prelude::*;

use super::CsvFilter;
use crate::test_utils::{bind, run_cpu, run_cpu_pieces, try_bind};

fn filter(params: &[(&str, &str)], input: &[u8]) -> String {
    String::from_utf8(run_cpu(&*bind(&CsvFilter, params), input)).expect("utf-8 output")
}

const PEOPLE: &[u8] =
    b"id,name,age\r\n1,\"Smith, Ann\",34\r\n2,Bob,7\r\n3,\"Li \"\"Lee\"\"\",120\r\n4,Eve\r\n";

#[test]
fn matching_rows_are_emitted_verbatim_after_the_header() {
    assert_eq!(
        filter(&[("column", "name"), ("value", "Bob")], PEOPLE),
        "id,name,age\r\n2,Bob,7\r\n"
    );
    assert_eq!(
        filter(&[("column", "name"), ("value", "Smith, Ann")], PEOPLE),
        "id,name,age\r\n1,\"Smith, Ann\",34\r\n"
    );
    assert_eq!(
        filter(&[("column", "#1"), ("value", "Li \"Lee\"")], PEOPLE),
        "id,name,age\r\n3,\"Li \"\"Lee\"\"\",120\r\n"
    );
}

#[test]
fn numeric_comparisons_skip_rows_that_are_not_numbers() {
    let params = [
        ("column", "age"),
        ("op", "ge"),
        ("value", "34"),
        ("numeric", "true"),
    ];
    assert_eq!(
        filter(&params, PEOPLE),
        "id,name,age\r\n1,\"Smith, Ann\",34\r\n3,\"Li \"\"Lee\"\"\",120\r\n"
    );
    // As text, "7" sorts after "34" and "120" before it.
    let params = [("column", "age"), ("op", "ge"), ("value", "34")];
    assert_eq!(
        filter(&params, PEOPLE),
        "id,name,age\r\n1,\"Smith, Ann\",34\r\n2,Bob,7\r\n"
    );
}

#[test]
fn a_row_without_the_column_never_matches() {
    let params = [("column", "age"), ("op", "ne"), ("value", "x")];
    let out = filter(&params, PEOPLE);
    assert!(!out.contains("Eve"), "{out}");
    assert_eq!(out.lines().count(), 4);
}

#[test]
fn select_projects_fields_as_written() {
    let params = [
        ("column", "age"),
        ("op", "lt"),
        ("value", "100"),
        ("numeric", "true"),
        ("select", "age,#1,#9"),
    ];
    assert_eq!(
        filter(&params, PEOPLE),
        "age,name,\n34,\"Smith, Ann\",\n7,Bob,\n"
    );
}

#[test]
fn contains_looks_inside_unescaped_values() {
    let params = [
        ("column", "name"),
        ("op", "contains"),
        ("value", "\"Lee"),
        ("select", "id"),
    ];
    assert_eq!(filter(&params, PEOPLE), "id\n3\n");
}

#[test]
fn without_a_header_columns_are_indexes_and_every_row_counts() {
    let input = b"a,1\nb,2\nc,3";
    let params = [
        ("column", "#1"),
        ("op", "gt"),
        ("value", "1"),
        ("header", "false"),
    ];
    assert_eq!(filter(&params, input), "b,2\nc,3");
    let err = try_bind(
        &CsvFilter,
        &[("column", "x"), ("value", "1"), ("header", "false")],
    )
    .expect_err("names need a header");
    assert!(err.to_string().contains("#N"), "{err}");
}

#[test]
fn quoted_newlines_stay_inside_their_row() {
    let input = b"k,v\n1,\"two\nlines\"\n2,\"x\"\n";
    assert_eq!(
        filter(&[("column", "k"), ("value", "1")], input),
        "k,v\n1,\"two\nlines\"\n"
    );
    assert_eq!(
        filter(
            &[("column", "v"), ("value", "two\nlines"), ("select", "k")],
            input
        ),
        "k\n1\n"
    );
}

#[test]
fn an_unknown_column_names_the_header() {
    let bound = bind(&CsvFilter, &[("column", "height"), ("value", "1")]);
    let mut run = bound.cpu().expect("cpu");
    let err = run
        .feed(PEOPLE, &mut Vec::new())
        .expect_err("no such column");
    let text = err.to_string();
    assert!(
        text.contains("height") && text.contains("\"age\""),
        "{text}"
    );
}

#[test]
fn empty_and_header_only_inputs() {
    assert_eq!(filter(&[("column", "#0"), ("value", "x")], b""), "");
    assert_eq!(filter(&[("column", "a"), ("value", "x")], b"a,b"), "a,b");
    assert_eq!(
        filter(&[("column", "a"), ("value", "x"), ("select", "b")], b"a,b"),
        "b\n"
    );
}

#[test]
fn bad_parameters_are_refused() {
    assert!(try_bind(&CsvFilter, &[("column", "#x"), ("value", "1")]).is_err());
    assert!(try_bind(&CsvFilter, &[("column", "a")]).is_err());
    assert!(
        try_bind(
            &CsvFilter,
            &[
                ("column", "a"),
                ("value", "1"),
                ("op", "contains"),
                ("numeric", "true")
            ]
        )
        .is_err()
    );
    assert!(
        try_bind(
            &CsvFilter,
            &[("column", "a"), ("value", "z"), ("numeric", "true")]
        )
        .is_err()
    );
}

/// CSV text made of awkward pieces: quotes, escaped quotes, commas and newlines in quotes,
/// CRLF, numbers and short rows.
fn csv_text() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        Just("1".to_owned()),
        Just("-2.5".to_owned()),
        Just("x".to_owned()),
        Just(String::new()),
        Just("\"a,b\"".to_owned()),
        Just("\"q\"\"q\"".to_owned()),
        Just("\"l1\nl2\"".to_owned()),
        Just("é".to_owned()),
        "[0-9]{1,3}",
    ];
    let row = (prop::collection::vec(field, 1..5), any::<bool>()).prop_map(|(f, crlf)| {
        let mut r = f.join(",");
        r.push_str(if crlf { "\r\n" } else { "\n" });
        r
    });
    (prop::collection::vec(row, 0..40), any::<bool>()).prop_map(|(rows, cut)| {
        let mut text = rows.concat().into_bytes();
        if cut && !text.is_empty() {
            text.pop();
        }
        text
    })
}

proptest! {
    #[test]
    fn output_is_independent_of_chunking(
        input in csv_text(),
        sizes in prop::collection::vec(1usize..64, 1..8),
        numeric in any::<bool>(),
        select in any::<bool>(),
    ) {
        let mut params = vec![("column", "#1"), ("op", "le"), ("value", "1"), ("header", "false")];
        if numeric {
            params.push(("numeric", "true"));
        }
        if select {
            params.push(("select", "#2,#0"));
        }
        let bound = bind(&CsvFilter, &params);
        let whole = run_cpu(&*bound, &input);
        prop_assert_eq!(&run_cpu_pieces(&*bound, &input, &sizes), &whole);
        prop_assert_eq!(run_cpu_pieces(&*bound, &input, &[1]), whole);
    }
}
