// SPDX-License-Identifier: Apache-2.0
//! RFC 4180 rows and fields, as both CSV kernels (and their OpenCL sources, `csv_common.cl`)
//! read them.
//!
//! The rules, kept lenient so that every input has one reading:
//! - every `"` toggles "inside quotes" (so an escaped `""` toggles twice and changes nothing);
//! - a row ends at a `\n` outside quotes, or at the end of the chunk; rows start at offset 0
//!   or right after such a `\n`, and a chunk always starts outside quotes;
//! - fields are separated by `,` outside quotes; a `\r` right before the row's `\n` is not part
//!   of the last field;
//! - a field's value is its text with the quoting removed: each `"` is dropped, except that
//!   `""` inside quotes stands for one `"` (`"a""b"` reads `a"b`, `x"y"z` reads `xyz`).
//!
//! [`scan_row`] jumps between the bytes that matter (`,` `"` `\n`) with `memchr`, so a row costs
//! a few SIMD searches, not a branch per byte; [`for_each_row`] reads a whole chunk in one pass
//! of 64-byte block masks, where rows are short and those searches would cost more than the
//! rows.

use std::ops::Range;

use memchr::{memchr, memchr2, memchr3};

use crate::contract::KernelError;

/// Bytes per device work-item block: work-item `i` owns the rows that start in block `i`.
pub(crate) const BLOCK_BYTES: usize = 4096;

/// Work-items for a device chunk of `len` bytes.
pub(crate) fn block_items(len: usize) -> usize {
    len.div_ceil(BLOCK_BYTES)
}

/// Scans the row starting at `start` (outside quotes) and returns its end: the offset just past
/// its `\n`, or `data.len()`. The ranges of fields `0..=last` (fewer if the row has fewer) are
/// left in `fields`; later fields are skipped without being split.
pub fn scan_row(data: &[u8], start: usize, last: usize, fields: &mut Vec<Range<usize>>) -> usize {
    fields.clear();
    let mut field_start = start;
    let mut pos = start;
    while let Some(i) = memchr3(b',', b'"', b'\n', &data[pos..]) {
        let at = pos + i;
        match data[at] {
            b',' => {
                fields.push(field_start..at);
                field_start = at + 1;
                pos = at + 1;
                if fields.len() > last {
                    return row_end(data, pos);
                }
            }
            b'\n' => {
                let end = if at > field_start && data[at - 1] == b'\r' {
                    at - 1
                } else {
                    at
                };
                fields.push(field_start..end);
                return at + 1;
            }
            _ => match memchr(b'"', &data[at + 1..]) {
                Some(j) => pos = at + 1 + j + 1,
                None => break,
            },
        }
    }
    fields.push(field_start..data.len());
    data.len()
}

/// Calls `on_row(row, fields)` for every row of `data` from `start` (outside quotes) on, in
/// order: `row` is the row's range (with its `\n`, if any) and `fields` the ranges of its fields
/// `0..=last` (fewer if it has fewer), exactly as [`scan_row`] gives them.
///
/// One pass: each 64-byte block becomes masks of its `"` `,` `\n` (see `simd`); the quote
/// mask's prefix XOR says which bytes lie inside quotes, so only the separators outside
/// quotes are visited, and of those only the newlines once field `last` is known.
pub fn for_each_row(
    data: &[u8],
    start: usize,
    last: usize,
    fields: &mut Vec<Range<usize>>,
    mut on_row: impl FnMut(Range<usize>, &[Range<usize>]),
) {
    fields.clear();
    let mut row_start = start;
    let mut field_start = start;
    let mut blocks = QuotedBlocks::new(data, start);
    while let Some((block, commas, newlines)) = blocks.next_block() {
        let mut pending = if fields.len() <= last {
            commas | newlines
        } else {
            newlines
        };
        while pending != 0 {
            let bit = pending.trailing_zeros();
            pending &= pending - 1;
            let at = block + bit as usize;
            if newlines >> bit & 1 == 1 {
                if fields.len() <= last {
                    fields.push(field_start..trim_cr(data, field_start, at));
                }
                on_row(row_start..at + 1, fields);
                fields.clear();
                row_start = at + 1;
                field_start = at + 1;
                pending |= commas & above(bit);
            } else {
                fields.push(field_start..at);
                field_start = at + 1;
                if fields.len() > last {
                    pending &= newlines;
                }
            }
        }
    }
    if row_start < data.len() {
        if fields.len() <= last {
            fields.push(field_start..data.len());
        }
        on_row(row_start..data.len(), fields);
    }
}

/// The first and last row ends in `data` (offsets just past a `\n` outside quotes), given
/// whether `data` starts inside quotes, and whether it ends inside quotes.
///
/// The first is found by reading blocks from the start (see [`for_each_row`]); the quote
/// state at the end follows from the number of quotes (one counting pass), and the last row
/// end by reading blocks backwards from the end with that state.
pub fn row_ends(data: &[u8], in_quotes: bool) -> (Option<(usize, usize)>, bool) {
    let mut blocks = QuotedBlocks::new(data, 0);
    blocks.in_quotes = if in_quotes { u64::MAX } else { 0 };
    let mut first = None;
    while let Some((block, _, newlines)) = blocks.next_block() {
        if newlines != 0 {
            first = Some(block + newlines.trailing_zeros() as usize + 1);
            break;
        }
    }
    let ends_quoted = in_quotes ^ (crate::simd::count_byte(data, b'"') % 2 == 1);
    let Some(first) = first else {
        return (None, ends_quoted);
    };
    // Backwards, one block at a time; `after` is the quote state at the end of the block.
    let mut after = ends_quoted;
    let mut end = data.len();
    let mut masks = [[0u64; 3]];
    loop {
        let start = end.saturating_sub(64);
        crate::simd::class_masks(&data[..end], start, [b'"', b',', b'\n'], &mut masks);
        let [quotes, _, newlines] = masks[0];
        let before = after ^ (quotes.count_ones() % 2 == 1);
        let quoted = prefix_xor(quotes) ^ if before { u64::MAX } else { 0 };
        let newlines = newlines & !quoted;
        if newlines != 0 {
            let last = start + (63 - newlines.leading_zeros() as usize) + 1;
            return (Some((first, last)), ends_quoted);
        }
        if start == 0 {
            // Unreachable: the block holding the first row end reads it again.
            return (Some((first, first)), ends_quoted);
        }
        after = before;
        end = start;
    }
}

/// The end of a field that ends at a `\n` at `at`: a `\r` right before it is not part of it.
fn trim_cr(data: &[u8], field_start: usize, at: usize) -> usize {
    if at > field_start && data[at - 1] == b'\r' {
        at - 1
    } else {
        at
    }
}

/// The bits of a block mask above bit `bit` (`bit` < 64).
fn above(bit: u32) -> u64 {
    (u64::MAX - 1) << bit
}

/// Blocks whose masks are computed at a time: 2 KiB of input.
const BATCH_BLOCKS: usize = 32;

/// The 64-byte blocks of `data` from a start, each with the masks of its `,` and `\n` outside
/// quotes.
struct QuotedBlocks<'a> {
    data: &'a [u8],
    /// Offset of the first block of the batch in `masks`.
    base: usize,
    masks: [[u64; 3]; BATCH_BLOCKS],
    /// Blocks of `masks` filled, and returned so far.
    filled: usize,
    taken: usize,
    /// All ones when the next block starts inside quotes, else zero.
    in_quotes: u64,
}

impl<'a> QuotedBlocks<'a> {
    fn new(data: &'a [u8], start: usize) -> Self {
        Self {
            data,
            base: start,
            masks: [[0; 3]; BATCH_BLOCKS],
            filled: 0,
            taken: 0,
            in_quotes: 0,
        }
    }

    /// The next block: its offset, then its commas and its newlines outside quotes.
    #[inline(always)]
    fn next_block(&mut self) -> Option<(usize, u64, u64)> {
        if self.taken == self.filled && !self.refill() {
            return None;
        }
        let [quotes, commas, newlines] = self.masks[self.taken];
        let block = self.base + 64 * self.taken;
        self.taken += 1;
        let quoted = prefix_xor(quotes) ^ self.in_quotes;
        // Bit 63 says whether the block ends inside quotes; spread it to all bits.
        self.in_quotes = 0u64.wrapping_sub(quoted >> 63);
        Some((block, commas & !quoted, newlines & !quoted))
    }

    /// Computes the masks of the next batch; `false` at the end of the data.
    #[inline(never)]
    fn refill(&mut self) -> bool {
        self.base += 64 * self.filled;
        if self.base >= self.data.len() {
            return false;
        }
        self.filled = (self.data.len() - self.base).div_ceil(64).min(BATCH_BLOCKS);
        self.taken = 0;
        crate::simd::class_masks(
            self.data,
            self.base,
            [b'"', b',', b'\n'],
            &mut self.masks[..self.filled],
        );
        true
    }
}

/// Bit `i` of the result is the XOR of bits `0..=i` of `x`: for a mask of quotes, whether
/// position `i` lies after an odd number of them.
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// The end of the row that continues at `pos` (outside quotes): just past its `\n`, or
/// `data.len()`.
pub fn row_end(data: &[u8], mut pos: usize) -> usize {
    while let Some(i) = memchr2(b'"', b'\n', &data[pos..]) {
        let at = pos + i;
        if data[at] == b'\n' {
            return at + 1;
        }
        match memchr(b'"', &data[at + 1..]) {
            Some(j) => pos = at + 1 + j + 1,
            None => break,
        }
    }
    data.len()
}

/// The value of a raw field (quoting removed, see the module docs): `raw` itself when it holds
/// no `"`, else the unescaped text built in `scratch`.
pub fn unescape<'a>(raw: &'a [u8], scratch: &'a mut Vec<u8>) -> &'a [u8] {
    // Fields are mostly short: a byte loop there, not a `memchr` call.
    let quoted = if raw.len() < 32 {
        raw.contains(&b'"')
    } else {
        memchr(b'"', raw).is_some()
    };
    if !quoted {
        return raw;
    }
    scratch.clear();
    let mut quoted = false;
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'"' {
            if quoted && raw.get(i + 1) == Some(&b'"') {
                scratch.push(b'"');
                i += 2;
                continue;
            }
            quoted = !quoted;
        } else {
            scratch.push(b);
        }
        i += 1;
    }
    scratch
}

/// A column as a parameter names it: a header name, or `#N` (0-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnRef {
    /// The `N` of `#N`.
    Index(usize),
    /// A header name (matched against the header's unescaped values; the first wins).
    Name(String),
}

impl ColumnRef {
    /// Parses the value of parameter `param`.
    pub fn parse(param: &str, text: &str) -> Result<Self, KernelError> {
        if let Some(digits) = text.strip_prefix('#') {
            return digits.parse().map(Self::Index).map_err(|_| {
                KernelError::param(
                    param,
                    format!("{text:?} is not a column index; write #N with N counted from 0"),
                )
            });
        }
        if text.is_empty() {
            return Err(KernelError::param(
                param,
                "is empty; give a header name or #N (0-based index)",
            ));
        }
        Ok(Self::Name(text.to_owned()))
    }

    /// Parses a comma-separated list of columns.
    pub fn parse_list(param: &str, text: &str) -> Result<Vec<Self>, KernelError> {
        text.split(',')
            .map(|c| Self::parse(param, c.trim()))
            .collect()
    }

    /// The index of this column, given the header row's unescaped names (`None` without a
    /// header); `param` names the parameter in errors.
    pub fn resolve(&self, param: &str, header: Option<&[String]>) -> Result<usize, KernelError> {
        match (self, header) {
            (Self::Index(i), _) => Ok(*i),
            (Self::Name(name), Some(names)) => {
                names.iter().position(|n| n == name).ok_or_else(|| {
                    KernelError::param(
                        param,
                        format!(
                            "no column is named {name:?}; the header has: {} (or use #N)",
                            names
                                .iter()
                                .map(|n| format!("{n:?}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                })
            }
            (Self::Name(name), None) => Err(KernelError::param(
                param,
                format!("names column {name:?}, but header is false; use #N (0-based index)"),
            )),
        }
    }
}

/// The unescaped names of a header row.
pub fn header_names(row: &[u8]) -> Vec<String> {
    let mut fields = Vec::new();
    scan_row(row, 0, usize::MAX, &mut fields);
    let mut scratch = Vec::new();
    fields
        .iter()
        .map(|f| String::from_utf8_lossy(unescape(&row[f.clone()], &mut scratch)).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields_of(row: &[u8]) -> (Vec<&[u8]>, usize) {
        let mut fields = Vec::new();
        let end = scan_row(row, 0, usize::MAX, &mut fields);
        (fields.iter().map(|f| &row[f.clone()]).collect(), end)
    }

    #[test]
    fn fields_split_at_commas_outside_quotes() {
        let (fields, end) = fields_of(b"a,\"b,c\",,d\nnext");
        assert_eq!(fields, vec![&b"a"[..], b"\"b,c\"", b"", b"d"]);
        assert_eq!(end, 11);
    }

    #[test]
    fn a_newline_inside_quotes_does_not_end_the_row() {
        let (fields, end) = fields_of(b"\"x\ny\",z\r\nw");
        assert_eq!(fields, vec![&b"\"x\ny\""[..], b"z"]);
        assert_eq!(end, 9);
        assert_eq!(row_end(b"\"x\ny\",z\r\nw", 0), 9);
    }

    #[test]
    fn an_unterminated_row_ends_with_the_chunk() {
        let (fields, end) = fields_of(b"a,b\r");
        assert_eq!(fields, vec![&b"a"[..], b"b\r"]);
        assert_eq!(end, 4);
        let (fields, end) = fields_of(b"a,\"open\n");
        assert_eq!(fields, vec![&b"a"[..], b"\"open\n"]);
        assert_eq!(end, 8);
    }

    #[test]
    fn only_the_fields_asked_for_are_split() {
        let mut fields = Vec::new();
        let end = scan_row(b"a,b,\"c\n\",d\ne", 0, 1, &mut fields);
        assert_eq!(fields, vec![0..1, 2..3]);
        assert_eq!(end, 11);
    }

    #[test]
    fn quoting_is_removed_from_values() {
        let mut scratch = Vec::new();
        assert_eq!(unescape(b"plain", &mut scratch), b"plain");
        assert_eq!(unescape(b"\"a\"\"b\"", &mut scratch), b"a\"b");
        assert_eq!(unescape(b"\"\"", &mut scratch), b"");
        assert_eq!(unescape(b"x\"y\"z", &mut scratch), b"xyz");
        assert_eq!(unescape(b"\"\"\"\"", &mut scratch), b"\"");
    }

    #[test]
    fn columns_resolve_by_name_or_index() {
        let names = header_names(b"id,\"full name\",age\n");
        assert_eq!(names, vec!["id", "full name", "age"]);
        let name = ColumnRef::parse("column", "age").expect("a name");
        assert_eq!(name.resolve("column", Some(&names)), Ok(2));
        assert_eq!(
            ColumnRef::parse("column", "#7")
                .expect("an index")
                .resolve("column", None),
            Ok(7)
        );
        let err = ColumnRef::parse("column", "nope")
            .expect("a name")
            .resolve("column", Some(&names))
            .expect_err("unknown");
        assert!(err.to_string().contains("\"full name\""), "{err}");
        assert!(ColumnRef::parse("column", "#x").is_err());
        assert!(name.resolve("column", None).is_err());
    }

    proptest::proptest! {
        #[test]
        fn for_each_row_reads_rows_like_scan_row(
            text in "[a,\"\r\n]{0,60}",
            start in 0usize..8,
            last in 0usize..4,
        ) {
            let data = text.as_bytes();
            // Rows start outside quotes: only at 0 or after a row end.
            let start = if start == 0 { 0 } else { row_end(data, 0).min(data.len()) };
            let mut expected = Vec::new();
            let mut fields = Vec::new();
            let mut pos = start;
            while pos < data.len() {
                let end = scan_row(data, pos, last, &mut fields);
                expected.push((pos..end, fields.clone()));
                pos = end;
            }
            let mut got = Vec::new();
            for_each_row(data, start, last, &mut fields, |row, f| got.push((row, f.to_vec())));
            proptest::prop_assert_eq!(got, expected);
        }

        #[test]
        fn for_each_row_reads_long_input_like_scan_row(
            data in proptest::collection::vec(
                proptest::sample::select(b"ab,,,\"\r\n\n".to_vec()),
                0..600,
            ),
            start in 0usize..3,
            last in 0usize..6,
        ) {
            let start = match start {
                0 => 0,
                1 => row_end(&data, 0),
                _ => row_end(&data, row_end(&data, 0)),
            };
            let mut expected = Vec::new();
            let mut fields = Vec::new();
            let mut pos = start;
            while pos < data.len() {
                let end = scan_row(&data, pos, last, &mut fields);
                expected.push((pos..end, fields.clone()));
                pos = end;
            }
            let mut got = Vec::new();
            for_each_row(&data, start, last, &mut fields, |row, f| got.push((row, f.to_vec())));
            proptest::prop_assert_eq!(got, expected);
        }

        #[test]
        fn row_ends_are_the_first_and_last_rows_ends(
            data in proptest::collection::vec(
                proptest::sample::select(b"ab,\"\n".to_vec()),
                0..600,
            ),
            in_quotes in proptest::bool::ANY,
        ) {
            let mut quoted = in_quotes;
            let mut ends = Vec::new();
            for (i, &b) in data.iter().enumerate() {
                match b {
                    b'"' => quoted = !quoted,
                    b'\n' if !quoted => ends.push(i + 1),
                    _ => {}
                }
            }
            let expected = ends.first().copied().zip(ends.last().copied());
            proptest::prop_assert_eq!(row_ends(&data, in_quotes), (expected, quoted));
        }
    }
}
