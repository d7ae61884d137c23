//! Archiving rotated logs the zeekctl way (names, layout) but atomically and durably:
//! gzip to `.tmp.<name>` in the dated folder, fsync the file, link it to its final name (which
//! fails rather than overwrite), fsync the folder, then remove the temporary and the source.
//! The gzip header carries the source's file name, so a restart can tell a finished job whose
//! source was not yet removed from a clash with another archive of the same name.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use estuary_fsutil::sync_dir;
use flate2::read::GzDecoder;

use crate::clock::{from_unix_secs, unix_secs, Zone};
use crate::route::LogName;

/// Where rotated, not yet archived files wait (inside `LogDir/current`, so rename stays on one
/// file system).
pub const ROTATED_DIR: &str = ".rotated";
const TMP_PREFIX: &str = ".tmp.";

/// A closed log waiting to be archived. Its file name encodes everything the archive name needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    pub name: LogName,
    /// Sending host when logs are kept per host; becomes zeekctl's `-<suffix>`.
    pub host: Option<String>,
    pub open: SystemTime,
    pub close: SystemTime,
}

impl Rotated {
    pub fn file_name(&self) -> String {
        format!(
            "{}~{}~{}~{}.log",
            self.name,
            unix_secs(self.open),
            unix_secs(self.close),
            self.host.as_deref().unwrap_or("")
        )
    }

    pub fn parse(file_name: &str) -> Option<Self> {
        let stem = file_name.strip_suffix(".log")?;
        let mut parts = stem.split('~');
        let name = LogName::internal(parts.next()?)?;
        let open = from_unix_secs(parts.next()?.parse().ok()?);
        let close = from_unix_secs(parts.next()?.parse().ok()?);
        let host = match parts.next()? {
            "" => None,
            h => Some(crate::route::host_key(h.as_bytes()).to_owned()),
        };
        parts.next().is_none().then_some(Self {
            name,
            host,
            open,
            close,
        })
    }

    /// `YYYY-MM-DD/<name>.HH:MM:SS-HH:MM:SS[-<host>][-<n>].log.gz`, folder from the open time,
    /// times in `zone` (local time in service), exactly as zeekctl's make-archive-name (plus
    /// `-<n>` on a clash).
    pub fn archive_path(&self, log_dir: &Path, zone: Zone, clash: u32) -> PathBuf {
        self.archive_dir(log_dir, zone)
            .join(self.archive_name(zone, clash))
    }

    fn archive_dir(&self, log_dir: &Path, zone: Zone) -> PathBuf {
        // From a file name; a corrupt one must not stop the archiver.
        let open = zone.at(self.open).unwrap_or_default();
        log_dir.join(open.format("%Y-%m-%d").to_string())
    }

    fn archive_name(&self, zone: Zone, clash: u32) -> String {
        let open = zone.at(self.open).unwrap_or_default();
        let close = zone.at(self.close).unwrap_or_default();
        let mut name = format!(
            "{}.{}-{}",
            self.name,
            open.format("%H:%M:%S"),
            close.format("%H:%M:%S")
        );
        if let Some(host) = &self.host {
            name.push('-');
            name.push_str(host);
        }
        if clash > 0 {
            name.push_str(&format!("-{clash}"));
        }
        name.push_str(".log.gz");
        name
    }
}

/// Archives one rotated file. Returns the archive's path.
/// The gzip level `CompressLevel` asks for (validated as 1 to 9 by the configuration).
pub fn level(config: &estuary_config::aggregator::AggregatorConfig) -> estuary_archive::Level {
    estuary_archive::Level::new(config.compress_level).unwrap_or_default()
}

/// Compresses `source` into the archive at gzip `level` (`CompressLevel`).
pub fn archive(
    log_dir: &Path,
    source: &Path,
    rotated: &Rotated,
    zone: Zone,
    level: estuary_archive::Level,
) -> io::Result<PathBuf> {
    let source_name = match source.file_name() {
        Some(name) => name.to_string_lossy().into_owned(),
        None => rotated.file_name(),
    };
    let dir = rotated.archive_dir(log_dir, zone);
    let mut clash = 0;
    let (target, final_name) = loop {
        let name = rotated.archive_name(zone, clash);
        let candidate = dir.join(&name);
        if !candidate.exists() {
            break (candidate, name);
        }
        if gzip_source_name(&candidate).as_deref() == Some(source_name.as_str()) {
            // A previous run finished this archive but died before removing the source.
            remove_and_sync(source)?;
            return Ok(candidate);
        }
        clash += 1;
    };
    fs::create_dir_all(&dir)?;
    sync_dir(log_dir)?;
    let tmp = dir.join(format!("{TMP_PREFIX}{final_name}"));
    compress(source, &tmp, &source_name, level)?;
    // hard_link fails if the target exists, so an archive is never overwritten.
    fs::hard_link(&tmp, &target)?;
    fs::remove_file(&tmp)?;
    sync_dir(&dir)?;
    remove_and_sync(source)?;
    Ok(target)
}

fn compress(
    source: &Path,
    tmp: &Path,
    source_name: &str,
    level: estuary_archive::Level,
) -> io::Result<()> {
    let input = File::open(source)?;
    let mut out = BufWriter::with_capacity(1 << 20, File::create(tmp)?);
    let result = estuary_archive::compress(input, &mut out, level, Some(source_name));
    match result {
        Ok(_) => {
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()
        }
        Err(err) => {
            let _ = fs::remove_file(tmp);
            Err(err)
        }
    }
}

fn gzip_source_name(archive: &Path) -> Option<String> {
    let file = File::open(archive).ok()?;
    let decoder = GzDecoder::new(BufReader::new(file));
    let name = decoder.header()?.filename()?;
    String::from_utf8(name.to_vec()).ok()
}

fn remove_and_sync(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Whether a folder name is a zeekctl dated folder (`YYYY-MM-DD`).
pub fn is_dated_dir(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

/// Startup: removes partial archives (`.tmp.*`) left by a crash, and returns every rotated file
/// still waiting to be archived, oldest first.
pub fn recover(log_dir: &Path, current_dir: &Path) -> io::Result<Vec<(PathBuf, Rotated)>> {
    if let Ok(entries) = fs::read_dir(log_dir) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !name.to_str().is_some_and(is_dated_dir) {
                continue;
            }
            for file in fs::read_dir(entry.path())?.flatten() {
                if file.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                    tracing::info!(path = %file.path().display(), "removing partial archive left by a crash");
                    fs::remove_file(file.path())?;
                }
            }
        }
    }
    let mut pending = Vec::new();
    let rotated_dir = current_dir.join(ROTATED_DIR);
    if let Ok(entries) = fs::read_dir(&rotated_dir) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            match name.to_str().and_then(Rotated::parse) {
                Some(rotated) => pending.push((entry.path(), rotated)),
                None => {
                    tracing::warn!(path = %entry.path().display(), "unexpected file in rotated folder, left alone")
                }
            }
        }
    }
    pending.sort_by_key(|(_, r)| (r.open, r.close));
    Ok(pending)
}

#[cfg(test)]
mod tests {
    use super::*;
    use estuary_archive::Level;
    use std::io::Read;

    fn rotated(open: u64, close: u64) -> Rotated {
        Rotated {
            name: LogName::internal("conn").unwrap(),
            host: None,
            open: from_unix_secs(open),
            close: from_unix_secs(close),
        }
    }

    /// `CompressLevel` reaches the compressor: the same log is smaller at 9 than at 1, and both
    /// read back whole.
    #[test]
    fn compress_level_is_applied() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..20_000)
            .map(|i| {
                format!(
                    "{}\tC{:x}\t10.0.{}.{}\t{}\ttcp\n",
                    1_700_000_000 + i,
                    i * 7919,
                    i % 7,
                    i % 251,
                    i % 13
                )
            })
            .collect();
        let mut sizes = Vec::new();
        for (n, level) in [1, 9].into_iter().enumerate() {
            let src = dir.path().join(format!("conn{n}.log"));
            fs::write(&src, &text).unwrap();
            let r = rotated(100 + n as u64 * 1000, 200 + n as u64 * 1000);
            let a = archive(
                dir.path(),
                &src,
                &r,
                Zone::Local,
                Level::new(level).unwrap(),
            )
            .unwrap();
            let mut back = String::new();
            flate2::read::MultiGzDecoder::new(File::open(&a).unwrap())
                .read_to_string(&mut back)
                .unwrap();
            assert_eq!(back, text);
            sizes.push(fs::metadata(&a).unwrap().len());
        }
        assert!(
            sizes[1] < sizes[0],
            "level 9 {} not smaller than level 1 {}",
            sizes[1],
            sizes[0]
        );
    }

    #[test]
    fn names_round_trip() {
        let r = Rotated {
            host: Some("sensor1".into()),
            ..rotated(100, 200)
        };
        assert_eq!(Rotated::parse(&r.file_name()), Some(r));
        assert_eq!(Rotated::parse("../x~1~2~.log"), None);
    }

    #[test]
    fn zeekctl_archive_name() {
        // 2026-11-22 23:00:00 UTC .. 2026-11-23 00:00:00: folder from the open date.
        let r = rotated(1_795_388_400, 1_795_392_000);
        let p = r.archive_path(Path::new("/logs"), Zone::UTC, 0);
        assert_eq!(
            p,
            Path::new("/logs/2026-11-22/conn.23:00:00-00:00:00.log.gz")
        );
        let p = r.archive_path(Path::new("/logs"), Zone::UTC, 2);
        assert!(p.ends_with("2026-11-22/conn.23:00:00-00:00:00-2.log.gz"));
    }

    #[test]
    fn archive_is_complete_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let current = dir.path().join("current").join(ROTATED_DIR);
        fs::create_dir_all(&current).unwrap();
        let r = rotated(1_795_388_400, 1_795_392_000);
        let src = current.join(r.file_name());
        fs::write(&src, b"line1\nline2\n").unwrap();
        let a = archive(dir.path(), &src, &r, Zone::Local, Level::default()).unwrap();
        assert!(!src.exists());
        let mut text = String::new();
        GzDecoder::new(File::open(&a).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "line1\nline2\n");

        // Same names again (another incarnation): a second archive, the first untouched.
        let src2 = current.join(format!("x{}", r.file_name()));
        fs::write(&src2, b"other\n").unwrap();
        let b = archive(dir.path(), &src2, &r, Zone::Local, Level::default()).unwrap();
        assert_ne!(a, b);

        // Crash after linking, before removing the source: the restart only removes the source.
        let src3 = current.join(r.file_name());
        fs::write(&src3, b"line1\nline2\n").unwrap();
        let c = archive(dir.path(), &src3, &r, Zone::Local, Level::default()).unwrap();
        assert_eq!(c, a);
        assert!(!src3.exists());
    }

    #[test]
    fn recover_cleans_partial_archives() {
        let dir = tempfile::tempdir().unwrap();
        let dated = dir.path().join("2026-11-22");
        fs::create_dir_all(&dated).unwrap();
        fs::write(dated.join(".tmp.conn.x.log.gz"), b"partial").unwrap();
        let current = dir.path().join("current");
        fs::create_dir_all(current.join(ROTATED_DIR)).unwrap();
        let r = rotated(10, 20);
        fs::write(current.join(ROTATED_DIR).join(r.file_name()), b"x\n").unwrap();
        let pending = recover(dir.path(), &current).unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].1, r);
        assert_eq!(fs::read_dir(&dated).unwrap().count(), 0);
    }
}
