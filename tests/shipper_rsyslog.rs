//! The shipper against real rsyslog receivers on 127.0.0.1: the seed's imfile block verbatim
//! (UDP), plain TCP with rsyslog's tab escaping off, and RELP into `imrelp`, including an rsyslog
//! restart in the middle. Lines are counted by sequence number in rsyslog's output file.

mod common;
mod shipper_support;

use std::fs;
use std::path::Path;
use std::thread;
use std::time::Duration;

use common::{free_tcp_port, free_udp_port, start_rsyslog, Daemon};
use shipper_support::{append, wait_for_file_lines, RsyslogSink, Shipper};

fn seqs_by_tag(text: &str, tag: &str) -> Vec<u64> {
    let re = regex::Regex::new(r"\bseq=(\d+)\b").unwrap();
    let mut out: Vec<u64> = text
        .lines()
        .filter(|l| l.starts_with(tag))
        .filter_map(|l| re.captures(l).map(|c| c[1].parse().unwrap()))
        .collect();
    out.sort();
    out
}

fn start_shipper(dir: &Path, conf: &Path) -> Daemon {
    let conf = conf.to_string_lossy().into_owned();
    Daemon::estuary("shipper", &["ship", "--config", &conf], dir)
}

#[test]
fn seed_config_verbatim_ships_all_six_zeek_logs_to_rsyslog_over_udp() {
    let sink = RsyslogSink::new(free_udp_port());
    let (dir, port, out) = (&sink.dir, sink.port, &sink.out);
    let logdir = dir.path().join("logs");
    let rundir = dir.path().join("run");
    fs::create_dir_all(&logdir).unwrap();
    fs::create_dir_all(&rundir).unwrap();
    let config = sink.config("", "load=\"imudp\"", "imudp", " rcvbufSize=\"8m\"");
    let _rsyslog = start_rsyslog("rsyslog", dir.path(), &config);
    common::wait_for_udp_bound(port, Duration::from_secs(30));
    let template =
        fs::read_to_string(common::fixtures().join("shipper/seed-60-bro-loopback.conf")).unwrap();
    let conf = dir.path().join("60-bro.conf");
    fs::write(
        &conf,
        template
            .replace("{logdir}", &logdir.to_string_lossy())
            .replace("{rundir}", &rundir.to_string_lossy())
            .replace("{port}", &port.to_string()),
    )
    .unwrap();
    let names = ["ssl", "smtp", "smtp_entities", "notice", "ssh", "ftp"];
    for name in names {
        append(&logdir.join(format!("{name}.log")), 0..10);
    }
    let mut shipper = start_shipper(dir.path(), &conf);
    // The first ten lines of each file have arrived: the shipper tails them all.
    wait_for_file_lines(out, 60);
    for chunk in 1..5u64 {
        for name in names {
            append(
                &logdir.join(format!("{name}.log")),
                chunk * 10..chunk * 10 + 10,
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
    // UDP has no flow control: write at a steady pace, as a sensor does.
    for chunk in 0..5u64 {
        for name in names {
            append(
                &logdir.join(format!("{name}.log")),
                50 + chunk * 10..60 + chunk * 10,
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
    let text = wait_for_file_lines(out, 600);
    for name in names {
        let got = seqs_by_tag(&text, &format!("bro_{name}:"));
        assert_eq!(
            got,
            (0..100).collect::<Vec<_>>(),
            "bro_{name}: {} lines\n{}",
            got.len(),
            shipper.output()
        );
    }
    // The tab-separated Zeek fields arrive intact.
    assert!(
        text.contains("\tseq=7\tC00000000000000007\t10.0.0.1\t443\ttcp\n"),
        "{text}"
    );
    assert!(shipper
        .terminate(Duration::from_secs(10))
        .is_some_and(|s| s.success()));
}

#[test]
fn tcp_to_rsyslog_imtcp_keeps_every_line_and_its_tabs() {
    let sink = RsyslogSink::new(free_tcp_port());
    let (port, out) = (sink.port, &sink.out);
    let _rsyslog = sink.start_tcp("rsyslog", &sink.config("", "load=\"imtcp\"", "imtcp", ""));
    let mut s = Shipper::new(&[("conn.log", "bro_conn:")], &format!("@@127.0.0.1:{port}"));
    append(&s.log("conn.log"), 0..5000);
    s.start();
    let text = wait_for_file_lines(out, 5000);
    assert_eq!(
        seqs_by_tag(&text, "bro_conn:"),
        (0..5000).collect::<Vec<_>>()
    );
    assert!(
        text.contains("\tseq=4999\tC00000000000004999\t"),
        "tabs escaped?"
    );
    s.stop();
}

#[test]
fn relp_to_rsyslog_imrelp_survives_an_rsyslog_restart_without_loss() {
    let sink = RsyslogSink::new(free_tcp_port());
    let (dir, port, out) = (&sink.dir, sink.port, &sink.out);
    let config = sink.config("", "load=\"imrelp\"", "imrelp", "");
    let mut rsyslog = sink.start_tcp("rsyslog", &config);
    let mut s = Shipper::new(
        &[("conn.log", "bro_conn:")],
        &format!(":omrelp:127.0.0.1:{port};RSYSLOG_SyslogProtocol23Format"),
    );
    append(&s.log("conn.log"), 0..3000);
    s.start();
    wait_for_file_lines(out, 3000);
    // rsyslog goes away (SIGTERM: it finishes what it acknowledged) while lines keep coming.
    assert!(rsyslog.terminate(Duration::from_secs(10)).is_some());
    append(&s.log("conn.log"), 3000..6000);
    // The outage is seen: connecting failed at least once.
    let status = s.wait_status(|st| !st.contains("errors=0/"));
    assert!(!status.contains("errors=0/"), "{status}");
    let _rsyslog = start_rsyslog("rsyslog2", dir.path(), &config);
    let text = wait_for_file_lines(out, 6000);
    let got = seqs_by_tag(&text, "bro_conn");
    let unique: std::collections::BTreeSet<u64> = got.iter().copied().collect();
    assert_eq!(unique, (0..6000).collect(), "missing lines\n{}", s.output());
    println!(
        "imrelp restart: {} duplicates (RELP window 128)",
        got.len() - unique.len()
    );
    assert!(got.len() - unique.len() <= 128);
    s.stop();
}
