//! A site moving to NATS one shipper at a time, and back: the shipper's destination changes from
//! RELP to `nats` and back to RELP between runs while one aggregator, listening for RELP and
//! holding the tag on a real three-node JetStream cluster, takes both. The lines each destination
//! never took are sent again; the aggregator's marks drop what it already wrote, so every line
//! is in its log exactly once.

mod common;
mod shipper_support;

use std::time::Duration;

use common::{free_tcp_port, wait_for, Aggregator};
use estuary_nats::testing::Cluster;
use shipper_support::{append, received_seqs, Shipper};

#[tokio::test(flavor = "multi_thread")]
async fn a_shipper_moves_from_relp_to_nats_and_back_without_loss_or_repeat() {
    let cluster = Cluster::start().await;
    let dir = tempfile::tempdir().unwrap();
    let relp = free_tcp_port();
    let agg = Aggregator::start(
        dir.path(),
        &format!(
            "ListenRELP = 127.0.0.1:{relp}\nNatsServers = {}\nNatsTags = bro_conn\nNatsName = agg1\nNatsPriorityTimeout = 4s\n",
            cluster.urls().join(", ")
        ),
    );
    let over_relp = format!(
        "[[destination]]\nname = \"relp\"\nhost = \"127.0.0.1\"\nport = {relp}\ntransport = \"relp\"\n\
         format = \"rfc5424\"\nretry_interval = \"200ms\"\nretry_max = \"1s\"\n"
    );
    let servers: Vec<String> = cluster.urls().iter().map(|u| format!("\"{u}\"")).collect();
    let over_nats = format!(
        "[[destination]]\ntransport = \"nats\"\nservers = [{}]\nretry_interval = \"200ms\"\nretry_max = \"1s\"\n",
        servers.join(", ")
    );

    let mut ship = Shipper::toml(
        &[("conn.log", "bro_conn:")],
        "",
        std::slice::from_ref(&over_relp),
    );
    let config = std::fs::read_to_string(ship.config_path()).unwrap();
    let log = ship.log("conn.log");
    let mut upto = 0;
    for destination in [&over_relp, &over_nats, &over_relp] {
        std::fs::write(ship.config_path(), config.replace(&over_relp, destination)).unwrap();
        append(&log, upto..upto + 300);
        upto += 300;
        ship.start();
        wait_for(
            Duration::from_secs(60),
            "every line at the aggregator",
            || {
                let got = received_seqs(&agg.current("conn.log"));
                got.ends_with(&[upto - 1]).then_some(())
            },
        );
        ship.stop();
    }
    // Anything sent twice would have arrived by now.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        received_seqs(&agg.current("conn.log")),
        (0..upto).collect::<Vec<_>>(),
        "{}",
        agg.daemon.output()
    );
}
