//! Capture statistics for `estuary status`: what each worker did, written like zeekctl's
//! netstats file.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

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

/// Writes the capture statistics atomically (temp file, rename), like zeekctl's netstats.
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
    let tmp = path.with_extension("json.tmp");
    let io = |source| SensorError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = fs::File::create(&tmp).map_err(io)?;
    f.write_all(body.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)?;
    Ok(())
}
