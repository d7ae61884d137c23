//! The status the daemon publishes: per-peer counters and refusals per reason (counted by
//! [`crate::events`]), appended to StatsLog every interval (one line per peer, epoch first, like
//! the seed's comm.log statistics) and written to `SpoolDir/status.json` for `estuary status`.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use estuary_fsutil::Durability;
use serde::{Deserialize, Serialize};

use crate::clock::{from_unix_secs, unix_secs, Zone};

/// How often `status.json` is refreshed; StatsLog gets a line per peer every five minutes.
const STATUS_EVERY: Duration = Duration::from_secs(1);

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
    pub fn report(&self, time_fmt: &str, zone: Zone, now: SystemTime) -> String {
        use std::fmt::Write as _;
        let at = |secs| zone.format_time(time_fmt, from_unix_secs(secs));
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
        if !self.refusals.is_empty() {
            out.push_str("refused or malformed, by reason:");
            for (reason, n) in &self.refusals {
                let _ = write!(out, " {reason}={n}");
            }
            out.push('\n');
        }
        if let Some(nats) = &self.nats {
            nats.report(self.time, &mut out);
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
    /// Over all peers.
    #[serde(default)]
    pub total: Counters,
    /// Input not taken, over all peers, by [`crate::events::Refusal`] name.
    #[serde(default)]
    pub refusals: BTreeMap<String, u64>,
    /// Rotated logs archived, and archiving attempts that failed (and will be retried).
    #[serde(default)]
    pub archived: u64,
    #[serde(default)]
    pub archive_failures: u64,
    /// Whether the writer is holding back because the disk is below the hard floor.
    pub disk_paused: bool,
    /// With a NATS input: the tags held here and the cluster's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nats: Option<NatsStatus>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NatsStatus {
    /// Tag -> whether this aggregator holds it (pinned) or stands by.
    pub held: BTreeMap<String, bool>,
    /// What the cluster last answered, and when (epoch seconds); `None` until it answered.
    pub cluster: Option<estuary_nats::state::StreamState>,
    pub asked: u64,
}

impl NatsStatus {
    fn report(&self, now: u64, out: &mut String) {
        use std::fmt::Write as _;
        let Some(cluster) = &self.cluster else {
            out.push_str("nats: the cluster has not answered yet\n");
            for (tag, held) in &self.held {
                let _ = writeln!(out, "nats tag {tag}: {}", pin(*held));
            }
            return;
        };
        let _ = writeln!(
            out,
            "nats stream {}: {} messages, {} bytes (asked {}s ago)",
            cluster.stream,
            cluster.messages,
            cluster.bytes,
            now.saturating_sub(self.asked)
        );
        for (tag, held) in &self.held {
            let t = cluster.tags.get(tag).cloned().unwrap_or_default();
            let holder = match t.marks_holder.as_str() {
                "" => "none",
                h => h,
            };
            let _ = writeln!(
                out,
                "nats tag {tag}: {}, pending {}, ack pending {}, redelivered {}, marks holder {holder}",
                pin(*held),
                t.pending,
                t.ack_pending,
                t.redelivered
            );
        }
    }
}

fn pin(held: bool) -> &'static str {
    match held {
        true => "pinned here",
        false => "standby",
    }
}

/// `SpoolDir/status.json`.
#[derive(Debug)]
pub struct StatusFile {
    path: PathBuf,
    /// Held while the file is replaced: the periodic write (a blocking job that outlives its
    /// aborted task at shutdown) and the final one share its temporary file.
    writing: Mutex<()>,
}

impl StatusFile {
    pub fn new(spool_dir: &Path) -> Self {
        StatusFile {
            path: spool_dir.join(STATUS_FILE),
            writing: Mutex::new(()),
        }
    }

    /// Replaces the file atomically but without fsync: it is a snapshot rewritten every second,
    /// and two fsyncs a second cost a loaded disk more than a lost snapshot is worth.
    /// Writes what `snapshot` returns every [`STATUS_EVERY`], until the task is dropped; a failed
    /// write goes to `failed`. File I/O stays off the runtime: with one worker thread (two
    /// cores), a slow disk here held up every connection and its RELP acknowledgements.
    pub(crate) async fn refresh(
        self: Arc<Self>,
        snapshot: impl Fn() -> Status,
        failed: impl Fn(&io::Error),
    ) {
        let mut every = tokio::time::interval(STATUS_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            every.tick().await;
            let (file, status) = (self.clone(), snapshot());
            if let Ok(Err(err)) = tokio::task::spawn_blocking(move || file.write(&status)).await {
                failed(&err);
            }
        }
    }

    pub fn write(&self, status: &Status) -> io::Result<()> {
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let json = serde_json::to_vec_pretty(status)?;
        estuary_fsutil::replace(&self.path, &json, Durability::Visible)
    }
}

/// Appends one line per peer to StatsLog.
pub fn append_stats_log(stats_log: &Path, status: &Status) -> io::Result<()> {
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

/// `estuary status` for an aggregator: what the running daemon last wrote, times in `TimeFmt`.
pub fn status(config: &estuary_config::aggregator::AggregatorConfig) -> io::Result<String> {
    Ok(read_status(&config.spool_dir)?.report(&config.time_fmt, Zone::Local, SystemTime::now()))
}

/// Reads the status file a running aggregator writes.
pub fn read_status(spool_dir: &Path) -> io::Result<Status> {
    let bytes = std::fs::read(spool_dir.join(STATUS_FILE))?;
    Ok(serde_json::from_slice(&bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::events::Events;

    #[test]
    fn stats_log_and_status() {
        let dir = tempfile::tempdir().unwrap();
        let s = Events::new(crate::clock::from_unix_secs(0));
        let mut arrivals = crate::events::Arrivals::default();
        arrivals.add(4);
        arrivals.add(6);
        arrivals.add(0);
        s.received("127.0.0.1", arrivals);
        s.committed("127.0.0.1", 1, 1);
        s.refused("127.0.0.1", crate::events::Refusal::NotSyslog, &"bad");
        let log = dir.path().join("stats.log");
        let status = s.snapshot(crate::clock::from_unix_secs(100));
        append_stats_log(&log, &status).unwrap();
        StatusFile::new(dir.path()).write(&status).unwrap();
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "100 peer 127.0.0.1 received=3 accepted=1 refused=0 malformed=1 duplicates=1 bytes=10\n"
        );
        let status = read_status(dir.path()).unwrap();
        assert_eq!(status.peers["127.0.0.1"].received, 3);
        let status = Events::new(crate::clock::from_unix_secs(1_795_352_400))
            .snapshot(crate::clock::from_unix_secs(1_795_356_000));
        let report = status.report(
            "%Y-%m-%d %H:%M:%S",
            Zone::UTC,
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
        let events = std::sync::Arc::new(Events::new(crate::clock::from_unix_secs(100)));
        events.committed("127.0.0.1", 0, 0);
        let file = std::sync::Arc::new(StatusFile::new(dir.path()));
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let (events, file) = (events.clone(), file.clone());
                std::thread::spawn(move || {
                    for i in 0..300 {
                        file.write(&events.snapshot(crate::clock::from_unix_secs(i)))?;
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
