//! A daemon's life as the site sees it: pid files, `estuary status` on running, crashed and
//! stopped daemons, SIGHUP from logrotate, and a sensor's netstats.

mod common;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{Aggregator, Daemon};

fn estuary(args: &[&str]) -> Output {
    Command::new(common::estuary_bin())
        .args(args)
        .output()
        .expect("estuary runs")
}

fn status(config: &Path) -> (Option<i32>, String) {
    let out = estuary(&["status", "-c", config.to_str().unwrap()]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn hangup(daemon: &Daemon) {
    let ok = Command::new("kill")
        .args(["-HUP", &daemon.pid().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// A shipper tailing `<dir>/app.log` into the aggregator's TCP port.
fn start_shipper(dir: &Path, agg: &Aggregator) -> (Daemon, std::path::PathBuf) {
    let config = dir.join("ship.toml");
    fs::write(
        &config,
        format!(
            "work_dir = \"{work}\"\n[[input]]\npath = \"{log}\"\ntag = \"bro_app:\"\n\n[[destination]]\nhost = \"127.0.0.1\"\nport = {port}\ntransport = \"tcp\"\n",
            work = dir.join("ship-spool").display(),
            log = dir.join("app.log").display(),
            port = agg.tcp,
        ),
    )
    .unwrap();
    let daemon = Daemon::estuary("shipper", &["ship", "-c", config.to_str().unwrap()], dir);
    (daemon, config)
}

fn append(path: &Path, line: &str) {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    writeln!(f, "{line}").unwrap();
}

#[test]
fn sighup_keeps_daemons_running_and_status_tells_crashed_from_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let mut agg = Aggregator::start(tmp.path(), "");
    let app = tmp.path().join("app.log");
    append(&app, "seq=1");
    let (mut shipper, ship_config) = start_shipper(tmp.path(), &agg);
    agg.wait_lines("app.log", 1, Duration::from_secs(20));

    // logrotate's postrotate: both must live on and keep delivering.
    hangup(&agg.daemon);
    hangup(&shipper);
    append(&app, "seq=2");
    let text = agg.wait_lines("app.log", 2, Duration::from_secs(20));
    assert_eq!(text, "seq=1\nseq=2\n");
    assert!(agg.daemon.is_running(), "{}", agg.daemon.output());
    assert!(shipper.is_running(), "{}", shipper.output());

    let (code, text) = status(&agg.config);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.starts_with("aggregator status"), "{text}");
    let (code, text) = status(&ship_config);
    assert_eq!(code, Some(0), "{text}");

    // A killed daemon is crashed: not its stale snapshot, and a non-zero exit.
    let pid = agg.daemon.pid();
    agg.daemon.kill9();
    let (code, text) = status(&agg.config);
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(text, format!("aggregator: crashed (pid {pid} is gone)\n"));

    // A daemon stopped cleanly is stopped.
    let exit = shipper.terminate(Duration::from_secs(15)).expect("stops");
    assert!(exit.success(), "{}", shipper.output());
    let (code, text) = status(&ship_config);
    assert_eq!((code, text.as_str()), (Some(1), "shipper: stopped\n"));
}

#[test]
fn a_second_daemon_on_the_same_spool_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let agg = Aggregator::start(tmp.path(), "");
    let out = estuary(&["aggregate", "-c", agg.config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("already running as pid {}", agg.daemon.pid())),
        "{err}"
    );
}

#[test]
fn netstats_status_is_human_readable() {
    let tmp = tempfile::tempdir().unwrap();
    let pcap = common::fixtures().join("pcaps/http-aptget.pcap");
    let logdir = tmp.path().join("sensor");
    let out = estuary(&[
        "sensor",
        "-r",
        pcap.to_str().unwrap(),
        "--logdir",
        logdir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let netstats = logdir.join("netstats.json");
    let out = estuary(&["status", "--netstats", netstats.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let re = regex::Regex::new(
        r"^\S+netstats\.json: recvd=([1-9]\d*) analyzed=\d+ dropped=0 \(kernel 0, interface 0\) node 1 of 1, updated \d+s ago\n$",
    )
    .unwrap();
    let caps = re.captures(&text).unwrap_or_else(|| panic!("{text}"));
    let json: serde_json::Value = serde_json::from_slice(&fs::read(&netstats).unwrap()).unwrap();
    assert_eq!(caps[1].parse::<u64>().ok(), json["received"].as_u64());
}
