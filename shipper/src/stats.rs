//! The status file: the [`events`](crate::events) counters like the seed's comm.log statistics,
//! per destination and per file, logged every `stats_interval` and written atomically as JSON for
//! `estuary status`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use estuary_fsutil::{replace_with, Durability};
use serde::{Deserialize, Serialize};

use crate::events::{DestSnapshot, Events, FileCounts};

/// The status file's name in the work directory.
pub const STATUS_FILE: &str = "estuary-ship-status.json";

pub fn status_path(work_dir: &Path) -> PathBuf {
    work_dir.join(STATUS_FILE)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Unix seconds when written.
    pub time: u64,
    pub destinations: Vec<DestStatus>,
    pub files: Vec<FileStatus>,
    /// Paths the inputs name that are not read, and why.
    #[serde(default)]
    pub problems: BTreeMap<PathBuf, String>,
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
    /// The counters of `events` as they are now.
    pub fn of(events: &Events, unix_time: u64) -> Status {
        let mut by_path: BTreeMap<PathBuf, BTreeMap<String, FileCounts>> = BTreeMap::new();
        for dest in events.dests() {
            for (path, counts) in dest.files() {
                by_path
                    .entry(path)
                    .or_default()
                    .insert(dest.name().to_owned(), counts);
            }
        }
        Status {
            time: unix_time,
            destinations: events
                .dests()
                .iter()
                .map(|d| DestStatus {
                    name: d.name().to_owned(),
                    connected: d.is_connected(),
                    counters: d.counters().snapshot(),
                })
                .collect(),
            files: by_path
                .into_iter()
                .map(|(path, read)| FileStatus { path, read })
                .collect(),
            problems: events
                .problems()
                .into_iter()
                .map(|(path, problem)| (path, problem.to_string()))
                .collect(),
        }
    }

    /// One line per input path that is not read, saying why.
    pub fn problem_lines(&self) -> Vec<String> {
        self.problems
            .iter()
            .map(|(path, problem)| format!("input {}: {problem}", path.display()))
            .collect()
    }

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
