// SPDX-License-Identifier: Apache-2.0
//! Fixed-point decimals: the numbers of the CSV kernels, identical on every device.
//!
//! A number is `[+-]?DIGITS[.DIGITS]`: one to [`MAX_INT_DIGITS`] integer digits, and if a `.`
//! follows, at least one fractional digit; fractional digits past the sixth are truncated
//! (never rounded). Nothing else is a number: no spaces, no exponent, no `.5` or `5.`. The value
//! is an `i64` count of micro-units (millionths), so the largest magnitude,
//! `999999999999.999999`, fits with room to spare and no floating point is involved. The
//! OpenCL sources (`csv_common.cl`) implement exactly these rules.

/// Integer digits a number may have.
pub const MAX_INT_DIGITS: usize = 12;
/// Fractional digits kept; later ones are truncated.
pub const FRACTION_DIGITS: usize = 6;
/// Micro-units per unit.
pub const SCALE: i64 = 1_000_000;

/// `10^(6 - n)`: what `n` kept fractional digits are multiplied by to make micro-units.
const FRACTION_PAD: [i64; FRACTION_DIGITS + 1] = [1_000_000, 100_000, 10_000, 1_000, 100, 10, 1];

/// The value of `text` in micro-units, or `None` if it is not a number (see the module docs).
pub fn parse_decimal(text: &[u8]) -> Option<i64> {
    let (negative, rest) = match text.first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let int_len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if int_len == 0 || int_len > MAX_INT_DIGITS {
        return None;
    }
    let mut value = digits_value(&rest[..int_len]) * SCALE;
    let after = &rest[int_len..];
    if let Some((&b'.', fraction)) = after.split_first() {
        if fraction.is_empty() || !fraction.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let kept = &fraction[..fraction.len().min(FRACTION_DIGITS)];
        value += digits_value(kept) * FRACTION_PAD[kept.len()];
    } else if !after.is_empty() {
        return None;
    }
    Some(if negative { -value } else { value })
}

/// The value of at most 12 ASCII digits.
fn digits_value(digits: &[u8]) -> i64 {
    digits
        .iter()
        .fold(0_i64, |acc, d| acc * 10 + i64::from(d - b'0'))
}

/// `micros` printed as a decimal with exactly six fractional digits (`-1.500000`).
pub fn format_micros(micros: i128) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let magnitude = micros.unsigned_abs();
    let scale = u128::from(SCALE.unsigned_abs());
    format!("{sign}{}.{:06}", magnitude / scale, magnitude % scale)
}

/// `sum / count` rounded half away from zero (`count` > 0).
pub fn divide_rounded(sum: i128, count: u64) -> i128 {
    let count = i128::from(count.max(1));
    let quotient = sum / count;
    let remainder = sum % count;
    if remainder.unsigned_abs() * 2 >= count.unsigned_abs() {
        quotient + sum.signum()
    } else {
        quotient
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_to_micro_units() {
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(parse_decimal(b"12"), Some(12_000_000));
        assert_eq!(parse_decimal(b"-1.5"), Some(-1_500_000));
        assert_eq!(parse_decimal(b"+0.000001"), Some(1));
        assert_eq!(parse_decimal(b"007.25"), Some(7_250_000));
        assert_eq!(
            parse_decimal(b"999999999999.999999"),
            Some(999_999_999_999_999_999)
        );
    }

    #[test]
    fn fractional_digits_past_six_are_truncated() {
        assert_eq!(parse_decimal(b"1.2345678"), Some(1_234_567));
        assert_eq!(parse_decimal(b"-0.0000009"), Some(0));
        assert_eq!(parse_decimal(b"2.99999999999999999999"), Some(2_999_999));
    }

    #[test]
    fn anything_else_is_not_a_number() {
        for text in [
            &b""[..],
            b"-",
            b"+",
            b".5",
            b"5.",
            b"1.2.3",
            b" 1",
            b"1 ",
            b"1e3",
            b"0x10",
            b"--1",
            b"1,5",
            b"1234567890123",
            b"\xc2\xb11",
        ] {
            assert_eq!(
                parse_decimal(text),
                None,
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
        assert_eq!(
            parse_decimal(b"123456789012"),
            Some(123_456_789_012_000_000)
        );
    }

    #[test]
    fn micros_print_with_six_fractional_digits() {
        assert_eq!(format_micros(0), "0.000000");
        assert_eq!(format_micros(1), "0.000001");
        assert_eq!(format_micros(-1_500_000), "-1.500000");
        assert_eq!(format_micros(-1), "-0.000001");
        assert_eq!(
            format_micros(i128::from(i64::MAX) * 3),
            "27670116110564.327421"
        );
    }

    #[test]
    fn division_rounds_half_away_from_zero() {
        assert_eq!(divide_rounded(5, 2), 3);
        assert_eq!(divide_rounded(-5, 2), -3);
        assert_eq!(divide_rounded(4, 3), 1);
        assert_eq!(divide_rounded(-4, 3), -1);
        assert_eq!(divide_rounded(5, 3), 2);
        assert_eq!(divide_rounded(0, 7), 0);
    }
}
