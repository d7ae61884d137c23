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

use crate::clock::{from_unix_secs, unix_secs};
use estuary_fsutil::Durability;

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

impl Status {
    /// What `estuary status` prints: when the daemon started and when the snapshot was taken
    /// (in `TimeFmt`, as `zeekctl status` prints its Started column), backpressure, one line
    /// per peer.
    pub fn report(&self, time_fmt: &str, now: SystemTime) -> String {
        use std::fmt::Write as _;
        let at = |secs| crate::mail::format_time(time_fmt, from_unix_secs(secs));
        let age = unix_secs(now).saturating_sub(self.time);
        let mut out = format!("aggregator status (pid {})", self.pid);
        if self.started > 0 {
            let _ = write!(out, ", started {}", at(self.started));
        }
        let _ = writeln!(out, ", as of {} ({age}s ago)", at(self.time));
        if self.disk_paused {
            out.push_str("disk below the hard floor: reading and acknowledging paused\n");
        }
        for (peer, counters) in &self.peers {
            let _ = writeln!(out, "peer {peer} {counters}");
        }
        out
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
    /// When the daemon started (epoch seconds; 0 in files from before this field).
    #[serde(default)]
    pub started: u64,
    pub pid: u32,
    pub peers: BTreeMap<String, Counters>,
    /// Whether the writer is holding back because the disk is below the hard floor.
    pub disk_paused: bool,
}

#[derive(Debug, Default)]
pub struct Stats {
    started: u64,
    peers: Mutex<BTreeMap<String, Counters>>,
    paused: std::sync::atomic::AtomicBool,
    /// Held while the status file is replaced: the periodic write (a blocking job that
    /// outlives its aborted task at shutdown) and the final one share its temporary file.
    status_file: Mutex<()>,
}

impl Stats {
    pub fn new(started: SystemTime) -> Self {
        Self {
            started: unix_secs(started),
            ..Self::default()
        }
    }

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
            started: self.started,
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

    /// Replaces the status file atomically but without fsync: it is a snapshot rewritten every
    /// second, and two fsyncs a second cost a loaded disk more than a lost snapshot is worth.
    pub fn write_status(&self, spool_dir: &Path, now: SystemTime) -> io::Result<()> {
        let _writing = self.status_file.lock().unwrap_or_else(|p| p.into_inner());
        let json = serde_json::to_vec_pretty(&self.snapshot(now)).map_err(io::Error::other)?;
        estuary_fsutil::replace(&spool_dir.join(STATUS_FILE), &json, Durability::Visible)
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

/// `estuary status` for an aggregator: what the running daemon last wrote, times in `TimeFmt`.
pub fn status(config: &estuary_config::aggregator::AggregatorConfig) -> io::Result<String> {
    Ok(read_status(&config.spool_dir)?.report(&config.time_fmt, SystemTime::now()))
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
        std::env::set_var("TZ", "UTC");
        let status = Stats::new(crate::clock::from_unix_secs(1_795_352_400))
            .snapshot(crate::clock::from_unix_secs(1_795_356_000));
        let report = status.report(
            "%Y-%m-%d %H:%M:%S",
            crate::clock::from_unix_secs(1_795_356_010),
        );
        assert!(
            report.starts_with(&format!(
                "aggregator status (pid {}), started 2026-11-22 13:00:00, as of 2026-11-22 14:00:00 (10s ago)\n",
                std::process::id()
            )),
            "{report}"
        );
    }

    /// Shutdown aborts the status task, but its blocking write goes on while the final one
    /// starts: both used the same temporary file, so one could rename the other's away (ENOENT,
    /// a non-zero exit after a clean SIGTERM) or leave a truncated status.json.
    #[test]
    fn concurrent_status_writes_do_not_trip_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let stats = std::sync::Arc::new(Stats::new(crate::clock::from_unix_secs(100)));
        stats.add("127.0.0.1", &Counters::default());
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let (stats, dir) = (stats.clone(), dir.path().to_path_buf());
                std::thread::spawn(move || {
                    for i in 0..300 {
                        stats.write_status(&dir, crate::clock::from_unix_secs(i))?;
                    }
                    io::Result::Ok(())
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap().unwrap();
        }
        assert_eq!(read_status(dir.path()).unwrap().peers.len(), 1);
    }
}
