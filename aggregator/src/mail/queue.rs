//! The on-disk mail queue: one file per mail in `SpoolDir/mail/`, written atomically under a
//! name derived from what it is about, so writing the same mail twice leaves one file.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use estuary_config::aggregator::MailConfig;

use super::{render, Mail};
use crate::clock::Zone;
use estuary_fsutil::{replace, Durability};

pub struct Queue {
    dir: PathBuf,
}

impl Queue {
    pub fn open(spool_dir: &Path) -> io::Result<Self> {
        let dir = spool_dir.join("mail");
        fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Queues a mail under `id` (letters, digits, `-`). An existing mail with that id stays.
    pub fn push(
        &self,
        cfg: &MailConfig,
        id: &str,
        mail: &Mail,
        zone: Zone,
        now: SystemTime,
    ) -> io::Result<()> {
        let path = self.dir.join(format!("{id}.eml"));
        if path.exists() {
            return Ok(());
        }
        replace(
            &path,
            render(cfg, mail, id, zone, now).as_bytes(),
            Durability::Durable,
        )
    }

    /// Queued mails, oldest first.
    pub fn pending(&self) -> io::Result<Vec<PathBuf>> {
        let mut out: Vec<(SystemTime, PathBuf)> = fs::read_dir(&self.dir)?
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".eml"))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        out.sort();
        Ok(out.into_iter().map(|(_, p)| p).collect())
    }

    /// An exclusive lock on the queue; `None` when another process holds it.
    pub fn lock(&self) -> io::Result<Option<fs::File>> {
        use rustix::fs::{flock, FlockOperation};
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(".lock"))?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(file)),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Moves a mail that can never be delivered out of the way, into `mail/failed/`.
    pub fn fail(&self, path: &Path) -> io::Result<()> {
        let failed = self.dir.join("failed");
        fs::create_dir_all(&failed)?;
        let name = path.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: queued mail without a file name", path.display()),
            )
        })?;
        fs::rename(path, failed.join(name))?;
        estuary_fsutil::sync_dir(&self.dir)
    }

    pub fn done(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)?;
        estuary_fsutil::sync_dir(&self.dir)
    }
}
