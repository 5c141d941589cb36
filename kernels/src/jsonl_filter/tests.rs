// SPDX-License-Identifier: Apache-2.0
use proptest::prelude::*;

use super::*;
use crate::test_utils::{bind, run_cpu, run_cpu_pieces, try_bind};

const LOG: &str = concat!(
    r#"{"level":"error","msg":"disk full","code":507}"#,
    "\n",
    r#"{"level":"info","msg":"level \"error\" cleared","code":200}"#,
    "\n",
    r#"{"ctx":{"level":"error"},"level":"warn"}"#,
    "\n",
    "not json\n",
    r#"["level","error"]"#,
    "\n",
    r#"  {  "level" :  "error"  }  "#,
    "\n",
    r#"{"msg":"no level here"}"#,
);

fn filter(params: &[(&str, &str)], input: &str) -> String {
    let out = run_cpu(&*bind(&JsonlFilter, params), input.as_bytes());
    String::from_utf8(out).expect("utf-8 out of utf-8 in")
}

#[test]
fn eq_keeps_lines_whose_top_level_field_is_the_value() {
    let out = filter(&[("field", "level"), ("value", "error")], LOG);
    assert_eq!(
        out,
        concat!(
            r#"{"level":"error","msg":"disk full","code":507}"#,
            "\n",
            r#"  {  "level" :  "error"  }  "#,
            "\n",
        )
    );
}

#[test]
fn ne_needs_the_field_present() {
    let out = filter(&[("field", "level"), ("op", "ne"), ("value", "error")], LOG);
    assert_eq!(
        out,
        concat!(
            r#"{"level":"info","msg":"level \"error\" cleared","code":200}"#,
            "\n",
            r#"{"ctx":{"level":"error"},"level":"warn"}"#,
            "\n",
        )
    );
}

#[test]
fn contains_and_exists_look_at_raw_values() {
    let out = filter(
        &[("field", "msg"), ("op", "contains"), ("value", r#"\"err"#)],
        LOG,
    );
    assert_eq!(
        out,
        concat!(
            r#"{"level":"info","msg":"level \"error\" cleared","code":200}"#,
            "\n"
        )
    );
    let out = filter(&[("field", "code"), ("op", "exists")], LOG);
    assert_eq!(out.lines().count(), 2, "{out}");
    let out = filter(&[("field", "ctx"), ("value", r#"{"level":"error"}"#)], LOG);
    assert!(out.starts_with(r#"{"ctx""#), "{out}");
    let out = filter(&[("field", "code"), ("value", "507")], LOG);
    assert!(out.contains("disk full"), "{out}");
}

#[test]
fn a_final_unterminated_line_is_kept_as_is() {
    let out = filter(&[("field", "msg"), ("op", "exists")], LOG);
    assert!(out.ends_with(r#"{"msg":"no level here"}"#), "{out}");
    assert_eq!(filter(&[("field", "a")], ""), "");
    assert_eq!(filter(&[("field", "a")], r#"{"a":""}"#), r#"{"a":""}"#);
}

#[test]
fn carriage_returns_are_whitespace() {
    let out = filter(
        &[("field", "a"), ("value", "1")],
        "{\"a\":1\r\n{\"a\":2}\r\n",
    );
    assert_eq!(out, "{\"a\":1\r\n");
}

#[test]
fn unusable_parameters_are_refused_with_the_fix() {
    let missing = try_bind(&JsonlFilter, &[]).expect_err("field is required");
    assert!(missing.to_string().contains("required"), "{missing}");
    let newline = try_bind(&JsonlFilter, &[("field", "a\nb")]).expect_err("newline");
    assert!(newline.to_string().contains("newline"), "{newline}");
    let op = try_bind(&JsonlFilter, &[("field", "a"), ("op", "gt")]).expect_err("op");
    assert!(op.to_string().contains("eq, ne, contains, exists"), "{op}");
}

#[test]
fn device_consts_carry_lengths_op_field_and_value() {
    assert_eq!(
        device_consts(b"ab", b"xyz", Op::Contains).expect("small"),
        [
            2, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, b'a', b'b', b'x', b'y', b'z'
        ]
    );
}

/// One generated member: its key, its value as written, and its raw value text.
#[derive(Debug, Clone)]
struct Member {
    key: String,
    written: String,
    raw: String,
}

fn member() -> impl Strategy<Value = Member> {
    let key = prop::sample::select(vec!["a", "b", "ab", "k"]).prop_map(str::to_owned);
    let string = "[ab{}\\[\\],:é]{0,6}".prop_map(|s| (format!("\"{s}\""), s));
    let escaped = Just((r#""a\"b\\""#.to_owned(), r#"a\"b\\"#.to_owned()));
    let token = prop::sample::select(vec!["1", "-2.5e3", "true", "null", "ab"])
        .prop_map(|t| (t.to_owned(), t.to_owned()));
    let nested = prop::sample::select(vec![
        r#"{"a":"ab"}"#,
        r#"["a",{"k":"}"}]"#,
        "[]",
        r#"{"b":[1,{"a":1}]}"#,
    ])
    .prop_map(|t| (t.to_owned(), t.to_owned()));
    (key, prop_oneof![string, escaped, token, nested]).prop_map(|(key, (written, raw))| Member {
        key,
        written,
        raw,
    })
}

/// A line: an object of members with random spacing, or something that is not an object.
fn line() -> impl Strategy<Value = (String, Vec<Member>)> {
    let space = prop::sample::select(vec!["", " ", "\t", " \r"]);
    let object = (
        prop::collection::vec((member(), space.clone(), space.clone()), 0..5),
        space,
    )
        .prop_map(|(members, outer)| {
            let body: Vec<String> = members
                .iter()
                .map(|(m, s1, s2)| format!("{s1}\"{}\"{s2}:{s1}{}{s2}", m.key, m.written))
                .collect();
            let text = format!("{outer}{{{}}}{outer}", body.join(","));
            (text, members.into_iter().map(|(m, _, _)| m).collect())
        });
    let other = prop::sample::select(vec!["", "[1]", "\"a\"", "{\"a\" 1}", "{a:1}", "x"])
        .prop_map(|t| (t.to_owned(), Vec::new()));
    prop_oneof![4 => object, 1 => other]
}

/// The expected output, from the generated structure (the first member named `field` wins).
fn oracle(lines: &[(String, Vec<Member>)], field: &str, op: &str, value: &str) -> String {
    let mut out = String::new();
    for (text, members) in lines {
        let Some(m) = members.iter().find(|m| m.key == field) else {
            continue;
        };
        let keep = match op {
            "eq" => m.raw == value,
            "ne" => m.raw != value,
            "contains" => m.raw.contains(value),
            _ => true,
        };
        if keep {
            out.push_str(text);
            out.push('\n');
        }
    }
    out
}

proptest! {
    #[test]
    fn output_matches_the_structure_however_the_input_is_cut(
        lines in prop::collection::vec(line(), 0..30),
        field in prop::sample::select(vec!["a", "b", "ab", "k"]),
        op in prop::sample::select(vec!["eq", "ne", "contains", "exists"]),
        value in prop::sample::select(vec!["", "a", "ab", "1", r#"a\"b\\"#, r#"{"a":"ab"}"#, "é"]),
        sizes in prop::collection::vec(1usize..64, 1..8),
    ) {
        let input: String = lines.iter().map(|(t, _)| format!("{t}\n")).collect();
        let bound = bind(&JsonlFilter, &[("field", field), ("op", op), ("value", value)]);
        let got = run_cpu_pieces(&*bound, input.as_bytes(), &sizes);
        prop_assert_eq!(String::from_utf8(got).expect("utf-8"), oracle(&lines, field, op, value));
    }
}
