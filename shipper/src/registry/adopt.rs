//! Adopting files found beside an input: saved incarnations rotated while the shipper was
//! stopped, files rotated before they were ever seen, and finished files written to again.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tracing::{debug, info, warn};

use super::{
    open_files, resumable, saved_created, to_ms, Finished, Incarnation, Inner, Lifecycle, Registry,
    EMPTY,
};
use crate::hash::Span;
use crate::names::{names, newest_first, siblings};
use crate::state::{FileId, FileState};

impl Registry {
    /// State entries whose file is no longer at its path were rotated while we were stopped: find
    /// the same file in the same directory (renamed: same inode; copytruncate: a copy with the same
    /// content) and finish it under its id. An entry that cannot be opened now (the open-file
    /// limit, an error other than absence) stays a candidate, kept in the state, and is tried again
    /// at the next scan; so does one still at its path, which that path's scan resumes.
    pub(super) fn adopt_saved(&self, inner: &mut Inner, dirty: &mut HashSet<usize>) {
        let candidates = std::mem::take(&mut inner.candidates);
        for (state_file, entries) in candidates {
            let Some(input_ix) = self.inputs.iter().position(|i| i.state_file == state_file) else {
                continue;
            };
            let mut pending = Vec::new();
            let open = open_files(inner);
            for saved in entries {
                // Still at its path (the device id may differ after a remount) and not open yet:
                // the scan of the path resumes it.
                let at_path = names(&self.inputs[input_ix].path, &saved.path)
                    && fs::metadata(&saved.path)
                        .is_ok_and(|m| m.ino() == saved.ino && !open.contains(&(m.dev(), m.ino())));
                if at_path || self.at_open_limit(inner, &saved.path) {
                    pending.push(saved);
                    continue;
                }
                let (path, file, meta) = match find_moved(&saved, &open_files(inner)) {
                    Moved::Found(path, file, meta) => (path, file, meta),
                    Moved::Gone if saved.done => {
                        debug!(path = %saved.path.display(), id = %saved.id, "a finished file is gone");
                        dirty.insert(input_ix);
                        continue;
                    }
                    Moved::Gone => {
                        warn!(path = %saved.path.display(), id = %saved.id, offsets = ?saved.offsets, "a file in the state is gone from its directory; any lines after its saved offsets are lost");
                        dirty.insert(input_ix);
                        continue;
                    }
                    Moved::Unknown(err) => {
                        debug!(path = %saved.path.display(), id = %saved.id, %err, "cannot look for a saved file now; trying again");
                        pending.push(saved);
                        continue;
                    }
                };
                info!(from = %saved.path.display(), to = %path.display(), id = %saved.id, "finishing file rotated while stopped");
                let start = self
                    .start_offsets(input_ix, |name| saved.resume_offset(name, &self.dest_names));
                inner.files.push(Incarnation {
                    id: saved.id,
                    input: input_ix,
                    path,
                    file: Arc::new(file),
                    dev: meta.dev(),
                    ino: meta.ino(),
                    fingerprint: saved.fingerprint,
                    check: saved.check,
                    lifecycle: Lifecycle::Draining {
                        since: Instant::now(),
                    },
                    created: saved_created(saved.created_ms),
                    start,
                });
                dirty.insert(input_ix);
            }
            if !pending.is_empty() {
                inner.candidates.insert(state_file, pending);
            }
        }
    }

    /// Rotated files we never saw, changed since the state was last written, are read from the
    /// start (first scan after a start).
    pub(super) fn adopt_unseen_since_saved(&self, inner: &mut Inner, dirty: &mut HashSet<usize>) {
        for (input_ix, input) in self.inputs.iter().enumerate() {
            let Some(&since) = self.state_written.get(&input.state_file) else {
                continue;
            };
            if self.adopt_unseen(inner, input_ix, since) {
                dirty.insert(input_ix);
            }
        }
    }

    /// Files beside an input's path (or glob), named like its rotations, that are not open, were not
    /// finished as they are now, and changed since `since`: rotated before they were ever seen, so
    /// they are read from the start. At the open-file limit such a file becomes a saved entry
    /// instead, kept in the state and opened when a descriptor is free. Returns whether any was
    /// found.
    pub(super) fn adopt_unseen(
        &self,
        inner: &mut Inner,
        input_ix: usize,
        since: SystemTime,
    ) -> bool {
        let input = &self.inputs[input_ix];
        if self.routes[input_ix].is_empty() {
            return false;
        }
        let mut found = false;
        for path in siblings(&input.path) {
            let open = open_files(inner);
            let Ok(file) = File::open(&path) else {
                continue;
            };
            let Ok(meta) = file.metadata() else { continue };
            let changed = meta.modified().is_ok_and(|m| m >= since);
            let id = (meta.dev(), meta.ino());
            let known = open.contains(&id)
                || inner
                    .candidates
                    .values()
                    .flatten()
                    .any(|s| (s.dev, s.ino) == id);
            if changed && !known {
                let id = (meta.dev(), meta.ino());
                if let Some(pos) = inner
                    .tombstones
                    .iter()
                    .position(|(_, t)| (t.dev, t.ino) == id)
                {
                    let (_, tombstone) = inner.tombstones.remove(pos).expect("found above");
                    // Written to after it was finished: read on from where it ended. (Another
                    // file on a reused inode fails the content check and is read whole below.)
                    if resumable(&tombstone, &file) {
                        inner
                            .candidates
                            .entry(input.state_file.clone())
                            .or_default()
                            .push(tombstone);
                        found = true;
                        continue;
                    }
                }
            }
            if !changed || known || inner.finished.contains(&Finished::of(&meta)) {
                debug!(path = %path.display(), changed, modified = ?meta.modified().ok(), ?since, "sibling not adopted");
                continue;
            }
            let (Ok(id), Ok(fingerprint)) = (FileId::random(), Span::fingerprint(&file)) else {
                continue;
            };
            found = true;
            if self.at_open_limit(inner, &path) {
                info!(path = %path.display(), %id, "a file rotated before it was seen waits for a free descriptor");
                inner
                    .candidates
                    .entry(input.state_file.clone())
                    .or_default()
                    .push(FileState {
                        id,
                        path,
                        dev: meta.dev(),
                        ino: meta.ino(),
                        fingerprint,
                        check: EMPTY,
                        offsets: BTreeMap::new(),
                        created_ms: to_ms(SystemTime::now()),
                        done: false,
                    });
                continue;
            }
            warn!(path = %path.display(), %id, "reading a file rotated before it was seen from the start");
            let start = self.start_offsets(input_ix, |_| 0);
            inner.files.push(Incarnation::never_seen(
                id,
                input_ix,
                (path, file, meta),
                fingerprint,
                start,
            ));
        }
        found
    }

    /// Follows finished files: one written to again (a late writer) is read on from where it
    /// ended; one renamed is followed beside its input; one gone is forgotten.
    pub(super) fn follow_tombstones(&self, inner: &mut Inner, dirty: &mut HashSet<usize>) {
        let tombstones = std::mem::take(&mut inner.tombstones);
        for (input, mut tombstone) in tombstones {
            let id = (tombstone.dev, tombstone.ino);
            let here = fs::metadata(&tombstone.path)
                .ok()
                .filter(|m| (m.dev(), m.ino()) == id);
            let meta = match here {
                Some(meta) => meta,
                None => {
                    dirty.insert(input);
                    let moved = siblings(&self.inputs[input].path)
                        .into_iter()
                        .find_map(|p| {
                            let m = fs::metadata(&p).ok()?;
                            ((m.dev(), m.ino()) == id).then_some((p, m))
                        });
                    let Some((path, meta)) = moved else {
                        continue;
                    };
                    tombstone.path = path;
                    meta
                }
            };
            if tombstone.offsets.values().any(|&taken| meta.len() > taken) {
                dirty.insert(input);
                let state_file = self.inputs[input].state_file.clone();
                inner
                    .candidates
                    .entry(state_file)
                    .or_default()
                    .push(tombstone);
            } else {
                inner.tombstones.push_back((input, tombstone));
            }
        }
    }
}

/// Where a saved incarnation is now.
enum Moved {
    Found(PathBuf, File, fs::Metadata),
    Gone,
    /// The directory or a file could not be read (e.g. no descriptor free): look again later.
    Unknown(io::Error),
}

/// The same incarnation elsewhere in the directory of its saved path: renamed (same inode) or
/// copied (copytruncate: a sibling with the same content), not already open.
fn find_moved(saved: &FileState, open: &HashSet<(u64, u64)>) -> Moved {
    let absent = |err: io::Error| match err.kind() {
        io::ErrorKind::NotFound => Moved::Gone,
        _ => Moved::Unknown(err),
    };
    let Some(dir) = saved.path.parent() else {
        return Moved::Gone;
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => return absent(err),
    };
    let mut copies = Vec::new();
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() || open.contains(&(meta.dev(), meta.ino())) {
            continue;
        }
        if (meta.dev(), meta.ino()) == (saved.dev, saved.ino) {
            let path = entry.path();
            return match File::open(&path) {
                Ok(file) if resumable(saved, &file) => Moved::Found(path, file, meta),
                Ok(_) => Moved::Gone,
                Err(err) => absent(err),
            };
        }
        copies.push(entry.path());
    }
    // Without verified bytes (nothing read yet), a copy starting with the same bytes will do:
    // the newest one, as logrotate's newest copy is the one just made.
    let matches = |file: &File| {
        if saved.check.len == 0 {
            saved.fingerprint.len > 0 && saved.fingerprint.matches(file).unwrap_or(false)
        } else {
            resumable(saved, file)
        }
    };
    let siblings = siblings(&saved.path);
    let copies = newest_first(
        copies
            .into_iter()
            .filter(|p| siblings.contains(p))
            .collect(),
    );
    for path in copies {
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Moved::Unknown(err),
        };
        if let Ok(meta) = file.metadata() {
            if matches(&file) {
                return Moved::Found(path, file, meta);
            }
        }
    }
    Moved::Gone
}
