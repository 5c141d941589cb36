// SPDX-License-Identifier: Apache-2.0
use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::blocks::BLOCK_BYTES;
use crate::test_utils::{bind, run_cpu, run_cpu_pieces};

fn oracle(input: &[u8]) -> Vec<u8> {
    let mut counts = BTreeMap::new();
    for &b in input {
        *counts.entry(b).or_insert(0u64) += 1;
    }
    let mut text = String::new();
    for (b, n) in counts {
        text += &format!("{b}\t{n}\n");
    }
    text += &format!("total\t{}\n", input.len());
    text.into_bytes()
}

#[test]
fn lists_only_values_that_occur_then_the_total() {
    let bound = bind(&ByteHistogram, &[]);
    assert_eq!(
        run_cpu(&*bound, b"abca\n"),
        b"10\t1\n97\t2\n98\t1\n99\t1\ntotal\t5\n"
    );
    assert_eq!(run_cpu(&*bound, b""), b"total\t0\n");
    assert_eq!(run_cpu(&*bound, &[255]), b"255\t1\ntotal\t1\n");
}

/// What `byte_histogram_blocks` computes, in Rust.
fn emulate_device(chunk: &[u8]) -> Vec<u8> {
    chunk
        .chunks(BLOCK_BYTES)
        .flat_map(|block| {
            let mut counts = [0u32; VALUES];
            for &b in block {
                counts[usize::from(b)] += 1;
            }
            counts.into_iter().flat_map(u32::to_le_bytes)
        })
        .collect()
}

proptest! {
    #[test]
    fn cpu_matches_the_oracle_however_cut(
        input in prop::collection::vec(any::<u8>(), 0..2000),
        sizes in prop::collection::vec(1usize..300, 1..6),
    ) {
        let bound = bind(&ByteHistogram, &[]);
        prop_assert_eq!(run_cpu_pieces(&*bound, &input, &sizes), oracle(&input));
    }

    #[test]
    fn summed_device_blocks_match_the_oracle(
        input in prop::collection::vec(any::<u8>(), 0..10_000),
        chunk_len in 1usize..9000,
    ) {
        let mut run = bind(&ByteHistogram, &[]).device().expect("a device variant");
        let mut out = Vec::new();
        for chunk in input.chunks(chunk_len) {
            run.plan(chunk).expect("plan");
            run.accept(chunk, &emulate_device(chunk), &mut out).expect("accept");
        }
        run.finish(&mut out).expect("finish");
        prop_assert_eq!(out, oracle(&input));
    }
}
