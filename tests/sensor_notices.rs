//! Notices: scan detection with the simple-scan thresholds, the notice policy from the sensor
//! config (extra actions and e-mail destinations for chosen notes), suppression, and Zeek's
//! notice.log fields.

mod common;
mod sensor_support;

use sensor_support::{read_log, run_sensor, PcapBuilder, ACK, RST, SYN};

const SCANNER: [u8; 4] = [198, 51, 99, 7];

/// An address scan from [`SCANNER`]: SYNs to port 22 of `hosts`, no answer (history "S"), 10 ms
/// apart from `t + offset`; source ports from `sport_base + host`.
fn address_scan(
    p: &mut PcapBuilder,
    t: &mut f64,
    offset: f64,
    hosts: std::ops::RangeInclusive<u8>,
    sport_base: u16,
) {
    for host in hosts {
        p.tcp(
            *t + offset,
            SCANNER,
            sport_base + u16::from(host),
            [10, 0, 0, host],
            22,
            SYN,
            1000,
            0,
            b"",
        );
        *t += 0.01;
    }
}

fn scan_pcap(path: &std::path::Path) {
    let mut p = PcapBuilder::new();
    let mut t = 1_700_000_000.0;
    address_scan(&mut p, &mut t, 0.0, 1..=30, 40000);
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
    // A second round of the same address scan, later: no notice, as the detector ignores a
    // reported scanner for an hour (suppression itself is tested below).
    address_scan(&mut p, &mut t, 600.0, 31..=60, 41000);
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
    for (note, src, msg, actions) in [
        (
            "Scan::Address_Scan",
            "198.51.99.7",
            "198.51.99.7 scanned at least 25 unique hosts on port 22/tcp in ",
            "Notice::ACTION_LOG,Notice::ACTION_ALARM",
        ),
        (
            "Scan::Port_Scan",
            "198.51.99.8",
            "198.51.99.8 scanned at least 25 unique ports of host 10.0.1.1 in ",
            "Notice::ACTION_LOG,Notice::ACTION_EMAIL",
        ),
    ] {
        let row = rows.iter().find(|r| r.0 == note).expect(note);
        assert_eq!((row.1.as_str(), row.3.as_str()), (src, actions), "{note}");
        assert!(row.2.starts_with(msg), "{note}: {}", row.2);
        // Both notes have an alarm or e-mail action, so both carry the policy's destination.
        assert_eq!(
            (row.4.as_str(), row.5.as_str()),
            ("soc@example.org", "3600.000000")
        );
    }

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

/// Notice suppression as Zeek's notice framework does it: a notice with the same note and
/// identifier as one logged less than `suppress_for` ago is dropped; once that time has passed,
/// or with another identifier or note, it is logged.
#[test]
fn repeated_notices_are_suppressed_within_suppress_for_only() {
    use estuary_sensor::conn::LocalNets;
    use estuary_sensor::flow::Timestamp;
    use estuary_sensor::notice_log::{Note, Notice, NoticePolicy};
    use estuary_sensor::sink::RecordSink;
    use estuary_sensor::zeeklog::{LogFormat, LogSet, Rotation, SystemClock};

    let tmp = tempfile::tempdir().expect("tempdir");
    let logs = LogSet::new(
        tmp.path(),
        LogFormat::Tsv,
        Rotation::default(),
        std::sync::Arc::new(SystemClock),
    )
    .expect("log set");
    let mut sink = RecordSink::new(logs, NoticePolicy::default(), LocalNets::zeek_private());
    let t0 = 1_700_000_000.0;
    let notice = |dt: f64, note: Note, who: &str| {
        let mut n = Notice::new(Timestamp(t0 + dt), note, format!("{who} at +{dt}"));
        n.identifier = Some(who.to_string());
        n
    };
    let sent = [
        (0.0, Note::ScanAddressScan, "198.51.99.7", true),
        // Same note and identifier inside the hour: suppressed.
        (10.0, Note::ScanAddressScan, "198.51.99.7", false),
        (3599.0, Note::ScanAddressScan, "198.51.99.7", false),
        // Another identifier, and another note with the same identifier: logged.
        (20.0, Note::ScanAddressScan, "198.51.99.8", true),
        (30.0, Note::ScanPortScan, "198.51.99.7", true),
        // The hour since the first one is over: logged again, and suppressing anew.
        (3600.0, Note::ScanAddressScan, "198.51.99.7", true),
        (3700.0, Note::ScanAddressScan, "198.51.99.7", false),
    ];
    for (dt, note, who, _) in sent {
        sink.notice(notice(dt, note, who)).expect("notice");
    }
    let suppressed = sink.stats.notices_suppressed;
    sink.close().expect("close");
    let log = read_log(&tmp.path().join("notice.log"), false).expect("notice.log");
    let msgs: Vec<&str> = log
        .rows
        .iter()
        .map(|r| log.get(r, "msg").unwrap_or(""))
        .collect();
    let expected: Vec<String> = sent
        .iter()
        .filter(|s| s.3)
        .map(|(dt, _, who, _)| format!("{who} at +{dt}"))
        .collect();
    assert_eq!(msgs, expected);
    assert_eq!(suppressed, 3);
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
