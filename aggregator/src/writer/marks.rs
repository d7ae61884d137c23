//! High-water marks: the last offset kept per sender and shipper file incarnation, so a line
//! replayed after a reconnect is dropped, and marks of files silent for ReplayMarkRetention are
//! forgotten.

use std::io;
use std::time::{Duration, SystemTime};

use crate::clock::unix_secs;
use crate::events::Refusal;
use crate::journal::Mark;

use super::{Origin, Writer};

/// The most a file's mark may move in one line: more is a claim, not a file that grew.
const MAX_MARK_JUMP: u64 = 1 << 36;
/// Shipper file incarnations remembered per sender; beyond, the least recently seen is
/// forgotten (a replay of it would then be written twice, never lost).
const MAX_MARKS_PER_SENDER: usize = 65_536;

/// How much later than one rotation interval after the last the next rotation may come (the
/// writer can be busy) before the gap counts as a jump of the wall clock, not as time passing.
const ROTATION_SLACK: Duration = Duration::from_secs(600);

impl Writer {
    /// Moves the mark of the origin's file to its offset; false when the line is a replay.
    /// A line far beyond the mark is written but does not move it: a sender that claims an
    /// offset no file reaches in one step must not make the next real lines look like replays.
    pub(super) fn advance_mark(&mut self, origin: Origin<'_>, now: SystemTime) -> bool {
        let Origin {
            sender,
            file,
            offset,
        } = origin;
        // The sender is a journal token.
        if sender.is_empty() || sender.contains(char::is_whitespace) {
            return true;
        }
        let mark = self
            .pending_marks
            .get(sender, file)
            .or_else(|| self.state.marks.get(sender, file));
        match mark {
            Some(m) if offset <= m => return false,
            Some(m) if offset - m > MAX_MARK_JUMP => {
                let detail = format_args!("offset {offset} of file {file:016x} is {} bytes past its mark; line kept, mark not moved", offset - m);
                self.events.bounded(Refusal::MarkJump, sender, &detail);
                return true;
            }
            Some(_) => {}
            None => {
                let known = self.state.marks.files_of(sender) + self.pending_marks.files_of(sender);
                if known >= MAX_MARKS_PER_SENDER {
                    let detail = format_args!("more than {MAX_MARKS_PER_SENDER} shipper files; the oldest mark is forgotten");
                    self.events.bounded(Refusal::MarkLimit, sender, &detail);
                    self.state.marks.forget_oldest(sender);
                }
            }
        }
        let mark = Mark {
            offset,
            updated: unix_secs(now),
        };
        self.pending_marks.set(sender, file, mark);
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
