//! What the deploy tests share: quiet setup commands, the root they need, and network
//! namespaces standing in for hosts.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::{estuary_bin, prereq, Daemon};

/// Runs `cmd` with its output discarded; whether it succeeded.
pub fn ok(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether the test runs as root, which it needs `for_what`; a missing root fails the test
/// under `CI=true` and skips it visibly elsewhere.
pub fn require_root(for_what: &str) -> bool {
    let uid = Command::new("id").arg("-u").output().ok();
    let root = uid.is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    prereq::require(root, &format!("needs root {for_what}"))
}

/// Whether `program --version` runs; otherwise as [`require_root`] for a missing tool.
pub fn require_tool(program: &str, package: &str) -> bool {
    let there = ok(Command::new(program).arg("--version"));
    prereq::require(
        there,
        &format!("{program} is missing: .ci/setup installs {package}"),
    )
}

/// A network namespace (loopback up, IPv6 off so no router solicitations reach a capture),
/// deleted with its interfaces when dropped.
pub struct Netns(pub String);

impl Netns {
    pub fn new(role: &str) -> Netns {
        let ns = Netns(format!("estuary-{role}-{}", std::process::id()));
        assert!(
            ok(Command::new("ip").args(["netns", "add", &ns.0])),
            "netns {role}"
        );
        ns.sh("ip link set lo up");
        ns.sh("sysctl -q -w net.ipv6.conf.all.disable_ipv6=1");
        ns.sh("sysctl -q -w net.ipv6.conf.default.disable_ipv6=1");
        ns
    }

    /// `program` run inside the namespace.
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.0]).arg(program);
        cmd
    }

    /// Runs a command given as words; the test fails if it does.
    pub fn sh(&self, words: &str) {
        let mut parts = words.split(' ');
        let mut cmd = self.cmd(parts.next().unwrap());
        cmd.args(parts);
        assert!(ok(&mut cmd), "{}: {words}", self.0);
    }

    /// `estuary <args>` as a daemon inside the namespace.
    pub fn estuary(&self, name: &str, args: &[&str], dir: &Path) -> Daemon {
        let mut cmd = self.cmd(estuary_bin());
        cmd.args(args).env("RUST_LOG", "info");
        Daemon::spawn(name, cmd, dir)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ok(Command::new("ip").args(["netns", "del", &self.0]));
    }
}

/// A veth link `a_if` in `a` (address `a_ip`/24) to `b_if` in `b` (`b_ip`/24).
pub fn link(a: &Netns, a_if: &str, a_ip: &str, b: &Netns, b_if: &str, b_ip: &str) {
    let mut cmd = a.cmd("ip");
    cmd.args([
        "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", &b.0,
    ]);
    assert!(ok(&mut cmd), "veth {a_if}");
    for (ns, ifname, ip) in [(a, a_if, a_ip), (b, b_if, b_ip)] {
        ns.sh(&format!("ip addr add {ip}/24 dev {ifname}"));
        ns.sh(&format!("ip link set {ifname} up"));
    }
}

/// syslog-ng as `.ci/setup` unpacks it (under `$ESTUARY_PEERS`, default `/opt/estuary-peers`).
pub fn syslog_ng_root() -> PathBuf {
    let root = std::env::var_os("ESTUARY_PEERS")
        .map_or_else(|| PathBuf::from("/opt/estuary-peers"), PathBuf::from)
        .join("syslog-ng");
    assert!(
        root.join("usr/sbin/syslog-ng").exists(),
        "syslog-ng is not unpacked in {}: run .ci/setup",
        root.display()
    );
    root
}

/// `cmd`, which runs `<root>/usr/sbin/syslog-ng`, in the foreground on `conf` with its
/// libraries from `root` and its state files in `dir`.
pub fn syslog_ng_args(cmd: &mut Command, root: &Path, conf: &Path, dir: &Path) {
    cmd.args(["--foreground", "--no-caps", "--cfgfile"])
        .arg(conf)
        .arg("--persist-file")
        .arg(dir.join("syslog-ng.persist"))
        .arg("--pidfile")
        .arg(dir.join("syslog-ng.pid"))
        .arg("--control")
        .arg(dir.join("syslog-ng.ctl"))
        .env("SYSLOGNG_PREFIX", root.join("usr"))
        .env("LD_LIBRARY_PATH", root.join("usr/lib/syslog-ng"));
}
