//! Network time of an idle live capture, as Zeek moves it with the wall clock.

use std::time::{Duration, Instant};

/// Zeek's `packet_source_inactivity_timeout`: after this long without packets, live network
/// time follows the wall clock, so idle connections still time out and get logged.
pub(super) const INACTIVITY: Duration = Duration::from_millis(100);

pub(super) struct IdleClock {
    last_ts: Option<f64>,
    last_at: Instant,
    last_tick: Instant,
}

impl IdleClock {
    pub(super) fn new() -> Self {
        IdleClock {
            last_ts: None,
            last_at: Instant::now(),
            last_tick: Instant::now(),
        }
    }

    pub(super) fn packet(&mut self, ts: f64) {
        self.last_ts = Some(ts);
        self.last_at = Instant::now();
    }

    /// Packet time to advance to, at most every [`INACTIVITY`], once the capture is idle.
    pub(super) fn idle_time(&mut self) -> Option<f64> {
        let ts = self.last_ts?;
        let idle = self.last_at.elapsed();
        if idle < INACTIVITY || self.last_tick.elapsed() < INACTIVITY {
            return None;
        }
        self.last_tick = Instant::now();
        Some(ts + idle.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    #[test]
    fn idle_live_capture_moves_packet_time_with_the_wall_clock() {
        let mut c = IdleClock::new();
        assert_eq!(c.idle_time(), None, "no packet yet: nothing to advance");
        c.packet(1000.0);
        assert_eq!(c.idle_time(), None, "not idle yet");
        thread::sleep(INACTIVITY + Duration::from_millis(20));
        let t = c.idle_time().expect("idle");
        assert!(t >= 1000.0 + INACTIVITY.as_secs_f64() && t < 1002.0, "{t}");
        assert_eq!(
            c.idle_time(),
            None,
            "at most one tick per inactivity interval"
        );
    }
}
