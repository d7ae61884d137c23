//! A wake-up signal between threads: set by watchers, waited for by readers and the scanner.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Wake {
    state: Mutex<State>,
    cv: Condvar,
}

#[derive(Debug, Default)]
struct State {
    woken: bool,
    /// Set once events can no longer be trusted to arrive: waits end after this at the latest.
    poll_cap: Option<Duration>,
}

impl Wake {
    pub fn notify(&self) {
        self.lock().woken = true;
        self.cv.notify_all();
    }

    /// From now on every wait ends after `cap` at the latest: the waiter polls.
    pub fn poll_at_most(&self, cap: Duration) {
        let mut state = self.lock();
        state.poll_cap = Some(state.poll_cap.map_or(cap, |c| c.min(cap)));
        drop(state);
        // A waiter already sleeping for longer re-reads the cap.
        self.cv.notify_all();
    }

    /// Waits until notified or `timeout` (or the poll cap) passes; clears the signal.
    pub fn wait(&self, timeout: Duration) {
        let start = std::time::Instant::now();
        let mut state = self.lock();
        loop {
            if state.woken {
                break;
            }
            let limit = state.poll_cap.map_or(timeout, |cap| cap.min(timeout));
            let Some(left) = limit.checked_sub(start.elapsed()).filter(|d| !d.is_zero()) else {
                break;
            };
            state = self
                .cv
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state.woken = false;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn a_poll_cap_shortens_a_wait_already_under_way() {
        let wake = Arc::new(Wake::default());
        let waiter = {
            let wake = wake.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                wake.wait(Duration::from_secs(60));
                start.elapsed()
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        wake.poll_at_most(Duration::from_millis(200));
        let waited = waiter.join().expect("waiter");
        assert!(waited < Duration::from_secs(10), "{waited:?}");

        let start = Instant::now();
        wake.wait(Duration::from_secs(60));
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_notification_ends_the_wait_and_is_consumed() {
        let wake = Wake::default();
        wake.notify();
        let start = Instant::now();
        wake.wait(Duration::from_secs(60));
        assert!(start.elapsed() < Duration::from_secs(10));
        let start = Instant::now();
        wake.wait(Duration::from_millis(100));
        assert!(start.elapsed() >= Duration::from_millis(100));
    }
}
