//! Where finished records go: notice policy and suppression, cross-connection detections,
//! then the log files. Shared by all workers of a sensor.

use std::sync::{Arc, Mutex};

use crate::conn::LocalNets;
use crate::detect::{ScanDetector, SshGuessing};
use crate::notice::{NoticeFilter, NoticePolicy};
use crate::zeeklog::{render_values, LogError, LogSet, Record};

/// Counters of the pipeline.
#[derive(Debug, Clone, Copy, Default)]
pub struct PipelineStats {
    pub records: u64,
    pub notices_suppressed: u64,
}

pub struct Pipeline {
    logs: LogSet,
    notices: NoticeFilter,
    scans: ScanDetector,
    ssh: SshGuessing,
    pub stats: PipelineStats,
}

impl Pipeline {
    pub fn new(logs: LogSet, policy: NoticePolicy, local: LocalNets) -> Self {
        Pipeline {
            logs,
            notices: NoticeFilter::new(policy),
            scans: ScanDetector::new(local),
            ssh: SshGuessing::default(),
            stats: PipelineStats::default(),
        }
    }

    pub fn submit(&mut self, mut record: Box<dyn Record + Send>) -> Result<(), LogError> {
        if let Some(n) = record.as_notice_mut() {
            if !self.notices.admit(n) {
                self.stats.notices_suppressed += 1;
                return Ok(());
            }
        }
        let fields = record.fields();
        let values = record.values();
        let derived = match record.path() {
            "conn" => self.scans.conn(fields, &values),
            "ssh" => self.ssh.ssh(fields, &values),
            _ => None,
        };
        let line = render_values(self.logs.format(), fields, &values);
        self.logs.write_line(record.path(), fields, &line)?;
        self.stats.records += 1;
        if let Some(n) = derived {
            self.submit(Box::new(n))?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), LogError> {
        self.logs.rotate_due()?;
        self.logs.flush()
    }

    pub fn close(self) -> Result<(), LogError> {
        self.logs.close()
    }
}

/// A pipeline shared by worker threads.
#[derive(Clone)]
pub struct SharedPipeline(Arc<Mutex<Pipeline>>);

impl SharedPipeline {
    pub fn new(p: Pipeline) -> Self {
        SharedPipeline(Arc::new(Mutex::new(p)))
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, Pipeline> {
        // A poisoned lock means a worker panicked mid-write; the state is still usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn into_inner(self) -> Option<Pipeline> {
        Arc::try_unwrap(self.0)
            .ok()
            .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
    }
}
