//! Which file incarnations exist, and where each destination has taken them to.
//!
//! A file incarnation is one file's content from offset 0: found at a path by (device, inode) plus
//! a fingerprint of its first bytes, and given a random [`FileId`]. A rotated or deleted file stays
//! open until every destination has taken all of it. A truncation ends the incarnation and starts a
//! new one on the same descriptor. Every new incarnation is written to the state file before any
//! reader can see it, so a line is never sent under an id a restart would not know.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use estuary_config::shipper::{InputConfig, StartAt};
use tracing::{debug, info, warn};

use crate::hash::Span;
use crate::names::{expand, names, newest_first, renamed_to, siblings};
use crate::state::{self, FileId, FileState};

/// How long a rotated or deleted file is kept open after its last growth, for late writers.
pub const ROTATE_WAIT: Duration = Duration::from_secs(5);
/// Finished rotated files kept in the state files, newest last.
const MAX_TOMBSTONES: usize = 256;
/// File times come from the kernel's coarse clock, which may lag `SystemTime::now` by a tick.
const MTIME_SLACK: Duration = Duration::from_millis(100);

/// A reader's view of one incarnation.
#[derive(Debug, Clone)]
pub struct FileView {
    pub id: FileId,
    pub input: usize,
    pub path: PathBuf,
    pub file: Arc<File>,
    /// Where this destination starts reading.
    pub start: u64,
    /// When the file was rotated away or deleted.
    pub gone_since: Option<Instant>,
    /// What the registry saw: a reader checks both before its first read, so that content
    /// replaced since (a truncation) is never read under this id.
    pub fingerprint: Span,
    pub check: Span,
}

#[derive(Debug)]
struct Incarnation {
    id: FileId,
    input: usize,
    path: PathBuf,
    file: Arc<File>,
    dev: u64,
    ino: u64,
    fingerprint: Span,
    /// Bytes a reader read and verified, to recognise this content after a restart.
    check: Span,
    gone_since: Option<Instant>,
    /// When this incarnation was set up: copies made later may hold its content.
    created: SystemTime,
    /// Start offset per routed destination.
    start: BTreeMap<usize, u64>,
    /// In a state file written since it was set up: only then do readers see it, so no line goes
    /// out under an id a restart would not know.
    saved: bool,
}

impl Incarnation {
    /// A rotated file whose content was never read: read whole, already gone from the input's
    /// path, and not in a state file yet.
    fn never_seen(
        id: FileId,
        input: usize,
        (path, file, meta): (PathBuf, File, fs::Metadata),
        fingerprint: Span,
        start: BTreeMap<usize, u64>,
    ) -> Incarnation {
        Incarnation {
            id,
            input,
            path,
            file: Arc::new(file),
            dev: meta.dev(),
            ino: meta.ino(),
            fingerprint,
            check: EMPTY,
            gone_since: Some(Instant::now()),
            created: SystemTime::now(),
            start,
            saved: false,
        }
    }
}

#[derive(Debug)]
pub struct Registry {
    inputs: Vec<InputConfig>,
    /// Destination indexes each input is routed to.
    routes: Vec<Vec<usize>>,
    dest_names: Vec<String>,
    inner: Mutex<Inner>,
    /// Serialises state file writes so an older snapshot never overwrites a newer one; holds the
    /// state files whose last write failed, so that a full disk is reported once, not per save.
    persist: Mutex<HashSet<PathBuf>>,
    /// Bytes taken per (destination, incarnation).
    committed: Mutex<HashMap<(usize, FileId), u64>>,
    commits: AtomicU64,
    /// Copies modified since this time (per state file) may hold unseen lines (absent: first run).
    state_written: HashMap<PathBuf, SystemTime>,
    /// At most this many files are kept open; further files wait until others are finished.
    max_open: usize,
}

#[derive(Debug, Default)]
struct Inner {
    files: Vec<Incarnation>,
    /// State entries not yet matched to a file (first scan only).
    candidates: HashMap<PathBuf, Vec<FileState>>,
    scanned: bool,
    generation: u64,
    open_limit_logged: bool,
    /// When each input's path was last looked at with every file found there opened.
    looked: HashMap<usize, SystemTime>,
    /// Rotated files taken completely and closed, as they were then, newest last.
    finished: VecDeque<Finished>,
    /// The newest of them as state entries (input, entry), kept in the state files: a restart
    /// knows them, and lines written to one after it was closed are read from where it ended.
    tombstones: VecDeque<(usize, FileState)>,
    /// Inputs whose last look left files unopened at the open-file limit: the next scan looks
    /// again from the same time.
    waiting: HashSet<usize>,
}

/// A closed file: unchanged since, it holds nothing new.
#[derive(Debug, PartialEq, Eq)]
struct Finished {
    dev: u64,
    ino: u64,
    len: u64,
    modified: Option<SystemTime>,
}

impl Finished {
    fn of(meta: &fs::Metadata) -> Finished {
        Finished {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            modified: meta.modified().ok(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Registry {
    /// Loads every input's state file. A corrupt state file is logged and treated as empty.
    pub fn new(
        inputs: Vec<InputConfig>,
        routes: Vec<Vec<usize>>,
        dest_names: Vec<String>,
    ) -> Registry {
        let mut candidates = HashMap::new();
        let mut state_written = HashMap::new();
        for input in &inputs {
            if candidates.contains_key(&input.state_file) {
                continue;
            }
            let files = state::load(&input.state_file).unwrap_or_else(|err| {
                warn!(%err, "ignoring state; files will be read again from the start");
                Vec::new()
            });
            // Rotated copies newer than the newest incarnation seen at an input's path, or than
            // the state file itself, may hold lines never read.
            let written = fs::metadata(&input.state_file).and_then(|m| m.modified());
            let live_created = files
                .iter()
                .filter(|f| inputs.iter().any(|i| names(&i.path, &f.path)) && f.created_ms > 0)
                .map(|f| from_ms(f.created_ms))
                .max();
            if let Some(since) = [written.ok(), live_created].into_iter().flatten().min() {
                state_written.insert(input.state_file.clone(), since);
            }
            candidates.insert(input.state_file.clone(), files);
        }
        Registry {
            inputs,
            routes,
            dest_names,
            inner: Mutex::new(Inner {
                candidates,
                ..Inner::default()
            }),
            persist: Mutex::new(HashSet::new()),
            committed: Mutex::new(HashMap::new()),
            commits: AtomicU64::new(0),
            state_written,
            max_open: crate::limits::open_file_budget(),
        }
    }

    pub fn inputs(&self) -> &[InputConfig] {
        &self.inputs
    }

    /// The incarnations routed to `dest`, if anything changed since `generation`.
    pub fn snapshot(&self, dest: usize, generation: u64) -> Option<(u64, Vec<FileView>)> {
        let inner = lock(&self.inner);
        if inner.generation == generation {
            return None;
        }
        let views = inner
            .files
            .iter()
            .filter(|inc| inc.saved)
            .filter_map(|inc| {
                Some(FileView {
                    id: inc.id,
                    input: inc.input,
                    path: inc.path.clone(),
                    file: inc.file.clone(),
                    start: *inc.start.get(&dest)?,
                    gone_since: inc.gone_since,
                    fingerprint: inc.fingerprint,
                    check: inc.check,
                })
            })
            .collect();
        Some((inner.generation, views))
    }

    /// Records that `dest` has taken `file` up to `end`.
    pub fn commit(&self, dest: usize, file: FileId, end: u64) {
        let mut committed = lock(&self.committed);
        let at = committed.entry((dest, file)).or_insert(0);
        *at = (*at).max(end);
        self.commits.fetch_add(1, Ordering::Relaxed);
    }

    /// Increases whenever something was committed or verified; the state writer persists when it
    /// changes.
    pub fn commit_count(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    fn taken(
        &self,
        committed: &HashMap<(usize, FileId), u64>,
        dest: usize,
        inc: &Incarnation,
    ) -> u64 {
        let start = inc.start.get(&dest).copied().unwrap_or(0);
        committed
            .get(&(dest, inc.id))
            .copied()
            .unwrap_or(0)
            .max(start)
    }

    /// `inc` as a state entry, with what each destination has taken.
    fn file_state(
        &self,
        committed: &HashMap<(usize, FileId), u64>,
        inc: &Incarnation,
    ) -> FileState {
        FileState {
            id: inc.id,
            path: inc.path.clone(),
            dev: inc.dev,
            ino: inc.ino,
            fingerprint: inc.fingerprint,
            check: inc.check,
            offsets: inc
                .start
                .keys()
                .map(|&d| (self.dest_names[d].clone(), self.taken(committed, d, inc)))
                .collect(),
            created_ms: to_ms(inc.created),
            done: false,
        }
    }

    /// Finds new, rotated and deleted files, retires fully shipped ones, and persists changes.
    pub fn scan(&self) {
        let mut inner = lock(&self.inner);
        let mut dirty: HashSet<usize> = HashSet::new();
        let first = !inner.scanned;
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
                let Ok(meta) = fs::metadata(path) else {
                    continue;
                };
                if !meta.is_file() {
                    continue;
                }
                present.push(path.clone());
                let live = inner.files.iter_mut().find(|inc| {
                    inc.gone_since.is_none() && inc.input == input_ix && inc.path == *path
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
                        info!(path = %path.display(), id = %inc.id, "file rotated");
                        inc.gone_since = Some(Instant::now());
                    }
                    None => {}
                }
                changed = true;
                // The open descriptor pins the inode, so the same (device, inode) is the same file,
                // renamed to another name the input matches: it is read on where it was.
                if let Some(moved) = inner.files.iter_mut().find(|inc| {
                    inc.input == input_ix && (inc.dev, inc.ino) == (meta.dev(), meta.ino())
                }) {
                    let linked = moved.gone_since.is_none()
                        && fs::metadata(&moved.path)
                            .is_ok_and(|m| (m.dev(), m.ino()) == (moved.dev, moved.ino));
                    if linked {
                        // Another name (a hard link) of a file read at its own path.
                        continue;
                    }
                    info!(from = %moved.path.display(), to = %path.display(), id = %moved.id, "file renamed within the input");
                    moved.path = path.clone();
                    moved.gone_since = None;
                    dirty.insert(input_ix);
                    continue;
                }
                if self.open(&mut inner, input_ix, path, first) {
                    dirty.insert(input_ix);
                } else {
                    unopened = true;
                }
            }
            for inc in inner.files.iter_mut() {
                if inc.input == input_ix && inc.gone_since.is_none() && !present.contains(&inc.path)
                {
                    info!(path = %inc.path.display(), id = %inc.id, "file rotated away or deleted");
                    inc.gone_since = Some(Instant::now());
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

    /// Opens a newly found file as an incarnation, resuming saved state when it matches.
    fn open(&self, inner: &mut Inner, input_ix: usize, path: &Path, first: bool) -> bool {
        if self.at_open_limit(inner, path) {
            return false;
        }
        let input = &self.inputs[input_ix];
        // Before opening: a copy made of what is opened may not look older than the incarnation.
        let setup = SystemTime::now();
        let opened = File::open(path).and_then(|file| {
            let meta = file.metadata()?;
            let fingerprint = Span::fingerprint(&file)?;
            Ok((file, meta, fingerprint))
        });
        let (file, meta, fingerprint) = match opened {
            Ok(opened) => opened,
            Err(err) => {
                warn!(path = %path.display(), %err, "cannot open file");
                return false;
            }
        };
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
                let pos = exact.or_else(remounted)?;
                let saved = candidates.swap_remove(pos);
                if saved.dev != meta.dev() {
                    info!(path = %path.display(), id = %saved.id, from = saved.dev, to = meta.dev(), "device id changed; same inode and content, resuming");
                }
                Some(saved)
            });
        let resumed = saved.is_some();
        let (id, start, check, created) = match saved {
            Some(saved) => {
                let start = self.start_offsets(input_ix, |name| {
                    saved.offsets.get(name).copied().unwrap_or(0)
                });
                info!(path = %path.display(), id = %saved.id, ?start, "resuming file");
                (
                    saved.id,
                    start,
                    saved.check,
                    saved_created(saved.created_ms),
                )
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
                        return false;
                    }
                };
                info!(path = %path.display(), %id, offset = at, "new file");
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
            gone_since: None,
            created,
            start,
            saved: resumed,
        });
        true
    }

    /// Whether no further file may be opened now; says so once.
    fn at_open_limit(&self, inner: &mut Inner, path: &Path) -> bool {
        let full = inner.files.len() >= self.max_open;
        if full && !inner.open_limit_logged {
            warn!(limit = self.max_open, path = %path.display(), "open file limit reached; further files wait until others are finished");
            inner.open_limit_logged = true;
        }
        full
    }

    fn start_offsets(&self, input_ix: usize, at: impl Fn(&str) -> u64) -> BTreeMap<usize, u64> {
        self.routes[input_ix]
            .iter()
            .map(|&d| (d, at(&self.dest_names[d])))
            .collect()
    }

    /// State entries whose file is no longer at its path were rotated while we were stopped: find
    /// the same file in the same directory (renamed: same inode; copytruncate: a copy with the same
    /// content) and finish it under its id. An entry that cannot be opened now (the open-file
    /// limit, an error other than absence) stays a candidate, kept in the state, and is tried again
    /// at the next scan; so does one still at its path, which that path's scan resumes.
    fn adopt_saved(&self, inner: &mut Inner, dirty: &mut HashSet<usize>) {
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
                let start = self.start_offsets(input_ix, |name| {
                    saved.offsets.get(name).copied().unwrap_or(0)
                });
                inner.files.push(Incarnation {
                    id: saved.id,
                    input: input_ix,
                    path,
                    file: Arc::new(file),
                    dev: meta.dev(),
                    ino: meta.ino(),
                    fingerprint: saved.fingerprint,
                    check: saved.check,
                    gone_since: Some(Instant::now()),
                    created: saved_created(saved.created_ms),
                    start,
                    saved: true,
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
    fn adopt_unseen_since_saved(&self, inner: &mut Inner, dirty: &mut HashSet<usize>) {
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
    fn adopt_unseen(&self, inner: &mut Inner, input_ix: usize, since: SystemTime) -> bool {
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

    /// Closes rotated and deleted files that every destination has taken completely.
    fn retire(&self, inner: &mut Inner, dirty: &mut HashSet<usize>) {
        let committed = lock(&self.committed);
        let mut retired = false;
        let mut finished = Vec::new();
        inner.files.retain(|inc| {
            let Some(since) = inc.gone_since else {
                return true;
            };
            if since.elapsed() < ROTATE_WAIT {
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
                info!(path = %inc.path.display(), id = %inc.id, "finished rotated file");
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

    /// Follows finished files: one written to again (a late writer) is read on from where it
    /// ended; one renamed is followed beside its input; one gone is forgotten.
    fn follow_tombstones(&self, inner: &mut Inner, dirty: &mut HashSet<usize>) {
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

    /// A reader found `id` truncated (or rewritten): the file gets a new incarnation read from 0.
    /// When a copy of the old content sits beside it (copytruncate), the old incarnation goes on
    /// in the copy from where each destination was; `tail` is the bytes before `offset` the
    /// reader had seen, to recognise the copy.
    pub fn truncated(&self, id: FileId, file: &Arc<File>, offset: u64, tail: &[u8]) {
        let mut inner = lock(&self.inner);
        // Another destination's reader may have reported it first: the incarnation then goes on
        // in the copy (or was replaced), and this report about the old descriptor is stale.
        let Some(pos) = inner
            .files
            .iter()
            .position(|inc| inc.id == id && Arc::ptr_eq(&inc.file, file))
        else {
            return;
        };
        let Ok(new_id) = FileId::random() else {
            warn!("no randomness for a file id");
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
            old.fingerprint.matches(file).unwrap_or(false)
                && (tail_matches || check_matches || offset == 0)
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
            gone_since: old.gone_since,
            created: SystemTime::now(),
            start: old.start.keys().map(|&d| (d, 0)).collect(),
            saved: false,
        };
        if let Ok(fp) = Span::fingerprint(&fresh.file) {
            fresh.fingerprint = fp;
        }
        match copy {
            Some((path, file, meta)) => {
                warn!(path = %fresh.path.display(), old = %id, new = %new_id, copy = %path.display(), "file truncated; finishing the old content from its copy");
                let committed = lock(&self.committed);
                let old = &mut inner.files[pos];
                let start = old
                    .start
                    .keys()
                    .map(|&d| (d, self.taken(&committed, d, old)))
                    .collect();
                old.start = start;
                old.path = path;
                old.file = Arc::new(file);
                (old.dev, old.ino) = (meta.dev(), meta.ino());
                old.gone_since = Some(Instant::now());
            }
            None => {
                warn!(path = %fresh.path.display(), old = %id, new = %new_id, "file truncated; reading it again from the start");
                inner.files.remove(pos);
                lock(&self.committed).retain(|(_, file), _| *file != id);
            }
        }
        inner.files.push(fresh);
        inner.files.extend(unseen);
        self.persist_locked(inner, &HashSet::from([state_file]));
        self.publish();
    }

    /// Lets readers see the incarnations as they are now: called once they are in the state file,
    /// so that no line goes out under an id a restart would not know.
    fn publish(&self) {
        lock(&self.inner).generation += 1;
    }

    /// Writes every state file (on a timer and at shutdown).
    pub fn persist_all(&self) {
        let inner = lock(&self.inner);
        let all = self.inputs.iter().map(|i| i.state_file.clone()).collect();
        self.persist_locked(inner, &all);
    }

    /// A reader verified and read up to `offset`; `tail` is the bytes before it.
    pub fn witness(&self, id: FileId, offset: u64, tail: &[u8]) {
        let mut inner = lock(&self.inner);
        if let Some(inc) = inner.files.iter_mut().find(|inc| inc.id == id) {
            inc.check = Span {
                at: offset - tail.len() as u64,
                len: tail.len() as u32,
                hash: crate::hash::fnv1a(tail),
            };
            // A file found empty (e.g. just truncated) gets its fingerprint once it has content.
            if (inc.fingerprint.len as usize) < crate::hash::FINGERPRINT_BYTES
                && offset > u64::from(inc.fingerprint.len)
            {
                if let Ok(fp) = Span::fingerprint(&inc.file) {
                    inc.fingerprint = fp;
                }
            }
            self.commits.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Takes a snapshot under the registry lock, then writes it holding only the persist lock.
    fn persist_locked(&self, inner: MutexGuard<'_, Inner>, state_files: &HashSet<PathBuf>) {
        let mut failing = lock(&self.persist);
        let committed = lock(&self.committed);
        let mut out: BTreeMap<PathBuf, Vec<FileState>> = state_files
            .iter()
            .map(|p| (p.clone(), Vec::new()))
            .collect();
        let mut unsaved = HashSet::new();
        for inc in &inner.files {
            let Some(entries) = out.get_mut(&self.inputs[inc.input].state_file) else {
                continue;
            };
            if !inc.saved {
                unsaved.insert(inc.id);
            }
            entries.push(self.file_state(&committed, inc));
        }
        // Saved entries not opened yet, and finished files, are kept as they were.
        for (state_file, pending) in &inner.candidates {
            if let Some(entries) = out.get_mut(state_file) {
                entries.extend(pending.iter().cloned());
            }
        }
        for (input, tombstone) in &inner.tombstones {
            if let Some(entries) = out.get_mut(&self.inputs[*input].state_file) {
                entries.push(tombstone.clone());
            }
        }
        drop(committed);
        drop(inner);
        for (path, files) in out {
            match state::store(&path, files) {
                Err(err) if failing.insert(path.clone()) => {
                    warn!(path = %path.display(), %err, "state not saved; lines may be sent again after a restart");
                }
                Ok(()) if failing.remove(&path) => {
                    info!(path = %path.display(), "state saved again");
                }
                _ => {}
            }
        }
        drop(failing);
        // Shown to readers now. After a failed write too: shipping goes on while the state's disk
        // is full, at the cost of lines sent again after a crash then (said above, once).
        if !unsaved.is_empty() {
            let mut inner = lock(&self.inner);
            for inc in inner
                .files
                .iter_mut()
                .filter(|inc| unsaved.contains(&inc.id))
            {
                inc.saved = true;
            }
            inner.generation += 1;
        }
    }
}

fn to_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn from_ms(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

/// A saved creation time; state written before it was recorded counts as now.
fn saved_created(ms: u64) -> SystemTime {
    if ms == 0 {
        SystemTime::now()
    } else {
        from_ms(ms)
    }
}

/// A check of no bytes (nothing read yet).
const EMPTY: Span = Span {
    at: 0,
    len: 0,
    hash: 0xcbf2_9ce4_8422_2325,
};

/// Whether a saved entry still describes `file`'s content.
fn resumable(saved: &FileState, file: &File) -> bool {
    let ok = |span: &Span| span.matches(file).unwrap_or(false);
    ok(&saved.fingerprint) && ok(&saved.check)
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

fn open_files(inner: &Inner) -> HashSet<(u64, u64)> {
    inner.files.iter().map(|inc| (inc.dev, inc.ino)).collect()
}
