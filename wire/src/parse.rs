//! Reading a syslog message (RFC 3164 or RFC 5424) off the wire for the aggregator.
//!
//! The header is scanned here, byte by byte and bounded, so that the body comes back exactly as
//! sent: `syslog_loose` trims the input (losing a Zeek line's trailing empty fields) and reads a
//! 3164 body that starts with `[` as structured data. `syslog_loose` still does what it is good
//! at: turning the header's timestamp into a date ([`Message::resolve_timestamp`]).

use chrono::{DateTime, Datelike, FixedOffset, Local};

use crate::origin::{self, SdError};
use crate::{Format, Origin, Pri};

/// A parsed message borrowing from the raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    pub format: Format,
    pub pri: Pri,
    /// The timestamp as sent (`Nov  2 11:15:59`, `2026-11-02T11:15:59.000001+00:00`).
    pub timestamp: Option<&'a str>,
    pub hostname: Option<&'a str>,
    /// The tag without `[pid]` and colon (3164) or the APP-NAME (5424).
    pub app_name: Option<&'a str>,
    pub procid: Option<&'a str>,
    pub msgid: Option<&'a str>,
    /// The raw STRUCTURED-DATA field of a 5424 message, `None` for `-` and for 3164.
    pub structured_data: Option<&'a [u8]>,
    pub origin: Option<Origin>,
    /// The message body, byte for byte, except for one trailing LF: rsyslog's
    /// `RSYSLOG_SyslogProtocol23Format` ends in `\n`, which lands inside octet-counted frames.
    pub body: &'a [u8],
    /// Everything before the body, for timestamp resolution.
    header: &'a [u8],
}

impl Message<'_> {
    /// The timestamp as a date. A 3164 timestamp has no year and no zone: the year is `now`'s,
    /// or the previous one for a December message received in January; the zone is local time.
    pub fn resolve_timestamp(&self, now: DateTime<Local>) -> Option<DateTime<FixedOffset>> {
        let header = std::str::from_utf8(self.header).ok()?;
        let resolve_year = |(month, ..): syslog_loose::IncompleteDate| {
            if now.month() == 1 && month == 12 {
                now.year() - 1
            } else {
                now.year()
            }
        };
        let variant = match self.format {
            Format::Rfc3164 => syslog_loose::Variant::RFC3164,
            Format::Rfc5424 => syslog_loose::Variant::RFC5424,
        };
        syslog_loose::parse_message_with_year_exact_tz(header, resolve_year, Some(Local), variant)
            .ok()?
            .timestamp
    }
}

/// Why a message could not be read; the caller still has the raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("message does not start with <PRI> (0 to 191)")]
    BadPri,
    #[error("unsupported syslog version {0}")]
    UnsupportedVersion(u32),
    #[error("timestamp is not RFC 3164 (Mmm dd hh:mm:ss) or RFC 3339")]
    BadTimestamp,
    #[error("message ends inside the header")]
    TruncatedHeader,
    #[error("RFC 5424 {field} field is empty, too long or not printable ASCII")]
    BadField { field: &'static str },
    #[error("RFC 5424 structured data: {0}")]
    StructuredData(#[from] SdError),
}

/// Parses one message (without framing).
pub fn parse(raw: &[u8]) -> Result<Message<'_>, ParseError> {
    let (pri, rest) = parse_pri(raw)?;
    let after_pri = raw.len() - rest.len();
    match version(rest) {
        Some((1, header_len)) => parse_rfc5424(raw, pri, after_pri + header_len),
        Some((v, _)) => Err(ParseError::UnsupportedVersion(v)),
        None => parse_rfc3164(raw, pri, after_pri),
    }
}

fn parse_pri(raw: &[u8]) -> Result<(Pri, &[u8]), ParseError> {
    let rest = raw.strip_prefix(b"<").ok_or(ParseError::BadPri)?;
    let digits = rest
        .iter()
        .take(4)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if !(1..=3).contains(&digits) || rest.get(digits) != Some(&b'>') {
        return Err(ParseError::BadPri);
    }
    let value = rest[..digits]
        .iter()
        .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    let pri = u8::try_from(value)
        .ok()
        .and_then(Pri::from_value)
        .ok_or(ParseError::BadPri)?;
    Ok((pri, &rest[digits + 1..]))
}

/// `VERSION SP` of RFC 5424: 1 to 3 digits, the first not 0.
fn version(rest: &[u8]) -> Option<(u32, usize)> {
    let digits = rest
        .iter()
        .take(4)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if !(1..=3).contains(&digits) || rest[0] == b'0' || rest.get(digits) != Some(&b' ') {
        return None;
    }
    let v = rest[..digits]
        .iter()
        .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    Some((v, digits + 1))
}

/// Splits `input` at the next space: the token and the rest after the space.
fn token(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = input.iter().position(|&b| b == b' ')?;
    Some((&input[..i], &input[i + 1..]))
}

fn ascii(bytes: &[u8]) -> Option<&str> {
    bytes
        .is_ascii()
        .then(|| std::str::from_utf8(bytes).ok())
        .flatten()
}

/// A 5424 header field: 1 to `max` printable ASCII bytes, `-` meaning none.
fn field<'a>(
    input: &'a [u8],
    name: &'static str,
    max: usize,
) -> Result<(Option<&'a str>, &'a [u8]), ParseError> {
    let (value, rest) = token(input).ok_or(ParseError::TruncatedHeader)?;
    if value.is_empty() || value.len() > max || !value.iter().all(|b| (33..=126).contains(b)) {
        return Err(ParseError::BadField { field: name });
    }
    let value = ascii(value).ok_or(ParseError::BadField { field: name })?;
    Ok(((value != "-").then_some(value), rest))
}

fn parse_rfc5424(raw: &[u8], pri: Pri, start: usize) -> Result<Message<'_>, ParseError> {
    let rest = &raw[start..];
    let (timestamp, rest) = field(rest, "TIMESTAMP", 64)?;
    if timestamp.is_some_and(|ts| !looks_like_rfc3339(ts.as_bytes())) {
        return Err(ParseError::BadTimestamp);
    }
    let (hostname, rest) = field(rest, "HOSTNAME", 255)?;
    let (app_name, rest) = field(rest, "APP-NAME", 48)?;
    let (procid, rest) = field(rest, "PROCID", 128)?;
    let (msgid, rest) = field(rest, "MSGID", 32)?;
    let (sd_len, encoded_origin) = match Origin::parse_encoded(rest) {
        Some((origin, len)) if matches!(rest.get(len), None | Some(b' ')) => (len, Some(origin)),
        _ => (origin::field_len(rest).ok_or(SdError::Malformed)?, None),
    };
    let (sd, rest) = rest.split_at(sd_len);
    let body = match rest.split_first() {
        None => rest,
        Some((b' ', body)) => body,
        Some(_) => return Err(SdError::Malformed.into()),
    };
    let header_len = raw.len() - body.len();
    let body = without_trailing_lf(body);
    let structured_data = (sd != b"-").then_some(sd);
    let origin = match (encoded_origin, structured_data) {
        (Some(origin), _) => Some(origin),
        (None, Some(sd)) => Origin::from_structured_data(sd)?,
        (None, None) => None,
    };
    Ok(Message {
        format: Format::Rfc5424,
        pri,
        timestamp,
        hostname,
        app_name,
        procid,
        msgid,
        structured_data,
        origin,
        body,
        header: &raw[..header_len],
    })
}

fn looks_like_rfc3339(ts: &[u8]) -> bool {
    ts.len() >= 19
        && ts[..4].iter().all(u8::is_ascii_digit)
        && ts[4] == b'-'
        && ts[7] == b'-'
        && ts[10] == b'T'
}

/// `Mmm dd hh:mm:ss` or `Mmm dd yyyy hh:mm:ss` at the start of `input`; its length.
fn rfc3164_timestamp_len(input: &[u8]) -> Option<usize> {
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let month = input.get(..3)?;
    if !MONTHS.contains(&month) || input.get(3) != Some(&b' ') {
        return None;
    }
    let day = input.get(4..6)?;
    let day_ok = matches!(day, [b' ' | b'0'..=b'3', b'0'..=b'9']);
    let time_ok = |t: &[u8]| {
        matches!(t, [h1, h2, b':', m1, m2, b':', s1, s2]
            if [h1, h2, m1, m2, s1, s2].iter().all(|b| b.is_ascii_digit()))
    };
    if !day_ok || input.get(6) != Some(&b' ') {
        return None;
    }
    if input.get(7..15).is_some_and(time_ok) {
        return Some(15);
    }
    let year_ok = input
        .get(7..11)
        .is_some_and(|y| y.iter().all(u8::is_ascii_digit));
    (year_ok && input.get(11) == Some(&b' ') && input.get(12..20).is_some_and(time_ok))
        .then_some(20)
}

fn parse_rfc3164(raw: &[u8], pri: Pri, start: usize) -> Result<Message<'_>, ParseError> {
    let rest = &raw[start..];
    let ts_len = match rest.first() {
        Some(b) if b.is_ascii_digit() => match token(rest) {
            Some((ts, _)) if looks_like_rfc3339(ts) => ts.len(),
            _ => return Err(ParseError::BadTimestamp),
        },
        _ => rfc3164_timestamp_len(rest).ok_or(ParseError::BadTimestamp)?,
    };
    let timestamp = ascii(&rest[..ts_len]).ok_or(ParseError::BadTimestamp)?;
    let rest = rest[ts_len..]
        .strip_prefix(b" ")
        .ok_or(ParseError::TruncatedHeader)?;

    // HOSTNAME is absent when the first word is already the tag (`bro_conn:`, `sshd[1]:`); an
    // IPv6 address has colons too, but does not end with one.
    let (hostname, rest) = match token(rest) {
        Some((word, after))
            if !word.is_empty() && !word.ends_with(b":") && !word.contains(&b'[') =>
        {
            (Some(ascii(word).ok_or(ParseError::TruncatedHeader)?), after)
        }
        _ => (None, rest),
    };

    let (tag, body) = split_tag(rest);
    let header_len = raw.len() - body.len();
    let body = without_trailing_lf(body);
    let app_end = tag
        .iter()
        .position(|&b| b == b'[' || b == b':')
        .unwrap_or(tag.len());
    let app_name = ascii(&tag[..app_end]).filter(|a| !a.is_empty());
    let procid = tag[app_end..]
        .strip_prefix(b"[")
        .and_then(|p| p.iter().position(|&b| b == b']').map(|end| &p[..end]))
        .and_then(ascii);
    Ok(Message {
        format: Format::Rfc3164,
        pri,
        timestamp: Some(timestamp),
        hostname,
        app_name,
        procid,
        msgid: None,
        structured_data: None,
        origin: None,
        body,
        header: &raw[..header_len],
    })
}

fn without_trailing_lf(body: &[u8]) -> &[u8] {
    body.strip_suffix(b"\n").unwrap_or(body)
}

/// The tag ends after its first `:` or before the first space; one space after it belongs to
/// the framing (`sp-if-no-1st-sp`), not to the body.
fn split_tag(input: &[u8]) -> (&[u8], &[u8]) {
    let end = input.iter().position(|&b| b == b':' || b == b' ');
    let (tag, rest) = match end {
        Some(i) if input[i] == b':' => input.split_at(i + 1),
        Some(i) => input.split_at(i),
        None => (input, &[][..]),
    };
    (tag, rest.strip_prefix(b" ").unwrap_or(rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{write_message, Header};
    use crate::{Facility, Severity};
    use chrono::TimeZone;
    use proptest::prelude::*;

    const LOCAL7_INFO: Pri = Pri {
        facility: Facility::Local7,
        severity: Severity::Informational,
    };

    #[test]
    fn rsyslog_traditional_forward_format() {
        let raw = b"<190>Nov  2 11:15:59 sensor1 bro_ssl: 1.0\tCx\t[x]\t-\t\t";
        let m = parse(raw).unwrap();
        assert_eq!(m.format, Format::Rfc3164);
        assert_eq!(m.pri, LOCAL7_INFO);
        assert_eq!(m.timestamp, Some("Nov  2 11:15:59"));
        assert_eq!(m.hostname, Some("sensor1"));
        assert_eq!(m.app_name, Some("bro_ssl"));
        assert_eq!(m.procid, None);
        assert_eq!(m.body, b"1.0\tCx\t[x]\t-\t\t");
    }

    #[test]
    fn rfc3164_body_starting_with_bracket_is_not_structured_data() {
        let m = parse(b"<190>Nov 22 11:15:59 h bro_notice: [a b=\"c\"] rest ").unwrap();
        assert_eq!(m.body, b"[a b=\"c\"] rest ");
        assert_eq!(m.structured_data, None);
    }

    #[test]
    fn rfc3164_variants() {
        let m = parse(b"<13>Nov 22 11:15:59 bro_conn: x").unwrap();
        assert_eq!(
            (m.hostname, m.app_name, m.body),
            (None, Some("bro_conn"), &b"x"[..])
        );
        let m = parse(b"<13>Nov 22 11:15:59 2001:db8::1 bro_dns: x").unwrap();
        assert_eq!(
            (m.hostname, m.app_name),
            (Some("2001:db8::1"), Some("bro_dns"))
        );
        let m = parse(b"<13>Nov 22 11:15:59 host sshd[42]: x y").unwrap();
        assert_eq!(
            (m.hostname, m.app_name, m.procid),
            (Some("host"), Some("sshd"), Some("42"))
        );
        assert_eq!(m.body, b"x y");
        let m = parse(b"<13>2026-11-22T11:15:59.1+01:00 host notag line").unwrap();
        assert_eq!((m.app_name, m.body), (Some("notag"), &b"line"[..]));
        let m = parse(b"<13>Nov 22 2026 11:15:59 host t:").unwrap();
        assert_eq!(
            (m.timestamp, m.app_name, m.body),
            (Some("Nov 22 2026 11:15:59"), Some("t"), &b""[..])
        );
        assert_eq!(
            parse(b"<13>Foo 22 11:15:59 h t: x"),
            Err(ParseError::BadTimestamp)
        );
        assert_eq!(
            parse(b"<192>Nov 22 11:15:59 h t: x"),
            Err(ParseError::BadPri)
        );
        assert_eq!(parse(b"13>x"), Err(ParseError::BadPri));
    }

    #[test]
    fn non_utf8_body_is_kept() {
        let m = parse(b"<190>Nov 22 11:15:59 h t: \xff\xfe\x00\t").unwrap();
        assert_eq!(m.body, b"\xff\xfe\x00\t");
        let m = parse(b"<190>1 - h t - - - \xff\n\n").unwrap();
        assert_eq!(m.body, b"\xff\n");
    }

    #[test]
    fn rfc5424_with_origin() {
        let raw = b"<190>1 2026-11-22T11:15:59.004321+01:00 host bro_ssl - - \
            [origin@32473 file=\"00000000000000ab\" off=\"77\"] a\tb\t";
        let m = parse(raw).unwrap();
        assert_eq!(m.format, Format::Rfc5424);
        assert_eq!(m.timestamp, Some("2026-11-22T11:15:59.004321+01:00"));
        assert_eq!(
            (m.hostname, m.app_name, m.procid, m.msgid),
            (Some("host"), Some("bro_ssl"), None, None)
        );
        assert_eq!(
            m.origin,
            Some(Origin {
                file: 0xab,
                offset: 77
            })
        );
        assert_eq!(m.body, b"a\tb\t");
        let expected = FixedOffset::east_opt(3600)
            .unwrap()
            .with_ymd_and_hms(2026, 11, 22, 11, 15, 59)
            .unwrap()
            + chrono::Duration::microseconds(4321);
        assert_eq!(m.resolve_timestamp(Local::now()), Some(expected));
    }

    #[test]
    fn rfc5424_as_logger_sends_it() {
        let raw = b"<13>1 2026-11-22T12:40:01.123456+00:00 myhost root - - \
            [timeQuality tzKnown=\"1\" isSynced=\"0\"] hello [world]";
        let m = parse(raw).unwrap();
        assert_eq!(m.app_name, Some("root"));
        assert_eq!(
            m.structured_data,
            Some(&b"[timeQuality tzKnown=\"1\" isSynced=\"0\"]"[..])
        );
        assert_eq!(m.origin, None);
        assert_eq!(m.body, b"hello [world]");
        assert_eq!(parse(b"<13>1 - - - - - -").unwrap().body, b"");
        assert_eq!(
            parse(b"<13>2 - - - - - -"),
            Err(ParseError::UnsupportedVersion(2))
        );
        assert_eq!(parse(b"<13>1 - - - - -"), Err(ParseError::TruncatedHeader));
        assert_eq!(
            parse(b"<13>1 - - - - - [x"),
            Err(ParseError::StructuredData(SdError::Malformed))
        );
    }

    #[test]
    fn rfc3164_timestamp_resolves_to_local_time_and_year() {
        let m = parse(b"<190>Dec 31 23:59:59 h t: x").unwrap();
        let january = Local.with_ymd_and_hms(2027, 1, 1, 0, 0, 5).unwrap();
        let ts = m.resolve_timestamp(january).unwrap();
        assert_eq!((ts.year(), ts.month(), ts.day()), (2026, 12, 31));
    }

    fn header(tag: &str, origin: Option<Origin>) -> Header<'_> {
        Header {
            pri: LOCAL7_INFO,
            timestamp: FixedOffset::east_opt(0)
                .unwrap()
                .with_ymd_and_hms(2026, 11, 22, 11, 15, 59)
                .unwrap(),
            hostname: "sensor1",
            tag,
            origin,
        }
    }

    proptest! {
        #[test]
        fn encode_then_parse_round_trips(
            body in prop::collection::vec(any::<u8>(), 0..100),
            tag in "[a-z_]{1,20}:?",
            file in any::<u64>(),
            offset in any::<u64>(),
            rfc5424 in any::<bool>(),
        ) {
            let origin = Origin { file, offset };
            let mut raw = Vec::new();
            let format = if rfc5424 { Format::Rfc5424 } else { Format::Rfc3164 };
            write_message(&mut raw, format, &header(&tag, Some(origin)), &body);
            let m = parse(&raw).unwrap();
            prop_assert_eq!(m.pri, LOCAL7_INFO);
            prop_assert_eq!(m.hostname, Some("sensor1"));
            prop_assert_eq!(m.app_name, Some(tag.trim_end_matches(':')));
            let expected = without_trailing_lf(&body);
            if rfc5424 {
                prop_assert_eq!(m.origin, Some(origin));
                prop_assert_eq!(m.body, expected);
            } else {
                // rsyslog's sp-if-no-1st-sp: one leading space of the body is not kept.
                let expected = expected.strip_prefix(b" ").unwrap_or(expected);
                prop_assert_eq!(m.body, expected);
            }
        }

        /// syslog_loose is the reference for the header fields: where both read a message,
        /// they agree (the body is ours alone: syslog_loose trims it and takes a 3164 body's
        /// leading `[...]` as structured data).
        #[test]
        fn header_fields_agree_with_syslog_loose(
            body in "[ -~\t]{0,60}",
            tag in "[a-z_]{1,20}(\\[[1-9][0-9]{0,4}\\])?:",
            host in "[a-z0-9][a-z0-9.-]{0,19}",
            facility in 0u8..24,
            severity in 0u8..8,
            rfc5424 in any::<bool>(),
        ) {
            let pri = Pri::from_value(facility * 8 + severity).unwrap();
            let header = Header { pri, hostname: &host, ..header(&tag, Some(Origin { file: 7, offset: 9 })) };
            let format = if rfc5424 { Format::Rfc5424 } else { Format::Rfc3164 };
            let mut raw = Vec::new();
            write_message(&mut raw, format, &header, body.as_bytes());
            let ours = parse(&raw).unwrap();
            let text = std::str::from_utf8(&raw).unwrap();
            let theirs = syslog_loose::parse_message_with_year_exact(text, |_| 2026, syslog_loose::Variant::Either).unwrap();
            prop_assert_eq!(theirs.facility.map(|f| f as u8), Some(pri.facility.code()));
            prop_assert_eq!(theirs.severity.map(|s| s as u8), Some(pri.severity.code()));
            prop_assert_eq!(theirs.hostname, ours.hostname);
            prop_assert_eq!(theirs.appname, ours.app_name);
            prop_assert_eq!(theirs.procid.map(|p| p.to_string()), ours.procid.map(str::to_owned));
            prop_assert_eq!(theirs.msgid, ours.msgid);
            prop_assert_eq!(theirs.timestamp, ours.resolve_timestamp(Local::now()));
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(m) = parse(&data) {
                prop_assert!(without_trailing_lf(&data).ends_with(m.body));
                let _ = m.resolve_timestamp(Local::now());
            }
        }

        #[test]
        fn header_like_garbage_never_panics(
            s in "<[0-9]{1,3}>(1 )?[A-Za-z0-9 :.+-]{0,40}[ \\[\\]=\"a-z@]{0,30}"
        ) {
            if let Ok(m) = parse(s.as_bytes()) {
                prop_assert!(s.as_bytes().ends_with(m.body));
                let _ = m.resolve_timestamp(Local::now());
            }
        }
    }
}
