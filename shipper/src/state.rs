//! The state file: where each file incarnation has been shipped to, per destination.
//!
//! Offsets are saved after every acknowledgement, so a save must be cheap: it appends the whole
//! state as one JSON line to the state file, and the last complete line is the state (a line cut
//! by `kill -9` is not complete). The file is rewritten with only the current line (temp file,
//! unlink, rename: a missing state file with a complete temp file beside it is read from the temp
//! file) by the first save of a process, when the set of files changes and when it has grown to
//! [`LOG_BYTES`]. None of that survives a power loss, so a durable copy `<state>.sync` (temp file,
//! fsync, rename, directory fsync) is written when the set of files changes and at least every
//! [`SYNC_INTERVAL`] while offsets change (by [`StateStore::sync_all`]); a state file that is unreadable
//! after a power loss falls back to it. An unreadable state without a readable copy is reported
//! and ignored: files are then read again from the start (duplicates, never loss).
//!
//! Why no rename over the old file: ext4 flushes the new file's data on a rename that replaces a
//! file (`auto_da_alloc`), which costs milliseconds on a busy disk, as an fsync does.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::hash::{fnv1a, Span};

/// How often the durable copy follows the state file while offsets change: the most a power
/// loss can set offsets back.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// The state file is rewritten with only its last line once it has grown this large.
const LOG_BYTES: u64 = 1 << 20;

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
    /// Shipped completely and closed: kept so that a restart knows the file (and reads only what
    /// was added to it since), not as work left.
    #[serde(default, skip_serializing_if = "is_false")]
    pub done: bool,
}

impl FileState {
    /// Where destination `dest` goes on in this file: at its own saved offset; a destination the
    /// state does not know yet goes on where the destinations no longer `configured` stopped (it
    /// replaces them: a shipper moved from one transport to another neither repeats nor skips a
    /// line), else at the start.
    pub fn resume_offset(&self, dest: &str, configured: &[String]) -> u64 {
        if let Some(&at) = self.offsets.get(dest) {
            return at;
        }
        self.offsets
            .iter()
            .filter(|(name, _)| !configured.contains(name))
            .map(|(_, &at)| at)
            .min()
            .unwrap_or(0)
    }
}

fn is_false(b: &bool) -> bool {
    !b
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

/// Loads a state file; a missing file is an empty state. When the state file is unreadable (or
/// missing while its temp file or durable copy is there), the temp file and then the durable copy
/// are tried.
pub fn load(path: &Path) -> Result<Vec<FileState>, StateError> {
    let first = match read(path) {
        Ok(files) => return Ok(files),
        Err(StateError::Read { source, .. })
            if source.kind() == io::ErrorKind::NotFound
                && !tmp_path(path).exists()
                && !sync_path(path).exists() =>
        {
            return Ok(Vec::new())
        }
        Err(err) => err,
    };
    for fallback in [tmp_path(path), sync_path(path)] {
        if let Ok(files) = read(&fallback) {
            warn!(%first, from = %fallback.display(), "state file unreadable; using its last complete copy");
            return Ok(files);
        }
    }
    Err(first)
}

/// The last line of `path` that is a whole state (a cut line is not: a proper prefix of a JSON
/// object never parses).
fn read(path: &Path) -> Result<Vec<FileState>, StateError> {
    let bytes = fs::read(path).map_err(|source| StateError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut first_err = None;
    for line in bytes.split(|&b| b == b'\n').rev() {
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice(line) {
            Ok(StateFile::V1 { files }) => return Ok(files),
            Err(err) => {
                first_err.get_or_insert(err);
            }
        }
    }
    let source = first_err
        .unwrap_or_else(|| serde_json::from_slice::<StateFile>(b"").expect_err("empty is no JSON"));
    Err(StateError::Corrupt {
        path: path.to_owned(),
        source,
    })
}

/// What this process last wrote to one state file.
#[derive(Debug, Default)]
struct Written {
    /// Hash of the content: an unchanged state is not written again.
    content: Option<u64>,
    /// Hash of the file identities in the content, and in the durable copy.
    files: Option<u64>,
    synced_files: Option<u64>,
    /// Counts writes, so that the durable copy never goes back to older content.
    version: u64,
    json: Arc<[u8]>,
    /// The state file open for appending, and its length; `None` after a failed write.
    log: Option<(File, u64)>,
}

/// The state files of one shipper: what it wrote to each, and which version each durable copy
/// holds. Saves are serialised by the registry that owns it; the durable copy is written on file
/// changes and by a timer (see [`StateStore::sync_all`]).
#[derive(Debug, Default)]
pub struct StateStore {
    written: Mutex<HashMap<PathBuf, Written>>,
    /// Per state file, the version in its durable copy; held while a copy is written.
    synced: Mutex<HashMap<PathBuf, u64>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl StateStore {
    /// Replaces the state file; when the set of files changed, also its durable copy before returning.
    pub fn store(&self, path: &Path, files: Vec<FileState>) -> Result<(), StateError> {
        let err = |source| StateError::Write {
            path: path.to_owned(),
            source,
        };
        let identities = identities(&files);
        let mut json =
            serde_json::to_vec(&StateFile::V1 { files }).map_err(|e| err(io::Error::other(e)))?;
        json.push(b'\n');
        let json: Arc<[u8]> = json.into();
        let content = fnv1a(&json);
        let sync = {
            let mut written = lock(&self.written);
            let w = written.entry(path.to_owned()).or_default();
            if w.content == Some(content) {
                return Ok(());
            }
            let log = w.log.take().filter(|_| w.files == Some(identities));
            w.log = append_or_rewrite(path, &json, log).map_err(err)?;
            w.content = Some(content);
            w.files = Some(identities);
            w.version += 1;
            w.json = json.clone();
            (w.synced_files != Some(identities)).then_some(w.version)
        };
        match sync {
            Some(version) => self.sync_one(path, version, identities, &json),
            None => Ok(()),
        }
    }

    /// Brings every durable copy up to its state file (on a timer and at shutdown).
    pub fn sync_all(&self) {
        let due: Vec<(PathBuf, u64, u64, Arc<[u8]>)> = lock(&self.written)
            .iter()
            .filter_map(|(path, w)| Some((path.clone(), w.version, w.files?, w.json.clone())))
            .collect();
        for (path, version, files, json) in due {
            if let Err(err) = self.sync_one(&path, version, files, &json) {
                warn!(%err, "durable copy of the state not saved; a power loss may repeat more lines");
            }
        }
    }

    fn sync_one(
        &self,
        path: &Path,
        version: u64,
        files: u64,
        json: &[u8],
    ) -> Result<(), StateError> {
        let mut synced = lock(&self.synced);
        if synced.get(path).is_some_and(|&v| v >= version) {
            return Ok(());
        }
        let copy = sync_path(path);
        estuary_fsutil::replace(&copy, json, estuary_fsutil::Durability::Durable)
            .map_err(|source| StateError::Write { path: copy, source })?;
        synced.insert(path.to_owned(), version);
        if let Some(w) = lock(&self.written).get_mut(path) {
            w.synced_files = Some(files);
        }
        Ok(())
    }
}

/// Appends `json` to the open state file, or rewrites the file with it (no open file: first
/// save, new set of files, failed write; or grown too large). Returns the open file to append to
/// next, `None` when the write failed after the file was changed.
fn append_or_rewrite(
    path: &Path,
    json: &[u8],
    log: Option<(File, u64)>,
) -> io::Result<Option<(File, u64)>> {
    let len = json.len() as u64;
    match log {
        Some((mut file, at)) if at + len <= LOG_BYTES => match file.write_all(json) {
            Ok(()) => Ok(Some((file, at + len))),
            // A partial line is not read, but the next one must start on a new line: rewrite.
            Err(e) => rewrite(path, json).map_err(|_| e),
        },
        _ => rewrite(path, json),
    }
}

fn rewrite(path: &Path, json: &[u8]) -> io::Result<Option<(File, u64)>> {
    rewrite_file(path, json)?;
    let file = OpenOptions::new().append(true).open(path)?;
    Ok(Some((file, json.len() as u64)))
}

/// Replaces the state file with `bytes` through a fresh temp file, unlinking the old file before
/// the rename so that ext4 has no reason to flush (see the module doc). A crash at any moment
/// leaves the old or the new content readable (see [`load`]).
fn rewrite_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = tmp_path(path);
    // A crash between the unlink and the rename below leaves the temp file as the only state:
    // it is put back before the next one is written, so a second crash cannot lose both.
    if !path.exists() && tmp.exists() {
        fs::rename(&tmp, path)?;
    }
    remove_if_present(&tmp)?;
    let write = || -> io::Result<()> {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        drop(f);
        remove_if_present(path)?;
        fs::rename(&tmp, path)
    };
    write().inspect_err(|_| {
        // A temp file is read only when the state file is missing; never leave a partial one then.
        if path.exists() {
            let _ = fs::remove_file(&tmp);
        }
    })
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// A hash of what identifies the files (everything but offsets and checks): when it changes,
/// the durable copy is written at once, so that a power loss never forgets a file.
fn identities(files: &[FileState]) -> u64 {
    let mut bytes = Vec::with_capacity(files.len() * 96);
    for f in files {
        for n in [
            f.id.0,
            f.dev,
            f.ino,
            f.created_ms,
            f.fingerprint.at,
            u64::from(f.fingerprint.len),
            f.fingerprint.hash,
        ] {
            bytes.extend_from_slice(&n.to_le_bytes());
        }
        bytes.extend_from_slice(f.path.as_os_str().as_encoded_bytes());
        bytes.push(0);
    }
    fnv1a(&bytes)
}

fn tmp_path(path: &Path) -> PathBuf {
    with_suffix(path, ".tmp")
}

/// The durable copy of a state file.
pub fn sync_path(path: &Path) -> PathBuf {
    with_suffix(path, ".sync")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
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
            done: false,
        }
    }

    #[test]
    fn round_trip_and_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let states = StateStore::default();
        assert_eq!(load(&path).unwrap(), vec![]);
        states.store(&path, vec![sample()]).unwrap();
        assert_eq!(load(&path).unwrap(), vec![sample()]);
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with(r#"{"version":"1","files":[{"id":"deadbeef00000001""#),
            "{text}"
        );
        assert!(!tmp_path(&path).exists());
    }

    fn with_offset(offset: u64) -> FileState {
        FileState {
            offsets: [("a".to_owned(), offset)].into_iter().collect(),
            ..sample()
        }
    }

    #[test]
    fn saves_append_lines_and_a_line_cut_by_a_crash_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let states = StateStore::default();
        let lines = || fs::read_to_string(&path).unwrap().lines().count();
        states.store(&path, vec![with_offset(1)]).unwrap();
        states.store(&path, vec![with_offset(2)]).unwrap();
        states.store(&path, vec![with_offset(2)]).unwrap();
        assert_eq!(lines(), 2, "an unchanged state is not written");
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(br#"{"version":"1","files":[{"id":"dead"#)
            .unwrap();
        assert_eq!(load(&path).unwrap(), vec![with_offset(2)]);
        let other = FileState {
            id: FileId(7),
            ..with_offset(0)
        };
        states
            .store(&path, vec![with_offset(3), other.clone()])
            .unwrap();
        assert_eq!(lines(), 1, "a new set of files rewrites the file");
        assert_eq!(load(&path).unwrap(), vec![with_offset(3), other]);
    }

    #[test]
    fn a_crash_between_unlink_and_rename_reads_the_complete_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let states = StateStore::default();
        states.store(&path, vec![with_offset(1)]).unwrap();
        let json = serde_json::to_vec(&StateFile::V1 {
            files: vec![with_offset(2)],
        })
        .unwrap();
        fs::write(tmp_path(&path), json).unwrap();
        assert_eq!(load(&path).unwrap(), vec![with_offset(1)]);
        fs::remove_file(&path).unwrap();
        assert_eq!(load(&path).unwrap(), vec![with_offset(2)]);
        // Without a temp file, the durable copy; without that too, a fresh start.
        fs::remove_file(tmp_path(&path)).unwrap();
        assert_eq!(load(&path).unwrap(), vec![with_offset(1)]);
        fs::remove_file(sync_path(&path)).unwrap();
        assert_eq!(load(&path).unwrap(), vec![]);
    }

    #[test]
    fn a_temp_file_left_as_the_only_state_is_put_back_before_a_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let line = |n| {
            let mut json = serde_json::to_vec(&StateFile::V1 {
                files: vec![with_offset(n)],
            })
            .unwrap();
            json.push(b'\n');
            json
        };
        fs::write(tmp_path(&path), line(2)).unwrap();
        // The next rewrite first puts the temp file back as the state file, then writes anew.
        rewrite_file(&path, &line(3)).unwrap();
        assert_eq!(load(&path).unwrap(), vec![with_offset(3)]);
        assert!(!tmp_path(&path).exists());
    }

    #[test]
    fn the_durable_copy_follows_new_files_at_once_and_offsets_on_sync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let states = StateStore::default();
        let copy = || read(&sync_path(&path)).unwrap();
        states.store(&path, vec![with_offset(1)]).unwrap();
        assert_eq!(copy(), vec![with_offset(1)]);
        states.store(&path, vec![with_offset(2)]).unwrap();
        assert_eq!(
            copy(),
            vec![with_offset(1)],
            "offsets alone are not synced at once"
        );
        let other = FileState {
            id: FileId(7),
            ..with_offset(0)
        };
        states
            .store(&path, vec![with_offset(3), other.clone()])
            .unwrap();
        assert_eq!(
            copy(),
            vec![with_offset(3), other.clone()],
            "a new file is synced at once"
        );
        states
            .store(&path, vec![with_offset(4), other.clone()])
            .unwrap();
        // A power loss left the state file without its data: the durable copy is read.
        fs::write(&path, b"").unwrap();
        assert_eq!(load(&path).unwrap(), vec![with_offset(3), other.clone()]);
        states.sync_all();
        assert_eq!(copy(), vec![with_offset(4), other]);
    }

    #[test]
    fn a_new_destination_goes_on_where_the_one_it_replaces_stopped() {
        let mut saved = with_offset(0);
        saved.offsets = BTreeMap::from([("relp".to_owned(), 300), ("siem".to_owned(), 100)]);
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // Its own offset first.
        assert_eq!(saved.resume_offset("siem", &names(&["siem", "nats"])), 100);
        // "relp" is gone from the configuration: "nats" replaces it.
        assert_eq!(saved.resume_offset("nats", &names(&["siem", "nats"])), 300);
        // Nothing was replaced: a destination added beside the others reads from the start.
        assert_eq!(
            saved.resume_offset("nats", &names(&["relp", "siem", "nats"])),
            0
        );
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
