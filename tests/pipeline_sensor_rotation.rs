//! The sensor rotates its logs Zeek's way (`conn.log` renamed to `conn.<open time>.log`, a new
//! `conn.log` created) many times while the shipper follows: every row reaches the aggregator once.

mod common;
mod sensor_support;

use std::time::Duration;

use common::{estuary_bin, wait_for, Standalone};
use sensor_support::{run_sensor, sorted_rows};

/// The data rows (not `#` header lines) of every file in `dir` whose name starts with `stem.`,
/// sorted: the live log and its rotations.
fn rows_of(dir: &std::path::Path, stem: &str) -> Vec<String> {
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!("{stem}.")) && name.ends_with(".log") {
            rows.extend(sorted_rows(&std::fs::read_to_string(entry.path()).unwrap()));
        }
    }
    rows.sort();
    rows
}

#[test]
fn shipper_follows_zeek_style_rotation_of_the_sensor_logs_without_loss() {
    let tmp = tempfile::tempdir().unwrap();
    // The standalone sensor reads a capture that never ends (an empty pipe), so only its
    // shipper and aggregator do anything; the sensor below writes, rotating every ~1 KB.
    let fifo = tmp.path().join("idle.pcap");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let Standalone {
        daemon: _pipeline,
        dir,
        port,
    } = Standalone::start(tmp.path(), &["-r", fifo.to_str().unwrap()]);
    wait_for(Duration::from_secs(20), "the aggregator to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    // A conn.log makes the supervisor ship it: the shipper follows it before the sensor starts.
    let sensor_dir = dir.join("sensor");
    std::fs::write(sensor_dir.join("conn.log"), "").unwrap();
    let shipper_pid = dir.join("spool/shipper/estuary-ship.pid");
    wait_for(Duration::from_secs(20), "the shipper to start", || {
        shipper_pid.exists().then_some(())
    });

    let pcap = common::fixtures().join("pcaps/mixed-lan-ftp-http.pcap");
    run_sensor(
        &estuary_bin(),
        &sensor_dir,
        &["-C", "--rotate-size", "1000", "-r", pcap.to_str().unwrap()],
    );

    let written = rows_of(&sensor_dir, "conn");
    let rotations = std::fs::read_dir(&sensor_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("conn.2"))
        .count();
    assert!(
        rotations >= 3,
        "the sensor rotated conn.log only {rotations} times"
    );
    assert!(written.len() > 10, "only {} conn rows", written.len());

    let current = dir.join("logs/current");
    wait_for(
        Duration::from_secs(30),
        "every conn row at the aggregator",
        || {
            let received = rows_of(&current, "conn");
            (received == written).then_some(())
        },
    );
}
