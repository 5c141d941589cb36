// SPDX-License-Identifier: Apache-2.0
//! Inputs for the sample runs: objects in which a known share of the records match, so a real
//! kernel keeps the sweep's selectivity.
//!
//! Record `i` matches when `(i x per_mille) mod 1000 < per_mille`: exactly `per_mille` of
//! every 1000 consecutive records, spread evenly. Records have one fixed width, so the kept
//! share of the bytes equals the kept share of the records (plus the CSV header, which
//! `csv-filter` always emits).

/// What `grep` looks for in the text sample.
pub const GREP_PATTERN: &str = "needle";
/// The CSV column `csv-filter` compares...
pub const CSV_COLUMN: &str = "status";
/// ...with this value.
pub const CSV_VALUE: &str = "500";

/// Whether record `i` matches at `per_mille` thousandths kept.
pub fn matches(i: u64, per_mille: u64) -> bool {
    (i.wrapping_mul(per_mille)) % 1000 < per_mille
}

/// About `size` bytes (whole records) of log lines; matching lines contain [`GREP_PATTERN`].
pub fn text(size: u64, per_mille: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    let mut i = 0u64;
    loop {
        let word = if matches(i, per_mille) {
            GREP_PATTERN
        } else {
            "nothin"
        };
        let line = format!("2026-11-23T19:00:00Z request {i:010} {word} done\n");
        if (out.len() + line.len()) as u64 > size {
            return out;
        }
        out.extend_from_slice(line.as_bytes());
        i += 1;
    }
}

/// About `size` bytes (whole rows) of CSV with a header; matching rows have
/// [`CSV_COLUMN`] = [`CSV_VALUE`].
pub fn csv(size: u64, per_mille: u64) -> Vec<u8> {
    let mut out = b"id,status,bytes\n".to_vec();
    let mut i = 0u64;
    loop {
        let status = if matches(i, per_mille) {
            CSV_VALUE
        } else {
            "200"
        };
        let row = format!(
            "{i:010},{status},{:08}\n",
            i.wrapping_mul(7919) % 100_000_000
        );
        if (out.len() + row.len()) as u64 > size {
            return out;
        }
        out.extend_from_slice(row.as_bytes());
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_per_mille_of_every_thousand_records_match() {
        for per_mille in [1, 10, 100, 500, 1000] {
            let hits = (0..10_000).filter(|&i| matches(i, per_mille)).count() as u64;
            assert_eq!(hits, per_mille * 10, "{per_mille}");
        }
    }

    #[test]
    fn samples_are_whole_fixed_width_records_within_the_size() {
        let t = text(1 << 20, 10);
        assert!(t.len() as u64 <= 1 << 20 && t.len() as u64 > (1 << 20) - 64);
        let lines: Vec<&[u8]> = t.split_inclusive(|&b| b == b'\n').collect();
        assert!(lines.iter().all(|l| l.len() == lines[0].len()));
        let hits = lines
            .iter()
            .filter(|l| {
                l.windows(GREP_PATTERN.len())
                    .any(|w| w == GREP_PATTERN.as_bytes())
            })
            .count();
        assert_eq!(hits, lines.len().div_ceil(100));
        let c = csv(1 << 20, 500);
        let rows: Vec<&[u8]> = c.split_inclusive(|&b| b == b'\n').skip(1).collect();
        assert!(rows.iter().all(|r| r.len() == rows[0].len()));
        let kept = rows
            .iter()
            .filter(|r| r.windows(5).any(|w| w == b",500,"))
            .count();
        assert_eq!(kept, rows.len().div_ceil(2));
    }
}
