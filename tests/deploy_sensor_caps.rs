//! The sensor as an unprivileged user given only `CAP_NET_RAW` and `CAP_NET_ADMIN` (what the
//! systemd unit's ambient capabilities or `setcap` give it): it captures live on a veth pair in a
//! namespace this test creates, and without one of them it fails naming the capability it lacks.
//!
//! Needs root (to create the namespace and drop to `nobody` with `setpriv`); skipped otherwise.

mod common;
mod sensor_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use sensor_support::{read_log, run_sensor};

const NOBODY: &str = "65534";

fn ok(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ok(Command::new("ip").args(["netns", "del", &self.0]));
    }
}

/// `ip netns exec NS setpriv ... estuary sensor -i vcap0 --logdir LOGDIR`, as `nobody` with only
/// `caps` (setpriv's `+net_raw,+net_admin` form; empty for none).
fn sensor_as_nobody(ns: &str, caps: &str, logdir: &Path) -> Command {
    let set = |flag: &str| {
        format!(
            "--{flag}=-all{}",
            if caps.is_empty() {
                String::new()
            } else {
                format!(",{caps}")
            }
        )
    };
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, "setpriv"])
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
        ])
        .args([set("inh-caps"), set("ambient-caps"), set("bounding-set")])
        .arg(common::estuary_bin())
        .args(["sensor", "-i", "vcap0", "-C", "--no-analyzers", "--logdir"])
        .arg(logdir)
        .env("RUST_LOG", "info");
    cmd
}

fn effective_caps(pid: u32) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    Some(line.trim_start_matches("CapEff:").trim().to_owned())
}

#[test]
fn unprivileged_sensor_captures_with_two_capabilities_only() {
    let uid = Command::new("id").arg("-u").output().ok();
    if uid.is_none_or(|o| String::from_utf8_lossy(&o.stdout).trim() != "0") {
        eprintln!("SKIP: needs root to create a namespace and drop privileges");
        return;
    }
    if !ok(Command::new("setpriv").arg("--version"))
        || !ok(Command::new("tcpreplay").arg("--version"))
    {
        eprintln!("SKIP: setpriv (util-linux) or tcpreplay is not installed");
        return;
    }
    let ns = Netns(format!("estuary-caps-{}", std::process::id()));
    if !ok(Command::new("ip").args(["netns", "add", &ns.0])) {
        eprintln!("SKIP: cannot create a network namespace");
        return;
    }
    for step in [
        "sysctl -q -w net.ipv6.conf.all.disable_ipv6=1",
        "sysctl -q -w net.ipv6.conf.default.disable_ipv6=1",
        "ip link add vcap0 type veth peer name vcap1",
        "ip link set vcap0 mtu 9000 up",
        "ip link set vcap1 mtu 9000 up",
    ] {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns.0]).args(step.split(' '));
        assert!(ok(&mut cmd), "setup step {step:?} failed");
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let logdir = tmp.path().join("logs");
    std::fs::create_dir(&logdir).unwrap();
    assert!(ok(Command::new("chown")
        .args([&format!("{NOBODY}:{NOBODY}")])
        .arg(&logdir)));

    // Without capabilities, and with CAP_NET_ADMIN alone: refused, naming what is missing.
    for (caps, missing) in [
        ("", "lacks CAP_NET_RAW and CAP_NET_ADMIN"),
        ("+net_admin", "lacks CAP_NET_RAW;"),
    ] {
        let out = sensor_as_nobody(&ns.0, caps, &logdir).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "capture opened with {caps:?}: {stderr}"
        );
        assert!(stderr.contains(missing), "with {caps:?}: {stderr}");
        assert!(stderr.contains("vcap0"), "{stderr}");
    }

    let mut sensor = common::Daemon::spawn(
        "sensor",
        sensor_as_nobody(&ns.0, "+net_raw,+net_admin", &logdir),
        tmp.path(),
    );
    common::wait_for(Duration::from_secs(20), "the capture to start", || {
        sensor.output().contains("capture started").then_some(())
    });
    // The sensor is the child of `ip netns exec` exec'ing setpriv exec'ing estuary: one pid.
    let caps = effective_caps(sensor.pid()).expect("sensor status");
    assert_eq!(
        caps, "0000000000003000",
        "effective set: CAP_NET_RAW and CAP_NET_ADMIN only"
    );

    let trace = common::fixtures().join("pcaps/ftp-ipv6-all-data.pcap");
    let mut replay = Command::new("ip");
    replay
        .args([
            "netns",
            "exec",
            &ns.0,
            "tcpreplay",
            "-q",
            "-t",
            "-i",
            "vcap1",
        ])
        .arg(&trace);
    assert!(ok(&mut replay), "tcpreplay");
    let offline = tmp.path().join("offline");
    run_sensor(
        &common::estuary_bin(),
        &offline,
        &["-r", &trace.to_string_lossy(), "-C", "--no-analyzers"],
    );
    let expected = read_log(&offline.join("conn.log"), false)
        .expect("offline conn.log")
        .rows
        .len();
    let received = |dir: &Path| -> Option<u64> {
        let stats = std::fs::read(dir.join("netstats.json")).ok()?;
        serde_json::from_slice::<serde_json::Value>(&stats).ok()?["received"].as_u64()
    };
    let packets = received(&offline).expect("offline netstats");
    let status = sensor
        .terminate(Duration::from_secs(20))
        .expect("sensor exits on SIGTERM");
    assert!(status.success(), "{}", sensor.output());
    // The replay had finished before the file read above started; the capture has them all.
    assert_eq!(received(&logdir), Some(packets), "packets captured");
    let live = read_log(&logdir.join("conn.log"), false).expect("live conn.log");
    assert_eq!(live.rows.len(), expected, "{}", sensor.output());
    assert!(expected > 0);
    let owner = Command::new("stat")
        .args(["-c", "%u"])
        .arg(logdir.join("conn.log"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&owner.stdout).trim(),
        NOBODY,
        "written as nobody"
    );
}
