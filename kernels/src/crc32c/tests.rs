// SPDX-License-Identifier: Apache-2.0
use proptest::prelude::*;

use super::*;
use crate::test_utils::{bind, run_cpu, run_cpu_pieces};

#[test]
fn known_check_values() {
    let bound = bind(&Crc32c, &[]);
    // The standard CRC-32C check value (RFC 3720 appendix B.4 family).
    assert_eq!(run_cpu(&*bound, b"123456789"), b"e3069283\n");
    assert_eq!(run_cpu(&*bound, b""), b"00000000\n");
    assert_eq!(run_cpu(&*bound, &[0u8; 32]), b"8a9136aa\n");
}

/// The table in `crc32c.cl`, read back from the source.
fn cl_table() -> Vec<u32> {
    let source = include_str!("crc32c.cl");
    let start = source.find('{').expect("table start") + 1;
    let end = source[start..].find('}').expect("table end") + start;
    source[start..end]
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(|w| u32::from_str_radix(w.trim_start_matches("0x").trim_end_matches('U'), 16))
        .collect::<Result<_, _>>()
        .expect("hex words")
}

/// Computes the reflected CRC-32C byte table bit by bit.
fn computed_table() -> Vec<u32> {
    (0..256u32)
        .map(|n| {
            (0..8).fold(n, |c, _| {
                (c >> 1) ^ (0x82f6_3b78 & 0u32.wrapping_sub(c & 1))
            })
        })
        .collect()
}

#[test]
fn the_device_table_is_the_castagnoli_table() {
    assert_eq!(cl_table(), computed_table());
}

/// What `crc32c_blocks` computes, in Rust, from the same table.
fn emulate_device(chunk: &[u8]) -> Vec<u8> {
    let table = cl_table();
    chunk
        .chunks(BLOCK_BYTES)
        .flat_map(|block| {
            let crc = block.iter().fold(0xffff_ffffu32, |crc, &b| {
                table[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8)
            });
            (crc ^ 0xffff_ffff).to_le_bytes()
        })
        .collect()
}

fn run_emulated_device(input: &[u8], chunk_len: usize) -> Vec<u8> {
    let mut run = bind(&Crc32c, &[]).device().expect("a device variant");
    let mut out = Vec::new();
    for chunk in input.chunks(chunk_len) {
        let plan = run.plan(chunk).expect("plan");
        assert_eq!(plan.input, 0..chunk.len());
        run.accept(chunk, &emulate_device(chunk), &mut out)
            .expect("accept");
    }
    run.finish(&mut out).expect("finish");
    out
}

proptest! {
    #[test]
    fn cpu_matches_the_one_shot_crc_however_cut(
        input in prop::collection::vec(any::<u8>(), 0..3000),
        sizes in prop::collection::vec(1usize..700, 1..6),
    ) {
        let bound = bind(&Crc32c, &[]);
        let expected = format!("{:08x}\n", ::crc32c::crc32c(&input)).into_bytes();
        prop_assert_eq!(run_cpu_pieces(&*bound, &input, &sizes), expected);
    }

    #[test]
    fn combined_device_blocks_match_the_cpu(
        input in prop::collection::vec(any::<u8>(), 0..12_000),
        chunk_len in 1usize..9000,
    ) {
        let bound = bind(&Crc32c, &[]);
        prop_assert_eq!(run_emulated_device(&input, chunk_len), run_cpu(&*bound, &input));
    }
}
