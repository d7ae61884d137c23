//! Expiry with zeekctl's semantics (bin/expire-logs): regular files inside `LogDir/YYYY-MM-DD/`
//! whose modification time is older than LogExpireInterval are removed unless their file name
//! matches a KeepLogs shell pattern; dated folders left empty are removed. Also StatsLog expiry:
//! leading lines whose first column (epoch seconds) is too old are dropped.

use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use estuary_fsutil::{replace_with, sync_dir, Durability};

use crate::archive::is_dated_dir;
use crate::clock::unix_secs;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ExpireReport {
    pub removed_files: usize,
    pub removed_dirs: usize,
}

pub fn expire_logs(
    log_dir: &Path,
    max_age: Duration,
    keep: &[glob::Pattern],
    now: SystemTime,
) -> io::Result<ExpireReport> {
    let mut report = ExpireReport::default();
    let entries = match fs::read_dir(log_dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(report),
        Err(err) => return Err(err),
    };
    for entry in entries.flatten() {
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if !is_dir || !entry.file_name().to_str().is_some_and(is_dated_dir) {
            continue;
        }
        expire_tree(&entry.path(), max_age, keep, now, &mut report)?;
        // `rmdir` semantics: only an empty folder goes.
        if fs::remove_dir(entry.path()).is_ok() {
            report.removed_dirs += 1;
        }
    }
    if report.removed_dirs > 0 {
        sync_dir(log_dir)?;
    }
    Ok(report)
}

fn expire_tree(
    dir: &Path,
    max_age: Duration,
    keep: &[glob::Pattern],
    now: SystemTime,
    report: &mut ExpireReport,
) -> io::Result<()> {
    for entry in fs::read_dir(dir)?.flatten() {
        let kind = entry.file_type()?;
        if kind.is_dir() {
            expire_tree(&entry.path(), max_age, keep, now, report)?;
            let _ = fs::remove_dir(entry.path());
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if keep.iter().any(|p| p.matches(&name)) {
            continue;
        }
        let modified = entry.metadata()?.modified()?;
        // find -mmin +N: strictly older than N whole minutes.
        let age = now.duration_since(modified).unwrap_or_default();
        if age.as_secs() / 60 > max_age.as_secs() / 60 {
            fs::remove_file(entry.path())?;
            report.removed_files += 1;
        }
    }
    Ok(())
}

/// Drops StatsLog lines older than `max_age` (first column is the epoch), keeping the rest in
/// order; the file is replaced atomically.
pub fn expire_stats_log(path: &Path, max_age: Duration, now: SystemTime) -> io::Result<usize> {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(err),
    };
    let cutoff = unix_secs(now).saturating_sub(max_age.as_secs());
    let dropped = replace_with(path, Durability::Durable, |out| {
        let mut dropped = 0;
        let mut leading = true;
        for line in BufReader::new(file).lines() {
            let line = line?;
            if leading {
                let epoch = line
                    .split_whitespace()
                    .next()
                    .and_then(|t| t.split('.').next())
                    .and_then(|t| t.parse::<u64>().ok());
                if epoch.is_some_and(|e| e <= cutoff) {
                    dropped += 1;
                    continue;
                }
                leading = false;
            }
            writeln!(out, "{line}")?;
        }
        Ok(dropped)
    })?;
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_mtime(path: &Path, t: SystemTime) {
        let f = fs::File::options().write(true).open(path).unwrap();
        f.set_modified(t).unwrap();
    }

    #[test]
    fn zeekctl_semantics() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let day = Duration::from_secs(86_400);
        let old = dir.path().join("2020-01-01");
        let recent = dir.path().join("2020-01-02");
        let other = dir.path().join("notadate");
        for d in [&old, &recent, &other] {
            fs::create_dir_all(d).unwrap();
        }
        for (dir, name, age) in [
            (&old, "conn.00:00:00-01:00:00.log.gz", 31),
            (&old, "dns.00:00:00-01:00:00.log.gz", 31),
            (&recent, "conn.00:00:00-01:00:00.log.gz", 31),
            (&recent, "http.00:00:00-01:00:00.log.gz", 29),
            (&other, "conn.log.gz", 99),
        ] {
            let p = dir.join(name);
            fs::write(&p, b"x").unwrap();
            set_mtime(&p, now - day * age);
        }
        let keep = vec![glob::Pattern::new("dns*").unwrap()];
        let report = expire_logs(dir.path(), day * 30, &keep, now).unwrap();
        assert_eq!(report.removed_files, 2);
        assert!(old.join("dns.00:00:00-01:00:00.log.gz").exists());
        assert!(recent.join("http.00:00:00-01:00:00.log.gz").exists());
        assert!(other.join("conn.log.gz").exists());
        assert_eq!(report.removed_dirs, 0);

        let report = expire_logs(dir.path(), day * 30, &[], now).unwrap();
        assert_eq!(report.removed_files, 1);
        assert_eq!(report.removed_dirs, 1);
        assert!(!old.exists());
    }

    #[test]
    fn stats_log_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("stats.log");
        fs::write(&p, "100 a\n200 b\n300 c\n").unwrap();
        let now = crate::clock::from_unix_secs(400);
        assert_eq!(
            expire_stats_log(&p, Duration::from_secs(150), now).unwrap(),
            2
        );
        assert_eq!(fs::read_to_string(&p).unwrap(), "300 c\n");
    }
}
