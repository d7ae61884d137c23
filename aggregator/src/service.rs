//! `estuary aggregate`: wires the listeners, the writer/archiver/mailer threads and the timers
//! (rotation aligned to the clock, alarm digests, cron duties, statistics) together.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use estuary_config::aggregator::{AggregatorConfig, NatsRole};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::error::Error;
use crate::events::Events;
use crate::holdings::{Holdings, MailDuty};
use crate::listen::Ctx;
use crate::sockets::{self, Bound};
use crate::stats::{append_stats_log, StatusFile};
use crate::workers::{self, Job, MailJob, Shared, QUEUE_DEPTH};
use crate::writer::Writer;

/// How often the daemon runs its cron duties (zeekctl's crontab line is `*/5`).
const CRON_EVERY: Duration = Duration::from_secs(300);
/// How long the threads get to finish after SIGTERM (systemd waits 90 s before SIGKILL).
const STOP_WITHIN: Duration = Duration::from_secs(20);

/// Runs until `shutdown` completes, then commits everything and returns.
pub async fn serve(
    config: AggregatorConfig,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()>,
    bound_tx: Option<oneshot::Sender<Bound>>,
) -> Result<(), Error> {
    if let Some(input) = config.nats.clone().filter(|n| n.role == NatsRole::Ingest) {
        return crate::nats_ingest::serve(config, input, clock, shutdown, bound_tx).await;
    }
    let listening = sockets::bind(&config).await?;
    let events = Arc::new(Events::new(clock.now()));
    let stop = CancellationToken::new();
    let (cfg, now, zone, ev) = (config.clone(), clock.now(), clock.zone(), events.clone());
    let writer = tokio::task::spawn_blocking(move || Writer::open(&cfg, now, zone, ev))
        .await
        .map_err(|source| Error::Worker {
            what: "opening the writer",
            source,
        })?
        .map_err(|source| Error::Open {
            log_dir: config.log_dir.clone(),
            source,
        })?;
    let unsettled = Arc::new(Mutex::new(writer.unsettled()));
    let status_file = Arc::new(StatusFile::new(&config.spool_dir));
    let (jobs_tx, jobs_rx) = mpsc::channel(QUEUE_DEPTH);
    let (mail_tx, mail_rx) = std::sync::mpsc::channel();
    let holdings = Holdings::new(&config);
    let mail_duty = MailDuty::new(&config, holdings.as_ref());
    let handles = workers::spawn(
        &config,
        writer,
        jobs_rx,
        mail_rx,
        mail_tx.clone(),
        Shared {
            events: events.clone(),
            clock: clock.clone(),
            notices_committed: Arc::new(Mutex::new(Default::default())),
            stop: stop.clone(),
            mail_duty: mail_duty.clone(),
            unsettled: unsettled.clone(),
        },
    )
    .map_err(|source| Error::Start {
        what: "writer threads",
        source,
    })?;

    let ctx = Arc::new(Ctx::new(
        &config,
        jobs_tx.clone(),
        events.clone(),
        stop.clone(),
    ));
    let mut tasks = JoinSet::new();
    let bound = sockets::listen(listening, &ctx, &mut tasks);
    if let (Some(nats), Some(holdings)) = (&config.nats, &holdings) {
        crate::nats_input::spawn(nats, jobs_tx.clone(), holdings, &unsettled, &mut tasks);
    }
    tracing::info!(?bound, log_dir = %config.log_dir.display(), "aggregator listening");
    if let Some(tx) = bound_tx {
        let _ = tx.send(bound);
    }

    // Files left open by a previous run may be overdue.
    let _ = jobs_tx.send(Job::Rotate(clock.now())).await;
    if !config.rotation_interval.is_zero() {
        let (jobs, clock, interval) = (jobs_tx.clone(), clock.clone(), config.rotation_interval);
        tasks.spawn(async move {
            loop {
                let now = clock.now();
                let next = clock.zone().next_boundary(now, interval);
                tokio::time::sleep(next.duration_since(now).unwrap_or_default()).await;
                if jobs.send(Job::Rotate(clock.now())).await.is_err() {
                    return;
                }
            }
        });
    }
    if let Some(every) = config.mail.alarms_interval.filter(|d| !d.is_zero()) {
        let (mail, clock) = (mail_tx.clone(), clock.clone());
        tasks.spawn(async move {
            loop {
                let now = clock.now();
                let next = clock.zone().next_boundary(now, every);
                tokio::time::sleep(next.duration_since(now).unwrap_or_default()).await;
                if mail.send(MailJob::Digest(clock.now())).is_err() {
                    return;
                }
            }
        });
    }
    {
        let (clock, events, failed) = (clock.clone(), events.clone(), events.clone());
        let holdings = holdings.clone();
        tasks.spawn(status_file.clone().refresh(
            move || {
                let mut snapshot = events.snapshot(clock.now());
                snapshot.nats = holdings.as_ref().map(|h| h.status());
                snapshot
            },
            move |err| failed.statistics_not_written("status file", err),
        ));
    }
    {
        let (cfg, clock, events) = (config.clone(), clock.clone(), events.clone());
        let duty = mail_duty.clone();
        tasks.spawn(async move {
            let mut cron = tokio::time::interval(CRON_EVERY);
            cron.set_missed_tick_behavior(MissedTickBehavior::Skip);
            cron.tick().await;
            loop {
                cron.tick().await;
                let (cfg, now, events) = (cfg.clone(), clock.now(), events.clone());
                let mail = duty.now();
                let zone = clock.zone();
                let snapshot = events.snapshot(now);
                let _ = tokio::task::spawn_blocking(move || {
                    if let Err(err) = append_stats_log(&cfg.stats_log, &snapshot) {
                        events.statistics_not_written("StatsLog", &err);
                    }
                    match crate::cron::run(&cfg, zone, now, mail) {
                        Ok(r) => events.cron_pass(Ok((r.expired_files, r.findings.len()))),
                        Err(err) => events.cron_pass(Err(&err)),
                    }
                })
                .await;
            }
        });
    }

    shutdown.await;
    // Connections end at once, unanswered (RELP senders send again what was not answered);
    // the writer commits what it was given and the threads finish, within STOP_WITHIN.
    tracing::info!("shutting down");
    stop.cancel();
    tasks.shutdown().await;
    drop(jobs_tx);
    drop(ctx);
    drop(mail_tx);
    let now = clock.now();
    let joined = tokio::task::spawn_blocking(move || {
        let _ = handles.writer.join();
        let _ = handles.archiver.join();
        let _ = handles.mailer.join();
    });
    match tokio::time::timeout(STOP_WITHIN, joined).await {
        Ok(joined) => joined.map_err(|source| Error::Worker {
            what: "stopping the threads",
            source,
        })?,
        Err(_) => tracing::warn!(
            "the archiver or the mailer is still busy after {}s; stopping without it (it resumes at the next start)",
            STOP_WITHIN.as_secs()
        ),
    }
    // What was taken is committed by now; the last statistics are a report, and a full disk
    // failing them must not make a clean stop look failed (systemd would mark the unit so).
    let snapshot = events.snapshot(now);
    if let Err(err) = append_stats_log(&config.stats_log, &snapshot) {
        events.statistics_not_written("StatsLog", &err);
    }
    if let Err(err) = status_file.write(&snapshot) {
        events.statistics_not_written("status file", &err);
    }
    Ok(())
}

/// Runs the aggregator on its own runtime until SIGTERM or SIGINT.
pub fn run(config: AggregatorConfig) -> Result<(), Error> {
    // The writer has a thread of its own; one runtime thread fewer than cores keeps the two
    // from trading places on small machines (cross-thread wakeups dominated RELP's cost).
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores.saturating_sub(1).max(1))
        .enable_all()
        .build()
        .map_err(|source| Error::Start {
            what: "runtime",
            source,
        })?;
    let result = runtime.block_on(async move {
        let shutdown = async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(err) => {
                        tracing::error!(%err, "cannot watch SIGTERM");
                        let _ = tokio::signal::ctrl_c().await;
                        return;
                    }
                };
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        // systemd's Type=notify: ready once every listener is bound.
        let (bound_tx, bound_rx) = oneshot::channel();
        tokio::spawn(async move {
            if bound_rx.await.is_ok() {
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
            }
        });
        serve(
            config,
            Arc::new(crate::clock::SystemClock),
            shutdown,
            Some(bound_tx),
        )
        .await
    });
    // A status write or cron pass still running must not hold the exit up.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}
