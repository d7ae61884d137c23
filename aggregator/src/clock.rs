//! Wall-clock time behind a trait, so that rotation, expiry, digests and retries can be tested
//! with a clock the test moves by hand.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Datelike, Local, TimeDelta, Utc};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> SystemTime;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to. Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<SystemTime>>);

impl ManualClock {
    pub fn new(start: SystemTime) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }

    pub fn set(&self, to: SystemTime) {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = to;
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
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

/// `t` in local time; `None` outside the years 0 to 9999. chrono's `From<SystemTime>` panics
/// past its range (and strftime and RFC 2822 dates stop making sense long before), while times
/// come from sensors (a notice's `ts`) and from files.
pub fn local(t: SystemTime) -> Option<DateTime<Local>> {
    let since = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => TimeDelta::from_std(d).ok()?,
        Err(before) => -TimeDelta::from_std(before.duration()).ok()?,
    };
    in_range(DateTime::UNIX_EPOCH.checked_add_signed(since)?)
}

/// Seconds and nanoseconds since the epoch in local time; `None` as for [`local`].
pub fn local_timestamp(secs: i64, nanos: u32) -> Option<DateTime<Local>> {
    in_range(DateTime::from_timestamp(secs, nanos)?)
}

fn in_range(utc: DateTime<Utc>) -> Option<DateTime<Local>> {
    (0..=9999)
        .contains(&utc.year())
        .then(|| utc.with_timezone(&Local))
}

/// The next rotation boundary strictly after `now`: multiples of `interval` counted from local
/// midnight, as Zeek aligns `Log::default_rotation_interval` (`log_rotate_base_time` 0:00).
pub fn next_boundary(now: SystemTime, interval: Duration) -> SystemTime {
    let secs = unix_secs(now) as i64;
    let step = interval.as_secs().max(1) as i64;
    let offset = local(now)
        .map(|t| i64::from(t.offset().local_minus_utc()))
        .unwrap_or(0);
    let local = secs.saturating_add(offset);
    let midnight = local - local.rem_euclid(86_400);
    let since = local - midnight;
    let next_local = midnight.saturating_add((since / step + 1) * step);
    from_unix_secs(next_local.saturating_sub(offset).max(0) as u64)
}

/// zeekctl's `fmttime`: a time in local time, formatted with `TimeFmt` (strftime). The format
/// was validated with the config; should it still fail, zeekctl's default is used. A time
/// outside the years 0 to 9999 is printed as seconds since the epoch.
pub fn format_time(time_fmt: &str, t: SystemTime) -> String {
    match local(t) {
        Some(t) => format_local(time_fmt, &t),
        None => unix_secs(t).to_string(),
    }
}

/// [`format_time`] for a time already in local time.
pub fn format_local(time_fmt: &str, t: &DateTime<Local>) -> String {
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
        std::env::set_var("TZ", "UTC");
        let t = crate::clock::from_unix_secs(1_795_352_400);
        assert_eq!(format_time("%d %b %H:%M:%S", t), "22 Nov 13:00:00");
        assert_eq!(format_time("%Y-%m-%d %H:%M", t), "2026-11-22 13:00");
        assert_eq!(format_time("%Q", t), "22 Nov 13:00:00");
        let far = crate::clock::from_unix_secs(1_000_000_000_000_000);
        assert_eq!(format_time("%d %b %H:%M:%S", far), "1000000000000000");
    }

    #[test]
    fn boundary_is_strictly_after_and_aligned() {
        let interval = Duration::from_secs(3600);
        let t = from_unix_secs(1_700_000_000);
        let b = next_boundary(t, interval);
        assert!(b > t);
        assert!(b.duration_since(t).unwrap() <= interval);
        let again = next_boundary(b, interval);
        assert_eq!(again.duration_since(b).unwrap(), interval);
        // On the local clock's hour: minutes and seconds are zero in any time zone's offset.
        let at = local(b).unwrap();
        assert_eq!((at.minute(), at.second()), (0, 0), "{at} is not on an hour");
        let quarter = next_boundary(t, Duration::from_secs(900));
        assert_eq!(local(quarter).unwrap().minute() % 15, 0);
    }

    #[test]
    fn times_past_chrono_are_none_not_a_panic() {
        assert!(local(from_unix_secs(1_795_388_400)).is_some());
        assert!(local(from_unix_secs(1_000_000_000_000_000)).is_none());
        assert!(local(from_unix_secs(u64::MAX)).is_none());
        assert!(local(SystemTime::UNIX_EPOCH - Duration::from_secs(1 << 50)).is_none());
        assert!(local_timestamp(i64::MIN, 0).is_none());
        assert!(local_timestamp(-1, 999_999_999).is_some());
    }
}
