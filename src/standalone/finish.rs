//! The end of a standalone run: the aggregator's last duties done once more with its daemon
//! stopped (rotate every current log, archive, queue notice mails and the alarm digest, send),
//! then rows counted on both ends and the summary.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use estuary_aggregator::archive::{self, Rotated, ROTATED_DIR};
use estuary_aggregator::clock::Zone;
use estuary_aggregator::mail::Notifier;
use estuary_aggregator::writer::Writer;
use estuary_config::aggregator::AggregatorConfig;

use super::tally::Tally;

/// Closes every current log into the archive and delivers the last digest; the aggregator daemon
/// must be stopped. Returns the paths archived.
pub fn final_rotation(config: &AggregatorConfig, now: SystemTime) -> anyhow::Result<Vec<PathBuf>> {
    let log_dir = &config.log_dir;
    let events = std::sync::Arc::new(estuary_aggregator::events::Events::new(now));
    let mut writer =
        Writer::open(config, now, Zone::Local, events).context("open the aggregator's logs")?;
    let mut notifier = Notifier::open(config, Zone::Local, now).context("open the mail queue")?;
    notifier.clamp(writer.notices_committed())?;
    writer.rotate_all(now).context("rotate the current logs")?;
    let mut archived = Vec::new();
    for (path, rotated) in archive::recover(log_dir, &log_dir.join("current"))? {
        archived.push(
            archive::archive(
                log_dir,
                &path,
                &rotated,
                Zone::Local,
                archive::level(config),
            )
            .with_context(|| format!("archive {}", path.display()))?,
        );
    }
    let committed = writer.notices_committed();
    notifier.emails(committed, now)?;
    notifier.digest(committed, now)?;
    notifier.flush();
    Ok(archived)
}

/// Rows (lines that are not `#` headers) per log name; logs without rows are left out.
pub type Rows = BTreeMap<String, u64>;

/// What the sensor wrote: `<name>.log` files in its folder.
pub fn sensor_rows(dir: &Path, tally: &mut Tally) -> anyhow::Result<Rows> {
    let mut logs = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let path = entry?.path();
        if let Some(name) = log_name(&path) {
            logs.push((name, path, false));
        }
    }
    Ok(tallied(logs, tally))
}

/// Rows per log name of `(name, path, gzip)` files; logs without rows (headers only: nothing to
/// deliver) are left out.
fn tallied(files: Vec<(String, PathBuf, bool)>, tally: &mut Tally) -> Rows {
    let counts = tally.rows(files.iter().map(|(_, path, gzip)| (path.as_path(), *gzip)));
    let mut rows = Rows::new();
    for ((name, _, _), n) in files.into_iter().zip(counts) {
        *rows.entry(name).or_default() += n;
    }
    rows.retain(|_, n| *n > 0);
    rows
}

/// The sensor log names in `dir`: `<name>.log` with a name the aggregator can route.
pub fn sensor_logs(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| log_name(&e.path()))
        .collect();
    names.sort();
    names
}

fn log_name(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?.strip_suffix(".log")?;
    let ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    ok.then(|| name.to_owned())
}

/// What the aggregator holds from this run: current logs, rotated ones waiting for the archiver,
/// and archives written since `since`.
pub fn aggregated_rows(log_dir: &Path, since: SystemTime, tally: &mut Tally) -> Rows {
    let mut files = Vec::new();
    let current = log_dir.join("current");
    for entry in read_dir(&current) {
        if let Some(name) = log_name(&entry) {
            files.push((name, entry, false));
        }
    }
    for entry in read_dir(&current.join(ROTATED_DIR)) {
        let rotated = entry
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(Rotated::parse);
        if let Some(rotated) = rotated {
            files.push((rotated.name.as_str().to_owned(), entry, false));
        }
    }
    for archive in archives(log_dir, since) {
        if let Some(name) = archive_log_name(&archive) {
            files.push((name, archive, true));
        }
    }
    tallied(files, tally)
}

/// Archive files (`YYYY-MM-DD/<name>.<open>-<close>.log.gz`) modified since `since`.
pub fn archives(log_dir: &Path, since: SystemTime) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = read_dir(log_dir)
        .into_iter()
        .filter(|d| {
            d.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(archive::is_dated_dir)
        })
        .flat_map(|d| read_dir(&d))
        .filter(|f| f.to_string_lossy().ends_with(".log.gz") && archive_log_name(f).is_some())
        .filter(|f| {
            fs::metadata(f)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= since)
        })
        .collect();
    out.sort();
    out
}

fn archive_log_name(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    if name.starts_with('.') {
        return None;
    }
    Some(name.split('.').next()?.to_owned())
}

fn read_dir(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Where the run's mail went.
pub enum MailReport {
    Smtp {
        server: String,
        to: String,
        /// Mails still in the aggregator's queue (the relay refused or was down).
        queued: usize,
    },
    Files(Vec<PathBuf>),
}

/// Everything the summary prints.
pub struct Summary {
    pub sensor: Rows,
    pub archived: Rows,
    pub notices: u64,
    pub alarms: u64,
    pub mail: MailReport,
    pub archive_dirs: Vec<PathBuf>,
    pub current: PathBuf,
    pub elapsed: Duration,
    pub restarts: Vec<(&'static str, u32)>,
}

impl Summary {
    /// Every log the sensor wrote is archived with exactly its rows, and nothing else is.
    pub fn counts_match(&self) -> bool {
        self.sensor == self.archived
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{:<12} {:>10} {:>10}", "log", "sensor", "archived")?;
        let names: std::collections::BTreeSet<&String> =
            self.sensor.keys().chain(self.archived.keys()).collect();
        for name in names {
            let sensor = self.sensor.get(name).copied().unwrap_or(0);
            let archived = self.archived.get(name).copied().unwrap_or(0);
            let mark = if sensor == archived { "" } else { "  MISMATCH" };
            writeln!(f, "{name:<12} {sensor:>10} {archived:>10}{mark}")?;
        }
        writeln!(f, "notices: {} (alarms: {})", self.notices, self.alarms)?;
        match &self.mail {
            MailReport::Smtp { server, to, queued } => writeln!(
                f,
                "mail: sent through {server} to {to}; {queued} still queued"
            )?,
            MailReport::Files(files) if files.is_empty() => writeln!(f, "mail: none")?,
            MailReport::Files(files) => {
                writeln!(f, "mail: {} written as .eml files:", files.len())?;
                for file in files {
                    writeln!(f, "  {}", file.display())?;
                }
            }
        }
        for dir in &self.archive_dirs {
            writeln!(f, "archive: {}", dir.display())?;
        }
        writeln!(f, "current: {}", self.current.display())?;
        for (role, n) in &self.restarts {
            writeln!(f, "restarts: {role} {n}")?;
        }
        writeln!(f, "elapsed: {:.1} s", self.elapsed.as_secs_f64())?;
        let verdict = if self.counts_match() {
            "every row the sensor wrote is archived exactly once"
        } else {
            "ROW COUNTS DIFFER"
        };
        writeln!(f, "result: {verdict}")
    }
}

/// Notice rows and those with the alarm action, from the sensor's notice.log.
pub fn notices(sensor_dir: &Path) -> (u64, u64) {
    let Ok(text) = fs::read_to_string(sensor_dir.join("notice.log")) else {
        return (0, 0);
    };
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let alarms = rows
        .iter()
        .filter(|l| l.contains("Notice::ACTION_ALARM"))
        .count();
    (rows.len() as u64, alarms as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_routable_log_names_count() {
        assert_eq!(log_name(Path::new("/x/conn.log")).as_deref(), Some("conn"));
        assert_eq!(log_name(Path::new("/x/netstats.json")), None);
        assert_eq!(log_name(Path::new("/x/a-b.log")), None);
        assert_eq!(
            archive_log_name(Path::new("/l/2026-01-01/conn.10:00:00-11:00:00.log.gz")).as_deref(),
            Some("conn")
        );
    }
}
