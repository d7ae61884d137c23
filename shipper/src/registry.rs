//! Which file incarnations exist, and where each destination has taken them to.
//!
//! A file incarnation is one file's content from offset 0: found at a path by (device, inode) plus
//! a fingerprint of its first bytes, and given a random [`FileId`]. A rotated or deleted file stays
//! open until every destination has taken all of it. A truncation ends the incarnation and starts a
//! new one on the same descriptor. Every new incarnation is written to the state file before any
//! reader can see it, so a line is never sent under an id a restart would not know.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use estuary_config::shipper::{InputConfig, StartAt};
use tracing::{info, warn};

use crate::hash::Span;
use crate::state::{self, FileId, FileState};

/// How long a rotated or deleted file is kept open after its last growth, for late writers.
pub const ROTATE_WAIT: Duration = Duration::from_secs(5);
/// At most this many files are kept open; further files wait until others are finished.
pub const MAX_OPEN_FILES: usize = 960;

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
    gone_since: Option<Instant>,
    /// Start offset per routed destination.
    start: BTreeMap<usize, u64>,
}

#[derive(Debug)]
pub struct Registry {
    inputs: Vec<InputConfig>,
    /// Destination indexes each input is routed to.
    routes: Vec<Vec<usize>>,
    dest_names: Vec<String>,
    inner: Mutex<Inner>,
    /// Serialises state file writes so an older snapshot never overwrites a newer one.
    persist: Mutex<()>,
    /// Bytes taken per (destination, incarnation).
    committed: Mutex<HashMap<(usize, FileId), u64>>,
    commits: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    files: Vec<Incarnation>,
    /// State entries not yet matched to a file (first scan only).
    candidates: HashMap<PathBuf, Vec<FileState>>,
    scanned: bool,
    generation: u64,
    open_limit_logged: bool,
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
        for input in &inputs {
            if candidates.contains_key(&input.state_file) {
                continue;
            }
            let files = state::load(&input.state_file).unwrap_or_else(|err| {
                warn!(%err, "ignoring state; files will be read again from the start");
                Vec::new()
            });
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
            persist: Mutex::new(()),
            committed: Mutex::new(HashMap::new()),
            commits: AtomicU64::new(0),
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
            .filter_map(|inc| {
                Some(FileView {
                    id: inc.id,
                    input: inc.input,
                    path: inc.path.clone(),
                    file: inc.file.clone(),
                    start: *inc.start.get(&dest)?,
                    gone_since: inc.gone_since,
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

    /// Increases whenever something was committed; the state writer persists when it changes.
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

    /// Finds new, rotated and deleted files, retires fully shipped ones, and persists changes.
    pub fn scan(&self) {
        let mut inner = lock(&self.inner);
        let mut dirty: HashSet<usize> = HashSet::new();
        let first = !inner.scanned;
        for (input_ix, input) in self.inputs.iter().enumerate() {
            if self.routes[input_ix].is_empty() {
                continue;
            }
            let mut present = Vec::new();
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
                        info!(path = %path.display(), id = %inc.id, "file rotated");
                        inc.gone_since = Some(Instant::now());
                    }
                    None => {}
                }
                if self.open(&mut inner, input_ix, path, first) {
                    dirty.insert(input_ix);
                }
            }
            for inc in inner.files.iter_mut() {
                if inc.input == input_ix && inc.gone_since.is_none() && !present.contains(&inc.path)
                {
                    info!(path = %inc.path.display(), id = %inc.id, "file rotated away or deleted");
                    inc.gone_since = Some(Instant::now());
                }
            }
        }
        if first {
            self.adopt_rotated(&mut inner, &mut dirty);
            inner.scanned = true;
        }
        self.retire(&mut inner, &mut dirty);
        if !dirty.is_empty() {
            inner.generation += 1;
            let state_files: HashSet<PathBuf> = dirty
                .iter()
                .map(|&i| self.inputs[i].state_file.clone())
                .collect();
            self.persist_locked(inner, &state_files);
        }
    }

    /// Opens a newly found file as an incarnation, resuming saved state when it matches.
    fn open(&self, inner: &mut Inner, input_ix: usize, path: &Path, first: bool) -> bool {
        if inner.files.len() >= MAX_OPEN_FILES {
            if !inner.open_limit_logged {
                warn!(limit = MAX_OPEN_FILES, path = %path.display(), "open file limit reached; new files wait");
                inner.open_limit_logged = true;
            }
            return false;
        }
        let input = &self.inputs[input_ix];
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
        let saved = inner
            .candidates
            .get_mut(&input.state_file)
            .and_then(|candidates| {
                let pos = candidates.iter().position(|s| {
                    (s.dev, s.ino) == (meta.dev(), meta.ino()) && resumable(s, &file)
                })?;
                Some(candidates.swap_remove(pos))
            });
        let (id, start) = match saved {
            Some(saved) => {
                let start = self.start_offsets(input_ix, |name| {
                    saved.offsets.get(name).copied().unwrap_or(0)
                });
                info!(path = %path.display(), id = %saved.id, ?start, "resuming file");
                (saved.id, start)
            }
            None => {
                let at = match (first, input.start_at) {
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
                (id, self.start_offsets(input_ix, |_| at))
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
            gone_since: None,
            start,
        });
        true
    }

    fn start_offsets(&self, input_ix: usize, at: impl Fn(&str) -> u64) -> BTreeMap<usize, u64> {
        self.routes[input_ix]
            .iter()
            .map(|&d| (d, at(&self.dest_names[d])))
            .collect()
    }

    /// State entries whose file is no longer at its path may have been rotated while we were
    /// stopped: look for the same file in the same directory and finish it.
    fn adopt_rotated(&self, inner: &mut Inner, dirty: &mut HashSet<usize>) {
        let candidates = std::mem::take(&mut inner.candidates);
        for (state_file, entries) in candidates {
            for saved in entries {
                let Some(input_ix) = self.inputs.iter().position(|i| i.state_file == state_file)
                else {
                    continue;
                };
                match find_moved(&saved) {
                    Some((path, file)) => {
                        info!(from = %saved.path.display(), to = %path.display(), id = %saved.id, "finishing file rotated while stopped");
                        let start = self.start_offsets(input_ix, |name| {
                            saved.offsets.get(name).copied().unwrap_or(0)
                        });
                        inner.files.push(Incarnation {
                            id: saved.id,
                            input: input_ix,
                            path,
                            file: Arc::new(file),
                            dev: saved.dev,
                            ino: saved.ino,
                            fingerprint: saved.fingerprint,
                            gone_since: Some(Instant::now()),
                            start,
                        });
                    }
                    None => {
                        info!(path = %saved.path.display(), id = %saved.id, "forgetting state of a file that is gone")
                    }
                }
                dirty.insert(input_ix);
            }
        }
    }

    /// Closes rotated and deleted files that every destination has taken completely.
    fn retire(&self, inner: &mut Inner, dirty: &mut HashSet<usize>) {
        let committed = lock(&self.committed);
        let mut retired = Vec::new();
        inner.files.retain(|inc| {
            let Some(since) = inc.gone_since else {
                return true;
            };
            if since.elapsed() < ROTATE_WAIT {
                return true;
            }
            let Ok(len) = inc.file.metadata().map(|m| m.len()) else {
                return true;
            };
            let done = inc
                .start
                .keys()
                .all(|&d| self.taken(&committed, d, inc) >= len);
            if done {
                info!(path = %inc.path.display(), id = %inc.id, "finished rotated file");
                dirty.insert(inc.input);
                retired.push(inc.id);
            }
            !done
        });
        drop(committed);
        if !retired.is_empty() {
            lock(&self.committed).retain(|(_, id), _| !retired.contains(id));
        }
    }

    /// A reader found `id` truncated (or rewritten): start a new incarnation of the same file at 0.
    pub fn truncated(&self, id: FileId) {
        let mut inner = lock(&self.inner);
        let Some(pos) = inner.files.iter().position(|inc| inc.id == id) else {
            return;
        };
        let new_id = match FileId::random() {
            Ok(new_id) => new_id,
            Err(err) => {
                warn!(%err, "no randomness for a file id");
                return;
            }
        };
        let inc = &mut inner.files[pos];
        warn!(path = %inc.path.display(), old = %inc.id, new = %new_id, "file truncated; reading it again from the start");
        inc.id = new_id;
        inc.start.values_mut().for_each(|at| *at = 0);
        if let Ok(fp) = Span::fingerprint(&inc.file) {
            inc.fingerprint = fp;
        }
        let state_file = self.inputs[inc.input].state_file.clone();
        inner.generation += 1;
        lock(&self.committed).retain(|(_, file), _| *file != id);
        self.persist_locked(inner, &HashSet::from([state_file]));
    }

    /// Writes every state file (on a timer and at shutdown).
    pub fn persist_all(&self) {
        let inner = lock(&self.inner);
        let all = self.inputs.iter().map(|i| i.state_file.clone()).collect();
        self.persist_locked(inner, &all);
    }

    /// Takes a snapshot under the registry lock, then writes it holding only the persist lock.
    fn persist_locked(&self, inner: MutexGuard<'_, Inner>, state_files: &HashSet<PathBuf>) {
        let persist = lock(&self.persist);
        let committed = lock(&self.committed);
        let mut out: BTreeMap<PathBuf, Vec<(FileState, Arc<File>)>> = state_files
            .iter()
            .map(|p| (p.clone(), Vec::new()))
            .collect();
        for inc in &inner.files {
            let Some(entries) = out.get_mut(&self.inputs[inc.input].state_file) else {
                continue;
            };
            let offsets: BTreeMap<String, u64> = inc
                .start
                .keys()
                .map(|&d| (self.dest_names[d].clone(), self.taken(&committed, d, inc)))
                .collect();
            let state = FileState {
                id: inc.id,
                path: inc.path.clone(),
                dev: inc.dev,
                ino: inc.ino,
                fingerprint: inc.fingerprint,
                check: Span {
                    at: 0,
                    len: 0,
                    hash: crate::hash::fnv1a(b""),
                },
                offsets,
            };
            entries.push((state, inc.file.clone()));
        }
        drop(committed);
        drop(inner);
        for (path, entries) in out {
            let files = entries
                .into_iter()
                .map(|(mut state, file)| {
                    let max = state.offsets.values().copied().max().unwrap_or(0);
                    if let Ok(check) = Span::before(&file, max) {
                        state.check = check;
                    }
                    state
                })
                .collect();
            if let Err(err) = state::store(&path, files) {
                warn!(%err, "state not saved; lines may be sent again after a restart");
            }
        }
        drop(persist);
    }
}

/// Whether a saved entry still describes `file`'s content.
fn resumable(saved: &FileState, file: &File) -> bool {
    let ok = |span: &Span| span.matches(file).unwrap_or(false);
    ok(&saved.fingerprint) && ok(&saved.check)
}

/// The same incarnation elsewhere in the directory of its saved path (renamed by a rotation).
fn find_moved(saved: &FileState) -> Option<(PathBuf, File)> {
    let dir = saved.path.parent()?;
    for entry in fs::read_dir(dir).ok()?.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() || (meta.dev(), meta.ino()) != (saved.dev, saved.ino) {
            continue;
        }
        let path = entry.path();
        let file = File::open(&path).ok()?;
        return resumable(saved, &file).then_some((path, file));
    }
    None
}

/// The files a path or glob names, sorted.
fn expand(pattern: &Path) -> Vec<PathBuf> {
    let text = pattern.to_string_lossy();
    if !text.contains(['*', '?', '[']) {
        return vec![pattern.to_owned()];
    }
    match glob::glob(&text) {
        Ok(paths) => {
            let mut paths: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
            paths.sort();
            paths
        }
        Err(err) => {
            warn!(pattern = %text, %err, "bad glob");
            Vec::new()
        }
    }
}
