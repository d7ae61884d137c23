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
    let text = agg.wait_lines("app.log", 2, Duration::from_secs(60));
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
    // The pid file is written once the listeners are bound.
    let pid_file = agg.spool_dir.join("estuary-aggregate.pid");
    common::wait_for(Duration::from_secs(10), "the pid file", || {
        pid_file.exists().then_some(())
    });
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

/// `estuary config -c <config>` run in `cwd`: the value of `key`.
fn config_value(cwd: &Path, config: &Path, key: &str) -> String {
    let out = Command::new(common::estuary_bin())
        .current_dir(cwd)
        .args(["config", "-c"])
        .arg(config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let prefix = format!("{key} = ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key} in\n{text}"))
        .to_owned()
}

#[test]
fn paths_mean_the_same_however_the_config_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    fs::create_dir_all(&real).unwrap();
    std::os::unix::fs::symlink(&real, tmp.path().join("link")).unwrap();
    fs::write(
        real.join("ship.toml"),
        "[[input]]\npath = \"app.log\"\ntag = \"app:\"\n\n[[destination]]\nhost = \"127.0.0.1\"\ntransport = \"tcp\"\n",
    )
    .unwrap();
    fs::write(
        real.join("agg.cfg"),
        "LogDir = ./logs\nSpoolDir = spool\nListenTCP = 127.0.0.1:514\n",
    )
    .unwrap();

    // The shipper's default state file (its identity of the input) and the aggregator's LogDir.
    for (file, key) in [("ship.toml", "input[0].state_file"), ("agg.cfg", "LogDir")] {
        let spellings = [
            config_value(&real, Path::new(file), key),
            config_value(tmp.path(), &Path::new("real").join(file), key),
            config_value(tmp.path(), &real.join(file), key),
            config_value(tmp.path(), &tmp.path().join("link").join(file), key),
        ];
        assert!(
            spellings.iter().all(|s| s == &spellings[0]),
            "{spellings:#?}"
        );
        let real = real.canonicalize().unwrap().display().to_string();
        let dashed = real.replace('/', "-");
        assert!(
            spellings[0].contains(&real) || spellings[0].contains(&dashed),
            "{spellings:#?}"
        );
    }
}

/// Paused at the disk floor with a sender connected and messages waiting, the aggregator still
/// stops on SIGTERM, and promptly; what it had taken is written once (it is committed at the
/// stop rather than left for senders that cannot resend it over plain TCP).
#[test]
fn sigterm_stops_an_aggregator_paused_at_the_disk_floor() {
    let tmp = tempfile::tempdir().unwrap();
    // No real disk is 99.9 % free: the writer holds back from the first message on.
    let mut agg = Aggregator::start(tmp.path(), "MinDiskSpace = 99.95\nDiskHardFloor = 99.9\n");
    let mut frames = Vec::new();
    for seq in 0..200u64 {
        frames.extend(common::octet_frame("s1", "bro_conn", &format!("seq={seq}")));
    }
    let mut sender = std::net::TcpStream::connect(("127.0.0.1", agg.tcp)).unwrap();
    sender.write_all(&frames).unwrap();
    common::wait_for(Duration::from_secs(15), "the aggregator to pause", || {
        (agg.status()["disk_paused"] == true).then_some(())
    });
    let status = agg.daemon.terminate(Duration::from_secs(10));
    assert!(
        status.is_some(),
        "did not stop within 10 s:\n{}",
        agg.daemon.output()
    );
    let written = agg.current("conn.log");
    let lines: Vec<&str> = written.lines().collect();
    let unique: std::collections::BTreeSet<&str> = lines.iter().copied().collect();
    assert_eq!(
        lines.len(),
        unique.len(),
        "a line written twice:\n{written}"
    );
    assert!(
        lines
            .iter()
            .all(|l| (0..200).any(|seq| *l == format!("seq={seq}"))),
        "{written}"
    );
    drop(sender);
}

/// SIGHUP while lines flow: an invalid configuration is refused and the old one kept; a valid one
/// (a new input) is applied in the same process; every line arrives exactly once.
#[test]
fn sighup_reloads_the_shipper_without_loss_or_repeat_and_refuses_a_bad_config() {
    let tmp = tempfile::tempdir().unwrap();
    let agg = Aggregator::start(tmp.path(), "");
    let app = tmp.path().join("app.log");
    append(&app, "seq=0");
    let (mut shipper, ship_config) = start_shipper(tmp.path(), &agg);
    let pid = shipper.pid();
    agg.wait_lines("app.log", 1, Duration::from_secs(20));
    let good = fs::read_to_string(&ship_config).unwrap();

    const N: u64 = 3000;
    let writer = {
        let app = app.clone();
        std::thread::spawn(move || {
            for seq in 1..N {
                append(&app, &format!("seq={seq}"));
                if seq % 100 == 0 {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        })
    };
    // A broken file: refused, the shipper runs on with the old configuration.
    fs::write(
        &ship_config,
        good.replace("tag = \"bro_app:\"", "tag = \"\""),
    )
    .unwrap();
    hangup(&shipper);
    common::wait_for(Duration::from_secs(10), "the refusal to be logged", || {
        shipper
            .output()
            .contains("the new configuration is refused")
            .then_some(())
    });
    assert!(shipper.is_running());
    // A valid change: a second input.
    let other = tmp.path().join("other.log");
    fs::write(
        &ship_config,
        format!(
            "{good}\n[[input]]\npath = \"{}\"\ntag = \"bro_other:\"\n",
            other.display()
        ),
    )
    .unwrap();
    hangup(&shipper);
    writer.join().unwrap();
    append(&other, "seq=0");
    agg.wait_lines("other.log", 1, Duration::from_secs(30));
    let text = agg.wait_lines("app.log", N as usize, Duration::from_secs(60));
    assert_eq!(
        common::tally(&common::count_sequence_numbers(&text), 0..N),
        common::Tally::default()
    );
    assert_eq!(shipper.pid(), pid);
    assert!(shipper.is_running(), "{}", shipper.output());
    assert!(
        shipper.output().contains("restarting on it"),
        "{}",
        shipper.output()
    );
}
