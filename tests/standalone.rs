//! `estuary standalone`: sensor, shipper and aggregator from the embedded default configuration,
//! on a real capture, end to end.

mod common;
mod sensor_support;

use std::time::Duration;

use common::{free_tcp_port, wait_for, Daemon};
use sensor_support::sorted_rows;

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
        let expected = sorted_rows(&written);
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
                (sorted_rows(&text) == expected).then_some(())
            },
        );
    }

    let status = daemon
        .terminate(Duration::from_secs(15))
        .expect("standalone exits on SIGTERM");
    assert!(status.success(), "exit status {status}");
    assert!(dir.join("etc/ship.toml").exists() && dir.join("etc/aggregate.cfg").exists());
}
