//! `estuary sensor`'s entry point: runs the sensor with its signal handling.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::run::{run as run_sensor, SensorError, SensorOptions};

/// Runs the sensor until the input ends, or until SIGINT/SIGTERM for live capture.
pub fn run(opts: &SensorOptions) -> Result<ExitCode, SensorError> {
    let stop = Arc::new(AtomicBool::new(false));
    spawn_signal_watcher(Arc::clone(&stop));
    let summary = run_sensor(opts, &stop)?;
    tracing::info!(
        received = summary.received,
        analyzed = summary.analyzed,
        records = summary.records,
        "sensor finished"
    );
    Ok(ExitCode::SUCCESS)
}

/// How long a stop request may take before the sensor ends without closing its logs.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Sets `stop` on SIGINT or SIGTERM so the capture loop ends and logs are closed cleanly.
/// SIGHUP (a reload, or logrotate's `postrotate`) is logged once and otherwise ignored: the
/// sensor has nothing to reload. The handlers are in place when this returns.
fn spawn_signal_watcher(stop: Arc<AtomicBool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let spawned = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .and_then(|rt| {
            let signals = rt.block_on(async {
                Ok::<_, std::io::Error>((
                    signal(SignalKind::terminate())?,
                    signal(SignalKind::interrupt())?,
                    signal(SignalKind::hangup())?,
                ))
            })?;
            Ok((rt, signals))
        })
        .and_then(|(rt, (mut term, mut int, mut hup))| {
            std::thread::Builder::new()
                .name("sensor-signals".into())
                .spawn(move || {
                    rt.block_on(async {
                        let mut told = false;
                        loop {
                            tokio::select! {
                                _ = term.recv() => break,
                                _ = int.recv() => break,
                                _ = hup.recv() => if !std::mem::replace(&mut told, true) {
                                    tracing::info!("SIGHUP: nothing to reload; the sensor keeps running");
                                },
                            }
                        }
                    });
                    stop.store(true, Ordering::Relaxed);
                    // The capture loop ends at once and closing the logs takes moments; a
                    // sensor still here is blocked before its capture opened (a FIFO with no
                    // writer), with nothing written: it must not outlive a stop request.
                    std::thread::sleep(STOP_GRACE);
                    tracing::error!(grace = ?STOP_GRACE, "still not stopped after SIGTERM: exiting");
                    std::process::exit(1);
                })
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no signal handler; stop with SIGKILL only");
    }
}
