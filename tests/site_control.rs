//! A site from a node.cfg on 127.0.0.1, run as zeekctl runs one: `estuary start`, `status`,
//! `kill -9` of daemons, `estuary cron` restarting them with a crash report mailed to a real SMTP
//! server, and every row the sensors wrote archived exactly once.

mod common;
mod sensor_support;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{free_tcp_port, inbox_mails, smtp_server, wait_for};
use sensor_support::sorted_rows;

fn estuary(args: &[&str], node_cfg: &Path) -> Output {
    Command::new(common::estuary_bin())
        .args(args)
        .arg("-c")
        .arg(node_cfg)
        .output()
        .expect("estuary runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Stops the site when the test ends, passed or not: its daemons are detached.
struct Site {
    node_cfg: PathBuf,
    spool: PathBuf,
    logs: PathBuf,
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = estuary(&["stop"], &self.node_cfg);
    }
}

impl Site {
    fn pid(&self, file: &str) -> u32 {
        let text = std::fs::read_to_string(self.spool.join(file)).expect("pid file");
        let record: serde_json::Value = serde_json::from_str(&text).unwrap();
        record["pid"].as_u64().unwrap() as u32
    }
}

fn kill9(pid: u32) {
    assert!(Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap()
        .success());
}

/// Sorted rows per log over `dirs` (sensor folders).
fn sensor_rows(dirs: &[PathBuf]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for dir in dirs {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(log) = name.strip_suffix(".log") {
                let rows = sorted_rows(&std::fs::read_to_string(e.path()).unwrap());
                if !rows.is_empty() {
                    out.entry(log.to_owned()).or_default().extend(rows);
                }
            }
        }
    }
    out.values_mut().for_each(|r| r.sort());
    out
}

/// Sorted rows per log the aggregator holds: current logs and dated archives.
fn aggregated_rows(logs: &Path) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let Ok(days) = std::fs::read_dir(logs) else {
        return out;
    };
    for day in days.flatten() {
        for file in std::fs::read_dir(day.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = file.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let log = name.split('.').next().unwrap().to_owned();
            let mut text = String::new();
            let Ok(f) = std::fs::File::open(file.path()) else {
                continue;
            };
            if name.ends_with(".gz") {
                let _ = flate2::read::MultiGzDecoder::new(f).read_to_string(&mut text);
            } else {
                let _ = std::io::BufReader::new(f).read_to_string(&mut text);
            }
            let rows = sorted_rows(&text);
            if !rows.is_empty() {
                out.entry(log).or_default().extend(rows);
            }
        }
    }
    out.values_mut().for_each(|r| r.sort());
    out
}

/// Rows missing from `got` and rows in `got` beyond `expected`, per log.
fn difference(
    expected: &BTreeMap<String, Vec<String>>,
    got: &BTreeMap<String, Vec<String>>,
) -> String {
    let count = |rows: &BTreeMap<String, Vec<String>>| {
        let mut c: BTreeMap<(String, String), i64> = BTreeMap::new();
        for (log, rows) in rows {
            for row in rows {
                *c.entry((log.clone(), row.clone())).or_default() += 1;
            }
        }
        c
    };
    let (e, g) = (count(expected), count(got));
    let mut out = String::new();
    for key in e
        .keys()
        .chain(g.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let d = g.get(key).copied().unwrap_or(0) - e.get(key).copied().unwrap_or(0);
        if d != 0 {
            out.push_str(&format!("{:+} {}: {}\n", d, key.0, key.1));
        }
    }
    out
}

#[test]
fn cron_restarts_killed_daemons_mails_a_crash_report_and_nothing_is_lost_or_repeated() {
    let tmp = tempfile::tempdir().unwrap();
    let etc = tmp.path().join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    let smtp_port = free_tcp_port();
    let (_smtpd, inbox) = smtp_server(tmp.path(), smtp_port);
    let relp = free_tcp_port();
    let (logs, spool) = (tmp.path().join("logs"), tmp.path().join("spool"));
    std::fs::write(
        etc.join("cluster.cfg"),
        format!(
            "LogDir = {}\nSpoolDir = {}\nListenRELP = 127.0.0.1:{relp}\nMailTo = ops@example.org\nSmtpServer = 127.0.0.1:{smtp_port}\n",
            logs.display(),
            spool.display()
        ),
    )
    .unwrap();
    let pcaps = common::fixtures().join("pcaps");
    let node_cfg = etc.join("node.cfg");
    std::fs::write(
        &node_cfg,
        format!(
            "[manager]\ntype=manager\nhost=127.0.0.1\n\n[proxy-1]\ntype=proxy\nhost=127.0.0.1\n\n\
             [worker-1]\ntype=worker\nhost=127.0.0.1\nread={}\n\n[worker-2]\ntype=worker\nhost=localhost\nread={}\nlb_method=custom\nenv_vars=TZ=UTC\n",
            pcaps.join("http-aptget.pcap").display(),
            pcaps.join("mixed-lan-ftp-http.pcap").display()
        ),
    )
    .unwrap();
    let site = Site {
        node_cfg: node_cfg.clone(),
        spool: spool.clone(),
        logs: logs.clone(),
    };

    let out = estuary(&["check"], &node_cfg);
    assert!(out.status.success(), "{}", text(&out));
    let out = estuary(&["nodes"], &node_cfg);
    let nodes = text(&out);
    assert!(
        nodes.contains("worker-2 (worker, host localhost)")
            && nodes.contains("split      node 2 of 2, 1 capture threads (lb_method: custom)"),
        "{nodes}"
    );

    let out = estuary(&["start"], &node_cfg);
    let started = text(&out);
    assert!(out.status.success(), "{started}");
    assert!(started.contains("manager aggregator: started"), "{started}");
    assert!(started.contains("worker-2 shipper: started"), "{started}");

    let workers = [spool.join("worker-1"), spool.join("worker-2")];
    // Both sensors read their whole capture (each analyses its half of the flows).
    let expected = wait_for(Duration::from_secs(60), "both sensors to finish", || {
        let done = workers
            .iter()
            .all(|w| w.join("netstats.json").exists() && !w.join("estuary-sensor.pid").exists());
        done.then(|| sensor_rows(&workers))
    });
    assert!(
        expected.contains_key("conn") && expected.contains_key("http"),
        "{expected:?}"
    );
    // start leaves running daemons alone and does not read a capture twice.
    let out = estuary(&["start"], &node_cfg);
    let again = text(&out);
    assert!(
        again.contains("manager aggregator: already running")
            && again.contains("worker-1 sensor: has read its capture"),
        "{again}"
    );
    wait_for(
        Duration::from_secs(60),
        "the first rows at the aggregator",
        || aggregated_rows(&logs).get("conn").map(|_| ()),
    );

    // Crash the aggregator and worker-1's shipper.
    kill9(site.pid("estuary-aggregate.pid"));
    kill9(site.pid("worker-1/shipper/estuary-ship.pid"));
    // The waiter each daemon runs under records the signal that ended it.
    let (code, status) = wait_for(Duration::from_secs(10), "both daemons seen crashed", || {
        let out = estuary(&["status"], &node_cfg);
        let status = text(&out);
        (status.matches("crashed").count() == 2
            && status.matches("killed by signal 9 (SIGKILL)").count() == 2)
            .then(|| (out.status.code(), status))
    });
    assert_eq!(code, Some(1), "{status}");
    assert!(status.contains("aggregator crashed (pid"), "{status}");

    let out = estuary(&["cron"], &node_cfg);
    let cron = text(&out);
    assert!(out.status.success(), "{cron}");
    assert!(
        cron.contains("manager aggregator: crashed") && cron.contains("restarted"),
        "{cron}"
    );
    assert!(cron.contains("worker-1 shipper: crashed"), "{cron}");

    let out = estuary(&["status"], &node_cfg);
    let status = text(&out);
    assert!(out.status.success(), "every node runs again:\n{status}");
    assert!(status.contains("finished (capture read)"), "{status}");
    assert!(status.contains("proxy-1 (proxy"), "{status}");

    // Crash reports arrive, one per crashed daemon, as zeekctl words them.
    let mails = wait_for(Duration::from_secs(30), "two crash reports", || {
        let mails = inbox_mails(&inbox);
        (mails.len() >= 2).then_some(mails)
    });
    let subjects: Vec<&str> = mails
        .iter()
        .filter_map(|m| m.lines().find(|l| l.starts_with("Subject: ")))
        .collect();
    assert!(
        subjects.contains(&"Subject: [Bro] Crash report from manager"),
        "{subjects:?}"
    );
    assert!(
        subjects.contains(&"Subject: [Bro] Crash report from worker-1"),
        "{subjects:?}"
    );
    let report = mails
        .iter()
        .find(|m| m.contains("Crash report from worker-1"))
        .unwrap();
    assert!(report.starts_with("X-Rcpt: ops@example.org\n"), "{report}");
    for field in [
        "daemon:  shipper",
        "state:   crashed: process",
        "killed by signal 9 (SIGKILL) at ",
        "version: estuary",
        "kernel:  Linux",
        "==== last lines of",
    ] {
        assert!(report.contains(field), "no {field:?} in\n{report}");
    }

    // Every row both sensors wrote is at the aggregator exactly once.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while aggregated_rows(&logs) != expected {
        assert!(
            std::time::Instant::now() < deadline,
            "not every row archived exactly once:\n{}\n{cron}\n{}\n{}",
            difference(&expected, &aggregated_rows(&logs)),
            std::fs::read_to_string(spool.join("worker-2/shipper.stderr")).unwrap_or_default(),
            std::fs::read_to_string(spool.join("manager/aggregator.stderr")).unwrap_or_default(),
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // `restart` stops (draining) and starts the named nodes' daemons, and nothing is repeated.
    let before = (
        site.pid("estuary-aggregate.pid"),
        site.pid("worker-1/shipper/estuary-ship.pid"),
    );
    let out = estuary(&["restart", "manager", "worker-1"], &node_cfg);
    assert!(out.status.success(), "{}", text(&out));
    let after = (
        site.pid("estuary-aggregate.pid"),
        site.pid("worker-1/shipper/estuary-ship.pid"),
    );
    assert!(
        after.0 != before.0 && after.1 != before.1,
        "{before:?} {after:?}"
    );
    let out = estuary(&["status"], &node_cfg);
    assert!(out.status.success(), "{}", text(&out));
    let out = estuary(&["stop"], &node_cfg);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(aggregated_rows(&site.logs), expected);

    let out = estuary(&["netstats"], &node_cfg);
    let netstats = text(&out);
    assert!(
        netstats.contains("worker-1: recvd=") && netstats.contains("worker-2: recvd="),
        "{netstats}"
    );
    let out = estuary(&["df"], &node_cfg);
    assert!(text(&out).contains("% free"), "{}", text(&out));
    let out = estuary(&["diag", "worker-1"], &node_cfg);
    assert!(text(&out).contains("node:    worker-1"), "{}", text(&out));
}

#[test]
fn check_reports_every_node_cfg_and_cluster_cfg_error_with_file_line_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let node_cfg = tmp.path().join("node.cfg");
    std::fs::write(
        &node_cfg,
        "[manager]\ntype=manager\nhost=localhost\n\n[worker-1]\ntype=worker\nhost=localhost\ninterface=eth4\nlb_procs=0\n",
    )
    .unwrap();
    let cluster = tmp.path().join("cluster.cfg");
    std::fs::write(
        &cluster,
        "LogDir = logs\nSpoolDir = spool\nListenRELP = nowhere\n",
    )
    .unwrap();
    let out = estuary(&["check"], &node_cfg);
    assert_eq!(out.status.code(), Some(1));
    let report = text(&out);
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(
        lines,
        [
            format!(
                "{}:9: lb_procs: \"0\" is not a number from 1 to 256",
                node_cfg.display()
            ),
            format!(
                "{}:3: ListenRELP: \"nowhere\" is not address:port (e.g. 0.0.0.0:514 or [::1]:514)",
                cluster.display()
            ),
        ]
    );
}
