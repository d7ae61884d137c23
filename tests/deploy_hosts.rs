//! Four hosts in network namespaces this test creates: two workers (sensor + shipper each, the
//! traffic split by node index), an archive host (aggregator + onward forwarder) and a SIEM host
//! (syslog-ng routed by program, as ELSA's). Links are veth pairs; tcpreplay feeds each worker's
//! capture interface. While the rows travel, worker 1's link to the archive and the SIEM's link
//! are cut, and the aggregator (started from the archive host's node.cfg by `estuary start`) is
//! killed with `kill -9` and brought back by `estuary cron`. Afterwards every row
//! both sensors wrote is in the archive exactly once and at the SIEM at least once (plain TCP:
//! duplicates counted, none repeated twice), tabs intact. Peers use mutual TLS with `estuary tls`
//! certificates; a host presenting a certificate from another CA is refused.
//!
//! Needs root (namespaces), tcpreplay and syslog-ng unpacked by `.ci/setup`: without root or
//! tcpreplay the test fails under `CI=true` and is skipped, saying so, elsewhere.

mod common;
mod deploy_support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use deploy_support::{
    link, ok, require_root, require_tool, syslog_ng_args, syslog_ng_root, Netns as Host,
};

// Fixed ports are safe here: each is bound inside a namespace this test creates, whose port
// space no other process (or concurrent test) shares.
const RELP_PORT: u16 = 6514;
const SIEM_PORT: u16 = 1514;

fn tls(dir: &Path, args: &[&str]) {
    let out = Command::new(estuary_bin())
        .args(["tls", "--dir", dir.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "estuary tls {args:?}: {out:?}");
}

const LOGS: &[&str] = &[
    "conn", "dns", "http", "ftp", "ntp", "weird", "ssl", "ssh", "smtp", "notice", "tunnel", "x509",
    "files",
];

/// A worker's shipper configuration: every Zeek log to the archive over RELP with TLS.
fn shipper_config(dir: &Path, logs: &Path, archive_ip: &str, site: &Path, node: &str) -> PathBuf {
    let mut text = format!(
        "work_dir = \"{}\"\n",
        dir.join(format!("{node}-state")).display()
    );
    for log in LOGS {
        text.push_str(&format!(
            "[[input]]\npath = \"{}/{log}.log\"\ntag = \"bro_{log}:\"\nfacility = \"local7\"\nstate_file = \"{log}\"\n",
            logs.display()
        ));
    }
    text.push_str(&format!(
        "[[destination]]\nhost = \"{archive_ip}\"\nport = {RELP_PORT}\ntransport = \"relp-tls\"\n\
         ca_file = \"{ca}\"\ncert_file = \"{site}/{node}.pem\"\nkey_file = \"{site}/{node}.key\"\n\
         retry_interval = \"200ms\"\nretry_max = \"1s\"\n",
        ca = site.join("ca.pem").display(),
        site = site.display(),
    ));
    let path = dir.join(format!("{node}-ship.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn syslog_ng(host: &Host, dir: &Path) -> Daemon {
    let root = syslog_ng_root();
    let out = dir.join("elsa");
    std::fs::create_dir_all(&out).unwrap();
    let conf = dir.join("syslog-ng.conf");
    std::fs::write(
        &conf,
        format!(
            "@version: 3.38\n\
             options {{ keep-hostname(yes); use-dns(no); flush-lines(0); log-msg-size(65536); }};\n\
             source s_bro {{ network(ip(0.0.0.0) port({SIEM_PORT}) transport(tcp)); }};\n\
             destination d_bro {{ file(\"{}/${{PROGRAM}}.log\" template(\"${{MSG}}\\n\") template-escape(no)); }};\n\
             log {{ source(s_bro); filter {{ program(\"^bro_\"); }}; destination(d_bro); }};\n",
            out.display()
        ),
    )
    .unwrap();
    let mut cmd = host.cmd(root.join("usr/sbin/syslog-ng"));
    syslog_ng_args(&mut cmd, &root, &conf, dir);
    Daemon::spawn("syslog-ng", cmd, dir)
}

/// Data rows (not `#` lines) of every `*.log` under `dir`, counted.
fn rows_in(text: &str) -> HashMap<String, usize> {
    let mut rows = HashMap::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        *rows.entry(line.to_owned()).or_insert(0) += 1;
    }
    rows
}

fn logs_text(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.path().extension().is_some_and(|e| e == "log") {
            text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
    }
    text
}

#[test]
fn two_workers_an_archive_and_a_siem_lose_nothing() {
    if !require_root("to create network namespaces") || !require_tool("tcpreplay", "tcpreplay") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (w1, w2, archive, siem) = (
        Host::new("w1"),
        Host::new("w2"),
        Host::new("archive"),
        Host::new("siem"),
    );
    link(&w1, "up0", "10.9.1.2", &archive, "w1", "10.9.1.1");
    link(&w2, "up0", "10.9.2.2", &archive, "w2", "10.9.2.1");
    link(&siem, "up0", "10.9.3.2", &archive, "siem", "10.9.3.1");
    for w in [&w1, &w2] {
        w.sh("ip link add cap0 type veth peer name feed0");
        w.sh("ip link set cap0 mtu 9000 up");
        w.sh("ip link set feed0 mtu 9000 up");
    }

    let site = d.join("site");
    tls(&site, &["init"]);
    tls(
        &site,
        &["issue", "archive", "--san", "10.9.1.1", "--san", "10.9.2.1"],
    );
    tls(&site, &["issue", "w1"]);
    tls(&site, &["issue", "w2"]);
    let other = d.join("other");
    tls(&other, &["init", "--name", "another site"]);
    tls(&other, &["issue", "w2"]);

    let _siem = syslog_ng(&siem, d);
    // The archive host's site: node.cfg naming it the manager, cluster.cfg beside it.
    let etc = d.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    let node_cfg = etc.join("node.cfg");
    std::fs::write(&node_cfg, "[archive]\ntype=manager\nhost=10.9.1.1\n").unwrap();
    let agg_cfg = etc.join("cluster.cfg");
    std::fs::write(
        &agg_cfg,
        format!(
            "LogDir = {d}/archive\nSpoolDir = {d}/spool\nListenRELPTLS = 0.0.0.0:{RELP_PORT}\n\
             TLSCertFile = {site}/archive.pem\nTLSKeyFile = {site}/archive.key\nTLSCAFile = {site}/ca.pem\n\
             TLSRequireClientCert = 1\nAllowedPeers = w1 w2\nSendMail =\n\
             ForwardTo = tcp://10.9.3.2:{SIEM_PORT}\n",
            d = d.display(),
            site = site.display()
        ),
    )
    .unwrap();
    let control = |verb: &str| {
        let out = archive
            .cmd(estuary_bin())
            .args([verb, "-c", node_cfg.to_str().unwrap()])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "estuary {verb}: {text}");
        text
    };
    let _stop = Stop(&archive, &node_cfg);
    control("start");
    let agg_log = d.join("spool/archive/aggregator.stderr");
    let agg_output = || std::fs::read_to_string(&agg_log).unwrap_or_default();
    wait_for(Duration::from_secs(20), "the aggregator listening", || {
        agg_output().contains("aggregator listening").then_some(())
    });
    let _forward = archive.estuary(
        "forward",
        &["forward", "--config", agg_cfg.to_str().unwrap()],
        d,
    );

    let mut sensors = Vec::new();
    let mut shippers = Vec::new();
    for (k, (w, ip)) in [(&w1, "10.9.1.1"), (&w2, "10.9.2.1")]
        .into_iter()
        .enumerate()
    {
        let node = format!("w{}", k + 1);
        let logs = d.join(format!("{node}-logs"));
        std::fs::create_dir_all(&logs).unwrap();
        let index = k.to_string();
        sensors.push((
            logs.clone(),
            w.estuary(
                &format!("{node}-sensor"),
                &[
                    "sensor",
                    "-i",
                    "cap0",
                    "-C",
                    "--node-count",
                    "2",
                    "--node-index",
                    &index,
                    "--logdir",
                    logs.to_str().unwrap(),
                ],
                d,
            ),
        ));
        let config = shipper_config(d, &logs, ip, &site, &node);
        shippers.push(w.estuary(
            &format!("{node}-shipper"),
            &["ship", "--config", config.to_str().unwrap()],
            d,
        ));
    }
    for (_, sensor) in &sensors {
        wait_for(Duration::from_secs(20), "capture started", || {
            sensor.output().contains("capture started").then_some(())
        });
    }
    // A host with a certificate from another CA.
    let foreign_cfg = shipper_config(d, &sensors[1].0, "10.9.2.1", &other, "w2");
    let foreign_cfg2 = d.join("foreign-ship.toml");
    let text = std::fs::read_to_string(&foreign_cfg)
        .unwrap()
        .replace("w2-state", "foreign-state")
        // It trusts the site CA but presents another CA's certificate.
        .replace(
            &other.join("ca.pem").display().to_string(),
            &site.join("ca.pem").display().to_string(),
        );
    std::fs::write(&foreign_cfg2, text).unwrap();
    let foreign = w2.estuary(
        "foreign",
        &["ship", "--config", foreign_cfg2.to_str().unwrap()],
        d,
    );

    let trace = fixtures().join("pcaps/mixed-lan-ftp-http.pcap");
    for w in [&w1, &w2] {
        let mut replay = w.cmd("tcpreplay");
        replay.args(["-q", "-t", "-i", "feed0"]).arg(&trace);
        assert!(ok(&mut replay), "tcpreplay in {}", w.0);
    }
    // Worker 1 and the SIEM lose their links; the sensors write out every row as they stop.
    archive.sh("ip link set w1 down");
    archive.sh("ip link set siem down");
    for (_, sensor) in &mut sensors {
        let status = sensor
            .terminate(Duration::from_secs(30))
            .expect("sensor exits");
        assert!(status.success(), "{}", sensor.output());
    }
    let written: Vec<HashMap<String, usize>> = sensors
        .iter()
        .map(|(logs, _)| rows_in(&logs_text(logs)))
        .collect();
    let mut expected = written[0].clone();
    for (row, n) in &written[1] {
        *expected.entry(row.clone()).or_insert(0) += n;
    }
    let total: usize = expected.values().sum();
    assert!(
        written.iter().all(|w| !w.is_empty()),
        "both sensors wrote rows"
    );
    eprintln!(
        "rows written: w1 {}, w2 {}",
        written[0].values().sum::<usize>(),
        written[1].values().sum::<usize>()
    );

    // The aggregator dies while worker 2's rows arrive, and is started again.
    let archived = |log_dir: &Path| rows_in(&read_aggregator_logs(log_dir));
    let log_dir = d.join("archive");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while archived(&log_dir).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no row of worker 2 in the archive after 60 s\naggregator:\n{}\nw2 shipper:\n{}",
            agg_output(),
            shippers[1].output()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid_file = std::fs::read_to_string(d.join("spool/estuary-aggregate.pid")).unwrap();
    let pid = serde_json::from_str::<serde_json::Value>(&pid_file).unwrap()["pid"]
        .as_u64()
        .unwrap();
    assert!(ok(Command::new("kill").args(["-KILL", &pid.to_string()])));
    let cron = control("cron");
    assert!(
        cron.contains("archive aggregator: crashed") && cron.contains("restarted"),
        "{cron}"
    );
    archive.sh("ip link set w1 up");
    let got = wait_for(Duration::from_secs(60), "every row in the archive", || {
        let got = archived(&log_dir);
        (got.values().sum::<usize>() >= total).then_some(got)
    });
    assert_eq!(
        got,
        expected,
        "each row exactly once in the archive\n{}",
        agg_output()
    );

    archive.sh("ip link set siem up");
    let siem_rows = wait_for(Duration::from_secs(60), "every row at the SIEM", || {
        let got = rows_in(&logs_text(&d.join("elsa")));
        expected
            .keys()
            .all(|row| got.contains_key(row))
            .then_some(got)
    });
    let duplicates: usize = siem_rows
        .iter()
        .map(|(row, n)| n.saturating_sub(*expected.get(row).unwrap_or(&0)))
        .sum();
    let foreign_rows = siem_rows
        .keys()
        .filter(|r| !expected.contains_key(*r))
        .count();
    eprintln!("SIEM: {total} rows, {duplicates} duplicates");
    // Plain TCP is at least once: one cut of the link repeats a row at most once.
    let repeated_twice: Vec<_> = siem_rows
        .iter()
        .filter(|(row, n)| **n > expected.get(*row).unwrap_or(&0) + 1)
        .collect();
    assert!(
        repeated_twice.is_empty(),
        "rows repeated more than once at the SIEM: {repeated_twice:?}"
    );
    assert_eq!(
        foreign_rows, 0,
        "rows at the SIEM that no sensor wrote (tabs broken?)"
    );
    assert!(
        foreign.output().contains("UnknownCA"),
        "{}",
        foreign.output()
    );
    drop(shippers);
}

/// `estuary stop` for a site's node.cfg inside a namespace, however the test ends, so that no
/// daemon outlives its namespace.
struct Stop<'a>(&'a Host, &'a Path);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        let mut stop = self.0.cmd(estuary_bin());
        stop.arg("stop").arg("-c").arg(self.1);
        let _ = ok(&mut stop);
    }
}
