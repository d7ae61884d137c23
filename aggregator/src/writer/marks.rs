//! High-water marks: the last offset kept per sending host and shipper file incarnation, so a
//! line replayed after a reconnect is dropped, and marks of files silent for
//! ReplayMarkRetention are forgotten.

use std::io;
use std::time::{Duration, SystemTime};

use crate::clock::unix_secs;
use crate::journal::Mark;

use super::Writer;

/// How much later than one rotation interval after the last the next rotation may come (the
/// writer can be busy) before the gap counts as a jump of the wall clock, not as time passing.
const ROTATION_SLACK: Duration = Duration::from_secs(600);

impl Writer {
    /// Moves the mark of (`host`, `file_id`) to `offset`; false when the line is a replay.
    pub(super) fn advance_mark(
        &mut self,
        host: &str,
        file_id: u64,
        offset: u64,
        now: SystemTime,
    ) -> bool {
        let mark = self
            .pending_marks
            .get(host, file_id)
            .or_else(|| self.state.marks.get(host, file_id));
        if mark.is_some_and(|m| offset <= m) {
            return false;
        }
        let mark = Mark {
            offset,
            updated: unix_secs(now),
        };
        self.pending_marks.set(host, file_id, mark);
        true
    }

    /// Forgets high-water marks of shipper files that sent nothing for ReplayMarkRetention and
    /// rewrites the journal without them. Shipper file ids are new for every incarnation of a
    /// file, so without this the marks would grow by one per rotated file per sender forever.
    pub(super) fn prune_marks(&mut self, now: SystemTime) -> io::Result<()> {
        let now = unix_secs(now);
        let gap = now.saturating_sub(std::mem::replace(&mut self.pruned_at, now));
        let Some(retention) = self.replay_mark_retention else {
            return Ok(());
        };
        // The service rotates once per interval: a longer gap is the wall clock jumping ahead
        // (or the writer stalled), which is no more silence than a downtime is.
        let jumped = !self.rotation_interval.is_zero()
            && gap > (self.rotation_interval + ROTATION_SLACK).as_secs();
        if jumped {
            tracing::warn!(
                gap_secs = gap,
                "the wall clock jumped ahead between two rotations; high-water marks moved with it"
            );
            self.state.marks.discount(gap);
        }
        let dropped = self
            .state
            .marks
            .prune(now.saturating_sub(retention.as_secs()));
        if dropped > 0 {
            tracing::info!(
                dropped,
                kept = self.state.marks.len(),
                "forgot high-water marks of shipper files silent for longer than ReplayMarkRetention"
            );
        }
        if dropped > 0 || jumped {
            self.journal.compact(&self.state)?;
        }
        Ok(())
    }
}
