//! Alarm digests with several aggregators reading the stream: only the holder of the notice tag
//! sends them. Real processes on 127.0.0.1: a three-node JetStream cluster, a shipper, two
//! aggregators and an SMTP server (aiosmtpd). The holder is killed after it committed an alarm
//! and comes back as a standby once the other one took the tag over: the new holder mails its
//! alarm in exactly one digest, and the standby mails none while it does not hold the tag.

mod common;
mod shipper_support;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{inbox_mails, smtp_server, wait_for, Aggregator};
use estuary_nats::testing::Cluster;
use shipper_support::{append_bytes, Shipper};

/// Seconds: the digest interval, aligned to the clock.
const DIGEST_EVERY: u64 = 20;

const NOTICE_HEADER: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tnotice\n#open\t2026-11-22-10-00-00\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tnote\tmsg\tsub\tsrc\tdst\tp\tpeer_descr\tactions\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tstring\taddr\taddr\tport\tstring\tset[enum]\n";

fn notice(note: &str, actions: &str) -> String {
    format!("1795352400.250000\tCx1\t10.0.0.1\t4711\t10.0.0.2\t22\t{note}\ta notice\t-\t10.0.0.1\t10.0.0.2\t22\t-\t{actions}\n")
}

fn alarm(note: &str) -> String {
    notice(note, "Notice::ACTION_LOG,Notice::ACTION_ALARM")
}

/// Waits until `agg` wrote a notice of `note`.
fn wait_notice(agg: &Aggregator, note: &str, within: Duration) {
    wait_for(within, &format!("{note} in notice.log"), || {
        agg.current("notice.log").contains(note).then_some(())
    });
}

fn aggregator(dir: &Path, name: &str, cluster: &Cluster, smtp: u16) -> Aggregator {
    std::fs::create_dir_all(dir).unwrap();
    Aggregator::start(
        dir,
        &format!(
            "NatsServers = {}\nNatsTags = bro_notice\nNatsName = {name}\nNatsPriorityTimeout = 4s\nLogRotationInterval = 3600\nSmtpServer = 127.0.0.1:{smtp}\nMailAlarmsInterval = {DIGEST_EVERY}\nMailTo = noc@example.org\n",
            cluster.urls().join(", ")
        ),
    )
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn digests(inbox: &Path) -> Vec<String> {
    inbox_mails(inbox)
        .into_iter()
        .filter(|m| m.contains("Alarm summary"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn digests_come_from_the_notice_tag_holder_only() {
    let cluster = Cluster::start().await;
    let dir = tempfile::tempdir().unwrap();
    let smtp = common::free_tcp_port();
    let (_smtpd, inbox) = smtp_server(dir.path(), smtp);
    let mut agg1 = aggregator(&dir.path().join("agg1"), "agg1", &cluster, smtp);
    let servers: Vec<String> = cluster.urls().iter().map(|u| format!("\"{u}\"")).collect();
    let destination = format!(
        "[[destination]]\ntransport = \"nats\"\nservers = [{}]\nretry_interval = \"200ms\"\nretry_max = \"1s\"\n",
        servers.join(", ")
    );
    let mut ship = Shipper::toml(&[("notice.log", "bro_notice:")], "", &[destination]);
    let notices = ship.log("notice.log");
    append_bytes(&notices, NOTICE_HEADER.as_bytes());
    append_bytes(
        &notices,
        notice("Test::Zero", "Notice::ACTION_LOG").as_bytes(),
    );
    ship.start();
    // agg1 holds the tag before agg2 starts.
    wait_notice(&agg1, "Test::Zero", Duration::from_secs(60));
    let agg2 = aggregator(&dir.path().join("agg2"), "agg2", &cluster, smtp);

    // Early in an interval, so agg1 is killed before that interval's digest.
    wait_for(
        Duration::from_secs(DIGEST_EVERY),
        "the start of an interval",
        || (unix_now() % DIGEST_EVERY < DIGEST_EVERY / 2).then_some(()),
    );
    append_bytes(&notices, alarm("Test::First").as_bytes());
    wait_notice(&agg1, "Test::First", Duration::from_secs(30));
    agg1.daemon.kill9();

    append_bytes(&notices, alarm("Test::Second").as_bytes());
    wait_notice(&agg2, "Test::Second", Duration::from_secs(60));
    // Back as a standby, with Test::First committed and not yet in any digest.
    let agg1 = agg1.restart();

    let first = wait_for(
        Duration::from_secs(2 * DIGEST_EVERY + 10),
        "a digest of Test::Second",
        || {
            digests(&inbox)
                .into_iter()
                .find(|m| m.contains(" Test::Second "))
        },
    );
    // One more interval, in which a second sender would show itself.
    std::thread::sleep(Duration::from_secs(DIGEST_EVERY + 3));
    let all = digests(&inbox);
    let logs = || format!("{}\n----\n{}", agg1.daemon.output(), agg2.daemon.output());
    assert_eq!(
        all.iter().filter(|m| m.contains(" Test::Second ")).count(),
        1,
        "{all:?}\n{}",
        logs()
    );
    assert!(
        all.iter().all(|m| !m.contains(" Test::First ")),
        "the standby sent a digest: {all:?}\n{}",
        logs()
    );
    assert_eq!(all, [first], "one digest in all: {}", logs());
    ship.kill9();
}

/// Without a single notice line the notice tag still gets a holder, after a start and again
/// after that holder is killed, so one aggregator always has the digests and cron mail to send.
#[tokio::test(flavor = "multi_thread")]
async fn a_quiet_notice_tag_gets_a_holder_after_a_start_and_after_a_kill() {
    let cluster = Cluster::start().await;
    let dir = tempfile::tempdir().unwrap();
    // No mail is due, so nothing needs to listen there.
    let smtp = common::free_tcp_port();
    let agg1 = aggregator(&dir.path().join("agg1"), "agg1", &cluster, smtp);
    let agg2 = aggregator(&dir.path().join("agg2"), "agg2", &cluster, smtp);
    let holds = |agg: &Aggregator| {
        agg.status_text()
            .contains("nats tag bro_notice: pinned here")
    };
    let first = wait_for(
        Duration::from_secs(30),
        "a holder of bro_notice",
        || match (holds(&agg1), holds(&agg2)) {
            (true, false) => Some(1),
            (false, true) => Some(2),
            _ => None,
        },
    );
    let (mut holder, standby) = match first {
        1 => (agg1, agg2),
        _ => (agg2, agg1),
    };
    holder.daemon.kill9();
    wait_for(
        Duration::from_secs(60),
        "the standby holding bro_notice",
        || holds(&standby).then_some(()),
    );
}
