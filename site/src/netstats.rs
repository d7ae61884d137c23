//! A sensor's capture statistics (`netstats.json`), printed the way `zeekctl netstats` does.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum NetstatsError {
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a sensor statistics file ({source})")]
    Format {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// What the sensor writes; fields it may add later are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct Netstats {
    /// Seconds since the epoch.
    pub updated: f64,
    pub node_count: u32,
    pub node_index: u32,
    pub received: u64,
    pub analyzed: u64,
    pub dropped_kernel: u64,
    pub dropped_interface: u64,
    #[serde(default)]
    pub workers: Vec<WorkerStats>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkerStats {
    pub worker: u32,
    pub packets: u64,
    pub malformed: u64,
    pub non_ip: u64,
    pub conns_evicted: u64,
}

impl Netstats {
    pub fn load(path: &Path) -> Result<Netstats, NetstatsError> {
        let bytes = std::fs::read(path).map_err(|source| NetstatsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| NetstatsError::Format {
            path: path.to_path_buf(),
            source,
        })
    }

    pub fn dropped(&self) -> u64 {
        self.dropped_kernel + self.dropped_interface
    }

    /// `name: recvd=… dropped=… …` and one indented line per capture thread.
    pub fn report(&self, name: &str, now: SystemTime) -> String {
        let now = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let age = (now - self.updated).max(0.0);
        let mut out = format!(
            "{name}: recvd={} analyzed={} dropped={} (kernel {}, interface {}) node {} of {}, updated {age:.0}s ago\n",
            self.received,
            self.analyzed,
            self.dropped(),
            self.dropped_kernel,
            self.dropped_interface,
            self.node_index + 1,
            self.node_count,
        );
        if self.workers.len() > 1 {
            for w in &self.workers {
                out.push_str(&format!(
                    "  thread {}: packets={} malformed={} non_ip={} conns_evicted={}\n",
                    w.worker, w.packets, w.malformed, w.non_ip, w.conns_evicted
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_is_one_line_per_sensor_and_thread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("netstats.json");
        std::fs::write(
            &path,
            r#"{"updated":100.5,"node_count":2,"node_index":1,"received":10,"analyzed":9,"dropped_kernel":1,"dropped_interface":2,"workers":[{"worker":0,"packets":4,"malformed":0,"non_ip":1,"conns_evicted":0},{"worker":1,"packets":5,"malformed":1,"non_ip":0,"conns_evicted":0}]}"#,
        )
        .unwrap();
        let stats = Netstats::load(&path).unwrap();
        let report = stats.report("worker-2", UNIX_EPOCH + std::time::Duration::from_secs(110));
        assert_eq!(
            report,
            "worker-2: recvd=10 analyzed=9 dropped=3 (kernel 1, interface 2) node 2 of 2, updated 10s ago\n  thread 0: packets=4 malformed=0 non_ip=1 conns_evicted=0\n  thread 1: packets=5 malformed=1 non_ip=0 conns_evicted=0\n"
        );
        std::fs::write(&path, "{}").unwrap();
        assert!(matches!(
            Netstats::load(&path),
            Err(NetstatsError::Format { .. })
        ));
    }
}
