//! zeekctl's control commands over a node.cfg site: start, stop, status, cron, df, netstats and
//! diag, for the daemons of the nodes on this host.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use estuary_aggregator::clock::Zone;
use estuary_config::node_cfg::{Node, SiteConfig, Source};

use crate::ending;
use crate::netstats::Netstats;
use crate::pidfile::{self, Daemon, DaemonState};
use crate::plan::{self, Process};
use crate::remote;

/// How long `start` waits for a daemon's pid file, and `stop` for a daemon to exit.
const START_WAIT: Duration = Duration::from_secs(15);
const STOP_WAIT: Duration = Duration::from_secs(30);
/// Lines of a daemon's own log in a crash report.
const REPORT_LINES: usize = 25;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no node named {0:?} in node.cfg")]
    UnknownNode(String),
    #[error(transparent)]
    PidFile(#[from] pidfile::PidFileError),
}

/// What a command did: its report, and whether everything is as it should be (the exit code).
#[derive(Debug, Default)]
pub struct Outcome {
    pub text: String,
    pub ok: bool,
}

/// The nodes named (all when `names` is empty), in node.cfg order.
pub fn select<'a>(site: &'a SiteConfig, names: &[String]) -> Result<Vec<&'a Node>, ControlError> {
    if let Some(missing) = names
        .iter()
        .find(|n| !site.nodes.iter().any(|node| &node.name == *n))
    {
        return Err(ControlError::UnknownNode(missing.clone()));
    }
    Ok(site
        .nodes
        .iter()
        .filter(|n| names.is_empty() || names.contains(&n.name))
        .collect())
}

/// The daemons of the selected nodes on this host, aggregators first, then shippers, then
/// sensors (zeekctl starts the manager, then the proxies, then the workers).
fn local_processes(site: &SiteConfig, nodes: &[&Node]) -> Vec<Process> {
    let mut all: Vec<Process> = nodes
        .iter()
        .filter(|n| plan::is_local(&n.host))
        .flat_map(|n| plan::processes(site, n))
        .collect();
    all.sort_by_key(|p| match p.daemon {
        Daemon::Aggregate => 0,
        Daemon::Forward => 1,
        Daemon::Ship => 2,
        Daemon::Sensor => 3,
    });
    all
}

fn label(p: &Process) -> String {
    format!("{} {}", p.node, p.daemon.name())
}

/// Starts every daemon that is not running; running ones are left alone.
pub fn start(site: &SiteConfig, nodes: &[&Node], exe: &Path) -> Result<Outcome, ControlError> {
    let mut out = Outcome {
        ok: true,
        ..Outcome::default()
    };
    for node in nodes {
        if matches!(node.role, estuary_config::node_cfg::Role::Proxy) {
            let _ = writeln!(
                out.text,
                "{}: a proxy; estuary has nothing to run for it",
                node.name
            );
        } else if !plan::is_local(&node.host) {
            let _ = writeln!(
                out.text,
                "{}: on {}, not this host; start it there",
                node.name, node.host
            );
        }
    }
    for p in local_processes(site, nodes) {
        match pidfile::state(&p.pid_file)? {
            DaemonState::Running { pid, .. } => {
                let _ = writeln!(out.text, "{}: already running (pid {pid})", label(&p));
            }
            // Reading it again would write every row a second time.
            DaemonState::Stopped if finished(site, &p) => {
                let _ = writeln!(out.text, "{}: has read its capture", label(&p));
            }
            _ => match start_one(&p, exe) {
                Ok(pid) => {
                    let _ = writeln!(out.text, "{}: started (pid {pid})", label(&p));
                }
                Err(why) => {
                    out.ok = false;
                    let _ = writeln!(out.text, "{}: failed to start: {why}", label(&p));
                }
            },
        }
    }
    Ok(out)
}

/// Starts one daemon detached (own process group, output to its log) under the waiter that
/// records how it ends, and waits until it has written its pid file, or has exited (an error
/// with the end of its log).
fn start_one(p: &Process, exe: &Path) -> Result<u32, String> {
    use std::os::unix::process::CommandExt;
    if let Some(dir) = p.log.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    if let Some((path, text)) = &p.derived {
        fs::write(path, text).map_err(|e| format!("write {}: {e}", path.display()))?;
    }
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p.log)
        .map_err(|e| format!("open {}: {e}", p.log.display()))?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let record = ending::record_path(&p.pid_file);
    let mut child = Command::new(exe)
        .arg("waiter")
        .arg("--record")
        .arg(&record)
        .arg("--")
        .args(&p.args)
        .envs(p.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("run {}: {e}", exe.display()))?;
    let deadline = Instant::now() + START_WAIT;
    loop {
        if let Ok(DaemonState::Running { pid, .. }) = pidfile::state(&p.pid_file) {
            if pidfile::parent_of(pid) == Some(child.id()) {
                return Ok(pid);
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            // A sensor reading a short capture may be done before it is seen running.
            if status.success() && p.daemon == Daemon::Sensor {
                return Ok(child.id());
            }
            return Err(format!(
                "{status}; its log ({}) ends:\n{}",
                p.log.display(),
                tail(&p.log, 10)
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no pid file {} after {START_WAIT:?}",
                p.pid_file.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops every running daemon (sensors first, the aggregator last) and waits for each: the
/// shipper saves its offsets and the aggregator commits on SIGTERM. SIGKILL after 30 s.
pub fn stop(site: &SiteConfig, nodes: &[&Node]) -> Result<Outcome, ControlError> {
    let mut out = Outcome {
        ok: true,
        ..Outcome::default()
    };
    for p in local_processes(site, nodes).iter().rev() {
        let (ok, line) = stop_one(p)?;
        out.ok &= ok;
        let _ = writeln!(out.text, "{line}");
    }
    Ok(out)
}

/// SIGTERM to one daemon, then waits for its pid file to go (SIGKILL after [`STOP_WAIT`]).
/// Returns whether it stopped by itself, and what happened.
fn stop_one(p: &Process) -> Result<(bool, String), ControlError> {
    let DaemonState::Running { pid, .. } = pidfile::state(&p.pid_file)? else {
        return Ok((true, format!("{}: not running", label(p))));
    };
    signal(pid, rustix::process::Signal::TERM);
    let deadline = Instant::now() + STOP_WAIT;
    while pidfile::state(&p.pid_file)?.is_running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if pidfile::state(&p.pid_file)?.is_running() {
        signal(pid, rustix::process::Signal::KILL);
        return Ok((
            false,
            format!(
                "{}: did not stop within {STOP_WAIT:?}; killed (pid {pid})",
                label(p)
            ),
        ));
    }
    Ok((true, format!("{}: stopped (pid {pid})", label(p))))
}

fn signal(pid: u32, signal: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// Whether a daemon in `state` is as it should be: running, or a sensor done with its capture.
fn healthy(site: &SiteConfig, p: &Process, state: &DaemonState) -> bool {
    state.is_running() || (matches!(state, DaemonState::Stopped) && finished(site, p))
}

/// A sensor reading a capture that has read it all: it writes its statistics when done.
fn finished(site: &SiteConfig, p: &Process) -> bool {
    reads_file(site, p) && plan::node_dir(site, &p.node).join("netstats.json").exists()
}

fn reads_file(site: &SiteConfig, p: &Process) -> bool {
    p.daemon == Daemon::Sensor
        && site
            .nodes
            .iter()
            .find(|n| n.name == p.node)
            .and_then(|n| n.role.capture())
            .is_some_and(|c| matches!(c.source, Source::File(_)))
}

/// Every selected node: role, host, and per daemon on this host its state and main counters.
pub fn status(
    site: &SiteConfig,
    nodes: &[&Node],
    now: SystemTime,
) -> Result<Outcome, ControlError> {
    let mut out = Outcome {
        ok: true,
        ..Outcome::default()
    };
    for node in nodes {
        let _ = writeln!(
            out.text,
            "{} ({}, host {})",
            node.name,
            node.role.name(),
            node.host
        );
        if matches!(node.role, estuary_config::node_cfg::Role::Proxy) {
            let _ = writeln!(out.text, "  not needed: estuary runs nothing for a proxy");
            continue;
        }
        if !plan::is_local(&node.host) {
            out.ok &= remote_status(site, node, &mut out.text);
            continue;
        }
        for p in plan::processes(site, node) {
            let state = pidfile::state(&p.pid_file)?;
            let shown = match state {
                DaemonState::Stopped if reads_file(site, &p) => {
                    "finished (capture read)".to_owned()
                }
                DaemonState::Crashed { pid, .. } => match ending::read(&p.pid_file, pid) {
                    Some(end) => format!("{}: {end}", state.describe(now)),
                    None => state.describe(now),
                },
                _ => state.describe(now),
            };
            out.ok &= healthy(site, &p, &state);
            let _ = writeln!(out.text, "  {:<10} {shown}", p.daemon.name());
            if state.is_running() || reads_file(site, &p) {
                if let Some(counters) = counters(site, &p) {
                    let _ = writeln!(out.text, "             {counters}");
                }
            }
        }
    }
    Ok(out)
}

/// The daemons of a node on another host, from the `/status` each serves: whether it answers,
/// and its main counters. Returns whether every one answered.
fn remote_status(site: &SiteConfig, node: &Node, text: &mut String) -> bool {
    let mut ok = true;
    for p in plan::processes(site, node) {
        let shown = match p.metrics {
            None => {
                "unknown (no metrics address to ask: set MetricsAddress in cluster.cfg)".to_owned()
            }
            Some(addr) => {
                let url = remote::status_url(&node.host, addr.port());
                match remote::fetch(&url) {
                    Ok(status) => {
                        let _ = writeln!(text, "  {:<10} running (from {url})", p.daemon.name());
                        if let Some(counters) = remote_counters(p.daemon, status) {
                            let _ = writeln!(text, "             {counters}");
                        }
                        continue;
                    }
                    Err(why) => format!("unknown (host unreachable: {why})"),
                }
            }
        };
        ok = false;
        let _ = writeln!(text, "  {:<10} {shown}", p.daemon.name());
    }
    ok
}

fn remote_counters(daemon: Daemon, status: serde_json::Value) -> Option<String> {
    match daemon {
        Daemon::Aggregate => Some(aggregator_counters(&serde_json::from_value(status).ok()?)),
        Daemon::Ship => Some(shipper_counters(&serde_json::from_value(status).ok()?)),
        Daemon::Sensor => Some(sensor_counters(&serde_json::from_value(status).ok()?)),
        Daemon::Forward => None,
    }
}

/// The main counters of a daemon, from the files it writes.
fn counters(site: &SiteConfig, p: &Process) -> Option<String> {
    match p.daemon {
        Daemon::Aggregate => {
            let (_, config) = site.cluster.as_ref()?;
            let s = estuary_aggregator::stats::read_status(&config.spool_dir).ok()?;
            let free = estuary_aggregator::disk::usage(&config.log_dir)
                .map(|u| format!("{:.1}%", u.free_percent()))
                .unwrap_or_else(|_| "?".into());
            let queued = estuary_aggregator::mail::Queue::open(&config.spool_dir)
                .and_then(|q| q.pending())
                .map_or(0, |p| p.len());
            Some(format!(
                "{} disk_free={free}{} mail_queued={queued}",
                aggregator_counters(&s),
                if s.disk_paused { " PAUSED(disk)" } else { "" }
            ))
        }
        Daemon::Ship => {
            let work = Path::new(p.pid_file.parent()?);
            let s =
                estuary_shipper::stats::Status::load(&estuary_shipper::stats::status_path(work))
                    .ok()?;
            Some(shipper_counters(&s))
        }
        // node.cfg plans no forwarder; `estuary status -c cluster.cfg` shows its counters.
        Daemon::Forward => None,
        Daemon::Sensor => {
            let n = Netstats::load(&plan::node_dir(site, &p.node).join("netstats.json")).ok()?;
            Some(sensor_counters(&n))
        }
    }
}

fn aggregator_counters(s: &estuary_aggregator::stats::Status) -> String {
    let (mut received, mut refused, mut duplicates) = (0, 0, 0);
    for c in s.peers.values() {
        received += c.received;
        refused += c.refused;
        duplicates += c.duplicates;
    }
    format!("received={received} refused={refused} duplicates={duplicates}")
}

fn shipper_counters(s: &estuary_shipper::stats::Status) -> String {
    let parts: Vec<String> = s
        .destinations
        .iter()
        .map(|d| {
            format!(
                "[{}] read={} sent={} acked={}",
                d.name, d.counters.lines_read, d.counters.lines_sent, d.counters.lines_acked
            )
        })
        .collect();
    parts.join(" ")
}

fn sensor_counters(n: &Netstats) -> String {
    format!("packets received={} dropped={}", n.received, n.dropped())
}

/// zeekctl's cron: restarts crashed daemons on this host and mails a crash report for each,
/// starts shipping logs the sensors began writing since, and runs the aggregator's duties.
pub fn cron(site: &SiteConfig, exe: &Path, now: SystemTime) -> Result<Outcome, ControlError> {
    let mut out = Outcome {
        ok: true,
        ..Outcome::default()
    };
    let all: Vec<&Node> = site.nodes.iter().collect();
    for p in local_processes(site, &all) {
        let state = pidfile::state(&p.pid_file)?;
        if let DaemonState::Crashed { pid, .. } = state {
            let report = crash_report(site, &p, &state);
            let mailed = mail_crash_report(site, &p.node, &report, now);
            let restart = start_one(&p, exe);
            out.ok &= restart.is_ok();
            let _ = writeln!(
                out.text,
                "{}: crashed (pid {pid} was gone); {}; crash report {}",
                label(&p),
                match &restart {
                    Ok(pid) => format!("restarted (pid {pid})"),
                    Err(why) => format!("restart failed: {why}"),
                },
                match mailed {
                    Ok(()) => "mailed".to_owned(),
                    Err(why) => format!("not mailed ({why})"),
                }
            );
        } else if p.daemon == Daemon::Ship && state.is_running() {
            out.ok &= ship_new_logs(&p, exe, &mut out.text)?;
        }
    }
    if let Some((_, config)) = &site.cluster {
        if site
            .nodes
            .iter()
            .any(|n| n.role.runs_aggregator() && plan::is_local(&n.host))
        {
            // With NATS the daemon holding the notice tag mails the findings.
            match estuary_aggregator::cron::run(config, Zone::Local, now, config.nats.is_none()) {
                Ok(report) => {
                    let _ = write!(out.text, "aggregator cron: {report}");
                }
                Err(e) => {
                    out.ok = false;
                    let _ = writeln!(out.text, "aggregator cron failed: {e}");
                }
            }
        }
    }
    Ok(out)
}

/// A derived ship.toml that would now list more logs (the sensor wrote a new one): rewritten and
/// the shipper restarted on it (it saves its offsets, so nothing is sent twice).
fn ship_new_logs(p: &Process, exe: &Path, text: &mut String) -> Result<bool, ControlError> {
    let Some((path, fresh)) = &p.derived else {
        return Ok(true);
    };
    if fs::read_to_string(path).is_ok_and(|old| old == *fresh) {
        return Ok(true);
    }
    let (stopped, line) = stop_one(p)?;
    let restarted = start_one(p, exe);
    let _ = writeln!(
        text,
        "{line}; new sensor logs: restarted on the new configuration"
    );
    Ok(stopped && restarted.is_ok())
}

/// What zeekctl's crash report holds: how the daemon ended, the end of its log, version, host
/// and kernel.
pub fn crash_report(site: &SiteConfig, p: &Process, state: &DaemonState) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "node:    {}", p.node);
    let _ = writeln!(
        text,
        "daemon:  {} (estuary {})",
        p.daemon.name(),
        p.args.join(" ")
    );
    let how = match state {
        DaemonState::Crashed { pid, .. } => match ending::read(&p.pid_file, *pid) {
            Some(end) => format!("crashed: process {pid} {end}"),
            None => format!(
                "crashed: process {pid} is gone without a clean exit (killed by a signal, or it aborted); the end of its log follows"
            ),
        },
        other => other.describe(SystemTime::now()),
    };
    let _ = writeln!(text, "state:   {how}");
    let _ = writeln!(text, "version: estuary {}", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(text, "host:    {}", estuary_aggregator::mail::hostname());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let _ = writeln!(text, "kernel:  Linux {}", kernel.trim());
    let _ = writeln!(text, "spool:   {}", plan::node_dir(site, &p.node).display());
    let _ = writeln!(
        text,
        "\n==== last lines of {} ====\n{}",
        p.log.display(),
        tail(&p.log, REPORT_LINES)
    );
    text
}

fn mail_crash_report(
    site: &SiteConfig,
    node: &str,
    report: &str,
    now: SystemTime,
) -> Result<(), String> {
    use estuary_aggregator::mail::{Mail, Notifier, Queue};
    let (_, config) = site.cluster.as_ref().ok_or("no cluster.cfg")?;
    let mail = Mail {
        subject: format!("Crash report from {node}"),
        to: config.mail.to.clone(),
        body: report.to_owned(),
    };
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let id = format!("crash-{node}-{secs}");
    let queue = Queue::open(&config.spool_dir).map_err(|e| e.to_string())?;
    queue
        .push(&config.mail, &id, &mail, Zone::Local, now)
        .map_err(|e| e.to_string())?;
    Notifier::open(config, Zone::Local, now)
        .map_err(|e| e.to_string())?
        .flush();
    Ok(())
}

/// `estuary diag NODE`: the crash report of each of the node's daemons, whatever its state.
pub fn diag(site: &SiteConfig, node: &Node) -> Result<Outcome, ControlError> {
    let mut out = Outcome {
        ok: true,
        ..Outcome::default()
    };
    for p in plan::processes(site, node) {
        let state = pidfile::state(&p.pid_file)?;
        out.text.push_str(&crash_report(site, &p, &state));
        out.text.push('\n');
    }
    Ok(out)
}

/// Free space of every path the site uses on this host.
pub fn df(site: &SiteConfig) -> Outcome {
    let mut paths: Vec<(String, PathBuf)> = Vec::new();
    if let Some((_, c)) = &site.cluster {
        paths.push(("LogDir".into(), c.log_dir.clone()));
        paths.push(("SpoolDir".into(), c.spool_dir.clone()));
    }
    for node in site
        .nodes
        .iter()
        .filter(|n| plan::is_local(&n.host) && n.role.capture().is_some())
    {
        paths.push((node.name.clone(), plan::node_dir(site, &node.name)));
    }
    let mut out = Outcome {
        ok: true,
        ..Outcome::default()
    };
    for (what, path) in paths {
        match estuary_aggregator::disk::usage(&path) {
            Ok(u) => {
                let _ = writeln!(
                    out.text,
                    "{what:<12} {:>6.1}% free  {}",
                    u.free_percent(),
                    path.display()
                );
            }
            Err(e) => {
                out.ok = false;
                let _ = writeln!(out.text, "{what:<12} {e}  {}", path.display());
            }
        }
    }
    out
}

/// Packets received and dropped by the sensor of every sensor node on this host.
pub fn netstats(site: &SiteConfig, now: SystemTime) -> Outcome {
    let mut out = Outcome {
        ok: true,
        ..Outcome::default()
    };
    for node in site.nodes.iter().filter(|n| n.role.capture().is_some()) {
        if !plan::is_local(&node.host) {
            let _ = writeln!(out.text, "{}: on {}, not this host", node.name, node.host);
            continue;
        }
        match Netstats::load(&plan::node_dir(site, &node.name).join("netstats.json")) {
            Ok(n) => out.text.push_str(&n.report(&node.name, now)),
            Err(e) => {
                out.ok = false;
                let _ = writeln!(out.text, "{}: {e}", node.name);
            }
        }
    }
    out
}

/// The last `n` lines of a file (empty when it cannot be read).
fn tail(path: &Path, n: usize) -> String {
    let text = fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        fs::write(&path, "a\nb\nc\n").unwrap();
        assert_eq!(tail(&path, 2), "b\nc");
        assert_eq!(tail(&dir.path().join("none"), 2), "");
    }
}
