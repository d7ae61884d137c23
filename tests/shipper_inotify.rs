//! Case 6 of the shipper research (shipper-anchors.md section 4): inotify queue overflow and
//! watch exhaustion. The shipper polls every 60 s here, so only its reaction to the overflow or
//! to the missing watch can deliver the lines in time. Global sysctls stay untouched: the queue
//! is overflowed by stopping the shipper while files change, and the watch limit is lowered in a
//! user namespace of the shipper's own (the limit is per user namespace).

mod common;
mod shipper_support;

use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Duration;

use common::Daemon;
use shipper_support::{append, Receiver, Shipper, SHIP_TIMEOUT};

/// Far longer than any wait below: a test passing by the fallback poll would time out first.
const LONG_POLL: &str = "$InputFilePollingInterval 60\n";

/// A shipper tailing `logs/*/*.log` (every directory under `logs/` watched) into `receiver`.
fn recursive_shipper(receiver: &Receiver) -> Shipper {
    Shipper::with_directives(&[("*/*.log", "many:")], LONG_POLL, &receiver.action())
}

/// Hands out consecutive sequence numbers.
struct Seq(u64);

impl Seq {
    /// Appends the next `n` numbers to `path`.
    fn append(&mut self, path: &Path, n: u64) {
        append(path, self.0..self.0 + n);
        self.0 += n;
    }
}

fn log_dir(s: &Shipper, dir: &str) -> PathBuf {
    let path = s.log(dir);
    fs::create_dir_all(&path).expect("create log dir");
    path
}

/// Asserts that every number in `expected` arrives exactly once, and nothing else.
fn assert_exactly_once(receiver: &Receiver, expected: Range<u64>, shipper_log: &str) {
    let tally = receiver.received.wait_all(expected, SHIP_TIMEOUT);
    assert!(
        tally.missing.is_empty() && tally.duplicated.is_empty() && tally.unexpected.is_empty(),
        "{tally:?}\nshipper log:\n{shipper_log}"
    );
}

/// Waits until process `pid` is stopped (state `T` in /proc), so that it reads no more events.
fn wait_stopped(pid: u32) {
    common::wait_for(Duration::from_secs(10), "the shipper to stop", || {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The state follows the parenthesised command name.
        let state = stat.rsplit_once(") ")?.1.chars().next()?;
        (state == 'T').then_some(())
    });
}

fn max_queued_events() -> u64 {
    fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .expect("read fs.inotify.max_queued_events")
        .trim()
        .parse()
        .expect("fs.inotify.max_queued_events is a number")
}

#[test]
fn case06_queue_overflow_rescans_and_watches_new_directories_without_loss() {
    let receiver = Receiver::tcp();
    let mut s = recursive_shipper(&receiver);
    let files: Vec<PathBuf> = (0..5)
        .flat_map(|d| {
            let dir = log_dir(&s, &format!("d{d}"));
            (0..10).map(move |f| dir.join(format!("f{f}.log")))
        })
        .collect();
    let mut seq = Seq(0);
    for f in &files {
        seq.append(f, 1);
    }
    s.start();
    assert_exactly_once(&receiver, 0..seq.0, &s.output());

    s.signal("STOP");
    wait_stopped(s.daemon.as_ref().expect("running").pid());
    // Each append is an open, a write and a close: three events, none merged with the one before.
    let appends = max_queued_events() / 2 + 1000;
    for i in 0..appends {
        seq.append(&files[(i % files.len() as u64) as usize], 1);
    }
    // The queue is full: the events of what follows are dropped.
    for f in &files[..5] {
        let mut rotated = f.clone().into_os_string();
        rotated.push(".1");
        fs::rename(f, &rotated).expect("rotate by rename");
        seq.append(Path::new(&rotated), 2); // a late writer on the rotated file
        seq.append(f, 3);
    }
    for d in 0..5 {
        seq.append(&s.log(&format!("d{d}/new.log")), 4);
    }
    let new_dir = log_dir(&s, "d5");
    seq.append(&new_dir.join("f0.log"), 5);
    s.signal("CONT");
    assert_exactly_once(&receiver, 0..seq.0, &s.output());
    assert!(
        s.output().contains("inotify queue overflowed"),
        "{}",
        s.output()
    );

    // The directory created while events were dropped is watched now: a new file there is seen.
    seq.append(&new_dir.join("later.log"), 6);
    assert_exactly_once(&receiver, 0..seq.0, &s.output());
    s.stop();
}

/// Starts `s` in a user namespace of its own whose inotify watch limit is `watches`; `false`
/// where user namespaces are not available (some containers), and the test is skipped.
#[must_use]
fn start_with_watch_limit(s: &mut Shipper, watches: u32) -> bool {
    let set_limit = "echo \"$0\" > /proc/sys/user/max_inotify_watches";
    let probe = Command::new("unshare")
        .args(["--user", "--map-root-user", "sh", "-c", set_limit, "1"])
        .output()
        .expect("run unshare (util-linux)");
    if !common::prereq::require(
        probe.status.success(),
        &format!(
            "no user namespace with its own inotify limits here: {}",
            String::from_utf8_lossy(&probe.stderr)
        ),
    ) {
        return false;
    }
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--user",
        "--map-root-user",
        "sh",
        "-c",
        &format!("{set_limit} && exec \"$1\" ship --config \"$2\""),
    ])
    .arg(watches.to_string())
    .arg(common::estuary_bin())
    .arg(&s.conf)
    .env("RUST_LOG", "info");
    s.daemon = Some(Daemon::spawn("shipper-userns", cmd, s.dir.path()));
    true
}

fn userns_log(s: &Shipper) -> String {
    fs::read_to_string(s.dir.path().join("shipper-userns.log")).unwrap_or_default()
}

/// Rotates `dir/app.log` by rename, writes to both generations, and adds a new file beside them.
fn rotate_and_add(dir: &Path, seq: &mut Seq) {
    let log = dir.join("app.log");
    fs::rename(&log, dir.join("app.log.1")).expect("rotate by rename");
    seq.append(&dir.join("app.log.1"), 2);
    seq.append(&log, 3);
    seq.append(&dir.join("more.log"), 4);
}

#[test]
fn case06_watch_limit_reached_at_start_falls_back_to_polling_without_loss() {
    let receiver = Receiver::tcp();
    let mut s = recursive_shipper(&receiver);
    let dirs: Vec<PathBuf> = ["a", "b", "c"].iter().map(|d| log_dir(&s, d)).collect();
    let mut seq = Seq(0);
    for dir in &dirs {
        seq.append(&dir.join("app.log"), 10);
    }
    // Room for `logs/` only: no directory holding a file is watched.
    if !start_with_watch_limit(&mut s, 1) {
        return;
    }
    assert_exactly_once(&receiver, 0..seq.0, &userns_log(&s));
    assert!(
        userns_log(&s).contains("cannot watch directory"),
        "{}",
        userns_log(&s)
    );

    for dir in &dirs {
        rotate_and_add(dir, &mut seq);
    }
    assert_exactly_once(&receiver, 0..seq.0, &userns_log(&s));
    s.stop();
}

#[test]
fn case06_watch_limit_reached_for_a_new_directory_is_logged_once_and_polled_without_loss() {
    let receiver = Receiver::tcp();
    let mut s = recursive_shipper(&receiver);
    let mut seq = Seq(0);
    for d in ["a", "b"] {
        seq.append(&log_dir(&s, d).join("app.log"), 10);
    }
    // Exactly `logs/`, `a/` and `b/`.
    if !start_with_watch_limit(&mut s, 3) {
        return;
    }
    assert_exactly_once(&receiver, 0..seq.0, &userns_log(&s));

    let mut new_dirs = Vec::new();
    for d in ["c", "d"] {
        new_dirs.push(log_dir(&s, d));
        // Apart, so that each directory is refused a watch on its own.
        thread::sleep(Duration::from_millis(200));
    }
    common::wait_for(Duration::from_secs(10), "the watch limit warning", || {
        userns_log(&s).contains("watch limit reached").then_some(())
    });
    for dir in &new_dirs {
        seq.append(&dir.join("app.log"), 10);
    }
    assert_exactly_once(&receiver, 0..seq.0, &userns_log(&s));
    for dir in &new_dirs {
        rotate_and_add(dir, &mut seq);
    }
    assert_exactly_once(&receiver, 0..seq.0, &userns_log(&s));
    s.stop();
    let log = userns_log(&s);
    let warnings = log
        .lines()
        .filter(|l| l.contains("inotify watch limit reached"))
        .count();
    assert_eq!(warnings, 1, "{log}");
}
