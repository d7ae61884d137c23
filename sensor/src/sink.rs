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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::tests::SSH;
    use crate::notice::{Action, Note};
    use crate::proto::Timestamp;
    use crate::zeeklog::{Field, LogFormat, Rotation, SystemClock, Value};

    struct SshRow(f64, bool);

    impl Record for SshRow {
        fn path(&self) -> &'static str {
            "ssh"
        }
        fn fields(&self) -> &'static [Field] {
            SSH
        }
        fn values(&self) -> Vec<Value> {
            vec![
                Value::Time(Timestamp(self.0)),
                Value::Addr([198, 51, 99, 1].into()),
                Value::Addr([10, 0, 0, 22].into()),
                Value::Bool(self.1),
            ]
        }
    }

    #[test]
    fn failed_ssh_logins_become_a_password_guessing_notice_with_policy_actions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let logs = LogSet::new(
            dir.path(),
            LogFormat::Tsv,
            Rotation::default(),
            Arc::new(SystemClock),
        )
        .expect("logset");
        let mut policy = NoticePolicy::default();
        policy
            .actions
            .insert(Note::SshPasswordGuessing, vec![Action::Email]);
        policy.email_dest = vec!["soc@example.org".into()];
        let mut p = Pipeline::new(logs, policy, LocalNets::zeek_private());
        for i in 0..40 {
            p.submit(Box::new(SshRow(f64::from(i), false)))
                .expect("submit");
        }
        p.close().expect("close");
        let notice = std::fs::read_to_string(dir.path().join("notice.log")).expect("notice.log");
        let rows: Vec<&str> = notice.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(rows.len(), 1, "{notice}");
        let cols: Vec<&str> = rows[0].split('\t').collect();
        assert_eq!(cols[10], "SSH::Password_Guessing");
        assert_eq!(
            cols[11],
            "198.51.99.1 appears to be guessing SSH passwords (seen in 30 connections)."
        );
        assert_eq!(cols[13], "198.51.99.1");
        assert_eq!(cols[18], "Notice::ACTION_LOG,Notice::ACTION_EMAIL");
        assert_eq!(cols[19], "soc@example.org");
    }
}
