// SPDX-License-Identifier: Apache-2.0
//! `reed-solomon`: parity that rebuilds lost units with the crate, device tables that agree
//! with the crate's field, and output independent of chunking.

use proptest::prelude::*;
use reed_solomon_erasure::galois_8::{self, ReedSolomon};

use super::{ReedSolomonParity, coefficients, gf};
use crate::contract::{Framing, Kernel};
use crate::test_utils::{bind, run_cpu, run_cpu_pieces, try_bind};

/// Bytes that do not repeat with any short period.
fn sample(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[1]
        })
        .collect()
}

/// Drops the units in `lost` from each stripe of `input` (k data units, then the m parity
/// units from `parity`), rebuilds them with the crate and checks they come back.
fn assert_rebuilds(input: &[u8], parity: &[u8], k: usize, m: usize, unit: usize, lost: &[usize]) {
    let codec = ReedSolomon::new(k, m).expect("codec");
    let stripes = input.len().div_ceil(k * unit);
    assert_eq!(parity.len(), stripes * m * unit);
    for s in 0..stripes {
        let mut units: Vec<Vec<u8>> = (0..k)
            .map(|j| {
                let from = (s * k + j) * unit;
                let mut u = input[from.min(input.len())..(from + unit).min(input.len())].to_vec();
                u.resize(unit, 0);
                u
            })
            .chain((0..m).map(|p| parity[(s * m + p) * unit..(s * m + p + 1) * unit].to_vec()))
            .collect();
        let originals = units.clone();
        let mut shards: Vec<Option<Vec<u8>>> = units.drain(..).map(Some).collect();
        for &l in lost {
            shards[l] = None;
        }
        codec.reconstruct(&mut shards).expect("rebuilds");
        let rebuilt: Vec<Vec<u8>> = shards.into_iter().map(|u| u.expect("rebuilt")).collect();
        assert_eq!(rebuilt, originals, "stripe {s}");
    }
}

#[test]
fn parity_rebuilds_lost_data_and_parity_units() {
    let input = sample(3 * 4 * 256 + 100, 7);
    let bound = bind(&ReedSolomonParity, &[("unit", "256")]);
    let parity = run_cpu(&*bound, &input);
    assert_eq!(parity.len(), 4 * 2 * 256);
    assert_rebuilds(&input, &parity, 4, 2, 256, &[0, 3]);
    assert_rebuilds(&input, &parity, 4, 2, 256, &[1, 5]);
    let bound = bind(
        &ReedSolomonParity,
        &[("data", "10"), ("parity", "4"), ("unit", "64")],
    );
    let input = sample(10 * 64 * 2, 3);
    let parity = run_cpu(&*bound, &input);
    assert_rebuilds(&input, &parity, 10, 4, 64, &[0, 2, 9, 12]);
}

#[test]
fn the_framing_is_one_stripe_and_empty_input_has_no_parity() {
    let bound = bind(&ReedSolomonParity, &[("data", "3"), ("unit", "128")]);
    assert_eq!(bound.framing(), Framing::Records { size: 384 });
    assert!(run_cpu(&*bound, b"").is_empty());
    // One byte is a whole (padded) stripe.
    assert_eq!(run_cpu(&*bound, b"x").len(), 2 * 128);
}

#[test]
fn one_data_unit_gives_copies_of_it() {
    // With k = 1 every parity unit equals the data unit (the matrix row is [1]).
    let bound = bind(
        &ReedSolomonParity,
        &[("data", "1"), ("parity", "3"), ("unit", "64")],
    );
    let input = sample(64, 11);
    assert_eq!(run_cpu(&*bound, &input), input.repeat(3));
}

#[test]
fn the_device_tables_multiply_like_the_crate() {
    let tables = gf::Tables::new();
    for a in 0..=255_u8 {
        for b in 0..=255_u8 {
            assert_eq!(tables.mul(a, b), galois_8::mul(a, b), "{a} * {b}");
        }
    }
}

#[test]
fn the_matrix_read_off_the_codec_encodes_like_it() {
    let (k, m) = (5, 3);
    let codec = ReedSolomon::new(k, m).expect("codec");
    let matrix = coefficients(&codec, k, m).expect("matrix");
    let data: Vec<[u8; 1]> = (0..k)
        .map(|j| [u8::try_from(j * 37 + 1).expect("small")])
        .collect();
    let mut parity = vec![[0_u8; 1]; m];
    codec.encode_sep(&data, &mut parity).expect("encode");
    for p in 0..m {
        let by_matrix = (0..k).fold(0, |acc, j| {
            acc ^ galois_8::mul(matrix[p * k + j], data[j][0])
        });
        assert_eq!(by_matrix, parity[p][0], "parity unit {p}");
    }
}

#[test]
fn bad_parameters_are_refused_naming_the_fix() {
    let err = try_bind(&ReedSolomonParity, &[("unit", "100")]).expect_err("not a multiple");
    assert!(err.to_string().contains("128"), "{err}");
    assert!(try_bind(&ReedSolomonParity, &[("data", "33")]).is_err());
    assert!(try_bind(&ReedSolomonParity, &[("parity", "0")]).is_err());
    assert!(try_bind(&ReedSolomonParity, &[("unit", "32")]).is_err());
    assert!(
        ReedSolomonParity
            .info()
            .params
            .iter()
            .any(|p| p.name == "unit")
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn output_is_independent_of_chunking(
        len in 0usize..3000,
        seed in any::<u32>(),
        sizes in prop::collection::vec(1usize..700, 1..6),
        k in 1usize..6,
        m in 1usize..4,
    ) {
        let input = sample(len, seed);
        let (k, m) = (k.to_string(), m.to_string());
        let bound = bind(&ReedSolomonParity, &[("data", &k), ("parity", &m), ("unit", "64")]);
        let whole = run_cpu(&*bound, &input);
        prop_assert_eq!(run_cpu_pieces(&*bound, &input, &sizes), whole);
    }
}
