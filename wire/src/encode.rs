//! Writing syslog messages byte for byte as rsyslog's forwarding templates do.
//!
//! - [`Format::Rfc3164`] is `RSYSLOG_TraditionalForwardFormat`,
//!   `<%PRI%>%TIMESTAMP% %HOSTNAME% %syslogtag:1:32%%msg:::sp-if-no-1st-sp%%msg%`.
//! - [`Format::Rfc5424`] is `RSYSLOG_SyslogProtocol23Format`,
//!   `<%PRI%>1 %TIMESTAMP:::date-rfc3339% %HOSTNAME% %APP-NAME% %PROCID% %MSGID% %STRUCTURED-DATA% %msg%`.
//!   rsyslog's template ends in `\n`; that LF is the framing, written by [`write_frame`].
//!
//! The body is written verbatim: tabs stay tabs and bytes that are not UTF-8 pass through.

use chrono::{DateTime, Datelike, FixedOffset, Timelike};

use crate::digits::Decimal;
use crate::{Format, Framing, Origin, Pri};

/// rsyslog cuts the tag to this many bytes (`%syslogtag:1:32%`).
pub const MAX_TAG_LEN: usize = 32;

/// Everything about a message except its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    pub pri: Pri,
    /// The machine's local time, as rsyslog stamps imfile lines: `Local::now().fixed_offset()`.
    /// RFC 3164 shows it without zone; RFC 5424 with microseconds and the offset.
    pub timestamp: DateTime<FixedOffset>,
    pub hostname: &'a str,
    /// The syslog tag as configured for rsyslog imfile, usually with its colon: `bro_ssl:`.
    pub tag: &'a str,
    /// Only RFC 5424 carries it, as structured data.
    pub origin: Option<Origin>,
}

impl Header<'_> {
    /// The tag without its trailing colon, as RFC 5424 APP-NAME.
    pub fn app_name(&self) -> &str {
        app_name(self.tag)
    }
}

/// rsyslog's APP-NAME: the tag up to its first `:` or `[`.
pub fn app_name(tag: &str) -> &str {
    tag.split([':', '[']).next().unwrap_or(tag)
}

/// Appends one message (no framing) to `out`.
pub fn write_message(out: &mut Vec<u8>, format: Format, header: &Header<'_>, body: &[u8]) {
    write_with_stamp(out, format, header, Stamp::Render, body);
}

/// The header's timestamp: rendered now, or already rendered by an [`Encoder`].
#[derive(Clone, Copy)]
enum Stamp<'a> {
    Render,
    Rendered(&'a [u8]),
}

fn write_with_stamp(
    out: &mut Vec<u8>,
    format: Format,
    header: &Header<'_>,
    stamp: Stamp<'_>,
    body: &[u8],
) {
    match format {
        Format::Rfc3164 => write_rfc3164(out, header, stamp, body),
        Format::Rfc5424 => write_rfc5424(out, header, stamp, body),
    }
}

fn write_timestamp(out: &mut Vec<u8>, format: Format, ts: &DateTime<FixedOffset>) {
    match format {
        Format::Rfc3164 => write_rfc3164_timestamp(out, ts),
        Format::Rfc5424 => write_rfc3339_timestamp(out, ts),
    }
}

/// Writes messages in one format, rendering each distinct timestamp once (a shipper stamps a
/// whole batch with one time).
#[derive(Debug, Clone)]
pub struct Encoder {
    format: Format,
    /// `None` for datagrams: one message per UDP packet, no framing.
    framing: Option<Framing>,
    stamp: Option<(DateTime<FixedOffset>, Vec<u8>)>,
}

impl Encoder {
    pub fn new(format: Format, framing: Option<Framing>) -> Encoder {
        Encoder {
            format,
            framing,
            stamp: None,
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn framing(&self) -> Option<Framing> {
        self.framing
    }

    /// Appends one message with the framing, like [`write_framed`] (or [`write_message`]
    /// without framing).
    pub fn write(&mut self, out: &mut Vec<u8>, header: &Header<'_>, body: &[u8]) {
        let stale = self
            .stamp
            .as_ref()
            .is_none_or(|(ts, _)| *ts != header.timestamp);
        if stale {
            let mut rendered = Vec::with_capacity(32);
            write_timestamp(&mut rendered, self.format, &header.timestamp);
            self.stamp = Some((header.timestamp, rendered));
        }
        let stamp = match &self.stamp {
            Some((_, rendered)) => Stamp::Rendered(rendered),
            None => Stamp::Render,
        };
        let format = self.format;
        let write = |out: &mut Vec<u8>| write_with_stamp(out, format, header, stamp, body);
        match self.framing {
            Some(framing) => frame_with(out, framing, write),
            None => write(out),
        }
    }
}

/// Runs `write` to append a message, then frames it in place.
fn frame_with(out: &mut Vec<u8>, framing: Framing, write: impl FnOnce(&mut Vec<u8>)) {
    match framing {
        Framing::NewLine => {
            write(out);
            out.push(b'\n');
        }
        Framing::OctetCounting => {
            let start = out.len();
            write(out);
            let len = Decimal::new((out.len() - start) as u64);
            let prefix = len.as_bytes();
            out.splice(start..start, prefix.iter().copied().chain([b' ']));
        }
    }
}

/// Appends one message framed for a stream transport.
pub fn write_framed(
    out: &mut Vec<u8>,
    format: Format,
    framing: Framing,
    header: &Header<'_>,
    body: &[u8],
) {
    frame_with(out, framing, |out| write_message(out, format, header, body));
}

/// Appends an already-built message with its framing: `<len> <msg>` or `<msg>\n`.
pub fn write_frame(out: &mut Vec<u8>, framing: Framing, message: &[u8]) {
    match framing {
        Framing::NewLine => {
            out.extend_from_slice(message);
            out.push(b'\n');
        }
        Framing::OctetCounting => {
            out.extend_from_slice(Decimal::new(message.len() as u64).as_bytes());
            out.push(b' ');
            out.extend_from_slice(message);
        }
    }
}

fn write_pri(out: &mut Vec<u8>, pri: Pri) {
    out.push(b'<');
    out.extend_from_slice(Decimal::new(u64::from(pri.value())).as_bytes());
    out.push(b'>');
}

fn write_2digits(out: &mut Vec<u8>, n: u32) {
    out.push(b'0' + (n / 10 % 10) as u8);
    out.push(b'0' + (n % 10) as u8);
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// `Nov 22 11:15:59`, day padded with a space (`Nov  2`).
pub fn write_rfc3164_timestamp(out: &mut Vec<u8>, ts: &DateTime<FixedOffset>) {
    out.extend_from_slice(MONTHS[ts.month0() as usize % 12]);
    out.push(b' ');
    let day = ts.day();
    out.push(if day < 10 {
        b' '
    } else {
        b'0' + (day / 10) as u8
    });
    out.push(b'0' + (day % 10) as u8);
    out.push(b' ');
    write_time(out, ts);
}

fn write_time(out: &mut Vec<u8>, ts: &DateTime<FixedOffset>) {
    write_2digits(out, ts.hour());
    out.push(b':');
    write_2digits(out, ts.minute());
    out.push(b':');
    // A leap second shows as second 59 (chrono keeps it in the nanoseconds).
    write_2digits(out, ts.second());
}

/// `2026-11-22T11:15:59.123456+01:00`, as rsyslog's `date-rfc3339` (microseconds, numeric offset).
pub fn write_rfc3339_timestamp(out: &mut Vec<u8>, ts: &DateTime<FixedOffset>) {
    let year = ts.year().clamp(0, 9999) as u64;
    out.extend_from_slice(&[
        b'0' + (year / 1000) as u8,
        b'0' + (year / 100 % 10) as u8,
        b'0' + (year / 10 % 10) as u8,
        b'0' + (year % 10) as u8,
    ]);
    out.push(b'-');
    write_2digits(out, ts.month());
    out.push(b'-');
    write_2digits(out, ts.day());
    out.push(b'T');
    write_time(out, ts);
    out.push(b'.');
    let micros = ts.nanosecond() % 1_000_000_000 / 1000;
    write_2digits(out, micros / 10_000);
    write_2digits(out, micros / 100 % 100);
    write_2digits(out, micros % 100);
    let offset = ts.offset().local_minus_utc();
    out.push(if offset < 0 { b'-' } else { b'+' });
    let minutes = offset.unsigned_abs() / 60;
    write_2digits(out, minutes / 60);
    out.push(b':');
    write_2digits(out, minutes % 60);
}

fn write_stamp(out: &mut Vec<u8>, format: Format, header: &Header<'_>, stamp: Stamp<'_>) {
    match stamp {
        Stamp::Render => write_timestamp(out, format, &header.timestamp),
        Stamp::Rendered(bytes) => out.extend_from_slice(bytes),
    }
}

fn write_rfc3164(out: &mut Vec<u8>, header: &Header<'_>, stamp: Stamp<'_>, body: &[u8]) {
    write_pri(out, header.pri);
    write_stamp(out, Format::Rfc3164, header, stamp);
    out.push(b' ');
    out.extend_from_slice(header.hostname.as_bytes());
    out.push(b' ');
    let tag = header.tag.as_bytes();
    out.extend_from_slice(&tag[..tag.len().min(MAX_TAG_LEN)]);
    if body.first() != Some(&b' ') {
        out.push(b' ');
    }
    out.extend_from_slice(body);
}

fn write_rfc5424(out: &mut Vec<u8>, header: &Header<'_>, stamp: Stamp<'_>, body: &[u8]) {
    write_pri(out, header.pri);
    out.extend_from_slice(b"1 ");
    write_stamp(out, Format::Rfc5424, header, stamp);
    out.push(b' ');
    write_or_nil(out, header.hostname);
    out.push(b' ');
    write_or_nil(out, header.app_name());
    out.extend_from_slice(b" - - ");
    match header.origin {
        Some(origin) => origin.encode(out),
        None => out.push(b'-'),
    }
    out.push(b' ');
    out.extend_from_slice(body);
}

fn write_or_nil(out: &mut Vec<u8>, field: &str) {
    if field.is_empty() {
        out.push(b'-');
    } else {
        out.extend_from_slice(field.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Facility, Severity};
    use chrono::TimeZone;

    fn header(ts: DateTime<FixedOffset>) -> Header<'static> {
        Header {
            pri: Pri {
                facility: Facility::Local7,
                severity: Severity::Informational,
            },
            timestamp: ts,
            hostname: "host",
            tag: "bro_ssl:",
            origin: None,
        }
    }

    fn at(
        offset_secs: i32,
        y: i32,
        mo: u32,
        d: u32,
        h: u32,
        mi: u32,
        s: u32,
    ) -> DateTime<FixedOffset> {
        FixedOffset::east_opt(offset_secs)
            .unwrap()
            .with_ymd_and_hms(y, mo, d, h, mi, s)
            .unwrap()
    }

    #[test]
    fn rfc3164_as_rsyslog_traditional_forward_format() {
        let mut out = Vec::new();
        let h = header(at(0, 2026, 11, 22, 11, 15, 59));
        write_message(&mut out, Format::Rfc3164, &h, b"a\tb\t-\xff");
        assert_eq!(out, b"<190>Nov 22 11:15:59 host bro_ssl: a\tb\t-\xff");

        out.clear();
        let h = header(at(3600, 2026, 3, 2, 1, 2, 3));
        write_message(&mut out, Format::Rfc3164, &h, b" leading space");
        assert_eq!(out, b"<190>Mar  2 01:02:03 host bro_ssl: leading space");
    }

    #[test]
    fn rfc3164_cuts_tag_at_32_bytes() {
        let mut out = Vec::new();
        let tag = "a".repeat(40);
        let h = Header {
            tag: &tag,
            ..header(at(0, 2026, 1, 1, 0, 0, 0))
        };
        write_message(&mut out, Format::Rfc3164, &h, b"x");
        assert_eq!(
            out,
            format!("<190>Jan  1 00:00:00 host {} x", "a".repeat(32)).as_bytes()
        );
    }

    #[test]
    fn rfc5424_as_rsyslog_protocol23_format() {
        let mut out = Vec::new();
        let ts =
            at(-5 * 3600 - 1800, 2026, 11, 22, 11, 15, 59) + chrono::Duration::microseconds(4_321);
        let h = Header {
            origin: Some(Origin {
                file: 0xab,
                offset: 77,
            }),
            ..header(ts)
        };
        write_message(&mut out, Format::Rfc5424, &h, b"a\tb");
        assert_eq!(
            out,
            b"<190>1 2026-11-22T11:15:59.004321-05:30 host bro_ssl - - \
              [origin@32473 file=\"00000000000000ab\" off=\"77\"] a\tb"
                .as_slice()
        );

        out.clear();
        let h = Header {
            hostname: "",
            tag: "",
            ..header(at(0, 2026, 1, 1, 0, 0, 0))
        };
        write_message(&mut out, Format::Rfc5424, &h, b"");
        assert_eq!(out, b"<190>1 2026-01-01T00:00:00.000000+00:00 - - - - - ");
    }

    #[test]
    fn framings() {
        let h = header(at(0, 2026, 11, 22, 11, 15, 59));
        let mut out = b"prev".to_vec();
        write_framed(&mut out, Format::Rfc3164, Framing::OctetCounting, &h, b"x");
        assert_eq!(out, b"prev36 <190>Nov 22 11:15:59 host bro_ssl: x");
        out.clear();
        write_framed(&mut out, Format::Rfc3164, Framing::NewLine, &h, b"x");
        assert_eq!(out, b"<190>Nov 22 11:15:59 host bro_ssl: x\n");
        out.clear();
        write_frame(&mut out, Framing::OctetCounting, b"");
        write_frame(&mut out, Framing::OctetCounting, b"0123456789");
        assert_eq!(out, b"0 10 0123456789");
    }

    #[test]
    fn encoder_matches_write_framed_across_timestamps() {
        let mut encoder = Encoder::new(Format::Rfc5424, Some(Framing::OctetCounting));
        let mut unframed = Encoder::new(Format::Rfc3164, None);
        let (mut ours, mut expected) = (Vec::new(), Vec::new());
        let (mut ours_3164, mut expected_3164) = (Vec::new(), Vec::new());
        for (i, secs) in [0, 0, 1, 1, 0].into_iter().enumerate() {
            let ts = at(3600, 2026, 11, 22, 11, 15, secs);
            let h = Header {
                origin: Some(Origin {
                    file: 1,
                    offset: i as u64,
                }),
                ..header(ts)
            };
            encoder.write(&mut ours, &h, b"x\ty");
            unframed.write(&mut ours_3164, &h, b"z");
            write_message(&mut expected_3164, Format::Rfc3164, &h, b"z");
            write_framed(
                &mut expected,
                Format::Rfc5424,
                Framing::OctetCounting,
                &h,
                b"x\ty",
            );
        }
        assert_eq!(ours, expected);
        assert_eq!(ours_3164, expected_3164);
    }

    #[test]
    fn app_name_strips_colon_and_pid() {
        assert_eq!(app_name("bro_ssl:"), "bro_ssl");
        assert_eq!(app_name("sshd[42]:"), "sshd");
        assert_eq!(app_name("plain"), "plain");
    }
}
