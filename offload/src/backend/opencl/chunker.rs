// SPDX-License-Identifier: Apache-2.0
//! Cutting an input stream into record-aligned chunks of about the device chunk size.
//!
//! Devices like big chunks (one launch and one transfer amortised over megabytes), while a
//! stream may arrive in small pieces (request bodies) or huge ones (a whole object in memory).
//! A [`Rechunker`] cuts big pieces to the chunk size, lets a [`Framer`] align them to records,
//! and gathers small aligned chunks until they reach the chunk size. A chunk is at most the
//! chunk size plus one record (a record that straddles a cut is kept whole).

use bytes::{Bytes, BytesMut};
use quarry_kernels::{Framer, Framing, FramingError};

/// Re-cuts a stream into record-aligned chunks of about `chunk_size` bytes (see the module
/// docs).
#[derive(Debug)]
pub struct Rechunker {
    framer: Framer,
    chunk_size: usize,
    pending: BytesMut,
}

impl Rechunker {
    /// A rechunker for `framing`, refusing records longer than `max_record`.
    pub fn new(framing: Framing, chunk_size: usize, max_record: usize) -> Self {
        Self {
            framer: Framer::new(framing, max_record),
            chunk_size: chunk_size.max(1),
            pending: BytesMut::new(),
        }
    }

    /// Takes the next piece; returns the chunks it completes, in order.
    pub fn push(&mut self, piece: Bytes) -> Result<Vec<Bytes>, FramingError> {
        let mut out = Vec::new();
        let mut rest = piece;
        while !rest.is_empty() {
            let cut = rest.split_to(rest.len().min(self.chunk_size));
            for chunk in self.framer.push(cut)? {
                self.gather(chunk, &mut out);
            }
        }
        Ok(out)
    }

    /// Ends the stream: the remaining chunks (at most two).
    pub fn finish(&mut self) -> Vec<Bytes> {
        let mut out = Vec::new();
        if let Some(last) = self.framer.finish() {
            self.gather(last, &mut out);
        }
        if !self.pending.is_empty() {
            out.push(self.pending.split().freeze());
        }
        out
    }

    /// Bytes copied to join straddling records or gather small chunks.
    pub fn copied_bytes(&self) -> u64 {
        self.framer.copied_bytes()
    }

    fn gather(&mut self, chunk: Bytes, out: &mut Vec<Bytes>) {
        if self.pending.len() + chunk.len() > self.chunk_size && !self.pending.is_empty() {
            out.push(self.pending.split().freeze());
        }
        if self.pending.is_empty() && chunk.len() >= self.chunk_size / 2 {
            // Big enough to send as it is, without a copy.
            out.push(chunk);
        } else {
            self.pending.extend_from_slice(&chunk);
            if self.pending.len() >= self.chunk_size {
                out.push(self.pending.split().freeze());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rechunk(framing: Framing, input: &[u8], piece: usize, chunk: usize) -> Vec<Bytes> {
        let mut r = Rechunker::new(framing, chunk, 1 << 20);
        let mut out = Vec::new();
        for p in input.chunks(piece.max(1)) {
            out.extend(r.push(Bytes::copy_from_slice(p)).expect("within limit"));
        }
        out.extend(r.finish());
        out
    }

    #[test]
    fn small_pieces_are_gathered_to_the_chunk_size() {
        let input = b"ab\n".repeat(100);
        let chunks = rechunk(Framing::Lines, &input, 1, 30);
        assert!(chunks.len() <= 11, "{} chunks", chunks.len());
        assert!(chunks.iter().all(|c| c.ends_with(b"\n")));
        assert_eq!(chunks.concat(), input);
    }

    #[test]
    fn big_pieces_are_cut_at_records() {
        let input = b"abcdefg\n".repeat(1000);
        let chunks = rechunk(Framing::Lines, &input, input.len(), 100);
        assert!(chunks.len() >= 70, "{} chunks", chunks.len());
        assert!(chunks.iter().all(|c| c.ends_with(b"\n") && c.len() <= 108));
        assert_eq!(chunks.concat(), input);
    }

    proptest! {
        #[test]
        fn chunks_are_whole_lines_and_keep_every_byte(
            input in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'x')], 0..2000),
            piece in 1usize..300,
            chunk in 1usize..500,
        ) {
            let chunks = rechunk(Framing::Lines, &input, piece, chunk);
            prop_assert_eq!(chunks.concat(), input);
            for c in chunks.iter().take(chunks.len().saturating_sub(1)) {
                prop_assert!(c.ends_with(b"\n"));
                prop_assert!(!c.is_empty());
            }
        }
    }
}
