//! The systemd units in `deploy/systemd/`: `systemd-analyze verify` accepts every one (no
//! warning either), `systemd-analyze security` rates each at most at the exposure README.md
//! gives, and the daemons tell systemd they are ready (`READY=1` on `$NOTIFY_SOCKET`) only once
//! they can do their job, which `Type=notify` relies on.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

const UNITS: &[&str] = &[
    "estuary-aggregator.service",
    "estuary-forward.service",
    "estuary-shipper.service",
    "estuary-sensor@.service",
    "estuary-cron.service",
    "estuary-cron.timer",
];

/// Highest exposure (times ten, as `--threshold` takes it) per unit; README.md prints the
/// measured levels.
const EXPOSURE: &[(&str, u32)] = &[
    ("estuary-aggregator.service", 14),
    ("estuary-forward.service", 14),
    ("estuary-shipper.service", 14),
    ("estuary-sensor@eth0.service", 21),
    ("estuary-cron.service", 14),
];

fn systemd_analyze() -> Command {
    let probe = Command::new("systemd-analyze").arg("--version").output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "systemd-analyze is missing: .ci/setup installs the systemd package"
    );
    Command::new("systemd-analyze")
}

/// The units copied into a scratch directory, running the binary under test instead of
/// /usr/bin/estuary, with the sensor template instantiated for eth0.
fn staged_units(dir: &Path) -> Vec<PathBuf> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/systemd");
    let mut staged = Vec::new();
    for unit in UNITS {
        let text = std::fs::read_to_string(source.join(unit)).unwrap();
        let text = text.replace("/usr/bin/estuary", estuary_bin().to_str().unwrap());
        std::fs::write(dir.join(unit), text).unwrap();
        staged.push(match unit.strip_suffix("@.service") {
            Some(stem) => {
                let instance = dir.join(format!("{stem}@eth0.service"));
                std::os::unix::fs::symlink(unit, &instance).unwrap();
                instance
            }
            None => dir.join(unit),
        });
    }
    staged
}

#[test]
fn every_unit_verifies_without_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let units = staged_units(dir.path());
    let out = systemd_analyze()
        .arg("verify")
        .args(&units)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
    // The check can fail: a misspelt key is reported.
    let cron = dir.path().join("estuary-cron.service");
    let text = std::fs::read_to_string(&cron).unwrap();
    std::fs::write(&cron, text.replace("UMask=", "Umask=")).unwrap();
    let out = systemd_analyze().arg("verify").arg(&cron).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("Umask"));
}

#[test]
fn exposure_is_no_higher_than_documented() {
    let dir = tempfile::tempdir().unwrap();
    staged_units(dir.path());
    for (unit, limit) in EXPOSURE {
        let out = systemd_analyze()
            .args(["security", "--offline=yes", &format!("--threshold={limit}")])
            .arg(unit)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let level = stdout.lines().last().unwrap_or_default();
        assert!(out.status.success(), "{unit} over {limit}: {level}");
    }
}

/// A socket standing in for systemd's notification socket.
struct Notify {
    socket: UnixDatagram,
    path: PathBuf,
}

impl Notify {
    fn bind(dir: &Path, name: &str) -> Notify {
        let path = dir.join(format!("{name}.notify"));
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Notify { socket, path }
    }

    /// The next notification, as text.
    fn recv(&self) -> String {
        let mut buf = [0u8; 4096];
        let n = self.socket.recv(&mut buf).expect("a notification in 30 s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

fn notified(name: &str, args: &[&str], dir: &Path, notify: &Notify) -> Daemon {
    let mut cmd = Command::new(estuary_bin());
    cmd.args(args)
        .env("RUST_LOG", "info")
        .env("NOTIFY_SOCKET", &notify.path);
    Daemon::spawn(name, cmd, dir)
}

#[test]
fn daemons_notify_readiness_once_they_work() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let agg_config = dir.path().join("aggregator.cfg");
    std::fs::write(
        &agg_config,
        format!(
            "LogDir = {d}/logs\nSpoolDir = {d}/spool\nListenTCP = 127.0.0.1:{port}\nSendMail =\n",
            d = dir.path().display()
        ),
    )
    .unwrap();
    let notify = Notify::bind(dir.path(), "aggregator");
    let _agg = notified(
        "aggregator",
        &["aggregate", "--config", agg_config.to_str().unwrap()],
        dir.path(),
        &notify,
    );
    assert_eq!(notify.recv().trim_end(), "READY=1");
    // Ready means listening: no retry needed.
    std::net::TcpStream::connect(("127.0.0.1", port)).expect("listening when ready");

    let input = dir.path().join("conn.log");
    std::fs::write(&input, "1.0\tseq=0\tready\n").unwrap();
    let ship_config = dir.path().join("ship.conf");
    std::fs::write(
        &ship_config,
        format!(
            "$WorkDirectory {d}/ship\n$ModLoad imfile\n$InputFileName {input}\n\
             $InputFileTag bro_conn:\n$InputFileStateFile stat-bro_conn\n\
             $InputFileFacility local7\n$InputRunFileMonitor\nlocal7.* @@127.0.0.1:{port}\n",
            d = dir.path().display(),
            input = input.display(),
        ),
    )
    .unwrap();
    let notify = Notify::bind(dir.path(), "shipper");
    let _ship = notified(
        "shipper",
        &["ship", "--config", ship_config.to_str().unwrap()],
        dir.path(),
        &notify,
    );
    assert_eq!(notify.recv().trim_end(), "READY=1");
    wait_for_lines(
        &dir.path().join("logs/current/conn.log"),
        1,
        "the line shipped",
        Duration::from_secs(20),
    );

    let notify = Notify::bind(dir.path(), "sensor");
    let trace = fixtures().join("pcaps/ftp-ipv6-all-data.pcap");
    let sensor = notified(
        "sensor",
        &[
            "sensor",
            "-r",
            trace.to_str().unwrap(),
            "--logdir",
            dir.path().join("sensor").to_str().unwrap(),
        ],
        dir.path(),
        &notify,
    );
    assert_eq!(notify.recv().trim_end(), "READY=1");
    assert!(
        sensor.output().contains("capture started"),
        "{}",
        sensor.output()
    );
}
