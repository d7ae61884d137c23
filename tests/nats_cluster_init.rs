//! `estuary cluster init` against a real three-node JetStream cluster on 127.0.0.1.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use estuary_nats::testing::Cluster;

fn cluster_cfg(dir: &Path, servers: &[String], extra: &str) -> std::path::PathBuf {
    let path = dir.join("cluster.cfg");
    let text = format!(
        "LogDir = {0}/logs\nSpoolDir = {0}/spool\nNatsServers = {1}\nNatsTags = bro_conn, bro_notice\nNatsName = agg1\n{extra}",
        dir.display(),
        servers.join(", ")
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn init(config: &Path) -> Output {
    Command::new(common::estuary_bin())
        .args(["cluster", "init", "-c"])
        .arg(config)
        .output()
        .expect("estuary runs")
}

#[tokio::test(flavor = "multi_thread")]
async fn init_creates_then_checks_and_refuses_a_conflicting_layout() {
    let cluster = Cluster::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = cluster_cfg(dir.path(), &cluster.urls(), "");

    for round in ["creates", "checks"] {
        let out = init(&config);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{round}: {out:?}");
        assert!(
            stdout.contains("stream ESTUARY: 3 replicas"),
            "{round}: {stdout}"
        );
        assert!(
            stdout.contains("kv estuary_hwm: 3 replicas"),
            "{round}: {stdout}"
        );
        assert!(
            stdout.contains("consumer agg-bro_conn: pending 0"),
            "{round}: {stdout}"
        );
        assert!(
            stdout.contains("consumer agg-bro_notice"),
            "{round}: {stdout}"
        );
    }

    let config = cluster_cfg(dir.path(), &cluster.urls(), "NatsReplicas = 1\n");
    let out = init(&config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{out:?}");
    assert!(stderr.contains("stream ESTUARY exists with"), "{stderr}");
}

#[test]
fn init_without_nats_servers_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.cfg");
    std::fs::write(
        &path,
        format!(
            "LogDir = {0}/l\nSpoolDir = {0}/s\nListenRELP = 127.0.0.1:0\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let out = init(&path);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("NatsServers is not set"));
}
