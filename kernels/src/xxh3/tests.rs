// SPDX-License-Identifier: Apache-2.0
use proptest::prelude::*;

use super::*;
use crate::test_utils::{bind, run_cpu, run_cpu_pieces, try_bind};

/// The reference output: the crate's one-shot hash.
fn reference(input: &[u8], seed: u64) -> Vec<u8> {
    render(::xxhash_rust::xxh3::xxh3_64_with_seed(input, seed))
}

/// Drives a device run over `input` cut into chunks of `sizes` (cycled), standing in for
/// the device with the same block sum in Rust, and planning up to `ahead` chunks before
/// accepting the oldest (as the executor may).
fn run_simulated(seed: u64, input: &[u8], sizes: &[usize], ahead: usize) -> Vec<u8> {
    let mut run = Xxh3DeviceRun::new(seed);
    let secret = long::secret_for(seed);
    let mut chunks = Vec::new();
    let mut pos = 0;
    for size in sizes.iter().cycle() {
        if pos >= input.len() {
            break;
        }
        let end = (pos + size.max(&1)).min(input.len());
        chunks.push(&input[pos..end]);
        pos = end;
    }
    let mut out = Vec::new();
    let mut planned = std::collections::VecDeque::new();
    for chunk in chunks {
        let plan = run.plan(chunk).expect("plan");
        let Launch::Fixed {
            items,
            out_per_item,
            ..
        } = plan.launch
        else {
            panic!("xxh3 plans Fixed launches");
        };
        assert_eq!(out_per_item, SUM_BYTES);
        let device_in = &chunk[plan.input.clone()];
        assert_eq!(device_in.len(), items * BLOCK_BYTES);
        let device_out: Vec<u8> = device_in
            .chunks_exact(BLOCK_BYTES)
            .flat_map(|block| long::block_sum(block, &secret))
            .flat_map(u64::to_le_bytes)
            .collect();
        planned.push_back((chunk, device_out));
        if planned.len() > ahead {
            let (c, d) = planned.pop_front().expect("one planned");
            run.accept(c, &d, &mut out).expect("accept");
        }
    }
    for (c, d) in planned {
        run.accept(c, &d, &mut out).expect("accept");
    }
    run.finish(&mut out).expect("finish");
    out
}

#[test]
fn known_values() {
    let bound = bind(&Xxh3, &[]);
    assert_eq!(run_cpu(&*bound, b""), b"2d06800538d394c2\n");
    assert_eq!(run_simulated(0, b"", &[1], 0), b"2d06800538d394c2\n");
}

#[test]
fn the_seed_changes_the_hash() {
    let input = vec![7u8; 3000];
    let zero = run_cpu(&*bind(&Xxh3, &[]), &input);
    let one = run_cpu(&*bind(&Xxh3, &[("seed", "1")]), &input);
    assert_ne!(zero, one);
    assert_eq!(one, reference(&input, 1));
    let max = run_cpu(&*bind(&Xxh3, &[("seed", "18446744073709551615")]), &input);
    assert_eq!(max, reference(&input, u64::MAX));
}

#[test]
fn bad_seeds_are_refused() {
    for bad in ["-1", "18446744073709551616", "0x10", ""] {
        let err = try_bind(&Xxh3, &[("seed", bad)]).expect_err(bad);
        assert!(err.to_string().contains("seed"), "{err}");
    }
}

#[test]
fn device_blocks_are_aligned_to_the_input_and_never_end_a_chunk() {
    assert_eq!(device_range(0, 0), 0..0);
    assert_eq!(device_range(0, 1024), 1024..1024);
    assert_eq!(device_range(0, 1025), 0..1024);
    assert_eq!(device_range(0, 4096), 0..3072);
    assert_eq!(device_range(1000, 2000), 24..1048);
    assert_eq!(device_range(1000, 24), 24..24);
    assert_eq!(device_range(2048, 3000), 0..2048);
}

#[test]
fn device_run_refuses_a_wrong_output_length() {
    let mut run = Xxh3DeviceRun::new(0);
    let chunk = vec![1u8; 2000];
    let plan = run.plan(&chunk).expect("plan");
    assert_eq!(plan.input, 0..1024);
    assert_eq!(plan.consts.len(), SECRET_BYTES);
    let mut out = Vec::new();
    assert!(run.accept(&chunk, &[0; 63], &mut out).is_err());
}

#[test]
fn simulated_device_agrees_at_block_and_size_edges() {
    let input: Vec<u8> = (0..9000u32)
        .map(|i| u8::try_from(i * 13 % 251).expect("below 256"))
        .collect();
    for len in [
        0, 1, 16, 17, 128, 129, 240, 241, 1024, 1025, 1088, 2048, 2049, 9000,
    ] {
        for sizes in [
            &[len.max(1)][..],
            &[1],
            &[1023],
            &[1024],
            &[1025],
            &[5000, 7],
        ] {
            assert_eq!(
                run_simulated(3, &input[..len], sizes, 2),
                reference(&input[..len], 3),
                "{len} bytes in pieces of {sizes:?}"
            );
        }
    }
}

proptest! {
    #[test]
    fn cpu_and_simulated_device_agree_with_the_reference(
        input in prop::collection::vec(any::<u8>(), 0..6000),
        seed in prop_oneof![Just(0u64), any::<u64>()],
        sizes in prop::collection::vec(1usize..3000, 1..6),
        ahead in 0usize..4,
    ) {
        let expected = reference(&input, seed);
        let seed_text = seed.to_string();
        let bound = bind(&Xxh3, &[("seed", &seed_text)]);
        prop_assert_eq!(&run_cpu_pieces(&*bound, &input, &sizes), &expected);
        prop_assert_eq!(&run_simulated(seed, &input, &sizes, ahead), &expected);
    }
}
