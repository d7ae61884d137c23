//! Times: Zeek's `ts` text, the `--from`/`--to` arguments, zeekctl archive names, and `zeek-cut -d`
//! output. Inside the crate a time is microseconds since the epoch.

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

/// Microseconds since the Unix epoch.
pub type Micros = i64;

const MICROS: i64 = 1_000_000;

/// A Zeek `time` field (`1700000000.123456`); `None` for `-` or anything else that is not one.
pub fn parse_ts(text: &[u8]) -> Option<Micros> {
    let (negative, text) = match text.split_first() {
        Some((b'-', rest)) if !rest.is_empty() => (true, rest),
        _ => (false, text),
    };
    let (int, frac) = match memchr::memchr(b'.', text) {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None => (text, &b""[..]),
    };
    if int.is_empty() || int.len() > 12 || frac.len() > 9 {
        return None;
    }
    let mut secs: i64 = 0;
    for &b in int {
        secs = secs * 10 + i64::from(digit(b)?);
    }
    let mut micros: i64 = 0;
    for i in 0..6 {
        micros = micros * 10 + frac.get(i).map_or(Some(0), |&b| digit(b))? as i64;
    }
    if frac.iter().skip(6).any(|&b| !b.is_ascii_digit()) {
        return None;
    }
    let value = secs * MICROS + micros;
    Some(if negative { -value } else { value })
}

fn digit(b: u8) -> Option<u8> {
    b.is_ascii_digit().then(|| b - b'0')
}

/// Which end of a range an argument names: an archive name stands for its open time as a start
/// and its close time as an end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    From,
    To,
}

/// `--from`/`--to`: ISO 8601 (`2026-12-01T14:00:00Z`, `2026-12-01 14:00`, `2026-12-01`; local time
/// without an offset, as zeekctl's archive names), Unix seconds, or a zeekctl archive name
/// (`2026-12-01/conn.14:00:00-15:00:00.log.gz`).
pub fn parse_bound(text: &str, end: End) -> Result<Micros, String> {
    let text = text.trim();
    if let Some(t) = parse_ts(text.as_bytes()) {
        return Ok(t);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_micros());
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M%z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Ok(t.timestamp_micros());
        }
    }
    let (naive, utc) = match text.strip_suffix('Z') {
        Some(t) => (t, true),
        None => (text, false),
    };
    let datetime = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
        // Zeek's `#open` format.
        "%Y-%m-%d-%H-%M-%S",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(naive, f).ok())
    .or_else(|| {
        NaiveDate::parse_from_str(naive, "%Y-%m-%d")
            .ok()
            .map(|d| d.and_time(NaiveTime::MIN))
    });
    if let Some(datetime) = datetime {
        return if utc {
            Ok(Utc.from_utc_datetime(&datetime).timestamp_micros())
        } else {
            local_micros(&datetime).ok_or_else(|| format!("{text:?} does not exist in local time"))
        };
    }
    if let Some(span) = archive_span(text) {
        return Ok(match end {
            End::From => span.0,
            End::To => span.1,
        });
    }
    Err(format!(
        "{text:?} is not a time (examples: 2026-12-01T14:00:00Z, \"2026-12-01 14:00\", 1764597600, 2026-12-01/conn.14:00:00-15:00:00.log.gz)"
    ))
}

/// The open and close times in a zeekctl archive path `[...]/YYYY-MM-DD/<log>.HH:MM:SS-HH:MM:SS...`
/// (local time; a close at or before the open is on the next day).
pub fn archive_span(path: &str) -> Option<(Micros, Micros)> {
    let path = path.trim_end_matches('/');
    let (dir, name) = path.rsplit_once('/')?;
    let date = dir.rsplit('/').next()?;
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    let times = name.split_once('.')?.1;
    archive_times(date, times)
}

/// `HH:MM:SS-HH:MM:SS` at the start of `times`, on `date`.
pub fn archive_times(date: NaiveDate, times: &str) -> Option<(Micros, Micros)> {
    let open = NaiveTime::parse_from_str(times.get(..8)?, "%H:%M:%S").ok()?;
    if times.as_bytes().get(8) != Some(&b'-') {
        return None;
    }
    let close = NaiveTime::parse_from_str(times.get(9..17)?, "%H:%M:%S").ok()?;
    let close_date = if close <= open {
        date.succ_opt()?
    } else {
        date
    };
    Some((
        local_micros(&date.and_time(open))?,
        local_micros(&close_date.and_time(close))?,
    ))
}

fn local_micros(datetime: &NaiveDateTime) -> Option<Micros> {
    Local
        .from_local_datetime(datetime)
        .earliest()
        .map(|t| t.timestamp_micros())
}

/// How `--cut` prints `time` columns: as in the log, or like `zeek-cut -d` (local) / `-u` (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeFormat {
    #[default]
    Raw,
    Local,
    Utc,
}

/// zeek-cut's conversion: the whole seconds before a `.` in `%Y-%m-%dT%H:%M:%S%z`; a value that is
/// not `<digits>.<anything>` is printed as it is.
pub fn zeek_cut_time(field: &[u8], format: TimeFormat, out: &mut Vec<u8>) {
    let converted = std::str::from_utf8(field)
        .ok()
        .and_then(|text| text.split_once('.'))
        .filter(|(secs, _)| !secs.is_empty() && secs.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|(secs, _)| secs.parse::<i64>().ok())
        .and_then(|secs| DateTime::from_timestamp(secs, 0))
        .map(|utc| match format {
            TimeFormat::Local => utc.with_timezone(&Local).format(CUT_FORMAT).to_string(),
            _ => utc.format(CUT_FORMAT).to_string(),
        });
    match converted {
        Some(text) if format != TimeFormat::Raw => out.extend_from_slice(text.as_bytes()),
        _ => out.extend_from_slice(field),
    }
}

const CUT_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%z";

/// Zeek's `#open`/`#close` format, local time.
pub fn zeek_header_time(t: Micros) -> Option<String> {
    DateTime::from_timestamp_micros(t).map(|utc| {
        utc.with_timezone(&Local)
            .format("%Y-%m-%d-%H-%M-%S")
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeek_times() {
        assert_eq!(parse_ts(b"1700000000.123456"), Some(1_700_000_000_123_456));
        assert_eq!(parse_ts(b"1700000000.1"), Some(1_700_000_000_100_000));
        assert_eq!(parse_ts(b"1700000000"), Some(1_700_000_000_000_000));
        assert_eq!(parse_ts(b"-"), None);
        assert_eq!(parse_ts(b""), None);
        assert_eq!(parse_ts(b"17x0.1"), None);
        assert_eq!(parse_ts(b"99999999999999999999.0"), None);
    }

    #[test]
    fn bounds() {
        let t = 1_764_597_600_000_000; // 2025-12-01T14:00:00Z
        assert_eq!(parse_bound("2025-12-01T14:00:00Z", End::From), Ok(t));
        assert_eq!(parse_bound("2025-12-01T15:00:00+01:00", End::From), Ok(t));
        assert_eq!(parse_bound("2025-12-01 14:00Z", End::From), Ok(t));
        assert_eq!(parse_bound("1764597600", End::From), Ok(t));
        assert!(parse_bound("yesterday", End::From).is_err());
        let name = "2025-12-01/conn.23:00:00-00:00:00.log.gz";
        let open = parse_bound(name, End::From).unwrap();
        let close = parse_bound(name, End::To).unwrap();
        assert_eq!(close - open, 3600 * MICROS);
        assert_eq!(Some((open, close)), archive_span(name));
    }

    #[test]
    fn cut_times() {
        let mut out = Vec::new();
        zeek_cut_time(b"1764597600.5", TimeFormat::Utc, &mut out);
        assert_eq!(out, b"2025-12-01T14:00:00+0000");
        out.clear();
        zeek_cut_time(b"-", TimeFormat::Utc, &mut out);
        assert_eq!(out, b"-");
    }
}
