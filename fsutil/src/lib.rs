//! File system helpers every component shares: replacing a file so that a crash at any moment
//! leaves either the old or the new content, and positioned reads ([`read_full_at`]).
//!
//! Every component keeps small files that must never be seen half-written (shipper offsets,
//! status snapshots, the sensor's state, the aggregator's expiry rewrite). They all go through
//! [`replace`] or [`replace_with`]: write a temporary file beside the target, optionally fsync
//! it, rename it over the target, and for [`Durability::Durable`] fsync the folder too.

#![forbid(unsafe_code)]

mod read;

pub use read::read_full_at;

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// How far a replacement must have gone before [`replace`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Seen whole by any later reader, even after the process crashes; a power loss may lose it.
    Visible,
    /// On disk: the file and the folder entry are fsynced.
    Durable,
}

/// The temporary name used for `path`: `.<name>.tmp` in the same folder, so the rename never
/// crosses a file system.
pub fn tmp_path(path: &Path) -> io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: path has no file name", path.display()),
        )
    })?;
    let mut tmp = OsString::from(".");
    tmp.push(name);
    tmp.push(".tmp");
    Ok(path.with_file_name(tmp))
}

/// Replaces `path` with `bytes`.
pub fn replace(path: &Path, bytes: &[u8], durability: Durability) -> io::Result<()> {
    replace_with(path, durability, |out| out.write_all(bytes))
}

/// Replaces `path` with what `fill` writes. If `fill` fails, the old file is untouched and the
/// temporary file is removed.
pub fn replace_with<T>(
    path: &Path,
    durability: Durability,
    fill: impl FnOnce(&mut BufWriter<File>) -> io::Result<T>,
) -> io::Result<T> {
    let tmp = tmp_path(path)?;
    let result = write_tmp(&tmp, durability, fill);
    let value = match result {
        Ok(value) => value,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    fs::rename(&tmp, path)?;
    if durability == Durability::Durable {
        sync_parent(path)?;
    }
    Ok(value)
}

fn write_tmp<T>(
    tmp: &Path,
    durability: Durability,
    fill: impl FnOnce(&mut BufWriter<File>) -> io::Result<T>,
) -> io::Result<T> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp)?;
    let mut out = BufWriter::new(file);
    let value = fill(&mut out)?;
    let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    if durability == Durability::Durable {
        file.sync_all()?;
    }
    Ok(value)
}

/// Fsyncs the folder that holds `path`, so that a rename or a new entry in it survives a power
/// loss.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => sync_dir(Path::new(".")),
    }
}

/// Fsyncs a folder, so that entries created, renamed or removed in it survive a power loss.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, "old").unwrap();
        replace(&path, b"new", Durability::Durable).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert!(!tmp_path(&path).unwrap().exists());
    }

    #[test]
    fn a_failed_fill_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, "old").unwrap();
        let err = replace_with(&path, Durability::Visible, |out| {
            out.write_all(b"half")?;
            Err::<(), _>(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(fs::read_to_string(&path).unwrap(), "old");
        assert!(!tmp_path(&path).unwrap().exists());
    }

    #[test]
    fn temp_name_is_hidden_beside_the_target() {
        assert_eq!(
            tmp_path(Path::new("a/b/c.log")).unwrap(),
            Path::new("a/b/.c.log.tmp")
        );
        assert!(tmp_path(Path::new("/")).is_err());
    }
}
