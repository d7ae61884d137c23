//! Small file operations: atomic replacement, durable or not.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Replaces `path` with `data` for readers (temporary file, rename), not durably.
pub fn replace(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = tmp_path(path)?;
    fs::write(&tmp, data)?;
    fs::rename(&tmp, path)
}

fn tmp_path(path: &Path) -> io::Result<std::path::PathBuf> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("path without a folder"))?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("path without a name"))?;
    Ok(dir.join(format!(".{}.tmp", name.to_string_lossy())))
}

/// Replaces `path` with `data`: temporary file, fsync, rename, fsync of the folder.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = tmp_path(path)?;
    let mut file = File::create(&tmp)?;
    file.write_all(data)?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("path without a folder"))?;
    File::open(dir)?.sync_all()
}
