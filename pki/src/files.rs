//! Writing certificates and keys: new files only, keys readable by their owner alone.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use crate::PkiError;

pub const PRIVATE: u32 = 0o600;
pub const PUBLIC: u32 = 0o644;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_owned(),
        source,
    }
}

pub fn create_dir(dir: &Path) -> Result<(), PkiError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(io(dir))
}

/// Creates `path` with `mode` (never replacing a file) and syncs it: a key that was reported
/// written survives a crash.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => PkiError::Exists {
                path: path.to_owned(),
            },
            _ => PkiError::Io {
                path: path.to_owned(),
                source,
            },
        })?;
    file.write_all(bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

pub fn read(path: &Path) -> Result<Vec<u8>, PkiError> {
    fs::read(path).map_err(io(path))
}
