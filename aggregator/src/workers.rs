//! The threads behind the listeners: the writer (one thread owns every file; batches are
//! drained from a channel, written, committed together, then acknowledged), the archiver and
//! the mailer. Blocking file work never runs on the async runtime.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use estuary_config::aggregator::AggregatorConfig;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, Zone};
use crate::events::Events;
use crate::holdings::MailDuty;
use crate::ingest::Batch;
use crate::mail::Notifier;
use crate::pending::NoticePos;
use crate::writer::{Message, Origin, Outcome, Prepare, Writer};

/// Batches committed together at most.
/// Batches waiting for the writer; when full, connections stop being read (backpressure).
pub(crate) const QUEUE_DEPTH: usize = 64;
const MAX_JOBS_PER_COMMIT: usize = 512;
/// How often the writer looks at free space.
const DISK_CHECK_EVERY: Duration = Duration::from_secs(1);
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How often a thread waiting on the disk looks for a stop.
const STOP_POLL: Duration = Duration::from_millis(50);

pub enum Job {
    Batch(Batch),
    /// Rotate whatever is due at this time.
    Rotate(SystemTime),
    /// Whether a prepared group's commit to the cluster landed.
    Settle(Settle),
}

pub struct Settle {
    pub prepare: Prepare,
    pub landed: bool,
}

impl Job {
    /// Bytes received in it.
    fn bytes(&self) -> u64 {
        match self {
            Job::Batch(batch) => batch.bytes(),
            Job::Rotate(_) | Job::Settle(_) => 0,
        }
    }
}

pub enum MailJob {
    /// Close the alarm digest interval at this time.
    Digest(SystemTime),
    /// New notices were committed.
    Kick,
}

pub struct Shared {
    pub events: Arc<Events>,
    pub clock: Arc<dyn Clock>,
    /// How far the pending notices are committed, for the mailer.
    pub notices_committed: Arc<Mutex<NoticePos>>,
    /// The daemon is stopping: waits end, retries give up.
    pub stop: CancellationToken,
    /// Whether the alarm digests are this aggregator's to send.
    pub mail_duty: MailDuty,
    /// The prepared group the writer waits on, for the readers of the cluster.
    pub unsettled: Arc<Mutex<Option<Prepare>>>,
}

/// Publishes the writer's committed notice position; true when it moved.
fn publish_notices(writer: &Writer, shared: &Shared) -> bool {
    let now = writer.notices_committed();
    let mut seen = shared
        .notices_committed
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    std::mem::replace(&mut *seen, now) != now
}

fn committed_notices(shared: &Mutex<NoticePos>) -> NoticePos {
    *shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// Holds the writer back while free space is below the hard floor. Free space is looked at
/// every second, and sooner once the bytes written since the last look could have used half
/// of the room that was left above the floor.
struct DiskGate {
    paths: Vec<std::path::PathBuf>,
    floor: f64,
    next_check: Instant,
    /// Bytes that may still be written before the next look.
    allowance: u64,
    paused: bool,
}

impl DiskGate {
    fn new(paths: Vec<std::path::PathBuf>, floor: f64) -> Self {
        DiskGate {
            paths,
            floor,
            next_check: Instant::now(),
            allowance: 0,
            paused: false,
        }
    }

    /// Bytes that may be written before the next look.
    fn allowance(&self) -> u64 {
        match self.floor > 0.0 {
            true => self.allowance,
            false => u64::MAX,
        }
    }

    /// `bytes` were written.
    fn account(&mut self, bytes: u64) {
        self.allowance = self.allowance.saturating_sub(bytes);
    }

    /// Returns once there is room above the floor, or at once when stopping: what was taken
    /// is then written anyway.
    fn wait(&mut self, events: &Events, stop: &CancellationToken) {
        if self.floor <= 0.0 || (Instant::now() < self.next_check && self.allowance > 0) {
            return;
        }
        while let Some((free, headroom)) = crate::disk::room(&self.paths, self.floor) {
            if headroom > 0 {
                if std::mem::take(&mut self.paused) {
                    events.disk_resumed(free);
                }
                self.allowance = headroom / 2;
                break;
            }
            if !self.paused {
                events.disk_paused(free, self.floor);
                self.paused = true;
            }
            if sleep_unless_stopped(RETRY_AFTER, stop) {
                break;
            }
        }
        self.next_check = Instant::now() + DISK_CHECK_EVERY;
    }
}

/// Sleeps for `pause` unless a stop comes first; true when stopping.
fn sleep_unless_stopped(pause: Duration, stop: &CancellationToken) -> bool {
    let until = Instant::now() + pause;
    while !stop.is_cancelled() {
        let now = Instant::now();
        if now >= until {
            return false;
        }
        std::thread::sleep((until - now).min(STOP_POLL));
    }
    true
}

pub struct Handles {
    pub writer: JoinHandle<()>,
    pub archiver: JoinHandle<()>,
    pub mailer: JoinHandle<()>,
}

pub fn spawn(
    config: &AggregatorConfig,
    writer: Writer,
    jobs: mpsc::Receiver<Job>,
    mail_rx: std::sync::mpsc::Receiver<MailJob>,
    mail_tx: std::sync::mpsc::Sender<MailJob>,
    shared: Shared,
) -> std::io::Result<Handles> {
    let (archive_tx, archive_rx) = std::sync::mpsc::channel::<()>();
    let (log_dir, events) = (config.log_dir.clone(), shared.events.clone());
    let level = crate::archive::level(config);
    let zone = shared.clock.zone();
    let archiver = std::thread::Builder::new()
        .name("archiver".into())
        .spawn(move || archiver(log_dir, zone, level, archive_rx, events))?;
    // Archive anything a previous run left behind.
    let _ = archive_tx.send(());

    let mut notifier = Notifier::open(config, zone, shared.clock.now())?;
    publish_notices(&writer, &shared);
    notifier.clamp(writer.notices_committed())?;
    let committed = shared.notices_committed.clone();
    let (mail_clock, duty) = (shared.clock.clone(), shared.mail_duty.clone());
    let mailer = std::thread::Builder::new()
        .name("mailer".into())
        .spawn(move || mailer(notifier, mail_rx, committed, mail_clock, duty))?;

    let gate = DiskGate::new(
        vec![config.log_dir.clone(), config.spool_dir.clone()],
        config.disk.hard_floor_percent,
    );
    let digest_at_rotation = config.mail.alarms_interval.is_none();
    let writer = std::thread::Builder::new()
        .name("writer".into())
        .spawn(move || {
            writer_loop(
                writer,
                jobs,
                gate,
                shared,
                archive_tx,
                mail_tx,
                digest_at_rotation,
            )
        })?;
    Ok(Handles {
        writer,
        archiver,
        mailer,
    })
}

fn writer_loop(
    mut writer: Writer,
    mut rx: mpsc::Receiver<Job>,
    mut gate: DiskGate,
    shared: Shared,
    archive_tx: std::sync::mpsc::Sender<()>,
    mail_tx: std::sync::mpsc::Sender<MailJob>,
    digest_at_rotation: bool,
) {
    let mut jobs = Vec::with_capacity(MAX_JOBS_PER_COMMIT);
    // Jobs that came while a prepared group waited for its settlement.
    let mut aside: VecDeque<Job> = VecDeque::new();
    loop {
        if writer.is_unsettled() {
            // Its settlement comes from the channel: a reader sends it only after the commit,
            // so it cannot be among the jobs set aside before.
            match rx.blocking_recv() {
                Some(Job::Settle(s)) => settle(&mut writer, &s, &shared, &mail_tx),
                Some(job) => aside.push_back(job),
                None => break,
            }
            continue;
        }
        let Some(first) = aside.pop_front().or_else(|| rx.blocking_recv()) else {
            break;
        };
        gate.wait(&shared.events, &shared.stop);
        // A group takes no more bytes than the disk gate allows before its next look.
        let mut bytes = first.bytes();
        jobs.push(first);
        while jobs.len() < MAX_JOBS_PER_COMMIT && bytes < gate.allowance() {
            match aside.pop_front().or_else(|| rx.try_recv().ok()) {
                Some(job) => {
                    bytes += job.bytes();
                    jobs.push(job);
                }
                None => break,
            }
        }
        let mut batches = Vec::new();
        let mut moved = false;
        let mut drained = jobs.drain(..);
        while let Some(job) = drained.next() {
            match job {
                Job::Batch(b) if b.prepare.is_some() => {
                    // Alone in its group, so a cut takes nothing else with it.
                    gate.account(write_committed(&mut writer, &mut batches, &shared));
                    gate.account(write_committed(&mut writer, &mut vec![b], &shared));
                    if writer.is_unsettled() {
                        let mut rest: VecDeque<Job> = drained.by_ref().collect();
                        rest.append(&mut aside);
                        aside = rest;
                    }
                }
                Job::Batch(b) => batches.push(b),
                Job::Settle(s) => settle(&mut writer, &s, &shared, &mail_tx),
                Job::Rotate(at) => {
                    gate.account(write_committed(&mut writer, &mut batches, &shared));
                    // The digest interval ends with a rotation (not with a catch-up that
                    // found nothing due).
                    let rotated = rotate(&mut writer, at, &archive_tx, &shared);
                    // The digest must see the notices segment the rotation closed.
                    moved |= publish_notices(&writer, &shared);
                    if rotated && digest_at_rotation {
                        let _ = mail_tx.send(MailJob::Digest(at));
                    }
                }
            }
        }
        drop(drained);
        gate.account(write_committed(&mut writer, &mut batches, &shared));
        if publish_notices(&writer, &shared) || moved {
            let _ = mail_tx.send(MailJob::Kick);
        }
    }
    if let Err(err) = writer.commit() {
        tracing::error!(%err, "final commit failed");
    }
}

/// Keeps or cuts the prepared group, retrying until the journal takes it; a stop leaves it
/// for the next start. Notices the group held go to the mailer now.
fn settle(
    writer: &mut Writer,
    settled: &Settle,
    shared: &Shared,
    mail_tx: &std::sync::mpsc::Sender<MailJob>,
) {
    loop {
        match writer.settle(&settled.prepare, settled.landed) {
            Ok(()) => break,
            Err(err) => {
                shared.events.write_failed(&err);
                if sleep_unless_stopped(RETRY_AFTER, &shared.stop) {
                    break;
                }
            }
        }
    }
    publish_unsettled(writer, shared);
    if publish_notices(writer, shared) {
        let _ = mail_tx.send(MailJob::Kick);
    }
}

fn publish_unsettled(writer: &Writer, shared: &Shared) {
    *shared.unsettled.lock().unwrap_or_else(|p| p.into_inner()) = writer.unsettled();
}

/// Writes and commits `batches`, retrying until it works (a full disk is waited out, nothing is
/// dropped), then acknowledges them; returns the bytes received. When stopping, a failing
/// write is given up: nothing of it is acknowledged, so RELP senders send it again.
fn write_committed(writer: &mut Writer, batches: &mut Vec<Batch>, shared: &Shared) -> u64 {
    if batches.is_empty() {
        return 0;
    }
    let mut logged = false;
    // Only ever alone in its group (see `writer_loop`).
    let prepare = batches[0].prepare.clone();
    loop {
        let now = shared.clock.now();
        let mut counts = HashMap::new();
        let result = write_all(writer, batches, now, &mut counts).and_then(|()| match &prepare {
            Some(p) => writer.commit_prepared(p),
            None => writer.commit(),
        });
        match result {
            Ok(()) => {
                for (peer, c) in counts {
                    shared.events.committed(&peer, c.accepted, c.duplicates);
                }
                break;
            }
            Err(err) => {
                writer.abort();
                if !logged {
                    shared.events.write_failed(&err);
                    logged = true;
                }
                if sleep_unless_stopped(RETRY_AFTER, &shared.stop) {
                    let lost: usize = batches.drain(..).map(|b| b.msgs.len()).sum();
                    shared.events.not_written_at_stop(lost);
                    return 0;
                }
            }
        }
    }
    if prepare.is_some() {
        // Before the acknowledgement: a reader that fails after it finds the group here.
        publish_unsettled(writer, shared);
    }
    let mut bytes = 0;
    for batch in batches.drain(..) {
        bytes += batch.bytes();
        if let Some(ack) = batch.ack {
            let _ = ack.send(());
        }
    }
    bytes
}

fn write_all(
    writer: &mut Writer,
    batches: &[Batch],
    now: SystemTime,
    counts: &mut HashMap<Arc<str>, Written>,
) -> std::io::Result<()> {
    for batch in batches {
        let c = counts.entry(batch.peer.clone()).or_default();
        for p in &batch.msgs {
            let host = match &p.host {
                Some(r) => p.slice(r),
                None => batch.peer.as_bytes(),
            };
            let msg = Message {
                host,
                tag: p.slice(&p.tag),
                body: p.slice(&p.body),
                raw: &p.raw,
                origin: p.origin.map(|(file, offset)| Origin {
                    sender: &batch.peer,
                    file,
                    offset,
                }),
            };
            match writer.write(&msg, now)? {
                Outcome::Written => c.accepted += 1,
                Outcome::Duplicate => c.duplicates += 1,
            }
        }
    }
    Ok(())
}

/// What the writer did with one peer's messages.
#[derive(Debug, Default)]
struct Written {
    accepted: u64,
    duplicates: u64,
}

/// Whether anything was rotated.
fn rotate(
    writer: &mut Writer,
    at: SystemTime,
    archive_tx: &std::sync::mpsc::Sender<()>,
    shared: &Shared,
) -> bool {
    loop {
        match writer.rotate(at) {
            Ok(rotated) => {
                for (path, r) in &rotated {
                    shared.events.rotated(r.name.as_str(), path);
                }
                if !rotated.is_empty() {
                    let _ = archive_tx.send(());
                }
                return !rotated.is_empty();
            }
            Err(err) => {
                shared.events.rotation_failed(&err);
                if sleep_unless_stopped(RETRY_AFTER, &shared.stop) {
                    // Files stay current; the next start rotates what is due.
                    return false;
                }
            }
        }
    }
}

fn archiver(
    log_dir: std::path::PathBuf,
    zone: Zone,
    level: estuary_archive::Level,
    rx: std::sync::mpsc::Receiver<()>,
    events: Arc<Events>,
) {
    let current = log_dir.join("current");
    while rx.recv().is_ok() {
        while rx.try_recv().is_ok() {}
        let pending = match crate::archive::recover(&log_dir, &current) {
            Ok(p) => p,
            Err(err) => {
                events.archive_scan_failed(&err);
                continue;
            }
        };
        for (path, rotated) in pending {
            match crate::archive::archive(&log_dir, &path, &rotated, zone, level) {
                Ok(dest) => events.archived(&dest),
                Err(err) => events.archive_failed(&path, &err),
            }
        }
    }
}

fn mailer(
    mut notifier: Notifier,
    rx: std::sync::mpsc::Receiver<MailJob>,
    committed: Arc<Mutex<NoticePos>>,
    clock: Arc<dyn Clock>,
    duty: MailDuty,
) {
    const RETRY: Duration = Duration::from_secs(5);
    // Mail may be waiting from a previous run (or from `estuary cron`): try at once.
    let mut waiting = true;
    loop {
        let job = match rx.recv_timeout(RETRY) {
            Ok(job) => Some(job),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let len = committed_notices(&committed);
        // Another aggregator holds the notice tag: its digest covers the interval. What this
        // one committed while it held the tag waits for its next digest as holder.
        let job = job.filter(|j| !matches!(j, MailJob::Digest(_)) || duty.now());
        // A bug must not end mail for good with a message on stderr only: the cursors move only
        // after a mail is queued, so a pass cut short is simply done again.
        let pass = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            mail_pass(&mut notifier, job, len, clock.now(), waiting)
        }));
        waiting = pass.unwrap_or_else(|_| {
            tracing::error!("the mailer panicked; retrying, but mail may be stuck");
            true
        });
    }
    notifier.flush();
}

/// Queues what `job` and the newly committed notices call for, and sends when there is mail
/// to send; returns whether mail is still waiting.
fn mail_pass(
    notifier: &mut Notifier,
    job: Option<MailJob>,
    committed: NoticePos,
    now: SystemTime,
    mut waiting: bool,
) -> bool {
    match notifier.emails(committed, now) {
        Ok(n) => waiting |= n > 0,
        Err(err) => tracing::error!(%err, "cannot queue notice mails"),
    }
    if let Some(MailJob::Digest(at)) = job {
        match notifier.digest(committed, at) {
            Ok(true) => {
                tracing::info!("alarm digest queued");
                waiting = true;
            }
            Ok(false) => {}
            Err(err) => tracing::error!(%err, "cannot queue the alarm digest"),
        }
    }
    // Retry on the timer; otherwise only when something new was queued.
    if waiting || job.is_none() {
        notifier.flush();
        waiting = notifier
            .queue()
            .pending()
            .map(|p| !p.is_empty())
            .unwrap_or(true);
    }
    waiting
}
