// SPDX-License-Identifier: Apache-2.0
//! GF(2^8) by log/exp tables, for the device program: the field of `reed-solomon-erasure`'s
//! `galois_8` (generator 2, reducing polynomial x^8 + x^4 + x^3 + x^2 + 1, 0x11d), so a
//! product from these tables equals the crate's (a test checks all 65,536 products).

/// The reducing polynomial.
const POLYNOMIAL: u16 = 0x11d;
/// The log of 0 does not exist: this marks it (real logs are 0..=254).
pub(super) const LOG_ZERO: u8 = 255;

/// `log[x]` for x in 1..=255, and `exp[i] = 2^i` for i in 0..512 (twice the period, so that
/// `exp[log a + log b]` needs no reduction).
pub(super) struct Tables {
    pub(super) log: [u8; 256],
    pub(super) exp: [u8; 512],
}

impl Tables {
    pub(super) fn new() -> Self {
        let mut log = [LOG_ZERO; 256];
        let mut exp = [0; 512];
        let mut x: u16 = 1;
        for i in 0..255_u8 {
            let byte = u8::try_from(x).unwrap_or(0);
            exp[usize::from(i)] = byte;
            exp[usize::from(i) + 255] = byte;
            log[usize::from(byte)] = i;
            x <<= 1;
            if x & 0x100 != 0 {
                x ^= POLYNOMIAL;
            }
        }
        // Indexes 510 and 511 are never reached (254 + 254 = 508) but keep the period.
        exp[510] = exp[0];
        exp[511] = exp[1];
        Self { log, exp }
    }

    /// The log of `c`, or [`LOG_ZERO`] for 0.
    pub(super) fn log_of(&self, c: u8) -> u8 {
        self.log[usize::from(c)]
    }

    /// `a * b` in the field, as the device computes it.
    #[cfg(test)]
    pub(super) fn mul(&self, a: u8, b: u8) -> u8 {
        if a == 0 || b == 0 {
            return 0;
        }
        self.exp[usize::from(self.log[usize::from(a)]) + usize::from(self.log[usize::from(b)])]
    }
}
