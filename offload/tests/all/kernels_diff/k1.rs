// SPDX-License-Identifier: Apache-2.0
//! CPU vs OpenCL for `grep` (lines and count, exact and ASCII case-insensitive),
//! `jsonl-filter`, `crc32c`, `byte-histogram` and `xxh3`: fixed edge cases (empty and
//! one-byte objects, lines straddling chunk and block edges, a line longer than a device
//! chunk, multi-byte UTF-8, a final unterminated line, JSON nesting and escapes) and
//! generated text and bytes.

use proptest::prelude::*;

use super::assert_same_on_every_device;

/// Lines of mixed text, some holding `needle`, `NEEDLE` or multi-byte characters.
fn sample(lines: usize, seed: u64, terminated: bool) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "alpha", "needle", "NeEdLe", "béta", "😀", "", "x", "needles", "nee", "dle", "\t",
    ];
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out = Vec::new();
    for _ in 0..lines {
        let words = next() % 12;
        for w in 0..words {
            if w > 0 {
                out.push(b' ');
            }
            let pick = usize::try_from(next() % WORDS.len() as u64).unwrap();
            out.extend_from_slice(WORDS[pick].as_bytes());
        }
        out.push(b'\n');
    }
    if !terminated {
        out.pop();
    }
    out
}

/// Every `grep` parameter combination for `pattern`.
fn grep_all_modes(pattern: &str, input: &[u8]) {
    for mode in ["lines", "count"] {
        for ignore_case in ["false", "true"] {
            assert_same_on_every_device(
                "grep",
                &[
                    ("pattern", pattern),
                    ("mode", mode),
                    ("ignore_case", ignore_case),
                ],
                input,
            );
        }
    }
}

/// The reductions (`xxh3` with the default seed and another).
fn reductions(input: &[u8]) {
    assert_same_on_every_device("crc32c", &[], input);
    assert_same_on_every_device("byte-histogram", &[], input);
    assert_same_on_every_device("xxh3", &[], input);
    assert_same_on_every_device("xxh3", &[("seed", "18446744073709551557")], input);
}

/// Fixed inputs every kernel here must agree on.
fn edge_inputs() -> Vec<Vec<u8>> {
    let mut inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"n".to_vec(),
        b"\n".to_vec(),
        b"needle".to_vec(),
        b"needle\n".to_vec(),
        b"\n\n\nneedle\n\nNEEDLE".to_vec(),
        "héllo needle 😀\nnéedle\n😀😀needle😀".as_bytes().to_vec(),
        sample(500, 1, true),
        sample(500, 2, false),
    ];
    // A match straddling the 4096-byte block edge, and a line starting exactly on it.
    let mut straddle = vec![b'a'; 4093];
    straddle.extend_from_slice(b"needle\n");
    straddle.extend_from_slice(&[b'b'; 2 * 4096 - 4100 - 1]);
    straddle.extend_from_slice(b"\nneedle at a block start\n");
    inputs.push(straddle);
    // One line longer than the small device chunk (5000 bytes) and than a 4097-byte piece.
    let mut long = "xneedlex".repeat(2000).into_bytes();
    long.extend_from_slice(b"\nshort needle\nno\n");
    inputs.push(long);
    // All 256 byte values, twice, with newlines among them.
    inputs.push((0..=255u8).chain(0..=255u8).collect());
    inputs
}

#[test]
fn grep_agrees_on_edge_cases() {
    for input in edge_inputs() {
        grep_all_modes("needle", &input);
    }
    let utf8 = sample(300, 7, false);
    grep_all_modes("😀", &utf8);
    grep_all_modes("é", &utf8);
    // A one-byte pattern and a pattern longer than most lines.
    grep_all_modes("e", &sample(300, 8, true));
    grep_all_modes("needle needle needle", &sample(300, 9, true));
}

#[test]
fn reductions_agree_on_edge_cases() {
    for input in edge_inputs() {
        reductions(&input);
    }
    // Sizes around the block edges (XXH3's 240-byte short inputs and 1024-byte blocks, the
    // 4096-byte device blocks) and multi-block inputs.
    for len in [
        240u32,
        241,
        1023,
        1024,
        1025,
        1088,
        4095,
        4096,
        4097,
        3 * 4096 + 5,
        100_000,
    ] {
        let input: Vec<u8> = (0..len)
            .map(|i| u8::try_from(i * 31 % 251).unwrap())
            .collect();
        reductions(&input);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn grep_agrees_on_any_text(
        lines in proptest::collection::vec(
            prop_oneof![
                Just("needle".to_owned()),
                Just("NEEDLE".to_owned()),
                Just(String::new()),
                "[a-zA-Z é😀]{0,40}",
                "[neEdl]{4000,4200}",
            ],
            0..40,
        ),
        terminated in any::<bool>(),
        pattern in prop_oneof![Just("needle".to_owned()), Just("Ed".to_owned()), "[a-zé]{1,3}"],
    ) {
        let mut input = lines.join("\n").into_bytes();
        if terminated && !input.is_empty() {
            input.push(b'\n');
        }
        grep_all_modes(&pattern, &input);
    }

    #[test]
    fn reductions_agree_on_any_bytes(
        input in proptest::collection::vec(any::<u8>(), 0..20_000),
    ) {
        reductions(&input);
    }
}

/// JSON lines: objects with nested values, escapes, braces in strings, spacing, non-objects,
/// malformed members and multi-byte UTF-8.
fn json_lines(lines: usize, seed: u64) -> Vec<u8> {
    const LINES: &[&str] = &[
        r#"{"level":"error","msg":"disk full","code":507}"#,
        r#"{"level":"info","msg":"level \"error\" cleared","code":200}"#,
        r#"{"ctx":{"level":"error","tags":["a","}"]},"level":"warn"}"#,
        r#"  {  "level" :  "error"  ,"n":-1.5e3 }  "#,
        r#"{"msg":"é😀 {\"level\":\"error\"}","level":null}"#,
        r#"["level","error"]"#,
        r#"{"level" "error"}"#,
        r#"{"level":"unterminated}"#,
        "not json at all",
        "",
        "{\"level\":\"error\"}\r",
        r#"{"a":[[[[{"level":"x"}]]]],"level":"error"}"#,
    ];
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::new();
    for _ in 0..lines {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let pick = usize::try_from(state % LINES.len() as u64).unwrap();
        out.extend_from_slice(LINES[pick].as_bytes());
        out.push(b'\n');
    }
    out
}

/// Every `jsonl-filter` operator on `field` / `value`.
fn jsonl_all_ops(field: &str, value: &str, input: &[u8]) {
    for op in ["eq", "ne", "contains", "exists"] {
        assert_same_on_every_device(
            "jsonl-filter",
            &[("field", field), ("op", op), ("value", value)],
            input,
        );
    }
}

#[test]
fn jsonl_filter_agrees_on_edge_cases() {
    let mut inputs = vec![
        Vec::new(),
        b"{".to_vec(),
        b"\n".to_vec(),
        br#"{"level":"error"}"#.to_vec(),
        json_lines(400, 1),
    ];
    let mut unterminated = json_lines(300, 2);
    unterminated.extend_from_slice(br#"{"level":"error"}"#);
    inputs.push(unterminated);
    // One object line longer than the small device chunk, its field after the long part.
    let mut long = br#"{"pad":""#.to_vec();
    long.extend_from_slice(&[b'x'; 9000]);
    long.extend_from_slice(b"\",\"level\":\"error\"}\n");
    long.extend_from_slice(&json_lines(20, 3));
    inputs.push(long);
    for input in &inputs {
        jsonl_all_ops("level", "error", input);
    }
    jsonl_all_ops("msg", "é😀", &json_lines(200, 4));
    jsonl_all_ops(
        "ctx",
        r#"{"level":"error","tags":["a","}"]}"#,
        &json_lines(200, 5),
    );
    jsonl_all_ops("n", "-1.5e3", &json_lines(200, 6));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn jsonl_filter_agrees_on_any_lines(
        lines in proptest::collection::vec(
            prop_oneof![
                r#"\{"[ab]{1,2}":("[ab{}\[\],é]{0,5}"|[0-9]{1,3}|\{"a":"[ab]"\}),"b":"[ab]"\}"#,
                r#"[ {}\[\]":,ab\\]{0,30}"#,
            ],
            0..60,
        ),
        field in prop_oneof![Just("a"), Just("b"), Just("ab")],
        value in prop_oneof![Just(""), Just("a"), Just("ab"), Just("1")],
    ) {
        let input = lines.join("\n").into_bytes();
        jsonl_all_ops(field, value, &input);
    }
}
