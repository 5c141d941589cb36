// SPDX-License-Identifier: Apache-2.0
//! CPU vs OpenCL for `grep` (lines and count, exact and ASCII case-insensitive), `crc32c` and
//! `byte-histogram`: fixed edge cases (empty and one-byte objects, lines straddling chunk and
//! block edges, a line longer than a device chunk, multi-byte UTF-8, a final unterminated
//! line) and generated text.

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

/// The reductions, which take no parameters.
fn reductions(input: &[u8]) {
    assert_same_on_every_device("crc32c", &[], input);
    assert_same_on_every_device("byte-histogram", &[], input);
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
    // Sizes around the block edge and a multi-block input.
    for len in [4095u32, 4096, 4097, 3 * 4096 + 5] {
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
