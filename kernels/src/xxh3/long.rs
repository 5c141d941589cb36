// SPDX-License-Identifier: Apache-2.0
//! XXH3-64's long-input path (inputs over 240 bytes), cut into the steps the device variant
//! needs: the sum a 1024-byte block adds to the eight accumulators (which does not depend on
//! them, so blocks can be summed in parallel anywhere), the scramble that follows each block,
//! and the final partial block, last stripe and merge.
//!
//! This follows the XXH3 specification (xxhash.h, `XXH3_hashLong_64b`); the tests check it
//! against the `xxhash-rust` crate. All arithmetic wraps modulo 2^64.

/// Bytes of the secret (the default one, or one derived from a seed).
pub(crate) const SECRET_BYTES: usize = 192;
/// Bytes of one stripe (one accumulation step).
pub(crate) const STRIPE_BYTES: usize = 64;
/// Bytes of one block: the stripes between two scrambles.
pub(crate) const BLOCK_BYTES: usize = STRIPES_PER_BLOCK * STRIPE_BYTES;
/// The longest input hashed by XXH3's short paths instead of this one.
pub(crate) const MID_SIZE_MAX: usize = 240;

/// Stripes per block: each one uses the secret 8 bytes further on.
const STRIPES_PER_BLOCK: usize = (SECRET_BYTES - STRIPE_BYTES) / 8;
/// Where the secret for the merge starts.
const MERGE_SECRET_START: usize = 11;
/// Where the secret for the last stripe starts.
const LAST_STRIPE_SECRET_START: usize = SECRET_BYTES - STRIPE_BYTES - 7;

const PRIME32_1: u64 = 0x9E37_79B1;
const PRIME32_2: u64 = 0x85EB_CA77;
const PRIME32_3: u64 = 0xC2B2_AE3D;
const PRIME64_1: u64 = 0x9E37_79B1_85EB_CA87;
const PRIME64_2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const PRIME64_3: u64 = 0x1656_67B1_9E37_79F9;
const PRIME64_4: u64 = 0x85EB_CA77_C2B2_AE63;
const PRIME64_5: u64 = 0x27D4_EB2F_1656_67C5;

/// The eight accumulators (or a block's contribution to them).
pub(crate) type Lanes = [u64; 8];

/// The accumulators before the first stripe.
pub(crate) const INITIAL_ACC: Lanes = [
    PRIME32_3, PRIME64_1, PRIME64_2, PRIME64_3, PRIME64_4, PRIME32_2, PRIME64_5, PRIME32_1,
];

/// XXH3's default secret (`kSecret`), used as is for seed 0.
const DEFAULT_SECRET: [u8; SECRET_BYTES] = [
    0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c,
    0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f,
    0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21,
    0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c,
    0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3,
    0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8,
    0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d,
    0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64,
    0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb,
    0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e,
    0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce,
    0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e,
];

/// The little-endian u64 at `bytes[at..at + 8]`.
fn read64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// The secret for `seed`: each 16-byte pair of the default secret, low word plus the seed,
/// high word minus it (the default secret itself for seed 0).
pub(crate) fn secret_for(seed: u64) -> [u8; SECRET_BYTES] {
    let mut secret = DEFAULT_SECRET;
    for pair in secret.chunks_exact_mut(16) {
        let low = read64(pair, 0).wrapping_add(seed);
        let high = read64(pair, 8).wrapping_sub(seed);
        pair[..8].copy_from_slice(&low.to_le_bytes());
        pair[8..].copy_from_slice(&high.to_le_bytes());
    }
    secret
}

/// Accumulates one 64-byte stripe with the secret at `key`.
fn accumulate_stripe(acc: &mut Lanes, stripe: &[u8], key: &[u8]) {
    for lane in 0..8 {
        let value = read64(stripe, lane * 8);
        let keyed = value ^ read64(key, lane * 8);
        acc[lane ^ 1] = acc[lane ^ 1].wrapping_add(value);
        acc[lane] = acc[lane].wrapping_add((keyed & 0xFFFF_FFFF).wrapping_mul(keyed >> 32));
    }
}

/// The sum the first `stripes` stripes of `input` (which starts a block) add to the
/// accumulators; it does not depend on the accumulators.
pub(crate) fn stripes_sum(input: &[u8], stripes: usize, secret: &[u8; SECRET_BYTES]) -> Lanes {
    let mut sum = [0; 8];
    for (n, stripe) in input.chunks_exact(STRIPE_BYTES).take(stripes).enumerate() {
        accumulate_stripe(&mut sum, stripe, &secret[n * 8..]);
    }
    sum
}

/// The sum one whole block adds to the accumulators (what a device work-item computes).
pub(crate) fn block_sum(block: &[u8], secret: &[u8; SECRET_BYTES]) -> Lanes {
    stripes_sum(block, STRIPES_PER_BLOCK, secret)
}

/// Adds a block's sum, then scrambles: the accumulators after that block.
pub(crate) fn apply_block(acc: &mut Lanes, sum: &Lanes, secret: &[u8; SECRET_BYTES]) {
    for lane in 0..8 {
        let key = read64(secret, SECRET_BYTES - STRIPE_BYTES + lane * 8);
        let mut value = acc[lane].wrapping_add(sum[lane]);
        value ^= value >> 47;
        value ^= key;
        acc[lane] = value.wrapping_mul(PRIME32_1);
    }
}

/// The hash, given the accumulators after every block but the last, the last (partial or
/// whole) block `tail` (1 to 1024 bytes), the 64 bytes just before it (read only when
/// `tail` is shorter than a stripe) and the input's total length.
pub(crate) fn finish(
    acc: &Lanes,
    tail: &[u8],
    before_tail: &[u8; STRIPE_BYTES],
    total_len: u64,
    secret: &[u8; SECRET_BYTES],
) -> u64 {
    let mut acc = *acc;
    let stripes = tail.len().saturating_sub(1) / STRIPE_BYTES;
    let sum = stripes_sum(tail, stripes, secret);
    for (a, s) in acc.iter_mut().zip(sum) {
        *a = a.wrapping_add(s);
    }
    let mut last = [0u8; STRIPE_BYTES];
    if tail.len() >= STRIPE_BYTES {
        last.copy_from_slice(&tail[tail.len() - STRIPE_BYTES..]);
    } else {
        let from_before = STRIPE_BYTES - tail.len();
        last[..from_before].copy_from_slice(&before_tail[tail.len()..]);
        last[from_before..].copy_from_slice(tail);
    }
    accumulate_stripe(&mut acc, &last, &secret[LAST_STRIPE_SECRET_START..]);
    merge(&acc, secret, total_len.wrapping_mul(PRIME64_1))
}

/// Folds the accumulators into the final 64 bits.
fn merge(acc: &Lanes, secret: &[u8; SECRET_BYTES], start: u64) -> u64 {
    let mut result = start;
    for pair in 0..4 {
        let at = MERGE_SECRET_START + pair * 16;
        let a = acc[pair * 2] ^ read64(secret, at);
        let b = acc[pair * 2 + 1] ^ read64(secret, at + 8);
        let product = u128::from(a) * u128::from(b);
        #[expect(
            clippy::cast_possible_truncation,
            reason = "folding the 128-bit product: the low and high halves are wanted"
        )]
        let folded = (product as u64) ^ ((product >> 64) as u64);
        result = result.wrapping_add(folded);
    }
    avalanche(result)
}

/// XXH3's final mix.
fn avalanche(mut h: u64) -> u64 {
    h ^= h >> 37;
    h = h.wrapping_mul(0x1656_6791_9E37_79F9);
    h ^ (h >> 32)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The whole long path over `input` (more than 240 bytes) in one go.
    fn hash_long(input: &[u8], seed: u64) -> u64 {
        let secret = secret_for(seed);
        let mut acc = INITIAL_ACC;
        let blocks = (input.len() - 1) / BLOCK_BYTES;
        for block in input.chunks_exact(BLOCK_BYTES).take(blocks) {
            apply_block(&mut acc, &block_sum(block, &secret), &secret);
        }
        let tail_at = blocks * BLOCK_BYTES;
        let mut before = [0u8; STRIPE_BYTES];
        if tail_at >= STRIPE_BYTES {
            before.copy_from_slice(&input[tail_at - STRIPE_BYTES..tail_at]);
        }
        finish(
            &acc,
            &input[tail_at..],
            &before,
            input.len() as u64,
            &secret,
        )
    }

    #[test]
    fn block_edges_agree_with_the_reference() {
        let input: Vec<u8> = (0..5000u32).map(|i| i.to_le_bytes()[0] ^ 0x5a).collect();
        for len in [241, 1023, 1024, 1025, 1088, 1089, 2048, 2049, 2050, 5000] {
            for seed in [0, 1, u64::MAX] {
                assert_eq!(
                    hash_long(&input[..len], seed),
                    xxhash_rust::xxh3::xxh3_64_with_seed(&input[..len], seed),
                    "{len} bytes, seed {seed}"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn any_long_input_agrees_with_the_reference(
            input in prop::collection::vec(any::<u8>(), 241..4000),
            seed in any::<u64>(),
        ) {
            prop_assert_eq!(
                hash_long(&input, seed),
                xxhash_rust::xxh3::xxh3_64_with_seed(&input, seed)
            );
        }
    }
}
