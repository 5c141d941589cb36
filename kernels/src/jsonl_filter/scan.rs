// SPDX-License-Identifier: Apache-2.0
//! Finding a top-level field's raw value in one JSON object line, without decoding it.
//!
//! This is the specification of what `jsonl_filter.cl` does, step for step, on well-formed and
//! malformed lines alike; keep the two in lockstep. It is a scanner, not a validator: it reads
//! the object's members in order and stops at the first member named `field`. What it checks
//! is exactly what it needs to skip members correctly:
//!
//! - the line (leading whitespace skipped) must start with `{`;
//! - a member is a `"key"`, optional whitespace, `:`, optional whitespace, then a value:
//!   a string (its raw text is between the quotes, `\` escapes the next byte), an object or
//!   array (skipped by depth, strings inside skipped whole; its raw text runs from the opening
//!   to the matching closing bracket, inclusive), or any other token (up to whitespace, `,` or
//!   `}`; it must be non-empty);
//! - members are separated by `,`; a `}` where a member or separator is expected ends the
//!   object.
//!
//! Anything else before the field is found (a missing `:`, an unterminated string, a line
//! that ends early) means "no such field". Keys are compared raw, escapes not decoded.
//! Whitespace is space, tab and carriage return (lines never hold `\n`).

/// Whether `b` is whitespace between JSON tokens.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r')
}

/// The first offset at or after `i` that is not whitespace (or the line's length).
fn skip_space(line: &[u8], mut i: usize) -> usize {
    while i < line.len() && is_space(line[i]) {
        i += 1;
    }
    i
}

/// The offset of the `"` closing a string whose text starts at `i`.
fn string_end(line: &[u8], mut i: usize) -> Option<usize> {
    while i < line.len() {
        match line[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// The raw text of the value starting at `i` (not whitespace) and the offset just past it.
fn value_span(line: &[u8], i: usize) -> Option<(usize, usize, usize)> {
    match *line.get(i)? {
        b'"' => {
            let end = string_end(line, i + 1)?;
            Some((i + 1, end, end + 1))
        }
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut k = i;
            while k < line.len() {
                match line[k] {
                    b'"' => {
                        k = string_end(line, k + 1)?;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some((i, k + 1, k + 1));
                        }
                    }
                    _ => {}
                }
                k += 1;
            }
            None
        }
        _ => {
            let mut k = i;
            while k < line.len() && !is_space(line[k]) && line[k] != b',' && line[k] != b'}' {
                k += 1;
            }
            (k > i).then_some((i, k, k))
        }
    }
}

/// The raw value of the top-level member `field` of the object on `line` (no `\n`), or
/// `None` when the line is not an object holding that member (see the module docs).
pub(crate) fn field_value<'a>(line: &'a [u8], field: &[u8]) -> Option<&'a [u8]> {
    let mut i = skip_space(line, 0);
    if line.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_space(line, i);
        if line.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(line, i + 1)?;
        let key = &line[i + 1..key_end];
        i = skip_space(line, key_end + 1);
        if line.get(i) != Some(&b':') {
            return None;
        }
        i = skip_space(line, i + 1);
        let (start, end, next) = value_span(line, i)?;
        if key == field {
            return Some(&line[start..end]);
        }
        i = skip_space(line, next);
        if line.get(i) != Some(&b',') {
            return None;
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value<'a>(line: &'a str, field: &str) -> Option<&'a str> {
        field_value(line.as_bytes(), field.as_bytes())
            .map(|v| std::str::from_utf8(v).expect("utf-8"))
    }

    #[test]
    fn strings_give_their_raw_text() {
        assert_eq!(value(r#"{"a":"x\"y","b":1}"#, "a"), Some(r#"x\"y"#));
        assert_eq!(value(r#" { "b" : "" } "#, "b"), Some(""));
    }

    #[test]
    fn other_values_give_the_token_as_written() {
        let line = r#"{"n": -1.5e3 , "t":true,"z":null,"o":{"k":[1,"]}"]},"arr":[{"x":1}]}"#;
        assert_eq!(value(line, "n"), Some("-1.5e3"));
        assert_eq!(value(line, "t"), Some("true"));
        assert_eq!(value(line, "z"), Some("null"));
        assert_eq!(value(line, "o"), Some(r#"{"k":[1,"]}"]}"#));
        assert_eq!(value(line, "arr"), Some(r#"[{"x":1}]"#));
    }

    #[test]
    fn nested_keys_are_not_top_level() {
        let line = r#"{"o":{"k":1},"s":"\"k\":2","k":3}"#;
        assert_eq!(value(line, "k"), Some("3"));
        assert_eq!(value(r#"{"o":{"k":1}}"#, "k"), None);
        assert_eq!(value(r#"{"s":"{\"k\":1}"}"#, "k"), None);
    }

    #[test]
    fn the_first_duplicate_wins() {
        assert_eq!(value(r#"{"a":1,"a":2}"#, "a"), Some("1"));
    }

    #[test]
    fn non_objects_and_malformed_members_have_no_field() {
        for line in [
            "",
            "[1]",
            r#""a""#,
            r#"{"a" 1}"#,
            r#"{"a":}"#,
            r#"{"a":"unterminated}"#,
            r#"{"x":1 "a":2}"#,
            r#"{"x":[1,"a":2}"#,
            r#"{a:1}"#,
        ] {
            assert_eq!(value(line, "a"), None, "{line}");
        }
    }

    #[test]
    fn a_malformed_tail_after_the_field_does_not_matter() {
        assert_eq!(value(r#"{"a":1,"#, "a"), Some("1"));
        assert_eq!(value(r#"{"a":1"#, "a"), Some("1"));
    }
}
