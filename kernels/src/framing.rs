// SPDX-License-Identifier: Apache-2.0
//! Cutting a byte stream into chunks of whole records.
//!
//! A [`Framer`] takes the pieces a stream yields (pool buffers from the store, request body
//! chunks) and returns chunks that each hold whole records, never splitting one. The bulk of
//! each piece is passed on as a slice of the same buffer (no copy); only a record that straddles
//! two pieces is copied into one contiguous chunk, so the copying is bounded by the record
//! length, and counted ([`Framer::copied_bytes`]).

use bytes::{Bytes, BytesMut};

use crate::contract::Framing;

/// A record grew past the framer's limit without ending.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a record is longer than the limit of {limit} bytes (framing {framing}); raise the limit or fix the input"
)]
pub struct FramingError {
    /// The framing in use.
    pub framing: Framing,
    /// The limit in bytes.
    pub limit: usize,
}

/// Cuts a stream into chunks of whole records (see the module docs).
#[derive(Debug)]
pub struct Framer {
    framing: Framing,
    max_record: usize,
    /// The unfinished record: pieces not yet passed on, in order.
    carry: Vec<Bytes>,
    carry_len: usize,
    /// CSV only: whether the carried bytes hold an odd number of double quotes.
    in_quotes: bool,
    copied: u64,
}

impl Framer {
    /// A framer for `framing` that refuses records longer than `max_record` bytes.
    pub fn new(framing: Framing, max_record: usize) -> Self {
        Self {
            framing,
            max_record: max_record.max(1),
            carry: Vec::new(),
            carry_len: 0,
            in_quotes: false,
            copied: 0,
        }
    }

    /// The framing it cuts by.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Bytes copied so far to join records that straddled pieces.
    pub fn copied_bytes(&self) -> u64 {
        self.copied
    }

    /// Takes the next piece of the stream; returns the chunks of whole records it completes,
    /// in order (none while a record is still unfinished).
    pub fn push(&mut self, piece: Bytes) -> Result<Vec<Bytes>, FramingError> {
        if piece.is_empty() {
            return Ok(Vec::new());
        }
        let Some((first, last)) = self.boundaries(&piece) else {
            self.carry_len += piece.len();
            self.carry.push(piece);
            return self.check_carry().map(|()| Vec::new());
        };
        let mut chunks = Vec::with_capacity(3);
        let mut start = 0;
        if self.carry_len > 0 {
            // The straddling record: carried pieces plus the head of this one, made contiguous.
            let mut joined = BytesMut::with_capacity(self.carry_len + first);
            for carried in self.carry.drain(..) {
                joined.extend_from_slice(&carried);
            }
            joined.extend_from_slice(&piece[..first]);
            self.copied += joined.len() as u64;
            self.carry_len = 0;
            chunks.push(joined.freeze());
            start = first;
        }
        if last > start {
            chunks.push(piece.slice(start..last));
        }
        if last < piece.len() {
            self.carry_len = piece.len() - last;
            self.carry.push(piece.slice(last..));
            self.check_carry()?;
        }
        Ok(chunks)
    }

    /// Ends the stream: the last, unterminated record, if any.
    pub fn finish(&mut self) -> Option<Bytes> {
        self.carry_len = 0;
        self.in_quotes = false;
        match self.carry.len() {
            0 => None,
            1 => self.carry.pop(),
            _ => {
                let mut joined = BytesMut::new();
                for carried in self.carry.drain(..) {
                    joined.extend_from_slice(&carried);
                }
                self.copied += joined.len() as u64;
                Some(joined.freeze())
            }
        }
    }

    fn check_carry(&self) -> Result<(), FramingError> {
        if self.carry_len > self.max_record {
            Err(FramingError {
                framing: self.framing,
                limit: self.max_record,
            })
        } else {
            Ok(())
        }
    }

    /// The first and last record boundaries in `piece` (offsets just past a record's end),
    /// given the carried state; `None` when the piece ends no record. Updates the CSV quote
    /// state to the end of the piece.
    fn boundaries(&mut self, piece: &[u8]) -> Option<(usize, usize)> {
        match self.framing {
            Framing::Bytes => Some((0, piece.len())),
            Framing::Lines => {
                let first = memchr::memchr(b'\n', piece)? + 1;
                let last = memchr::memrchr(b'\n', piece).map_or(first, |i| i + 1);
                Some((first, last))
            }
            Framing::Records { size } => {
                let size = size.max(1);
                let head = (size - self.carry_len % size) % size;
                if head > piece.len() || (head == 0 && piece.len() < size && self.carry_len == 0) {
                    return None;
                }
                let last = head + (piece.len() - head) / size * size;
                let first = if self.carry_len > 0 {
                    head
                } else {
                    last.min(size)
                };
                if last == 0 {
                    return None;
                }
                Some((first, last))
            }
            Framing::CsvRows => {
                let (ends, quoted) = crate::csv::row_ends(piece, self.in_quotes);
                self.in_quotes = quoted;
                ends
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(framing: Framing, pieces: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut framer = Framer::new(framing, 1 << 20);
        let mut out = Vec::new();
        for p in pieces {
            for c in framer
                .push(Bytes::copy_from_slice(p))
                .expect("record within limit")
            {
                out.push(c.to_vec());
            }
        }
        if let Some(rest) = framer.finish() {
            out.push(rest.to_vec());
        }
        out
    }

    #[test]
    fn lines_are_never_split() {
        let chunks = frame(Framing::Lines, &[b"ab\ncd", b"e\nf", b"g"]);
        assert_eq!(
            chunks,
            vec![b"ab\n".to_vec(), b"cde\n".to_vec(), b"fg".to_vec()]
        );
    }

    #[test]
    fn csv_newlines_inside_quotes_do_not_end_rows() {
        let chunks = frame(Framing::CsvRows, &[b"a,\"x\n", b"y\"\nb\n"]);
        assert_eq!(chunks, vec![b"a,\"x\ny\"\n".to_vec(), b"b\n".to_vec()]);
    }

    #[test]
    fn fixed_records_align_to_their_size() {
        let chunks = frame(Framing::Records { size: 4 }, &[b"abcdef", b"gh", b"ijklm"]);
        assert_eq!(
            chunks,
            vec![
                b"abcd".to_vec(),
                b"efgh".to_vec(),
                b"ijkl".to_vec(),
                b"m".to_vec()
            ]
        );
    }

    #[test]
    fn a_record_over_the_limit_is_refused() {
        let mut framer = Framer::new(Framing::Lines, 4);
        assert!(framer.push(Bytes::from_static(b"abc")).is_ok());
        let err = framer
            .push(Bytes::from_static(b"de"))
            .expect_err("over the limit");
        assert_eq!(err.limit, 4);
    }

    #[test]
    fn only_straddling_records_are_copied() {
        let mut framer = Framer::new(Framing::Lines, 1 << 20);
        let chunks = framer
            .push(Bytes::from_static(b"one\ntwo\nthr"))
            .expect("ok");
        assert_eq!(chunks.len(), 1);
        assert_eq!(framer.copied_bytes(), 0);
        framer.push(Bytes::from_static(b"ee\nfour\n")).expect("ok");
        assert_eq!(framer.copied_bytes(), "three\n".len() as u64);
    }
}
