//! Onward forwarding: the aggregator's merged logs in `LogDir/current/` are the buffer, and the
//! shipper tails them to ELSA or a SIEM. Each log becomes a shipper input tagged as it arrived
//! (`conn.log` -> `bro_conn`, so ELSA's syslog-ng routes it by program), each `ForwardTo` URL a
//! destination taking the tags its group's `ForwardTags` selects. Offsets are the shipper's
//! state files in `SpoolDir/forward/`, so an outage of the destination loses nothing (the files
//! stay open through rotation until read) and a restart repeats at most what was in flight.
//!
//! A log that appears later (a new tag) restarts the shipper with one input more.
#![forbid(unsafe_code)]

mod inputs;

use std::time::Duration;

use estuary_config::aggregator::AggregatorConfig;
use tokio::sync::watch;
use tracing::info;

pub use inputs::{current_logs, shipper_config, CurrentLog};

/// How often `current/` is looked at for new logs.
const RESCAN: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("no onward destination: set ForwardTo (or a [[forward]] table) in {0}")]
    Unconfigured(String),
    #[error("reading {path}: {source}")]
    Scan {
        path: String,
        source: std::io::Error,
    },
    #[error("installing signal handlers: {0}")]
    Signals(std::io::Error),
    #[error(transparent)]
    Ship(#[from] estuary_shipper::ShipError),
}

/// Forwards until SIGTERM or SIGINT.
pub fn run(config: &AggregatorConfig) -> Result<(), ForwardError> {
    if config.forward.is_empty() {
        return Err(ForwardError::Unconfigured(
            config.source.display().to_string(),
        ));
    }
    // Installed once, before the first shipper starts, so a signal in the window between two
    // shipper runs is neither fatal nor lost.
    let terminate = Terminate::install()?;
    loop {
        let logs = current_logs(config)?;
        info!(logs = logs.len(), "forwarding");
        let stop = {
            let mut terminate = terminate.requested.clone();
            let (config, known) = (config.clone(), logs.clone());
            async move {
                tokio::select! {
                    _ = terminate.wait_for(|t| *t) => {}
                    () = new_log(config, known) => {}
                }
            }
        };
        estuary_shipper::run_until(shipper_config(config, &logs), stop)?;
        if *terminate.requested.borrow() {
            return Ok(());
        }
        info!("a new log appeared; restarting with it");
    }
}

/// The statistics per onward destination (lines read, sent, acknowledged, behind) as the running
/// forwarder last wrote them.
pub fn status(config: &AggregatorConfig) -> Result<String, ForwardError> {
    let text = estuary_shipper::status(&shipper_config(config, &[]))?;
    Ok(text.replacen("shipper status", "forwarder status", 1))
}

/// Completes once `current/` holds a log `known` lacks.
async fn new_log(config: AggregatorConfig, known: Vec<CurrentLog>) {
    loop {
        tokio::time::sleep(RESCAN).await;
        let config = config.clone();
        let now = tokio::task::spawn_blocking(move || current_logs(&config)).await;
        if let Ok(Ok(now)) = now {
            if now.iter().any(|log| !known.contains(log)) {
                return;
            }
        }
    }
}

/// SIGTERM or SIGINT, watched for the forwarder's whole life on a thread of its own.
struct Terminate {
    requested: watch::Receiver<bool>,
}

impl Terminate {
    fn install() -> Result<Self, ForwardError> {
        use tokio::signal::unix::{signal, SignalKind};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ForwardError::Signals)?;
        let (mut term, mut int) = runtime
            .block_on(async {
                Ok::<_, std::io::Error>((
                    signal(SignalKind::terminate())?,
                    signal(SignalKind::interrupt())?,
                ))
            })
            .map_err(ForwardError::Signals)?;
        let (tx, requested) = watch::channel(false);
        std::thread::Builder::new()
            .name("forward-signals".into())
            .spawn(move || {
                runtime.block_on(async {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                });
                let _ = tx.send(true);
            })
            .map_err(ForwardError::Signals)?;
        Ok(Self { requested })
    }
}
