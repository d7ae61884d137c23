//! Notices: scan detection with the simple-scan thresholds, the notice policy from the sensor
//! config (extra actions and e-mail destinations for chosen notes), suppression, and Zeek's
//! notice.log fields.

mod common;
mod sensor_support;

use sensor_support::{read_log, run_sensor, PcapBuilder, ACK, RST, SYN};

const SCANNER: [u8; 4] = [198, 51, 99, 7];

fn scan_pcap(path: &std::path::Path) {
    let mut p = PcapBuilder::new();
    let mut t = 1_700_000_000.0;
    // Address scan: SYNs to 30 hosts on port 22, no answer (history "S").
    for host in 1..=30u8 {
        p.tcp(
            t,
            SCANNER,
            40000 + u16::from(host),
            [10, 0, 0, host],
            22,
            SYN,
            1000,
            0,
            b"",
        );
        t += 0.01;
    }
    // Port scan of one host from another remote scanner: 30 ports, each rejected ("Sr").
    for port in 1..=30u16 {
        p.tcp(
            t,
            [198, 51, 99, 8],
            50000,
            [10, 0, 1, 1],
            port,
            SYN,
            2000,
            0,
            b"",
        );
        p.tcp(
            t + 0.001,
            [10, 0, 1, 1],
            port,
            [198, 51, 99, 8],
            50000,
            RST | ACK,
            0,
            2001,
            b"",
        );
        t += 0.01;
    }
    // A second round of the same address scan, later: suppressed (one notice per hour).
    for host in 31..=60u8 {
        p.tcp(
            t + 600.0,
            SCANNER,
            41000 + u16::from(host),
            [10, 0, 0, host],
            22,
            SYN,
            1000,
            0,
            b"",
        );
        t += 0.01;
    }
    p.write(path);
}

#[test]
fn scans_raise_notices_with_policy_actions() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pcap = tmp.path().join("scan.pcap");
    scan_pcap(&pcap);
    let cfg = tmp.path().join("sensor.toml");
    std::fs::write(
        &cfg,
        "[notice]\nalarm = [\"Scan::Address_Scan\"]\nemail = [\"Scan::Port_Scan\"]\nemail_dest = [\"soc@example.org\"]\n",
    )
    .expect("write config");
    let logs = tmp.path().join("logs");
    run_sensor(
        &common::estuary_bin(),
        &logs,
        &[
            "-r",
            &pcap.to_string_lossy(),
            "--config",
            &cfg.to_string_lossy(),
        ],
    );
    let notice = read_log(&logs.join("notice.log"), false).expect("notice.log");
    assert_eq!(
        notice.fields.join(" "),
        "ts uid id.orig_h id.orig_p id.resp_h id.resp_p fuid file_mime_type file_desc proto note msg sub src dst p n peer_descr actions email_dest suppress_for remote_location.country_code remote_location.region remote_location.city remote_location.latitude remote_location.longitude"
    );
    let rows: Vec<_> = notice
        .rows
        .iter()
        .map(|r| {
            let g = |c: &str| notice.get(r, c).unwrap_or("").to_string();
            (
                g("note"),
                g("src"),
                g("msg"),
                g("actions"),
                g("email_dest"),
                g("suppress_for"),
            )
        })
        .collect();
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let addr = rows
        .iter()
        .find(|r| r.0 == "Scan::Address_Scan")
        .expect("address scan notice");
    assert_eq!(addr.1, "198.51.99.7");
    assert!(
        addr.2
            .starts_with("198.51.99.7 scanned at least 25 unique hosts on port 22/tcp in "),
        "{}",
        addr.2
    );
    assert_eq!(addr.3, "Notice::ACTION_LOG,Notice::ACTION_ALARM");
    assert_eq!(addr.4, "soc@example.org");
    assert_eq!(addr.5, "3600.000000");
    let port = rows
        .iter()
        .find(|r| r.0 == "Scan::Port_Scan")
        .expect("port scan notice");
    assert_eq!(port.1, "198.51.99.8");
    assert!(
        port.2
            .contains("scanned at least 25 unique ports of host 10.0.1.1"),
        "{}",
        port.2
    );
    assert_eq!(port.3, "Notice::ACTION_LOG,Notice::ACTION_EMAIL");

    // The rejected attempts are REJ with history Sr, the unanswered ones S0 with history S.
    let conn = read_log(&logs.join("conn.log"), false).expect("conn.log");
    let states: Vec<(String, String)> = conn
        .rows
        .iter()
        .map(|r| {
            (
                conn.get(r, "conn_state").unwrap_or("").into(),
                conn.get(r, "history").unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(
        states.iter().filter(|s| s.0 == "S0" && s.1 == "S").count(),
        60
    );
    assert_eq!(
        states
            .iter()
            .filter(|s| s.0 == "REJ" && s.1 == "Sr")
            .count(),
        30
    );
}

#[test]
fn bad_notice_policy_is_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = tmp.path().join("sensor.toml");
    std::fs::write(&cfg, "[notice]\nalarm = [\"Scan::Nope\"]\n").expect("write config");
    let out = std::process::Command::new(common::estuary_bin())
        .args(["sensor", "-r", "/nonexistent.pcap", "--config"])
        .arg(&cfg)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sensor.toml:2: notice.alarm: unknown note \"Scan::Nope\""),
        "{err}"
    );
}
