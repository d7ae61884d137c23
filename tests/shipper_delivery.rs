//! Delivery through crashes, outages and reconnects: the real `estuary ship` against small RELP
//! and TCP receivers on 127.0.0.1, counting lines by sequence number. Named after the failure
//! cases of section 4 of the shipper research where one applies.

mod common;
mod shipper_support;

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::rng::Rng;
use shipper_support::{append, line, received_seqs, Behaviour, Receiver, Shipper};

const T: Duration = Duration::from_secs(30);
const WINDOW: usize = 128;

/// Appends `total` lines at about `per_sec`, rotating the file every `rotate_every` lines with `rotate`.
fn writer(
    path: std::path::PathBuf,
    total: u64,
    per_sec: u64,
    rotate_every: u64,
    rotate: impl Fn(&std::path::Path, u64) + Send + 'static,
) -> (thread::JoinHandle<()>, Arc<AtomicBool>) {
    let done = Arc::new(AtomicBool::new(false));
    let done2 = done.clone();
    let handle = thread::spawn(move || {
        let step = 10u64;
        let pause = Duration::from_micros(1_000_000 * step / per_sec);
        let mut n = 0;
        let mut rotations = 0;
        while n < total {
            append(&path, n..(n + step).min(total));
            n += step;
            if n % rotate_every == 0 && n < total {
                rotations += 1;
                rotate(&path, rotations);
            }
            thread::sleep(pause);
        }
        done2.store(true, Ordering::Relaxed);
    });
    (handle, done)
}

/// Kills the shipper 20 times at a random moment after it has connected, restarting it after a
/// random pause. Returns the duplicates received by each kill, once the receiver has read all the
/// killed shipper wrote.
fn kill_and_restart_20_times(s: &mut Shipper, receiver: &Receiver, rng: &mut Rng) -> Vec<usize> {
    let mut at_kill = Vec::new();
    for _ in 0..20 {
        let connections = receiver.connections.load(Ordering::Relaxed);
        let deadline = Instant::now() + T;
        while receiver.connections.load(Ordering::Relaxed) == connections
            && Instant::now() < deadline
        {
            thread::sleep(Duration::from_millis(5));
        }
        thread::sleep(Duration::from_millis(20 + rng.below(200)));
        s.kill9();
        let pause = Instant::now() + Duration::from_millis(rng.below(80));
        receiver.wait_connections_closed();
        at_kill.push(count_duplicates(receiver));
        thread::sleep(pause.saturating_duration_since(Instant::now()));
        s.start();
    }
    at_kill
}

/// The duplicates each run after a kill added, from the counts at each kill and at the end.
fn per_kill(mut at_kill: Vec<usize>, at_end: usize) -> Vec<usize> {
    at_kill.push(at_end);
    at_kill.windows(2).map(|w| w[1] - w[0]).collect()
}

fn rename_rotate(path: &std::path::Path, k: u64) {
    fs::rename(path, path.with_extension(format!("log.{k}"))).expect("rotate by rename");
}

/// logrotate's copytruncate: copy to `<name>.k` beside it, then truncate in place.
fn copytruncate(path: &std::path::Path, k: u64) {
    let bytes = fs::read(path).expect("read for copy");
    fs::write(path.with_extension(format!("log.{k}")), bytes).expect("write copy");
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(0))
        .expect("truncate");
}

#[test]
fn kill9_at_20_random_points_during_appends_and_rename_rotation_loses_nothing() {
    let receiver = Receiver::relp();
    let mut s = Shipper::app_log_into(&receiver, "");
    let total = 12_000;
    s.start();
    let (w, _) = writer(s.log("app.log"), total, 2000, 500, rename_rotate);
    let mut rng = Rng::from_clock();
    let at_kill = kill_and_restart_20_times(&mut s, &receiver, &mut rng);
    w.join().unwrap();
    let tally = receiver.received.wait_all(0..total, T);
    let dups: usize = count_duplicates(&receiver);
    let per_kill = per_kill(at_kill, dups);
    println!("kill -9 x20 with rename rotation: {total} lines, missing {}, duplicated lines {dups} (RELP window {WINDOW}); after each kill {per_kill:?}", tally.missing.len());
    if !tally.missing.is_empty() {
        eprintln!("shipper output:\n{}", s.output());
        let files: Vec<_> = fs::read_dir(&s.logs)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        for f in files {
            let text = fs::read_to_string(&f).unwrap();
            println!("{}: first line {:?}", f.display(), text.lines().next());
        }
    }
    assert!(
        tally.missing.is_empty(),
        "lost {:?}..{:?}",
        tally.missing.first(),
        tally.missing.last()
    );
    assert!(tally.unexpected.is_empty());
    // Each crash may repeat what was sent but not yet saved, which the sender keeps within the
    // window. With rotated files a restart may be killed before it has sent one file's repeated
    // lines again, while it already sent another's: the next run repeats both, so a run repeats
    // at most two windows.
    assert!(
        per_kill.iter().all(|&d| d <= 2 * WINDOW),
        "{dups} duplicates, after each kill {per_kill:?}"
    );
    assert!(dups <= 20 * WINDOW, "{dups} duplicates");
    s.stop();
}

/// Kills the shipper `kills` times while it catches up on a backlog of `total` lines (so that its
/// bound on what is sent but not saved is always reached), then lets it finish. Returns the
/// lines each kill duplicated; asserts that nothing was lost.
fn kill9_while_catching_up(receiver: &Receiver, total: u64, kills: usize) -> Vec<usize> {
    let mut s = Shipper::app_log_into(receiver, "");
    append(&s.log("app.log"), 0..total);
    let mut rng = Rng::from_clock();
    let mut at_kill = Vec::new();
    let mut dups_at_kill = Vec::new();
    s.start();
    for _ in 0..kills {
        let before = receiver.messages.load(Ordering::Relaxed);
        let deadline = Instant::now() + T;
        while receiver.messages.load(Ordering::Relaxed) == before && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        thread::sleep(Duration::from_millis(rng.below(20)));
        s.kill9();
        at_kill.push(receiver.messages.load(Ordering::Relaxed));
        receiver.wait_connections_closed();
        dups_at_kill.push(count_duplicates(receiver));
        s.start();
    }
    let tally = receiver.received.wait_all(0..total, T);
    let dups = count_duplicates(receiver);
    let per_kill = per_kill(dups_at_kill, dups);
    println!(
        "kill -9 x{kills} while catching up: {total} lines, missing {}, duplicated lines {dups} \
         ({per_kill:?} by each kill); messages received at each kill {at_kill:?}",
        tally.missing.len()
    );
    assert!(tally.missing.is_empty(), "{tally:?}\n{}", s.output());
    assert!(
        at_kill.last().is_some_and(|&n| n < total as usize),
        "the backlog ran out before the last kill: {at_kill:?}"
    );
    s.stop();
    per_kill
}

/// The RELP window bound where it is tight: catching up, the sender always has a full window of
/// frames sent, or acknowledged but not yet saved.
#[test]
fn kill9_while_catching_up_over_relp_repeats_at_most_the_window_per_kill() {
    let receiver = Receiver::relp();
    let per_kill = kill9_while_catching_up(&receiver, 60_000, 10);
    println!("RELP window {WINDOW}: at most {WINDOW} duplicates per kill");
    assert!(
        per_kill.iter().all(|&d| d <= WINDOW),
        "duplicates by each kill: {per_kill:?}"
    );
}

/// TCP has no acknowledgements: a batch is written while at most one batch's bytes are unsaved,
/// so a kill repeats at most two batches (and may cut the message being written).
#[test]
fn kill9_while_catching_up_over_tcp_repeats_at_most_two_batches_per_kill() {
    const BATCH_BYTES: usize = 256 * 1024;
    let receiver = Receiver::tcp();
    let per_kill = kill9_while_catching_up(&receiver, 100_000, 10);
    // A message is never shorter than its line in the file (the syslog header only adds to
    // it), so two batches hold at most this many messages.
    let shortest = line(0).len();
    let bound = 2 * BATCH_BYTES / shortest + 1;
    println!("TCP: at most {bound} duplicates per kill ({shortest} bytes per message or more)");
    assert!(
        per_kill.iter().all(|&d| d <= bound),
        "duplicates by each kill: {per_kill:?}"
    );
}

fn count_duplicates(receiver: &Receiver) -> usize {
    let re = regex::Regex::new(r"\bseq=(\d+)\b").unwrap();
    let mut seen = std::collections::HashMap::new();
    for c in re.captures_iter(&receiver.received.text()) {
        *seen.entry(c[1].to_owned()).or_insert(0usize) += 1;
    }
    seen.values().map(|n| n - 1).sum()
}

#[test]
fn kill9_at_20_random_points_during_copytruncate_rotation_loses_only_destroyed_lines() {
    let receiver = Receiver::relp();
    let mut s = Shipper::app_log_into(&receiver, "");
    let total = 12_000;
    s.start();
    let (w, _) = writer(s.log("app.log"), total, 2000, 500, copytruncate);
    let mut rng = Rng::from_clock();
    kill_and_restart_20_times(&mut s, &receiver, &mut rng);
    w.join().unwrap();
    receiver.received.wait_all(0..total, Duration::from_secs(3));
    thread::sleep(Duration::from_millis(500));
    // What survived on disk: the copies plus the live file. Lines in none of them were destroyed by
    // the truncation before anyone could read them.
    let survived = seqs_on_disk(&s.logs);
    let tally = receiver.received.tally(0..total);
    let destroyed = (0..total).filter(|n| !survived.contains(n)).count();
    let missed: Vec<u64> = tally
        .missing
        .iter()
        .copied()
        .filter(|n| survived.contains(n))
        .collect();
    println!(
        "copytruncate with kill -9 x20: {total} lines, destroyed by truncation {destroyed}, \
         missing {} (of which readable in a copy but not shipped: {}), duplicated {}",
        tally.missing.len(),
        missed.len(),
        count_duplicates(&receiver)
    );
    if !missed.is_empty() {
        eprintln!("shipper output:\n{}", s.output());
    }
    // The shipper finishes a truncated file's old content from logrotate's copy beside it
    // (running or restarted). Known residue (see the shipper README): when restarts race
    // several copytruncates under heavy load, part of one copy can be missed; bounded here so a
    // regression shows.
    assert!(
        missed.len() <= 1000,
        "{} readable lines not shipped: {:?}",
        missed.len(),
        &missed[..missed.len().min(20)]
    );
    assert!(tally.unexpected.is_empty());
    s.stop();
}

/// Copytruncate while a writer appends concurrently: lines written between logrotate's copy and
/// its truncation are in neither file (destroyed) and cannot be shipped; every other line must
/// arrive, and duplicates stay within a window per rotation.
#[test]
fn case04_copytruncate_under_constant_writes_loses_only_destroyed_lines() {
    let receiver = Receiver::relp();
    let mut s = Shipper::app_log_into(&receiver, "");
    let total = 10_000;
    s.start();
    let log = s.log("app.log");
    let (w, written) = writer(log.clone(), total, 4000, u64::MAX, |_, _| {});
    let mut rotations = 0;
    while !written.load(Ordering::Relaxed) {
        thread::sleep(Duration::from_millis(250));
        rotations += 1;
        copytruncate_slowly(&log, rotations);
    }
    w.join().unwrap();
    let survived = seqs_on_disk(&s.logs);
    let destroyed: Vec<u64> = (0..total).filter(|n| !survived.contains(n)).collect();
    // Everything that survived on disk arrives.
    let end = Instant::now() + T;
    let tally = loop {
        let t = receiver.received.tally(0..total);
        if t.missing.iter().all(|n| !survived.contains(n)) || Instant::now() > end {
            break t;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let dups = count_duplicates(&receiver);
    println!(
        "copytruncate x{rotations} under concurrent writes: destroyed {}, missing {}, duplicated {dups}",
        destroyed.len(),
        tally.missing.len(),
    );
    assert!(
        !destroyed.is_empty(),
        "the race between copy and truncation never opened"
    );
    let lost: Vec<u64> = tally
        .missing
        .iter()
        .copied()
        .filter(|n| survived.contains(n))
        .collect();
    assert!(
        lost.is_empty(),
        "{} lines on disk not shipped: {:?}\n{}",
        lost.len(),
        &lost[..lost.len().min(20)],
        s.output()
    );
    assert!(tally.unexpected.is_empty());
    assert!(
        dups <= rotations as usize * WINDOW,
        "{dups} duplicates over {rotations} rotations"
    );
    s.stop();
}

/// logrotate's copytruncate with time between the copy and the truncation, as on a busy disk:
/// what the writer appends meanwhile is destroyed.
fn copytruncate_slowly(path: &std::path::Path, k: u64) {
    let bytes = fs::read(path).expect("read for copy");
    thread::sleep(Duration::from_millis(5));
    fs::write(path.with_extension(format!("log.{k}")), bytes).expect("write copy");
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(0))
        .expect("truncate");
}

/// The sequence numbers in every file under `dir`.
fn seqs_on_disk(dir: &std::path::Path) -> std::collections::BTreeSet<u64> {
    let mut text = String::new();
    for entry in fs::read_dir(dir).unwrap().flatten() {
        text.push_str(&String::from_utf8_lossy(&fs::read(entry.path()).unwrap()));
    }
    received_seqs(&text).into_iter().collect()
}

#[test]
fn case20_relp_server_drops_mid_window_twice_no_loss_duplicates_within_window() {
    let receiver = Receiver::start_new(
        true,
        Behaviour {
            reset_after: Some(700),
            resets: 2,
            ..Default::default()
        },
    );
    let mut s = Shipper::app_log_into(&receiver, "");
    append(&s.log("app.log"), 0..5000);
    s.start();
    let tally = receiver.received.wait_all(0..5000, T);
    let dups = count_duplicates(&receiver);
    println!("RELP resets x2: duplicated {dups}, window {WINDOW}");
    assert!(tally.missing.is_empty(), "{tally:?}\n{}", s.output());
    assert!(dups <= 2 * WINDOW, "{dups} duplicates");
    // The frames read with the one that met the reset reached the receiver unacknowledged: they
    // were sent again, and counted.
    let status = s.wait_status(|st| retried(st) > 0);
    assert!(retried(&status) > 0, "{status}");
    s.stop();
}

#[test]
fn case13_case20_receiver_outage_while_writing_and_rotating_then_recovery_loses_nothing() {
    let mut receiver = Receiver::relp();
    let mut s = Shipper::app_log_into(&receiver, "");
    append(&s.log("app.log"), 0..1000);
    s.start();
    receiver.received.wait_all(0..1000, T);
    receiver.stop();
    // Outage: keep writing and rotating; restart the shipper once in the middle.
    append(&s.log("app.log"), 1000..2000);
    rename_rotate(&s.log("app.log"), 1);
    append(&s.log("app.log"), 2000..3000);
    thread::sleep(Duration::from_millis(700));
    s.kill9();
    s.start();
    append(&s.log("app.log"), 3000..3500);
    rename_rotate(&s.log("app.log"), 2);
    append(&s.log("app.log"), 3500..4000);
    thread::sleep(Duration::from_millis(700));
    receiver.start();
    let tally = receiver.received.wait_all(0..4000, T);
    assert!(tally.missing.is_empty(), "{tally:?}\n{}", s.output());
    println!("outage: duplicated {}", count_duplicates(&receiver));
    s.stop();
}

#[test]
fn a_dead_destination_does_not_stop_a_live_one_and_catches_up_later() {
    let live = Receiver::relp();
    let mut dead = Receiver::tcp();
    dead.stop();
    let mut s = Shipper::toml(
        &[("app.log", "app:")],
        "",
        &[live.destination("live"), dead.destination("dead")],
    );
    s.start();
    for chunk in 0..10u64 {
        append(&s.log("app.log"), chunk * 500..(chunk + 1) * 500);
        thread::sleep(Duration::from_millis(20));
    }
    let tally = live.received.wait_all(0..5000, T);
    assert!(tally.missing.is_empty(), "{tally:?}");
    dead.start();
    let tally = dead.received.wait_all(0..5000, T);
    assert!(tally.missing.is_empty(), "{tally:?}\n{}", s.output());
    s.stop();
}

#[test]
fn sigterm_flushes_and_exits_zero_and_restart_sends_nothing_twice() {
    let receiver = Receiver::relp();
    let mut s = Shipper::app_log_into(&receiver, "");
    append(&s.log("app.log"), 0..2000);
    s.start();
    receiver.received.wait_all(0..2000, T);
    s.stop();
    s.start();
    append(&s.log("app.log"), 2000..2100);
    let tally = receiver.received.wait_all(0..2100, T);
    assert!(
        tally.missing.is_empty() && tally.duplicated.is_empty(),
        "{tally:?}"
    );
    s.stop();
}

#[test]
fn case06_polling_only_mode_finds_lines_and_rotations_without_events() {
    let receiver = Receiver::tcp();
    let mut s = Shipper::app_log_into(&receiver, "watch = \"polling\"\n");
    s.start();
    append(&s.log("app.log"), 0..100);
    receiver.received.wait_all(0..100, T);
    rename_rotate(&s.log("app.log"), 1);
    append(&s.log("app.log.1"), 100..150);
    append(&s.log("app.log"), 150..200);
    let tally = receiver.received.wait_all(0..200, T);
    assert!(
        tally.missing.is_empty() && tally.duplicated.is_empty(),
        "{tally:?}\n{}",
        s.output()
    );
    s.stop();
}

#[test]
fn partial_last_line_is_sent_after_the_idle_timeout_and_counted() {
    let receiver = Receiver::tcp();
    let mut s = Shipper::app_log_into(&receiver, "partial_line_timeout = \"300ms\"\n");
    s.start();
    append(&s.log("app.log"), 0..10);
    shipper_support::append_bytes(&s.log("app.log"), b"x\tseq=10\tno newline yet");
    let tally = receiver.received.wait_all(0..11, T);
    assert!(tally.missing.is_empty(), "{tally:?}");
    let status = s.wait_status(|st| st.contains("partial=1"));
    assert!(status.contains("partial=1"), "{status}");
    s.stop();
}

#[test]
fn case14_truncate_policy_keeps_the_head_of_a_long_line_and_counts_it() {
    let receiver = Receiver::tcp();
    let mut s = Shipper::app_log_into(
        &receiver,
        "max_line_bytes = 1024\nlong_lines = \"truncate\"\n",
    );
    append(&s.log("app.log"), 0..5);
    let mut long = b"seq=5\t".to_vec();
    long.extend(std::iter::repeat_n(b'y', 100_000));
    long.push(b'\n');
    shipper_support::append_bytes(&s.log("app.log"), &long);
    append(&s.log("app.log"), 6..10);
    s.start();
    let tally = receiver.received.wait_all(0..10, T);
    assert!(
        tally.missing.is_empty() && tally.duplicated.is_empty(),
        "{tally:?}"
    );
    let ys = receiver
        .received
        .text()
        .bytes()
        .filter(|&b| b == b'y')
        .count();
    assert_eq!(ys, 1024 - 6);
    let status = s.wait_status(|st| st.contains("truncated=1"));
    assert!(status.contains("truncated=1"), "{status}");
    s.stop();
}

/// The lines retried, over all destinations, in an `estuary status` text.
fn retried(status: &str) -> u64 {
    let re = regex::Regex::new(r"\bretried=(\d+)").unwrap();
    re.captures_iter(status)
        .map(|c| c[1].parse::<u64>().unwrap())
        .sum()
}

/// Case 20's memory bound: the file is the buffer. Through a long outage with a backlog of
/// 300,000 lines of 300 bytes (90 MB) and two restarts, and while catching up after it, the
/// shipper's peak resident memory stays far below the backlog; nothing is lost.
#[test]
fn case20_memory_stays_bounded_through_an_outage_with_a_large_backlog() {
    const BOUND_KIB: u64 = 48 * 1024;
    let mut receiver = Receiver::relp();
    let mut s = Shipper::app_log_into(&receiver, "");
    s.start_and_ship(&receiver, "app.log", 0..1000);
    receiver.stop();
    let mut peaks = Vec::new();
    let mut seq = 1000;
    for _ in 0..2 {
        let mut text = String::new();
        for n in seq..seq + 150_000 {
            text.push_str(&format!("{n}.000000\tseq={n}\tC{n:017}\t{:x<256}\n", ""));
        }
        shipper_support::append_bytes(&s.log("app.log"), text.as_bytes());
        seq += 150_000;
        thread::sleep(Duration::from_millis(700));
        peaks.push(peak_rss_kib(&s));
        s.kill9();
        s.start();
    }
    receiver.start();
    let tally = receiver.received.wait_all(0..seq, Duration::from_secs(90));
    assert!(tally.missing.is_empty(), "missing {}", tally.missing.len());
    peaks.push(peak_rss_kib(&s));
    println!(
        "peak RSS KiB: during the outage {:?}, after catching up {}",
        &peaks[..2],
        peaks[2]
    );
    assert!(
        peaks.iter().all(|&p| p < BOUND_KIB),
        "peak RSS KiB {peaks:?}"
    );
    let dups = count_duplicates(&receiver);
    assert!(dups <= 2 * WINDOW, "{dups} duplicates after two restarts");
    s.stop();
}

/// The running shipper's peak resident set (VmHWM), in KiB.
fn peak_rss_kib(s: &Shipper) -> u64 {
    let pid = s.daemon.as_ref().expect("shipper running").pid();
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc status")
}
