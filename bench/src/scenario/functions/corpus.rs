// SPDX-License-Identifier: Apache-2.0
//! The text wordcount reads and the two native counts it is compared with.
//!
//! The text is generated from a fixed seed, so every run reads the same bytes: lines of 4 to 15
//! words drawn uniformly from a 64-word vocabulary that holds `banana` once and several words
//! sharing a prefix or suffix with it (`ban`, `banal`, `bandana`, `cabana`, `nab`), so a
//! byte-at-a-time matcher backtracks now and then. About 14% of the lines contain `banana`.
//!
//! Both native counts give the answer `examples/functions/wordcount.c` gives: the number of
//! lines that contain the word as a case-sensitive substring, the last line counting even
//! without a final newline, every line counting for an empty word.

use bytes::Bytes;
use memchr::memmem;

/// The words lines are made of.
const VOCABULARY: [&str; 64] = [
    "the", "a", "of", "and", "to", "in", "is", "it", "that", "was", "for", "on", "are", "with",
    "as", "at", "be", "this", "have", "from", "or", "one", "had", "by", "word", "but", "not",
    "what", "all", "were", "we", "when", "your", "can", "said", "there", "use", "an", "each",
    "which", "she", "do", "how", "their", "if", "will", "up", "other", "about", "out", "many",
    "then", "them", "these", "banana", "ban", "banal", "bandana", "cabana", "nab", "anna",
    "request", "error", "timeout",
];

/// `len` bytes of text from a fixed seed; the last line is cut where the length ends.
pub fn generate(len: usize) -> Vec<u8> {
    let mut text = Vec::with_capacity(len + 128);
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    while text.len() < len {
        let words = 4 + next() % 12;
        for i in 0..words {
            if i > 0 {
                text.push(b' ');
            }
            // The low 6 bits index the 64 words.
            let word = VOCABULARY[usize::from(next().to_le_bytes()[0] & 63)];
            text.extend_from_slice(word.as_bytes());
        }
        text.push(b'\n');
    }
    text.truncate(len);
    text
}

/// Lines of `text` containing `word`, with a SIMD substring search over the whole buffer: after
/// a hit, the search resumes at the next line, so each line counts once.
pub fn count_memmem(text: &[u8], word: &[u8]) -> u64 {
    let finder = memmem::Finder::new(word);
    let mut count = 0;
    let mut pos = 0;
    while pos < text.len() {
        let Some(hit) = finder.find(&text[pos..]) else {
            break;
        };
        count += 1;
        match memchr::memchr(b'\n', &text[pos + hit..]) {
            Some(newline) => pos += hit + newline + 1,
            None => break,
        }
    }
    count
}

/// Lines of the concatenated `chunks` containing `word`, byte by byte with a
/// Knuth-Morris-Pratt state carried across chunks: the algorithm of `wordcount.c`, compiled
/// natively.
pub fn count_bytewise(chunks: &[Bytes], word: &[u8]) -> u64 {
    let mut matcher = LineMatcher::new(word);
    for chunk in chunks {
        matcher.feed(chunk);
    }
    matcher.finish()
}

/// The streaming state of `wordcount.c`.
#[derive(Debug)]
struct LineMatcher<'w> {
    word: &'w [u8],
    /// `fail[i]`: length of the longest proper border of `word[..=i]`.
    fail: Vec<usize>,
    /// Bytes of the word matched so far on this line.
    state: usize,
    /// This line contains the word.
    found: bool,
    /// The current line has at least one byte.
    in_line: bool,
    count: u64,
}

impl<'w> LineMatcher<'w> {
    fn new(word: &'w [u8]) -> Self {
        let mut fail = vec![0; word.len()];
        let mut k = 0;
        for i in 1..word.len() {
            while k > 0 && word[i] != word[k] {
                k = fail[k - 1];
            }
            if word[i] == word[k] {
                k += 1;
            }
            fail[i] = k;
        }
        Self {
            word,
            fail,
            state: 0,
            found: word.is_empty(),
            in_line: false,
            count: 0,
        }
    }

    fn feed(&mut self, chunk: &[u8]) {
        let mut p = 0;
        while p < chunk.len() {
            if self.found {
                // The line already counts: skip to its end without matching.
                let Some(newline) = memchr::memchr(b'\n', &chunk[p..]) else {
                    self.in_line = true;
                    break;
                };
                self.count += 1;
                p += newline + 1;
                self.found = self.word.is_empty();
                self.state = 0;
                self.in_line = false;
                continue;
            }
            let c = chunk[p];
            p += 1;
            if c == b'\n' {
                self.state = 0;
                self.in_line = false;
                continue;
            }
            self.in_line = true;
            while self.state > 0 && c != self.word[self.state] {
                self.state = self.fail[self.state - 1];
            }
            if c == self.word[self.state] {
                self.state += 1;
                if self.state == self.word.len() {
                    self.found = true;
                }
            }
        }
    }

    /// The count, with a last line that has no final newline.
    fn finish(self) -> u64 {
        self.count + u64::from(self.found && self.in_line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A straightforward count to check both against.
    fn reference(text: &[u8], word: &[u8]) -> u64 {
        let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
        if text.ends_with(b"\n") || text.is_empty() {
            lines.pop();
        }
        lines
            .iter()
            .filter(|line| word.is_empty() || line.windows(word.len()).any(|w| w == word))
            .count() as u64
    }

    fn chunked(text: &[u8], size: usize) -> Vec<Bytes> {
        text.chunks(size).map(Bytes::copy_from_slice).collect()
    }

    #[test]
    fn counts_agree_on_edge_cases() {
        let cases: [&[u8]; 9] = [
            b"",
            b"banana",
            b"banana\n",
            b"bananana\nxx\n\nbanan\na banana a banana\n",
            b"bababanana\nbanbanana",
            b"\n\n\n",
            b"nab\nana\nbanan",
            b"banana\nbanana\nbanana",
            b"x\nbanana\n\n",
        ];
        for text in cases {
            for word in [&b"banana"[..], b"ana", b"a", b""] {
                let expected = reference(text, word);
                assert_eq!(count_memmem(text, word), expected, "{text:?} {word:?}");
                for size in [1, 2, 3, 64] {
                    assert_eq!(
                        count_bytewise(&chunked(text, size), word),
                        expected,
                        "{text:?} {word:?} chunks of {size}"
                    );
                }
            }
        }
    }

    #[test]
    fn generated_text_counts_agree_across_chunkings() {
        let text = generate(1 << 20);
        assert_eq!(text.len(), 1 << 20);
        assert_eq!(text, generate(1 << 20), "the text is deterministic");
        let expected = reference(&text, b"banana");
        let lines = text.iter().filter(|&&b| b == b'\n').count() as u64;
        assert!(
            expected > lines / 10 && expected < lines / 5,
            "{expected} of {lines}"
        );
        assert_eq!(count_memmem(&text, b"banana"), expected);
        for size in [4096, 65_537] {
            assert_eq!(count_bytewise(&chunked(&text, size), b"banana"), expected);
        }
    }
}
