//! Which files hold a log: the zeekctl archive (`YYYY-MM-DD/<log>.HH:MM:SS-HH:MM:SS[-<host>][-<n>]
//! .log[.gz]`, including the aggregator's `<log>-<hash>` files for sensors with another schema)
//! and, on request, the current files (`current/[<host>/]<log>.log` and rotated files waiting to be
//! archived).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::time::{archive_times, Micros};

/// One file to search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub path: PathBuf,
    /// Open and close time from the name, when the name has them.
    pub span: Option<(Micros, Micros)>,
    pub compressed: bool,
    /// Still being written: a last line without its newline is not yet a row.
    pub growing: bool,
}

/// Every file of `log` under `log_dir`, oldest first.
pub fn find(log_dir: &Path, log: &str, current: bool) -> io::Result<Vec<Source>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(log_dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(date) = name
            .to_str()
            .and_then(|n| NaiveDate::parse_from_str(n, "%Y-%m-%d").ok())
        else {
            continue;
        };
        let Ok(files) = fs::read_dir(entry.path()) else {
            continue;
        };
        for file in files.flatten() {
            let file_name = file.file_name();
            let Some(file_name) = file_name.to_str() else {
                continue;
            };
            if let Some((span, compressed)) = archive_name(log, date, file_name) {
                found.push(Source {
                    path: file.path(),
                    span,
                    compressed,
                    growing: false,
                });
            }
        }
    }
    if current {
        current_files(&log_dir.join("current"), log, &mut found);
    }
    found.sort_by(|a, b| (a.span.map(|s| s.0), &a.path).cmp(&(b.span.map(|s| s.0), &b.path)));
    Ok(found)
}

/// The span and compression of an archive file of `log`, or `None` for another log's file.
fn archive_name(
    log: &str,
    date: NaiveDate,
    name: &str,
) -> Option<(Option<(Micros, Micros)>, bool)> {
    let (stem, compressed) = match name.strip_suffix(".gz") {
        Some(stem) => (stem, true),
        None => (name, false),
    };
    let stem = stem.strip_suffix(".log")?;
    let rest = strip_log_name(stem, log)?.strip_prefix('.')?;
    let span = archive_times(date, rest);
    // Only `.HH:MM:SS-HH:MM:SS` and what zeekctl appends to it (`-<host>`, `-<n>`).
    if span.is_none()
        || rest
            .get(17..)
            .is_some_and(|r| !r.is_empty() && !r.starts_with('-'))
    {
        return None;
    }
    Some((span, compressed))
}

/// `stem` without `log` or `log-<8 hex digits>` (the aggregator's schema variant) at its start.
fn strip_log_name<'a>(stem: &'a str, log: &str) -> Option<&'a str> {
    let rest = stem.strip_prefix(log)?;
    match rest.strip_prefix('-') {
        // Followed by the archive times (`.HH:MM:SS-...`), or nothing in a current file's name.
        Some(variant)
            if variant.get(..8).is_some_and(is_hex)
                && (variant.len() == 8 || variant[8..].starts_with('.')) =>
        {
            Some(&variant[8..])
        }
        _ => Some(rest),
    }
}

fn is_hex(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn current_files(current: &Path, log: &str, found: &mut Vec<Source>) {
    let is_log = |name: &str| {
        name.strip_suffix(".log")
            .and_then(|stem| strip_log_name(stem, log))
            .is_some_and(str::is_empty)
    };
    let mut push = |path: PathBuf, growing| {
        found.push(Source {
            path,
            span: None,
            compressed: false,
            growing,
        })
    };
    let Ok(entries) = fs::read_dir(current) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name == ".rotated" {
            // `<log>~<open>~<close>~<host>.log`, closed and waiting to be archived.
            for file in fs::read_dir(&path).into_iter().flatten().flatten() {
                let file_name = file.file_name().to_string_lossy().into_owned();
                if file_name
                    .split('~')
                    .next()
                    .is_some_and(|l| is_log(&format!("{l}.log")))
                {
                    push(file.path(), false);
                }
            }
        } else if path.is_dir() {
            for file in fs::read_dir(&path).into_iter().flatten().flatten() {
                if is_log(&file.file_name().to_string_lossy()) {
                    push(file.path(), true);
                }
            }
        } else if is_log(&name) {
            push(path, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_names_include_schema_variants() {
        let dir = tempfile::tempdir().unwrap();
        let current = dir.path().join("current");
        fs::create_dir_all(current.join(".rotated")).unwrap();
        fs::create_dir_all(current.join("s1")).unwrap();
        for name in [
            "conn.log",
            "conn-0a1b2c3d.log",
            "s1/conn-ffffffff.log",
            ".rotated/conn-0a1b2c3d~1793577600~1793581200~s1.log",
            // Not conn: another log, a name that is no variant, a second suffix.
            "conn_long.log",
            "conn-0a1b2c3.log",
            "conn-0a1b2c3d-1.log",
            "dns-0a1b2c3d.log",
        ] {
            fs::write(current.join(name), "").unwrap();
        }
        let mut found = Vec::new();
        current_files(&current, "conn", &mut found);
        let mut names: Vec<String> = found
            .iter()
            .map(|s| s.path.strip_prefix(&current).unwrap().display().to_string())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                ".rotated/conn-0a1b2c3d~1793577600~1793581200~s1.log",
                "conn-0a1b2c3d.log",
                "conn.log",
                "s1/conn-ffffffff.log"
            ]
        );
    }

    fn date() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
    }

    #[test]
    fn archive_names() {
        let ok = |name: &str| archive_name("conn", date(), name).map(|(s, c)| (s.is_some(), c));
        assert_eq!(ok("conn.14:00:00-15:00:00.log.gz"), Some((true, true)));
        assert_eq!(ok("conn.14:00:00-15:00:00.log"), Some((true, false)));
        assert_eq!(
            ok("conn.14:00:00-15:00:00-sensor1-2.log.gz"),
            Some((true, true))
        );
        assert_eq!(
            ok("conn-0a1b2c3d.14:00:00-15:00:00.log.gz"),
            Some((true, true))
        );
        assert_eq!(ok("conn_long.14:00:00-15:00:00.log.gz"), None);
        assert_eq!(ok("dns.14:00:00-15:00:00.log.gz"), None);
        assert_eq!(ok("conn.14:00:00-15:00:00x.log.gz"), None);
        assert_eq!(ok("conn.log.gz"), None);
        assert_eq!(ok("conn-0a1b2c3d.log.gz"), None);
        let (span, _) = archive_name("conn", date(), "conn.23:00:00-00:00:00.log.gz").unwrap();
        let (open, close) = span.unwrap();
        assert_eq!(close - open, 3600 * 1_000_000);
    }
}
