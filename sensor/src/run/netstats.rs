//! Capture statistics for `estuary status`: what each worker did, written like zeekctl's
//! netstats file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use estuary_fsutil::Durability;

use super::{SensorError, SensorOptions, Summary};
use crate::engine::Engine;

/// What one worker did, for the stats file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerStats {
    pub packets: u64,
    /// Packets dropped from analysis as malformed or truncated (each also a weird).
    pub malformed: u64,
    pub non_ip: u64,
    /// Connections evicted because the flow table was full.
    pub conns_evicted: u64,
}

/// A worker's counters, published for the reader thread's periodic stats file.
#[derive(Debug, Default)]
pub(super) struct WorkerCounters {
    packets: AtomicU64,
    malformed: AtomicU64,
    non_ip: AtomicU64,
    conns_evicted: AtomicU64,
}

impl WorkerCounters {
    pub(super) fn publish(&self, e: &Engine) {
        self.packets.store(e.stats.packets, Ordering::Relaxed);
        self.malformed.store(e.stats.malformed, Ordering::Relaxed);
        self.non_ip.store(e.stats.non_ip, Ordering::Relaxed);
        self.conns_evicted
            .store(e.tracker().stats.conns_evicted, Ordering::Relaxed);
    }

    pub(super) fn load(&self) -> WorkerStats {
        WorkerStats {
            packets: self.packets.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
            non_ip: self.non_ip.load(Ordering::Relaxed),
            conns_evicted: self.conns_evicted.load(Ordering::Relaxed),
        }
    }
}

/// The capture thread's counters, shared with the thread that writes the stats file: a read
/// from a pipe blocks between packets, so the capture thread cannot be the one writing.
#[derive(Debug, Default)]
pub(super) struct CaptureCounters {
    pub(super) received: AtomicU64,
    pub(super) analyzed: AtomicU64,
    pub(super) dropped_kernel: AtomicU64,
    pub(super) dropped_interface: AtomicU64,
}

impl CaptureCounters {
    pub(super) fn summary(&self, workers: &[WorkerCounters]) -> Summary {
        Summary {
            received: self.received.load(Ordering::Relaxed),
            analyzed: self.analyzed.load(Ordering::Relaxed),
            dropped_kernel: self.dropped_kernel.load(Ordering::Relaxed),
            dropped_interface: self.dropped_interface.load(Ordering::Relaxed),
            per_worker: workers.iter().map(WorkerCounters::load).collect(),
            records: 0,
        }
    }
}

/// Rewrites the stats file every interval until dropped.
pub(super) struct StatsWriter {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl StatsWriter {
    pub(super) fn spawn(
        path: PathBuf,
        opts: &SensorOptions,
        every: Duration,
        capture: Arc<CaptureCounters>,
        workers: Arc<Vec<WorkerCounters>>,
    ) -> Self {
        let (stop, stopped) = channel::<()>();
        let opts = opts.clone();
        let thread = thread::spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                if let Err(e) = write_stats(&path, &opts, &capture.summary(&workers)) {
                    tracing::warn!(error = %e, "cannot write the capture statistics");
                }
            }
        });
        StatsWriter {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for StatsWriter {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Replaces the capture statistics file whole, like zeekctl's netstats.
pub(super) fn write_stats(
    path: &Path,
    opts: &SensorOptions,
    s: &Summary,
) -> Result<(), SensorError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    let workers: Vec<String> = s
        .per_worker
        .iter()
        .enumerate()
        .map(|(i, w)| {
            format!(
                "{{\"worker\":{i},\"packets\":{},\"malformed\":{},\"non_ip\":{},\"conns_evicted\":{}}}",
                w.packets, w.malformed, w.non_ip, w.conns_evicted
            )
        })
        .collect();
    let body = format!(
        "{{\"updated\":{now:.6},\"node_count\":{},\"node_index\":{},\"received\":{},\"analyzed\":{},\"dropped_kernel\":{},\"dropped_interface\":{},\"workers\":[{}]}}\n",
        opts.split.count,
        opts.split.index,
        s.received,
        s.analyzed,
        s.dropped_kernel,
        s.dropped_interface,
        workers.join(",")
    );
    estuary_fsutil::replace(path, body.as_bytes(), Durability::Visible).map_err(|source| {
        SensorError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}
