// SPDX-License-Identifier: Apache-2.0
#![allow(
    unsafe_code,
    reason = "AVX2 loads and the call into the AVX2 path, made only after runtime detection"
)]
//! Bit masks of 64-byte blocks: the branch-free first pass of the line kernels.
//!
//! A block is 64 positions `base + i`, `i` in `0..64`; bit `i` of its mask says whether
//! position `base + i` passes a byte test. Positions past the end of the data never pass.
//! Two tests, and a count:
//! - [`probe_masks`]: every one of three [`Probe`]s passes (a byte at a fixed offset, with
//!   optional ASCII case folding): the candidates of a substring search (`grep`);
//! - [`class_masks`]: one mask per byte value, for three values (the `"` `,` `\n` of a CSV row);
//! - [`count_byte`]: how many bytes equal a value (the quotes of a CSV piece).
//!
//! On x86-64 CPUs with AVX2 (detected at run time) each block costs a few vector compares and
//! two `movemask`s; elsewhere, and for the last partial blocks, a scalar loop gives the same
//! bits (`tests` hold both to agreement).
//!
//! JUSTIFICATION: std's SIMD intrinsics are the only way to get AVX2 `movemask` at run time
//! without a compile-time target flag; the compiler does not turn a scalar mask loop into
//! `pmovmskb`, and SSE2-only vectors (the baseline) measured about 30% slower on `grep` with
//! three probes. The unsafe operations are the unaligned 32-byte loads from slices that are
//! checked to hold 32 bytes, and the call into the AVX2 path after detection.

/// A byte test at a fixed offset: position `p` passes when `(data[p + offset] | fold) == byte`.
///
/// `fold` is `0x20` to compare an ASCII letter in either case (`byte` then lower case: for a
/// letter, `b | 0x20` equals it exactly when `b` is that letter in either case), `0` otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Probe {
    /// Distance from the tested position to the byte compared.
    pub(crate) offset: usize,
    /// Bits set in the data byte before comparing.
    pub(crate) fold: u8,
    /// The value compared with.
    pub(crate) byte: u8,
}

impl Probe {
    fn passes(self, data: &[u8], pos: usize) -> bool {
        data.get(pos + self.offset)
            .is_some_and(|&b| b | self.fold == self.byte)
    }
}

/// The masks of one block for a line search.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LineMasks {
    /// Positions where all three probes pass.
    pub(crate) candidates: u64,
    /// Positions of `\n`.
    pub(crate) newlines: u64,
}

/// Fills `out[k]` with the masks of block `base + 64 * k`: candidates where all three probes
/// pass, and the newlines. The vector path needs the first probe at offset 0 (as a substring
/// search puts it); other probes take the scalar loop.
pub(crate) fn probe_masks(data: &[u8], base: usize, probes: &[Probe; 3], out: &mut [LineMasks]) {
    let reach = probes.iter().map(|p| p.offset).max().unwrap_or(0) + 64;
    let full = full_blocks(data.len(), base, reach, out.len());
    let (fast, rest) = out.split_at_mut(full);
    #[cfg(target_arch = "x86_64")]
    if !fast.is_empty() && probes[0].offset == 0 && avx2::available() {
        avx2::probe_masks(data, base, probes, fast);
    } else {
        scalar_probe_masks(data, base, probes, fast);
    }
    #[cfg(not(target_arch = "x86_64"))]
    scalar_probe_masks(data, base, probes, fast);
    scalar_probe_masks(data, base + 64 * full, probes, rest);
}

/// Fills `out[k][j]` with the mask of block `base + 64 * k` for byte value `bytes[j]`.
pub(crate) fn class_masks(data: &[u8], base: usize, bytes: [u8; 3], out: &mut [[u64; 3]]) {
    let full = full_blocks(data.len(), base, 64, out.len());
    let (fast, rest) = out.split_at_mut(full);
    #[cfg(target_arch = "x86_64")]
    if !fast.is_empty() && avx2::available() {
        avx2::class_masks(data, base, bytes, fast);
    } else {
        scalar_class_masks(data, base, bytes, fast);
    }
    #[cfg(not(target_arch = "x86_64"))]
    scalar_class_masks(data, base, bytes, fast);
    scalar_class_masks(data, base + 64 * full, bytes, rest);
}

/// How many bytes of `data` equal `byte`.
pub(crate) fn count_byte(data: &[u8], byte: u8) -> usize {
    let whole = data.len() / 64 * 64;
    let (head, tail) = data.split_at(whole);
    #[cfg(target_arch = "x86_64")]
    let head_count = if avx2::available() {
        avx2::count_byte(head, byte)
    } else {
        scalar_count_byte(head, byte)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let head_count = scalar_count_byte(head, byte);
    head_count + scalar_count_byte(tail, byte)
}

fn scalar_count_byte(data: &[u8], byte: u8) -> usize {
    data.iter().filter(|&&b| b == byte).count()
}

/// How many of `blocks` blocks from `base` lie wholly in `len` bytes when each reads `reach`
/// bytes from its start.
fn full_blocks(len: usize, base: usize, reach: usize, blocks: usize) -> usize {
    match len.checked_sub(base + reach) {
        Some(spare) => (spare / 64 + 1).min(blocks),
        None => 0,
    }
}

fn scalar_probe_masks(data: &[u8], base: usize, probes: &[Probe; 3], out: &mut [LineMasks]) {
    for (k, masks) in out.iter_mut().enumerate() {
        let block = base + 64 * k;
        *masks = LineMasks::default();
        for i in 0..64 {
            let pass = probes.iter().all(|p| p.passes(data, block + i));
            masks.candidates |= u64::from(pass) << i;
            masks.newlines |= u64::from(data.get(block + i) == Some(&b'\n')) << i;
        }
    }
}

fn scalar_class_masks(data: &[u8], base: usize, bytes: [u8; 3], out: &mut [[u64; 3]]) {
    for (k, masks) in out.iter_mut().enumerate() {
        let block = base + 64 * k;
        *masks = [0; 3];
        let end = data.len().min(block + 64);
        for (i, &b) in data.get(block..end).unwrap_or_default().iter().enumerate() {
            for (mask, &byte) in masks.iter_mut().zip(&bytes) {
                *mask |= u64::from(b == byte) << i;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256i, _mm256_and_si256, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8,
        _mm256_or_si256, _mm256_set1_epi8,
    };

    use super::{LineMasks, Probe};

    /// Whether this CPU runs AVX2 (std caches the answer).
    pub(super) fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx2")
    }

    /// [`super::probe_masks`] over blocks that lie wholly in `data` (with each probe's
    /// offset), the first probe at offset 0.
    pub(super) fn probe_masks(
        data: &[u8],
        base: usize,
        probes: &[Probe; 3],
        out: &mut [LineMasks],
    ) {
        if probes.iter().any(|p| p.fold != 0) {
            // SAFETY: the caller checked `available()`, so the CPU runs AVX2 instructions
            // (the only requirement of a safe `#[target_feature]` function).
            unsafe { probe_masks_avx2::<true>(data, base, probes, out) }
        } else {
            // SAFETY: as above, AVX2 was detected by the caller.
            unsafe { probe_masks_avx2::<false>(data, base, probes, out) }
        }
    }

    /// [`super::count_byte`] over whole 64-byte blocks.
    pub(super) fn count_byte(data: &[u8], byte: u8) -> usize {
        // SAFETY: as in `probe_masks`, AVX2 was detected by the caller.
        unsafe { count_byte_avx2(data, byte) }
    }

    /// [`super::class_masks`] over blocks that lie wholly in `data`.
    pub(super) fn class_masks(data: &[u8], base: usize, bytes: [u8; 3], out: &mut [[u64; 3]]) {
        // SAFETY: as in `probe_masks`, AVX2 was detected by the caller.
        unsafe { class_masks_avx2(data, base, bytes, out) }
    }

    /// `FOLD`: whether any probe folds case (without, the `or` is left out). The first
    /// probe's offset is 0, so its bytes are the block's own, which the newlines come from.
    #[target_feature(enable = "avx2")]
    fn probe_masks_avx2<const FOLD: bool>(
        data: &[u8],
        base: usize,
        probes: &[Probe; 3],
        out: &mut [LineMasks],
    ) {
        let folds = probes.map(|p| splat(p.fold));
        let bytes = probes.map(|p| splat(p.byte));
        let newline = splat(b'\n');
        // Each probe reads its own run of whole blocks: slicing once here leaves no bounds
        // checks in the loop.
        let [first, middle, last] = probes.map(|p| blocks(data, base + p.offset, out.len()));
        let rows = first.iter().zip(middle).zip(last);
        for (masks, ((first, middle), last)) in out.iter_mut().zip(rows) {
            let half = |h: usize| {
                let own = load(&first[h]);
                let mut all = splat(0xff);
                for ((v, fold), byte) in [own, load(&middle[h]), load(&last[h])]
                    .into_iter()
                    .zip(folds)
                    .zip(bytes)
                {
                    let v = if FOLD { _mm256_or_si256(v, fold) } else { v };
                    all = _mm256_and_si256(all, _mm256_cmpeq_epi8(v, byte));
                }
                let newlines = _mm256_cmpeq_epi8(own, newline);
                (bits(all), bits(newlines))
            };
            let (lo, hi) = (half(0), half(1));
            *masks = LineMasks {
                candidates: lo.0 | (hi.0 << 32),
                newlines: lo.1 | (hi.1 << 32),
            };
        }
    }

    #[target_feature(enable = "avx2")]
    fn class_masks_avx2(data: &[u8], base: usize, bytes: [u8; 3], out: &mut [[u64; 3]]) {
        let bytes = bytes.map(|b| splat(b));
        let rows = blocks(data, base, out.len());
        for (masks, block) in out.iter_mut().zip(rows) {
            let (lo, hi) = (load(&block[0]), load(&block[1]));
            for (mask, byte) in masks.iter_mut().zip(bytes) {
                let lo = bits(_mm256_cmpeq_epi8(lo, byte));
                let hi = bits(_mm256_cmpeq_epi8(hi, byte));
                *mask = lo | (hi << 32);
            }
        }
    }

    #[target_feature(enable = "avx2")]
    fn count_byte_avx2(data: &[u8], byte: u8) -> usize {
        let byte = splat(byte);
        let mut count = 0;
        for block in blocks(data, 0, data.len() / 64) {
            let lo = bits(_mm256_cmpeq_epi8(load(&block[0]), byte));
            let hi = bits(_mm256_cmpeq_epi8(load(&block[1]), byte));
            count += (lo | (hi << 32)).count_ones() as usize;
        }
        count
    }

    /// `count` 64-byte blocks of `data` from `start`, each as two 32-byte halves (panics if
    /// they do not fit, which callers rule out).
    fn blocks(data: &[u8], start: usize, count: usize) -> &[[[u8; 32]; 2]] {
        let (blocks, _) = data[start..start + 64 * count].as_chunks::<32>();
        blocks.as_chunks::<2>().0
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn splat(byte: u8) -> __m256i {
        _mm256_set1_epi8(i8::from_ne_bytes([byte]))
    }

    /// The high bit of each byte of `v`, as a 32-bit mask in the low half of a `u64`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn bits(v: __m256i) -> u64 {
        u64::from(u32::from_ne_bytes(_mm256_movemask_epi8(v).to_ne_bytes()))
    }

    /// The 32 bytes of `bytes` as a vector.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn load(bytes: &[u8; 32]) -> __m256i {
        // SAFETY: `bytes` is a live reference to 32 readable bytes; `loadu` reads exactly
        // those 32 bytes and needs no alignment.
        unsafe { _mm256_loadu_si256(bytes.as_ptr().cast::<__m256i>()) }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn probes(offsets: [usize; 3], text: &[u8], fold: bool) -> [Probe; 3] {
        offsets.map(|offset| {
            let byte = text.get(offset).copied().unwrap_or(b'a');
            if fold && byte.is_ascii_alphabetic() {
                Probe {
                    offset,
                    fold: 0x20,
                    byte: byte.to_ascii_lowercase(),
                }
            } else {
                Probe {
                    offset,
                    fold: 0,
                    byte,
                }
            }
        })
    }

    #[test]
    fn full_blocks_stop_where_a_block_would_read_past_the_end() {
        assert_eq!(full_blocks(128, 0, 64, 10), 2);
        assert_eq!(full_blocks(128, 0, 70, 10), 1);
        assert_eq!(full_blocks(128, 1, 64, 10), 1);
        assert_eq!(full_blocks(63, 0, 64, 10), 0);
        assert_eq!(full_blocks(1000, 0, 64, 3), 3);
    }

    proptest! {
        #[test]
        fn count_byte_agrees_with_the_scalar_loop(
            data in proptest::collection::vec(
                prop_oneof![Just(b'"'), any::<u8>()],
                0..700,
            ),
        ) {
            prop_assert_eq!(count_byte(&data, b'"'), scalar_count_byte(&data, b'"'));
        }

        #[test]
        fn probe_masks_agree_with_the_scalar_loop(
            data in proptest::collection::vec(
                prop_oneof![Just(b'a'), Just(b'A'), Just(b'b'), Just(b'\n'), any::<u8>()],
                0..400,
            ),
            base in 0usize..80,
            offsets in [0usize..2, 0usize..9, 0usize..70],
            fold in any::<bool>(),
            blocks in 0usize..8,
        ) {
            let probes = probes(offsets, &data, fold);
            let mut fast = vec![LineMasks::default(); blocks];
            let mut slow = vec![LineMasks::default(); blocks];
            probe_masks(&data, base, &probes, &mut fast);
            scalar_probe_masks(&data, base, &probes, &mut slow);
            prop_assert_eq!(fast, slow);
        }

        #[test]
        fn class_masks_agree_with_the_scalar_loop(
            data in proptest::collection::vec(
                prop_oneof![Just(b','), Just(b'"'), Just(b'\n'), any::<u8>()],
                0..400,
            ),
            base in 0usize..80,
            blocks in 0usize..8,
        ) {
            let mut fast = vec![[0; 3]; blocks];
            let mut slow = vec![[0; 3]; blocks];
            class_masks(&data, base, [b'"', b',', b'\n'], &mut fast);
            scalar_class_masks(&data, base, [b'"', b',', b'\n'], &mut slow);
            prop_assert_eq!(&fast, &slow);
            for (k, masks) in slow.iter().enumerate() {
                for i in 0..64 {
                    let b = data.get(base + 64 * k + i).copied();
                    prop_assert_eq!(masks[1] >> i & 1 == 1, b == Some(b','));
                }
            }
        }
    }
}
