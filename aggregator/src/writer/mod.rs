//! The writer: owns every file under `LogDir/current`, appends messages with large buffered
//! writes, drops replays by high-water mark, keeps one header per file, commits through the
//! journal, and rotates.
//!
//! - [`files`]: the open files and their buffers.
//! - [`recover`]: cutting files back to the journal at start.
//! - [`marks`]: high-water marks (exactly-once) and their pruning.
//! - [`headers`]: Zeek header blocks, schema variants and notices.
//! - [`rotate`]: closing files at the rotation interval.
//! - [`settle`]: groups read from the cluster, kept or cut once their commit there is known.

mod files;
mod headers;
mod marks;
mod recover;
mod rotate;
mod settle;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use estuary_config::aggregator::{AggregatorConfig, Durability};
use estuary_fsutil::sync_dir;

use crate::archive::ROTATED_DIR;
use crate::clock::{unix_secs, Zone};
use crate::events::Events;
use crate::journal::{FileState, Journal, Marks, Record, State};
use crate::pending::NoticePos;
use crate::route::{host_key, FileKey, LogName, Route, Router};
use crate::schema::Collector;

use files::Files;
pub use settle::Prepare;

/// One message as the writer needs it. Everything is borrowed from the receive buffer.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub host: &'a [u8],
    pub tag: &'a [u8],
    pub body: &'a [u8],
    /// The whole message as received, for the catch-all log.
    pub raw: &'a [u8],
    /// Where the line comes from, for exactly-once delivery.
    pub origin: Option<Origin<'a>>,
}

/// A line's place in a shipper's file: the high-water mark key and position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin<'a> {
    /// Who sent it, as the listener knows it (the peer's address), never a host name the
    /// message claims: one sender cannot move another's marks.
    pub sender: &'a str,
    /// The shipper's file incarnation.
    pub file: u64,
    /// Byte offset of the line in that file.
    pub offset: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Written,
    Duplicate,
}

/// Tags seen so far and where they go; bounded because tags are untrusted.
const MAX_ROUTES: usize = 4096;

struct CachedRoute {
    name: LogName,
    catch_all: bool,
    /// The file's key when logs are merged (not per host).
    key: FileKey,
}

pub struct Writer {
    current_dir: PathBuf,
    spool_dir: PathBuf,
    durability: Durability,
    per_host: bool,
    rotation_interval: Duration,
    /// The zone of `#open`/`#close` and of the rotation boundaries.
    zone: Zone,
    replay_mark_retention: Option<Duration>,
    router: Router,
    routes: HashMap<Box<[u8]>, CachedRoute>,
    files: Files,
    journal: Journal,
    state: State,
    pending_marks: Marks,
    /// Journal records of this group other than file lengths and marks (schemas, assignments).
    pending_records: Vec<Record>,
    collector: Collector,
    /// When marks were last pruned (epoch seconds), to tell a clock jump from time passing.
    pruned_at: u64,
    events: Arc<Events>,
}

impl Writer {
    /// Opens the writer and recovers: every current file is cut back to its committed length,
    /// files the journal never committed are removed.
    pub fn open(
        config: &AggregatorConfig,
        now: SystemTime,
        zone: Zone,
        events: Arc<Events>,
    ) -> io::Result<Self> {
        let current_dir = config.log_dir.join("current");
        fs::create_dir_all(current_dir.join(ROTATED_DIR))?;
        fs::create_dir_all(&config.spool_dir)?;
        let (journal, mut state) = Journal::open(&config.spool_dir, unix_secs(now))?;
        // Marks age only while the aggregator runs: shippers replay their unacknowledged
        // windows once it is back, so the time it was down must not count as their silence.
        let offline = state.marks.discount_downtime(unix_secs(now));
        if offline > 0 && config.replay_mark_retention.is_some() {
            tracing::info!(
                offline_secs = offline,
                "high-water marks moved forward by the time since the last line arrived"
            );
        }
        let mut writer = Self {
            files: Files {
                current_dir: current_dir.clone(),
                zone,
                per_host: config.routing.per_host,
                map: HashMap::new(),
            },
            current_dir,
            spool_dir: config.spool_dir.clone(),
            durability: config.durability,
            per_host: config.routing.per_host,
            rotation_interval: config.rotation_interval,
            zone,
            replay_mark_retention: config.replay_mark_retention,
            router: Router::new(&config.routing),
            routes: HashMap::new(),
            journal,
            state,
            pending_marks: Marks::default(),
            pending_records: Vec::new(),
            collector: Collector::default(),
            pruned_at: unix_secs(now),
            events,
        };
        writer.recover(now)?;
        if let Some(p) = writer.unsettled() {
            let read = config
                .nats
                .as_ref()
                .is_some_and(|n| n.tags.contains(&p.tag));
            if !read {
                // Nothing here asks the cluster about it any more; keeping it risks a line
                // twice, cutting it a line lost.
                tracing::warn!(tag = %p.tag, "a group prepared for a tag this aggregator no longer reads is kept");
                writer.settle(&p, true)?;
            }
        }
        Ok(writer)
    }

    /// Appends one message. Nothing is durable or acknowledged before [`Writer::commit`].
    pub fn write(&mut self, msg: &Message<'_>, now: SystemTime) -> io::Result<Outcome> {
        let host = host_key(msg.host);
        if let Some(origin) = msg.origin {
            if !self.advance_mark(origin, now) {
                return Ok(Outcome::Duplicate);
            }
        }
        let route = cached_route(&mut self.routes, &self.router, msg.tag);
        let assigned = self
            .state
            .assignments
            .get(host)
            .and_then(|m| m.get(route.name.as_str()));
        let plain = !route.catch_all
            && msg.body.first() != Some(&b'#')
            && self.collector.is_idle()
            && assigned.is_none_or(|a| a == route.name.as_str())
            && route.name.as_str() != "notice";
        if plain {
            let key = if self.per_host {
                std::borrow::Cow::Owned(FileKey::log(Some(host), &route.name))
            } else {
                std::borrow::Cow::Borrowed(&route.key)
            };
            self.files
                .append(&self.state.schemas, &key, &route.name, host, msg.body, now)?;
            return Ok(Outcome::Written);
        }
        let (name, catch_all) = (route.name.clone(), route.catch_all);
        if catch_all {
            let key = self.key(host, &name);
            self.files
                .append(&self.state.schemas, &key, &name, host, msg.raw, now)?;
        } else {
            self.write_log(host, name, msg.body, now)?;
        }
        Ok(Outcome::Written)
    }

    fn key(&self, host: &str, name: &LogName) -> FileKey {
        FileKey::log(self.per_host.then_some(host), name)
    }

    /// Makes everything written so far visible and committed (synced too with
    /// `Durability::Synced`). On error every file is cut back to its last commit: the caller
    /// must not acknowledge and should offer the same messages again.
    pub fn commit(&mut self) -> io::Result<()> {
        match self.try_commit() {
            Ok(()) => Ok(()),
            Err(err) => {
                self.rollback();
                Err(err)
            }
        }
    }

    fn sync(&self) -> bool {
        self.durability == Durability::Synced
    }

    fn try_commit(&mut self) -> io::Result<()> {
        let sync = self.sync();
        let mut group = std::mem::take(&mut self.pending_records);
        for (key, log) in &mut self.files.map {
            log.flush()?;
            if log.written != log.committed {
                if sync {
                    log.file.sync_data()?;
                }
                group.push(Record::Committed {
                    key: key.clone(),
                    file: FileState {
                        len: log.written,
                        open: unix_secs(log.open),
                    },
                });
            }
        }
        group.extend(
            self.pending_marks
                .iter()
                .map(|(host, file, mark)| Record::Mark {
                    host: host.to_owned(),
                    file,
                    mark,
                }),
        );
        if group.is_empty() {
            return Ok(());
        }
        if sync {
            let new = |notices: bool| {
                self.files
                    .map
                    .iter()
                    .any(|(k, l)| k.is_notices() == notices && l.is_new())
            };
            if new(false) {
                sync_dir(&self.current_dir)?;
            }
            if new(true) {
                sync_dir(&self.spool_dir)?;
            }
        }
        self.journal.commit(&group, sync)?;
        for (key, log) in &mut self.files.map {
            log.committed = log.written;
            self.state.files.insert(
                key.clone(),
                FileState {
                    len: log.written,
                    open: unix_secs(log.open),
                },
            );
        }
        for (host, file, mark) in self.pending_marks.iter() {
            self.state.marks.set(host, file, mark);
        }
        self.pending_marks.clear();
        if self.journal.wants_compaction() {
            self.journal.compact(&self.state)?;
        }
        Ok(())
    }

    /// Cuts every file back to its last commit and forgets uncommitted marks.
    pub fn abort(&mut self) {
        self.rollback();
    }

    fn rollback(&mut self) {
        self.pending_marks.clear();
        self.pending_records.clear();
        for log in self.files.map.values_mut() {
            if let Err(err) = log.rollback() {
                tracing::error!(file = %log.path.display(), %err, "cannot cut file back to its last commit");
            }
        }
    }

    /// How far the pending notices are committed, for the mailer.
    pub fn notices_committed(&self) -> NoticePos {
        let committed = self
            .files
            .map
            .get(&FileKey::notices())
            .map(|l| l.committed)
            .unwrap_or(0);
        NoticePos {
            segment: self.state.notices_segment,
            offset: self.settled_notices(committed),
        }
    }
}

fn cached_route<'a>(
    routes: &'a mut HashMap<Box<[u8]>, CachedRoute>,
    router: &Router,
    tag: &[u8],
) -> &'a CachedRoute {
    if !routes.contains_key(tag) {
        if routes.len() >= MAX_ROUTES {
            routes.clear();
        }
        let (name, catch_all) = match router.route(tag) {
            Route::Log(name) => (name, false),
            Route::CatchAll => (router.catch_all().clone(), true),
        };
        let key = FileKey::log(None, &name);
        let route = CachedRoute {
            name,
            catch_all,
            key,
        };
        return routes.entry(tag.into()).or_insert(route);
    }
    &routes[tag]
}

/// Zeek's `#open`/`#close` format, in `zone` (local time in service).
pub fn zeek_time(zone: Zone, t: SystemTime) -> String {
    match zone.at(t) {
        Some(t) => t.format("%Y-%m-%d-%H-%M-%S").to_string(),
        None => unix_secs(t).to_string(),
    }
}
