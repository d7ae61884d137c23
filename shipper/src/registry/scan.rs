//! Looking at the inputs' paths: new files, rotations, renames within an input, remounts.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use estuary_config::shipper::{OnShrink, StartAt};
use tracing::{info, warn};

use super::{
    lock, resumable, saved_created, Incarnation, Inner, Lifecycle, Registry, EMPTY, MTIME_SLACK,
};
use crate::events::{self, InputProblem};
use crate::hash::Span;
use crate::names::expand;
use crate::shrink;
use crate::state::{FileId, FileState};

impl Registry {
    /// Finds new, rotated and deleted files, retires fully shipped ones, and persists changes.
    pub fn scan(&self) {
        let mut inner = lock(&self.inner);
        let mut dirty: HashSet<usize> = HashSet::new();
        let first = !inner.scanned;
        let mut problems = BTreeMap::new();
        // Before new files: rotated files with lines still to ship come first at the open limit.
        if !inner.candidates.is_empty() {
            self.adopt_saved(&mut inner, &mut dirty);
        }
        for (input_ix, input) in self.inputs.iter().enumerate() {
            if self.routes[input_ix].is_empty() {
                continue;
            }
            let mut present = Vec::new();
            let looked = SystemTime::now();
            let mut changed = false;
            let mut unopened = false;
            for path in expand(&input.path) {
                let path = &path;
                let meta = match fs::metadata(path) {
                    Ok(meta) => meta,
                    // Absent is no problem: the file comes when the writer starts or rotates.
                    Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                    Err(err) => {
                        problems.insert(path.clone(), InputProblem::unreadable(&err));
                        continue;
                    }
                };
                if !meta.is_file() {
                    problems.insert(path.clone(), InputProblem::not_a_file(meta.file_type()));
                    continue;
                }
                present.push(path.clone());
                let live = inner.files.iter_mut().find(|inc| {
                    inc.lifecycle.gone_since().is_none()
                        && inc.input == input_ix
                        && inc.path == *path
                });
                match live {
                    Some(inc) if (inc.dev, inc.ino) == (meta.dev(), meta.ino()) => {
                        if (inc.fingerprint.len as usize) < crate::hash::FINGERPRINT_BYTES
                            && meta.len() > u64::from(inc.fingerprint.len)
                        {
                            if let Ok(fp) = Span::fingerprint(&inc.file) {
                                inc.fingerprint = fp;
                                dirty.insert(input_ix);
                            }
                        }
                        continue;
                    }
                    Some(inc) => {
                        if inc.ino == meta.ino() && remounted(inc, path) {
                            dirty.insert(input_ix);
                            continue;
                        }
                        events::file::rotated(path, inc.id);
                        inc.lifecycle = inc.lifecycle.rotated(Instant::now());
                    }
                    None => {}
                }
                changed = true;
                // The open descriptor pins the inode, so the same (device, inode) is the same file,
                // renamed to another name the input matches: it is read on where it was.
                if let Some(moved) = inner.files.iter_mut().find(|inc| {
                    inc.input == input_ix && (inc.dev, inc.ino) == (meta.dev(), meta.ino())
                }) {
                    let linked = moved.lifecycle.gone_since().is_none()
                        && fs::metadata(&moved.path)
                            .is_ok_and(|m| (m.dev(), m.ino()) == (moved.dev, moved.ino));
                    if linked {
                        // Another name (a hard link) of a file read at its own path.
                        continue;
                    }
                    events::file::renamed(&moved.path, path, moved.id);
                    moved.path = path.clone();
                    moved.lifecycle = moved.lifecycle.returned();
                    dirty.insert(input_ix);
                    continue;
                }
                // Back at its path under another device id after it was gone for a look: a
                // network or loop file system that went away and was mounted again (failure
                // case 17). The same inode with the same content goes on where it was.
                if let Some(back) = inner.files.iter_mut().find(|inc| {
                    inc.input == input_ix
                        && inc.path == *path
                        && inc.ino == meta.ino()
                        && inc.lifecycle.gone_since().is_some()
                }) {
                    if remounted(back, path) {
                        back.lifecycle = back.lifecycle.returned();
                        dirty.insert(input_ix);
                        continue;
                    }
                }
                match self.open(&mut inner, input_ix, path, first) {
                    Ok(true) => {
                        dirty.insert(input_ix);
                    }
                    Ok(false) => unopened = true,
                    Err(err) => {
                        problems.insert(path.clone(), InputProblem::unreadable(&err));
                        unopened = true;
                    }
                }
            }
            for inc in inner.files.iter_mut() {
                if inc.input == input_ix
                    && inc.lifecycle.gone_since().is_none()
                    && !present.contains(&inc.path)
                {
                    events::file::rotated_away(&inc.path, inc.id);
                    inc.lifecycle = inc.lifecycle.rotated(Instant::now());
                    changed = true;
                }
            }
            // A file created after the previous look and rotated away before this one was never
            // seen at the path; it sits beside it. While files wait at the open-file limit, look
            // again from the same time.
            let previous = inner.looked.get(&input_ix).copied();
            if let Some(since) = previous.filter(|_| changed || inner.waiting.contains(&input_ix)) {
                let since = since.checked_sub(MTIME_SLACK).unwrap_or(since);
                if self.adopt_unseen(&mut inner, input_ix, since) {
                    dirty.insert(input_ix);
                }
            }
            if unopened {
                inner.waiting.insert(input_ix);
            } else {
                inner.waiting.remove(&input_ix);
                inner.looked.insert(input_ix, looked);
            }
        }
        self.events.inputs_looked_at(problems);
        self.follow_tombstones(&mut inner, &mut dirty);
        // Entries left to their path that it did not resume (content replaced: a copytruncate
        // while stopped) are looked for beside it before anything there counts as never seen.
        if !inner.candidates.is_empty() {
            self.adopt_saved(&mut inner, &mut dirty);
        }
        if first {
            self.adopt_unseen_since_saved(&mut inner, &mut dirty);
            inner.scanned = true;
        }
        self.retire(&mut inner, &mut dirty);
        if !dirty.is_empty() {
            let state_files: HashSet<PathBuf> = dirty
                .iter()
                .map(|&i| self.inputs[i].state_file.clone())
                .collect();
            self.persist_locked(inner, &state_files);
            self.publish();
        }
    }

    /// Opens a newly found file as an incarnation, resuming saved state when it matches. `false`
    /// when it has to wait (the open-file limit, no randomness); `Err` when it cannot be opened.
    fn open(
        &self,
        inner: &mut Inner,
        input_ix: usize,
        path: &Path,
        first: bool,
    ) -> io::Result<bool> {
        if self.at_open_limit(inner, path) {
            return Ok(false);
        }
        let input = &self.inputs[input_ix];
        // Before opening: a copy made of what is opened may not look older than the incarnation.
        let setup = SystemTime::now();
        let opened = File::open(path).and_then(|file| {
            let meta = file.metadata()?;
            let fingerprint = Span::fingerprint(&file)?;
            Ok((file, meta, fingerprint))
        });
        let (file, meta, fingerprint) = opened?;
        // The device id may change when a network or loop file system is mounted again: the
        // same inode with the same content is the same file (failure case 17).
        let saved = inner
            .candidates
            .get_mut(&input.state_file)
            .and_then(|candidates| {
                let exact = candidates.iter().position(|s| {
                    (s.dev, s.ino) == (meta.dev(), meta.ino()) && resumable(s, &file)
                });
                let remounted = || {
                    candidates.iter().position(|s| {
                        s.ino == meta.ino() && s.path == path && resumable(s, &file)
                    })
                };
                // Cut back while stopped, when the input expects that: resumed at the cut.
                let cut_back = || {
                    (input.on_shrink == OnShrink::Retract)
                        .then(|| {
                            candidates.iter().position(|s| {
                                (s.dev, s.ino) == (meta.dev(), meta.ino())
                                    && cut_back_to(s, &file).is_some()
                            })
                        })
                        .flatten()
                };
                let pos = exact.or_else(remounted).or_else(cut_back)?;
                let saved = candidates.swap_remove(pos);
                if saved.dev != meta.dev() {
                    info!(path = %path.display(), id = %saved.id, from = saved.dev, to = meta.dev(), "device id changed; same inode and content, resuming");
                }
                let cut = (!resumable(&saved, &file))
                    .then(|| cut_back_to(&saved, &file))
                    .flatten();
                Some((saved, cut))
            });
        let resumed = saved.is_some();
        let (id, start, check, created) = match saved {
            Some((saved, cut)) => {
                let read = |name: &str| saved.resume_offset(name, &self.dest_names);
                let to = cut.unwrap_or(u64::MAX);
                let start = self.start_offsets(input_ix, |name| read(name).min(to));
                for &d in &self.routes[input_ix] {
                    let from = read(&self.dest_names[d]);
                    if from > to {
                        self.events.dest(d).retracted(path, saved.id, from, to);
                    }
                }
                let check = match cut {
                    Some(_) => {
                        let from = start.values().copied().min().unwrap_or(0);
                        Span::before(&file, from).unwrap_or(EMPTY)
                    }
                    None => saved.check,
                };
                events::file::resumed(path, saved.id, &start);
                (saved.id, start, check, saved_created(saved.created_ms))
            }
            None => {
                // "end" is where tailing begins on a first run; after that, a file that came
                // while the shipper was stopped is read whole.
                let first_run = first && !self.state_written.contains_key(&input.state_file);
                let at = match (first_run, input.start_at) {
                    (true, StartAt::End) => meta.len(),
                    _ => 0,
                };
                let id = match FileId::random() {
                    Ok(id) => id,
                    Err(err) => {
                        warn!(%err, "no randomness for a file id");
                        return Ok(false);
                    }
                };
                events::file::new(path, id, at);
                let check = Span::before(&file, at).unwrap_or(EMPTY);
                (id, self.start_offsets(input_ix, |_| at), check, setup)
            }
        };
        inner.files.push(Incarnation {
            id,
            input: input_ix,
            path: path.to_owned(),
            file: Arc::new(file),
            dev: meta.dev(),
            ino: meta.ino(),
            fingerprint,
            check,
            lifecycle: Lifecycle::at_path(resumed),
            created,
            start,
        });
        Ok(true)
    }
}

/// Where a saved entry's file, shorter now than where it was read but with its first bytes
/// unchanged, goes on (`OnShrink::Retract`).
fn cut_back_to(saved: &FileState, file: &File) -> Option<u64> {
    let read = saved.offsets.values().copied().max()?;
    shrink::retract_to(file, &saved.fingerprint, read)
        .ok()
        .flatten()
}

/// The same inode with the same content under another device id: the file system was mounted
/// again (failure case 17). The incarnation goes on through a descriptor of the new mount.
fn remounted(inc: &mut Incarnation, path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    let Ok(meta) = file.metadata() else {
        return false;
    };
    let same = |span: &Span| span.len == 0 || span.matches(&file).unwrap_or(false);
    if meta.ino() != inc.ino || !same(&inc.fingerprint) || !same(&inc.check) {
        return false;
    }
    info!(path = %path.display(), id = %inc.id, from = inc.dev, to = meta.dev(), "device id changed; same inode and content, reading on");
    inc.file = Arc::new(file);
    inc.dev = meta.dev();
    true
}
