//! `/metrics` and `/status` of the shipper, the aggregator and the sensor, scraped over HTTP and
//! parsed by a real Prometheus/OpenMetrics parser (the `prometheus-client` Python package); the
//! counters equal the lines the test wrote.

mod common;

use std::fs;
use std::io::Write;
use std::process::Command;
use std::time::Duration;

use common::prometheus::{scrape, value};
use common::{free_tcp_port, wait_for, Aggregator, Daemon};

#[test]
fn metrics_of_each_daemon_match_the_lines_sent() {
    let tmp = tempfile::tempdir().unwrap();
    let agg_metrics = free_tcp_port();
    let agg = Aggregator::start(
        tmp.path(),
        &format!("MetricsAddress = 127.0.0.1:{agg_metrics}\n"),
    );
    const LINES: usize = 250;
    let app = tmp.path().join("app.log");
    let mut f = fs::File::create(&app).unwrap();
    for i in 0..LINES {
        writeln!(f, "seq={i}").unwrap();
    }
    drop(f);
    let ship_metrics = free_tcp_port();
    let ship = tmp.path().join("ship.toml");
    fs::write(
        &ship,
        format!(
            "work_dir = \"{}\"\nstats_interval = \"1s\"\nmetrics_address = \"127.0.0.1:{ship_metrics}\"\n[[input]]\npath = \"{}\"\ntag = \"bro_app:\"\n\n[[destination]]\nname = \"agg\"\nhost = \"127.0.0.1\"\nport = {}\ntransport = \"tcp\"\n",
            tmp.path().join("ship-spool").display(),
            app.display(),
            agg.tcp
        ),
    )
    .unwrap();
    let _shipper = Daemon::estuary(
        "shipper",
        &["ship", "-c", ship.to_str().unwrap()],
        tmp.path(),
    );
    agg.wait_lines("app.log", LINES, Duration::from_secs(30));

    let n = LINES as f64;
    let shipped = wait_for(Duration::from_secs(30), "shipper metrics", || {
        let s = scrape(ship_metrics)?;
        (value(
            &s,
            "estuary_shipper_lines_acknowledged_total{destination=agg}",
        ) == Some(n))
        .then_some(s)
    });
    assert_eq!(
        value(&shipped, "estuary_shipper_lines_read_total{}"),
        Some(n),
        "{shipped:#?}"
    );
    assert_eq!(
        value(
            &shipped,
            "estuary_shipper_lines_sent_total{destination=agg}"
        ),
        Some(n),
        "{shipped:#?}"
    );
    assert_eq!(
        value(
            &shipped,
            &format!(
                "estuary_build_info{{version={}}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        Some(1.0),
        "{shipped:#?}"
    );
    assert!(value(&shipped, "process_resident_memory_bytes{}").is_some_and(|m| m > 0.0));

    let aggregated = wait_for(Duration::from_secs(30), "aggregator metrics", || {
        let s = scrape(agg_metrics)?;
        (value(
            &s,
            "estuary_aggregator_messages_received_total{transport=tcp}",
        ) == Some(n))
        .then_some(s)
    });
    for (key, want) in [
        ("estuary_aggregator_messages_refused_total{}", 0.0),
        ("estuary_aggregator_duplicates_dropped_total{}", 0.0),
        ("estuary_mail_queue_length{}", 0.0),
    ] {
        assert_eq!(
            value(&aggregated, key),
            Some(want),
            "{key}: {aggregated:#?}"
        );
    }
    let free = value(&aggregated, "estuary_aggregator_disk_free_ratio{}").unwrap();
    assert!((0.0..=1.0).contains(&free), "{free}");

    // /status is what the status file holds.
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys,urllib.request,json;print(json.load(urllib.request.urlopen(sys.argv[1]))['pid'])",
            &format!("http://127.0.0.1:{agg_metrics}/status"),
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        agg.daemon.pid().to_string()
    );
}

#[test]
fn a_sensor_serves_its_packet_counters_while_it_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let pcap = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pcaps/mixed-lan-ftp-http.pcap");
    let Some(packets) = common::prereq::require_some(
        common::capinfos_packets(&pcap),
        "capinfos (Wireshark) is not installed; the sensor's packet counter is not checked",
    ) else {
        return;
    };
    assert!(packets > 0);
    // The capture arrives through a pipe that stays open afterwards: the sensor has read every
    // packet and keeps running (and serving), blocked on the next read.
    let fifo = tmp.path().join("capture.pcap");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let feeder = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut w = fs::OpenOptions::new().write(true).open(fifo).unwrap();
            w.write_all(&fs::read(pcap).unwrap()).unwrap();
            w
        })
    };
    let port = free_tcp_port();
    let logdir = tmp.path().join("logs");
    let _sensor = Daemon::estuary(
        "sensor",
        &[
            "sensor",
            "-r",
            fifo.to_str().unwrap(),
            "--logdir",
            logdir.to_str().unwrap(),
            "--metrics-address",
            &format!("127.0.0.1:{port}"),
        ],
        tmp.path(),
    );
    let _open_pipe = feeder.join().unwrap();
    let want = packets as f64;
    let samples = wait_for(Duration::from_secs(30), "sensor packet counter", || {
        let s = scrape(port)?;
        (value(&s, "estuary_sensor_packets_received_total{}") == Some(want)).then_some(s)
    });
    assert_eq!(
        value(&samples, "estuary_sensor_packets_dropped_total{}"),
        Some(0.0),
        "{samples:#?}"
    );
}

/// `estuary forward` serves its statistics per onward destination on `ForwardMetricsAddress`:
/// every committed line read, sent and taken by the SIEM.
#[test]
fn the_forwarder_serves_its_destinations_counters() {
    let tmp = tempfile::tempdir().unwrap();
    let (siem_port, received) = common::line_sink::line_sink();
    let metrics = free_tcp_port();
    let agg = Aggregator::start(
        tmp.path(),
        &format!(
            "ForwardTo = tcp://127.0.0.1:{siem_port}\nForwardMetricsAddress = 127.0.0.1:{metrics}\n"
        ),
    );
    const LINES: u64 = 500;
    let frames: Vec<u8> = (0..LINES)
        .flat_map(|i| common::octet_frame("sensor1", "bro_conn", &format!("seq={i}\tx")))
        .collect();
    common::send_tcp(agg.tcp, &frames);
    agg.wait_lines("conn.log", LINES as usize, Duration::from_secs(30));
    let _forward = Daemon::estuary(
        "forward",
        &["forward", "--config", agg.config.to_str().unwrap()],
        tmp.path(),
    );
    let seqs =
        || common::count_sequence_numbers(&String::from_utf8_lossy(&received.lock().unwrap()));
    wait_for(Duration::from_secs(30), "every line at the SIEM", || {
        (seqs().len() as u64 == LINES).then_some(())
    });
    let n = LINES as f64;
    let samples = wait_for(Duration::from_secs(30), "the forwarder's counters", || {
        let s = scrape(metrics)?;
        s.iter()
            .any(|l| {
                l.starts_with("estuary_shipper_lines_acknowledged_total{destination=")
                    && sample_value(l) == Some(n)
            })
            .then_some(s)
    });
    assert_eq!(
        value(&samples, "estuary_shipper_lines_read_total{}"),
        Some(n),
        "{samples:#?}"
    );
    let sent: Vec<&String> = samples
        .iter()
        .filter(|l| l.starts_with("estuary_shipper_lines_sent_total{destination="))
        .collect();
    assert_eq!(sent.len(), 1, "one onward destination: {samples:#?}");
    assert_eq!(sample_value(sent[0]), Some(n), "{samples:#?}");
    let behind: Vec<&String> = samples
        .iter()
        .filter(|l| l.starts_with("estuary_shipper_lines_behind{destination="))
        .collect();
    assert_eq!(behind.len(), 1, "{samples:#?}");
    assert_eq!(sample_value(behind[0]), Some(0.0), "{samples:#?}");
}

fn sample_value(line: &str) -> Option<f64> {
    line.rsplit_once(' ')?.1.parse().ok()
}
