//! Which file incarnations exist, and where each destination has taken them to.
//!
//! A file incarnation is one file's content from offset 0: found at a path by (device, inode) plus
//! a fingerprint of its first bytes, and given a random [`FileId`]. A rotated or deleted file stays
//! open until every destination has taken all of it. A truncation ends the incarnation and starts a
//! new one on the same descriptor. Every new incarnation is written to the state file before any
//! reader can see it, so a line is never sent under an id a restart would not know.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use estuary_config::shipper::InputConfig;
use tracing::warn;

use crate::events::Events;
use crate::hash::Span;
use crate::names::names;
use crate::state::{self, FileId, FileState, StateStore};

mod adopt;
mod lifecycle;
mod persist;
mod retire;
mod scan;

use lifecycle::Lifecycle;

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
    lifecycle: Lifecycle,
    /// When this incarnation was set up: copies made later may hold its content.
    created: SystemTime,
    /// Start offset per routed destination.
    start: BTreeMap<usize, u64>,
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
            lifecycle: Lifecycle::FoundGone {
                since: Instant::now(),
            },
            created: SystemTime::now(),
            start,
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
    /// The state files as this process wrote them.
    states: StateStore,
    events: Arc<Events>,
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
        events: Arc<Events>,
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
            states: StateStore::default(),
            events,
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
            .filter(|inc| inc.lifecycle.is_saved())
            .filter_map(|inc| {
                Some(FileView {
                    id: inc.id,
                    input: inc.input,
                    path: inc.path.clone(),
                    file: inc.file.clone(),
                    start: *inc.start.get(&dest)?,
                    gone_since: inc.lifecycle.gone_since(),
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

    /// Lets readers see the incarnations as they are now: called once they are in the state file,
    /// so that no line goes out under an id a restart would not know.
    fn publish(&self) {
        lock(&self.inner).generation += 1;
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

fn open_files(inner: &Inner) -> HashSet<(u64, u64)> {
    inner.files.iter().map(|inc| (inc.dev, inc.ino)).collect()
}
