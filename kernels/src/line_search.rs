// SPDX-License-Identifier: Apache-2.0
//! The lines of a chunk that hold a literal pattern: the CPU search of `grep`, and of
//! `jsonl-filter` for the field's quoted key.
//!
//! Lines are short and hits dense in the inputs these kernels read (a hit every few hundred
//! bytes), where a `memmem` call per hit, and a `memchr` per line end, cost more than the bytes
//! between hits: here one pass of block masks (`simd`) finds both the candidates and the line
//! ends.

use crate::simd::{self, LineMasks, Probe};

/// Finds the lines that hold a pattern.
///
/// A first pass turns each 64-byte block into a mask of candidates (three bytes of the pattern
/// at their offsets, see `simd`), in batches of [`BATCH_BLOCKS`]; a candidate is checked
/// against the whole pattern, and after a hit the rest of its line is skipped.
#[derive(Debug)]
pub(crate) struct LineSearch {
    /// The pattern (in lower case when case is ignored).
    pattern: Vec<u8>,
    ignore_case: bool,
    probes: [Probe; 3],
    /// A pattern of at most 8 bytes as one word compare: 8 bytes of text from a candidate,
    /// or'ed with `fold` and and'ed with `mask`, equal `word`.
    short: Option<ShortPattern>,
}

/// The word compare of a pattern of at most 8 bytes (see `LineSearch::short`).
#[derive(Debug, Clone, Copy)]
struct ShortPattern {
    word: u64,
    fold: u64,
    mask: u64,
}

impl ShortPattern {
    fn new(pattern: &[u8], ignore_case: bool) -> Option<Self> {
        if pattern.len() > 8 {
            return None;
        }
        let mut word = [0u8; 8];
        let mut fold = [0u8; 8];
        let mut mask = [0u8; 8];
        for (i, &b) in pattern.iter().enumerate() {
            word[i] = b;
            fold[i] = if ignore_case && b.is_ascii_alphabetic() {
                0x20
            } else {
                0
            };
            mask[i] = 0xff;
        }
        Some(Self {
            word: u64::from_le_bytes(word),
            fold: u64::from_le_bytes(fold),
            mask: u64::from_le_bytes(mask),
        })
    }
}

/// Blocks whose masks are computed at a time: 2 KiB of input, 256 bytes of masks.
const BATCH_BLOCKS: usize = 32;

impl LineSearch {
    /// A search for `pattern` (non-empty, no `\n`), ignoring ASCII case if asked.
    pub(crate) fn new(pattern: &[u8], ignore_case: bool) -> Self {
        let pattern = if ignore_case {
            pattern.to_ascii_lowercase()
        } else {
            pattern.to_vec()
        };
        let probes = probe_offsets(&pattern).map(|offset| {
            let byte = pattern[offset];
            let fold = if ignore_case && byte.is_ascii_alphabetic() {
                0x20
            } else {
                0
            };
            Probe { offset, fold, byte }
        });
        Self {
            short: ShortPattern::new(&pattern, ignore_case),
            pattern,
            ignore_case,
            probes,
        }
    }

    /// Whether the pattern occurs at `at`.
    fn is_at(&self, chunk: &[u8], at: usize) -> bool {
        if let (Some(short), Some(text)) = (self.short, chunk.get(at..at + 8)) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(text);
            return (u64::from_le_bytes(bytes) | short.fold) & short.mask == short.word;
        }
        let Some(text) = chunk.get(at..at + self.pattern.len()) else {
            return false;
        };
        // A byte loop, not `memcmp`: patterns are short and a call would cost more.
        if self.ignore_case {
            text.iter()
                .zip(&self.pattern)
                .all(|(t, p)| t.to_ascii_lowercase() == *p)
        } else {
            text.iter().zip(&self.pattern).all(|(t, p)| t == p)
        }
    }

    /// Calls `found` with the range (its `\n` included) of each line of `chunk` that holds
    /// the pattern, in order.
    pub(crate) fn for_each_line(&self, chunk: &[u8], mut found: impl FnMut(usize, usize)) {
        let mut prev_end = 0;
        self.for_each_hit_line(chunk, |at, end| {
            let start =
                memchr::memrchr(b'\n', &chunk[prev_end..at]).map_or(prev_end, |i| prev_end + i + 1);
            found(start, end);
            prev_end = end;
        });
    }

    /// Calls `hit(at, end)` for the first occurrence `at` of the pattern in each line that
    /// holds it, with `end` the end of that line (past its `\n`, or the chunk's end).
    pub(crate) fn for_each_hit_line(&self, chunk: &[u8], mut hit: impl FnMut(usize, usize)) {
        let mut masks = [LineMasks::default(); BATCH_BLOCKS];
        // A hit whose line's end lies past the blocks scanned so far.
        let mut open: Option<usize> = None;
        let mut base = 0;
        while base < chunk.len() {
            let blocks = (chunk.len() - base).div_ceil(64).min(BATCH_BLOCKS);
            simd::probe_masks(chunk, base, &self.probes, &mut masks[..blocks]);
            for (k, masks) in masks[..blocks].iter().enumerate() {
                let block = base + 64 * k;
                let mut candidates = masks.candidates;
                if let Some(at) = open {
                    if masks.newlines == 0 {
                        continue;
                    }
                    let end = masks.newlines.trailing_zeros();
                    hit(at, block + end as usize + 1);
                    candidates &= above(end);
                    open = None;
                }
                while candidates != 0 {
                    let bit = candidates.trailing_zeros();
                    candidates &= candidates - 1;
                    let at = block + bit as usize;
                    if !self.is_at(chunk, at) {
                        continue;
                    }
                    let later_newlines = masks.newlines & above(bit);
                    if later_newlines == 0 {
                        open = Some(at);
                        break;
                    }
                    let end = later_newlines.trailing_zeros();
                    hit(at, block + end as usize + 1);
                    candidates &= above(end);
                }
            }
            base += 64 * blocks;
        }
        if let Some(at) = open {
            hit(at, chunk.len());
        }
    }
}

/// The bits of a block mask above bit `bit` (`bit` < 64).
fn above(bit: u32) -> u64 {
    (u64::MAX - 1) << bit
}

/// The offsets of the three pattern bytes a candidate must show: the first, the last, and
/// one between that differs from both where there is one (so that `banana` tests `b`, `n`,
/// `a`), nearest the middle.
fn probe_offsets(pattern: &[u8]) -> [usize; 3] {
    let last = pattern.len().saturating_sub(1);
    let (first_byte, last_byte) = (pattern[0], pattern[last]);
    let mid = last / 2;
    let middle = (1..last)
        .filter(|&i| pattern[i] != first_byte && pattern[i] != last_byte)
        .min_by_key(|&i| i.abs_diff(mid))
        .unwrap_or(mid);
    [0, middle, last]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_pick_a_middle_byte_unlike_the_ends() {
        assert_eq!(probe_offsets(b"banana"), [0, 2, 5]);
        assert_eq!(probe_offsets(b"a"), [0, 0, 0]);
        assert_eq!(probe_offsets(b"ab"), [0, 0, 1]);
        assert_eq!(probe_offsets(b"aaaa"), [0, 1, 3]);
    }

    #[test]
    fn a_line_is_reported_once_with_its_bounds() {
        let search = LineSearch::new(b"ab", false);
        let text = b"xxab ab\nno\nab";
        let mut lines = Vec::new();
        search.for_each_line(text, |s, e| lines.push(s..e));
        assert_eq!(lines, [0..8, 11..13]);
    }
}
