//! Live capture: a veth pair inside a network namespace this test creates; `estuary sensor -i`
//! captures on one end while tcpreplay sends a public capture into the other. The conn.log
//! of the live run must hold the same connections and packet counts as reading the file.
//!
//! Skipped with a message when not root or when network namespaces are unavailable.

mod common;
mod sensor_support;

use common::prereq::require;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use sensor_support::{output_ok, read_log, run_sensor};

fn ok(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Deletes the namespace (and with it the veth pair) when dropped.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ok(Command::new("ip").args(["netns", "del", &self.0]));
    }
}

/// Kills the sensor if the test fails before stopping it.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn flows(dir: &Path) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    if let Some(log) = read_log(&dir.join("conn.log"), false) {
        for r in &log.rows {
            let k: Vec<&str> = ["id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto"]
                .iter()
                .map(|c| log.get(r, c).unwrap_or(""))
                .collect();
            let pkts: u64 = ["orig_pkts", "resp_pkts"]
                .iter()
                .map(|c| {
                    log.get(r, c)
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0)
                })
                .sum();
            *m.entry(k.join(" ")).or_insert(0) += pkts;
        }
    }
    m
}

#[test]
fn live_capture_on_veth_matches_file_read() {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if !require(
        uid.as_deref().ok() == Some("0"),
        "live capture test needs root",
    ) {
        return;
    }
    if !require(
        ok(Command::new("tcpreplay").arg("--version")),
        "tcpreplay is not installed",
    ) {
        return;
    }
    let ns = format!("estuary-sensor-{}", std::process::id());
    if !require(
        ok(Command::new("ip").args(["netns", "add", &ns])),
        "cannot create a network namespace",
    ) {
        return;
    }
    let ns = Netns(ns);
    let in_ns = |args: &[&str]| {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &ns.0]).args(args);
        c
    };
    for step in [
        // No IPv6 on the links: the kernel's neighbour discovery and MLD would be captured.
        vec!["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"],
        vec!["sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1"],
        vec![
            "ip", "link", "add", "vsens0", "type", "veth", "peer", "name", "vsens1",
        ],
        vec!["ip", "link", "set", "vsens0", "mtu", "9000", "up"],
        vec!["ip", "link", "set", "vsens1", "mtu", "9000", "up"],
    ] {
        assert!(ok(&mut in_ns(&step)), "setup step {step:?} failed");
    }

    let trace = common::fixtures().join("pcaps/ftp-ipv6-all-data.pcap");
    let tmp = tempfile::tempdir().expect("tempdir");
    let (live, offline) = (tmp.path().join("live"), tmp.path().join("offline"));
    // A user filter, exercised live too; the capture has no ICMPv6.
    let filter = "not icmp6";
    run_sensor(
        &common::estuary_bin(),
        &offline,
        &[
            "-r",
            &trace.to_string_lossy(),
            "-C",
            "--no-analyzers",
            "-f",
            filter,
        ],
    );

    let bin = common::estuary_bin();
    let mut sensor = in_ns(&[
        &bin.to_string_lossy(),
        "sensor",
        "-i",
        "vsens0",
        "-C",
        "--no-analyzers",
        "-f",
        filter,
        "--logdir",
    ])
    .arg(&live)
    .stderr(Stdio::piped())
    .spawn()
    .expect("start sensor");
    let stderr = sensor.stderr.take().expect("stderr");
    let mut sensor = KillOnDrop(sensor);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("capture started") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("sensor did not start capturing");

    output_ok(
        in_ns(&["tcpreplay", "-q", "-t", "-i", "vsens1"]).arg(&trace),
        "tcpreplay",
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(ok(
        Command::new("kill").args(["-TERM", &sensor.0.id().to_string()])
    ));
    let status = common::wait_for(
        Duration::from_secs(20),
        "the sensor to exit on SIGTERM",
        || sensor.0.try_wait().ok().flatten(),
    );
    assert!(status.success(), "sensor exit {status:?}");

    assert_eq!(
        flows(&live),
        flows(&offline),
        "live capture differs from the file read"
    );
    let stats = std::fs::read_to_string(live.join("netstats.json")).expect("netstats.json");
    assert!(stats.contains("\"dropped_kernel\":0"), "{stats}");
    let conn = std::fs::read_to_string(live.join("conn.log")).expect("conn.log");
    assert!(
        conn.lines().last().is_some_and(|l| l.starts_with("#close")),
        "logs not closed on SIGTERM"
    );
}
