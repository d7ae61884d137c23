//! Per-peer counters, appended to StatsLog every interval (one line per peer, epoch first, like
//! the seed's comm.log statistics) and written to `SpoolDir/status.json` for `estuary status`.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::clock::unix_secs;
use crate::fsutil::write_atomic;

pub const STATUS_FILE: &str = "status.json";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub received: u64,
    pub accepted: u64,
    pub refused: u64,
    pub malformed: u64,
    pub duplicates: u64,
    pub bytes: u64,
}

/// The seed's comm.log style: `received=.. accepted=.. refused=.. malformed=.. duplicates=.. bytes=..`.
impl fmt::Display for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "received={} accepted={} refused={} malformed={} duplicates={} bytes={}",
            self.received, self.accepted, self.refused, self.malformed, self.duplicates, self.bytes
        )
    }
}

/// What `estuary status` prints: the age of the snapshot, backpressure, one line per peer.
impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let age = unix_secs(SystemTime::now()).saturating_sub(self.time);
        writeln!(f, "aggregator status (pid {}) as of {age}s ago", self.pid)?;
        if self.disk_paused {
            writeln!(
                f,
                "disk below the hard floor: reading and acknowledging paused"
            )?;
        }
        for (peer, counters) in &self.peers {
            writeln!(f, "peer {peer} {counters}")?;
        }
        Ok(())
    }
}

impl Counters {
    pub fn add(&mut self, other: &Counters) {
        self.received += other.received;
        self.accepted += other.accepted;
        self.refused += other.refused;
        self.malformed += other.malformed;
        self.duplicates += other.duplicates;
        self.bytes += other.bytes;
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Status {
    pub time: u64,
    pub pid: u32,
    pub peers: BTreeMap<String, Counters>,
    /// Whether the writer is holding back because the disk is below the hard floor.
    pub disk_paused: bool,
}

#[derive(Debug, Default)]
pub struct Stats {
    peers: Mutex<BTreeMap<String, Counters>>,
    paused: std::sync::atomic::AtomicBool,
}

impl Stats {
    pub fn add(&self, peer: &str, delta: &Counters) {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        match peers.get_mut(peer) {
            Some(c) => c.add(delta),
            None => {
                peers.insert(peer.to_owned(), *delta);
            }
        }
    }

    pub fn set_paused(&self, paused: bool) {
        self.paused
            .store(paused, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn snapshot(&self, now: SystemTime) -> Status {
        Status {
            time: unix_secs(now),
            pid: std::process::id(),
            peers: self.peers.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            disk_paused: self.paused.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Appends one line per peer to StatsLog and replaces the status file.
    pub fn write(&self, stats_log: &Path, spool_dir: &Path, now: SystemTime) -> io::Result<()> {
        self.append_log(stats_log, now)?;
        self.write_status(spool_dir, now)
    }

    pub fn write_status(&self, spool_dir: &Path, now: SystemTime) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(&self.snapshot(now)).map_err(io::Error::other)?;
        write_atomic(&spool_dir.join(STATUS_FILE), &json)
    }

    pub fn append_log(&self, stats_log: &Path, now: SystemTime) -> io::Result<()> {
        let status = self.snapshot(now);
        let mut lines = String::new();
        for (peer, c) in &status.peers {
            lines.push_str(&format!("{} peer {peer} {c}\n", status.time));
        }
        if !lines.is_empty() {
            if let Some(dir) = stats_log.parent() {
                std::fs::create_dir_all(dir)?;
            }
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(stats_log)?
                .write_all(lines.as_bytes())?;
        }
        Ok(())
    }
}

/// Reads the status file a running aggregator writes.
pub fn read_status(spool_dir: &Path) -> io::Result<Status> {
    let bytes = std::fs::read(spool_dir.join(STATUS_FILE))?;
    serde_json::from_slice(&bytes).map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_log_and_status() {
        let dir = tempfile::tempdir().unwrap();
        let s = Stats::default();
        s.add(
            "127.0.0.1",
            &Counters {
                received: 2,
                accepted: 1,
                duplicates: 1,
                bytes: 10,
                ..Counters::default()
            },
        );
        s.add(
            "127.0.0.1",
            &Counters {
                received: 1,
                malformed: 1,
                ..Counters::default()
            },
        );
        let log = dir.path().join("stats.log");
        s.write(&log, dir.path(), crate::clock::from_unix_secs(100))
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "100 peer 127.0.0.1 received=3 accepted=1 refused=0 malformed=1 duplicates=1 bytes=10\n"
        );
        let status = read_status(dir.path()).unwrap();
        assert_eq!(status.peers["127.0.0.1"].received, 3);
    }
}
