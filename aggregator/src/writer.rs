//! The writer: owns every file under `LogDir/current`, appends messages with large buffered
//! writes, drops replays by high-water mark, keeps one header per file, commits through the
//! journal, and rotates.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use estuary_config::aggregator::{AggregatorConfig, Durability};
use estuary_fsutil::sync_dir;

use crate::archive::{Rotated, ROTATED_DIR};
use crate::clock::{from_unix_secs, local, next_boundary, unix_secs};
use crate::journal::{hex, FileState, Journal, Mark, Marks, State};
use crate::pending::{segment_path, NoticePos};
use crate::route::{host_key, LogName, Route, Router};
use crate::schema::{self, Collector, Meta};

/// Buffered bytes per file before they go to the kernel.
const FLUSH_AT: usize = 256 << 10;
/// How much later than one rotation interval after the last the next rotation may come (the
/// writer can be busy) before the gap counts as a jump of the wall clock, not as time passing.
const ROTATION_SLACK: Duration = Duration::from_secs(600);
/// The active pending-notices segment, where notices seen in notice.log wait for the mailer
/// (committed like a log file; see [`crate::pending`]).
pub const NOTICES_KEY: &str = "@notices";

/// One message as the writer needs it. Everything is borrowed from the receive buffer.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub host: &'a [u8],
    pub tag: &'a [u8],
    pub body: &'a [u8],
    /// The whole message as received, for the catch-all log.
    pub raw: &'a [u8],
    /// Shipper file incarnation and byte offset of the line (exactly-once).
    pub origin: Option<(u64, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Written,
    Duplicate,
}

struct OpenLog {
    name: LogName,
    host: Option<String>,
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    /// Bytes handed to the kernel.
    written: u64,
    committed: u64,
    open: SystemTime,
    has_header: bool,
}

impl OpenLog {
    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.file.write_all(&self.buf)?;
            self.written += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }

    fn rollback(&mut self) -> io::Result<()> {
        self.buf.clear();
        self.file.set_len(self.committed)?;
        self.file.seek(SeekFrom::Start(self.committed))?;
        self.written = self.committed;
        Ok(())
    }
}

/// Tags seen so far and where they go; bounded because tags are untrusted.
const MAX_ROUTES: usize = 4096;

struct CachedRoute {
    name: LogName,
    catch_all: bool,
    /// `<name>.log`, the journal key when logs are merged.
    key: String,
}

/// The open files, by journal key (`conn.log`, `sensor1/conn.log`, `@notices`).
struct Files {
    current_dir: PathBuf,
    per_host: bool,
    map: HashMap<String, OpenLog>,
}

impl Files {
    fn append(
        &mut self,
        schemas: &BTreeMap<String, Vec<u8>>,
        key: &str,
        name: &LogName,
        host: &str,
        line: &[u8],
        now: SystemTime,
    ) -> io::Result<()> {
        let log = match self.map.get_mut(key) {
            Some(log) => log,
            None => self.create(schemas, key, name, host, now)?,
        };
        log.buf.extend_from_slice(line);
        log.buf.push(b'\n');
        if log.buf.len() >= FLUSH_AT {
            log.flush()?;
        }
        Ok(())
    }

    fn create(
        &mut self,
        schemas: &BTreeMap<String, Vec<u8>>,
        key: &str,
        name: &LogName,
        host: &str,
        now: SystemTime,
    ) -> io::Result<&mut OpenLog> {
        let path = self.current_dir.join(key);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)?;
        let mut buf = Vec::with_capacity(FLUSH_AT);
        let has_header = match schemas.get(key) {
            Some(schema) => {
                buf.extend_from_slice(&schema::header_for(schema, &zeek_time(now)));
                true
            }
            None => false,
        };
        let log = OpenLog {
            name: name.clone(),
            host: self.per_host.then(|| host.to_owned()),
            path,
            file,
            buf,
            written: 0,
            committed: 0,
            open: now,
            has_header,
        };
        Ok(self.map.entry(key.to_owned()).or_insert(log))
    }

    fn notices(
        &mut self,
        spool_dir: &Path,
        segment: u64,
        now: SystemTime,
    ) -> io::Result<&mut OpenLog> {
        if !self.map.contains_key(NOTICES_KEY) {
            // Not open means nothing of this segment is committed (recovery removed any rest).
            let path = segment_path(spool_dir, segment);
            let file = OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(&path)?;
            let log = OpenLog {
                name: LogName::internal("notices").ok_or_else(|| io::Error::other("bad name"))?,
                host: None,
                path,
                file,
                buf: Vec::new(),
                written: 0,
                committed: 0,
                open: now,
                has_header: false,
            };
            self.map.insert(NOTICES_KEY.to_owned(), log);
        }
        self.map
            .get_mut(NOTICES_KEY)
            .ok_or_else(|| io::Error::other("notices file vanished"))
    }
}

pub struct Writer {
    current_dir: PathBuf,
    spool_dir: PathBuf,
    durability: Durability,
    per_host: bool,
    rotation_interval: Duration,
    replay_mark_retention: Option<Duration>,
    router: Router,
    routes: HashMap<Box<[u8]>, CachedRoute>,
    files: Files,
    journal: Journal,
    state: State,
    pending_marks: Marks,
    pending_schema: Vec<u8>,
    collector: Collector,
    /// When marks were last pruned (epoch seconds), to tell a clock jump from time passing.
    pruned_at: u64,
}

impl Writer {
    /// Opens the writer and recovers: every current file is cut back to its committed length,
    /// files the journal never committed are removed.
    pub fn open(config: &AggregatorConfig, now: SystemTime) -> io::Result<Self> {
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
            current_dir,
            spool_dir: config.spool_dir.clone(),
            durability: config.durability,
            per_host: config.routing.per_host,
            rotation_interval: config.rotation_interval,
            replay_mark_retention: config.replay_mark_retention,
            router: Router::new(&config.routing),
            routes: HashMap::new(),
            files: Files {
                current_dir: config.log_dir.join("current"),
                per_host: config.routing.per_host,
                map: HashMap::new(),
            },
            journal,
            state,
            pending_marks: Marks::default(),
            pending_schema: Vec::new(),
            collector: Collector::default(),
            pruned_at: unix_secs(now),
        };
        writer.recover(now)?;
        Ok(writer)
    }

    /// Ends with a journal compaction, which also keeps the marks as moved by `open`.
    fn recover(&mut self, now: SystemTime) -> io::Result<()> {
        let mut found = Vec::new();
        list_logs(&self.current_dir, None, &mut found)?;
        crate::pending::adopt_legacy(&self.spool_dir, self.state.notices_segment)?;
        let notices = segment_path(&self.spool_dir, self.state.notices_segment);
        if notices.exists() {
            found.push((NOTICES_KEY.to_owned(), notices));
        }
        // A file rotated away just before a crash may still be in the journal: forget it, or a
        // new incarnation under the same name would inherit its committed length.
        self.state
            .files
            .retain(|key, _| found.iter().any(|(k, _)| k == key));
        for (key, path) in found {
            let on_disk = fs::metadata(&path)?.len();
            let known = self.state.files.get(&key).copied();
            let keep = match known {
                Some(f) => f.len.min(on_disk),
                None if self.state.existed => 0,
                None => on_disk,
            };
            if keep < on_disk {
                tracing::info!(file = %path.display(), committed = keep, on_disk, "cutting uncommitted tail");
            }
            if keep == 0 {
                fs::remove_file(&path)?;
                self.state.files.remove(&key);
                continue;
            }
            let Some((name, host)) = parse_key(&key) else {
                continue;
            };
            let mut file = OpenOptions::new().write(true).open(&path)?;
            file.set_len(keep)?;
            file.seek(SeekFrom::Start(keep))?;
            let open = known.map(|f| from_unix_secs(f.open)).unwrap_or(now);
            self.state.files.insert(
                key.clone(),
                FileState {
                    len: keep,
                    open: unix_secs(open),
                },
            );
            let has_header = self.state.schemas.contains_key(&key);
            self.files.map.insert(
                key,
                OpenLog {
                    name,
                    host,
                    path,
                    file,
                    buf: Vec::with_capacity(FLUSH_AT),
                    written: keep,
                    committed: keep,
                    open,
                    has_header,
                },
            );
        }
        self.journal.compact(&self.state)
    }

    /// Appends one message. Nothing is durable or acknowledged before [`Writer::commit`].
    pub fn write(&mut self, msg: &Message<'_>, now: SystemTime) -> io::Result<Outcome> {
        let host = host_key(msg.host);
        if let Some((file_id, offset)) = msg.origin {
            let mark = self
                .pending_marks
                .get(host, file_id)
                .or_else(|| self.state.marks.get(host, file_id));
            if mark.is_some_and(|m| offset <= m) {
                return Ok(Outcome::Duplicate);
            }
            let mark = Mark {
                offset,
                updated: unix_secs(now),
            };
            self.pending_marks.set(host, file_id, mark);
        }
        if !self.routes.contains_key(msg.tag) {
            self.learn_route(msg.tag);
        }
        let route = self
            .routes
            .get(msg.tag)
            .ok_or_else(|| io::Error::other("route cache lost an entry"))?;
        let assigned = self
            .state
            .assignments
            .get(host)
            .and_then(|m| m.get(route.name.as_str()));
        let plain = !route.catch_all
            && msg.body.first() != Some(&b'#')
            && assigned.is_none_or(|a| a == route.name.as_str())
            && route.name.as_str() != "notice";
        if plain {
            let key: std::borrow::Cow<'_, str> = if self.per_host {
                format!("{host}/{}.log", route.name).into()
            } else {
                route.key.as_str().into()
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

    fn learn_route(&mut self, tag: &[u8]) {
        if self.routes.len() >= MAX_ROUTES {
            self.routes.clear();
        }
        let (name, catch_all) = match self.router.route(tag) {
            Route::Log(name) => (name, false),
            Route::CatchAll => (self.router.catch_all().clone(), true),
        };
        let key = format!("{name}.log");
        self.routes.insert(
            tag.into(),
            CachedRoute {
                name,
                catch_all,
                key,
            },
        );
    }

    fn write_log(
        &mut self,
        host: &str,
        name: LogName,
        body: &[u8],
        now: SystemTime,
    ) -> io::Result<()> {
        if body.first() == Some(&b'#') {
            if let Meta::Block(block) = self.collector.meta_line(host, name.as_str(), body) {
                self.adopt_schema(host, &name, &block);
            }
            return Ok(());
        }
        let target = self
            .state
            .assignments
            .get(host)
            .and_then(|m| m.get(name.as_str()))
            .and_then(|k| LogName::internal(k))
            .unwrap_or(name.clone());
        let key = self.key(host, &target);
        self.files
            .append(&self.state.schemas, &key, &target, host, body, now)?;
        if name.as_str() == "notice" {
            let fields = self
                .state
                .schemas
                .get(&key)
                .map(|s| schema::fields(s))
                .unwrap_or_default();
            if let Some(event) = crate::alarms::parse(&fields, body, host) {
                let mut line = serde_json::to_vec(&event).map_err(io::Error::other)?;
                line.push(b'\n');
                self.files
                    .notices(&self.spool_dir, self.state.notices_segment, now)?
                    .buf
                    .extend_from_slice(&line);
            }
        }
        Ok(())
    }

    fn adopt_schema(&mut self, host: &str, name: &LogName, block: &[Vec<u8>]) {
        let schema = schema::schema_of(block);
        let primary = self.key(host, name);
        let target = match self.state.schemas.get(&primary) {
            None => {
                self.set_schema(&primary, schema);
                name.as_str().to_owned()
            }
            Some(existing) if *existing == schema => name.as_str().to_owned(),
            Some(_) => {
                let variant = format!("{name}-{}", schema::variant_suffix(&schema));
                if let Some(v) = LogName::internal(&variant) {
                    let key = self.key(host, &v);
                    if !self.state.schemas.contains_key(&key) {
                        tracing::info!(host, log = %name, file = %key, "sensor changed #fields; its lines go to a separate file");
                        self.set_schema(&key, schema);
                    }
                }
                variant
            }
        };
        let logs = self.state.assignments.entry(host.to_owned()).or_default();
        if logs.get(name.as_str()) != Some(&target) {
            let _ = writeln!(self.pending_schema, "A {host} {name} {target}");
            logs.insert(name.as_str().to_owned(), target);
        }
    }

    fn set_schema(&mut self, key: &str, schema: Vec<u8>) {
        let _ = writeln!(self.pending_schema, "S {key} {}", hex(&schema));
        self.state.schemas.insert(key.to_owned(), schema);
    }

    fn key(&self, host: &str, name: &LogName) -> String {
        if self.per_host {
            format!("{host}/{name}.log")
        } else {
            format!("{name}.log")
        }
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

    fn try_commit(&mut self) -> io::Result<()> {
        let sync = self.durability == Durability::Synced;
        let mut group = std::mem::take(&mut self.pending_schema);
        for (key, log) in &mut self.files.map {
            log.flush()?;
            if log.written != log.committed {
                if sync {
                    log.file.sync_data()?;
                }
                writeln!(group, "L {key} {} {}", log.written, unix_secs(log.open))?;
            }
        }
        for (host, file, mark) in self.pending_marks.iter() {
            writeln!(group, "M {host} {file} {} {}", mark.offset, mark.updated)?;
        }
        if group.is_empty() {
            return Ok(());
        }
        if sync {
            let created = |l: &OpenLog| l.committed == 0 && l.written > 0;
            if self
                .files
                .map
                .iter()
                .any(|(k, l)| k != NOTICES_KEY && created(l))
            {
                sync_dir(&self.current_dir)?;
            }
            if self.files.map.get(NOTICES_KEY).is_some_and(created) {
                sync_dir(&self.spool_dir)?;
            }
        }
        self.journal.commit(group, sync)?;
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
        self.pending_schema.clear();
        for log in self.files.map.values_mut() {
            if let Err(err) = log.rollback() {
                tracing::error!(file = %log.path.display(), %err, "cannot cut file back to its last commit");
            }
        }
    }

    /// Closes every log whose rotation interval ended by `now`: appends `#close`, moves it to
    /// the rotated folder and returns it for archiving. The next message opens a new file.
    pub fn rotate(&mut self, now: SystemTime) -> io::Result<Vec<(PathBuf, Rotated)>> {
        self.commit()?;
        self.prune_marks(now)?;
        self.close_notices_segment()?;
        if self.rotation_interval.is_zero() {
            return Ok(Vec::new());
        }
        let due: Vec<String> = self
            .files
            .map
            .iter()
            .filter(|(k, l)| {
                k.as_str() != NOTICES_KEY && next_boundary(l.open, self.rotation_interval) <= now
            })
            .map(|(k, _)| k.clone())
            .collect();
        self.rotate_keys(&due, now)
    }

    /// Forgets high-water marks of shipper files that sent nothing for ReplayMarkRetention and
    /// rewrites the journal without them. Shipper file ids are new for every incarnation of a
    /// file, so without this the marks would grow by one per rotated file per sender forever.
    fn prune_marks(&mut self, now: SystemTime) -> io::Result<()> {
        let now = unix_secs(now);
        let gap = now.saturating_sub(std::mem::replace(&mut self.pruned_at, now));
        let Some(retention) = self.replay_mark_retention else {
            return Ok(());
        };
        // The service rotates once per interval: a longer gap is the wall clock jumping ahead
        // (or the writer stalled), which is no more silence than a downtime is.
        let jumped = !self.rotation_interval.is_zero()
            && gap > (self.rotation_interval + ROTATION_SLACK).as_secs();
        if jumped {
            tracing::warn!(
                gap_secs = gap,
                "the wall clock jumped ahead between two rotations; high-water marks moved with it"
            );
            self.state.marks.discount(gap);
        }
        let dropped = self
            .state
            .marks
            .prune(now.saturating_sub(retention.as_secs()));
        if dropped > 0 {
            tracing::info!(
                dropped,
                kept = self.state.marks.len(),
                "forgot high-water marks of shipper files silent for longer than ReplayMarkRetention"
            );
        }
        if dropped > 0 || jumped {
            self.journal.compact(&self.state)?;
        }
        Ok(())
    }

    /// Hands a non-empty pending-notices segment over to the mailer (which deletes it once it
    /// has mailed from it) and makes the next one active. Call only with everything committed.
    fn close_notices_segment(&mut self) -> io::Result<()> {
        let Some(log) = self.files.map.get(NOTICES_KEY) else {
            return Ok(());
        };
        if log.committed == 0 {
            return Ok(());
        }
        log.file.sync_all()?;
        let next = self.state.notices_segment + 1;
        self.journal
            .commit(format!("D {NOTICES_KEY}\nN {next}\n").into_bytes(), true)?;
        self.files.map.remove(NOTICES_KEY);
        self.state.files.remove(NOTICES_KEY);
        self.state.notices_segment = next;
        Ok(())
    }

    /// Closes every log now (shutdown is not a rotation: files stay current).
    pub fn rotate_all(&mut self, now: SystemTime) -> io::Result<Vec<(PathBuf, Rotated)>> {
        self.commit()?;
        let all: Vec<String> = self
            .files
            .map
            .keys()
            .filter(|k| k.as_str() != NOTICES_KEY)
            .cloned()
            .collect();
        self.rotate_keys(&all, now)
    }

    fn rotate_keys(
        &mut self,
        keys: &[String],
        now: SystemTime,
    ) -> io::Result<Vec<(PathBuf, Rotated)>> {
        let rotated_dir = self.current_dir.join(ROTATED_DIR);
        let mut out = Vec::new();
        let mut group = Vec::new();
        for key in keys {
            let Some(mut log) = self.files.map.remove(key) else {
                continue;
            };
            if log.has_header {
                log.buf
                    .extend_from_slice(format!("#close\t{}\n", zeek_time(now)).as_bytes());
            }
            log.flush()?;
            log.file.sync_all()?;
            let rotated = Rotated {
                name: log.name.clone(),
                host: log.host.clone(),
                open: log.open,
                close: now.max(log.open),
            };
            let target = rotated_dir.join(rotated.file_name());
            fs::rename(&log.path, &target)?;
            writeln!(group, "D {key}")?;
            self.state.files.remove(key);
            out.push((target, rotated));
        }
        if !out.is_empty() {
            sync_dir(&rotated_dir)?;
            sync_dir(&self.current_dir)?;
            self.journal.commit(group, true)?;
        }
        Ok(out)
    }

    /// How far the pending notices are committed, for the mailer.
    pub fn notices_committed(&self) -> NoticePos {
        NoticePos {
            segment: self.state.notices_segment,
            offset: self
                .files
                .map
                .get(NOTICES_KEY)
                .map(|l| l.committed)
                .unwrap_or(0),
        }
    }
}

/// Zeek's `#open`/`#close` format, local time.
pub fn zeek_time(t: SystemTime) -> String {
    match local(t) {
        Some(t) => t.format("%Y-%m-%d-%H-%M-%S").to_string(),
        None => unix_secs(t).to_string(),
    }
}

fn parse_key(key: &str) -> Option<(LogName, Option<String>)> {
    if key == NOTICES_KEY {
        return Some((LogName::internal("notices")?, None));
    }
    let (host, file) = match key.split_once('/') {
        Some((h, f)) => (Some(h.to_owned()), f),
        None => (None, key),
    };
    Some((LogName::internal(file.strip_suffix(".log")?)?, host))
}

/// Every `*.log` under `current/` (one level of host folders), as (journal key, path).
fn list_logs(dir: &Path, host: Option<&str>, out: &mut Vec<(String, PathBuf)>) -> io::Result<()> {
    for entry in fs::read_dir(dir)?.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() && host.is_none() {
            list_logs(&entry.path(), Some(name), out)?;
        } else if kind.is_file() && name.ends_with(".log") {
            let key = match host {
                Some(h) => format!("{h}/{name}"),
                None => name.to_owned(),
            };
            out.push((key, entry.path()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::from_unix_secs;
    use proptest::prelude::Strategy;

    fn msg<'a>(
        host: &'a str,
        tag: &'a str,
        body: &'a str,
        origin: Option<(u64, u64)>,
    ) -> Message<'a> {
        Message {
            host: host.as_bytes(),
            tag: tag.as_bytes(),
            body: body.as_bytes(),
            raw: body.as_bytes(),
            origin,
        }
    }

    fn setup() -> (tempfile::TempDir, AggregatorConfig) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::testing::config(&dir.path().join("logs"), &dir.path().join("spool"));
        (dir, cfg)
    }

    fn read(cfg: &AggregatorConfig, name: &str) -> String {
        fs::read_to_string(cfg.log_dir.join("current").join(name)).unwrap_or_default()
    }

    const T0: u64 = 1_795_388_400;

    #[test]
    fn routes_and_drops_replays() {
        let (_d, cfg) = setup();
        let now = from_unix_secs(T0);
        let mut w = Writer::open(&cfg, now).unwrap();
        for i in 0..3u64 {
            let body = format!("line{i}\tx\t");
            assert_eq!(
                w.write(&msg("s1", "bro_conn", &body, Some((7, i * 10))), now)
                    .unwrap(),
                Outcome::Written
            );
        }
        // Replay of offsets 0 and 10: dropped; 20 too; 30 is new.
        for off in [0, 10, 20] {
            assert_eq!(
                w.write(&msg("s1", "bro_conn", "dup", Some((7, off))), now)
                    .unwrap(),
                Outcome::Duplicate
            );
        }
        // The same offsets from another host or file are not replays.
        w.write(&msg("s2", "bro_conn", "other-host", Some((7, 0))), now)
            .unwrap();
        w.write(&msg("s1", "sshd", "<13>raw sshd line", None), now)
            .unwrap();
        w.write(&msg("s1", "bro_../x", "evil", None), now).unwrap();
        w.commit().unwrap();
        assert_eq!(
            read(&cfg, "conn.log"),
            "line0\tx\t\nline1\tx\t\nline2\tx\t\nother-host\n"
        );
        assert_eq!(read(&cfg, "unrouted.log"), "<13>raw sshd line\nevil\n");

        // Marks survive a restart.
        drop(w);
        let mut w = Writer::open(&cfg, now).unwrap();
        assert_eq!(
            w.write(&msg("s1", "bro_conn", "dup", Some((7, 20))), now)
                .unwrap(),
            Outcome::Duplicate
        );
    }

    /// The marks the journal holds, latest record per file, as `M <host> <file> <offset>`.
    fn journal_marks(cfg: &AggregatorConfig) -> Vec<String> {
        let journal = fs::read_to_string(cfg.spool_dir.join("commit.journal")).unwrap();
        let mut latest = BTreeMap::new();
        for record in journal.lines().filter(|l| l.starts_with("M ")) {
            let f: Vec<&str> = record.split(' ').collect();
            latest.insert((f[1], f[2]), format!("M {} {} {}", f[1], f[2], f[3]));
        }
        latest.into_values().collect()
    }

    /// Runs the writer for `hours`, rotating every hour as the service does.
    fn run_hours(w: &mut Writer, clock: &crate::clock::ManualClock, hours: u64) {
        use crate::clock::Clock as _;
        for _ in 0..hours {
            clock.advance(Duration::from_secs(3600));
            w.rotate(clock.now()).unwrap();
        }
    }

    #[test]
    fn marks_silent_past_retention_are_pruned_and_compacted_away() {
        let (_d, cfg) = setup();
        assert_eq!(
            cfg.replay_mark_retention,
            Some(Duration::from_secs(7 * 86_400))
        );
        use crate::clock::Clock as _;
        let clock = crate::clock::ManualClock::new(from_unix_secs(T0));
        let mut w = Writer::open(&cfg, clock.now()).unwrap();
        // Two incarnations of a rotated file from s1, one from s2, all old.
        for (host, file, off) in [("s1", 1, 0), ("s1", 1, 10), ("s1", 2, 0), ("s2", 5, 0)] {
            let m = msg(host, "bro_conn", "old", Some((file, off)));
            assert_eq!(w.write(&m, clock.now()).unwrap(), Outcome::Written);
        }
        w.commit().unwrap();
        run_hours(&mut w, &clock, 6 * 24);
        // s1's file 2 is still being written; file 3 is new.
        for (file, off) in [(2, 20), (3, 0)] {
            let m = msg("s1", "bro_conn", "recent", Some((file, off)));
            assert_eq!(w.write(&m, clock.now()).unwrap(), Outcome::Written);
        }
        w.rotate(clock.now()).unwrap();
        assert_eq!(
            journal_marks(&cfg),
            ["M s1 1 10", "M s1 2 20", "M s1 3 0", "M s2 5 0"],
            "nothing is older than the retention yet"
        );

        run_hours(&mut w, &clock, 25);
        assert_eq!(journal_marks(&cfg), ["M s1 2 20", "M s1 3 0"]);
        let journal = fs::read_to_string(cfg.spool_dir.join("commit.journal")).unwrap();
        assert_eq!(
            journal.lines().filter(|l| l.starts_with("C ")).count(),
            1,
            "pruning rewrites the journal as one snapshot:\n{journal}"
        );

        // Recent files still drop their replays, before and after a restart.
        let replay = msg("s1", "bro_conn", "dup", Some((2, 20)));
        assert_eq!(w.write(&replay, clock.now()).unwrap(), Outcome::Duplicate);
        drop(w);
        let mut w = Writer::open(&cfg, clock.now()).unwrap();
        assert_eq!(w.write(&replay, clock.now()).unwrap(), Outcome::Duplicate);
        let replay = msg("s1", "bro_conn", "dup", Some((3, 0)));
        assert_eq!(w.write(&replay, clock.now()).unwrap(), Outcome::Duplicate);
        // The pruned file's mark is gone: this is the outage length the retention bounds.
        let late = msg("s2", "bro_conn", "late", Some((5, 0)));
        assert_eq!(w.write(&late, clock.now()).unwrap(), Outcome::Written);
    }

    /// Marks are pruned at the rotation right after startup, before any shipper could replay:
    /// a downtime longer than the retention must not count as silence, or every replay of an
    /// unacknowledged window would be written twice. Silence while running still counts.
    #[test]
    fn downtime_does_not_count_as_silence() {
        let (_d, mut cfg) = setup();
        let hour = Duration::from_secs(3600);
        cfg.replay_mark_retention = Some(hour);
        use crate::clock::Clock as _;
        let clock = crate::clock::ManualClock::new(from_unix_secs(T0));
        let mut w = Writer::open(&cfg, clock.now()).unwrap();
        let m = msg("s2", "bro_conn", "a", Some((5, 0)));
        assert_eq!(w.write(&m, clock.now()).unwrap(), Outcome::Written);
        w.commit().unwrap();
        clock.advance(hour / 2);
        for off in [0, 10] {
            let m = msg("s1", "bro_conn", "a", Some((1, off)));
            assert_eq!(w.write(&m, clock.now()).unwrap(), Outcome::Written);
        }
        w.commit().unwrap();
        drop(w);

        // Down for two hours; the service rotates whatever is due at once.
        clock.advance(2 * hour);
        let mut w = Writer::open(&cfg, clock.now()).unwrap();
        w.rotate(clock.now()).unwrap();
        for replay in [
            msg("s1", "bro_conn", "dup", Some((1, 10))),
            msg("s2", "bro_conn", "dup", Some((5, 0))),
        ] {
            assert_eq!(w.write(&replay, clock.now()).unwrap(), Outcome::Duplicate);
        }
        let m = msg("s1", "bro_conn", "b", Some((1, 20)));
        assert_eq!(w.write(&m, clock.now()).unwrap(), Outcome::Written);
        w.commit().unwrap();

        // s2 has now been silent for 30 + 45 minutes of uptime, s1 for 45.
        clock.advance(hour * 3 / 4);
        w.rotate(clock.now()).unwrap();
        assert_eq!(journal_marks(&cfg), ["M s1 1 20"]);
        // A restart right away moves nothing.
        drop(w);
        let mut w = Writer::open(&cfg, clock.now()).unwrap();
        w.rotate(clock.now()).unwrap();
        let replay = msg("s1", "bro_conn", "dup", Some((1, 20)));
        assert_eq!(w.write(&replay, clock.now()).unwrap(), Outcome::Duplicate);
        let late = msg("s2", "bro_conn", "late", Some((5, 0)));
        assert_eq!(w.write(&late, clock.now()).unwrap(), Outcome::Written);
    }

    /// A forward jump of the wall clock between two rotations is not silence either; the marks
    /// keep their lead over a restart, and silence after the jump still counts.
    #[test]
    fn a_clock_jump_does_not_count_as_silence() {
        let (_d, mut cfg) = setup();
        let hour = Duration::from_secs(3600);
        cfg.replay_mark_retention = Some(hour);
        use crate::clock::Clock as _;
        let clock = crate::clock::ManualClock::new(from_unix_secs(T0));
        let mut w = Writer::open(&cfg, clock.now()).unwrap();
        let m = msg("s1", "bro_conn", "a", Some((1, 0)));
        assert_eq!(w.write(&m, clock.now()).unwrap(), Outcome::Written);
        w.commit().unwrap();
        clock.advance(hour / 2);
        w.rotate(clock.now()).unwrap();
        clock.advance(3 * hour);
        w.rotate(clock.now()).unwrap();
        let replay = msg("s1", "bro_conn", "dup", Some((1, 0)));
        assert_eq!(w.write(&replay, clock.now()).unwrap(), Outcome::Duplicate);
        drop(w);
        let mut w = Writer::open(&cfg, clock.now()).unwrap();
        w.rotate(clock.now()).unwrap();
        assert_eq!(w.write(&replay, clock.now()).unwrap(), Outcome::Duplicate);
        run_hours(&mut w, &clock, 2);
        assert_eq!(w.write(&replay, clock.now()).unwrap(), Outcome::Written);
    }

    #[test]
    fn marks_are_kept_forever_without_retention() {
        let (_d, mut cfg) = setup();
        cfg.replay_mark_retention = None;
        let mut w = Writer::open(&cfg, from_unix_secs(T0)).unwrap();
        w.write(
            &msg("s1", "bro_conn", "a", Some((1, 0))),
            from_unix_secs(T0),
        )
        .unwrap();
        w.rotate(from_unix_secs(T0 + 365 * 86_400)).unwrap();
        assert_eq!(journal_marks(&cfg), ["M s1 1 0"]);
    }

    #[test]
    fn crash_before_commit_loses_nothing_and_doubles_nothing() {
        let (_d, cfg) = setup();
        let now = from_unix_secs(T0);
        let mut w = Writer::open(&cfg, now).unwrap();
        w.write(&msg("s1", "bro_conn", "a", Some((1, 0))), now)
            .unwrap();
        w.commit().unwrap();
        w.write(&msg("s1", "bro_conn", "b", Some((1, 2))), now)
            .unwrap();
        // The data reaches the file, the journal group does not (kill -9 here).
        for log in w.files.map.values_mut() {
            log.flush().unwrap();
        }
        assert_eq!(read(&cfg, "conn.log"), "a\nb\n");
        drop(w);
        let mut w = Writer::open(&cfg, now).unwrap();
        assert_eq!(read(&cfg, "conn.log"), "a\n");
        // The sender had no acknowledgement for b and sends it again: accepted exactly once.
        assert_eq!(
            w.write(&msg("s1", "bro_conn", "b", Some((1, 2))), now)
                .unwrap(),
            Outcome::Written
        );
        assert_eq!(
            w.write(&msg("s1", "bro_conn", "a", Some((1, 0))), now)
                .unwrap(),
            Outcome::Duplicate
        );
        w.commit().unwrap();
        assert_eq!(read(&cfg, "conn.log"), "a\nb\n");
    }

    const HEADER: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#open\t2026-11-22-10-00-00\n#fields\tts\tuid\n#types\ttime\tstring";

    fn send_header(w: &mut Writer, host: &str, header: &str, now: SystemTime) {
        for line in header.lines() {
            w.write(&msg(host, "bro_conn", line, None), now).unwrap();
        }
    }

    #[test]
    fn one_header_per_file_and_changed_fields_go_elsewhere() {
        std::env::set_var("TZ", "UTC");
        let (_d, cfg) = setup();
        let now = from_unix_secs(T0);
        let mut w = Writer::open(&cfg, now).unwrap();
        send_header(&mut w, "s1", HEADER, now);
        w.write(&msg("s1", "bro_conn", "1\tA", None), now).unwrap();
        send_header(&mut w, "s2", HEADER, now);
        w.write(&msg("s2", "bro_conn", "2\tB", None), now).unwrap();
        let changed = HEADER
            .replace("#fields\tts\tuid", "#fields\tts\tuid\textra")
            .replace("#types\ttime\tstring", "#types\ttime\tstring\tcount");
        send_header(&mut w, "s3", &changed, now);
        w.write(&msg("s3", "bro_conn", "3\tC\t9", None), now)
            .unwrap();
        w.write(
            &msg("s1", "bro_conn", "#close\t2026-11-22-11-00-00", None),
            now,
        )
        .unwrap();
        w.commit().unwrap();
        let conn = read(&cfg, "conn.log");
        assert_eq!(conn.matches("#fields").count(), 1, "{conn}");
        assert!(conn.starts_with("#separator \\x09\n"));
        assert!(conn.contains("#open\t2026-11-22-"));
        assert!(
            conn.ends_with("#types\ttime\tstring\n1\tA\n2\tB\n"),
            "{conn}"
        );
        let variant = fs::read_dir(cfg.log_dir.join("current"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| n.starts_with("conn-"))
            .unwrap();
        let other = read(&cfg, &variant);
        assert!(other.contains("#fields\tts\tuid\textra\n"));
        assert!(other.ends_with("3\tC\t9\n"));

        // After a restart s3 still goes to its own file.
        drop(w);
        let mut w = Writer::open(&cfg, now).unwrap();
        w.write(&msg("s3", "bro_conn", "4\tD\t9", None), now)
            .unwrap();
        w.commit().unwrap();
        assert!(read(&cfg, &variant).ends_with("3\tC\t9\n4\tD\t9\n"));
        assert!(read(&cfg, "conn.log").ends_with("2\tB\n"));
    }

    #[test]
    fn rotation_closes_and_reopens_with_header() {
        std::env::set_var("TZ", "UTC");
        let (_d, cfg) = setup();
        let t = from_unix_secs(T0 + 100);
        let mut w = Writer::open(&cfg, t).unwrap();
        send_header(&mut w, "s1", HEADER, t);
        w.write(&msg("s1", "bro_conn", "1\tA", None), t).unwrap();
        // Not yet due.
        assert!(w.rotate(from_unix_secs(T0 + 3000)).unwrap().is_empty());
        let boundary = from_unix_secs(T0 + 3600);
        let rotated = w.rotate(boundary).unwrap();
        assert_eq!(rotated.len(), 1);
        let (path, r) = &rotated[0];
        let text = fs::read_to_string(path).unwrap();
        assert!(
            text.ends_with("1\tA\n#close\t2026-11-23-00-00-00\n"),
            "{text}"
        );
        assert_eq!(r.open, t);
        assert!(!cfg.log_dir.join("current/conn.log").exists());
        w.write(&msg("s1", "bro_conn", "2\tB", None), boundary)
            .unwrap();
        w.commit().unwrap();
        let conn = read(&cfg, "conn.log");
        assert!(conn.starts_with("#separator"));
        assert!(conn.ends_with("#types\ttime\tstring\n2\tB\n"));
        let archived = crate::archive::archive(&cfg.log_dir, path, r).unwrap();
        assert!(archived.ends_with("2026-11-22/conn.23:01:40-00:00:00.log.gz"));
    }

    #[test]
    fn per_host_folders() {
        let (_d, mut cfg) = setup();
        cfg.routing.per_host = true;
        let now = from_unix_secs(T0);
        let mut w = Writer::open(&cfg, now).unwrap();
        w.write(&msg("s1", "bro_dns", "x", None), now).unwrap();
        w.write(&msg("../../etc", "bro_dns", "y", None), now)
            .unwrap();
        w.commit().unwrap();
        assert_eq!(read(&cfg, "s1/dns.log"), "x\n");
        assert_eq!(read(&cfg, "unknown/dns.log"), "y\n");
        let rotated = w.rotate_all(from_unix_secs(T0 + 10)).unwrap();
        assert_eq!(rotated.len(), 2);
        assert!(rotated.iter().any(|(_, r)| r.host.as_deref() == Some("s1")));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// Untrusted hosts, tags and bodies: never a panic, never a file outside `current/`.
        #[test]
        fn fuzz_writer(
            msgs in proptest::collection::vec(
                (
                    proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12),
                    proptest::prop_oneof![
                        proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12),
                        "bro_[a-z./#]{0,8}".prop_map(String::into_bytes),
                    ],
                    proptest::prop_oneof![
                        proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
                        "#[a-z]{0,6}\t[a-z]{0,4}".prop_map(String::into_bytes),
                    ],
                    proptest::option::of((0u64..4, 0u64..100)),
                ),
                1..20,
            ),
            per_host in proptest::prelude::any::<bool>(),
        ) {
            let (dir, mut cfg) = setup();
            cfg.routing.per_host = per_host;
            let mut w = Writer::open(&cfg, from_unix_secs(T0)).unwrap();
            let now = from_unix_secs(T0);
            for (host, tag, body, origin) in &msgs {
                let m = Message { host, tag, body, raw: body, origin: *origin };
                w.write(&m, now).unwrap();
            }
            w.commit().unwrap();
            w.rotate_all(from_unix_secs(T0 + 1)).unwrap();
            let logs = dir.path().join("logs");
            for entry in walk(dir.path()) {
                let inside = entry.starts_with(logs.join("current")) || entry.starts_with(dir.path().join("spool"));
                proptest::prop_assert!(inside, "{}", entry.display());
            }
        }
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir).unwrap().flatten() {
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
        out
    }

    #[test]
    fn notices_are_recorded_for_mail() {
        let (_d, cfg) = setup();
        let now = from_unix_secs(T0);
        let mut w = Writer::open(&cfg, now).unwrap();
        w.write(
            &msg(
                "s1",
                "bro_notice",
                r#"{"ts":1.5,"note":"Scan::Port_Scan","msg":"scan","actions":["Notice::ACTION_ALARM"]}"#,
                None,
            ),
            now,
        )
        .unwrap();
        w.commit().unwrap();
        let committed = w.notices_committed();
        assert!(committed.offset > 0);
        let pending = fs::read_to_string(segment_path(&cfg.spool_dir, committed.segment)).unwrap();
        assert!(pending.contains("Scan::Port_Scan"));
        assert_eq!(read(&cfg, "notice.log").lines().count(), 1);
    }
}
