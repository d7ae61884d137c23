//! Where one file incarnation is in its life: hidden until a state file holds it, read at its
//! input's path, then drained once rotated away or deleted, and retired (dropped from the
//! registry) once every destination has taken all of it and late writers had their time.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// At its input's path, not in a state file yet: readers do not see it, so no line goes out
    /// under an id a restart would not know.
    Found,
    /// Found already rotated away (or a copy of content never read), not in a state file yet.
    FoundGone { since: Instant },
    /// In a state file and at its input's path: tailed.
    Live,
    /// In a state file, rotated away or deleted at `since`: read to its end, then retired.
    Draining { since: Instant },
}

impl Lifecycle {
    /// A file found at its path, already known to a state file or not.
    pub fn at_path(saved: bool) -> Lifecycle {
        if saved {
            Lifecycle::Live
        } else {
            Lifecycle::Found
        }
    }

    /// Whether a state file holds it, so that readers may see it.
    pub fn is_saved(self) -> bool {
        matches!(self, Lifecycle::Live | Lifecycle::Draining { .. })
    }

    /// When it was rotated away or deleted; `None` while at its input's path.
    pub fn gone_since(self) -> Option<Instant> {
        match self {
            Lifecycle::Found | Lifecycle::Live => None,
            Lifecycle::FoundGone { since } | Lifecycle::Draining { since } => Some(since),
        }
    }

    /// Written to a state file.
    pub fn saved(self) -> Lifecycle {
        match self {
            Lifecycle::Found => Lifecycle::Live,
            Lifecycle::FoundGone { since } => Lifecycle::Draining { since },
            saved => saved,
        }
    }

    /// Rotated away or deleted at `now` (again: the wait for late writers starts over).
    pub fn rotated(self, now: Instant) -> Lifecycle {
        if self.is_saved() {
            Lifecycle::Draining { since: now }
        } else {
            Lifecycle::FoundGone { since: now }
        }
    }

    /// Renamed back to a name its input matches: tailed there again.
    pub fn returned(self) -> Lifecycle {
        Lifecycle::at_path(self.is_saved())
    }

    /// The lifecycle of a new incarnation on the same descriptor (a truncation): where the file
    /// is stays, but no state file holds the new incarnation yet.
    pub fn restarted(self) -> Lifecycle {
        match self.gone_since() {
            Some(since) => Lifecycle::FoundGone { since },
            None => Lifecycle::Found,
        }
    }

    /// Whether it has been gone for `wait` at `now`: late writers had their time, so it may be
    /// retired once taken completely.
    pub fn waited(self, wait: Duration, now: Instant) -> bool {
        self.gone_since()
            .is_some_and(|since| now.saturating_duration_since(since) >= wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(5);

    #[test]
    fn a_new_file_is_hidden_until_saved_then_tailed() {
        let found = Lifecycle::at_path(false);
        assert_eq!(found, Lifecycle::Found);
        assert!(!found.is_saved());
        assert_eq!(found.saved(), Lifecycle::Live);
        assert!(found.saved().is_saved());
        assert_eq!(Lifecycle::at_path(true), Lifecycle::Live);
        assert_eq!(Lifecycle::Live.saved(), Lifecycle::Live);
    }

    #[test]
    fn a_rotated_file_drains_and_may_retire_only_after_the_wait() {
        let t0 = Instant::now();
        let draining = Lifecycle::Live.rotated(t0);
        assert_eq!(draining, Lifecycle::Draining { since: t0 });
        assert_eq!(draining.gone_since(), Some(t0));
        assert!(!Lifecycle::Live.waited(WAIT, t0 + WAIT));
        assert!(!draining.waited(WAIT, t0 + WAIT - Duration::from_millis(1)));
        assert!(draining.waited(WAIT, t0 + WAIT));
        // Rotated again: the wait starts over.
        let again = draining.rotated(t0 + WAIT);
        assert!(!again.waited(WAIT, t0 + WAIT));
    }

    #[test]
    fn a_file_found_gone_stays_hidden_until_saved_and_keeps_its_time() {
        let t0 = Instant::now();
        let gone = Lifecycle::Found.rotated(t0);
        assert_eq!(gone, Lifecycle::FoundGone { since: t0 });
        assert!(!gone.is_saved());
        assert_eq!(gone.saved(), Lifecycle::Draining { since: t0 });
    }

    #[test]
    fn a_file_renamed_back_into_its_input_is_tailed_again() {
        let t0 = Instant::now();
        assert_eq!(
            Lifecycle::Draining { since: t0 }.returned(),
            Lifecycle::Live
        );
        assert_eq!(
            Lifecycle::FoundGone { since: t0 }.returned(),
            Lifecycle::Found
        );
    }

    #[test]
    fn a_truncation_starts_an_unsaved_incarnation_where_the_file_is() {
        let t0 = Instant::now();
        assert_eq!(Lifecycle::Live.restarted(), Lifecycle::Found);
        assert_eq!(
            Lifecycle::Draining { since: t0 }.restarted(),
            Lifecycle::FoundGone { since: t0 }
        );
    }
}
