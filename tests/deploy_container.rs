//! The container image (`deploy/container/Containerfile`) built without a registry and run as
//! the compose file runs it: an aggregator container and a shipper container (non-root, logs and
//! spool on volumes, mutual TLS with `estuary tls` certificates, the aggregator found by the name
//! `aggregator`), on the host's network but only on 127.0.0.1. Every line reaches the archive.
//!
//! Ignored by default: it needs root, podman, runc and debootstrap, and downloads a Debian base
//! system (about a minute) the first time. Run with
//! `cargo test --test deploy_container -- --ignored --nocapture` (prints the image size).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::*;

const BASE: &str = "localhost/debian:bookworm-slim";
const IMAGE: &str = "localhost/estuary:test";
/// The image's estuary user.
const UID: &str = "10001";

/// podman with storage and settings of its own under the target directory (kept between runs,
/// so the base image is made once): runc and cgroupfs, and rlimits within the host's.
struct Podman {
    conf: PathBuf,
    storage: PathBuf,
}

impl Podman {
    fn new() -> Podman {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("podman");
        std::fs::create_dir_all(&root).unwrap();
        let (conf, storage) = (root.join("containers.conf"), root.join("storage.conf"));
        std::fs::write(
            &conf,
            "[containers]\n\
             default_capabilities = [\"CHOWN\",\"DAC_OVERRIDE\",\"FOWNER\",\"FSETID\",\"KILL\",\
             \"NET_BIND_SERVICE\",\"SETFCAP\",\"SETGID\",\"SETPCAP\",\"SETUID\",\"SYS_CHROOT\"]\n\
             default_ulimits = [\"nofile=4096:4096\", \"nproc=4096:4096\"]\n\
             [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
        )
        .unwrap();
        std::fs::write(
            &storage,
            format!(
                "[storage]\ndriver = \"overlay\"\ngraphroot = \"{0}/graph\"\nrunroot = \"{0}/run\"\n",
                root.display()
            ),
        )
        .unwrap();
        Podman { conf, storage }
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::new("podman");
        cmd.env("CONTAINERS_CONF", &self.conf)
            .env("CONTAINERS_STORAGE_CONF", &self.storage);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd().args(args).output().expect("podman");
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

/// A container removed (with `podman rm -f`) when dropped.
struct Container<'a> {
    podman: &'a Podman,
    name: String,
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self.podman.cmd().args(["rm", "-f", &self.name]).output();
    }
}

impl Container<'_> {
    fn logs(&self) -> String {
        let out = self
            .podman
            .cmd()
            .args(["logs", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }
}

fn ok(cmd: &mut Command) -> bool {
    cmd.output().is_ok_and(|o| o.status.success())
}

/// The Debian mirror apt already uses.
fn mirror() -> String {
    let sources =
        std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources").unwrap_or_default();
    sources
        .lines()
        .find_map(|l| l.strip_prefix("URIs:"))
        .map(|u| u.trim().to_owned())
        .unwrap_or_else(|| "http://deb.debian.org/debian".into())
}

/// A minimal Debian 12 base image imported from debootstrap (there is no registry to pull from).
fn ensure_base(podman: &Podman) {
    if ok(podman.cmd().args(["image", "exists", BASE])) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    let out = Command::new("debootstrap")
        .args(["--variant=minbase", "--include=libpcap0.8", "bookworm"])
        .arg(&rootfs)
        .arg(mirror())
        .output()
        .unwrap();
    assert!(out.status.success(), "debootstrap: {out:?}");
    for junk in [
        "var/cache/apt/archives",
        "var/lib/apt/lists",
        "usr/share/doc",
        "usr/share/man",
        "usr/share/locale",
    ] {
        let _ = std::fs::remove_dir_all(rootfs.join(junk));
    }
    let mut tar = Command::new("tar")
        .args(["--numeric-owner", "-C"])
        .arg(&rootfs)
        .args(["-c", "."])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let import = podman
        .cmd()
        .args(["import", "--change", "CMD [\"/bin/bash\"]", "-", BASE])
        .stdin(tar.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(tar.wait().unwrap().success(), "tar of the base system");
    assert!(import.status.success(), "podman import: {import:?}");
}

fn build_image(podman: &Podman) -> u64 {
    let ctx = tempfile::tempdir().unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/container/Containerfile"),
        ctx.path().join("Containerfile"),
    )
    .unwrap();
    // The test binary is a debug build: without its debug info it is closer to a release one.
    assert!(ok(Command::new("strip")
        .arg("-o")
        .arg(ctx.path().join("estuary"))
        .arg(estuary_bin())));
    podman.run(&[
        "build",
        "--pull=never",
        "--build-arg",
        &format!("BASE={BASE}"),
        "-t",
        IMAGE,
        "-f",
        ctx.path().join("Containerfile").to_str().unwrap(),
        ctx.path().to_str().unwrap(),
    ]);
    let out = podman.run(&["image", "inspect", "--format", "{{.Size}}", IMAGE]);
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn chown_estuary(path: &Path) {
    assert!(ok(Command::new("chown")
        .args(["-R", &format!("{UID}:{UID}")])
        .arg(path)));
}

#[test]
#[ignore = "needs root, podman, runc, debootstrap and a Debian mirror; run with --ignored"]
fn aggregator_and_shipper_containers_deliver_every_line() {
    let podman = Podman::new();
    ensure_base(&podman);
    let size = build_image(&podman);
    eprintln!("image {IMAGE}: {:.1} MB", size as f64 / 1e6);

    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let tls = dir.path().join("tls");
    for args in [
        vec!["init"],
        vec!["issue", "aggregator"],
        vec!["issue", "sensor1"],
    ] {
        let out = Command::new(estuary_bin())
            .args(["tls", "--dir", tls.to_str().unwrap()])
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    chown_estuary(&tls);
    let dirs: Vec<PathBuf> = ["logs", "agg-spool", "sensor", "ship-spool"]
        .iter()
        .map(|d| dir.path().join(d))
        .collect();
    for d in &dirs {
        std::fs::create_dir(d).unwrap();
        chown_estuary(d);
    }
    let [logs, agg_spool, sensor, ship_spool] = &dirs[..] else {
        unreachable!()
    };

    // The deployment's own files, on a free loopback port instead of 6514 on every address.
    let port = free_tcp_port();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/container");
    let agg_cfg = dir.path().join("aggregator.cfg");
    let text = std::fs::read_to_string(example.join("aggregator.cfg")).unwrap();
    std::fs::write(
        &agg_cfg,
        text.replace("0.0.0.0:6514", &format!("127.0.0.1:{port}")),
    )
    .unwrap();
    let ship_cfg = dir.path().join("ship.toml");
    let text = std::fs::read_to_string(example.join("ship.toml")).unwrap();
    std::fs::write(
        &ship_cfg,
        text.replace("port = 6514", &format!("port = {port}")),
    )
    .unwrap();

    let volume =
        |host: &Path, inside: &str, mode: &str| format!("{}:{inside}:{mode}", host.display());
    let pid = std::process::id();
    let agg = Container {
        podman: &podman,
        name: format!("estuary-aggregator-{pid}"),
    };
    podman.run(&[
        "run",
        "-d",
        "--name",
        &agg.name,
        "--network",
        "host",
        "--cap-drop",
        "ALL",
        "-v",
        &volume(&agg_cfg, "/etc/estuary/aggregator.cfg", "ro"),
        "-v",
        &volume(&tls, "/etc/estuary/tls", "ro"),
        "-v",
        &volume(logs, "/var/log/estuary", "rw"),
        "-v",
        &volume(agg_spool, "/var/spool/estuary", "rw"),
        IMAGE,
        "aggregate",
        "--config",
        "/etc/estuary/aggregator.cfg",
    ]);
    wait_for(
        Duration::from_secs(30),
        "the aggregator container listening",
        || agg.logs().contains("aggregator listening").then_some(()),
    );

    let text: String = (0..2000)
        .map(|i| format!("1.0\tseq={i}\tcontainer\t\n"))
        .collect();
    std::fs::write(sensor.join("conn.log"), &text).unwrap();
    let ship = Container {
        podman: &podman,
        name: format!("estuary-shipper-{pid}"),
    };
    podman.run(&[
        "run",
        "-d",
        "--name",
        &ship.name,
        "--network",
        "host",
        "--cap-drop",
        "ALL",
        "--add-host",
        "aggregator:127.0.0.1",
        "-v",
        &volume(&ship_cfg, "/etc/estuary/ship.toml", "ro"),
        "-v",
        &volume(&tls, "/etc/estuary/tls", "ro"),
        "-v",
        &volume(sensor, "/var/spool/estuary/sensor", "ro"),
        "-v",
        &volume(ship_spool, "/var/spool/estuary", "rw"),
        IMAGE,
        "ship",
        "--config",
        "/etc/estuary/ship.toml",
    ]);
    let conn = logs.join("current/conn.log");
    let got = wait_for(Duration::from_secs(60), "2000 lines in the archive", || {
        let t = std::fs::read_to_string(&conn).unwrap_or_default();
        (t.lines().count() >= 2000).then_some(t)
    });
    assert_eq!(got, text, "every line, byte for byte ({})", ship.logs());

    for c in [&agg, &ship] {
        let out = podman.run(&["exec", &c.name, "id", "-u"]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            UID,
            "{} runs as estuary",
            c.name
        );
    }
    // State and logs are on the volumes, written by the container's user.
    for file in [ship_spool.join("stat-bro_conn"), conn] {
        let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&file).unwrap());
        assert_eq!(owner.to_string(), UID, "{}", file.display());
    }
}
