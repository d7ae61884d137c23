//! `estuary standalone`: sensor, shipper and aggregator from the embedded default configuration,
//! on a real capture, end to end.

mod common;
mod sensor_support;

use std::time::Duration;

use common::{wait_for, Standalone};
use sensor_support::sorted_rows;

#[test]
fn standalone_delivers_every_sensor_row_to_the_aggregator() {
    let tmp = tempfile::tempdir().unwrap();
    let pcap = common::fixtures().join("pcaps/http-aptget.pcap");
    let Standalone {
        mut daemon, dir, ..
    } = Standalone::start(tmp.path(), &["-r", pcap.to_str().unwrap()]);

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

/// The supervisor killed with SIGKILL cannot stop its children itself: they must not live on.
#[test]
fn standalone_children_end_when_the_supervisor_is_killed() {
    let tmp = tempfile::tempdir().unwrap();
    let mut daemon = Standalone::start(tmp.path(), &[]).daemon;
    let pid = daemon.pid();
    let children = wait_for(Duration::from_secs(30), "the supervisor's children", || {
        let list = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
        let pids: Vec<u32> = list
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        (pids.len() >= 2).then_some(pids)
    });
    daemon.kill9();
    wait_for(Duration::from_secs(15), "the children to end", || {
        children.iter().all(|child| !running(*child)).then_some(())
    });
}

/// Whether `pid` is a live process (not gone, not a zombie).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
    })
}
