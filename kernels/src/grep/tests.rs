// SPDX-License-Identifier: Apache-2.0
use proptest::prelude::*;

use super::*;
use crate::test_utils::{bind, run_cpu, run_cpu_pieces, try_bind};

/// A line-by-line oracle: split on `\n` (keeping it), keep lines that contain the pattern.
fn oracle(input: &[u8], pattern: &[u8], ignore_case: bool, count: bool) -> Vec<u8> {
    let fold = |b: &[u8]| -> Vec<u8> {
        if ignore_case {
            b.to_ascii_lowercase()
        } else {
            b.to_vec()
        }
    };
    let pattern = fold(pattern);
    let mut kept = Vec::new();
    let mut lines = 0u64;
    for line in input.split_inclusive(|&b| b == b'\n') {
        if fold(line).windows(pattern.len()).any(|w| w == pattern) {
            kept.extend_from_slice(line);
            lines += 1;
        }
    }
    if count {
        format!("{lines}\n").into_bytes()
    } else {
        kept
    }
}

#[test]
fn lines_mode_keeps_matching_lines_verbatim() {
    let bound = bind(&Grep, &[("pattern", "ab")]);
    let out = run_cpu(&*bound, b"xab\nno\nabab ab\n\nlast ab");
    assert_eq!(out, b"xab\nabab ab\nlast ab");
}

#[test]
fn count_mode_counts_lines_not_hits() {
    let bound = bind(&Grep, &[("pattern", "ab"), ("mode", "count")]);
    assert_eq!(run_cpu(&*bound, b"abab\nab\ncd\n"), b"2\n");
    assert_eq!(run_cpu(&*bound, b""), b"0\n");
}

#[test]
fn ignore_case_folds_ascii_only() {
    let bound = bind(&Grep, &[("pattern", "hÉllo"), ("ignore_case", "true")]);
    let out = run_cpu(&*bound, "HÉLLO\nhéllo\nHÉllO!\n".as_bytes());
    assert_eq!(out, "HÉLLO\nHÉllO!\n".as_bytes());
}

#[test]
fn multibyte_utf8_patterns_match_bytewise() {
    let bound = bind(&Grep, &[("pattern", "ü")]);
    let out = run_cpu(&*bound, "grün\ngrun\nü".as_bytes());
    assert_eq!(out, "grün\nü".as_bytes());
}

#[test]
fn unusable_patterns_are_refused_with_the_fix() {
    let empty = try_bind(&Grep, &[("pattern", "")]).expect_err("empty");
    assert!(empty.to_string().contains("is empty"), "{empty}");
    let newline = try_bind(&Grep, &[("pattern", "a\nb")]).expect_err("newline");
    assert!(newline.to_string().contains("newline"), "{newline}");
    let missing = try_bind(&Grep, &[]).expect_err("missing");
    assert!(missing.to_string().contains("required"), "{missing}");
    let mode = try_bind(&Grep, &[("pattern", "a"), ("mode", "all")]).expect_err("mode");
    assert!(mode.to_string().contains("lines, count"), "{mode}");
}

#[test]
fn device_consts_carry_the_folded_pattern() {
    assert_eq!(
        device_consts(b"aB", true).expect("small"),
        [2, 0, 0, 0, 1, 0, 0, 0, b'a', b'b']
    );
    assert_eq!(
        device_consts(b"aB", false).expect("small"),
        [2, 0, 0, 0, 0, 0, 0, 0, b'a', b'B']
    );
}

#[test]
fn device_count_sums_block_tallies() {
    let bound = bind(&Grep, &[("pattern", "a"), ("mode", "count")]);
    let mut run = bound.device().expect("a device variant");
    let chunk = vec![b'a'; 5000];
    let plan = run.plan(&chunk).expect("plan");
    assert_eq!(
        plan.launch,
        Launch::Fixed {
            entry: "grep_tally",
            items: 2,
            out_per_item: 4
        }
    );
    let mut out = Vec::new();
    run.accept(&chunk, &[3, 0, 0, 0, 4, 1, 0, 0], &mut out)
        .expect("two tallies");
    assert!(run.accept(&chunk, &[3, 0, 0], &mut out).is_err());
    run.finish(&mut out).expect("finish");
    assert_eq!(out, b"263\n");
}

fn text() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop::sample::select(vec![b'a', b'b', b'A', b'B', b'\n', b'x', 0xc3, 0xa9]),
        0..400,
    )
}

proptest! {
    #[test]
    fn output_matches_the_oracle_however_the_input_is_cut(
        input in text(),
        pattern in prop::collection::vec(prop::sample::select(vec![b'a', b'b', b'A', 0xc3]), 1..4),
        ignore_case in any::<bool>(),
        count in any::<bool>(),
        sizes in prop::collection::vec(1usize..64, 1..8),
    ) {
        let pattern_text = String::from_utf8_lossy(&pattern).into_owned();
        let pattern = pattern_text.as_bytes();
        let ic = if ignore_case { "true" } else { "false" };
        let mode = if count { "count" } else { "lines" };
        let bound = bind(&Grep, &[("pattern", &pattern_text), ("ignore_case", ic), ("mode", mode)]);
        let expected = oracle(&input, pattern, ignore_case, count);
        prop_assert_eq!(run_cpu_pieces(&*bound, &input, &sizes), expected);
    }
}

/// Long lines and long patterns, fed as one chunk, so the vector pass sees whole blocks and
/// patterns whose last byte lies past the block.
fn long_text() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop::sample::select(vec![b'a', b'b', b'A', b'\n', b'x', b'x', b'x', b'x']),
        0..3000,
    )
}

proptest! {
    #[test]
    fn whole_chunks_match_the_oracle(
        input in long_text(),
        pattern in prop::collection::vec(prop::sample::select(vec![b'a', b'b', b'A', b'x']), 1..80),
        ignore_case in any::<bool>(),
        count in any::<bool>(),
    ) {
        let pattern_text = String::from_utf8_lossy(&pattern).into_owned();
        let ic = if ignore_case { "true" } else { "false" };
        let mode = if count { "count" } else { "lines" };
        let bound = bind(&Grep, &[("pattern", &pattern_text), ("ignore_case", ic), ("mode", mode)]);
        let expected = oracle(&input, &pattern, ignore_case, count);
        prop_assert_eq!(run_cpu(&*bound, &input), expected);
    }
}
