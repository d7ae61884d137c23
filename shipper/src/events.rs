//! What happens in the shipper, in one place (as Vector's internal events): every event is
//! counted and traced here, and nowhere else. The counters are atomics read through snapshots:
//! they feed the status file, and any other reporter can read them the same way.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::state::FileId;

macro_rules! counters {
    ($name:ident, $snap:ident { $($field:ident),* $(,)? }) => {
        #[derive(Debug, Default)]
        pub struct $name { $($field: AtomicU64,)* }

        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct $snap { $(pub $field: u64,)* }

        impl $name {
            pub fn snapshot(&self) -> $snap {
                $snap { $($field: self.$field.load(Ordering::Relaxed),)* }
            }
        }
    };
}

counters!(
    DestCounters,
    DestSnapshot {
        lines_read,
        bytes_read,
        lines_sent,
        bytes_sent,
        lines_acked,
        lines_retried,
        lines_split,
        lines_truncated,
        lines_partial,
        connects,
        connect_errors,
        send_errors,
    }
);

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Lines and bytes read from one file for one destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCounts {
    pub lines_read: u64,
    pub bytes_read: u64,
}

/// What one read of a file gave a destination's reader.
#[derive(Debug, Default)]
pub struct LinesRead {
    pub counts: FileCounts,
    /// Long lines cut into pieces, cut short, and unterminated lines sent as they were.
    pub split: u64,
    pub truncated: u64,
    pub partial: u64,
}

/// How a destination is reached; it decides the words of the log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Udp,
    Tcp,
    Relp,
}

/// Everything that happens for one destination.
#[derive(Debug)]
pub struct DestEvents {
    name: String,
    counters: DestCounters,
    connected: AtomicBool,
    /// Lines and bytes read per path.
    files: Mutex<BTreeMap<PathBuf, FileCounts>>,
}

impl DestEvents {
    fn new(name: String) -> Self {
        DestEvents {
            name,
            counters: DestCounters::default(),
            connected: AtomicBool::new(false),
            files: Mutex::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn counters(&self) -> &DestCounters {
        &self.counters
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Lines and bytes read so far, per path.
    pub fn files(&self) -> BTreeMap<PathBuf, FileCounts> {
        lock(&self.files).clone()
    }

    /// A reader cut lines from `path`.
    pub fn lines_read(&self, path: &Path, read: &LinesRead) {
        let c = &self.counters;
        add(&c.lines_read, read.counts.lines_read);
        add(&c.bytes_read, read.counts.bytes_read);
        add(&c.lines_split, read.split);
        add(&c.lines_truncated, read.truncated);
        add(&c.lines_partial, read.partial);
        let mut files = lock(&self.files);
        if !files.contains_key(path) {
            files.insert(path.to_owned(), FileCounts::default());
        }
        if let Some(at) = files.get_mut(path) {
            at.lines_read += read.counts.lines_read;
            at.bytes_read += read.counts.bytes_read;
        }
    }

    /// A connection (for RELP: a session) is up.
    pub fn connected(&self, link: Link) {
        match link {
            Link::Tcp => info!(dest = %self.name, "connected"),
            Link::Relp => info!(dest = %self.name, "RELP session open"),
            Link::Udp => {}
        }
        add(&self.counters.connects, 1);
        self.connected.store(true, Ordering::Relaxed);
    }

    pub fn connect_failed(&self, link: Link, err: &dyn Display) {
        match link {
            Link::Udp => warn!(dest = %self.name, %err, "cannot set up UDP; will retry"),
            Link::Tcp | Link::Relp => warn!(dest = %self.name, %err, "cannot connect; will retry"),
        }
        add(&self.counters.connect_errors, 1);
    }

    /// The peer closed a connection that was idle.
    pub fn peer_closed(&self) {
        info!(dest = %self.name, "connection closed by peer");
        self.disconnected();
    }

    pub fn disconnected(&self) {
        self.connected.store(false, Ordering::Relaxed);
    }

    /// Writing or sending failed; the lines go again on the next connection (UDP: are lost).
    pub fn send_failed(&self, link: Link, err: &dyn Display) {
        match link {
            Link::Udp => warn!(dest = %self.name, %err, "UDP send failed"),
            Link::Tcp => warn!(dest = %self.name, %err, "write failed; reconnecting"),
            Link::Relp => warn!(dest = %self.name, %err, "RELP write failed; reconnecting"),
        }
        add(&self.counters.send_errors, 1);
    }

    /// The RELP server refused a message; it is sent again on a new session.
    pub fn rejected(&self, message: &dyn Display) {
        warn!(dest = %self.name, %message, "RELP server rejected a message; reconnecting to send it again");
        add(&self.counters.send_errors, 1);
    }

    pub fn sent(&self, lines: u64, bytes: u64) {
        add(&self.counters.lines_sent, lines);
        add(&self.counters.bytes_sent, bytes);
    }

    /// The destination has taken lines: acknowledged (RELP), written to the socket (TCP) or sent
    /// (UDP).
    pub fn taken(&self, lines: u64) {
        add(&self.counters.lines_acked, lines);
    }

    /// Lines sent once more after a connection was lost before they were taken.
    pub fn retried(&self, lines: u64) {
        add(&self.counters.lines_retried, lines);
    }
}

/// Why a path an input names is not read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InputProblem {
    /// A FIFO, socket, device or directory: only regular files are tailed.
    NotAFile { kind: String },
    /// It cannot be looked at or opened (permission denied, a symbolic link loop ...).
    Unreadable { error: String },
}

impl InputProblem {
    pub fn not_a_file(file_type: std::fs::FileType) -> InputProblem {
        use std::os::unix::fs::FileTypeExt;
        let kind = if file_type.is_fifo() {
            "a FIFO"
        } else if file_type.is_socket() {
            "a socket"
        } else if file_type.is_dir() {
            "a directory"
        } else if file_type.is_block_device() || file_type.is_char_device() {
            "a device"
        } else {
            "not a regular file"
        };
        InputProblem::NotAFile { kind: kind.into() }
    }

    pub fn unreadable(error: &std::io::Error) -> InputProblem {
        InputProblem::Unreadable {
            error: error.to_string(),
        }
    }
}

impl Display for InputProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InputProblem::NotAFile { kind } => {
                write!(f, "is {kind}; only regular files are read")
            }
            InputProblem::Unreadable { error } => write!(f, "cannot be read: {error}"),
        }
    }
}

/// The shipper's events: one [`DestEvents`] per destination, and the inputs' problems.
#[derive(Debug)]
pub struct Events {
    dests: Vec<DestEvents>,
    /// What the last look at the inputs found wrong, per path.
    problems: Mutex<BTreeMap<PathBuf, InputProblem>>,
}

impl Events {
    pub fn new(dest_names: &[String]) -> Events {
        Events {
            dests: dest_names
                .iter()
                .map(|n| DestEvents::new(n.clone()))
                .collect(),
            problems: Mutex::default(),
        }
    }

    /// The problems a look at every input found: each is logged when it first appears or
    /// changes, not at every look, and once more when it is gone.
    pub fn inputs_looked_at(&self, found: BTreeMap<PathBuf, InputProblem>) {
        let mut known = lock(&self.problems);
        let (new, gone) = news(&known, &found);
        for (path, problem) in new {
            warn!(path = %path.display(), %problem, "input not read");
        }
        for path in gone {
            info!(path = %path.display(), "input problem gone");
        }
        *known = found;
    }

    /// The inputs' problems as the last look found them.
    pub fn problems(&self) -> BTreeMap<PathBuf, InputProblem> {
        lock(&self.problems).clone()
    }

    pub fn dest(&self, dest: usize) -> &DestEvents {
        &self.dests[dest]
    }

    pub fn dests(&self) -> &[DestEvents] {
        &self.dests
    }
}

/// What a look at the inputs found that the previous one did not: problems new or changed, and
/// paths whose problem is gone.
fn news<'a>(
    known: &BTreeMap<PathBuf, InputProblem>,
    found: &'a BTreeMap<PathBuf, InputProblem>,
) -> (Vec<(&'a PathBuf, &'a InputProblem)>, Vec<PathBuf>) {
    let new = found
        .iter()
        .filter(|(path, problem)| known.get(*path) != Some(*problem))
        .collect();
    let gone = known
        .keys()
        .filter(|path| !found.contains_key(*path))
        .cloned()
        .collect();
    (new, gone)
}

/// Events of the files the inputs name, traced (the registry's view of their lifecycle).
pub mod file {
    use super::*;

    pub fn new(path: &Path, id: FileId, offset: u64) {
        info!(path = %path.display(), %id, offset, "new file");
    }

    pub fn resumed(path: &Path, id: FileId, start: &BTreeMap<usize, u64>) {
        info!(path = %path.display(), %id, ?start, "resuming file");
    }

    /// Another file now sits at the path.
    pub fn rotated(path: &Path, id: FileId) {
        info!(path = %path.display(), %id, "file rotated");
    }

    /// Nothing sits at the path any more.
    pub fn rotated_away(path: &Path, id: FileId) {
        info!(path = %path.display(), %id, "file rotated away or deleted");
    }

    pub fn renamed(from: &Path, to: &Path, id: FileId) {
        info!(from = %from.display(), to = %to.display(), %id, "file renamed within the input");
    }

    /// Truncated; the old content goes on in `copy` when one was found (copytruncate).
    pub fn truncated(path: &Path, old: FileId, new: FileId, copy: Option<&Path>) {
        match copy {
            Some(copy) => {
                warn!(path = %path.display(), %old, %new, copy = %copy.display(), "file truncated; finishing the old content from its copy")
            }
            None => {
                warn!(path = %path.display(), %old, %new, "file truncated; reading it again from the start")
            }
        }
    }

    /// Every destination has taken all of a rotated file: it is closed.
    pub fn finished(path: &Path, id: FileId) {
        info!(path = %path.display(), %id, "finished rotated file");
    }

    pub fn read_failed(path: &Path, err: &dyn Display) {
        warn!(path = %path.display(), %err, "read failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_problem_is_news_once_again_when_it_changes_and_once_when_gone() {
        let path = PathBuf::from("/logs/conn.log");
        let denied = InputProblem::Unreadable {
            error: "Permission denied (os error 13)".into(),
        };
        let fifo = InputProblem::NotAFile {
            kind: "a FIFO".into(),
        };
        let look = |problem: Option<&InputProblem>| -> BTreeMap<PathBuf, InputProblem> {
            problem
                .map(|p| (path.clone(), p.clone()))
                .into_iter()
                .collect()
        };
        let mut known = BTreeMap::new();
        let mut seen = Vec::new();
        for problem in [
            Some(&denied),
            Some(&denied),
            Some(&fifo),
            Some(&fifo),
            None,
            None,
        ] {
            let found = look(problem);
            let (new, gone) = news(&known, &found);
            seen.push((new.len(), gone.len()));
            known = found;
        }
        assert_eq!(seen, [(1, 0), (0, 0), (1, 0), (0, 0), (0, 1), (0, 0)]);
    }
}
