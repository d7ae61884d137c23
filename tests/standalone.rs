//! `estuary standalone`: sensor, shipper and aggregator from the embedded default configuration,
//! on a real capture, end to end.

mod common;

use std::time::Duration;

use common::{free_tcp_port, wait_for, Daemon};

/// The data rows (not `#` header lines) of a Zeek TSV log, sorted.
fn rows(text: &str) -> Vec<String> {
    let mut rows: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    rows.sort();
    rows
}

#[test]
fn standalone_delivers_every_sensor_row_to_the_aggregator() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("site");
    let pcap = common::fixtures().join("pcaps/http-aptget.pcap");
    let port = free_tcp_port().to_string();
    let mut daemon = Daemon::estuary(
        "standalone",
        &[
            "standalone",
            "--dir",
            dir.to_str().unwrap(),
            "--port",
            &port,
            "-r",
            pcap.to_str().unwrap(),
        ],
        tmp.path(),
    );

    for log in ["conn.log", "http.log"] {
        let written = wait_for(Duration::from_secs(30), &format!("sensor {log}"), || {
            let text = std::fs::read_to_string(dir.join("sensor").join(log)).ok()?;
            text.contains("#close").then_some(text)
        });
        let expected = rows(&written);
        assert!(
            !expected.is_empty(),
            "the sensor wrote no {log} rows:\n{}",
            daemon.output()
        );
        wait_for(
            Duration::from_secs(30),
            &format!("aggregated {log}"),
            || {
                let text = std::fs::read_to_string(dir.join("logs/current").join(log)).ok()?;
                (rows(&text) == expected).then_some(())
            },
        );
    }

    let status = daemon
        .terminate(Duration::from_secs(15))
        .expect("standalone exits on SIGTERM");
    assert!(status.success(), "exit status {status}");
    assert!(dir.join("etc/ship.toml").exists() && dir.join("etc/aggregate.cfg").exists());
}
