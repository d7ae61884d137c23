//! The `origin@32473` structured-data element: where in which file a line came from.
//!
//! The shipper names each file incarnation with an opaque 64-bit id and sends the byte offset of
//! the line's first byte, so the aggregator can drop duplicates after a RELP resend.

use crate::digits::{hex16, Decimal};

/// SD-ID of the element (32473 is the documentation enterprise number of RFC 5612).
pub const SD_ID: &str = "origin@32473";

/// The file incarnation and byte offset a line was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Origin {
    pub file: u64,
    pub offset: u64,
}

impl Origin {
    /// Appends `[origin@32473 file="<16 hex digits>" off="<decimal>"]`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        out.extend_from_slice(SD_ID.as_bytes());
        out.extend_from_slice(b" file=\"");
        out.extend_from_slice(&hex16(self.file));
        out.extend_from_slice(b"\" off=\"");
        out.extend_from_slice(Decimal::new(self.offset).as_bytes());
        out.extend_from_slice(b"\"]");
    }

    /// The element exactly as [`Origin::encode`] writes it, at the start of `input`: the origin
    /// and the element's length. The fast path for what the shipper sends.
    pub fn parse_encoded(input: &[u8]) -> Option<(Origin, usize)> {
        let rest = input.strip_prefix(b"[origin@32473 file=\"")?;
        let (hex, rest) = rest.split_at_checked(16)?;
        let rest = rest.strip_prefix(b"\" off=\"")?;
        let digits = rest
            .iter()
            .take(21)
            .take_while(|b| b.is_ascii_digit())
            .count();
        let (decimal, rest) = rest.split_at(digits);
        let after = rest.strip_prefix(b"\"]")?;
        let origin = Origin {
            file: parse_number(hex, 16).ok()?,
            offset: parse_number(decimal, 10).ok()?,
        };
        Some((origin, input.len() - after.len()))
    }

    /// Reads the origin element out of a 5424 STRUCTURED-DATA field (`-` or one or more
    /// elements). `Ok(None)` when there is no origin element; an error when the field is
    /// malformed or the origin element is.
    pub fn from_structured_data(sd: &[u8]) -> Result<Option<Origin>, SdError> {
        for element in elements(sd) {
            let element = element?;
            if element.id == SD_ID.as_bytes() {
                return Origin::from_params(&element).map(Some);
            }
        }
        Ok(None)
    }

    fn from_params(element: &SdElement<'_>) -> Result<Origin, SdError> {
        let mut file = None;
        let mut offset = None;
        for (name, value) in element.params() {
            match name {
                b"file" => file = Some(parse_number(value, 16)?),
                b"off" => offset = Some(parse_number(value, 10)?),
                _ => {}
            }
        }
        match (file, offset) {
            (Some(file), Some(offset)) => Ok(Origin { file, offset }),
            _ => Err(SdError::MissingOriginParam),
        }
    }
}

/// Digits in `radix` (10 or 16), at most as many as a `u64` needs, no sign.
fn parse_number(value: &[u8], radix: u32) -> Result<u64, SdError> {
    let max_digits = if radix == 16 { 16 } else { 20 };
    if value.is_empty() || value.len() > max_digits {
        return Err(SdError::BadOriginValue);
    }
    value.iter().try_fold(0u64, |n, &b| {
        let digit = char::from(b)
            .to_digit(radix)
            .ok_or(SdError::BadOriginValue)?;
        n.checked_mul(u64::from(radix))
            .and_then(|n| n.checked_add(u64::from(digit)))
            .ok_or(SdError::BadOriginValue)
    })
}

/// The structured-data field could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SdError {
    #[error("structured data is neither `-` nor `[...]` elements")]
    Malformed,
    #[error("origin element lacks the file or off parameter")]
    MissingOriginParam,
    #[error("origin element has a file or off value that is not a number")]
    BadOriginValue,
}

/// Appends `value` with `"`, `\` and `]` escaped by a backslash (RFC 5424 section 6.3.3).
pub fn escape_param_value(value: &[u8], out: &mut Vec<u8>) {
    for &b in value {
        if matches!(b, b'"' | b'\\' | b']') {
            out.push(b'\\');
        }
        out.push(b);
    }
}

/// Undoes [`escape_param_value`]; a backslash before any other byte is kept, as the RFC says.
pub fn unescape_param_value(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut bytes = value.iter().copied().peekable();
    while let Some(b) = bytes.next() {
        if b == b'\\' {
            if let Some(&next) = bytes.peek() {
                if matches!(next, b'"' | b'\\' | b']') {
                    out.push(next);
                    bytes.next();
                    continue;
                }
            }
        }
        out.push(b);
    }
    out
}

/// One SD-ELEMENT; parameter values stay escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdElement<'a> {
    pub id: &'a [u8],
    /// The validated ` name="value"` pairs.
    params: &'a [u8],
}

impl<'a> SdElement<'a> {
    /// `(name, escaped value)` pairs in order.
    pub fn params(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        let mut rest = self.params;
        std::iter::from_fn(move || {
            let (pair, after) = param(rest)?;
            rest = after;
            Some(pair)
        })
    }
}

/// The elements of a STRUCTURED-DATA field, each checked as it is reached.
pub fn elements(sd: &[u8]) -> impl Iterator<Item = Result<SdElement<'_>, SdError>> {
    let mut rest = if sd == b"-" { &[][..] } else { sd };
    let mut failed = sd.is_empty();
    std::iter::from_fn(move || {
        if failed {
            failed = false;
            return Some(Err(SdError::Malformed));
        }
        if rest.is_empty() {
            return None;
        }
        match element(rest) {
            Some((element, after)) => {
                rest = after;
                Some(Ok(element))
            }
            None => {
                rest = &[];
                Some(Err(SdError::Malformed))
            }
        }
    })
}

/// Length of the STRUCTURED-DATA field at the start of `input` (`-` or elements), ending
/// before the following space or end of input.
pub fn field_len(input: &[u8]) -> Option<usize> {
    if input.first() == Some(&b'-') {
        return Some(1);
    }
    let mut rest = input;
    let mut len = 0;
    while rest.first() == Some(&b'[') {
        let (_, after) = element(rest)?;
        len += rest.len() - after.len();
        rest = after;
    }
    (len > 0).then_some(len)
}

fn is_sd_name_byte(b: u8) -> bool {
    (33..=126).contains(&b) && !matches!(b, b'=' | b']' | b'"')
}

fn sd_name(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = input.iter().take_while(|&&b| is_sd_name_byte(b)).count();
    if len == 0 || len > 32 {
        return None;
    }
    Some(input.split_at(len))
}

fn element(input: &[u8]) -> Option<(SdElement<'_>, &[u8])> {
    let rest = input.strip_prefix(b"[")?;
    let (id, params) = sd_name(rest)?;
    let mut rest = params;
    loop {
        if let Some(after) = rest.strip_prefix(b"]") {
            let params = &params[..params.len() - rest.len()];
            return Some((SdElement { id, params }, after));
        }
        rest = param(rest)?.1;
    }
}

/// A parameter's name and escaped value.
type Param<'a> = (&'a [u8], &'a [u8]);

/// ` name="value"` at the start of `input`.
fn param(input: &[u8]) -> Option<(Param<'_>, &[u8])> {
    let rest = input.strip_prefix(b" ")?;
    let (name, after) = sd_name(rest)?;
    let rest = after.strip_prefix(b"=\"")?;
    let value_len = quoted_len(rest)?;
    Some(((name, &rest[..value_len]), &rest[value_len + 1..]))
}

/// Bytes up to the closing unescaped `"`.
fn quoted_len(input: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        i += memchr::memchr2(b'"', b'\\', input.get(i..)?)?;
        match input[i] {
            b'"' => return Some(i),
            _ => i += 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_exact_bytes() {
        let mut out = Vec::new();
        Origin {
            file: 0xdead_beef,
            offset: 1234,
        }
        .encode(&mut out);
        assert_eq!(
            out,
            b"[origin@32473 file=\"00000000deadbeef\" off=\"1234\"]"
        );
    }

    #[test]
    fn parses_back_among_other_elements() {
        let origin = Origin {
            file: u64::MAX,
            offset: u64::MAX,
        };
        let mut sd = b"[a@1 x=\"q\\\"]\"]".to_vec();
        origin.encode(&mut sd);
        assert_eq!(field_len(&sd), Some(sd.len()));
        assert_eq!(Origin::from_structured_data(&sd), Ok(Some(origin)));
        assert_eq!(Origin::from_structured_data(b"-"), Ok(None));
        let first = elements(&sd).next().unwrap().unwrap();
        assert_eq!(first.id, b"a@1");
        assert_eq!(
            first.params().collect::<Vec<_>>(),
            vec![(&b"x"[..], &b"q\\\"]"[..])]
        );
        assert_eq!(elements(b"").next(), Some(Err(SdError::Malformed)));
        assert_eq!(Origin::from_structured_data(b"[x"), Err(SdError::Malformed));
        assert_eq!(
            Origin::from_structured_data(b"[origin@32473 file=\"+1\" off=\"2\"]"),
            Err(SdError::BadOriginValue)
        );
        assert_eq!(
            Origin::from_structured_data(b"[origin@32473 off=\"2\"]"),
            Err(SdError::MissingOriginParam)
        );
    }

    #[test]
    fn fast_path_reads_what_encode_writes() {
        for origin in [
            Origin { file: 0, offset: 0 },
            Origin {
                file: u64::MAX,
                offset: u64::MAX,
            },
        ] {
            let mut sd = Vec::new();
            origin.encode(&mut sd);
            assert_eq!(Origin::parse_encoded(&sd), Some((origin, sd.len())));
            sd.extend_from_slice(b" body");
            assert_eq!(
                Origin::parse_encoded(&sd).map(|(_, len)| len),
                Some(sd.len() - 5)
            );
        }
        assert_eq!(
            Origin::parse_encoded(b"[origin@32473 file=\"00\" off=\"1\"]"),
            None
        );
        let too_big = b"[origin@32473 file=\"0000000000000000\" off=\"18446744073709551616\"]";
        assert_eq!(Origin::parse_encoded(too_big), None);
    }

    #[test]
    fn escapes_per_rfc5424() {
        let mut out = Vec::new();
        escape_param_value(br#"a"b\c]d\n"#, &mut out);
        assert_eq!(out, br#"a\"b\\c\]d\\n"#);
        assert_eq!(unescape_param_value(&out), br#"a"b\c]d\n"#);
        assert_eq!(unescape_param_value(br"a\nb"), br"a\nb");
    }
}
