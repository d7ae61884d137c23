//! `estuary aggregate`: wires the listeners, the writer/archiver/mailer threads and the timers
//! (rotation aligned to the clock, alarm digests, cron duties, statistics) together.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use estuary_config::aggregator::AggregatorConfig;
use estuary_wire::tls::{ClientAuth, KeyPair};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tokio_rustls::TlsAcceptor;

use crate::clock::{next_boundary, Clock};
use crate::listen::{accept_loop, serve_udp, Ctx, Protocol};
use crate::peers::PeerPolicy;
use crate::stats::Stats;
use crate::workers::{self, Job, MailJob, Shared};
use crate::writer::Writer;

/// How often the daemon runs its cron duties (zeekctl's crontab line is `*/5`).
const CRON_EVERY: Duration = Duration::from_secs(300);
/// How often `status.json` is refreshed; StatsLog gets a line per peer every CRON_EVERY.
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// Batches waiting for the writer; when full, connections stop being read (backpressure).
const QUEUE_DEPTH: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("TLS: {0}")]
    Tls(#[from] estuary_wire::tls::TlsError),
    #[error("a TLS or RELP-over-TLS listener needs TLSCertFile and TLSKeyFile")]
    TlsMissing,
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// The addresses actually bound (port 0 in the config gets a real port).
#[derive(Debug, Clone, Default)]
pub struct Bound {
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
    pub tls: Option<SocketAddr>,
    pub relp: Option<SocketAddr>,
    pub relp_tls: Option<SocketAddr>,
}

/// Runs until `shutdown` completes, then commits everything and returns.
pub async fn serve(
    config: AggregatorConfig,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()>,
    bound_tx: Option<oneshot::Sender<Bound>>,
) -> Result<(), Error> {
    let (cfg, now) = (config.clone(), clock.now());
    let writer = tokio::task::spawn_blocking(move || Writer::open(&cfg, now))
        .await
        .map_err(|e| Error::Io {
            what: "opening the writer".into(),
            source: io::Error::other(e),
        })?
        .map_err(io_err(format!(
            "opening logs in {}",
            config.log_dir.display()
        )))?;
    let stats = Arc::new(Stats::new(clock.now()));
    let (jobs_tx, jobs_rx) = mpsc::channel(QUEUE_DEPTH);
    let (mail_tx, mail_rx) = std::sync::mpsc::channel();
    let handles = workers::spawn(
        &config,
        writer,
        jobs_rx,
        mail_rx,
        mail_tx.clone(),
        Shared {
            stats: stats.clone(),
            clock: clock.clone(),
            notices_committed: Arc::new(Mutex::new(Default::default())),
        },
    )
    .map_err(io_err("starting the writer"))?;

    let ctx = Arc::new(Ctx::new(
        jobs_tx.clone(),
        PeerPolicy::new(config.peers.clone()),
        stats.clone(),
        config.max_message_size,
    ));
    let mut tasks = JoinSet::new();
    let bound = listen(&config, &ctx, &mut tasks).await?;
    if let Some(nats) = &config.nats {
        crate::nats_input::spawn(nats, jobs_tx.clone(), &mut tasks);
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
                let next = next_boundary(now, interval);
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
                let next = next_boundary(now, every);
                tokio::time::sleep(next.duration_since(now).unwrap_or_default()).await;
                if mail.send(MailJob::Digest(clock.now())).is_err() {
                    return;
                }
            }
        });
    }
    {
        let (dir, clock, stats) = (config.spool_dir.clone(), clock.clone(), stats.clone());
        tasks.spawn(async move {
            let mut status = tokio::time::interval(STATUS_EVERY);
            status.set_missed_tick_behavior(MissedTickBehavior::Skip);
            loop {
                status.tick().await;
                let (dir, now, stats) = (dir.clone(), clock.now(), stats.clone());
                // File I/O stays off the runtime: with one worker thread (two cores), a slow
                // disk here held up every connection and its RELP acknowledgements.
                let written =
                    tokio::task::spawn_blocking(move || stats.write_status(&dir, now)).await;
                if let Ok(Err(err)) = written {
                    tracing::warn!(%err, "cannot write the status file");
                }
            }
        });
    }
    {
        let (cfg, clock, stats) = (config.clone(), clock.clone(), stats.clone());
        tasks.spawn(async move {
            let mut cron = tokio::time::interval(CRON_EVERY);
            cron.set_missed_tick_behavior(MissedTickBehavior::Skip);
            cron.tick().await;
            loop {
                cron.tick().await;
                let (cfg, now, stats) = (cfg.clone(), clock.now(), stats.clone());
                let _ = tokio::task::spawn_blocking(move || {
                    if let Err(err) = stats.append_log(&cfg.stats_log, now) {
                        tracing::warn!(%err, "cannot append to StatsLog");
                    }
                    match crate::cron::run(&cfg, now) {
                        Ok(r) => tracing::info!(
                            expired = r.expired_files,
                            findings = r.findings.len(),
                            "cron pass"
                        ),
                        Err(err) => tracing::warn!(%err, "cron pass failed"),
                    }
                })
                .await;
            }
        });
    }

    shutdown.await;
    tracing::info!("shutting down");
    tasks.shutdown().await;
    let (done_tx, done_rx) = oneshot::channel();
    let _ = jobs_tx.send(Job::Sync(done_tx)).await;
    let _ = done_rx.await;
    drop(jobs_tx);
    drop(ctx);
    drop(mail_tx);
    let now = clock.now();
    tokio::task::spawn_blocking(move || {
        let _ = handles.writer.join();
        let _ = handles.archiver.join();
        let _ = handles.mailer.join();
    })
    .await
    .map_err(|e| Error::Io {
        what: "stopping".into(),
        source: io::Error::other(e),
    })?;
    stats
        .write(&config.stats_log, &config.spool_dir, now)
        .map_err(io_err("writing statistics"))?;
    Ok(())
}

async fn listen(
    config: &AggregatorConfig,
    ctx: &Arc<Ctx>,
    tasks: &mut JoinSet<()>,
) -> Result<Bound, Error> {
    let mut bound = Bound::default();
    let tls = match (
        &config.tls,
        config.listen.tls.is_some() || config.listen.relp_tls.is_some(),
    ) {
        (Some(t), true) => {
            let auth = match (&t.ca_file, t.require_client_cert) {
                (Some(ca), true) => ClientAuth::Required { ca_file: ca },
                (Some(ca), false) => ClientAuth::Optional { ca_file: ca },
                (None, _) => ClientAuth::Off,
            };
            let server = estuary_wire::tls::server_config(
                KeyPair {
                    cert_file: &t.cert_file,
                    key_file: &t.key_file,
                },
                auth,
            )?;
            Some(TlsAcceptor::from(server))
        }
        (None, true) => return Err(Error::TlsMissing),
        (_, false) => None,
    };
    if let Some(addr) = config.listen.udp {
        let socket = UdpSocket::bind(addr)
            .await
            .map_err(io_err(format!("binding UDP {addr}")))?;
        bound.udp = socket.local_addr().ok();
        tasks.spawn(serve_udp(socket, ctx.clone()));
    }
    let streams = [
        (
            config.listen.tcp,
            None,
            Protocol::Syslog,
            &mut bound.tcp,
            "TCP",
        ),
        (
            config.listen.tls,
            tls.clone(),
            Protocol::Syslog,
            &mut bound.tls,
            "TLS",
        ),
        (
            config.listen.relp,
            None,
            Protocol::Relp,
            &mut bound.relp,
            "RELP",
        ),
        (
            config.listen.relp_tls,
            tls.clone(),
            Protocol::Relp,
            &mut bound.relp_tls,
            "RELP over TLS",
        ),
    ];
    for (addr, acceptor, protocol, slot, what) in streams {
        let Some(addr) = addr else { continue };
        let listener = TcpListener::bind(addr)
            .await
            .map_err(io_err(format!("binding {what} {addr}")))?;
        *slot = listener.local_addr().ok();
        tasks.spawn(accept_loop(listener, acceptor, protocol, ctx.clone()));
    }
    Ok(bound)
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
        .map_err(io_err("starting the runtime"))?;
    runtime.block_on(async move {
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
    })
}
