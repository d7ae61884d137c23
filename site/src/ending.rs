//! How a daemon started by `estuary start` or `cron` ended. It runs under a waiter (as zeekctl's
//! run wrapper runs Zeek) that records the exit status or signal in a file beside the pid file;
//! crash reports, `status` and `diag` print it.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use estuary_fsutil::Durability;
use serde::{Deserialize, Serialize};

/// The record beside `pid_file` (`ship.pid` → `ship.exit`).
pub fn record_path(pid_file: &Path) -> PathBuf {
    pid_file.with_extension("exit")
}

/// How one process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ending {
    pub pid: u32,
    pub how: How,
    /// Seconds since the epoch.
    pub at: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum How {
    Exited(i32),
    Signal(i32),
}

impl How {
    fn of(status: ExitStatus) -> How {
        match (status.code(), status.signal()) {
            (Some(code), _) => How::Exited(code),
            (None, Some(sig)) => How::Signal(sig),
            // Neither is only possible for a stopped process, which `wait` does not report.
            (None, None) => How::Exited(-1),
        }
    }
}

impl fmt::Display for How {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            How::Exited(code) => write!(f, "exited with status {code}"),
            How::Signal(sig) => match nix::sys::signal::Signal::try_from(sig) {
                Ok(name) => write!(f, "killed by signal {sig} ({})", name.as_str()),
                Err(_) => write!(f, "killed by signal {sig}"),
            },
        }
    }
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = UNIX_EPOCH + Duration::from_secs(self.at);
        write!(
            f,
            "{} at {}",
            self.how,
            humantime::format_rfc3339_seconds(at)
        )
    }
}

/// The recorded ending of process `pid`, if the record is about that process.
pub fn read(pid_file: &Path, pid: u32) -> Option<Ending> {
    let bytes = std::fs::read(record_path(pid_file)).ok()?;
    serde_json::from_slice::<Ending>(&bytes)
        .ok()
        .filter(|e| e.pid == pid)
}

/// The waiter: runs `exe args`, waits for it, records how it ended in `record` and returns that
/// status. Signals sent to the daemon's pid (stop's SIGTERM, a reload's exec) are the daemon's.
pub fn run_and_record(record: &Path, exe: &Path, args: &[OsString]) -> io::Result<ExitStatus> {
    let mut child = Command::new(exe).args(args).spawn()?;
    let status = child.wait()?;
    let ending = Ending {
        pid: child.id(),
        how: How::of(status),
        at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs(),
    };
    let text = serde_json::to_vec(&ending).map_err(io::Error::other)?;
    if let Err(err) = estuary_fsutil::replace(record, &text, Durability::Visible) {
        tracing::warn!(record = %record.display(), %err, "cannot record how the daemon ended");
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_is_named() {
        assert_eq!(How::Signal(9).to_string(), "killed by signal 9 (SIGKILL)");
        assert_eq!(How::Exited(1).to_string(), "exited with status 1");
    }
}
