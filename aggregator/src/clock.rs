//! Wall-clock time behind a trait, so that rotation, expiry, digests and retries can be tested
//! with a clock the test moves by hand.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

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

pub fn from_unix_secs(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

/// The next rotation boundary strictly after `now`: multiples of `interval` counted from local
/// midnight, as Zeek aligns `Log::default_rotation_interval` (`log_rotate_base_time` 0:00).
pub fn next_boundary(now: SystemTime, interval: Duration) -> SystemTime {
    use chrono::{Local, TimeZone};
    let secs = unix_secs(now) as i64;
    let step = interval.as_secs().max(1) as i64;
    let offset = Local
        .timestamp_opt(secs, 0)
        .single()
        .map(|t| i64::from(t.offset().local_minus_utc()))
        .unwrap_or(0);
    let local = secs + offset;
    let midnight = local - local.rem_euclid(86_400);
    let since = local - midnight;
    let next_local = midnight + (since / step + 1) * step;
    from_unix_secs((next_local - offset).max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_is_strictly_after_and_aligned() {
        let interval = Duration::from_secs(3600);
        let t = from_unix_secs(1_700_000_000);
        let b = next_boundary(t, interval);
        assert!(b > t);
        assert!(b.duration_since(t).unwrap() <= interval);
        let again = next_boundary(b, interval);
        assert_eq!(again.duration_since(b).unwrap(), interval);
    }
}
