//! How Zeek reads the framing headers of an HTTP entity (`HTTP_Entity::SubmitHeader` in
//! src/analyzer/protocol/http/HTTP.cc): the value token of MIME (`MIME_get_token`), numbers as
//! `util::atoi_n` reads them, and the Content-Range checks with the weird each failure raises.

/// A weird name with its optional `addl` text.
pub type HeaderWeird = (&'static str, Option<String>);

/// Zeek's `MIME_get_token` over a header value: white space and comments are skipped, as is any
/// other character that cannot start a token; the token is the run of token characters that
/// follows. Returns the token and the rest of the value after it (`get_value_after_token`).
pub fn value_token(value: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut i = 0;
    while i < value.len() {
        if is_token_char(value[i]) {
            let end = value[i..]
                .iter()
                .position(|c| !is_token_char(*c))
                .map_or(value.len(), |n| i + n);
            return Some((&value[i..end], &value[end..]));
        }
        i += skip_comment(&value[i..]).max(1);
    }
    None
}

/// `MIME_Entity::ParseContentTypeField`: whether a Content-Type names a `message/*` type
/// (`MIME_get_slash_token_pair`); `None` when it has no type/subtype pair, which leaves the
/// entity's type as it was.
pub fn is_message_type(value: &[u8]) -> Option<bool> {
    let (ty, rest) = value_token(value)?;
    let rest = rest.trim_ascii_start().strip_prefix(b"/")?;
    value_token(rest)?;
    Some(ty.eq_ignore_ascii_case(b"message"))
}

/// RFC 2045's tspecials, as `MIME_is_tspecial`.
fn is_tspecial(c: u8) -> bool {
    b"()<>@,;:\\\"/[]?=".contains(&c)
}

fn is_token_char(c: u8) -> bool {
    (33..=126).contains(&c) && !is_tspecial(c)
}

/// Length of a parenthesised comment at the start of `s` (0 if none starts there).
fn skip_comment(s: &[u8]) -> usize {
    if s.first() != Some(&b'(') {
        return 0;
    }
    let mut depth = 0usize;
    for (i, c) in s.iter().enumerate() {
        match c {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    s.len()
}

/// `util::atoi_n` in base 10: an optional minus sign, then digits up to the first other byte;
/// `None` without a digit. Overflow wraps, as in Zeek's signed 64-bit arithmetic.
pub fn atoi(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    let n = digits.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 {
        return None;
    }
    let v = digits[..n].iter().fold(0i64, |acc, c| {
        acc.wrapping_mul(10).wrapping_add(i64::from(c - b'0'))
    });
    Some(if neg { v.wrapping_neg() } else { v })
}

/// A 206 reply's valid Content-Range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    /// The file offset of the range's first byte.
    pub first: u64,
    /// Bytes in the range (`last - first + 1`).
    pub len: u64,
    /// The whole file's length, when the header names one (`*` or a bad number do not).
    pub instance: Option<u64>,
}

/// Zeek's reading of a Content-Range value: `Err` with the weird for a value it rejects. A bad
/// instance length still gives a range, with its weird beside it.
pub fn content_range(value: &[u8]) -> Result<(ContentRange, Option<HeaderWeird>), HeaderWeird> {
    let (unit, rest) = value_token(value).unwrap_or((b"", value));
    if unit != b"bytes" {
        return Err(("HTTP_content_range_unknown_byte_unit", None));
    }
    let range: Vec<u8> = rest.iter().copied().filter(|c| *c != b' ').collect();
    let text = || Some(String::from_utf8_lossy(&range).into_owned());
    let Some(slash) = range.iter().position(|c| *c == b'/') else {
        return Err(("HTTP_content_range_cannot_parse", None));
    };
    let (spec, instance) = (&range[..slash], &range[slash + 1..]);
    let Some(dash) = spec.iter().position(|c| *c == b'-') else {
        return Err(("HTTP_content_range_cannot_parse", None));
    };
    let (Some(first), Some(last)) = (atoi(&spec[..dash]), atoi(&spec[dash + 1..])) else {
        return Err(("HTTP_content_range_cannot_parse", text()));
    };
    if first < 0 || last < 0 {
        return Err(("HTTP_content_range_invalid", text()));
    }
    if last < first {
        return Err(("HTTP_non_positive_content_range", text()));
    }
    if last - first > i64::MAX - 1 {
        return Err(("HTTP_content_range_overflow", text()));
    }
    let len = (last - first + 1) as u64;
    let first = first as u64;
    if instance == b"*" {
        return Ok((
            ContentRange {
                first,
                len,
                instance: None,
            },
            None,
        ));
    }
    match atoi(instance) {
        Some(n) => {
            let instance = u64::try_from(n).ok().filter(|n| *n > 0);
            Ok((
                ContentRange {
                    first,
                    len,
                    instance,
                },
                None,
            ))
        }
        None => Ok((
            ContentRange {
                first,
                len,
                instance: None,
            },
            Some(("HTTP_content_range_invalid_instance", text())),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_token_as_mime_get_token() {
        assert_eq!(
            value_token(b"chunked, identity"),
            Some((&b"chunked"[..], &b", identity"[..]))
        );
        assert_eq!(value_token(b" (c) ,gzip"), Some((&b"gzip"[..], &b""[..])));
        assert_eq!(value_token(b" ,;"), None);
    }

    #[test]
    fn atoi_as_zeeks_atoi_n() {
        assert_eq!(atoi(b"0050"), Some(50));
        assert_eq!(atoi(b"-5"), Some(-5));
        assert_eq!(atoi(b"12ab"), Some(12));
        assert_eq!(atoi(b"ab"), None);
        assert_eq!(atoi(b""), None);
    }

    /// The Content-Range branch of `HTTP_Entity::SubmitHeader`.
    #[test]
    fn content_ranges_as_http_entity_submit_header() {
        let ok = |first, len, instance| {
            Ok((
                ContentRange {
                    first,
                    len,
                    instance,
                },
                None,
            ))
        };
        assert_eq!(content_range(b"bytes 0-499/1234"), ok(0, 500, Some(1234)));
        assert_eq!(content_range(b"bytes 500-999/*"), ok(500, 500, None));
        let weird = |name, addl: Option<&str>| Err((name, addl.map(String::from)));
        assert_eq!(
            content_range(b"bytes foo-bar/baz"),
            weird("HTTP_content_range_cannot_parse", Some("foo-bar/baz"))
        );
        assert_eq!(
            content_range(b"bytes 0--5/*"),
            weird("HTTP_content_range_invalid", Some("0--5/*"))
        );
        assert_eq!(
            content_range(b"bytes 10-5/*"),
            weird("HTTP_non_positive_content_range", Some("10-5/*"))
        );
        assert_eq!(
            content_range(b"bytes 0-9223372036854775807/9223372036854775808"),
            weird(
                "HTTP_content_range_overflow",
                Some("0-9223372036854775807/9223372036854775808")
            )
        );
        assert_eq!(
            content_range(b"bytes 0-4"),
            weird("HTTP_content_range_cannot_parse", None)
        );
        assert_eq!(
            content_range(b"items 0-4/5"),
            weird("HTTP_content_range_unknown_byte_unit", None)
        );
        assert_eq!(
            content_range(b"bytes 0-4/x"),
            Ok((
                ContentRange {
                    first: 0,
                    len: 5,
                    instance: None
                },
                Some((
                    "HTTP_content_range_invalid_instance",
                    Some("0-4/x".to_string())
                ))
            ))
        );
    }
}
