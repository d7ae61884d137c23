//! Legacy senders through an ingest node: `logger --tcp` and a shipper over RELP send numbered
//! lines to an aggregator with `NatsIngest = 1`, which publishes them to a three-node JetStream
//! cluster, while another aggregator reads the stream. The ingest node is killed (`kill -9`)
//! mid-stream and restarted: every line acknowledged over RELP is archived exactly once.

mod common;
mod shipper_support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_tcp_port, prereq, Aggregator};
use estuary_nats::testing::Cluster;
use shipper_support::{append, Shipper};

/// The numbers `logger` sends; the shipper's start at 0.
const LOGGER: std::ops::Range<u64> = 1_000_000..1_000_300;

fn reader(dir: &Path, cluster: &Cluster) -> Aggregator {
    std::fs::create_dir_all(dir).unwrap();
    Aggregator::start(
        dir,
        &format!(
            "NatsServers = {}\nNatsTags = bro_conn, bro_dns\nNatsName = reader\nNatsPriorityTimeout = 6s\nLogRotationInterval = 3600\n",
            cluster.urls().join(", ")
        ),
    )
}

fn ingest_node(dir: &Path, cluster: &Cluster, relp: u16) -> Aggregator {
    std::fs::create_dir_all(dir).unwrap();
    Aggregator::start(
        dir,
        &format!(
            "NatsServers = {}\nNatsIngest = 1\nNatsName = ingest\nListenRELP = 127.0.0.1:{relp}\n",
            cluster.urls().join(", ")
        ),
    )
}

fn relp_shipper(relp: u16) -> Shipper {
    let destination = format!(
        "[[destination]]\nname = \"ingest\"\nhost = \"127.0.0.1\"\nport = {relp}\ntransport = \"relp\"\n\
         format = \"rfc5424\"\nretry_interval = \"100ms\"\nretry_max = \"500ms\"\n"
    );
    let mut s = Shipper::toml(&[("conn.log", "bro_conn:")], "", &[destination]);
    s.start();
    s
}

/// `logger --tcp` sends one message per line of its input, tagged `bro_dns`.
fn logger_tcp(port: u16, seqs: std::ops::Range<u64>) {
    let mut child = Command::new("logger")
        .args([
            "-n",
            "127.0.0.1",
            "-P",
            &port.to_string(),
            "-T",
            "--rfc5424",
        ])
        .args(["-t", "bro_dns"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("run logger");
    let mut stdin = child.stdin.take().expect("logger stdin");
    for n in seqs {
        writeln!(stdin, "seq={n}\tdns\t-").unwrap();
    }
    drop(stdin);
    assert!(child.wait().unwrap().success(), "logger failed");
}

/// `seq=N` occurrences over every file under the aggregator's log folder.
fn archived(agg: &Aggregator) -> BTreeMap<u64, u32> {
    let re = regex::Regex::new(r"\bseq=(\d+)\b").unwrap();
    let mut counts = BTreeMap::new();
    for caps in re.captures_iter(&common::read_aggregator_logs(&agg.log_dir)) {
        *counts.entry(caps[1].parse().unwrap()).or_insert(0) += 1;
    }
    counts
}

/// Waits until every number of `expected` arrived, then asserts each arrived once and nothing
/// else did.
fn assert_exactly_once(agg: &Aggregator, expected: impl Iterator<Item = u64>, within: Duration) {
    let wanted: Vec<u64> = expected.collect();
    let deadline = Instant::now() + within;
    loop {
        let counts = archived(agg);
        let missing: Vec<u64> = wanted
            .iter()
            .copied()
            .filter(|n| !counts.contains_key(n))
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            let duplicated: Vec<u64> = counts
                .iter()
                .filter(|(_, &c)| c > 1)
                .map(|(&n, _)| n)
                .collect();
            let unexpected: Vec<u64> = counts
                .keys()
                .copied()
                .filter(|n| !wanted.contains(n))
                .collect();
            assert!(
                missing.is_empty() && duplicated.is_empty() && unexpected.is_empty(),
                "missing {missing:?}\nduplicated {duplicated:?}\nunexpected {unexpected:?}\nreader:\n{}",
                agg.daemon.output()
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn relp_lines_through_a_killed_ingest_node_are_archived_exactly_once() {
    if !prereq::require(
        Command::new("logger").arg("--version").output().is_ok(),
        "util-linux logger is not installed",
    ) {
        return;
    }
    let cluster = Cluster::start().await;
    let dir = tempfile::tempdir().unwrap();
    let reader = reader(&dir.path().join("reader"), &cluster);
    let relp = free_tcp_port();
    let mut ingest = ingest_node(&dir.path().join("ingest"), &cluster, relp);

    // Plain TCP has no acknowledgement: its lines are counted while the node stays up.
    logger_tcp(ingest.tcp, LOGGER.clone());
    assert_exactly_once(&reader, LOGGER.clone(), Duration::from_secs(60));
    assert!(
        !ingest.log_dir.join("current").exists(),
        "the ingest node wrote logs itself"
    );
    // Its status counts what the stream stored as accepted.
    common::wait_for(Duration::from_secs(10), "ingest status", || {
        (ingest.status()["peers"]["127.0.0.1"]["accepted"] == 300).then_some(())
    });

    let mut ship = relp_shipper(relp);
    let rounds = 30u64;
    for round in 0..rounds {
        append(&ship.log("conn.log"), round * 100..round * 100 + 100);
        match round {
            8 => ingest.daemon.kill9(),
            11 => ingest = ingest.restart(),
            20 => ingest = ingest.restart(),
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_exactly_once(
        &reader,
        LOGGER.clone().chain(0..rounds * 100),
        Duration::from_secs(120),
    );
    ship.kill9();
    drop(ingest);
}
