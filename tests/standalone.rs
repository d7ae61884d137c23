//! `estuary standalone`: sensor, shipper and aggregator from the embedded default configuration,
//! on a real capture, end to end, with a real SMTP server.

mod common;
mod sensor_support;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{free_tcp_port, inbox_mails, smtp_server, wait_for, Standalone};
use sensor_support::sorted_rows;

/// Sorted rows per log name of every archive under `<logs>/YYYY-MM-DD/`.
fn archived_rows(logs: &Path) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for day in std::fs::read_dir(logs).unwrap().flatten() {
        if day.file_name() == "current" {
            continue;
        }
        for file in std::fs::read_dir(day.path()).unwrap().flatten() {
            let name = file.file_name().to_string_lossy().into_owned();
            let log = name.split('.').next().unwrap().to_owned();
            let mut text = String::new();
            flate2::read::MultiGzDecoder::new(std::fs::File::open(file.path()).unwrap())
                .read_to_string(&mut text)
                .unwrap();
            out.entry(log).or_default().extend(sorted_rows(&text));
        }
    }
    for rows in out.values_mut() {
        rows.sort();
    }
    out
}

/// Sorted rows per log name the sensor wrote.
fn sensor_rows(dir: &Path) -> BTreeMap<String, Vec<String>> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let log = name.strip_suffix(".log")?.to_owned();
            Some((
                log,
                sorted_rows(&std::fs::read_to_string(e.path()).unwrap()),
            ))
        })
        .collect()
}

#[test]
fn default_run_archives_every_row_once_and_mails_the_scan_alarm() {
    let tmp = tempfile::tempdir().unwrap();
    let smtp_port = free_tcp_port();
    let (_smtpd, inbox) = smtp_server(tmp.path(), smtp_port);
    let relay = format!("127.0.0.1:{smtp_port}");
    let Standalone {
        mut daemon, dir, ..
    } = Standalone::start(
        tmp.path(),
        &["--mail-to", "soc@example.org", "--smtp-server", &relay],
    );
    let status = daemon.wait_exit(Duration::from_secs(120));
    let output = daemon.output();
    assert!(status.success(), "exit status {status}:\n{output}");

    // Every row of every log the sensor wrote, whatever its name, is archived exactly once.
    let written = sensor_rows(&dir.join("sensor"));
    // tunnel.log is beyond any fixed list a shipper configuration could have named.
    for log in ["conn", "dns", "http", "ftp", "tunnel", "notice"] {
        assert!(
            written.get(log).is_some_and(|r| !r.is_empty()),
            "no {log} rows:\n{output}"
        );
    }
    let archived = archived_rows(&dir.join("logs"));
    assert_eq!(archived, written, "{output}");
    let leftover: Vec<_> = std::fs::read_dir(dir.join("logs/current"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .collect();
    assert!(leftover.is_empty(), "the final rotation left {leftover:?}");

    // The summary's counts are the ones counted here.
    for (log, rows) in &written {
        let n = rows.len();
        let line = regex::Regex::new(&format!(r"(?m)^{log} +{n} +{n}$")).unwrap();
        assert!(
            line.is_match(&output),
            "no `{log} {n} {n}` in the summary:\n{output}"
        );
    }
    assert!(output.contains("notices: 1 (alarms: 1)"), "{output}");
    assert!(
        output.contains(&format!(
            "mail: sent through {relay} to soc@example.org; 0 still queued"
        )),
        "{output}"
    );

    // The scan notice travelled packet → sensor → shipper → aggregator → alarm digest.
    let mails = wait_for(Duration::from_secs(10), "the alarm digest", || {
        let mails = inbox_mails(&inbox);
        (!mails.is_empty()).then_some(mails)
    });
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert!(
        mails[0].starts_with("X-Rcpt: soc@example.org\n"),
        "{}",
        mails[0]
    );
    assert!(
        mails[0].contains("Subject: [Bro] Alarm summary from "),
        "{}",
        mails[0]
    );
    assert!(
        mails[0].contains("Scan::Port_Scan 192.168.0.10")
            && mails[0]
                .contains("192.168.0.10 scanned at least 250 unique ports of host 192.168.0.1"),
        "{}",
        mails[0]
    );
}

#[test]
fn without_a_relay_mail_is_written_under_spool() {
    let tmp = tempfile::tempdir().unwrap();
    let Standalone {
        mut daemon, dir, ..
    } = Standalone::start(tmp.path(), &[]);
    let status = daemon.wait_exit(Duration::from_secs(120));
    let output = daemon.output();
    assert!(status.success(), "exit status {status}:\n{output}");
    let outbox = dir.join("spool/outbox");
    let mails: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].extension().is_some_and(|e| e == "eml"));
    let mail = std::fs::read_to_string(&mails[0]).unwrap();
    assert!(mail.contains("Scan::Port_Scan"), "{mail}");
    assert!(
        output.contains(&format!(
            "mail: 1 written as .eml files:\n  {}\n",
            mails[0].display()
        )),
        "{output}"
    );
}

#[test]
fn a_missing_capture_ends_the_run_with_its_error() {
    let tmp = tempfile::tempdir().unwrap();
    let mut daemon = Standalone::start(tmp.path(), &["-r", "/nonexistent.pcap"]).daemon;
    let status = daemon.wait_exit(Duration::from_secs(60));
    let output = daemon.output();
    assert!(!status.success(), "{output}");
    assert!(output.contains("/nonexistent.pcap"), "{output}");
    assert!(output.contains("estuary: the sensor failed"), "{output}");
    assert_eq!(
        output
            .matches(r#"["sensor", "--read", "/nonexistent.pcap""#)
            .count(),
        1,
        "restarted:\n{output}"
    );
}

/// The supervisor killed with SIGKILL cannot stop its children itself: they must not live on.
#[test]
fn standalone_children_end_when_the_supervisor_is_killed() {
    let tmp = tempfile::tempdir().unwrap();
    // A live capture on loopback never ends by itself (and stops on SIGTERM, unlike a read that
    // waits on a pipe).
    if !common::prereq::require(is_root(), "live capture on lo needs root") {
        return;
    }
    let mut daemon = Standalone::start(tmp.path(), &["-i", "lo"]).daemon;
    let pid = daemon.pid();
    let children = wait_for(Duration::from_secs(30), "the supervisor's children", || {
        Some(children(pid)).filter(|pids| pids.len() >= 2)
    });
    daemon.kill9();
    wait_for(Duration::from_secs(30), "the children to end", || {
        children.iter().all(|child| !running(*child)).then_some(())
    });
}

/// A child that dies after it started is restarted with backoff and reported; Ctrl-C (SIGINT to
/// the supervisor alone, as the terminal sends it to the supervisor's process group) stops the
/// sensor, lets its last rows reach the aggregator and prints the summary.
#[test]
fn a_killed_child_is_restarted_and_ctrl_c_ends_with_every_row_archived() {
    let tmp = tempfile::tempdir().unwrap();
    if !common::prereq::require(is_root(), "live capture on lo needs root") {
        return;
    }
    let mut daemon = Standalone::start(tmp.path(), &["-i", "lo"]).daemon;
    let pid = daemon.pid();
    let aggregator = || {
        children(pid).into_iter().find(|child| {
            std::fs::read(format!("/proc/{child}/cmdline"))
                .is_ok_and(|c| c.split(|&b| b == 0).any(|arg| arg == b"aggregate"))
                && running(*child)
        })
    };
    let first = wait_for(Duration::from_secs(30), "the aggregator", aggregator);
    // Past the start grace: a death now is a crash, not a failed start.
    std::thread::sleep(Duration::from_secs(3));
    assert!(Command::new("kill")
        .args(["-KILL", &first.to_string()])
        .status()
        .unwrap()
        .success());
    wait_for(Duration::from_secs(30), "a new aggregator", || {
        aggregator().filter(|again| *again != first)
    });
    // Some traffic for the sensor to log, then Ctrl-C.
    let port = free_tcp_port();
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    drop(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
    drop(listener);
    std::thread::sleep(Duration::from_secs(1));
    assert!(Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let status = daemon.wait_exit(Duration::from_secs(120));
    let output = daemon.output();
    assert!(status.success(), "exit status {status}:\n{output}");
    assert!(output.contains("restarts: aggregator 1"), "{output}");
    assert!(
        output.contains("result: every row the sensor wrote is archived exactly once"),
        "{output}"
    );
    assert!(
        regex::Regex::new(r"(?m)^conn +[1-9]\d* +[1-9]\d*$")
            .unwrap()
            .is_match(&output),
        "{output}"
    );
}

/// The processes `pid` started.
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Whether `pid` is a live process (not gone, not a zombie).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
    })
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            == Some("0")
    })
}
