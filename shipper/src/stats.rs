//! Counters like the seed's comm.log statistics, per destination and per file, logged every
//! `stats_interval` and written atomically as JSON to the status file for `estuary status`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use estuary_fsutil::{replace_with, Durability};
use serde::{Deserialize, Serialize};

/// The status file's name in the work directory.
pub const STATUS_FILE: &str = "estuary-ship-status.json";

pub fn status_path(work_dir: &Path) -> PathBuf {
    work_dir.join(STATUS_FILE)
}

macro_rules! counters {
    ($name:ident, $snap:ident { $($field:ident),* $(,)? }) => {
        #[derive(Debug, Default)]
        pub struct $name { $(pub $field: AtomicU64,)* }

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

#[derive(Debug, Default)]
pub struct DestStats {
    pub counters: DestCounters,
    pub connected: AtomicBool,
}

impl DestStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCounts {
    pub lines_read: u64,
    pub bytes_read: u64,
}

#[derive(Debug)]
pub struct Stats {
    pub dests: Vec<(String, DestStats)>,
    /// Lines and bytes read per path, per destination.
    files: Mutex<Vec<BTreeMap<PathBuf, FileCounts>>>,
}

impl Stats {
    pub fn new(dest_names: &[String]) -> Stats {
        Stats {
            dests: dest_names
                .iter()
                .map(|n| (n.clone(), DestStats::default()))
                .collect(),
            files: Mutex::new(vec![BTreeMap::new(); dest_names.len()]),
        }
    }

    pub fn dest(&self, dest: usize) -> &DestStats {
        &self.dests[dest].1
    }

    pub fn file_read(&self, dest: usize, path: &Path, counts: FileCounts) {
        let mut files = self
            .files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(files) = files.get_mut(dest) else {
            return;
        };
        if !files.contains_key(path) {
            files.insert(path.to_owned(), FileCounts::default());
        }
        if let Some(at) = files.get_mut(path) {
            at.lines_read += counts.lines_read;
            at.bytes_read += counts.bytes_read;
        }
    }

    pub fn report(&self, unix_time: u64) -> Status {
        let files = self
            .files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut by_path: BTreeMap<PathBuf, BTreeMap<String, FileCounts>> = BTreeMap::new();
        for (dest, paths) in files.iter().enumerate() {
            for (path, counts) in paths {
                by_path
                    .entry(path.clone())
                    .or_default()
                    .insert(self.dests[dest].0.clone(), *counts);
            }
        }
        Status {
            time: unix_time,
            destinations: self
                .dests
                .iter()
                .map(|(name, s)| DestStatus {
                    name: name.clone(),
                    connected: s.connected.load(Ordering::Relaxed),
                    counters: s.counters.snapshot(),
                })
                .collect(),
            files: by_path
                .into_iter()
                .map(|(path, read)| FileStatus { path, read })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Unix seconds when written.
    pub time: u64,
    pub destinations: Vec<DestStatus>,
    pub files: Vec<FileStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestStatus {
    pub name: String,
    pub connected: bool,
    #[serde(flatten)]
    pub counters: DestSnapshot,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStatus {
    pub path: PathBuf,
    /// Per destination.
    pub read: BTreeMap<String, FileCounts>,
}

impl Status {
    /// One line per destination and per file, like comm.log's "statistics" lines.
    pub fn log_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for d in &self.destinations {
            let c = &d.counters;
            out.push(format!(
                "[{}] statistics: {} lines={}/{}/{}/{} bytes={}/{} retried={} split={} truncated={} partial={} connects={} errors={}/{}",
                d.name,
                if d.connected { "connected" } else { "disconnected" },
                c.lines_read,
                c.lines_sent,
                c.lines_acked,
                c.lines_read.saturating_sub(c.lines_acked),
                c.bytes_read,
                c.bytes_sent,
                c.lines_retried,
                c.lines_split,
                c.lines_truncated,
                c.lines_partial,
                c.connects,
                c.connect_errors,
                c.send_errors,
            ));
        }
        for f in &self.files {
            for (dest, counts) in &f.read {
                out.push(format!(
                    "[{}] file {}: lines={} bytes={}",
                    dest,
                    f.path.display(),
                    counts.lines_read,
                    counts.bytes_read
                ));
            }
        }
        out
    }

    /// Replaces the status file; a reader never sees it half-written.
    pub fn store(&self, path: &Path) -> io::Result<()> {
        replace_with(path, Durability::Visible, |out| {
            serde_json::to_writer_pretty(&mut *out, self).map_err(io::Error::other)?;
            out.write_all(b"\n")
        })
    }

    pub fn load(path: &Path) -> io::Result<Status> {
        let bytes = fs::read(path)?;
        serde_json::from_slice(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}
