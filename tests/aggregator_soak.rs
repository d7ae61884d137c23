//! The aggregator under hostile load: a good `estuary ship` sends numbered lines over RELP/TLS
//! (client certificate `sensor1.example`) while hostile clients on 127.0.0.2 and up loop over
//! every kind of abuse the aggregator must survive: `#` bodies and unparsable syslog, RELP
//! protocol violations and bad `open` offers, idle connection floods, stalled TLS handshakes,
//! mark poisoning, oversized lines and header blocks that never end under invented hosts.
//! Afterwards every good line is archived exactly once, the aggregator's peak RSS (VmHWM) stays
//! under [`PEAK_RSS_MIB`], and the refusals are counted by reason.
//!
//! `soak_under_hostile_load` runs for `ESTUARY_SOAK_SECS` seconds (default 180) on demand:
//! `ESTUARY_SOAK_SECS=180 cargo test --test aggregator_soak -- --ignored --nocapture`;
//! `short_soak_under_hostile_load` runs the same for 25 s with the rest of the suite.

mod common;
mod shipper_support;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::relp::Relp;
use common::*;
use shipper_support::{append, Shipper};

const PEAK_RSS_MIB: u64 = 256;
/// Lines the good sender appends to its file every [`APPEND_EVERY`].
const LINES_PER_APPEND: u64 = 200;
const APPEND_EVERY: Duration = Duration::from_millis(100);

fn rfc5424(host: &str, tag: &str, body: &str) -> Vec<u8> {
    format!("<190>1 2026-11-22T12:00:00Z {host} {tag} - - - {body}").into_bytes()
}

fn hwm_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib / 1024
}

/// The aggregator's ports.
#[derive(Clone, Copy)]
struct Ports {
    tcp: u16,
    relp: u16,
    relp_tls: u16,
}

type Hostile = fn(Ports, u64);

/// Each kind of abuse, from its own loopback address.
const HOSTILE: &[(&str, Hostile)] = &[
    ("hash bodies and unparsable syslog", |p, round| {
        let mut c = Relp::connect_from([127, 0, 0, 2].into(), p.relp);
        for i in 0..100 {
            let body = format!("# hostile comment {round} {i}");
            c.send("syslog", &rfc5424("hostile", "bro_notes", &body));
            c.send("syslog", b"<999>garbage");
        }
        for _ in 0..200 {
            c.try_read_rsp();
        }
    }),
    ("RELP transaction numbers", |p, _| {
        let mut c = Relp::connect_from([127, 0, 0, 3].into(), p.relp);
        c.send_txnr(2, "syslog", &rfc5424("hostile", "bro_notes", "dup"));
        c.send_txnr(2, "syslog", &rfc5424("hostile", "bro_notes", "dup"));
        c.send_txnr(9, "syslog", &rfc5424("hostile", "bro_notes", "gap"));
        while c.try_read_rsp().is_some() {}
    }),
    ("RELP open offers", |p, _| {
        let stream = common::relp::tcp_from([127, 0, 0, 3].into(), p.relp, 1).remove(0);
        let mut stream = std::io::BufWriter::new(stream);
        let offer = "relp_version=99\ncommands=syslog";
        let _ = writeln!(stream, "1 open {} {offer}", offer.len());
        let _ = stream.flush();
        std::thread::sleep(Duration::from_millis(50));
    }),
    ("idle connection floods", |p, _| {
        let held = common::relp::tcp_from([127, 0, 0, 4].into(), p.tcp, 300);
        std::thread::sleep(Duration::from_millis(500));
        drop(held);
    }),
    ("mark poisoning", |p, _| {
        let mut c = Relp::connect_from([127, 0, 0, 5].into(), p.relp);
        let msg = format!(
            "<190>1 2026-11-22T12:00:00Z testhost bro_conn - - [origin@32473 file=\"{:016x}\" off=\"{}\"] poison",
            0xab,
            u64::MAX
        );
        c.send("syslog", msg.as_bytes());
        c.try_read_rsp();
        std::thread::sleep(Duration::from_millis(100));
    }),
    ("header blocks under invented hosts", |p, round| {
        let mut c = Relp::connect_from([127, 0, 0, 6].into(), p.relp);
        let filler = "f".repeat(4096);
        for i in 0..50 {
            let host = format!("invented-{round}-{i}");
            c.send("syslog", &rfc5424(&host, "bro_dns", "#separator \\x09"));
            let path = format!("#path\t{filler}");
            c.send("syslog", &rfc5424(&host, "bro_dns", &path));
        }
        for _ in 0..100 {
            c.try_read_rsp();
        }
    }),
    ("stalled TLS handshakes", |p, _| {
        // Connections that never send a ClientHello, more than one address may start.
        let held = common::relp::tcp_from([127, 0, 0, 7].into(), p.relp_tls, 40);
        std::thread::sleep(Duration::from_millis(1500));
        drop(held);
    }),
    ("oversized lines", |p, _| {
        let mut s = common::relp::tcp_from([127, 0, 0, 8].into(), p.tcp, 1).remove(0);
        let body = "o".repeat(200 * 1024);
        let _ = s.write_all(&octet_frame("hostile", "bro_conn", &body));
        let _ = s.write_all(b"<190>1 2026-11-22T12:00:00Z h bro_weird - - - ");
        let _ = s.write_all(&[b'w'; 100 * 1024]);
        let _ = s.write_all(b"\n");
        std::thread::sleep(Duration::from_millis(100));
    }),
];

fn soak(secs: u64) {
    let dir = tempfile::tempdir().unwrap();
    let pki = test_pki(&dir.path().join("pki"));
    let (relp, relp_tls) = (free_tcp_port(), free_tcp_port());
    let agg = Aggregator::start(
        dir.path(),
        &format!(
            "ListenRELP = 127.0.0.1:{relp}\nListenRELPTLS = 127.0.0.1:{relp_tls}\n\
             TLSCertFile = {}\nTLSKeyFile = {}\nTLSCAFile = {}\nTLSRequireClientCert = 1\n\
             AllowedPeers = 127.0.0.0/8 sensor1.example\n",
            pki.server.0.display(),
            pki.server.1.display(),
            pki.ca.display(),
        ),
    );
    let ports = Ports {
        tcp: agg.tcp,
        relp,
        relp_tls,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = HOSTILE
        .iter()
        .map(|&(_, body)| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut round = 0;
                while !stop.load(Ordering::Relaxed) {
                    // A refused connection fails a helper's assertion: that is the point.
                    let _ = std::panic::catch_unwind(|| body(ports, round));
                    round += 1;
                }
            })
        })
        .collect();

    let destination = format!(
        "[[destination]]\nname = \"aggregator\"\nhost = \"127.0.0.1\"\nport = {relp_tls}\n\
         transport = \"relp-tls\"\nserver_name = \"localhost\"\nca_file = \"{}\"\n\
         cert_file = \"{}\"\nkey_file = \"{}\"\nretry_interval = \"100ms\"\nretry_max = \"1s\"\n",
        pki.ca.display(),
        pki.client.0.display(),
        pki.client.1.display()
    );
    let mut shipper = Shipper::toml(&[("conn.log", "bro_conn:")], "", &[destination]);
    let conn = shipper.log("conn.log");
    append(&conn, 0..LINES_PER_APPEND);
    shipper.start();
    let started = Instant::now();
    let mut written = LINES_PER_APPEND;
    while started.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(APPEND_EVERY);
        append(&conn, written..written + LINES_PER_APPEND);
        written += LINES_PER_APPEND;
    }
    wait_until_archived(&agg, written, &shipper);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    shipper.stop();
    let archived = good_lines(&agg.current("conn.log"));

    let found = tally(&archived, 0..written);
    let peak = hwm_mib(agg.daemon.pid());
    let status = agg.status();
    eprintln!(
        "soak: {secs} s, {written} good lines: {found:?}; peak RSS {peak} MiB; refusals {}",
        status["refusals"]
    );
    assert_eq!(found, Tally::default(), "each good line exactly once");
    assert!(peak < PEAK_RSS_MIB, "peak RSS {peak} MiB");
    for reason in [
        "relp_protocol",
        "address_connection_limit",
        "handshake_limit",
        "oversized",
        "header_block_evicted",
    ] {
        assert!(
            status["refusals"][reason].as_u64() > Some(0),
            "{reason}: {status}"
        );
    }
}

/// How often each good line's `seq=N` is in `text` (hostile lines carry none).
fn good_lines(text: &str) -> BTreeMap<u64, u32> {
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let seq = line
            .split('\t')
            .find_map(|f| f.strip_prefix("seq="))
            .and_then(|n| n.parse().ok());
        if let Some(seq) = seq {
            *counts.entry(seq).or_insert(0) += 1;
        }
    }
    counts
}

/// Waits (while the hostile clients go on) until conn.log holds each of the `lines` good lines.
fn wait_until_archived(agg: &Aggregator, lines: u64, shipper: &Shipper) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let counts = good_lines(&agg.current("conn.log"));
        if counts.range(..lines).count() as u64 >= lines {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {lines} good lines after 120 s; shipper:\n{}\naggregator:\n{}",
            counts.len(),
            shipper.output(),
            agg.daemon.output()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[ignore = "soak: minutes long"]
fn soak_under_hostile_load() {
    let secs = std::env::var("ESTUARY_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(180);
    soak(secs);
}

#[test]
fn short_soak_under_hostile_load() {
    soak(25);
}
