//! The real shipper into the real aggregator over RELP, with `kill -9` of either side at random
//! points while lines flow and logs rotate every second: every sequence number must end up in
//! the current or archived logs exactly once (RELP acknowledgements after the write, plus the
//! origin high-water marks that drop the shipper's resends).

mod common;
mod shipper_support;

use std::io::Write;
use std::time::{Duration, Instant};

use common::rng::Rng;
use common::*;
use shipper_support::Shipper;

fn append(path: &std::path::Path, seqs: std::ops::Range<u64>) {
    let mut text = String::new();
    for n in seqs {
        text.push_str(&format!("{n}.000000\tC{n:017}\t10.0.0.1\t443\ttcp\t\t-\n"));
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[test]
fn shipper_to_aggregator_over_relp_survives_kill9_of_either_side() {
    let dir = tempfile::tempdir().unwrap();
    let relp = free_tcp_port();
    let mut agg = Aggregator::start(
        dir.path(),
        &format!("ListenRELP = 127.0.0.1:{relp}\nLogRotationInterval = 1\n"),
    );
    let mut shipper = Shipper::new(
        &[("conn.log", "bro_conn:")],
        &format!(":omrelp:127.0.0.1:{relp};RSYSLOG_SyslogProtocol23Format"),
    );
    shipper.start();
    let mut rng = Rng::from_clock();
    let input = shipper.log("conn.log");
    const CHUNKS: u64 = 40;
    const CHUNK: u64 = 250;
    let mut kills = (0, 0);
    for chunk in 0..CHUNKS {
        append(&input, chunk * CHUNK..(chunk + 1) * CHUNK);
        std::thread::sleep(Duration::from_millis(20 + rng.below(80)));
        if chunk % 4 == 3 {
            if rng.below(2) == 0 {
                shipper.kill9();
                std::thread::sleep(Duration::from_millis(rng.below(200)));
                shipper.start();
                kills.0 += 1;
            } else {
                agg = agg.restart();
                kills.1 += 1;
            }
        }
    }
    let n = CHUNKS * CHUNK;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let t = tally(
            &count_sequence_numbers(&read_aggregator_logs(&agg.log_dir)),
            0..n,
        );
        if t.missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "missing {} (first {:?}) after kills {kills:?}\n{}",
            t.missing.len(),
            t.missing.first(),
            shipper.output()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Let resends and rotations settle, then count once more.
    std::thread::sleep(Duration::from_millis(1500));
    shipper.stop();
    agg.daemon.terminate(Duration::from_secs(10));
    let all = read_aggregator_logs(&agg.log_dir);
    let t = tally(&count_sequence_numbers(&all), 0..n);
    assert_eq!(
        t,
        Tally::default(),
        "kills (shipper, aggregator) = {kills:?}"
    );
    assert!(all.contains("\t443\ttcp\t\t-\n"), "byte-exact body");
}
