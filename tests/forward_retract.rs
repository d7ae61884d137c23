//! The aggregator flushes its current files before it commits them, so the forwarder can read
//! bytes a crash then takes back: a restarted aggregator cuts each current file back to its
//! committed length. The forwarder reads on from that cut instead of sending the whole file
//! again: duplicates at the SIEM are bounded by the bytes cut back, and every committed line
//! arrives.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;

fn frames(seqs: std::ops::Range<u64>) -> Vec<u8> {
    seqs.flat_map(|i| {
        octet_frame(
            "sensor1",
            "bro_conn",
            &format!("{i}.000000\tseq={i}\tbro_conn\t\t-"),
        )
    })
    .collect()
}

/// `text` without terminal colour codes (`ESC [ ... m`).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            chars.by_ref().find(|&c| c == 'm');
        } else {
            out.push(c);
        }
    }
    out
}

/// The bytes cut back, as the forwarder logged them (`from=.. to=..`).
fn retracted(output: &str) -> u64 {
    let output = plain(output);
    let field = |line: &str, name: &str| -> Option<u64> {
        let at = line.find(&format!(" {name}="))? + name.len() + 2;
        line[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    output
        .lines()
        .filter(|l| l.contains("file cut back"))
        .filter_map(|l| Some(field(l, "from")? - field(l, "to")?))
        .sum()
}

#[test]
fn a_crashed_aggregator_cut_back_is_not_forwarded_again_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let (port, got) = common::line_sink::line_sink();
    let agg = Aggregator::start(dir.path(), &format!("ForwardTo = tcp://127.0.0.1:{port}\n"));
    let forward = Daemon::estuary(
        "forward",
        &["forward", "--config", agg.config.to_str().unwrap()],
        dir.path(),
    );
    let seqs_at_siem = || count_sequence_numbers(&String::from_utf8_lossy(&got.lock().unwrap()));
    send_tcp(agg.tcp, &frames(0..20_000));
    agg.wait_lines("conn.log", 20_000, Duration::from_secs(60));
    wait_for(
        Duration::from_secs(60),
        "the first lines at the SIEM",
        || (seqs_at_siem().range(0..20_000).count() >= 20_000).then_some(()),
    );

    // Killed mid-stream; then the flushed but uncommitted tail a crash leaves, which the
    // forwarder reads before the restart takes it back.
    let sender = {
        let (tcp, burst) = (agg.tcp, frames(20_000..60_000));
        // The kill breaks the connection: the send may fail.
        std::thread::spawn(move || send_tcp(tcp, &burst))
    };
    std::thread::sleep(Duration::from_millis(50)); // let part of the burst in
    let mut agg = agg;
    agg.daemon.kill9();
    let _ = sender.join();
    let current = agg.log_dir.join("current/conn.log");
    let tail: String = (900_000..900_100)
        .map(|i| format!("{i}.000000\tseq={i}\tbro_conn\t\t-\n"))
        .collect();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&current)
        .unwrap()
        .write_all(tail.as_bytes())
        .unwrap();
    wait_for(
        Duration::from_secs(30),
        "the uncommitted tail at the SIEM",
        || (seqs_at_siem().range(900_000..900_100).count() == 100).then_some(()),
    );
    let agg = agg.restart();
    send_tcp(agg.tcp, &frames(100_000..110_000));
    let committed = wait_for(Duration::from_secs(60), "the new lines committed", || {
        let c = count_sequence_numbers(&read_aggregator_logs(&agg.log_dir));
        (c.range(100_000..110_000).count() == 10_000).then_some(c)
    });
    let counts = wait_for(
        Duration::from_secs(60),
        "every committed line at the SIEM",
        || {
            let at = seqs_at_siem();
            committed.keys().all(|s| at.contains_key(s)).then_some(at)
        },
    );

    let output = forward.output();
    let cut = retracted(&output);
    let shortest = "0.000000\tseq=0\tbro_conn\t\t-\n".len() as u64;
    let duplicated: u64 = counts
        .values()
        .map(|&n| u64::from(n.saturating_sub(1)))
        .sum();
    eprintln!(
        "committed {} lines, {cut} bytes cut back, {duplicated} duplicates",
        committed.len()
    );
    assert!(
        duplicated <= cut / shortest,
        "duplicates beyond the cut: {duplicated} lines for {cut} bytes"
    );
    assert!(cut >= tail.len() as u64, "the cut was noticed: {cut} bytes");
    assert!(
        committed.len() >= 30_000,
        "a whole file's worth was at stake"
    );
}

/// The same cut made while the forwarder was stopped: its saved offset lies past the file's end,
/// and it resumes from the cut instead of reading the file again.
#[test]
fn a_cut_made_while_the_forwarder_was_stopped_is_resumed_from() {
    let dir = tempfile::tempdir().unwrap();
    let (port, got) = common::line_sink::line_sink();
    let mut agg = Aggregator::start(dir.path(), &format!("ForwardTo = tcp://127.0.0.1:{port}\n"));
    let forward_args = ["forward", "--config", agg.config.to_str().unwrap()].map(str::to_owned);
    let forward_args: Vec<&str> = forward_args.iter().map(String::as_str).collect();
    let mut forward = Daemon::estuary("forward", &forward_args, dir.path());
    let seqs_at_siem = || count_sequence_numbers(&String::from_utf8_lossy(&got.lock().unwrap()));
    send_tcp(agg.tcp, &frames(0..20_000));
    agg.wait_lines("conn.log", 20_000, Duration::from_secs(60));

    agg.daemon.kill9();
    let tail: String = (900_000..900_100)
        .map(|i| format!("{i}.000000\tseq={i}\tbro_conn\t\t-\n"))
        .collect();
    std::fs::OpenOptions::new()
        .append(true)
        .open(agg.log_dir.join("current/conn.log"))
        .unwrap()
        .write_all(tail.as_bytes())
        .unwrap();
    wait_for(Duration::from_secs(60), "every line at the SIEM", || {
        (seqs_at_siem().len() == 20_100).then_some(())
    });
    assert!(forward.terminate(Duration::from_secs(20)).is_some());
    let agg = agg.restart();
    // Back before the aggregator wrote past the saved offset: a file grown again past it cannot
    // be told from new content, and is read again from the start.
    let forward = Daemon::estuary("forward-again", &forward_args, dir.path());
    wait_for(
        Duration::from_secs(30),
        "the resumed forwarder to see the cut",
        || (retracted(&forward.output()) > 0).then_some(()),
    );
    send_tcp(agg.tcp, &frames(100_000..101_000));
    let counts = wait_for(Duration::from_secs(60), "the new lines at the SIEM", || {
        let at = seqs_at_siem();
        (at.range(100_000..101_000).count() == 1000).then_some(at)
    });

    let cut = retracted(&forward.output());
    let duplicated: u64 = counts
        .values()
        .map(|&n| u64::from(n.saturating_sub(1)))
        .sum();
    let shortest = "0.000000\tseq=0\tbro_conn\t\t-\n".len() as u64;
    assert!(
        duplicated <= cut / shortest,
        "duplicates beyond the cut: {duplicated} lines for {cut} bytes"
    );
    assert_eq!(cut, tail.len() as u64, "the saved offset was moved back");
    assert_eq!(counts.len(), 21_100, "every line once");
}
