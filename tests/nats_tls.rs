//! The `nats` transport over TLS: a real `nats-server` that only speaks TLS, with a certificate
//! from `estuary tls`. A shipper and an aggregator that trust the site's CA deliver every line; a
//! shipper that trusts another CA is refused with the certificate problem named and delivers
//! nothing.

mod common;
mod shipper_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{start_nats_server, wait_for, Aggregator};
use shipper_support::{append, received_seqs, Shipper};

fn estuary_tls(args: &[&str], dir: &Path) {
    let out = Command::new(common::estuary_bin())
        .arg("tls")
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .expect("estuary tls runs");
    assert!(out.status.success(), "estuary tls {args:?}: {out:?}");
}

fn nats_destination(port: u16, ca_file: &Path) -> String {
    format!(
        "[[destination]]\ntransport = \"nats\"\nservers = [\"tls://127.0.0.1:{port}\"]\nca_file = \"{}\"\nretry_interval = \"200ms\"\nretry_max = \"1s\"\n",
        ca_file.display()
    )
}

#[test]
fn lines_cross_a_tls_only_server_and_a_foreign_ca_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (site, foreign) = (tmp.path().join("site"), tmp.path().join("foreign"));
    estuary_tls(&["init"], &site);
    estuary_tls(&["issue", "127.0.0.1"], &site);
    estuary_tls(&["init"], &foreign);

    let (_server, port) = start_nats_server(
        tmp.path(),
        &format!(
            "tls {{ cert_file: \"{}\", key_file: \"{}\" }}\n",
            site.join("127.0.0.1.pem").display(),
            site.join("127.0.0.1.key").display(),
        ),
    );

    let agg_dir = tmp.path().join("agg");
    std::fs::create_dir_all(&agg_dir).unwrap();
    let agg = Aggregator::start(
        &agg_dir,
        &format!(
            "NatsServers = tls://127.0.0.1:{port}\nNatsCAFile = {}\nNatsTags = bro_conn\nNatsName = agg1\nNatsReplicas = 1\n",
            site.join("ca.pem").display()
        ),
    );

    let mut trusted = Shipper::toml(
        &[("conn.log", "bro_conn:")],
        "",
        &[nats_destination(port, &site.join("ca.pem"))],
    );
    append(&trusted.log("conn.log"), 0..500);
    trusted.start();
    wait_for(
        Duration::from_secs(60),
        "every line at the aggregator",
        || (received_seqs(&agg.current("conn.log")) == (0..500).collect::<Vec<_>>()).then_some(()),
    );

    let mut untrusting = Shipper::toml(
        &[("conn.log", "bro_conn:")],
        "",
        &[nats_destination(port, &foreign.join("ca.pem"))],
    );
    append(&untrusting.log("conn.log"), 1000..1010);
    untrusting.start();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !untrusting.output().contains("invalid peer certificate") {
        assert!(
            std::time::Instant::now() < deadline,
            "no certificate error named:\n{}",
            untrusting.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        received_seqs(&agg.current("conn.log")),
        (0..500).collect::<Vec<_>>(),
        "{}",
        agg.daemon.output()
    );
    untrusting.stop();
    trusted.stop();
}
