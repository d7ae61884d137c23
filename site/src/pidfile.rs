//! A daemon's pid file in its spool, as zeekctl keeps one per node: written at start, removed at
//! a clean exit. A pid file whose process is gone means the daemon crashed.
//!
//! The file also holds the process's start time in clock ticks since boot, so a pid reused by
//! an unrelated process after a crash is not taken for the daemon.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use estuary_fsutil::Durability;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum PidFileError {
    #[error("{}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: not a pid file", path.display())]
    Format {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("already running as pid {pid} (pid file {})", path.display())]
    Running { path: PathBuf, pid: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    pid: u32,
    /// Field 22 of `/proc/<pid>/stat`.
    start_ticks: u64,
    /// Wall clock at start, seconds since the epoch.
    started: u64,
}

/// What a pid file says about its daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonState {
    Running {
        pid: u32,
        started: SystemTime,
    },
    /// The pid file is there but its process is not: killed, or died without cleaning up.
    Crashed {
        pid: u32,
        started: SystemTime,
    },
    /// No pid file: never started, or stopped cleanly.
    Stopped,
}

impl DaemonState {
    /// `self`, except that this very process counts as stopped.
    fn filter_other(self) -> DaemonState {
        match self {
            DaemonState::Running { pid, .. } if pid == std::process::id() => DaemonState::Stopped,
            other => other,
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self, DaemonState::Running { .. })
    }

    /// `running (pid 12, up 3m 4s)`, `crashed (pid 12 is gone)` or `stopped`.
    pub fn describe(&self, now: SystemTime) -> String {
        match self {
            DaemonState::Running { pid, started } => {
                let up = now.duration_since(*started).unwrap_or_default();
                format!("running (pid {pid}, up {})", uptime(up))
            }
            DaemonState::Crashed { pid, .. } => format!("crashed (pid {pid} is gone)"),
            DaemonState::Stopped => "stopped".to_owned(),
        }
    }
}

/// `2d 3h`, `4h 5m`, `3m 4s`: the two largest units, as uptime tools print it.
fn uptime(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

/// The daemons that keep a pid file, named as their subcommands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Daemon {
    Ship,
    Aggregate,
    Sensor,
    Forward,
}

impl Daemon {
    pub fn name(self) -> &'static str {
        match self {
            Daemon::Ship => "shipper",
            Daemon::Aggregate => "aggregator",
            Daemon::Sensor => "sensor",
            Daemon::Forward => "forwarder",
        }
    }

    /// Its pid file in `spool` (the aggregator's SpoolDir, the shipper's work_dir).
    pub fn pid_path(self, spool: &Path) -> PathBuf {
        let file = match self {
            Daemon::Ship => "estuary-ship.pid",
            Daemon::Aggregate => "estuary-aggregate.pid",
            Daemon::Sensor => "estuary-sensor.pid",
            Daemon::Forward => "estuary-forward.pid",
        };
        spool.join(file)
    }
}

/// The pid file of this process; removed when dropped (a clean exit).
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Writes the pid file of the current process at `path`, refusing when a live daemon holds
    /// it; a stale file left by a crash, or one that is not a pid file at all, is replaced. The
    /// folder must exist (a daemon creates its spool only once it has started).
    pub fn create(path: &Path) -> Result<PidFile, PidFileError> {
        let io = |source| PidFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        // The same pid is this process after an exec (a reload): the file is its own.
        match state(path).map(DaemonState::filter_other) {
            Ok(DaemonState::Running { pid, .. }) => {
                return Err(PidFileError::Running {
                    path: path.to_path_buf(),
                    pid,
                })
            }
            Ok(_) => {}
            // Nothing can run under a file nobody can read: replace it.
            Err(e @ PidFileError::Format { .. }) => tracing::warn!(%e, "replacing it"),
            Err(e) => return Err(e),
        }
        let pid = std::process::id();
        let record = Record {
            pid,
            start_ticks: start_ticks(pid).ok_or_else(|| io(io::Error::other("no /proc entry")))?,
            started: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs(),
        };
        // Serializing three integers cannot fail.
        let text = serde_json::to_string(&record).expect("serialize a pid record") + "\n";
        estuary_fsutil::replace(path, text.as_bytes(), Durability::Visible).map_err(io)?;
        Ok(PidFile {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// The state of the daemon whose pid file is `path`.
pub fn state(path: &Path) -> Result<DaemonState, PidFileError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(DaemonState::Stopped),
        Err(source) => {
            return Err(PidFileError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let record: Record = serde_json::from_str(&text).map_err(|source| PidFileError::Format {
        path: path.to_path_buf(),
        source,
    })?;
    let started = UNIX_EPOCH + Duration::from_secs(record.started);
    let pid = record.pid;
    Ok(if start_ticks(pid) == Some(record.start_ticks) {
        DaemonState::Running { pid, started }
    } else {
        DaemonState::Crashed { pid, started }
    })
}

/// When a live (not zombie) process started, in clock ticks since boot; `None` if it is gone.
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: fields after the last
    // `)` start at field 3 (state); start time is field 22.
    let mut rest = stat.rsplit_once(')')?.1.split_whitespace();
    let state = rest.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    rest.nth(18)?.parse().ok()
}

/// The parent of a live process (field 4 of `/proc/<pid>/stat`).
pub fn parent_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_then_stopped_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pid");
        let pid = PidFile::create(&path).unwrap();
        assert!(matches!(
            state(&path).unwrap(),
            DaemonState::Running { pid, .. } if pid == std::process::id()
        ));
        drop(pid);
        assert_eq!(state(&path).unwrap(), DaemonState::Stopped);
    }

    #[test]
    fn a_file_whose_process_is_gone_is_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pid");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let record = Record {
            pid,
            start_ticks: 1,
            started: 0,
        };
        fs::write(&path, serde_json::to_string(&record).unwrap()).unwrap();
        assert!(matches!(
            state(&path).unwrap(),
            DaemonState::Crashed { pid: p, .. } if p == pid
        ));
        // A pid reused by another process (same pid, other start time) is a crash as well.
        let me = Record {
            pid: std::process::id(),
            start_ticks: start_ticks(std::process::id()).unwrap() + 1,
            started: 0,
        };
        fs::write(&path, serde_json::to_string(&me).unwrap()).unwrap();
        assert!(matches!(state(&path).unwrap(), DaemonState::Crashed { .. }));
        // A crashed daemon's file is taken over at the next start.
        let new = PidFile::create(&path).unwrap();
        assert!(state(&path).unwrap().is_running());
        drop(new);
        // So is one that is not a pid file (a disk that filled up while it was written).
        fs::write(&path, "{\"pid\":").unwrap();
        assert!(matches!(state(&path), Err(PidFileError::Format { .. })));
        let _new = PidFile::create(&path).unwrap();
        assert!(state(&path).unwrap().is_running());
    }

    #[test]
    fn uptime_shows_two_units() {
        assert_eq!(uptime(Duration::from_secs(59)), "59s");
        assert_eq!(uptime(Duration::from_secs(184)), "3m 4s");
        assert_eq!(
            uptime(Duration::from_secs(2 * 86400 + 3 * 3600 + 9)),
            "2d 3h"
        );
    }
}
