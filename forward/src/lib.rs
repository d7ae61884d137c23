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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use estuary_config::aggregator::AggregatorConfig;
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
    loop {
        let logs = current_logs(config)?;
        let grown = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (config, known, grown, done) =
                (config.clone(), logs.clone(), grown.clone(), done.clone());
            std::thread::Builder::new()
                .name("forward-scan".into())
                .spawn(move || watch_for_new_logs(&config, &known, &grown, &done))
                .map_err(|source| ForwardError::Scan {
                    path: "a scan thread".into(),
                    source,
                })?
        };
        info!(logs = logs.len(), "forwarding");
        let result = estuary_shipper::run(shipper_config(config, &logs));
        done.store(true, Ordering::Relaxed);
        let _ = watcher.join();
        result?;
        if !grown.load(Ordering::Relaxed) {
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

/// Stops the running shipper (as SIGTERM does) once `current/` holds a log `known` lacks.
fn watch_for_new_logs(
    config: &AggregatorConfig,
    known: &[CurrentLog],
    grown: &AtomicBool,
    done: &AtomicBool,
) {
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(RESCAN);
        let Ok(now) = current_logs(config) else {
            continue;
        };
        if now.iter().any(|log| !known.contains(log)) && !done.load(Ordering::Relaxed) {
            grown.store(true, Ordering::Relaxed);
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGTERM);
            return;
        }
    }
}
