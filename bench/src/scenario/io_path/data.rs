// SPDX-License-Identifier: Apache-2.0
//! The bytes every side of the scenario reads: text lines, so that a grep count has
//! something to count, one block repeated so the expected count is known.

use anyhow::{Result, ensure};
use bytes::Bytes;

/// Size of the block the file repeats (and of the baselines' and fio's reads).
pub const BLOCK: usize = 1 << 20;
/// Length of every line, `\n` included (a divisor of [`BLOCK`], so no line straddles blocks).
const LINE: usize = 64;
/// Every this many lines holds the needle.
const NEEDLE_EVERY: usize = 7;
/// What the grep row counts lines of.
pub const NEEDLE: &str = "needle";

/// One block of lines: line `i` is its number, filler, and [`NEEDLE`] when
/// `i % NEEDLE_EVERY == 0`.
fn block() -> Vec<u8> {
    let mut out = Vec::with_capacity(BLOCK);
    for i in 0..BLOCK / LINE {
        let mut line = if i % NEEDLE_EVERY == 0 {
            format!("{i:06} a {NEEDLE} in the haystack")
        } else {
            format!("{i:06} just hay, nothing to see here")
        };
        line.extend(std::iter::repeat_n('.', LINE - 1 - line.len()));
        line.push('\n');
        out.extend_from_slice(line.as_bytes());
    }
    out
}

/// Lines holding [`NEEDLE`] in a file of `size` bytes (a multiple of [`BLOCK`]).
pub fn expected_count(size: u64) -> u64 {
    let per_block = (BLOCK / LINE).div_ceil(NEEDLE_EVERY) as u64;
    per_block * (size / BLOCK as u64)
}

/// The `size` bytes as a stream of shared blocks (no copy per block); `size` must be a
/// positive multiple of [`BLOCK`].
pub fn stream(size: u64) -> Result<impl futures::Stream<Item = std::io::Result<Bytes>>> {
    ensure!(
        size > 0 && size.is_multiple_of(BLOCK as u64),
        "--file-size must be a positive multiple of 1MiB"
    );
    let block = Bytes::from(block());
    Ok(futures::stream::iter(
        (0..size / BLOCK as u64).map(move |_| Ok(block.clone())),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expected_count_is_the_lines_holding_the_needle() {
        let block = block();
        assert_eq!(block.len(), BLOCK);
        let lines = block.split(|&b| b == b'\n').filter(|l| !l.is_empty());
        let holding = lines
            .filter(|l| memchr::memmem::find(l, NEEDLE.as_bytes()).is_some())
            .count() as u64;
        assert_eq!(holding, expected_count(BLOCK as u64));
        assert_eq!(expected_count(4 * BLOCK as u64), 4 * holding);
        assert!(
            block
                .chunks(LINE)
                .all(|l| l.len() == LINE && l[LINE - 1] == b'\n')
        );
    }
}
