//! The state file: where each file incarnation has been shipped to, per destination.
//!
//! Written atomically (temp file, fsync, rename, fsync of the directory) so that a crash at any
//! moment leaves either the old or the new content. An unreadable state file is reported and
//! ignored: files are then read again from the start (duplicates, never loss).

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::hash::Span;

/// The random identity of one file incarnation; the `file` of the RFC 5424 origin element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FileId(#[serde(with = "hex_u64")] pub u64);

impl FileId {
    pub fn random() -> io::Result<FileId> {
        getrandom::u64().map(FileId).map_err(io::Error::other)
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

mod hex_u64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:016x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let s = String::deserialize(d)?;
        u64::from_str_radix(&s, 16).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "version")]
pub enum StateFile {
    #[serde(rename = "1")]
    V1 { files: Vec<FileState> },
}

/// One file incarnation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileState {
    pub id: FileId,
    /// Where the file was when it was found; after a rotation it may be elsewhere in that directory.
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
    pub fingerprint: Span,
    /// The bytes before the largest offset below, to tell a rewritten file on restart.
    pub check: Span,
    /// Bytes taken by each destination (by name).
    pub offsets: BTreeMap<String, u64>,
    /// When the incarnation was first seen, in Unix milliseconds: a rotated copy made later may
    /// hold its content (or content never seen).
    #[serde(default)]
    pub created_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("reading state file {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("state file {path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("writing state file {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// Loads a state file; a missing file is an empty state.
pub fn load(path: &Path) -> Result<Vec<FileState>, StateError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(StateError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    match serde_json::from_slice(&bytes) {
        Ok(StateFile::V1 { files }) => Ok(files),
        Err(source) => Err(StateError::Corrupt {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Replaces the state file atomically.
pub fn store(path: &Path, files: Vec<FileState>) -> Result<(), StateError> {
    let err = |source| StateError::Write {
        path: path.to_owned(),
        source,
    };
    let json =
        serde_json::to_vec(&StateFile::V1 { files }).map_err(|e| err(io::Error::other(e)))?;
    let tmp = tmp_path(path);
    let write = || -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(&json)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        err(e)
    })
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FileState {
        FileState {
            id: FileId(0xdead_beef_0000_0001),
            path: "/var/log/x.log".into(),
            dev: 1,
            ino: 2,
            fingerprint: Span {
                at: 0,
                len: 10,
                hash: 3,
            },
            check: Span {
                at: 90,
                len: 10,
                hash: 4,
            },
            offsets: [("a".to_owned(), 100)].into_iter().collect(),
            created_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn round_trip_and_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        assert_eq!(load(&path).unwrap(), vec![]);
        store(&path, vec![sample()]).unwrap();
        assert_eq!(load(&path).unwrap(), vec![sample()]);
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with(r#"{"version":"1","files":[{"id":"deadbeef00000001""#),
            "{text}"
        );
        assert!(!tmp_path(&path).exists());
    }

    #[test]
    fn corrupt_or_empty_state_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        for junk in [
            &b""[..],
            b"\0\0\0\0",
            b"{\"version\":\"1\",\"fil",
            b"{\"version\":\"9\"}",
        ] {
            fs::write(&path, junk).unwrap();
            assert!(matches!(load(&path), Err(StateError::Corrupt { .. })));
        }
    }
}
