//! `estuary aggregate` stops on SIGTERM within a bounded time in every state (idle, a RELP
//! client sending, the disk below the hard floor or full with a sender connected, rotation
//! failing), and the hard floor holds against a burst that arrives between two looks at the
//! disk. Each test prints the time the stop took (`--nocapture`).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::relp::Relp;
use common::*;

/// Longer than any clean stop takes, far shorter than systemd's 90 s before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(15);
const WAIT: Duration = Duration::from_secs(10);

fn stops_cleanly(agg: &mut Aggregator) {
    let sent = std::time::Instant::now();
    let status = agg.daemon.terminate(STOP_GRACE);
    // The figure for the record (`--nocapture`); the bound is STOP_GRACE.
    let test = std::thread::current();
    eprintln!(
        "{}: exited {:?} after SIGTERM",
        test.name().unwrap_or("stop"),
        sent.elapsed()
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "no clean exit within {STOP_GRACE:?} of SIGTERM ({status:?}):\n{}",
        agg.daemon.output()
    );
}

fn origin_msg(seq: u64) -> Vec<u8> {
    format!(
        "<190>1 2026-11-22T12:00:00Z sensor1 bro_conn - - [origin@32473 file=\"00000000000000ab\" off=\"{}\"] seq={seq}\tx",
        seq * 100
    )
    .into_bytes()
}

/// Nothing connected, nothing sent.
#[test]
fn sigterm_when_idle() {
    let dir = tempfile::tempdir().unwrap();
    let relp = free_tcp_port();
    let mut agg = Aggregator::start(dir.path(), &format!("ListenRELP = 127.0.0.1:{relp}\n"));
    wait_for(WAIT, "the first status", || {
        agg.status().is_object().then_some(())
    });
    stops_cleanly(&mut agg);
}

/// A RELP client that keeps its session open and sends, whether or not it is answered; stops
/// when the aggregator closes the session. Returns once the session is open.
fn relp_sender(relp: u16) -> std::thread::JoinHandle<()> {
    let (opened, is_open) = std::sync::mpsc::channel();
    let sender = std::thread::spawn(move || {
        let mut client = Relp::connect(relp);
        let _ = opened.send(());
        for seq in 0..1_000_000u64 {
            client.send("syslog", &origin_msg(seq));
            if seq % 100 == 99 && client.try_read_rsp().is_none() {
                return;
            }
        }
    });
    is_open.recv_timeout(WAIT).expect("the RELP session opened");
    sender
}

/// A RELP client keeps sending: SIGTERM ends its session at once and the daemon exits; every
/// line it had acknowledged is in the log, once.
#[test]
fn sigterm_with_a_relp_client_sending() {
    let dir = tempfile::tempdir().unwrap();
    let relp = free_tcp_port();
    let mut agg = Aggregator::start(dir.path(), &format!("ListenRELP = 127.0.0.1:{relp}\n"));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let client = {
        let acked = acked.clone();
        std::thread::spawn(move || {
            let mut client = Relp::connect(relp);
            for seq in 0..1_000_000u64 {
                let txnr = client.send("syslog", &origin_msg(seq));
                match client.try_read_rsp() {
                    Some((t, answer)) if t == txnr && answer == "200 OK" => {
                        acked.lock().unwrap().push(seq)
                    }
                    _ => return,
                }
            }
        })
    };
    wait_for(WAIT, "200 acknowledged lines", || {
        (acked.lock().unwrap().len() >= 200).then_some(())
    });
    stops_cleanly(&mut agg);
    client.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    let counts = count_sequence_numbers(&agg.current("conn.log"));
    let missing: Vec<_> = acked.iter().filter(|s| !counts.contains_key(s)).collect();
    assert!(missing.is_empty(), "acknowledged, not written: {missing:?}");
    assert!(counts.values().all(|n| *n == 1), "a line written twice");
}

/// Below the hard floor the writer holds messages while a RELP sender waits for its answers;
/// SIGTERM still stops it.
#[test]
fn sigterm_below_the_disk_floor() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = prereq::require_some(
        Tmpfs::mount(&dir.path().join("fs"), "4m"),
        "cannot mount a tmpfs here (needs root); stop below the floor not tested",
    ) else {
        return;
    };
    std::fs::write(fs.path().join("filler"), vec![0u8; 2600 * 1024]).unwrap();
    let relp = free_tcp_port();
    let mut agg = Aggregator::start(
        fs.path(),
        &format!("MinDiskSpace = 0\nDiskHardFloor = 50\nListenRELP = 127.0.0.1:{relp}\n"),
    );
    let frames: Vec<u8> = (0..100u64)
        .flat_map(|seq| octet_frame("s1", "bro_conn", &format!("seq={seq}\tx")))
        .collect();
    send_tcp(agg.tcp, &frames);
    wait_for(WAIT, "the writer paused at the floor", || {
        (agg.status()["disk_paused"] == true).then_some(())
    });
    let sender = relp_sender(relp);
    stops_cleanly(&mut agg);
    sender.join().unwrap();
}

/// The disk is full (no floor to stop the writer first): writes fail while a RELP sender waits
/// for its answers; SIGTERM still stops the daemon, with exit status 0 (the last statistics
/// write failing is logged, not an error).
#[test]
fn sigterm_with_the_disk_full() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = prereq::require_some(
        Tmpfs::mount(&dir.path().join("fs"), "4m"),
        "cannot mount a tmpfs here (needs root); stop with the disk full not tested",
    ) else {
        return;
    };
    let relp = free_tcp_port();
    let mut agg = Aggregator::start(
        fs.path(),
        &format!("MinDiskSpace = 0\nDiskHardFloor = 0\nListenRELP = 127.0.0.1:{relp}\n"),
    );
    let filler = fs.path().join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let block = vec![0u8; 64 * 1024];
    while std::io::Write::write_all(&mut file, &block).is_ok() {}
    drop(file);
    let sender = relp_sender(relp);
    wait_for(WAIT, "a write failing on the full disk", || {
        let output = agg.daemon.output();
        output.contains("No space left").then_some(())
    });
    let sent = std::time::Instant::now();
    let status = agg.daemon.terminate(STOP_GRACE);
    let output = agg.daemon.output();
    let last: Vec<&str> = output.lines().rev().take(3).collect();
    eprintln!(
        "sigterm_with_the_disk_full: exited {:?} after SIGTERM ({status:?}); last lines: {last:?}",
        sent.elapsed()
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "no clean exit within {STOP_GRACE:?} of SIGTERM ({status:?}):\n{}",
        agg.daemon.output()
    );
    assert!(
        output.contains("cannot write statistics"),
        "the failed last statistics write is logged:\n{output}"
    );
    sender.join().unwrap();
}

/// Rotation fails and is retried (the rotated folder is gone, a file in its place); SIGTERM
/// still stops the daemon, and the log stays current for the next start.
#[test]
fn sigterm_while_rotation_fails() {
    let dir = tempfile::tempdir().unwrap();
    let mut agg = Aggregator::start(dir.path(), "LogRotationInterval = 1\n");
    let rotated = agg.log_dir.join("current/.rotated");
    // The folders may not be made yet; either way a file takes the rotated folder's place.
    std::fs::create_dir_all(agg.log_dir.join("current")).unwrap();
    match std::fs::remove_dir_all(&rotated) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("{e}"),
        _ => {}
    }
    std::fs::write(&rotated, "in the way").unwrap();
    send_tcp(agg.tcp, &octet_frame("s1", "bro_conn", "seq=0\tx"));
    wait_for(WAIT, "a failed rotation", || {
        agg.daemon
            .output()
            .contains("rotation failed")
            .then_some(())
    });
    stops_cleanly(&mut agg);
    assert_eq!(agg.current("conn.log"), "seq=0\tx\n");
}

/// Free space of the file system holding `path`, in percent (as `df` counts it).
fn free_percent(path: &std::path::Path) -> f64 {
    let out = std::process::Command::new("stat")
        .args(["-f", "-c", "%a %b"])
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut numbers = text.split_whitespace().map(|n| n.parse::<f64>().unwrap());
    let (available, total) = (numbers.next().unwrap(), numbers.next().unwrap());
    available * 100.0 / total
}

/// A burst larger than the room above the floor, arriving faster than the once-a-second look
/// at the disk: the writer counts what it wrote and stops near the floor, not far below it.
#[test]
fn a_burst_does_not_overshoot_the_disk_floor() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = prereq::require_some(
        Tmpfs::mount(&dir.path().join("fs"), "8m"),
        "cannot mount a tmpfs here (needs root); floor overshoot not tested",
    ) else {
        return;
    };
    let mut agg = Aggregator::start(fs.path(), "MinDiskSpace = 0\nDiskHardFloor = 40\n");
    let pad = "x".repeat(1000);
    let frames: Vec<u8> = (0..7000u64)
        .flat_map(|seq| octet_frame("s1", "bro_conn", &format!("seq={seq}\t{pad}")))
        .collect();
    send_tcp(agg.tcp, &frames);
    wait_for(WAIT, "the writer paused at the floor", || {
        (agg.status()["disk_paused"] == true).then_some(())
    });
    let free = free_percent(fs.path());
    assert!(
        free >= 35.0,
        "free space fell to {free:.1} % with a floor of 40 %"
    );
    stops_cleanly(&mut agg);
}
