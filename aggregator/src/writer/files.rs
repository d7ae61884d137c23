//! The files the writer keeps open, by [`FileKey`]: each with its write buffer, the length
//! handed to the kernel and the length committed.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::clock::Zone;
use crate::pending::segment_path;
use crate::route::{FileKey, LogName};
use crate::schema;

use super::zeek_time;

/// Buffered bytes per file before they go to the kernel.
pub(super) const FLUSH_AT: usize = 256 << 10;

pub(super) struct OpenLog {
    pub name: LogName,
    pub host: Option<String>,
    pub path: PathBuf,
    pub file: File,
    pub buf: Vec<u8>,
    /// Bytes handed to the kernel.
    pub written: u64,
    pub committed: u64,
    pub open: SystemTime,
    pub has_header: bool,
}

impl OpenLog {
    pub fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.file.write_all(&self.buf)?;
            self.written += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }

    pub fn rollback(&mut self) -> io::Result<()> {
        self.buf.clear();
        self.file.set_len(self.committed)?;
        self.file.seek(SeekFrom::Start(self.committed))?;
        self.written = self.committed;
        Ok(())
    }

    /// Whether this run created the file and has not committed any of it yet.
    pub fn is_new(&self) -> bool {
        self.committed == 0 && self.written > 0
    }
}

/// The open files: logs under `current/` and the pending-notices segment.
pub(super) struct Files {
    pub current_dir: PathBuf,
    pub zone: Zone,
    pub per_host: bool,
    pub map: HashMap<FileKey, OpenLog>,
}

impl Files {
    pub fn append(
        &mut self,
        schemas: &BTreeMap<FileKey, Vec<u8>>,
        key: &FileKey,
        name: &LogName,
        host: &str,
        line: &[u8],
        now: SystemTime,
    ) -> io::Result<()> {
        let log = match self.map.get_mut(key) {
            Some(log) => log,
            None => self.create(schemas, key, name, host, now)?,
        };
        log.buf.extend_from_slice(line);
        log.buf.push(b'\n');
        if log.buf.len() >= FLUSH_AT {
            log.flush()?;
        }
        Ok(())
    }

    fn create(
        &mut self,
        schemas: &BTreeMap<FileKey, Vec<u8>>,
        key: &FileKey,
        name: &LogName,
        host: &str,
        now: SystemTime,
    ) -> io::Result<&mut OpenLog> {
        let path = self.current_dir.join(key.as_str());
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = create_truncated(&path)?;
        let mut buf = Vec::with_capacity(FLUSH_AT);
        let has_header = match schemas.get(key) {
            Some(schema) => {
                buf.extend_from_slice(&schema::header_for(schema, &zeek_time(self.zone, now)));
                true
            }
            None => false,
        };
        let log = OpenLog {
            name: name.clone(),
            host: self.per_host.then(|| host.to_owned()),
            path,
            file,
            buf,
            written: 0,
            committed: 0,
            open: now,
            has_header,
        };
        Ok(self.map.entry(key.clone()).or_insert(log))
    }

    /// The active pending-notices segment, opened on first use.
    pub fn notices(
        &mut self,
        spool_dir: &Path,
        segment: u64,
        now: SystemTime,
    ) -> io::Result<&mut OpenLog> {
        match self.map.entry(FileKey::notices()) {
            Entry::Occupied(log) => Ok(log.into_mut()),
            // Not open means nothing of this segment is committed (recovery removed any rest).
            Entry::Vacant(slot) => {
                let path = segment_path(spool_dir, segment);
                Ok(slot.insert(OpenLog {
                    name: notices_name(),
                    host: None,
                    file: create_truncated(&path)?,
                    path,
                    buf: Vec::new(),
                    written: 0,
                    committed: 0,
                    open: now,
                    has_header: false,
                }))
            }
        }
    }
}

pub(super) fn notices_name() -> LogName {
    LogName::internal("notices").expect("a valid log name")
}

fn create_truncated(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
}

/// Every `*.log` under `current/` (one level of host folders), as (key, path); names that no
/// key could have made are left alone.
pub(super) fn list_logs(
    dir: &Path,
    host: Option<&str>,
    out: &mut Vec<(FileKey, PathBuf)>,
) -> io::Result<()> {
    for entry in fs::read_dir(dir)?.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() && host.is_none() {
            list_logs(&entry.path(), Some(name), out)?;
        } else if kind.is_file() && name.ends_with(".log") {
            let key = match host {
                Some(h) => FileKey::parse(&format!("{h}/{name}")),
                None => FileKey::parse(name),
            };
            if let Some(key) = key {
                out.push((key, entry.path()));
            }
        }
    }
    Ok(())
}
