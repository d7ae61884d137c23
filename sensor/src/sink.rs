//! The record sink: where finished rows go. Cross-connection detections read the rows they
//! need, notices pass the notice policy and suppression, then everything goes to the log
//! files. Shared by all workers of a sensor.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::conn::LocalNets;
use crate::detect::{ScanDetector, SshGuessing};
use crate::notice_log::Notice;
use crate::notice_log::{NoticeFilter, NoticePolicy};
use crate::output::Output;
use crate::proto::ssl::x509::{CertRole, X509Info};
use crate::zeeklog::{render_values, LogError, LogSet, Record};

/// Counters of the sink.
#[derive(Debug, Clone, Copy, Default)]
pub struct SinkStats {
    pub records: u64,
    pub notices_suppressed: u64,
}

pub struct RecordSink {
    logs: LogSet,
    notices: NoticeFilter,
    scans: ScanDetector,
    ssh: SshGuessing,
    certs: KnownCerts,
    local: LocalNets,
    pub stats: SinkStats,
}

impl RecordSink {
    pub fn new(logs: LogSet, policy: NoticePolicy, local: LocalNets) -> Self {
        RecordSink {
            logs,
            notices: NoticeFilter::new(policy),
            scans: ScanDetector::new(local.clone()),
            ssh: SshGuessing::default(),
            certs: KnownCerts::default(),
            local,
            stats: SinkStats::default(),
        }
    }

    /// Writes a finished row, and any notice a detection derives from it.
    pub fn submit(&mut self, mut output: Output) -> Result<(), LogError> {
        if let Output::File(f) = &mut output {
            // files.log: Zeek sets local_orig only when Site::local_nets is not empty.
            f.local_orig = (!self.local.is_empty()).then(|| self.local.contains(f.sender()));
        }
        let derived = match &output {
            Output::Conn(conn) => self.scans.conn(conn),
            Output::Ssh(ssh) => self.ssh.login(ssh.login()),
            Output::X509(cert) if !self.certs.first_today(cert) => return Ok(()),
            Output::X509(_) | Output::File(_) | Output::Tunnel(_) | Output::Log(_) => None,
        };
        self.write(output.record())?;
        if let Some(notice) = derived {
            self.notice(notice)?;
        }
        Ok(())
    }

    /// Applies the notice policy and suppression, then writes notice.log.
    pub fn notice(&mut self, mut notice: Notice) -> Result<(), LogError> {
        if !self.notices.admit(&mut notice) {
            self.stats.notices_suppressed += 1;
            return Ok(());
        }
        self.write(&notice)
    }

    fn write(&mut self, record: &dyn Record) -> Result<(), LogError> {
        let fields = record.fields();
        let line = render_values(self.logs.format(), fields, &record.values());
        self.logs.write_line(record.path(), fields, &line)?;
        self.stats.records += 1;
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

/// Zeek's `X509::known_log_certs`: a certificate (by fingerprint and role) is logged again
/// only a day (`X509::relog_known_certificates_after`) after it was last logged.
#[derive(Debug, Default)]
struct KnownCerts {
    logged: HashMap<(String, CertRole), f64>,
}

const RELOG_CERTS_AFTER: f64 = 86_400.0;
const MAX_KNOWN_CERTS: usize = 100_000;

impl KnownCerts {
    fn first_today(&mut self, cert: &X509Info) -> bool {
        let ts = cert.ts.0;
        let key = (cert.fingerprint.clone(), cert.role);
        if self
            .logged
            .get(&key)
            .is_some_and(|&at| ts - at < RELOG_CERTS_AFTER)
        {
            return false;
        }
        if self.logged.len() >= MAX_KNOWN_CERTS {
            self.logged.retain(|_, at| ts - *at < RELOG_CERTS_AFTER);
        }
        self.logged.insert(key, ts);
        true
    }
}

/// A sink shared by worker threads.
#[derive(Clone)]
pub struct SharedSink(Arc<Mutex<RecordSink>>);

impl SharedSink {
    pub fn new(p: RecordSink) -> Self {
        SharedSink(Arc::new(Mutex::new(p)))
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, RecordSink> {
        // A poisoned lock means a worker panicked mid-write; the state is still usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn into_inner(self) -> Option<RecordSink> {
        Arc::try_unwrap(self.0)
            .ok()
            .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{ConnId, ConnInfo, Timestamp, Transport};
    use crate::notice_log::{Action, Note};
    use crate::proto::ssh::SshInfo;
    use crate::zeeklog::{LogFormat, Rotation, SystemClock};

    fn failed_login(ts: f64) -> Output {
        let conn = ConnInfo {
            uid: "CTest".into(),
            id: ConnId {
                orig_h: [198, 51, 99, 1].into(),
                orig_p: 40000,
                resp_h: [10, 0, 0, 22].into(),
                resp_p: 22,
                proto: Transport::Tcp,
            },
        };
        let mut info = SshInfo::new(Timestamp(ts), conn);
        info.auth_success = Some(false);
        Output::Ssh(info)
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
        let mut p = RecordSink::new(logs, policy, LocalNets::zeek_private());
        for i in 0..40 {
            p.submit(failed_login(f64::from(i))).expect("submit");
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
