//! Saving taken offsets promptly. A sender asks for a save once its destination has taken enough
//! (or when it has to wait for one); one writer thread saves the state (requests that arrive while
//! it writes are covered by its next save) and announces how far the saves got. A sender keeps
//! what it has sent but that is not yet saved within a bound (the RELP window; a batch on the
//! other transports), which is then all that `kill -9` can make it send again.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::registry::Registry;
use crate::wake::Wake;

/// How long the writer sleeps without requests; what was taken in the meantime is saved then, so
/// a trickle of lines below the request thresholds is saved within this time.
const IDLE: Duration = Duration::from_millis(50);

/// A point in the registry's sequence of commits: a save that began after a commit was counted
/// holds that commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mark(u64);

pub struct Checkpoints {
    registry: Arc<Registry>,
    wake: Wake,
    saved: watch::Sender<Mark>,
    stop: AtomicBool,
}

impl Checkpoints {
    pub fn new(registry: Arc<Registry>) -> Checkpoints {
        Checkpoints {
            registry,
            wake: Wake::default(),
            saved: watch::Sender::new(Mark::default()),
            stop: AtomicBool::new(false),
        }
    }

    /// Called after committing: a mark covering everything committed so far.
    pub fn mark(&self) -> Mark {
        Mark(self.registry.commit_count())
    }

    /// Asks for a save now.
    pub fn request(&self) {
        self.wake.notify();
    }

    /// The mark of the latest completed save.
    pub fn saved(&self) -> watch::Receiver<Mark> {
        self.saved.subscribe()
    }

    /// Saves whenever something was taken, until [`Checkpoints::stop`].
    pub fn run_writer(&self) {
        let mut saved = Mark::default();
        while !self.stop.load(Ordering::Relaxed) {
            self.wake.wait(IDLE);
            // Read before saving: every commit counted by then is in the snapshot the save takes.
            let now = Mark(self.registry.commit_count());
            if now != saved {
                self.registry.persist_all();
                saved = now;
                self.saved.send_replace(now);
            }
        }
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.wake.notify();
    }
}

/// How much a sender's destination has taken that is not saved yet (messages or bytes), oldest
/// first.
#[derive(Debug, Default)]
pub struct Unsaved {
    marks: VecDeque<(Mark, usize)>,
    total: usize,
}

impl Unsaved {
    pub fn push(&mut self, mark: Mark, amount: usize) {
        if amount == 0 {
            return;
        }
        match self.marks.back_mut() {
            Some((last, n)) if *last == mark => *n += amount,
            _ => self.marks.push_back((mark, amount)),
        }
        self.total += amount;
    }

    /// Forgets what the save at `saved` holds.
    pub fn release(&mut self, saved: Mark) {
        while let Some(&(mark, n)) = self.marks.front() {
            if mark > saved {
                break;
            }
            self.marks.pop_front();
            self.total -= n;
        }
    }

    pub fn len(&self) -> usize {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsaved_amounts_are_released_by_a_save_at_or_after_their_mark() {
        let mut u = Unsaved::default();
        u.push(Mark(3), 10);
        u.push(Mark(3), 5);
        u.push(Mark(7), 1);
        u.push(Mark(9), 0);
        assert_eq!(u.len(), 16);
        u.release(Mark(2));
        assert_eq!(u.len(), 16);
        u.release(Mark(6));
        assert_eq!(u.len(), 1);
        u.release(Mark(7));
        assert_eq!(u.len(), 0);
    }
}
