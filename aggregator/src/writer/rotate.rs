//! Rotation: every log whose interval ended gets `#close` and moves to the rotated folder for
//! the archiver; the pending-notices segment is handed to the mailer.

use std::fs;
use std::io;
use std::path::PathBuf;
use std::time::SystemTime;

use estuary_fsutil::sync_dir;

use crate::archive::{Rotated, ROTATED_DIR};
use crate::journal::Record;
use crate::route::FileKey;

use super::{zeek_time, Writer};

impl Writer {
    /// Closes every log whose rotation interval ended by `now`: appends `#close`, moves it to
    /// the rotated folder and returns it for archiving. The next message opens a new file.
    pub fn rotate(&mut self, now: SystemTime) -> io::Result<Vec<(PathBuf, Rotated)>> {
        self.commit()?;
        self.prune_marks(now)?;
        self.close_notices_segment()?;
        if self.rotation_interval.is_zero() {
            return Ok(Vec::new());
        }
        let due: Vec<FileKey> = self
            .files
            .map
            .iter()
            .filter(|(k, l)| {
                !k.is_notices() && self.zone.next_boundary(l.open, self.rotation_interval) <= now
            })
            .map(|(k, _)| k.clone())
            .collect();
        self.rotate_keys(&due, now)
    }

    /// Closes every log now (shutdown is not a rotation: files stay current).
    pub fn rotate_all(&mut self, now: SystemTime) -> io::Result<Vec<(PathBuf, Rotated)>> {
        self.commit()?;
        let all: Vec<FileKey> = self
            .files
            .map
            .keys()
            .filter(|k| !k.is_notices())
            .cloned()
            .collect();
        self.rotate_keys(&all, now)
    }

    /// Hands a non-empty pending-notices segment over to the mailer (which deletes it once it
    /// has mailed from it) and makes the next one active. Call only with everything committed.
    fn close_notices_segment(&mut self) -> io::Result<()> {
        let key = FileKey::notices();
        let Some(log) = self.files.map.get(&key) else {
            return Ok(());
        };
        if log.committed == 0 {
            return Ok(());
        }
        log.file.sync_all()?;
        let next = self.state.notices_segment + 1;
        let group = [Record::Removed(key.clone()), Record::NoticesSegment(next)];
        self.journal.commit(&group, true)?;
        self.files.map.remove(&key);
        self.state.files.remove(&key);
        self.state.notices_segment = next;
        Ok(())
    }

    fn rotate_keys(
        &mut self,
        keys: &[FileKey],
        now: SystemTime,
    ) -> io::Result<Vec<(PathBuf, Rotated)>> {
        let rotated_dir = self.current_dir.join(ROTATED_DIR);
        let mut out = Vec::new();
        let mut group = Vec::new();
        for key in keys {
            let Some(mut log) = self.files.map.remove(key) else {
                continue;
            };
            if log.has_header {
                log.buf.extend_from_slice(
                    format!("#close\t{}\n", zeek_time(self.zone, now)).as_bytes(),
                );
            }
            log.flush()?;
            log.file.sync_all()?;
            let rotated = Rotated {
                name: log.name.clone(),
                host: log.host.clone(),
                open: log.open,
                close: now.max(log.open),
            };
            let target = rotated_dir.join(rotated.file_name());
            fs::rename(&log.path, &target)?;
            group.push(Record::Removed(key.clone()));
            self.state.files.remove(key);
            out.push((target, rotated));
        }
        if !out.is_empty() {
            sync_dir(&rotated_dir)?;
            sync_dir(&self.current_dir)?;
            self.journal.commit(&group, true)?;
        }
        Ok(out)
    }
}
