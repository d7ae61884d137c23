//! Tailing failure cases from section 4 of the shipper research (shipper-anchors.md), each run
//! against the real `estuary ship` and a TCP receiver on 127.0.0.1, counting lines by sequence
//! number. Test names start with the case number.

mod common;
mod shipper_support;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

use shipper_support::{
    app_log_to_tcp, append, append_bytes, assert_exactly_once, Behaviour, Receiver, Shipper,
    SHIP_TIMEOUT as T,
};

#[test]
fn case01_rename_rotation_behind_slow_output_has_no_duplicates_or_loss() {
    let receiver = Receiver::start_new(
        false,
        Behaviour {
            read_delay: Some(Duration::from_millis(20)),
            ..Default::default()
        },
    );
    let mut s = Shipper::new(&[("app.log", "app:")], &receiver.action());
    append(&s.log("app.log"), 0..3000);
    s.start();
    common::wait_for(T, "the first lines", || {
        (!receiver.received.text().is_empty()).then_some(())
    });
    // The case: the output is behind when the file rotates.
    let behind = receiver.received.tally(0..3000).missing.len();
    assert!(behind >= 1000, "only {behind} lines behind at the rotation");
    s.rotate("app.log", "app.log.1");
    append(&s.log("app.log.1"), 3000..3100); // a late writer on the old descriptor's file
    append(&s.log("app.log"), 3100..4000);
    assert_exactly_once(&receiver, 0..4000, &s);
    s.stop();
}

#[test]
fn case03_truncate_in_place_then_new_line_is_delivered() {
    let (receiver, mut s) = app_log_to_tcp();
    s.start_and_ship(&receiver, "app.log", 0..100);
    fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(s.log("app.log"))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    append(&s.log("app.log"), 100..101);
    assert_exactly_once(&receiver, 0..101, &s);
    s.stop();
}

#[test]
fn case11_truncate_and_rewrite_gives_exactly_the_new_lines() {
    let (receiver, mut s) = app_log_to_tcp();
    s.start_and_ship(&receiver, "app.log", 0..10);
    // Truncate and immediately write more than was there: the size never looks smaller.
    let mut text = String::new();
    for n in 10..110u64 {
        text.push_str(&format!("rewritten\tseq={n}\n"));
    }
    fs::write(s.log("app.log"), text).unwrap();
    assert_exactly_once(&receiver, 0..110, &s);
    assert!(s.output().contains("file truncated"), "{}", s.output());
    s.stop();
}

/// Two files with the same first kilobyte (a Zeek header), the second on the first one's inode
/// at the same path: neither the inode nor the fingerprint (the first 512 bytes, all header) can
/// tell them apart, only the bytes before the saved offset, which the shipper checks with the
/// fingerprint before it resumes. While the shipper is stopped, a copytruncate moves the first
/// file's content to `app.log.1` and the same header with other lines is written to `app.log`.
#[test]
fn case09_identical_headers_both_files_shipped_completely() {
    let (receiver, mut s) = app_log_to_tcp();
    let header: String = (0..16)
        .map(|i| format!("#fields\tts\tuid\tid.orig_h\tpadding-{i:040}\n"))
        .collect();
    assert!(header.len() >= 1024);
    let path = s.log("app.log");
    append_bytes(&path, header.as_bytes());
    s.start_and_ship(&receiver, "app.log", 0..500);
    s.stop();
    let saved_len = fs::metadata(&path).unwrap().len();
    let inode = fs::metadata(&path).unwrap().ino();

    append(&path, 500..600);
    fs::copy(&path, s.log("app.log.1")).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    append_bytes(&path, header.as_bytes());
    append(&path, 600..1400);
    // What makes the case: the same inode, the same first kilobyte in both files, and the new
    // file longer than the saved offset, so neither identity nor size says "new file".
    let first_kib = |p: &Path| fs::read(p).unwrap()[..1024].to_vec();
    assert_eq!(fs::metadata(&path).unwrap().ino(), inode);
    assert_eq!(first_kib(&path), first_kib(&s.log("app.log.1")));
    assert!(fs::metadata(&path).unwrap().len() > saved_len);

    s.start();
    assert_exactly_once(&receiver, 0..1400, &s);
    // The saved incarnation was finished in the copy, and the file at the path was new to the
    // second run too, read from 0 with its header: both headers arrived (32 lines), none twice.
    let output = s.output();
    let plain: String = output
        .split('\x1b')
        .enumerate()
        .map(|(i, part)| {
            if i == 0 {
                part
            } else {
                part.split_once('m').map_or("", |(_, rest)| rest)
            }
        })
        .collect();
    assert!(
        plain.contains("finishing file rotated while stopped"),
        "{plain}"
    );
    let new_at_path = format!("new file path={}", path.display());
    let news = plain
        .lines()
        .filter(|l| l.contains(&new_at_path) && l.ends_with("offset=0"))
        .count();
    assert_eq!(news, 2, "app.log new in both runs:\n{plain}");
    assert_eq!(receiver.received.text().matches("#fields").count(), 32);
    s.stop();
}

#[test]
fn case14_one_mib_line_is_split_counted_and_does_not_block_the_file() {
    let (receiver, mut s) = app_log_to_tcp();
    append(&s.log("app.log"), 0..10);
    let mut long = vec![b'x'; 1024 * 1024];
    long.push(b'\n');
    append_bytes(&s.log("app.log"), &long);
    append(&s.log("app.log"), 10..20);
    s.start();
    assert_exactly_once(&receiver, 0..20, &s);
    // 8 KiB maximum (rsyslog's default): 128 pieces, the first 127 counted as split.
    let xs = receiver
        .received
        .text()
        .bytes()
        .filter(|&b| b == b'x')
        .count();
    assert_eq!(xs, 1024 * 1024);
    let status = s.wait_status(|st| st.contains("split=127"));
    assert!(
        status.contains("lines=148/148/148/0") && status.contains("split=127"),
        "{status}"
    );
    s.stop();
    // The checkpoint moved past the long line: a restart sends nothing again.
    s.start();
    std::thread::sleep(Duration::from_millis(1500));
    append(&s.log("app.log"), 20..21);
    assert_exactly_once(&receiver, 0..21, &s);
    s.stop();
}

#[test]
fn case15_lines_written_in_pieces_arrive_whole_and_a_fragment_survives_restart() {
    let (receiver, mut s) = app_log_to_tcp();
    s.start();
    let path = s.log("app.log");
    for n in 0..30u64 {
        let line = format!("{n}.000000\tseq={n}\tsome-longer-field-{n:020}\n");
        let (a, b) = line.split_at(line.len() / 2);
        append_bytes(&path, a.as_bytes());
        std::thread::sleep(Duration::from_millis(5));
        append_bytes(&path, b.as_bytes());
    }
    append_bytes(&path, b"30.0\tseq=30\tfragm");
    receiver.received.wait_all(0..30, T);
    std::thread::sleep(Duration::from_millis(300));
    s.kill9();
    append_bytes(&path, b"ent\n");
    s.start();
    assert_exactly_once(&receiver, 0..31, &s);
    assert!(
        receiver.received.text().contains("seq=30\tfragment\n"),
        "{}",
        receiver.received.text()
    );
    // No fragment was ever sent on its own.
    for line in receiver.received.text().lines() {
        assert!(line.contains("seq="), "fragment sent: {line:?}");
    }
    s.stop();
}

#[test]
fn case10_restart_behind_during_two_rotations_is_exactly_once_across_rotated_files() {
    let (receiver, mut s) = app_log_to_tcp();
    s.start_and_ship(&receiver, "app.log", 0..100);
    // First rotation while running: the shipper knows both files.
    s.rotate("app.log", "app.log.1");
    append(&s.log("app.log"), 100..200);
    receiver.received.wait_all(0..200, T);
    s.kill9_after_checkpoint();
    // While stopped: both files grow, then rotate again (.1 -> .2, current -> .1, new current).
    append(&s.log("app.log.1"), 200..250);
    append(&s.log("app.log"), 250..300);
    s.rotate("app.log.1", "app.log.2");
    s.rotate("app.log", "app.log.1");
    append(&s.log("app.log"), 300..400);
    s.start();
    assert_exactly_once(&receiver, 0..400, &s);
    s.stop();
}

#[test]
fn case08_case12_recreated_file_with_same_header_and_inode_is_read_from_zero() {
    let receiver = Receiver::tcp();
    let mut s = Shipper::new(&[("conn.log", "conn:")], &receiver.action());
    // A small ext4 gives a freed inode to the next new file.
    let Some(_fs) = common::prereq::require_some(
        LoopFs::new(s.dir.path().join("logs.img"), &s.logs),
        "cannot attach and mount a loop device here (needs root)",
    ) else {
        return;
    };
    let inode = |s: &Shipper| fs::metadata(s.log("conn.log")).unwrap().ino();
    let header = "#separator \\x09\n#fields\tts\tuid\n";
    append_bytes(&s.log("conn.log"), header.as_bytes());
    s.start_and_ship(&receiver, "conn.log", 0..50);
    s.stop();
    let first = inode(&s);
    // Same name, same header, the same inode, and larger than the saved offset.
    fs::remove_file(s.log("conn.log")).unwrap();
    append_bytes(&s.log("conn.log"), header.as_bytes());
    append(&s.log("conn.log"), 50..150);
    assert_eq!(inode(&s), first, "ext4 did not reuse the freed inode");
    s.start();
    assert_exactly_once(&receiver, 0..150, &s);
    s.stop();
    // A saved offset beyond the end of a replaced, shorter file is not trusted either.
    s.start();
    std::thread::sleep(Duration::from_millis(500));
    s.stop();
    fs::remove_file(s.log("conn.log")).unwrap();
    append(&s.log("conn.log"), 150..160);
    assert_eq!(inode(&s), first, "ext4 did not reuse the freed inode");
    s.start();
    assert_exactly_once(&receiver, 0..160, &s);
    s.stop();
}

#[test]
fn case07_many_small_files_created_rotated_deleted_keep_state_bounded() {
    let receiver = Receiver::tcp();
    let mut s = Shipper::new(&[("small-*.log", "small:")], &receiver.action());
    s.start();
    let mut seq = 0;
    for round in 0..5 {
        for i in 0..20 {
            append(&s.log(&format!("small-{i}.log")), seq..seq + 1);
            seq += 1;
        }
        receiver.received.wait_all(0..seq, T);
        for i in 0..20 {
            let p = s.log(&format!("small-{i}.log"));
            if round % 2 == 0 {
                fs::rename(&p, s.log(&format!("old-{i}.{round}"))).unwrap();
            } else {
                fs::remove_file(&p).unwrap();
            }
        }
    }
    assert_exactly_once(&receiver, 0..seq, &s);
    // Rotated and deleted files are forgotten once shipped (after the 5 s rotate wait).
    let state = || {
        s.state_files()
            .iter()
            .map(|p| fs::read_to_string(p).unwrap_or_default())
            .collect::<String>()
    };
    let bounded = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(200));
        state().matches("\"id\"").count() == 0
    });
    assert!(bounded, "state still lists files: {}", state());
    s.stop();
}

#[test]
fn case18_zeroed_or_truncated_state_file_recovers_without_loss() {
    // A slow destination, so that the shipper is behind when it is killed below.
    let receiver = Receiver::start_new(
        false,
        Behaviour {
            read_delay: Some(Duration::from_millis(20)),
            ..Default::default()
        },
    );
    let mut s = Shipper::new(&[("app.log", "app:")], &receiver.action());
    s.start_and_ship(&receiver, "app.log", 0..100);
    s.kill9();
    for state in s.state_files() {
        fs::write(&state, [0u8; 64]).unwrap();
    }
    append(&s.log("app.log"), 100..200);
    s.start();
    let tally = receiver.received.wait_all(0..200, T);
    assert!(tally.missing.is_empty(), "{tally:?}");
    assert!(s.output().contains("ignoring state"), "{}", s.output());
    // Killed while behind, the state file then cut in the middle: recovered without loss.
    append(&s.log("app.log"), 200..50_000);
    common::wait_for(T, "the shipper to start on the new lines", || {
        (receiver.messages.load(Ordering::Relaxed) > 300).then_some(())
    });
    s.kill9();
    let behind = receiver.received.tally(0..50_000).missing.len();
    assert!(behind > 0, "everything was shipped before the kill");
    for state in s.state_files() {
        let len = fs::metadata(&state).unwrap().len();
        let file = fs::OpenOptions::new().write(true).open(&state).unwrap();
        file.set_len(len / 2).unwrap();
    }
    s.start();
    let tally = receiver.received.wait_all(0..50_000, T);
    assert!(tally.missing.is_empty(), "{tally:?}\n{}", s.output());
    s.stop();
}

/// Failure case 5 at its scale: 1,000 files rotated at once.
#[test]
fn case05_mass_rotation_of_many_files_loses_nothing() {
    let receiver = Receiver::tcp();
    let mut s = Shipper::new(&[("f*.log", "many:")], &receiver.action());
    s.start();
    rotate_all_at_once(&receiver, &s, 1000);
    s.stop();
}

/// 328 descriptors leave room for 200 open files.
const PRLIMIT_200_FILES: [&str; 3] = ["prlimit", "--nofile=328:328", "--"];

/// Case 5 beyond the descriptor limit: 100 files rotated twice while the scanner starves leave
/// 300 files to read, more than may be open. The rotated files never seen wait (nothing of them
/// is dropped) and are read once the finished ones are closed.
#[test]
fn case05_mass_rotation_beyond_the_open_file_limit_loses_nothing() {
    let receiver = Receiver::tcp();
    let mut s = Shipper::new(&[("f*.log", "many:")], &receiver.action());
    s.start_under(&PRLIMIT_200_FILES);
    let expected = rotate_100_files_twice_while_stopped(&receiver, &s);
    assert_exactly_once(&receiver, expected, &s);
    assert!(
        s.output().contains("open file limit reached"),
        "{}",
        s.output()
    );
    s.stop();
}

/// As above, stopped while the rotated files never seen still wait: they are in the state, and
/// the restart reads them.
#[test]
fn case05_rotated_files_waiting_at_the_open_file_limit_survive_a_restart() {
    let receiver = Receiver::tcp();
    let mut s = Shipper::new(&[("f*.log", "many:")], &receiver.action());
    s.start_under(&PRLIMIT_200_FILES);
    let expected = rotate_100_files_twice_while_stopped(&receiver, &s);
    common::wait_for(T, "the open file limit", || {
        s.output().contains("open file limit reached").then_some(())
    });
    s.stop();
    // The case: files still waited for a descriptor when the shipper stopped.
    let waiting = receiver.received.tally(expected.clone()).missing.len();
    assert!(waiting > 0, "nothing was left waiting at the stop");
    s.start_under(&PRLIMIT_200_FILES);
    assert_exactly_once(&receiver, expected, &s);
    s.stop();
}

/// Ships two lines to each of `f0.log` .. `f99.log`, then with the shipper stopped (SIGSTOP)
/// writes to, and rotates, every file twice (`.1` -> `.2`, current -> `.1`, a new current), and
/// lets it go on. Returns the sequence numbers written.
fn rotate_100_files_twice_while_stopped(receiver: &Receiver, s: &Shipper) -> std::ops::Range<u64> {
    let files = 100u64;
    // Phase p writes two lines to every file: 2 * files * p + 2 * i, and the next.
    let write = |p: u64, name: &dyn Fn(u64) -> String| {
        for i in 0..files {
            let first = 2 * files * p + 2 * i;
            append(&s.log(&name(i)), first..first + 2);
        }
    };
    let each = |f: &dyn Fn(u64)| (0..files).for_each(f);
    write(0, &|i| format!("f{i}.log"));
    receiver.received.wait_all(0..2 * files, T);
    s.signal("STOP");
    write(1, &|i| format!("f{i}.log"));
    each(&|i| s.rotate(&format!("f{i}.log"), &format!("f{i}.log.1")));
    write(2, &|i| format!("f{i}.log"));
    each(&|i| s.rotate(&format!("f{i}.log.1"), &format!("f{i}.log.2")));
    each(&|i| s.rotate(&format!("f{i}.log"), &format!("f{i}.log.1")));
    write(3, &|i| format!("f{i}.log"));
    s.signal("CONT");
    0..8 * files
}

/// A restart with more files to finish than may be open: 150 rotated files in the state, 200 new
/// ones. The saved entries that cannot be opened yet stay in the state and are finished later;
/// none is taken for gone, and the shipper does not run out of descriptors.
#[test]
fn case05_restart_with_more_rotated_files_than_may_be_open_loses_nothing() {
    let receiver = Receiver::tcp();
    let mut s = Shipper::new(&[("f*.log", "many:")], &receiver.action());
    s.start_under(&PRLIMIT_200_FILES);
    for i in 0..150u64 {
        append(&s.log(&format!("f{i}.log")), i..i + 1);
    }
    receiver.received.wait_all(0..150, T);
    s.signal("STOP");
    for i in 0..150u64 {
        s.rotate(&format!("f{i}.log"), &format!("f{i}.log.1"));
    }
    s.signal("CONT");
    s.kill9_after_checkpoint();
    for i in 0..150u64 {
        append(&s.log(&format!("f{i}.log.1")), 150 + i..151 + i);
    }
    for j in 0..200u64 {
        append(&s.log(&format!("f{}.log", 1000 + j)), 300 + j..301 + j);
    }
    s.start_under(&PRLIMIT_200_FILES);
    assert_exactly_once(&receiver, 0..500, &s);
    assert!(
        !s.output().contains("gone from its directory"),
        "{}",
        s.output()
    );
    s.stop();
}

/// Writes `files` files, rotates them all by rename with lines added to both generations, and
/// asserts every line arrives once.
fn rotate_all_at_once(receiver: &Receiver, s: &Shipper, files: u64) {
    for i in 0..files {
        append(&s.log(&format!("f{i}.log")), i * 10..i * 10 + 5);
    }
    std::thread::sleep(Duration::from_millis(200));
    for i in 0..files {
        s.rotate(&format!("f{i}.log"), &format!("f{i}.log.1"));
        append(&s.log(&format!("f{i}.log.1")), i * 10 + 5..i * 10 + 7);
        append(&s.log(&format!("f{i}.log")), i * 10 + 7..i * 10 + 10);
    }
    assert_exactly_once(receiver, 0..files * 10, s);
}

/// The rotate-compress-delete sequence on whatever file system the test runs on. The shipper may
/// still hold the deleted file when the new one is made, so the inode need not be reused here;
/// `case02_case16_inode_reused_on_a_small_ext4_is_read_from_zero` is the variant that reuses it.
#[test]
fn case02_case16_rotate_compress_delete_then_new_file_is_read_from_zero() {
    let (receiver, mut s) = app_log_to_tcp();
    s.start();
    let mut seq = 0;
    for _ in 0..4 {
        append(&s.log("app.log"), seq..seq + 50);
        seq += 50;
        receiver.received.wait_all(0..seq, T);
        // rename, "compress" into a new file, delete: the freed inode is free for the next file.
        s.rotate("app.log", "app.log.1");
        fs::copy(s.log("app.log.1"), s.log("app.log.1.gz")).unwrap();
        fs::remove_file(s.log("app.log.1")).unwrap();
        append(&s.log("app.log"), seq..seq + 1);
        seq += 1;
    }
    assert_exactly_once(&receiver, 0..seq, &s);
    s.stop();
}

/// The losing sequence of the kill -9 rotation tests, made deterministic: a starved scanner (here
/// stopped with SIGSTOP) wakes after two rename rotations, so the middle file was created and
/// rotated away without ever being seen at the input's path. It must be found beside the path.
#[test]
fn two_rename_rotations_while_the_scanner_is_starved_lose_nothing() {
    let (receiver, mut s) = app_log_to_tcp();
    s.start_and_ship(&receiver, "app.log", 0..100);
    s.signal("STOP");
    append(&s.log("app.log"), 100..150);
    s.rotate("app.log", "app.log.1");
    append(&s.log("app.log"), 150..250);
    s.rotate("app.log", "app.log.2");
    append(&s.log("app.log"), 250..300);
    s.signal("CONT");
    assert_exactly_once(&receiver, 0..300, &s);
    s.stop();
}

/// The same for a glob input (case 5 under load in CI): files that came and were rotated away
/// while the scanner starved sit beside new files the glob matches, under names it does not.
#[test]
fn glob_files_created_and_rotated_away_while_the_scanner_is_starved_lose_nothing() {
    let receiver = Receiver::tcp();
    let mut s = Shipper::new(&[("f*.log", "many:")], &receiver.action());
    s.start_and_ship(&receiver, "f0.log", 0..10);
    s.signal("STOP");
    append(&s.log("f0.log"), 10..20);
    s.rotate("f0.log", "f0.log.1");
    append(&s.log("f0.log.1"), 20..25);
    append(&s.log("f0.log"), 25..30);
    // Never seen at all: created and rotated away before the scanner woke.
    append(&s.log("f1.log"), 30..40);
    s.rotate("f1.log", "f1.log.1");
    append(&s.log("f1.log"), 40..50);
    s.signal("CONT");
    assert_exactly_once(&receiver, 0..50, &s);
    s.stop();
}

/// A file renamed to another name the glob matches (Zeek's `conn.<time>.log` under `*.log`) is the
/// same file: it is read on from where it was, not again from the start.
#[test]
fn a_file_renamed_within_a_glob_is_read_on_not_again() {
    let receiver = Receiver::tcp();
    let mut s = Shipper::new(&[("*.log", "zeek:")], &receiver.action());
    s.start_and_ship(&receiver, "conn.log", 0..100);
    s.rotate("conn.log", "conn.2026-11-22-15-00-00.log");
    append(&s.log("conn.2026-11-22-15-00-00.log"), 100..110);
    append(&s.log("conn.log"), 110..150);
    assert_exactly_once(&receiver, 0..150, &s);
    // Renamed while the scanner starves, a new file at the old name: each read once.
    s.signal("STOP");
    s.rotate("conn.log", "conn.2026-11-22-16-00-00.log");
    append(&s.log("conn.log"), 150..160);
    s.signal("CONT");
    assert_exactly_once(&receiver, 0..160, &s);
    std::thread::sleep(Duration::from_secs(1));
    assert_exactly_once(&receiver, 0..160, &s);
    s.stop();
}

/// kill -9, then three rename rotations with appends to every generation while stopped: the known
/// file is finished from its saved offset, the two never seen are read whole, the new one too.
#[test]
fn kill9_then_three_rename_rotations_with_appends_to_each_generation_lose_nothing() {
    let (receiver, mut s) = app_log_to_tcp();
    s.start_and_ship(&receiver, "app.log", 0..100);
    s.kill9_after_checkpoint();
    let mut seq = 100;
    for k in 1..=3 {
        append(&s.log("app.log"), seq..seq + 100);
        seq += 100;
        s.rotate("app.log", &format!("app.log.{k}"));
        append(&s.log(&format!("app.log.{k}")), seq..seq + 10);
        seq += 10;
    }
    append(&s.log("app.log"), seq..seq + 50);
    seq += 50;
    s.start();
    assert_exactly_once(&receiver, 0..seq, &s);
    s.stop();
}

/// As above, but the starved scanner last looked while the path was absent (just renamed away,
/// the next file not yet created), right after a restart: no open file at the path is seen
/// rotated, yet a whole file came and went before the next look.
#[test]
fn a_file_created_and_rotated_away_between_the_first_two_scans_after_a_restart_is_read() {
    let (receiver, mut s) = app_log_to_tcp();
    s.start_and_ship(&receiver, "app.log", 0..100);
    s.kill9_after_checkpoint();
    append(&s.log("app.log"), 100..150);
    s.rotate("app.log", "app.log.1");
    s.start();
    receiver.received.wait_all(0..150, T); // the first scan found app.log.1; app.log is absent
    s.signal("STOP");
    append(&s.log("app.log"), 150..250);
    s.rotate("app.log", "app.log.2");
    append(&s.log("app.log"), 250..300);
    s.signal("CONT");
    assert_exactly_once(&receiver, 0..300, &s);
    s.stop();
}

/// An ext4 image attached to a loop device and mounted at a directory; detached when dropped.
struct LoopFs {
    image: PathBuf,
    at: PathBuf,
    devices: Vec<String>,
}

impl LoopFs {
    /// `None` where loop devices cannot be used (not root, no loop support).
    fn new(image: PathBuf, at: &Path) -> Option<LoopFs> {
        let made = Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(&image)
            .arg("8M")
            .status()
            .is_ok_and(|s| s.success());
        let mut fs = LoopFs {
            image,
            at: at.to_owned(),
            devices: Vec::new(),
        };
        (made && fs.mount_again()).then_some(fs)
    }

    /// Unmounts (if mounted) and mounts the image through a new loop device: the file system
    /// comes back with the same inodes under another device id, as a remounted NFS share does.
    fn mount_again(&mut self) -> bool {
        self.remount(&[], || {})
    }

    /// As [`LoopFs::mount_again`], detaching the old mount lazily: open files stay readable.
    fn remount_lazily(&mut self) -> bool {
        self.remount(&["-l"], || {})
    }

    /// As [`LoopFs::remount_lazily`], running `while_away` while nothing is mounted.
    fn remount_lazily_after(&mut self, while_away: impl FnOnce()) -> bool {
        self.remount(&["-l"], while_away)
    }

    fn remount(&mut self, umount_flags: &[&str], while_away: impl FnOnce()) -> bool {
        if !self.devices.is_empty() {
            // What was written reaches the image, as it reaches an NFS server.
            assert!(Command::new("sync")
                .arg("-f")
                .arg(&self.at)
                .status()
                .unwrap()
                .success());
            let umount = Command::new("umount")
                .args(umount_flags)
                .arg(&self.at)
                .status();
            assert!(umount.unwrap().success(), "umount {}", self.at.display());
        }
        while_away();
        let Ok(out) = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(&self.image)
            .output()
        else {
            return false;
        };
        let device = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !out.status.success() || device.is_empty() {
            return false;
        }
        self.devices.push(device.clone());
        Command::new("mount")
            .arg(&device)
            .arg(&self.at)
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.at).status();
        for device in &self.devices {
            let _ = Command::new("losetup").args(["-d", device]).status();
        }
    }
}

/// Failure case 17: a network share (here a loop-mounted ext4, the stand-in CI can run) is
/// mounted again while the shipper is stopped and comes back under another device id. Identity
/// does not hang on the device id alone: nothing is sent again, nothing is lost.
#[test]
fn case17_remount_under_a_new_device_id_sends_nothing_again() {
    let (receiver, mut s) = app_log_to_tcp();
    let Some(mut fs) = common::prereq::require_some(
        LoopFs::new(s.dir.path().join("logs.img"), &s.logs),
        "cannot attach and mount a loop device here (needs root)",
    ) else {
        return;
    };
    let device = |s: &Shipper| fs::metadata(s.log("app.log")).unwrap().dev();
    s.start_and_ship(&receiver, "app.log", 0..100);
    let before = device(&s);
    s.stop();
    assert!(fs.mount_again(), "mount through a second loop device");
    assert_ne!(device(&s), before, "the remount kept the device id");
    append(&s.log("app.log"), 100..150);
    s.start();
    assert_exactly_once(&receiver, 0..150, &s);
    std::thread::sleep(Duration::from_millis(500));
    assert_exactly_once(&receiver, 0..150, &s);
    assert!(s.output().contains("device id changed"), "{}", s.output());
    s.stop();
    drop(fs);
}

/// Case 17 while running: the share is detached (lazily, as a stale NFS mount goes) and mounted
/// again under another device id while the shipper reads it. The file is read on, not again.
#[test]
fn case17_remount_while_running_reads_on_without_sending_again() {
    let (receiver, mut s) = app_log_to_tcp();
    let Some(mut fs) = common::prereq::require_some(
        LoopFs::new(s.dir.path().join("logs.img"), &s.logs),
        "cannot attach and mount a loop device here (needs root)",
    ) else {
        return;
    };
    s.start_and_ship(&receiver, "app.log", 0..100);
    assert!(fs.remount_lazily(), "mount through a second loop device");
    append(&s.log("app.log"), 100..150);
    assert_exactly_once(&receiver, 0..150, &s);
    std::thread::sleep(Duration::from_millis(500));
    assert_exactly_once(&receiver, 0..150, &s);
    assert!(s.output().contains("device id changed"), "{}", s.output());
    s.stop();
    drop(fs);
}

/// Case 17 with the share away long enough for the shipper to see the file gone: when it comes
/// back under a new device id with the same inode and content, it is read on, not read again.
#[test]
fn case17_a_share_away_for_a_look_comes_back_without_sending_again() {
    let (receiver, mut s) = app_log_to_tcp();
    let Some(mut fs) = common::prereq::require_some(
        LoopFs::new(s.dir.path().join("logs.img"), &s.logs),
        "cannot attach and mount a loop device here (needs root)",
    ) else {
        return;
    };
    s.start_and_ship(&receiver, "app.log", 0..100);
    let back = fs.remount_lazily_after(|| {
        common::wait_for(T, "the file seen gone", || {
            s.output()
                .contains("file rotated away or deleted")
                .then_some(())
        });
    });
    assert!(back, "mount through a second loop device");
    append(&s.log("app.log"), 100..150);
    assert_exactly_once(&receiver, 0..150, &s);
    s.stop();
    drop(fs);
}

/// Failure case 19 for a shipper whose buffer is the file itself: the disk holding its state is
/// full. It starts (after a crash too), keeps shipping and says so once; what it could not save
/// is sent again after a crash (duplicates, never loss). Once space returns it saves again, and
/// a crash then repeats nothing.
#[test]
fn case19_state_disk_full_keeps_shipping_and_a_restart_loses_nothing() {
    let (receiver, mut s) = app_log_to_tcp();
    let Some(_fs) = common::prereq::require_some(
        common::Tmpfs::mount(&s.work, "1m"),
        "cannot mount a tmpfs here (needs root)",
    ) else {
        return;
    };
    let filler = s.work.join("filler");
    let mut fill = fs::File::create(&filler).unwrap();
    while std::io::Write::write_all(&mut fill, &[0; 4096]).is_ok() {}
    drop(fill);
    s.start_and_ship(&receiver, "app.log", 0..100);
    append(&s.log("app.log"), 100..200);
    let tally = receiver.received.wait_all(0..200, T);
    assert!(tally.missing.is_empty(), "{tally:?}\n{}", s.output());
    s.kill9();
    s.start();
    append(&s.log("app.log"), 200..250);
    let tally = receiver.received.wait_all(0..250, T);
    assert!(tally.missing.is_empty(), "{tally:?}\n{}", s.output());
    assert_eq!(
        s.output().matches("state not saved").count(),
        2,
        "once per run:\n{}",
        s.output()
    );

    fs::remove_file(&filler).unwrap();
    append(&s.log("app.log"), 250..300);
    common::wait_for(T, "a save after space returned", || {
        s.output().contains("state saved again").then_some(())
    });
    receiver.received.wait_all(0..300, T);
    s.kill9_after_checkpoint();
    append(&s.log("app.log"), 300..350);
    s.start();
    let tally = receiver.received.wait_all(0..350, T);
    assert!(
        tally.missing.is_empty() && tally.unexpected.is_empty(),
        "{tally:?}"
    );
    let after = receiver.received.tally(250..350);
    assert!(
        after.duplicated.is_empty(),
        "repeated after space returned: {after:?}"
    );
    s.stop();
}

/// Failure cases 2 and 16 on a small ext4, where a freed inode is given to the next file: once the
/// rotated file is shipped and closed, it is compressed and deleted, and the file created at the
/// next rotation reuses its inode. It is read from the start, exactly once.
#[test]
fn case02_case16_inode_reused_on_a_small_ext4_is_read_from_zero() {
    let (receiver, mut s) = app_log_to_tcp();
    let Some(_fs) = common::prereq::require_some(
        LoopFs::new(s.dir.path().join("logs.img"), &s.logs),
        "cannot attach and mount a loop device here (needs root)",
    ) else {
        return;
    };
    s.start_and_ship(&receiver, "app.log", 0..50);
    let inode = |name: &str| fs::metadata(s.log(name)).unwrap().ino();
    let first = inode("app.log");
    s.rotate("app.log", "app.log.1");
    append(&s.log("app.log"), 50..100);
    receiver.received.wait_all(0..100, T);
    // The shipper closes a rotated file some seconds after it has shipped all of it.
    common::wait_for(Duration::from_secs(20), "the rotated file closed", || {
        s.output().contains("finished rotated file").then_some(())
    });
    fs::copy(s.log("app.log.1"), s.log("app.log.1.gz")).unwrap();
    fs::remove_file(s.log("app.log.1")).unwrap();
    // The inode is free once no reader holds the file any more.
    let_go(&s, &s.log("app.log.1"));
    s.rotate("app.log", "app.log.1");
    append(&s.log("app.log"), 100..150);
    assert_eq!(
        inode("app.log"),
        first,
        "ext4 did not reuse the freed inode"
    );
    assert_exactly_once(&receiver, 0..150, &s);
    s.stop();
}

/// A copytruncate seen by the readers of two destinations: the first report moves the old
/// content to the copy; the second, about a descriptor no longer held, changes nothing. Each
/// destination gets every line once.
#[test]
fn case04_copytruncate_read_by_two_destinations_is_sent_once_to_each() {
    let (one, two) = (Receiver::tcp(), Receiver::tcp());
    let mut s = Shipper::toml(
        &[("app.log", "app:")],
        "",
        &[one.destination("one"), two.destination("two")],
    );
    s.start_and_ship(&one, "app.log", 0..1000);
    two.received.wait_all(0..1000, T);
    fs::copy(s.log("app.log"), s.log("app.log.1")).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(s.log("app.log"))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    append(&s.log("app.log"), 1000..1010);
    for receiver in [&one, &two] {
        assert_exactly_once(receiver, 0..1010, &s);
    }
    std::thread::sleep(Duration::from_millis(1000));
    for receiver in [&one, &two] {
        assert_exactly_once(receiver, 0..1010, &s);
    }
    s.stop();
}

/// `start_at = "end"` is where tailing begins on a first run. A file that comes while the
/// shipper is stopped is read whole after the restart.
#[test]
fn start_at_end_applies_to_the_first_run_only() {
    let receiver = Receiver::tcp();
    let mut s = Shipper::toml(
        &[("*.log", "app:")],
        "start_at = \"end\"\n",
        &[receiver.destination("tcp")],
    );
    append(&s.log("old.log"), 1000..1010);
    s.start();
    common::wait_for(T, "the first scan", || {
        s.output().contains("new file").then_some(())
    });
    append(&s.log("old.log"), 0..10);
    receiver.received.wait_all(0..10, T);
    s.kill9_after_checkpoint();
    append(&s.log("new.log"), 10..20);
    s.start();
    assert_exactly_once(&receiver, 0..20, &s);
    s.stop();
}

/// A writer still appending to the rotated file (logrotate's `create` before the HUP), then a
/// restart: the finished file is remembered in the state and not read again; and lines written
/// to it after it was closed are read from where it ended, while running and across a restart.
#[test]
fn a_finished_rotated_file_is_not_read_again_and_late_lines_in_it_are_read_once() {
    let (receiver, mut s) = app_log_to_tcp();
    s.start_and_ship(&receiver, "app.log", 0..100);
    s.rotate("app.log", "app.log.1");
    append(&s.log("app.log"), 100..110);
    receiver.received.wait_all(0..110, T);
    append(&s.log("app.log.1"), 110..120);
    let closed = |s: &Shipper, times: usize| {
        common::wait_for(Duration::from_secs(20), "the rotated file closed", || {
            (s.output().matches("finished rotated file").count() >= times).then_some(())
        })
    };
    closed(&s, 1);
    // Written after the file was closed (the few milliseconds before a reader lets go of its
    // descriptor are not covered: lines written then may be sent twice).
    let_go(&s, &s.log("app.log.1"));
    append(&s.log("app.log.1"), 120..130);
    append(&s.log("app.log"), 130..140);
    assert_exactly_once(&receiver, 0..140, &s);
    closed(&s, 2);
    s.stop();
    s.start();
    append(&s.log("app.log"), 140..150);
    assert_exactly_once(&receiver, 0..150, &s);
    std::thread::sleep(Duration::from_millis(1000));
    assert_exactly_once(&receiver, 0..150, &s);
    s.stop();
}

/// Waits until the shipper holds no descriptor of `path` (deleted or not).
fn let_go(s: &Shipper, path: &Path) {
    let pid = s.daemon.as_ref().expect("shipper running").pid();
    let deleted = format!("{} (deleted)", path.display());
    common::wait_for(Duration::from_secs(20), "the shipper to let go", || {
        let fds = fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
        let held = fds
            .flatten()
            .filter_map(|fd| fs::read_link(fd.path()).ok())
            .any(|target| target == path || target.to_string_lossy() == deleted);
        (!held).then_some(())
    });
}

/// Inputs that cannot be tailed, a FIFO and a symbolic link loop, are reported once each, in the
/// log and in `estuary status`, while the regular file beside them is shipped.
#[test]
fn a_fifo_and_a_symlink_loop_among_the_inputs_are_reported_once_in_log_and_status() {
    let receiver = Receiver::tcp();
    let mut s = Shipper::new(&[("*.log", "zeek:")], &receiver.action());
    let fifo = s.log("pipe.log");
    let made = Command::new("mkfifo").arg(&fifo).status();
    assert!(
        made.is_ok_and(|st| st.success()),
        "mkfifo {}",
        fifo.display()
    );
    std::os::unix::fs::symlink("loop.log", s.log("loop.log")).unwrap();
    s.start_and_ship(&receiver, "app.log", 0..10);
    let reported = |st: &str| st.contains("pipe.log") && st.contains("loop.log");
    let status = s.wait_status(reported);
    assert!(
        status.contains(&format!("input {}: is a FIFO", fifo.display())),
        "{status}"
    );
    assert!(
        status.contains(&format!(
            "input {}: cannot be read: Too many levels of symbolic links",
            s.log("loop.log").display()
        )),
        "{status}"
    );
    // Two rotations, each found by another look at the inputs, which reports nothing again.
    for k in 1..=2 {
        s.rotate("app.log", &format!("app.log.{k}"));
        append(&s.log("app.log"), 10 * k..10 * k + 10);
        receiver.received.wait_all(0..10 * k + 10, T);
    }
    let log = s.output();
    assert_eq!(log.matches("input not read").count(), 2, "{log}");
    assert_exactly_once(&receiver, 0..30, &s);
    s.stop();
}
