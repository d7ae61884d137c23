//! The threads behind the listeners: the writer (one thread owns every file; batches are
//! drained from a channel, written, committed together, then acknowledged), the archiver and
//! the mailer. Blocking file work never runs on the async runtime.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use estuary_config::aggregator::AggregatorConfig;
use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
use crate::ingest::Batch;
use crate::mail::Notifier;
use crate::pending::NoticePos;
use crate::stats::{Counters, Stats};
use crate::writer::{Message, Outcome, Writer};

/// Batches committed together at most.
const MAX_JOBS_PER_COMMIT: usize = 512;
/// How often the writer looks at free space.
const DISK_CHECK_EVERY: Duration = Duration::from_secs(1);
const RETRY_AFTER: Duration = Duration::from_secs(1);

pub enum Job {
    Batch(Batch),
    /// Rotate whatever is due at this time.
    Rotate(SystemTime),
    /// Commit, then answer (tests and shutdown use it as a barrier).
    Sync(oneshot::Sender<()>),
}

pub enum MailJob {
    /// Close the alarm digest interval at this time.
    Digest(SystemTime),
    /// New notices were committed.
    Kick,
}

pub struct Shared {
    pub stats: Arc<Stats>,
    pub clock: Arc<dyn Clock>,
    /// How far the pending notices are committed, for the mailer.
    pub notices_committed: Arc<Mutex<NoticePos>>,
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

/// Holds the writer back while free space is below the hard floor.
struct DiskGate {
    paths: Vec<std::path::PathBuf>,
    floor: f64,
    next_check: Instant,
}

impl DiskGate {
    fn wait(&mut self, stats: &Stats) {
        if self.floor <= 0.0 || Instant::now() < self.next_check {
            return;
        }
        let mut warned = false;
        loop {
            let refs: Vec<&std::path::Path> = self.paths.iter().map(|p| p.as_path()).collect();
            let free = crate::disk::min_free_percent(&refs).unwrap_or(100.0);
            if free >= self.floor {
                if warned {
                    tracing::warn!(
                        free_percent = free,
                        "disk space is back; taking messages again"
                    );
                }
                stats.set_paused(false);
                break;
            }
            if !warned {
                tracing::error!(
                    free_percent = free,
                    floor = self.floor,
                    "disk below the hard floor: not reading or acknowledging until space returns"
                );
                warned = true;
                stats.set_paused(true);
            }
            std::thread::sleep(RETRY_AFTER);
        }
        self.next_check = Instant::now() + DISK_CHECK_EVERY;
    }
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
    let log_dir = config.log_dir.clone();
    let archiver = std::thread::Builder::new()
        .name("archiver".into())
        .spawn(move || archiver(log_dir, archive_rx))?;
    // Archive anything a previous run left behind.
    let _ = archive_tx.send(());

    let mut notifier = Notifier::open(config, shared.clock.now())?;
    publish_notices(&writer, &shared);
    notifier.clamp(writer.notices_committed())?;
    let committed = shared.notices_committed.clone();
    let mail_clock = shared.clock.clone();
    let mailer = std::thread::Builder::new()
        .name("mailer".into())
        .spawn(move || mailer(notifier, mail_rx, committed, mail_clock))?;

    let gate = DiskGate {
        paths: vec![config.log_dir.clone(), config.spool_dir.clone()],
        floor: config.disk.hard_floor_percent,
        next_check: Instant::now(),
    };
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
    while let Some(first) = rx.blocking_recv() {
        gate.wait(&shared.stats);
        jobs.push(first);
        while jobs.len() < MAX_JOBS_PER_COMMIT {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let mut batches = Vec::new();
        let mut waiters = Vec::new();
        let mut moved = false;
        for job in jobs.drain(..) {
            match job {
                Job::Batch(b) => batches.push(b),
                Job::Sync(done) => waiters.push(done),
                Job::Rotate(at) => {
                    write_committed(&mut writer, &mut batches, &shared);
                    // The digest interval ends with a rotation (not with a catch-up that
                    // found nothing due).
                    let rotated = rotate(&mut writer, at, &archive_tx);
                    // The digest must see the notices segment the rotation closed.
                    moved |= publish_notices(&writer, &shared);
                    if rotated && digest_at_rotation {
                        let _ = mail_tx.send(MailJob::Digest(at));
                    }
                }
            }
        }
        write_committed(&mut writer, &mut batches, &shared);
        if publish_notices(&writer, &shared) || moved {
            let _ = mail_tx.send(MailJob::Kick);
        }
        for done in waiters {
            let _ = done.send(());
        }
    }
    if let Err(err) = writer.commit() {
        tracing::error!(%err, "final commit failed");
    }
}

/// Writes and commits `batches`, retrying until it works (a full disk is waited out, nothing is
/// dropped), then acknowledges them.
fn write_committed(writer: &mut Writer, batches: &mut Vec<Batch>, shared: &Shared) {
    if batches.is_empty() {
        return;
    }
    let mut logged = false;
    loop {
        let now = shared.clock.now();
        let mut counts: HashMap<Arc<str>, Counters> = HashMap::new();
        let result = write_all(writer, batches, now, &mut counts).and_then(|()| writer.commit());
        match result {
            Ok(()) => {
                for (peer, c) in counts {
                    shared.stats.add(&peer, &c);
                }
                break;
            }
            Err(err) => {
                writer.abort();
                if !logged {
                    tracing::error!(%err, "cannot write logs; holding messages and retrying");
                    logged = true;
                }
                std::thread::sleep(RETRY_AFTER);
            }
        }
    }
    for batch in batches.drain(..) {
        if let Some(ack) = batch.ack {
            let _ = ack.send(());
        }
    }
}

fn write_all(
    writer: &mut Writer,
    batches: &[Batch],
    now: SystemTime,
    counts: &mut HashMap<Arc<str>, Counters>,
) -> std::io::Result<()> {
    for batch in batches {
        let mut c = Counters::default();
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
                origin: p.origin,
            };
            match writer.write(&msg, now)? {
                Outcome::Written => c.accepted += 1,
                Outcome::Duplicate => c.duplicates += 1,
            }
        }
        counts.entry(batch.peer.clone()).or_default().add(&c);
    }
    Ok(())
}

/// Whether anything was rotated.
fn rotate(writer: &mut Writer, at: SystemTime, archive_tx: &std::sync::mpsc::Sender<()>) -> bool {
    loop {
        match writer.rotate(at) {
            Ok(rotated) => {
                for (path, r) in &rotated {
                    tracing::info!(log = %r.name, path = %path.display(), "rotated");
                }
                if !rotated.is_empty() {
                    let _ = archive_tx.send(());
                }
                return !rotated.is_empty();
            }
            Err(err) => {
                tracing::error!(%err, "rotation failed; retrying");
                std::thread::sleep(RETRY_AFTER);
            }
        }
    }
}

fn archiver(log_dir: std::path::PathBuf, rx: std::sync::mpsc::Receiver<()>) {
    let current = log_dir.join("current");
    while rx.recv().is_ok() {
        while rx.try_recv().is_ok() {}
        let pending = match crate::archive::recover(&log_dir, &current) {
            Ok(p) => p,
            Err(err) => {
                tracing::error!(%err, "cannot scan for logs to archive");
                continue;
            }
        };
        for (path, rotated) in pending {
            match crate::archive::archive(&log_dir, &path, &rotated) {
                Ok(dest) => tracing::info!(archive = %dest.display(), "archived"),
                Err(err) => {
                    tracing::error!(source = %path.display(), %err, "archiving failed; kept for the next try")
                }
            }
        }
    }
}

fn mailer(
    mut notifier: Notifier,
    rx: std::sync::mpsc::Receiver<MailJob>,
    committed: Arc<Mutex<NoticePos>>,
    clock: Arc<dyn Clock>,
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
