//! The shipper: tails files like rsyslog imfile and forwards each line as syslog, committing a
//! file offset only once the destination has taken the line.
//!
//! Threads: a scanner finds files (globs, rotation, deletion) and owns the [`registry`]; one
//! reader per destination tails, cuts and encodes; a state writer saves offsets as soon as a
//! destination has taken lines ([`checkpoint`]) and a syncer makes them durable every second
//! ([`state`]). Network I/O runs on a tokio runtime with one [`send`] task per destination, fed
//! through a bounded channel.
#![forbid(unsafe_code)]

mod batch;
mod body;
mod checkpoint;
mod events;
mod hash;
mod limits;
mod lines;
mod names;
mod reader;
mod registry;
mod send;
mod shrink;
mod state;
pub mod stats;
mod wake;
mod watch;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use estuary_config::shipper::{DestinationConfig, InputConfig, ShipperConfig, Transport};
use tokio::sync::{mpsc, watch as tokio_watch};
use tracing::{info, warn};

use crate::checkpoint::Checkpoints;
use crate::events::Events;
use crate::reader::Reader;
use crate::registry::Registry;
use crate::send::Sender;
use crate::wake::Wake;

/// Batches queued between a reader and its sender.
const QUEUED_BATCHES: usize = 4;
/// How long shutdown waits for live connections to take what was already read.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error("creating {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("destination {dest}: {source}")]
    Tls {
        dest: String,
        source: Box<send::TlsError>,
    },
    #[error("starting the runtime: {0}")]
    Runtime(io::Error),
    #[error("reading status file {path} (is the shipper running?): {source}")]
    Status { path: PathBuf, source: io::Error },
    #[error("installing signal handlers: {0}")]
    Signal(io::Error),
}

/// Whether lines of `input` go to `dest` (its tag regex and facility selector).
fn routed(input: &InputConfig, dest: &DestinationConfig) -> bool {
    dest.tag_filter
        .as_ref()
        .is_none_or(|re| re.is_match(&input.tag))
        && dest.facility.is_none_or(|f| f == input.facility)
}

/// Runs until SIGTERM or SIGINT, then delivers what live connections can take, saves state and
/// returns.
pub fn run(config: ShipperConfig) -> Result<(), ShipError> {
    serve(config, wait_for_signal())
}

/// Runs until `stop` completes, then shuts down as [`run`] does on a signal. The caller owns
/// signal handling (an embedding process that restarts the shipper keeps its handlers across
/// restarts).
pub fn run_until(
    config: ShipperConfig,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), ShipError> {
    serve(config, async {
        stop.await;
        Ok(())
    })
}

fn serve(
    config: ShipperConfig,
    stop: impl std::future::Future<Output = Result<(), ShipError>>,
) -> Result<(), ShipError> {
    let mut dirs: Vec<PathBuf> = vec![config.work_dir.clone()];
    dirs.extend(
        config
            .inputs
            .iter()
            .filter_map(|i| i.state_file.parent().map(|p| p.to_owned())),
    );
    for dir in dirs.iter().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| ShipError::CreateDir {
            path: dir.clone(),
            source,
        })?;
    }
    let tls: Vec<Option<Arc<rustls::ClientConfig>>> = config
        .destinations
        .iter()
        .map(|d| match &d.transport {
            Transport::Tcp { tls: Some(tls), .. } | Transport::Relp { tls: Some(tls), .. } => {
                send::tls_config(tls)
                    .map(Some)
                    .map_err(|source| ShipError::Tls {
                        dest: d.name.clone(),
                        source: Box::new(source),
                    })
            }
            _ => Ok(None),
        })
        .collect::<Result<_, _>>()?;
    let routes: Vec<Vec<usize>> = config
        .inputs
        .iter()
        .map(|input| {
            let to: Vec<usize> =
                config.destinations.iter().enumerate().filter(|(_, d)| routed(input, d)).map(|(i, _)| i).collect();
            if to.is_empty() {
                warn!(path = %input.path.display(), tag = %input.tag, "input is routed to no destination");
            }
            to
        })
        .collect();
    let dest_names: Vec<String> = config.destinations.iter().map(|d| d.name.clone()).collect();
    let events = Arc::new(Events::new(&dest_names));
    let registry = Arc::new(Registry::new(
        config.inputs.clone(),
        routes,
        dest_names.clone(),
        events.clone(),
    ));
    let checkpoints = Arc::new(Checkpoints::new(registry.clone()));
    let shutdown = Arc::new(AtomicBool::new(false));
    let scan_wake = Arc::new(Wake::default());
    let reader_wakes: Vec<Arc<Wake>> = config
        .destinations
        .iter()
        .map(|_| Arc::new(Wake::default()))
        .collect();
    registry.scan();
    let own_files = config
        .inputs
        .iter()
        .flat_map(|i| [i.state_file.clone(), state::sync_path(&i.state_file)])
        .chain([stats::status_path(&config.work_dir)]);
    let _watcher = watch::start(
        &config.inputs,
        watch::OwnFiles::new(own_files),
        scan_wake.clone(),
        reader_wakes.clone(),
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ShipError::Runtime)?;
    let (stop_tx, stop_rx) = tokio_watch::channel(false);

    let mut threads = Vec::new();
    let mut senders = Vec::new();
    for (dest, dconf) in config.destinations.iter().enumerate() {
        let (tx, rx) = mpsc::channel(QUEUED_BATCHES);
        let framing = match dconf.transport {
            Transport::Tcp { framing, .. } => Some(framing),
            Transport::Nats(_) => Some(estuary_wire::Framing::NewLine),
            Transport::Udp | Transport::Relp { .. } => None,
        };
        let reader = Reader {
            dest,
            registry: registry.clone(),
            events: events.clone(),
            hostname: config.hostname.clone(),
            format: dconf.format,
            body: dconf.body,
            framing,
            tx,
            wake: reader_wakes[dest].clone(),
            shutdown: shutdown.clone(),
            poll: watch::read_interval(&config.inputs),
        };
        threads.push(spawn(format!("read-{dest}"), move || reader.run()));
        senders.push(Sender {
            dest,
            config: dconf.clone(),
            registry: registry.clone(),
            events: events.clone(),
            rx,
            shutdown: stop_rx.clone(),
            tls: tls[dest].clone(),
            checkpoints: checkpoints.clone(),
            saved: checkpoints.saved(),
        });
    }
    {
        let (registry, shutdown, wake, readers) = (
            registry.clone(),
            shutdown.clone(),
            scan_wake.clone(),
            reader_wakes.clone(),
        );
        let interval = watch::scan_interval(&config.inputs);
        threads.push(spawn("scan".into(), move || {
            while !shutdown.load(Ordering::Relaxed) {
                wake.wait(interval);
                registry.scan();
                readers.iter().for_each(|r| r.notify());
            }
        }));
    }
    // Senders wait for saves until they are done, so the state writer stops after them.
    let state_writer = {
        let checkpoints = checkpoints.clone();
        spawn("state".into(), move || checkpoints.run_writer())
    };
    let sync_wake = Arc::new(Wake::default());
    {
        let (registry, shutdown, wake) = (registry.clone(), shutdown.clone(), sync_wake.clone());
        threads.push(spawn("state-sync".into(), move || {
            while !shutdown.load(Ordering::Relaxed) {
                wake.wait(state::SYNC_INTERVAL);
                registry.sync_states();
            }
        }));
    }

    let status_path = stats::status_path(&config.work_dir);
    let status_wake = Arc::new(Wake::default());
    {
        let (events, path, interval) = (events.clone(), status_path.clone(), config.stats_interval);
        let (shutdown, wake) = (shutdown.clone(), status_wake.clone());
        threads.push(spawn("status".into(), move || {
            report(&events, &path, interval, &shutdown, &wake)
        }));
    }
    let result = runtime.block_on(async {
        let tasks: Vec<_> = senders.into_iter().map(|s| tokio::spawn(s.run())).collect();
        // systemd's Type=notify: inputs are open and every destination's sender runs.
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
        stop.await?;
        info!("shutting down");
        shutdown.store(true, Ordering::Relaxed);
        reader_wakes.iter().for_each(|w| w.notify());
        scan_wake.notify();
        sync_wake.notify();
        status_wake.notify();
        let _ = stop_tx.send(true);
        let drain = async {
            for task in tasks {
                let _ = task.await;
            }
        };
        if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
            warn!("destinations did not take everything in time; the rest is sent after restart");
        }
        Ok(())
    });
    // Readers blocked on a full channel are released when the runtime drops their receivers.
    drop(runtime);
    checkpoints.stop();
    let _ = state_writer.join();
    for t in threads {
        let _ = t.join();
    }
    registry.persist_all();
    registry.sync_states();
    write_status(&events, &status_path, true);
    result
}

fn spawn(name: String, f: impl FnOnce() + Send + 'static) -> thread::JoinHandle<()> {
    thread::Builder::new()
        .name(name)
        .spawn(f)
        .expect("spawning a thread at startup")
}

async fn wait_for_signal() -> Result<(), ShipError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(ShipError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ShipError::Signal)?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

/// Writes the status file every second and logs statistics every `interval`, on its own thread:
/// a slow disk must not hold up the senders.
fn report(events: &Events, path: &Path, interval: Duration, shutdown: &AtomicBool, wake: &Wake) {
    let mut last_log = Instant::now();
    while !shutdown.load(Ordering::Relaxed) {
        let log = last_log.elapsed() >= interval;
        if log {
            last_log = Instant::now();
        }
        write_status(events, path, log);
        wake.wait(Duration::from_secs(1));
    }
}

fn write_status(events: &Events, path: &Path, log: bool) {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let status = stats::Status::of(events, now);
    if log {
        for line in status.log_lines() {
            info!("{line}");
        }
    }
    if let Err(err) = status.store(path) {
        warn!(path = %path.display(), %err, "cannot write status file");
    }
}

/// The statistics a running (or the last) shipper with this configuration wrote, as text.
pub fn status(config: &ShipperConfig) -> Result<String, ShipError> {
    let path = stats::status_path(&config.work_dir);
    let status = stats::Status::load(&path).map_err(|source| ShipError::Status { path, source })?;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut out = format!(
        "shipper status as of {}s ago\n",
        now.saturating_sub(status.time)
    );
    for line in status.log_lines().into_iter().chain(status.problem_lines()) {
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use estuary_config::shipper::{LongLines, OnShrink, StartAt, WatchMode};
    use estuary_wire::{Facility, Format, Severity};

    fn input(tag: &str, facility: Facility) -> InputConfig {
        InputConfig {
            path: "/x.log".into(),
            tag: tag.into(),
            facility,
            severity: Severity::Informational,
            state_file: "/s".into(),
            watch: WatchMode::Polling {
                interval: Duration::from_secs(1),
            },
            start_at: StartAt::Beginning,
            max_line_bytes: 8192,
            long_lines: LongLines::Split,
            partial_line_timeout: None,
            on_shrink: OnShrink::NewContent,
        }
    }

    fn dest(tag: Option<&str>, facility: Option<Facility>) -> DestinationConfig {
        DestinationConfig {
            name: "d".into(),
            host: "127.0.0.1".into(),
            port: 514,
            transport: Transport::Udp,
            format: Format::Rfc3164,
            body: estuary_config::shipper::Body::Line,
            tag_filter: tag.map(|t| regex::Regex::new(t).unwrap()),
            facility,
            retry_interval: Duration::from_secs(1),
            retry_max: Duration::from_secs(2),
        }
    }

    #[test]
    fn routing_by_tag_regex_and_facility() {
        let ssl = input("bro_ssl:", Facility::Local7);
        assert!(routed(&ssl, &dest(None, None)));
        assert!(routed(&ssl, &dest(Some("^bro_s"), Some(Facility::Local7))));
        assert!(!routed(&ssl, &dest(Some("^bro_ftp"), None)));
        assert!(!routed(&ssl, &dest(None, Some(Facility::Local0))));
    }
}
