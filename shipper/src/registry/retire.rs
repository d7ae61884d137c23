//! Ending incarnations: rotated files taken completely are closed, truncated files start anew.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tracing::warn;

use super::{
    lock, open_files, Finished, Incarnation, Inner, Registry, EMPTY, MAX_TOMBSTONES, MTIME_SLACK,
    ROTATE_WAIT,
};
use crate::events;
use crate::hash::Span;
use crate::names::{renamed_to, siblings};
use crate::state::{FileId, FileState};

impl Registry {
    /// Closes rotated and deleted files that every destination has taken completely.
    pub(super) fn retire(&self, inner: &mut Inner, dirty: &mut HashSet<usize>) {
        let committed = lock(&self.committed);
        let mut retired = false;
        let mut finished = Vec::new();
        inner.files.retain(|inc| {
            if !inc.lifecycle.waited(ROTATE_WAIT, Instant::now()) {
                return true;
            }
            let Ok(meta) = inc.file.metadata() else {
                return true;
            };
            let len = meta.len();
            let done = inc
                .start
                .keys()
                .all(|&d| self.taken(&committed, d, inc) >= len);
            if done {
                events::file::finished(&inc.path, inc.id);
                dirty.insert(inc.input);
                retired = true;
                finished.push((
                    Finished::of(&meta),
                    inc.input,
                    FileState {
                        done: true,
                        // Where it is now, to notice a late writer by a look at one path.
                        path: renamed_to(&inc.path, (inc.dev, inc.ino))
                            .unwrap_or_else(|| inc.path.clone()),
                        ..self.file_state(&committed, inc)
                    },
                ));
            }
            !done
        });
        drop(committed);
        for (f, input, tombstone) in finished {
            if inner.finished.len() >= 4 * self.max_open {
                inner.finished.pop_front();
            }
            inner.finished.push_back(f);
            if inner.tombstones.len() >= MAX_TOMBSTONES {
                inner.tombstones.pop_front();
            }
            inner.tombstones.push_back((input, tombstone));
        }
        if retired {
            // Acknowledgements arriving after an earlier retirement may have re-added entries.
            let held: HashSet<FileId> = inner.files.iter().map(|inc| inc.id).collect();
            lock(&self.committed).retain(|(_, id), _| held.contains(id));
        }
    }

    /// A reader found `id` truncated (or rewritten): the file gets a new incarnation read from 0.
    /// When a copy of the old content sits beside it (copytruncate), the old incarnation goes on
    /// in the copy from where each destination was; `tail` is the bytes before `offset` the
    /// reader had seen, to recognise the copy.
    pub fn truncated(&self, id: FileId, file: &Arc<File>, offset: u64, tail: &[u8]) {
        let mut inner = lock(&self.inner);
        let Some((pos, new_id)) = successor(&inner.files, id, file) else {
            return;
        };
        let open = open_files(&inner);
        let old = &inner.files[pos];
        let state_file = self.inputs[old.input].state_file.clone();
        // The copy starts like the old content and holds the bytes a reader verified last.
        let is_copy = |file: &File| {
            let tail_matches = !tail.is_empty()
                && offset >= tail.len() as u64
                && Span::read(file, offset - tail.len() as u64, tail.len()).is_ok_and(|s| {
                    s.len as usize == tail.len() && s.hash == crate::hash::fnv1a(tail)
                });
            let check_matches = old.check.len > 0 && old.check.matches(file).unwrap_or(false);
            // Copied before the writer's last lines, which were read here and then truncated
            // away: every byte of the copy was read.
            let read_past_it = file.metadata().is_ok_and(|m| m.len() < offset);
            old.fingerprint.matches(file).unwrap_or(false)
                && (tail_matches || check_matches || offset == 0 || read_past_it)
        };
        // Copies made since this incarnation began, oldest first: with nothing verified yet the
        // oldest is its content; the newer ones hold content we never saw and are read whole.
        let since = old.created.checked_sub(MTIME_SLACK).unwrap_or(old.created);
        let made_since = |meta: &fs::Metadata| meta.modified().is_ok_and(|m| m >= since);
        let mut copies: Vec<(PathBuf, File, fs::Metadata)> = siblings(&old.path)
            .into_iter()
            .filter_map(|path| {
                let file = File::open(&path).ok()?;
                let meta = file.metadata().ok()?;
                (!open.contains(&(meta.dev(), meta.ino()))
                    && !inner.finished.contains(&Finished::of(&meta))
                    && made_since(&meta))
                .then_some((path, file, meta))
            })
            .collect();
        copies.sort_by_key(|(_, _, meta)| meta.modified().ok());
        let copy = copies
            .iter()
            .position(|(_, file, _)| is_copy(file))
            .map(|i| copies.remove(i));
        let unseen: Vec<Incarnation> = copies
            .into_iter()
            .filter_map(|(path, file, meta)| {
                let id = FileId::random().ok()?;
                let fingerprint = Span::fingerprint(&file).ok()?;
                warn!(path = %path.display(), %id, "a copy of content never read; reading it from the start");
                let start = old.start.keys().map(|&d| (d, 0)).collect();
                Some(Incarnation::never_seen(
                    id,
                    old.input,
                    (path, file, meta),
                    fingerprint,
                    start,
                ))
            })
            .collect();
        let mut fresh = Incarnation {
            id: new_id,
            input: old.input,
            path: old.path.clone(),
            file: old.file.clone(),
            dev: old.dev,
            ino: old.ino,
            fingerprint: old.fingerprint,
            check: EMPTY,
            lifecycle: old.lifecycle.restarted(),
            created: SystemTime::now(),
            start: old.start.keys().map(|&d| (d, 0)).collect(),
        };
        if let Ok(fp) = Span::fingerprint(&fresh.file) {
            fresh.fingerprint = fp;
        }
        match copy {
            Some((path, file, meta)) => {
                events::file::truncated(&fresh.path, id, new_id, Some(&path));
                let committed = lock(&self.committed);
                let old = &mut inner.files[pos];
                // Nothing beyond the copy's end is left to read in it.
                let len = meta.len();
                let start = old
                    .start
                    .keys()
                    .map(|&d| (d, self.taken(&committed, d, old).min(len)))
                    .collect();
                old.start = start;
                if old.check.at + u64::from(old.check.len) > len {
                    old.check = Span::before(&file, len).unwrap_or(EMPTY);
                }
                old.path = path;
                old.file = Arc::new(file);
                (old.dev, old.ino) = (meta.dev(), meta.ino());
                old.lifecycle = old.lifecycle.rotated(Instant::now());
            }
            None => {
                events::file::truncated(&fresh.path, id, new_id, None);
                inner.files.remove(pos);
                lock(&self.committed).retain(|(_, file), _| *file != id);
            }
        }
        inner.files.push(fresh);
        inner.files.extend(unseen);
        self.persist_locked(inner, &HashSet::from([state_file]));
        self.publish();
    }
}

impl Registry {
    /// `dest`'s reader, at `offset`, found `id` cut back (`OnShrink::Retract`): the file gets a
    /// new incarnation read on from `to`, the end of its last whole line. Destinations that had
    /// taken less start where they had taken: nothing unacknowledged is skipped.
    pub fn retracted(&self, id: FileId, file: &Arc<File>, dest: usize, offset: u64, to: u64) {
        let mut inner = lock(&self.inner);
        let Some((pos, new_id)) = successor(&inner.files, id, file) else {
            return;
        };
        let old = inner.files.remove(pos);
        let start: BTreeMap<usize, u64> = {
            let committed = lock(&self.committed);
            old.start
                .keys()
                .map(|&d| {
                    let taken = self.taken(&committed, d, &old);
                    let read = if d == dest { offset } else { taken };
                    if read > to {
                        self.events.dest(d).retracted(&old.path, id, read, to);
                    }
                    (d, taken.min(to))
                })
                .collect()
        };
        lock(&self.committed).retain(|(_, file), _| *file != id);
        let from = start.values().copied().min().unwrap_or(0);
        let state_file = self.inputs[old.input].state_file.clone();
        inner.files.push(Incarnation {
            id: new_id,
            check: Span::before(&old.file, from).unwrap_or(EMPTY),
            lifecycle: old.lifecycle.restarted(),
            created: SystemTime::now(),
            start,
            ..old
        });
        self.persist_locked(inner, &HashSet::from([state_file]));
        self.publish();
    }
}

/// Where incarnation `id` read through `file` still is, and a fresh id for what replaces it;
/// `None` when another destination's reader reported it first (the report about the old
/// descriptor is stale) or no id can be drawn.
fn successor(files: &[Incarnation], id: FileId, file: &Arc<File>) -> Option<(usize, FileId)> {
    let pos = files
        .iter()
        .position(|inc| inc.id == id && Arc::ptr_eq(&inc.file, file))?;
    match FileId::random() {
        Ok(new_id) => Some((pos, new_id)),
        Err(_) => {
            warn!("no randomness for a file id");
            None
        }
    }
}
