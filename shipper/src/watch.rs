//! Noticing file changes: inotify (through `notify`) on the directories of the inputs that use it,
//! and timers for polling. Events only wake the scanner and the readers; what changed is always
//! found by looking at the files, so a lost or overflowed event costs latency, never lines.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use estuary_config::shipper::{InputConfig, WatchMode};
use notify::event::ModifyKind;
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tracing::{debug, warn};

use crate::wake::Wake;

/// How often the scanner looks for new, rotated and deleted files without an event.
pub fn scan_interval(inputs: &[InputConfig]) -> Duration {
    inputs
        .iter()
        .map(|i| match i.watch {
            WatchMode::Inotify { fallback } => fallback,
            WatchMode::Polling { interval } => interval,
        })
        .min()
        .unwrap_or(Duration::from_secs(1))
        .max(Duration::from_millis(10))
}

/// How long a reader waits for an event before looking at its files anyway.
pub fn read_interval(inputs: &[InputConfig]) -> Duration {
    let partial = inputs
        .iter()
        .filter_map(|i| i.partial_line_timeout.map(|t| t / 2))
        .min();
    [
        Some(scan_interval(inputs)),
        Some(Duration::from_secs(1)),
        partial,
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(Duration::from_secs(1))
    .max(Duration::from_millis(10))
}

/// The shipper's own state and status files (and the temporary names they are written under).
/// They often live beside the inputs, and are rewritten many times a second; their events must not
/// wake the scanner and the readers.
pub struct OwnFiles(BTreeSet<PathBuf>);

impl OwnFiles {
    pub fn new(paths: impl IntoIterator<Item = PathBuf>) -> Self {
        let with_tmp = |path: PathBuf| {
            let mut name = path
                .file_name()
                .map(|n| n.to_os_string())
                .unwrap_or_default();
            name.push(".tmp");
            [path.with_file_name(name), path]
        };
        OwnFiles(paths.into_iter().flat_map(with_tmp).collect())
    }

    /// Whether the event is only about our own files.
    fn covers(&self, event: &notify::Event) -> bool {
        !event.paths.is_empty() && event.paths.iter().all(|p| self.0.contains(p))
    }
}

/// Starts watching; `None` when inotify is unavailable (polling then does the work).
pub fn start(
    inputs: &[InputConfig],
    own: OwnFiles,
    scanner: Arc<Wake>,
    readers: Vec<Arc<Wake>>,
) -> Option<RecommendedWatcher> {
    let roots: BTreeSet<(PathBuf, bool)> = inputs
        .iter()
        .filter(|i| matches!(i.watch, WatchMode::Inotify { .. }))
        .filter_map(|i| watch_root(&i.path))
        .collect();
    if roots.is_empty() {
        return None;
    }
    let handler = move |event: notify::Result<notify::Event>| {
        let rescan = match event {
            Ok(event) if own.covers(&event) => return,
            Ok(event) => !matches!(
                event.kind,
                EventKind::Modify(ModifyKind::Data(_)) | EventKind::Access(_)
            ),
            Err(_) => true,
        };
        if rescan {
            scanner.notify();
        }
        readers.iter().for_each(|r| r.notify());
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(err) => {
            warn!(%err, "inotify unavailable; polling");
            return None;
        }
    };
    for (dir, recursive) in roots {
        let mode = if recursive {
            RecursiveMode::Recursive
        } else {
            RecursiveMode::NonRecursive
        };
        match watcher.watch(&dir, mode) {
            Ok(()) => debug!(dir = %dir.display(), "watching"),
            Err(err) => warn!(dir = %dir.display(), %err, "cannot watch directory; polling it"),
        }
    }
    Some(watcher)
}

/// The directory to watch for a path or glob, and whether its subdirectories matter.
fn watch_root(pattern: &Path) -> Option<(PathBuf, bool)> {
    let is_glob = |s: &str| s.contains(['*', '?', '[']);
    let mut root = PathBuf::new();
    let mut components = pattern.components().peekable();
    while let Some(c) = components.next() {
        let text = c.as_os_str().to_string_lossy();
        if is_glob(&text) {
            // A wildcard in a directory component needs the subtree.
            return Some((root, components.peek().is_some()));
        }
        if components.peek().is_none() {
            return Some((root, false));
        }
        root.push(c);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots() {
        assert_eq!(
            watch_root(Path::new("/a/b/c.log")),
            Some(("/a/b".into(), false))
        );
        assert_eq!(
            watch_root(Path::new("/a/b/*.log")),
            Some(("/a/b".into(), false))
        );
        assert_eq!(
            watch_root(Path::new("/a/*/c.log")),
            Some(("/a".into(), true))
        );
    }

    #[test]
    fn own_files_and_their_temporaries_are_recognised() {
        let own = OwnFiles::new([PathBuf::from("/w/stat-bro_conn")]);
        let event = |paths: &[&str]| notify::Event {
            paths: paths.iter().map(PathBuf::from).collect(),
            ..notify::Event::new(EventKind::Any)
        };
        assert!(own.covers(&event(&["/w/stat-bro_conn.tmp", "/w/stat-bro_conn"])));
        assert!(!own.covers(&event(&["/w/stat-bro_conn", "/w/conn.log"])));
        assert!(!own.covers(&event(&[])));
    }
}
