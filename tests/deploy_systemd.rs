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

/// SIGHUP (what `systemctl reload` or logrotate's `postrotate` send) does not end a sensor in
/// the middle of its input: it reads a pcap through a FIFO, gets SIGHUP halfway, and still
/// analyses the rest and exits cleanly. Its unit offers no reload, since it has nothing to re-read.
#[test]
fn sighup_does_not_stop_a_sensor_mid_run() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("in.pcap");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let mut sensor = Daemon::estuary(
        "sensor",
        &[
            "sensor",
            "-r",
            fifo.to_str().unwrap(),
            "--logdir",
            logs.to_str().unwrap(),
        ],
        dir.path(),
    );
    let pcap = std::fs::read(fixtures().join("pcaps/http-aptget.pcap")).unwrap();
    let (head, tail) = pcap.split_at(pcap.len() / 2);
    // Opening blocks until the sensor opens its end, after its signal handlers are in place.
    let mut input = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    std::io::Write::write_all(&mut input, head).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sensor.pid() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    wait_for(Duration::from_secs(10), "the sensor to note SIGHUP", || {
        sensor.output().contains("nothing to reload").then_some(())
    });
    assert!(sensor.is_running(), "{}", sensor.output());
    std::io::Write::write_all(&mut input, tail).unwrap();
    drop(input);
    let status = sensor.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{status:?}: {}", sensor.output());
    let conn = std::fs::read_to_string(logs.join("conn.log")).unwrap();
    assert!(conn.lines().any(|l| !l.starts_with('#')), "{conn}");
}

/// The `ExecReload` line of a unit, `None` when it has none.
fn exec_reload(unit: &str) -> Option<String> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/systemd");
    let text = std::fs::read_to_string(source.join(unit)).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("ExecReload="))
        .map(str::to_owned)
}

/// `systemctl reload` runs the unit's `ExecReload` with `$MAINPID`: for the aggregator that
/// re-reads its configuration in the same process (a new listening port here), telling systemd
/// `RELOADING=1` and then `READY=1` once it listens again. The units of daemons with nothing to
/// re-read offer no reload.
#[test]
fn systemctl_reload_applies_a_new_aggregator_configuration_in_the_same_process() {
    for unit in ["estuary-forward.service", "estuary-sensor@.service"] {
        assert_eq!(
            exec_reload(unit),
            None,
            "{unit} offers a reload that does nothing"
        );
    }
    assert!(exec_reload("estuary-shipper.service").is_some());
    let reload = exec_reload("estuary-aggregator.service").expect("the aggregator reloads");

    let dir = tempfile::tempdir().unwrap();
    let (old_port, new_port) = (free_tcp_port(), free_tcp_port());
    let config = dir.path().join("aggregator.cfg");
    let write_config = |port: u16| {
        std::fs::write(
            &config,
            format!(
                "LogDir = {d}/logs\nSpoolDir = {d}/spool\nListenTCP = 127.0.0.1:{port}\nSendMail =\n",
                d = dir.path().display()
            ),
        )
        .unwrap()
    };
    write_config(old_port);
    let notify = Notify::bind(dir.path(), "aggregator");
    let mut agg = notified(
        "aggregator",
        &["aggregate", "--config", config.to_str().unwrap()],
        dir.path(),
        &notify,
    );
    assert_eq!(notify.recv().trim_end(), "READY=1");
    let pid = agg.pid();
    write_config(new_port);
    let command = reload.replace("$MAINPID", &pid.to_string());
    let status = Command::new("sh").arg("-c").arg(&command).status().unwrap();
    assert!(status.success(), "{command}: {status:?}");
    assert_eq!(notify.recv().trim_end(), "RELOADING=1");
    assert_eq!(notify.recv().trim_end(), "READY=1");
    std::net::TcpStream::connect(("127.0.0.1", new_port)).expect("listening on the new port");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", old_port)).is_err(),
        "the old port is closed"
    );
    assert_eq!(agg.pid(), pid);
    assert!(agg.is_running(), "{}", agg.output());
}
