//! Log files: one per log path in the log directory, Zeek TSV (with header and `#close`) or
//! JSON lines, with local rotation by interval or size.
//!
//! Rotation closes the file (writing `#close`), renames it to `<path>.<open time>.log` and
//! creates a fresh `<path>.log` with a new header, so a follower that tails by name sees a
//! rename followed by a new file, never a truncation.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{format, Field, Record};

pub use estuary_config::sensor::LogFormat;

/// When to rotate a log file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rotation {
    pub interval: Option<Duration>,
    pub max_bytes: Option<u64>,
}

/// Wall clock for `#open`/`#close` and rotation; tests inject their own.
pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
}

/// The real clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Renders one record as a line (without the newline).
pub fn render(format: LogFormat, record: &dyn Record) -> String {
    render_values(format, record.fields(), &record.values())
}

/// Renders values of the given schema as a line (without the newline).
pub fn render_values(format: LogFormat, fields: &[Field], values: &[super::Value]) -> String {
    let mut line = String::with_capacity(256);
    match format {
        LogFormat::Tsv => {
            for (i, (field, value)) in fields.iter().zip(values.iter()).enumerate() {
                if i > 0 {
                    line.push('\t');
                }
                format::tsv_value(&mut line, field.ty, value);
            }
            if line.starts_with('#') {
                line.replace_range(0..1, "\\x23");
            }
        }
        LogFormat::Json => {
            line.push('{');
            let mut first = true;
            for (field, value) in fields.iter().zip(values.iter()) {
                if matches!(value, super::Value::Unset) {
                    continue;
                }
                if !first {
                    line.push(',');
                }
                first = false;
                line.push('"');
                line.push_str(field.name);
                line.push_str("\":");
                format::json_value(&mut line, value);
            }
            line.push('}');
        }
    }
    line
}

/// `%Y-%m-%d-%H-%M-%S` in local time, as Zeek's `#open`/`#close` and rotated names use.
fn stamp(t: SystemTime) -> String {
    let dt: chrono::DateTime<chrono::Local> = t.into();
    dt.format("%Y-%m-%d-%H-%M-%S").to_string()
}

struct LogFile {
    path: PathBuf,
    name: &'static str,
    out: BufWriter<File>,
    opened: SystemTime,
    bytes: u64,
    fields: &'static [Field],
}

impl LogFile {
    fn create(
        dir: &Path,
        name: &'static str,
        fields: &'static [Field],
        format: LogFormat,
        now: SystemTime,
    ) -> io::Result<Self> {
        let path = dir.join(format!("{name}.log"));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let existing = file.metadata()?.len();
        let mut log = LogFile {
            path,
            name,
            out: BufWriter::with_capacity(64 * 1024, file),
            opened: now,
            bytes: existing,
            fields,
        };
        if format == LogFormat::Tsv {
            let mut header = String::new();
            header.push_str(
                "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n",
            );
            header.push_str(&format!("#path\t{name}\n#open\t{}\n#fields", stamp(now)));
            for f in fields {
                header.push('\t');
                header.push_str(f.name);
            }
            header.push_str("\n#types");
            for f in fields {
                header.push('\t');
                header.push_str(f.ty.zeek_name());
            }
            header.push('\n');
            log.write_raw(header.as_bytes())?;
        }
        Ok(log)
    }

    fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    fn close(mut self, format: LogFormat, now: SystemTime) -> io::Result<PathBuf> {
        if format == LogFormat::Tsv {
            let footer = format!("#close\t{}\n", stamp(now));
            self.write_raw(footer.as_bytes())?;
        }
        self.out.flush()?;
        self.out.get_ref().sync_all()?;
        Ok(self.path)
    }
}

/// Error of a log write, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("log file {path}: {source}")]
pub struct LogError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// All log files of one sensor.
pub struct LogSet {
    dir: PathBuf,
    format: LogFormat,
    rotation: Rotation,
    clock: Arc<dyn Clock>,
    files: HashMap<&'static str, LogFile>,
    /// Logs opened at least once by this process.
    started: HashSet<&'static str>,
}

impl LogSet {
    pub fn new(
        dir: &Path,
        format: LogFormat,
        rotation: Rotation,
        clock: Arc<dyn Clock>,
    ) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        Ok(LogSet {
            dir: dir.to_path_buf(),
            format,
            rotation,
            clock,
            files: HashMap::new(),
            started: HashSet::new(),
        })
    }

    pub fn format(&self) -> LogFormat {
        self.format
    }

    pub fn write(&mut self, record: &dyn Record) -> Result<(), LogError> {
        let line = render(self.format, record);
        self.write_line(record.path(), record.fields(), &line)
    }

    /// Appends an already rendered line to the log `name`, creating or rotating the file first.
    pub fn write_line(
        &mut self,
        name: &'static str,
        fields: &'static [Field],
        line: &str,
    ) -> Result<(), LogError> {
        let now = self.clock.now();
        if self.files.get(name).is_some_and(|f| self.due(f, now)) {
            self.rotate(name, now)?;
        }
        if !self.files.contains_key(name) {
            self.move_leftover(name)?;
            let file =
                LogFile::create(&self.dir, name, fields, self.format, now).map_err(|source| {
                    LogError {
                        path: self.dir.join(format!("{name}.log")),
                        source,
                    }
                })?;
            self.files.insert(name, file);
        }
        // The entry was inserted just above if it was missing.
        let Some(file) = self.files.get_mut(name) else {
            return Ok(());
        };
        if file.fields != fields {
            tracing::warn!(
                log = name,
                "record with a different schema than the open file; writing anyway"
            );
        }
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        file.write_raw(&bytes).map_err(|source| LogError {
            path: file.path.clone(),
            source,
        })?;
        Ok(())
    }

    fn due(&self, file: &LogFile, now: SystemTime) -> bool {
        let by_time = self
            .rotation
            .interval
            .is_some_and(|i| now.duration_since(file.opened).unwrap_or_default() >= i);
        let by_size = self.rotation.max_bytes.is_some_and(|m| file.bytes >= m);
        by_time || by_size
    }

    /// Rotates every file whose interval has passed (call periodically so idle logs rotate too).
    pub fn rotate_due(&mut self) -> Result<(), LogError> {
        let now = self.clock.now();
        let due: Vec<&'static str> = self
            .files
            .values()
            .filter(|f| self.due(f, now))
            .map(|f| f.name)
            .collect();
        for name in due {
            self.rotate(name, now)?;
        }
        Ok(())
    }

    /// `<name>.<time>.log`, made unique with `-N`.
    fn rotated_name(&self, name: &str, opened: SystemTime) -> PathBuf {
        let mut target = self.dir.join(format!("{name}.{}.log", stamp(opened)));
        let mut n = 1;
        while target.exists() {
            target = self.dir.join(format!("{name}.{}-{n}.log", stamp(opened)));
            n += 1;
        }
        target
    }

    /// A `<name>.log` left by an earlier run (or a crash) is renamed away like a rotation
    /// before the first write, so a new header never lands in the middle of an old file and
    /// a follower sees the same rename-and-create as at rotation.
    fn move_leftover(&mut self, name: &'static str) -> Result<(), LogError> {
        if !self.started.insert(name) {
            return Ok(());
        }
        let path = self.dir.join(format!("{name}.log"));
        let Ok(meta) = fs::metadata(&path) else {
            return Ok(());
        };
        if meta.len() == 0 {
            return Ok(());
        }
        let opened = meta.modified().unwrap_or_else(|_| self.clock.now());
        let target = self.rotated_name(name, opened);
        fs::rename(&path, &target).map_err(|source| LogError {
            path: path.clone(),
            source,
        })?;
        tracing::info!(from = %path.display(), to = %target.display(), "moved a log left by an earlier run");
        Ok(())
    }

    fn rotate(&mut self, name: &'static str, now: SystemTime) -> Result<(), LogError> {
        let Some(file) = self.files.remove(name) else {
            return Ok(());
        };
        let opened = file.opened;
        let fields = file.fields;
        let path = file.close(self.format, now).map_err(|source| LogError {
            path: self.dir.join(name),
            source,
        })?;
        let target = self.rotated_name(name, opened);
        fs::rename(&path, &target).map_err(|source| LogError {
            path: path.clone(),
            source,
        })?;
        tracing::info!(from = %path.display(), to = %target.display(), "rotated log");
        // Zeek opens the successor right away, so a follower always finds the path.
        let file =
            LogFile::create(&self.dir, name, fields, self.format, now).map_err(|source| {
                LogError {
                    path: path.clone(),
                    source,
                }
            })?;
        self.files.insert(name, file);
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), LogError> {
        for f in self.files.values_mut() {
            f.out.flush().map_err(|source| LogError {
                path: f.path.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Closes every file, writing `#close`.
    pub fn close(mut self) -> Result<(), LogError> {
        let now = self.clock.now();
        for (_, f) in self.files.drain() {
            let path = f.path.clone();
            f.close(self.format, now)
                .map_err(|source| LogError { path, source })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zeeklog::{FieldType, Value};
    use std::sync::Mutex;

    struct FakeClock(Mutex<SystemTime>);
    impl Clock for FakeClock {
        fn now(&self) -> SystemTime {
            *self.0.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    const FIELDS: &[Field] = &[Field {
        name: "n",
        ty: FieldType::Count,
    }];

    fn line(n: u64) -> String {
        render_values(LogFormat::Tsv, FIELDS, &[Value::Count(n)])
    }

    #[test]
    fn a_log_left_by_an_earlier_run_is_moved_aside() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("test.log"), "#separator \\x09\nold\n").expect("leftover");
        let clock = Arc::new(SystemClock);
        let mut logs =
            LogSet::new(dir.path(), LogFormat::Tsv, Rotation::default(), clock).expect("logset");
        logs.write_line("test", FIELDS, &line(1)).expect("write");
        logs.close().expect("close");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        let current = std::fs::read_to_string(dir.path().join("test.log")).expect("current");
        assert_eq!(
            current
                .lines()
                .filter(|l| !l.starts_with('#'))
                .collect::<Vec<_>>(),
            ["1"]
        );
        let old = names.iter().find(|n| *n != "test.log").expect("moved");
        assert!(std::fs::read_to_string(dir.path().join(old))
            .expect("old")
            .contains("old"));
    }

    #[test]
    fn interval_rotation_closes_renames_and_reopens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let clock = Arc::new(FakeClock(Mutex::new(start)));
        let rotation = Rotation {
            interval: Some(Duration::from_secs(3600)),
            max_bytes: None,
        };
        let mut logs =
            LogSet::new(dir.path(), LogFormat::Tsv, rotation, clock.clone()).expect("logset");
        for n in 0..3 {
            logs.write_line("test", FIELDS, &line(n)).expect("write");
        }
        *clock.0.lock().expect("lock") = start + Duration::from_secs(3599);
        logs.rotate_due().expect("rotate");
        assert!(!dir
            .path()
            .join(format!("test.{}.log", stamp(start)))
            .exists());
        *clock.0.lock().expect("lock") = start + Duration::from_secs(3600);
        logs.rotate_due().expect("rotate");
        logs.write_line("test", FIELDS, &line(3)).expect("write");
        logs.close().expect("close");
        let old = std::fs::read_to_string(dir.path().join(format!("test.{}.log", stamp(start))))
            .expect("rotated");
        let rows: Vec<&str> = old.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(rows, ["0", "1", "2"]);
        assert!(old
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("#close\t")));
        let new = std::fs::read_to_string(dir.path().join("test.log")).expect("current");
        assert!(new.starts_with("#separator \\x09\n"));
        assert_eq!(
            new.lines()
                .filter(|l| !l.starts_with('#'))
                .collect::<Vec<_>>(),
            ["3"]
        );
    }
}
