//! Wall-clock time behind a trait, so that rotation, expiry, digests and retries can be tested
//! with a clock the test moves by hand.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Datelike, FixedOffset, Local, TimeDelta, Utc};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> SystemTime;

    /// The zone this clock's times are shown in.
    fn zone(&self) -> Zone {
        Zone::Local
    }
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to, in the local zone unless given one. Clones share the
/// same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<SystemTime>>,
    zone: Zone,
}

impl ManualClock {
    pub fn new(start: SystemTime) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
            zone: Zone::Local,
        }
    }

    pub fn in_zone(self, zone: Zone) -> Self {
        Self { zone, ..self }
    }

    pub fn set(&self, to: SystemTime) {
        *self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = to;
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn zone(&self) -> Zone {
        self.zone
    }
}

/// Seconds since the epoch, saturating at 0 for times before it.
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Saturates where `SystemTime` ends (the seconds may come from a file name or a journal).
pub fn from_unix_secs(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs.min(i64::MAX as u64))
}

/// The time zone times are printed in and rotation aligns to: the process's local zone by
/// default (zeekctl and Zeek print local time), or a fixed offset given by whoever owns the clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Zone {
    #[default]
    Local,
    Fixed(FixedOffset),
}

impl Zone {
    pub const UTC: Zone = Zone::Fixed(FixedOffset::east_opt(0).expect("zero is a valid offset"));

    /// `t` in this zone; `None` outside the years 0 to 9999. chrono's `From<SystemTime>` panics
    /// past its range (and strftime and RFC 2822 dates stop making sense long before), while
    /// times come from sensors (a notice's `ts`) and from files.
    pub fn at(self, t: SystemTime) -> Option<DateTime<FixedOffset>> {
        let since = match t.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => TimeDelta::from_std(d).ok()?,
            Err(before) => -TimeDelta::from_std(before.duration()).ok()?,
        };
        self.in_range(DateTime::UNIX_EPOCH.checked_add_signed(since)?)
    }

    /// Seconds and nanoseconds since the epoch in this zone; `None` as for [`Zone::at`].
    pub fn at_timestamp(self, secs: i64, nanos: u32) -> Option<DateTime<FixedOffset>> {
        self.in_range(DateTime::from_timestamp(secs, nanos)?)
    }

    fn in_range(self, utc: DateTime<Utc>) -> Option<DateTime<FixedOffset>> {
        (0..=9999).contains(&utc.year()).then(|| match self {
            Zone::Local => utc.with_timezone(&Local).fixed_offset(),
            Zone::Fixed(offset) => utc.with_timezone(&offset),
        })
    }

    /// The next rotation boundary strictly after `now`: multiples of `interval` counted from
    /// midnight in this zone, as Zeek aligns `Log::default_rotation_interval`
    /// (`log_rotate_base_time` 0:00).
    pub fn next_boundary(self, now: SystemTime, interval: Duration) -> SystemTime {
        let secs = unix_secs(now) as i64;
        let step = interval.as_secs().max(1) as i64;
        let offset = self
            .at(now)
            .map(|t| i64::from(t.offset().local_minus_utc()))
            .unwrap_or(0);
        let local = secs.saturating_add(offset);
        let midnight = local - local.rem_euclid(86_400);
        let since = local - midnight;
        let next_local = midnight.saturating_add((since / step + 1) * step);
        from_unix_secs(next_local.saturating_sub(offset).max(0) as u64)
    }

    /// zeekctl's `fmttime`: a time in this zone, formatted with `TimeFmt` (strftime). A time
    /// outside the years 0 to 9999 is printed as seconds since the epoch.
    pub fn format_time(self, time_fmt: &str, t: SystemTime) -> String {
        match self.at(t) {
            Some(t) => format_zoned(time_fmt, &t),
            None => unix_secs(t).to_string(),
        }
    }
}

/// A time already in its zone, formatted with `TimeFmt`. The format was validated with the
/// config; should it still fail, zeekctl's default is used.
pub fn format_zoned(time_fmt: &str, t: &DateTime<FixedOffset>) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if write!(out, "{}", t.format(time_fmt)).is_err() {
        out.clear();
        let _ = write!(out, "{}", t.format(DEFAULT_TIME_FMT));
    }
    out
}

/// zeekctl's `TimeFmt` default.
const DEFAULT_TIME_FMT: &str = "%d %b %H:%M:%S";

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;

    #[test]
    fn times_as_zeekctl_prints_them() {
        let utc = Zone::UTC;
        let t = crate::clock::from_unix_secs(1_795_352_400);
        assert_eq!(utc.format_time("%d %b %H:%M:%S", t), "22 Nov 13:00:00");
        assert_eq!(utc.format_time("%Y-%m-%d %H:%M", t), "2026-11-22 13:00");
        assert_eq!(utc.format_time("%Q", t), "22 Nov 13:00:00");
        let east = Zone::Fixed(FixedOffset::east_opt(5 * 3600 + 1800).unwrap());
        assert_eq!(east.format_time("%H:%M", t), "18:30");
        let far = crate::clock::from_unix_secs(1_000_000_000_000_000);
        assert_eq!(utc.format_time("%d %b %H:%M:%S", far), "1000000000000000");
    }

    #[test]
    fn boundary_is_strictly_after_and_aligned() {
        let interval = Duration::from_secs(3600);
        let t = from_unix_secs(1_700_000_000);
        let half_hour = Zone::Fixed(FixedOffset::east_opt(-(3 * 3600 + 1800)).unwrap());
        for zone in [Zone::Local, Zone::UTC, half_hour] {
            let b = zone.next_boundary(t, interval);
            assert!(b > t);
            assert!(b.duration_since(t).unwrap() <= interval);
            let again = zone.next_boundary(b, interval);
            assert_eq!(again.duration_since(b).unwrap(), interval);
            // On the zone's hour: minutes and seconds are zero in that zone.
            let at = zone.at(b).unwrap();
            assert_eq!((at.minute(), at.second()), (0, 0), "{at} is not on an hour");
            let quarter = zone.next_boundary(t, Duration::from_secs(900));
            assert_eq!(zone.at(quarter).unwrap().minute() % 15, 0);
        }
        // 22:13:20 UTC is 18:43:20 at -03:30: the next hour there is 19:00, 16m40s later.
        let b = half_hour.next_boundary(t, interval);
        assert_eq!(b.duration_since(t).unwrap(), Duration::from_secs(1000));
    }

    #[test]
    fn times_past_chrono_are_none_not_a_panic() {
        let local = Zone::Local;
        assert!(local.at(from_unix_secs(1_795_388_400)).is_some());
        assert!(local.at(from_unix_secs(1_000_000_000_000_000)).is_none());
        assert!(local.at(from_unix_secs(u64::MAX)).is_none());
        assert!(local
            .at(SystemTime::UNIX_EPOCH - Duration::from_secs(1 << 50))
            .is_none());
        assert!(local.at_timestamp(i64::MIN, 0).is_none());
        assert!(local.at_timestamp(-1, 999_999_999).is_some());
    }
}
