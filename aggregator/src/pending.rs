//! Notices waiting for the mailer, in numbered segments `SpoolDir/notices.<n>.pending`.
//!
//! The writer appends to the active segment and commits it through the journal like a log file;
//! at each rotation it closes a non-empty segment and starts the next (the journal records the
//! active number). The mailer reads up to the committed position and, once both its cursors
//! (mail at once, digest) have left a segment, deletes it. So the queue on disk holds about one
//! digest interval of notices, and no file is ever rewritten in place.

use std::cmp::Ordering;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const PREFIX: &str = "notices.";
const SUFFIX: &str = ".pending";

/// A place in the notice queue: segment number, then byte offset in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NoticePos {
    pub segment: u64,
    pub offset: u64,
}

impl Ord for NoticePos {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.segment, self.offset).cmp(&(other.segment, other.offset))
    }
}

impl PartialOrd for NoticePos {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

pub fn segment_path(spool_dir: &Path, segment: u64) -> PathBuf {
    spool_dir.join(format!("{PREFIX}{segment}{SUFFIX}"))
}

/// Before segments, one file held every pending notice; its offsets are segment 0's.
pub const LEGACY_FILE: &str = "notices.pending";

/// Turns the single pending file of earlier versions into segment 0, so notices it still holds
/// are mailed. Only when no segment was ever started.
pub fn adopt_legacy(spool_dir: &Path, active_segment: u64) -> io::Result<()> {
    let legacy = spool_dir.join(LEGACY_FILE);
    let first = segment_path(spool_dir, 0);
    if active_segment == 0 && legacy.exists() && !first.exists() {
        tracing::info!(file = %legacy.display(), "pending notices of an earlier version become segment 0");
        fs::rename(&legacy, &first)?;
        estuary_fsutil::sync_dir(spool_dir)?;
    }
    Ok(())
}

/// A cursor as saved: a position, or a bare offset from before segments (segment 0).
pub fn deserialize_pos<'de, D: serde::Deserializer<'de>>(d: D) -> Result<NoticePos, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Saved {
        Pos(NoticePos),
        Offset(u64),
    }
    Ok(match Saved::deserialize(d)? {
        Saved::Pos(pos) => pos,
        Saved::Offset(offset) => NoticePos { segment: 0, offset },
    })
}

/// Removes every segment numbered below `first_kept`; returns how many.
pub fn remove_below(spool_dir: &Path, first_kept: u64) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(spool_dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let number = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|n| n.strip_suffix(SUFFIX))
            .and_then(|n| n.parse::<u64>().ok());
        if number.is_some_and(|n| n < first_kept) {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    if removed > 0 {
        estuary_fsutil::sync_dir(spool_dir)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_removal() {
        let a = NoticePos {
            segment: 1,
            offset: 900,
        };
        let b = NoticePos {
            segment: 2,
            offset: 0,
        };
        assert!(a < b);
        let dir = tempfile::tempdir().unwrap();
        for n in [0, 1, 2, 10] {
            fs::write(segment_path(dir.path(), n), "x").unwrap();
        }
        fs::write(dir.path().join("notices.x.pending"), "x").unwrap();
        assert_eq!(remove_below(dir.path(), 2).unwrap(), 2);
        assert!(segment_path(dir.path(), 2).exists());
        assert!(segment_path(dir.path(), 10).exists());
        assert!(dir.path().join("notices.x.pending").exists());
    }
}
