//! Recovery at start: every current file is cut back to the length the journal committed, and
//! files it never committed are removed.

use std::fs::{self, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::time::SystemTime;

use crate::clock::{from_unix_secs, unix_secs};
use crate::journal::FileState;
use crate::pending::segment_path;
use crate::route::FileKey;

use super::files::{list_logs, notices_name, OpenLog, FLUSH_AT};
use super::Writer;

impl Writer {
    /// Ends with a journal compaction, which also keeps the marks as moved by `open`.
    pub(super) fn recover(&mut self, now: SystemTime) -> io::Result<()> {
        let mut found = Vec::new();
        list_logs(&self.current_dir, None, &mut found)?;
        crate::pending::adopt_legacy(&self.spool_dir, self.state.notices_segment)?;
        let notices = segment_path(&self.spool_dir, self.state.notices_segment);
        if notices.exists() {
            found.push((FileKey::notices(), notices));
        }
        // A file rotated away just before a crash may still be in the journal: forget it, or a
        // new incarnation under the same name would inherit its committed length.
        self.state
            .files
            .retain(|key, _| found.iter().any(|(k, _)| k == key));
        for (key, path) in found {
            let on_disk = fs::metadata(&path)?.len();
            let known = self.state.files.get(&key).copied();
            let keep = match known {
                Some(f) => f.len.min(on_disk),
                None if self.state.existed => 0,
                None => on_disk,
            };
            if keep < on_disk {
                tracing::info!(file = %path.display(), committed = keep, on_disk, "cutting uncommitted tail");
            }
            if keep == 0 {
                fs::remove_file(&path)?;
                self.state.files.remove(&key);
                continue;
            }
            let (name, host) = match key.parts() {
                Some((name, host)) => (name, host.map(str::to_owned)),
                None => (notices_name(), None),
            };
            let mut file = OpenOptions::new().write(true).open(&path)?;
            file.set_len(keep)?;
            file.seek(SeekFrom::Start(keep))?;
            let open = known.map(|f| from_unix_secs(f.open)).unwrap_or(now);
            self.state.files.insert(
                key.clone(),
                FileState {
                    len: keep,
                    open: unix_secs(open),
                },
            );
            let has_header = self.state.schemas.contains_key(&key);
            self.files.map.insert(
                key,
                OpenLog {
                    name,
                    host,
                    path,
                    file,
                    buf: Vec::with_capacity(FLUSH_AT),
                    written: keep,
                    committed: keep,
                    open,
                    has_header,
                },
            );
        }
        self.journal.compact(&self.state)
    }
}
