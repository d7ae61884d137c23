//! zeekctl's `cron` duties, run by the daemon every few minutes and by `estuary cron`:
//! expire archived logs and StatsLog lines, check free disk space, and mail the findings as one
//! `cron: <first line>` message. Of several aggregators reading a NATS stream only the holder of
//! the notice tag mails them; `estuary cron` of such an aggregator only prints them.

use std::fmt;
use std::io;
use std::time::SystemTime;

use estuary_config::aggregator::AggregatorConfig;

use crate::clock::{unix_secs, Zone};
use crate::mail::{Mail, Notifier};

#[derive(Debug, Default)]
pub struct CronReport {
    /// Lines for the cron mail (disk warnings, failures).
    pub findings: Vec<String>,
    pub expired_files: usize,
    pub expired_dirs: usize,
    pub mails_sent: usize,
}

impl fmt::Display for CronReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "expired {} files, {} folders; {} mails sent",
            self.expired_files, self.expired_dirs, self.mails_sent
        )?;
        self.findings
            .iter()
            .try_for_each(|line| writeln!(f, "{line}"))
    }
}

/// `mail`: queue the findings as a cron mail (else they are only in the report).
pub fn run(
    config: &AggregatorConfig,
    zone: Zone,
    now: SystemTime,
    mail: bool,
) -> io::Result<CronReport> {
    let mut report = CronReport::default();
    std::fs::create_dir_all(&config.spool_dir)?;
    if let Some(max_age) = config.expire_interval {
        let keep: Vec<glob::Pattern> = config
            .keep_logs
            .iter()
            .filter_map(|p| match glob::Pattern::new(p) {
                Ok(p) => Some(p),
                Err(err) => {
                    tracing::warn!(pattern = p, %err, "bad KeepLogs pattern ignored");
                    None
                }
            })
            .collect();
        match crate::expire::expire_logs(&config.log_dir, max_age, &keep, now) {
            Ok(r) => {
                report.expired_files = r.removed_files;
                report.expired_dirs = r.removed_dirs;
            }
            Err(err) => report.findings.push(format!("expiring logs failed: {err}")),
        }
    }
    if let Some(max_age) = config.stats_expire_interval {
        if let Err(err) = crate::expire::expire_stats_log(&config.stats_log, max_age, now) {
            report.findings.push(format!(
                "expiring {} failed: {err}",
                config.stats_log.display()
            ));
        }
    }
    let host = crate::mail::hostname();
    match crate::disk::check_min_space(
        &config.spool_dir,
        &host,
        &[&config.log_dir, &config.spool_dir],
        config.disk.min_free_percent,
    ) {
        Ok(warnings) => report.findings.extend(warnings),
        Err(err) => report.findings.push(format!("disk check failed: {err}")),
    }
    let notifier = Notifier::open(config, zone, now)?;
    if let Some(first) = report.findings.first().filter(|_| mail) {
        let mail = Mail {
            subject: format!("cron: {first}"),
            to: config.mail.to.clone(),
            body: report.findings.join("\n"),
        };
        notifier.queue().push(
            notifier.config(),
            &format!("cron-{}", unix_secs(now)),
            &mail,
            zone,
            now,
        )?;
    }
    report.mails_sent = notifier.flush();
    Ok(report)
}
