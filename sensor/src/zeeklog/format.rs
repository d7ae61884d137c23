//! Rendering of values as Zeek's ASCII (TSV) writer and its JSON writer print them.

use std::fmt::Write as _;

use super::{FieldType, Value};

/// Zeek's unset marker.
pub const UNSET: &str = "-";
/// Zeek's empty-field marker (empty string, empty set or vector).
pub const EMPTY: &str = "(empty)";

/// Writes one TSV value, escaped as Zeek's ASCII writer does.
pub fn tsv_value(out: &mut String, ty: FieldType, value: &Value) {
    match value {
        Value::Unset => out.push_str(UNSET),
        Value::List(items) if items.is_empty() => out.push_str(EMPTY),
        Value::List(items) => {
            let element = element_type(ty);
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                tsv_scalar(out, element, item, true);
            }
        }
        other => tsv_scalar(out, ty, other, false),
    }
}

fn element_type(ty: FieldType) -> FieldType {
    match ty {
        FieldType::SetString | FieldType::VectorString => FieldType::String,
        FieldType::SetEnum => FieldType::Enum,
        FieldType::VectorCount => FieldType::Count,
        FieldType::VectorInterval => FieldType::Interval,
        FieldType::VectorAddr => FieldType::Addr,
        other => other,
    }
}

fn tsv_scalar(out: &mut String, ty: FieldType, value: &Value, in_set: bool) {
    match value {
        Value::Unset => out.push_str(UNSET),
        Value::Time(t) => {
            let _ = write!(out, "{:.6}", t.0);
        }
        Value::Interval(v) => {
            let _ = write!(out, "{v:.6}");
        }
        Value::Double(v) => {
            if matches!(ty, FieldType::Time | FieldType::Interval) {
                let _ = write!(out, "{v:.6}");
            } else {
                let _ = write!(out, "{v}");
            }
        }
        Value::Str(s) => tsv_string(out, s.as_bytes(), in_set),
        Value::Bytes(b) => tsv_string(out, b, in_set),
        Value::Enum(s) => tsv_string(out, s.as_bytes(), in_set),
        Value::Addr(a) => {
            let _ = write!(out, "{a}");
        }
        Value::Port(p) => {
            let _ = write!(out, "{p}");
        }
        Value::Count(c) => {
            let _ = write!(out, "{c}");
        }
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Bool(b) => out.push(if *b { 'T' } else { 'F' }),
        Value::List(items) => {
            // Nested containers do not occur in Zeek logs; flatten defensively.
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                tsv_scalar(out, element_type(ty), item, true);
            }
        }
    }
}

/// Escapes a string value: separators, backslash, reserved markers and non-printable bytes.
fn tsv_string(out: &mut String, bytes: &[u8], in_set: bool) {
    if bytes.is_empty() {
        out.push_str(EMPTY);
        return;
    }
    if bytes == UNSET.as_bytes() {
        out.push_str("\\x2d");
        return;
    }
    if bytes == EMPTY.as_bytes() {
        out.push_str("\\x28empty)");
        return;
    }
    match std::str::from_utf8(bytes) {
        Ok(text) if printable_utf8(text) => {
            for c in text.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\t' => out.push_str("\\x09"),
                    ',' if in_set => out.push_str("\\x2c"),
                    c => out.push(c),
                }
            }
        }
        _ => {
            for &b in bytes {
                match b {
                    b'\\' => out.push_str("\\\\"),
                    b',' if in_set => out.push_str("\\x2c"),
                    0x20..=0x7e => out.push(b as char),
                    _ => {
                        let _ = write!(out, "\\x{b:02x}");
                    }
                }
            }
        }
    }
}

/// Zeek's "acceptable UTF-8": no control, private-use or non-character code points (a tab is
/// escaped on its own).
fn printable_utf8(text: &str) -> bool {
    text.chars().all(|c| {
        let c = c as u32;
        !(c < 0x20 && c != 0x09
            || (0x7f..=0x9f).contains(&c)
            || (0xe000..=0xf8ff).contains(&c)
            || (0xfff0..=0xffff).contains(&c))
    })
}

/// Writes one JSON value (Zeek's JSON formatter, `JSON::TS_EPOCH`).
pub fn json_value(out: &mut String, value: &Value) {
    match value {
        Value::Unset => out.push_str("null"),
        Value::Time(t) => json_double(out, t.0),
        Value::Interval(v) | Value::Double(v) => json_double(out, *v),
        Value::Str(s) => json_string(out, s.as_bytes()),
        Value::Bytes(b) => json_string(out, b),
        Value::Enum(s) => json_string(out, s.as_bytes()),
        Value::Addr(a) => {
            let _ = write!(out, "\"{a}\"");
        }
        Value::Port(p) => {
            let _ = write!(out, "{p}");
        }
        Value::Count(c) => {
            let _ = write!(out, "{c}");
        }
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_value(out, item);
            }
            out.push(']');
        }
    }
}

fn json_double(out: &mut String, v: f64) {
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else {
        out.push_str("null");
    }
}

/// Valid UTF-8 passes; other control bytes and invalid bytes become the text `\xNN`.
fn json_string(out: &mut String, bytes: &[u8]) {
    out.push('"');
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                json_str_chars(out, s);
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                // `good` is valid UTF-8 by construction of `valid_up_to`.
                json_str_chars(out, std::str::from_utf8(good).unwrap_or_default());
                let bad_len = e.error_len().unwrap_or(bad.len()).max(1).min(bad.len());
                for b in &bad[..bad_len] {
                    let _ = write!(out, "\\\\x{b:02x}");
                }
                rest = &bad[bad_len..];
            }
        }
    }
    out.push('"');
}

fn json_str_chars(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tsv(ty: FieldType, v: Value) -> String {
        let mut s = String::new();
        tsv_value(&mut s, ty, &v);
        s
    }

    #[test]
    fn reserved_and_empty_values() {
        assert_eq!(tsv(FieldType::String, Value::Str("-".into())), "\\x2d");
        assert_eq!(
            tsv(FieldType::String, Value::Str("(empty)".into())),
            "\\x28empty)"
        );
        assert_eq!(tsv(FieldType::String, Value::Str(String::new())), "(empty)");
        assert_eq!(tsv(FieldType::SetString, Value::List(vec![])), "(empty)");
        assert_eq!(tsv(FieldType::String, Value::Unset), "-");
    }

    #[test]
    fn escapes_separators_and_bytes() {
        assert_eq!(
            tsv(FieldType::String, Value::Str("a\tb\\c".into())),
            "a\\x09b\\\\c"
        );
        assert_eq!(
            tsv(
                FieldType::SetString,
                Value::List(vec![Value::Str(",".into()), Value::Str("CC".into())])
            ),
            "\\x2c,CC"
        );
        assert_eq!(
            tsv(FieldType::String, Value::Bytes(b"uurimisr\xfchma".to_vec())),
            "uurimisr\\xfchma"
        );
        assert_eq!(
            tsv(FieldType::String, Value::Str("caf\u{e9}".into())),
            "caf\u{e9}"
        );
        assert_eq!(
            tsv(FieldType::String, Value::Str("\u{e9}\u{7}".into())),
            "\\xc3\\xa9\\x07"
        );
    }

    #[test]
    fn times_have_six_decimals() {
        assert_eq!(
            tsv(FieldType::Interval, Value::Interval(3600.0)),
            "3600.000000"
        );
        assert_eq!(tsv(FieldType::Double, Value::Double(1.5)), "1.5");
    }

    #[test]
    fn json_escapes() {
        let mut s = String::new();
        json_value(&mut s, &Value::Bytes(b"a\x07\xc3\"".to_vec()));
        assert_eq!(s, "\"a\\\\x07\\\\xc3\\\"\"");
    }
}
