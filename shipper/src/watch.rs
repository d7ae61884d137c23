//! Noticing file changes: inotify (through `notify`) on the directories of the inputs that use it,
//! and timers for polling. Events only wake the scanner and the readers; what changed is always
//! found by looking at the files, so a lost or overflowed event costs latency, never lines.
//!
//! Where events can no longer be trusted the watcher makes up for them: after a queue overflow
//! everything is rescanned and recursive trees are watched again (directories created while events
//! were dropped have no watch yet); a directory that cannot be watched (inotify's watch limit, no
//! inotify at all) makes the scanner poll every [`UNWATCHED_POLL`] from then on, however long the
//! configured fallback interval.
//!
//! A writer that appends line by line makes one event per write. While such events stream in, the
//! readers are woken at most once per [`DATA_WAKE_PERIOD`] ([`Throttle`]): the watcher holds an
//! event that comes sooner for the rest of the period, and the writes meanwhile queue as a single
//! event, since the kernel merges an event identical to the last one still unread. A burst of
//! writes then costs one wake-up of the watcher, the reader and the sender, not one each per
//! write; the first write after a quiet period still wakes the readers at once.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, PoisonError, Weak};
use std::thread;
use std::time::{Duration, Instant};

use estuary_config::shipper::{InputConfig, WatchMode};
use notify::event::ModifyKind;
use notify::{ErrorKind, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tracing::{debug, warn};

use crate::wake::Wake;

/// How often the scanner looks at inputs whose directories are not (all) watched: as often as the
/// readers look at their open files.
const UNWATCHED_POLL: Duration = Duration::from_secs(1);

/// While data events stream in, readers are woken at most once per this period: at most this much
/// latency is added to a line for a fraction of the wake-ups. Half the 2 ms a line may take at the
/// rates sensors write (10,000 lines/s: about ten lines per wake-up).
const DATA_WAKE_PERIOD: Duration = Duration::from_millis(1);
/// Events handled closer together than this were already queued together: they are passed on
/// without a pause, so that a backlog (writes to many files, which the kernel cannot merge) is
/// drained at full speed.
const BACK_TO_BACK: Duration = Duration::from_micros(50);

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
            // The state file's own temp name, and the one of files replaced through fsutil.
            let replaced = estuary_fsutil::tmp_path(&path).ok();
            [Some(path.with_file_name(name)), replaced, Some(path)]
        };
        OwnFiles(paths.into_iter().flat_map(with_tmp).flatten().collect())
    }

    /// Whether the event is only about our own files.
    fn covers(&self, event: &notify::Event) -> bool {
        !event.paths.is_empty() && event.paths.iter().all(|p| self.0.contains(p))
    }
}

/// Watching the inputs' directories; dropping it stops the watching.
pub struct Watching {
    _watcher: Arc<Mutex<RecommendedWatcher>>,
}

/// Starts watching; `None` when no input uses inotify or inotify is unavailable (polling then
/// does the work).
pub fn start(
    inputs: &[InputConfig],
    own: OwnFiles,
    scanner: Arc<Wake>,
    readers: Vec<Arc<Wake>>,
) -> Option<Watching> {
    let roots: BTreeSet<(PathBuf, bool)> = inputs
        .iter()
        .filter(|i| matches!(i.watch, WatchMode::Inotify { .. }))
        .filter_map(|i| watch_root(&i.path))
        .collect();
    if roots.is_empty() {
        return None;
    }
    let wakers = Wakers { scanner, readers };
    let (rewatch_tx, rewatch_rx) = mpsc::channel();
    let mut handler = Handler::new(own, wakers.clone(), rewatch_tx);
    let mut watcher = match notify::recommended_watcher(move |event| handler.handle(event)) {
        Ok(w) => w,
        Err(err) => {
            warn!(%err, "inotify unavailable; polling");
            wakers.unwatched();
            return None;
        }
    };
    for (dir, recursive) in &roots {
        match watcher.watch(dir, mode(*recursive)) {
            Ok(()) => debug!(dir = %dir.display(), "watching"),
            Err(err) => {
                warn!(dir = %dir.display(), %err, "cannot watch directory; polling it");
                wakers.unwatched();
            }
        }
    }
    let watcher = Arc::new(Mutex::new(watcher));
    let recursive: Vec<PathBuf> = roots
        .into_iter()
        .filter_map(|(dir, recursive)| recursive.then_some(dir))
        .collect();
    if !recursive.is_empty() {
        let weak = Arc::downgrade(&watcher);
        let rewatch_wakers = wakers.clone();
        // Ends when the watcher, and with it the handler's sender, is dropped.
        let spawned = thread::Builder::new()
            .name("rewatch".into())
            .spawn(move || rewatch(&weak, &recursive, &rewatch_rx, &rewatch_wakers));
        if let Err(err) = spawned {
            warn!(%err, "cannot start the rewatch thread; polling");
            wakers.unwatched();
        }
    }
    Some(Watching { _watcher: watcher })
}

fn mode(recursive: bool) -> RecursiveMode {
    if recursive {
        RecursiveMode::Recursive
    } else {
        RecursiveMode::NonRecursive
    }
}

/// Watches the recursive roots again after each overflow: notify adds watches only for
/// directories whose creation it saw. This runs beside the handler, which runs on notify's own
/// thread and would deadlock calling the watcher.
fn rewatch(
    watcher: &Weak<Mutex<RecommendedWatcher>>,
    roots: &[PathBuf],
    requests: &mpsc::Receiver<()>,
    wakers: &Wakers,
) {
    let mut reported = false;
    while requests.recv().is_ok() {
        // One rewatch covers every overflow reported meanwhile.
        while requests.try_recv().is_ok() {}
        let Some(watcher) = watcher.upgrade() else {
            return;
        };
        let mut watcher = watcher.lock().unwrap_or_else(PoisonError::into_inner);
        for dir in roots {
            if let Err(err) = watcher.watch(dir, RecursiveMode::Recursive) {
                if std::mem::replace(&mut reported, true) {
                    debug!(dir = %dir.display(), %err, "cannot watch again after an overflow");
                } else {
                    warn!(dir = %dir.display(), %err, "cannot watch again after an overflow; polling it");
                }
                wakers.unwatched();
            }
        }
        drop(watcher);
        // What appeared before its directory was watched again is only found by a scan.
        wakers.wake(Wakes::All);
    }
}

/// Who an event wakes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wakes {
    /// Only the readers: a file they may have open grew.
    Readers,
    /// The scanner too: files may have appeared, moved or gone.
    All,
}

#[derive(Clone)]
struct Wakers {
    scanner: Arc<Wake>,
    readers: Vec<Arc<Wake>>,
}

impl Wakers {
    fn wake(&self, wakes: Wakes) {
        if wakes == Wakes::All {
            self.scanner.notify();
        }
        self.readers.iter().for_each(|r| r.notify());
    }

    /// Some directory has no watch: events for it never come, so the scanner polls.
    fn unwatched(&self) {
        self.scanner.poll_at_most(UNWATCHED_POLL);
    }
}

/// When a data event may wake the readers.
#[derive(Debug, Default)]
struct Throttle {
    last_wake: Option<Instant>,
    /// When the previous event, of any kind, was handled.
    last_event: Option<Instant>,
}

impl Throttle {
    /// How long a data event handled at `now` waits before it wakes the readers.
    fn hold(&self, now: Instant) -> Duration {
        let Some(last_wake) = self.last_wake else {
            return Duration::ZERO;
        };
        let queued = self
            .last_event
            .is_some_and(|at| now.saturating_duration_since(at) < BACK_TO_BACK);
        if queued {
            return Duration::ZERO;
        }
        DATA_WAKE_PERIOD.saturating_sub(now.saturating_duration_since(last_wake))
    }

    fn woke(&mut self, at: Instant) {
        self.last_wake = Some(at);
    }

    fn handled(&mut self, at: Instant) {
        self.last_event = Some(at);
    }
}

/// What notify's thread does with each event.
struct Handler {
    own: OwnFiles,
    wakers: Wakers,
    throttle: Throttle,
    /// Asks the rewatch thread to watch the recursive roots again.
    rewatch: mpsc::Sender<()>,
    overflows: u64,
    limit_reported: bool,
    error_reported: bool,
}

impl Handler {
    fn new(own: OwnFiles, wakers: Wakers, rewatch: mpsc::Sender<()>) -> Self {
        Handler {
            own,
            wakers,
            throttle: Throttle::default(),
            rewatch,
            overflows: 0,
            limit_reported: false,
            error_reported: false,
        }
    }

    fn handle(&mut self, event: notify::Result<notify::Event>) {
        if let Some(wakes) = self.wakes(event) {
            if wakes == Wakes::Readers {
                let hold = self.throttle.hold(Instant::now());
                if !hold.is_zero() {
                    thread::sleep(hold);
                }
            }
            self.throttle.woke(Instant::now());
            self.wakers.wake(wakes);
        }
        self.throttle.handled(Instant::now());
    }

    /// Who `event` wakes, if anyone.
    fn wakes(&mut self, event: notify::Result<notify::Event>) -> Option<Wakes> {
        let wakes = match event {
            Ok(event) if self.own.covers(&event) => return None,
            Ok(event) if event.need_rescan() => {
                self.overflowed();
                Wakes::All
            }
            Ok(event) => match event.kind {
                EventKind::Modify(ModifyKind::Data(_)) | EventKind::Access(_) => Wakes::Readers,
                _ => Wakes::All,
            },
            // A directory created under a recursive root could not be watched.
            Err(err) if matches!(err.kind, ErrorKind::MaxFilesWatch) => {
                if !std::mem::replace(&mut self.limit_reported, true) {
                    warn!(%err, "inotify watch limit reached (fs.inotify.max_user_watches); polling");
                }
                self.wakers.unwatched();
                Wakes::All
            }
            Err(err) => {
                if std::mem::replace(&mut self.error_reported, true) {
                    debug!(%err, "inotify error; rescanning");
                } else {
                    warn!(%err, "inotify error; rescanning (further errors are logged at debug level)");
                }
                Wakes::All
            }
        };
        Some(wakes)
    }

    /// The kernel dropped events: any file may have changed unseen.
    fn overflowed(&mut self) {
        self.overflows += 1;
        if self.overflows == 1 {
            warn!("inotify queue overflowed (fs.inotify.max_queued_events); rescanning everything");
        } else {
            debug!(
                overflows = self.overflows,
                "inotify queue overflowed; rescanning everything"
            );
        }
        // Fails only when no input has a recursive root: there is nothing to watch again.
        let _ = self.rewatch.send(());
    }
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

    /// A handler for an input under `/w`, its scanner's and reader's wakes, and its rewatch
    /// requests.
    fn handler() -> (Handler, Arc<Wake>, Arc<Wake>, mpsc::Receiver<()>) {
        let (scanner, reader) = (Arc::new(Wake::default()), Arc::new(Wake::default()));
        let wakers = Wakers {
            scanner: scanner.clone(),
            readers: vec![reader.clone()],
        };
        let (tx, rx) = mpsc::channel();
        let own = OwnFiles::new([PathBuf::from("/w/state")]);
        (Handler::new(own, wakers, tx), scanner, reader, rx)
    }

    /// Whether `wake` was notified (or polls sooner than `WAIT`).
    fn woken(wake: &Wake) -> bool {
        const WAIT: Duration = Duration::from_secs(30);
        let start = std::time::Instant::now();
        wake.wait(WAIT);
        start.elapsed() < WAIT
    }

    #[test]
    fn an_overflow_wakes_everyone_and_asks_for_a_rewatch() {
        let (mut handler, scanner, reader, rewatch) = handler();
        let overflow = notify::Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        handler.handle(Ok(overflow));
        assert!(woken(&scanner) && woken(&reader));
        assert!(rewatch.try_recv().is_ok());
    }

    #[test]
    fn data_events_in_a_stream_wake_the_readers_once_per_period() {
        let t0 = Instant::now();
        let at = |us: u64| t0 + Duration::from_micros(us);
        let period = DATA_WAKE_PERIOD.as_micros() as u64;
        let mut throttle = Throttle::default();
        // The first event after a quiet time wakes at once.
        assert_eq!(throttle.hold(at(0)), Duration::ZERO);
        throttle.woke(at(0));
        throttle.handled(at(0));
        // The next write's event, 100 us later, waits for the rest of the period ...
        assert_eq!(throttle.hold(at(100)), Duration::from_micros(period - 100));
        throttle.woke(at(period));
        throttle.handled(at(period));
        // ... events queued meanwhile pass at once ...
        assert_eq!(throttle.hold(at(period + 10)), Duration::ZERO);
        throttle.woke(at(period + 10));
        throttle.handled(at(period + 10));
        // ... and a write after a full period wakes at once again.
        assert_eq!(throttle.hold(at(2 * period + 100)), Duration::ZERO);
    }

    #[test]
    fn the_watch_limit_makes_the_scanner_poll() {
        let (mut handler, scanner, _reader, rewatch) = handler();
        for _ in 0..2 {
            let limit = notify::Error::new(ErrorKind::MaxFilesWatch).add_path("/w/new".into());
            handler.handle(Err(limit));
            assert!(woken(&scanner));
        }
        // Not notified again, yet the wait ends: the scanner polls.
        assert!(woken(&scanner));
        assert!(rewatch.try_recv().is_err());
    }
}
