//! Two shippers, a three-node JetStream cluster and two aggregators, all real processes on
//! 127.0.0.1: numbered lines flow while servers, aggregators and shippers are killed and
//! restarted and files rotate; afterwards every number is in the aggregators' logs exactly once.

mod common;
mod shipper_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::rng::Rng;
use common::Aggregator;
use estuary_nats::testing::Cluster;
use shipper_support::{append, Shipper};

/// Long enough that half of it (a new holder's grace) outlasts a leader election of the marks
/// bucket after a server is killed (4-6 s on this kind of machine).
const PRIORITY_TIMEOUT: &str = "15s";

fn aggregator(dir: &Path, name: &str, cluster: &Cluster) -> Aggregator {
    aggregator_on(dir, name, &cluster.urls())
}

fn aggregator_on(dir: &Path, name: &str, servers: &[String]) -> Aggregator {
    std::fs::create_dir_all(dir).unwrap();
    Aggregator::start(dir, &aggregator_cfg(name, servers))
}

fn aggregator_cfg(name: &str, servers: &[String]) -> String {
    format!(
        "NatsServers = {}\nNatsTags = bro_conn\nNatsName = {name}\nNatsPriorityTimeout = {PRIORITY_TIMEOUT}\nLogRotationInterval = 3600\n",
        servers.join(", ")
    )
}

fn shipper(cluster: &Cluster) -> Shipper {
    shipper_on(&cluster.urls())
}

fn shipper_on(servers: &[String]) -> Shipper {
    let servers: Vec<String> = servers.iter().map(|u| format!("\"{u}\"")).collect();
    let destination = format!(
        "[[destination]]\ntransport = \"nats\"\nservers = [{}]\nretry_interval = \"200ms\"\nretry_max = \"1s\"\n",
        servers.join(", ")
    );
    let mut s = Shipper::toml(&[("conn.log", "bro_conn:")], "", &[destination]);
    s.start();
    s
}

/// `seq=N` occurrences over every file under the aggregators' log folders.
fn archived(aggs: &[&Aggregator]) -> BTreeMap<u64, u32> {
    let re = regex::Regex::new(r"\bseq=(\d+)\b").unwrap();
    let mut counts = BTreeMap::new();
    for agg in aggs {
        let text = common::read_aggregator_logs(&agg.log_dir);
        for caps in re.captures_iter(&text) {
            *counts.entry(caps[1].parse().unwrap()).or_insert(0) += 1;
        }
    }
    counts
}

/// How often, along the numbers of `range`, the aggregator that wrote a number differs from
/// the one that wrote the number before it.
fn writer_changes(aggs: &[&Aggregator], range: std::ops::Range<u64>) -> usize {
    let writers: Vec<BTreeMap<u64, u32>> = aggs.iter().map(|a| archived(&[a])).collect();
    let by = |n: u64| writers.iter().position(|w| w.contains_key(&n));
    range
        .clone()
        .zip(range.skip(1))
        .filter(|(a, b)| by(*a) != by(*b))
        .count()
}

/// The aggregators' output, for a failure message.
fn outputs(aggs: &[&Aggregator]) -> String {
    aggs.iter()
        .map(|a| a.daemon.output())
        .collect::<Vec<_>>()
        .join("\n----\n")
}

/// Waits until `done`; panics with the aggregators' output after `within`.
fn wait_logged(aggs: &[&Aggregator], within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}; aggregator logs:\n{}",
            outputs(aggs)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Waits until every number of `expected` arrived, then asserts each arrived once.
fn assert_exactly_once(aggs: &[&Aggregator], expected: std::ops::Range<u64>, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let counts = archived(aggs);
        let tally = common::tally(&counts, expected.clone());
        if tally.missing.is_empty() || Instant::now() > deadline {
            assert_eq!(
                tally,
                common::Tally::default(),
                "aggregator logs:\n{}",
                outputs(aggs)
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[derive(Debug)]
enum Event {
    KillServer(usize),
    RestartServer(usize),
    /// `kill -9` and start again (aggregator 1 or 2).
    KillAggregator(u8),
    KillShipper(u8),
    StartShipper(u8),
    Rotate(u8),
}

/// Rounds of the events: two servers (each out for three rounds), each aggregator (one while
/// a server is out, one while all are up), each shipper (down for one or two rounds) and a
/// rotation of each shipper's file, every event on a random round of its window.
fn schedule(rng: &mut Rng) -> Vec<(u64, Event)> {
    let mut at = |from: u64, to: u64| from + rng.below(to - from + 1);
    let first = at(0, 2) as usize;
    let second = (first + 1 + at(0, 1) as usize) % 3;
    let (s1, s2) = (at(2, 4), at(27, 29));
    let (k_a, k_b) = (at(14, 16), at(24, 26));
    let mut events = vec![
        (s1, Event::KillServer(first)),
        (s1 + 3, Event::RestartServer(first)),
        // During the first server's outage, when a marks commit can wait seconds for the
        // bucket's new leader: the killed holder's group is prepared then, and settled when it
        // is back.
        (s1 + at(0, 2), Event::KillAggregator(1)),
        (k_a, Event::KillShipper(0)),
        (k_a + at(1, 2), Event::StartShipper(0)),
        (at(19, 21), Event::Rotate(0)),
        (at(21, 23), Event::KillAggregator(2)),
        (k_b, Event::KillShipper(1)),
        (k_b + at(1, 2), Event::StartShipper(1)),
        (s2, Event::KillServer(second)),
        (s2 + 3, Event::RestartServer(second)),
        (at(34, 37), Event::Rotate(1)),
    ];
    events.sort_by_key(|(round, _)| *round);
    events
}

#[tokio::test(flavor = "multi_thread")]
async fn every_line_once_through_kills_of_servers_aggregators_and_shippers() {
    let mut cluster = Cluster::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut agg1 = aggregator(&dir.path().join("agg1"), "agg1", &cluster);
    let mut agg2 = aggregator(&dir.path().join("agg2"), "agg2", &cluster);
    let mut ship_a = shipper(&cluster);
    let mut ship_b = shipper(&cluster);

    // Shipper A writes 0..8000, B 8000..16000, 200 lines a round each. Each event falls on a
    // random round of its window and a random moment of that round.
    let mut rng = Rng::from_clock();
    let schedule = schedule(&mut rng);
    let rounds = 40u64;
    for round in 0..rounds {
        let (a, b) = (round * 200, rounds * 200 + round * 200);
        append(&ship_a.log("conn.log"), a..a + 200);
        append(&ship_b.log("conn.log"), b..b + 200);
        let pause = rng.below(300);
        std::thread::sleep(Duration::from_millis(pause));
        for event in schedule.iter().filter(|(r, _)| *r == round).map(|(_, e)| e) {
            eprintln!("round {round}: {event:?}");
            match *event {
                Event::KillServer(i) => cluster.kill(i),
                Event::RestartServer(i) => {
                    cluster.restart(i);
                    cluster.wait_ready(Duration::from_secs(30)).await;
                }
                Event::KillAggregator(1) => agg1 = agg1.restart(),
                Event::KillAggregator(_) => agg2 = agg2.restart(),
                Event::KillShipper(0) => ship_a.kill9(),
                Event::KillShipper(_) => ship_b.kill9(),
                Event::StartShipper(0) => ship_a.start(),
                Event::StartShipper(_) => ship_b.start(),
                Event::Rotate(0) => ship_a.rotate("conn.log", "conn.log.1"),
                Event::Rotate(_) => ship_b.rotate("conn.log", "conn.log.1"),
            }
        }
        std::thread::sleep(Duration::from_millis(300 - pause));
    }
    assert_exactly_once(
        &[&agg1, &agg2],
        0..2 * rounds * 200,
        Duration::from_secs(120),
    );
    // One holder at a time: along each shipper's numbers the writing aggregator changes only
    // where the pin may have moved (each aggregator's kill, and each server's kill and restart,
    // which can move the consumer's leader), never back and forth as two writers at once would.
    let pin_moves = schedule
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                Event::KillAggregator(_) | Event::KillServer(_) | Event::RestartServer(_)
            )
        })
        .count();
    for range in [0..rounds * 200, rounds * 200..2 * rounds * 200] {
        let changes = writer_changes(&[&agg1, &agg2], range.clone());
        assert!(
            changes <= pin_moves,
            "{changes} changes of the writing aggregator along {range:?}, only {pin_moves} pin moves"
        );
    }
    drop((ship_a, ship_b, agg1, agg2));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_aggregator_is_deposed_and_writes_nothing_after_it_resumes() {
    let cluster = Cluster::start().await;
    let dir = tempfile::tempdir().unwrap();
    let agg1 = aggregator(&dir.path().join("agg1"), "agg1", &cluster);
    let mut ship = shipper(&cluster);
    append(&ship.log("conn.log"), 0..100);
    assert_exactly_once(&[&agg1], 0..100, Duration::from_secs(60));

    // agg1 holds the tag; agg2 stands by.
    let agg2 = aggregator(&dir.path().join("agg2"), "agg2", &cluster);
    let signal = |agg: &Aggregator, sig: &str| {
        let ok = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(agg.daemon.pid().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    };
    signal(&agg1, "STOP");
    append(&ship.log("conn.log"), 100..300);
    assert_exactly_once(&[&agg1, &agg2], 0..300, Duration::from_secs(60));
    let frozen_has = archived(&[&agg1]).len();

    signal(&agg1, "CONT");
    append(&ship.log("conn.log"), 300..500);
    assert_exactly_once(&[&agg1, &agg2], 0..500, Duration::from_secs(60));
    // Give the resumed one time to do what it would wrongly do.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        archived(&[&agg1]).len(),
        frozen_has,
        "agg1 wrote after it was deposed"
    );
    assert_exactly_once(&[&agg1, &agg2], 0..500, Duration::from_secs(1));
    ship.kill9();
}

/// A holder killed after its writer committed a group and before the compare-and-set of the
/// tag's marks landed: the bucket's leader is frozen, so that moment lasts until the kill. The
/// standby writes the group when the pin moves; the killed holder, started again, learns that
/// its commit never landed and cuts the group from its files.
#[tokio::test(flavor = "multi_thread")]
async fn a_holder_killed_before_its_commit_landed_cuts_the_group_when_it_starts_again() {
    let cluster = Cluster::start().await;
    let dir = tempfile::tempdir().unwrap();
    let init_dir = dir.path().join("init");
    std::fs::create_dir_all(&init_dir).unwrap();
    let init_cfg = init_dir.join("cluster.cfg");
    std::fs::write(
        &init_cfg,
        format!(
            "LogDir = {0}\nSpoolDir = {0}\n{1}",
            init_dir.display(),
            aggregator_cfg("init", &cluster.urls())
        ),
    )
    .unwrap();
    let init = std::process::Command::new(common::estuary_bin())
        .args(["cluster", "init", "-c"])
        .arg(&init_cfg)
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");

    let consumer = estuary_nats::names::consumer("bro_conn");
    let (mut agg1, mut ship, via) = {
        let (s, _) = marks_leader_apart(&cluster, &consumer, None).await;
        let via = [cluster.nodes[s].url()];
        let agg1 = aggregator_on(&dir.path().join("agg1"), "agg1", &via);
        (agg1, shipper_on(&via), s)
    };
    append(&ship.log("conn.log"), 0..100);
    assert_exactly_once(&[&agg1], 0..100, Duration::from_secs(60));
    let agg2 = aggregator_on(
        &dir.path().join("agg2"),
        "agg2",
        &[cluster.nodes[via].url()],
    );
    wait_logged(
        &[&agg1, &agg2],
        Duration::from_secs(60),
        "agg2 standing by",
        || agg2.status_text().contains("nats tag bro_conn: standby"),
    );

    // Freeze the bucket's leader and send a group. Leaders move on their own, so when agg1's
    // commit landed after all (its batches acknowledged), thaw and try again with the next 100.
    let mut group = 100..200;
    let frozen = loop {
        let (_, k) = marks_leader_apart(&cluster, &consumer, Some(via)).await;
        cluster.freeze(k, true);
        append(&ship.log("conn.log"), group.clone());
        let want = group.end as usize;
        wait_logged(
            &[&agg1, &agg2],
            Duration::from_secs(30),
            "agg1 writing the group",
            || archived(&[&agg1]).len() == want,
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        if cluster.ack_pending(via, "ESTUARY", &consumer).await > Some(0) {
            break k;
        }
        eprintln!("agg1's commit of {group:?} landed: the bucket's leader moved; again");
        cluster.freeze(k, false);
        assert!(group.start < 500, "agg1's commit was never held up");
        group = group.end..group.end + 100;
    };
    agg1.daemon.kill9();

    // The pin moves to agg2 once its holder is silent for the priority timeout and the bucket
    // has a new leader; agg2 writes the group too.
    wait_logged(
        &[&agg1, &agg2],
        Duration::from_secs(180),
        "agg2 writing the group",
        || {
            let agg2 = archived(&[&agg2]);
            group.clone().all(|n| agg2.contains_key(&n))
        },
    );
    cluster.freeze(frozen, false);
    let agg1 = agg1.restart();
    wait_logged(
        &[&agg1, &agg2],
        Duration::from_secs(120),
        "agg1 cutting the group",
        || archived(&[&agg1]).len() == group.start as usize,
    );
    assert_eq!(
        archived(&[&agg1]).keys().copied().collect::<Vec<_>>(),
        (0..group.start).collect::<Vec<_>>()
    );
    let rest = group.end..group.end + 100;
    append(&ship.log("conn.log"), rest.clone());
    assert_exactly_once(&[&agg1, &agg2], 0..rest.end, Duration::from_secs(60));
    ship.kill9();
}

/// The stream's leader and the marks bucket's, once the bucket's is apart from the stream's,
/// the consumer's and the node `via` that clients talk to (stepping it down until it is):
/// freezing it then stops nothing but compare-and-sets.
async fn marks_leader_apart(
    cluster: &Cluster,
    consumer: &str,
    via: Option<usize>,
) -> (usize, usize) {
    let bucket = format!("KV_{}", estuary_nats::names::MARKS_BUCKET);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = cluster.leader("ESTUARY", None).await;
        let c = cluster.leader("ESTUARY", Some(consumer)).await;
        let k = cluster.leader(&bucket, None).await;
        match (s, c, k) {
            (Some(s), Some(c), Some(k)) if k != s && k != c && Some(k) != via => return (s, k),
            _ => assert!(Instant::now() < deadline, "leaders {s:?} {c:?} {k:?}"),
        }
        cluster.step_down(&bucket).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
