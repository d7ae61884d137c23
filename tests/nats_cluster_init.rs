//! `estuary cluster init` against a real three-node JetStream cluster on 127.0.0.1, and the
//! stream's and consumers' state in `estuary status` and `/metrics` of two aggregators.

mod common;
mod shipper_support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{wait_for, Aggregator};
use estuary_nats::testing::Cluster;
use shipper_support::{append, Shipper};

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

/// A server before 2.11 takes a consumer's priority settings and silently drops them, so every
/// aggregator would get every tag: `cluster init` reads the consumer back and refuses.
#[test]
fn init_refuses_a_server_too_old_for_pinned_consumers() {
    let peers = std::env::var_os("ESTUARY_PEERS")
        .map_or_else(|| PathBuf::from("/opt/estuary-peers"), PathBuf::from);
    let old = peers.join("nats-2.10/bin/nats-server");
    if !common::prereq::require(old.exists(), "nats-server 2.10 (.ci/setup installs it)") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_tcp_port();
    let mut server = Command::new(&old);
    server
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(dir.path().join("js"))
        .stdout(Stdio::null());
    let _server = common::Daemon::spawn("nats-server-2.10", server, dir.path());
    common::wait_for_tcp_listen(port, Duration::from_secs(15));
    let config = cluster_cfg(
        dir.path(),
        &[format!("nats://127.0.0.1:{port}")],
        "NatsReplicas = 1\n",
    );
    let out = init(&config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{out:?}");
    assert!(stderr.contains("the server is older than 2.11"), "{stderr}");
}

/// `/metrics` as text, or `None` while it does not answer.
fn metrics(port: u16) -> Option<String> {
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    conn.read_to_string(&mut text).ok()?;
    Some(text)
}

#[tokio::test(flavor = "multi_thread")]
async fn status_and_metrics_show_pins_lag_and_the_marks_holder() {
    let cluster = Cluster::start().await;
    let dir = tempfile::tempdir().unwrap();
    let start = |name: &str| {
        let sub = dir.path().join(name);
        std::fs::create_dir_all(&sub).unwrap();
        let port = common::free_tcp_port();
        let agg = Aggregator::start(
            &sub,
            &format!(
                "NatsServers = {}\nNatsTags = bro_conn\nNatsName = {name}\nNatsPriorityTimeout = 4s\nMetricsAddress = 127.0.0.1:{port}\n",
                cluster.urls().join(", ")
            ),
        );
        (agg, port)
    };
    let (agg1, metrics1) = start("agg1");
    let servers: Vec<String> = cluster.urls().iter().map(|u| format!("\"{u}\"")).collect();
    let destination = format!(
        "[[destination]]\ntransport = \"nats\"\nservers = [{}]\n",
        servers.join(", ")
    );
    let mut ship = Shipper::toml(&[("conn.log", "bro_conn:")], "", &[destination]);
    append(&ship.log("conn.log"), 0..100);
    ship.start();
    agg1.wait_lines("conn.log", 100, Duration::from_secs(60));
    let (agg2, metrics2) = start("agg2");

    let holder = "nats tag bro_conn: pinned here, pending 0, ack pending 0, redelivered 0, marks holder agg1";
    let text = wait_for(Duration::from_secs(30), "agg1's status", || {
        let s = agg1.status_text();
        s.contains(holder).then_some(s)
    });
    assert!(
        regex::Regex::new(r"nats stream ESTUARY: [1-9]\d* messages, [1-9]\d* bytes")
            .unwrap()
            .is_match(&text),
        "{text}"
    );
    let standby =
        "nats tag bro_conn: standby, pending 0, ack pending 0, redelivered 0, marks holder agg1";
    wait_for(Duration::from_secs(30), "agg2's status", || {
        agg2.status_text().contains(standby).then_some(())
    });

    let m1 = wait_for(Duration::from_secs(30), "agg1's metrics", || {
        metrics(metrics1).filter(|m| m.contains("estuary_nats_consumer_pending"))
    });
    for sample in [
        "estuary_nats_tag_pinned{tag=\"bro_conn\"} 1",
        "estuary_nats_consumer_pending{tag=\"bro_conn\"} 0",
        "estuary_nats_consumer_ack_pending{tag=\"bro_conn\"} 0",
        "estuary_nats_marks_holder{tag=\"bro_conn\",holder=\"agg1\"} 1",
        "estuary_nats_stream_messages{stream=\"ESTUARY\"}",
    ] {
        assert!(m1.contains(sample), "{sample} in\n{m1}");
    }
    let m2 = wait_for(Duration::from_secs(30), "agg2's metrics", || {
        metrics(metrics2).filter(|m| m.contains("estuary_nats_marks_holder"))
    });
    assert!(
        m2.contains("estuary_nats_tag_pinned{tag=\"bro_conn\"} 0"),
        "{m2}"
    );

    // With its holder frozen, the tag's backlog shows as lag on the standby.
    let pid = agg1.daemon.pid().to_string();
    let signal = |sig: &str| {
        let ok = Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    };
    signal("-STOP");
    append(&ship.log("conn.log"), 100..200);
    // Until agg2 takes the pin (after the 4 s priority timeout) the new batches wait.
    let backlog =
        regex::Regex::new(r"bro_conn: \w[\w ]*, pending (\d+), ack pending (\d+)").unwrap();
    wait_for(Duration::from_secs(30), "lag on agg2's status", || {
        let s = agg2.status_text();
        let c = backlog.captures(&s)?;
        let lag: u64 = c[1].parse::<u64>().unwrap() + c[2].parse::<u64>().unwrap();
        (lag > 0).then_some(())
    });
    wait_for(Duration::from_secs(60), "agg2 holding the tag", || {
        agg2.status_text()
            .contains("nats tag bro_conn: pinned here, pending 0, ack pending 0")
            .then_some(())
    });
    signal("-CONT");
    ship.kill9();
    drop((agg1, agg2));
}
