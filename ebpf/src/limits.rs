// SPDX-License-Identifier: Apache-2.0
//! The limits a device program loads and runs under.

/// Sizes a program may have and what one call may spend.
///
/// The instruction budget of a call is `budget_base + budget_per_byte * chunk length` (the
/// final call gets `budget_base`): a program that does a bounded amount of work per byte of
/// input never meets it, and one that loops forever stops there with an error naming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest ELF object accepted, in bytes.
    pub max_object_bytes: usize,
    /// Most instruction slots in one section.
    pub max_instructions: usize,
    /// Instructions every call may execute whatever its chunk's length.
    pub budget_base: u64,
    /// Further instructions per byte of the chunk.
    pub budget_per_byte: u64,
    /// Size of the job's state area (`ctx->state_len`).
    pub state_bytes: usize,
    /// Most output bytes one call may emit.
    pub max_output_per_call: usize,
}

impl Limits {
    /// The instruction budget of a call on a chunk of `chunk_len` bytes.
    pub fn budget(&self, chunk_len: usize) -> u64 {
        let len = u64::try_from(chunk_len).unwrap_or(u64::MAX);
        self.budget_base
            .saturating_add(self.budget_per_byte.saturating_mul(len))
    }
}

impl Default for Limits {
    /// 1 MiB objects, 64 Ki instructions per section, a budget of 1 M instructions plus 512 per
    /// byte, 64 KiB of state and 256 MiB of output per call.
    fn default() -> Self {
        Self {
            max_object_bytes: 1 << 20,
            max_instructions: 1 << 16,
            budget_base: 1_000_000,
            budget_per_byte: 512,
            state_bytes: 64 << 10,
            max_output_per_call: 256 << 20,
        }
    }
}
