//! What each node of a node.cfg runs, zeekctl's way: the aggregator on the manager (or logger or
//! standalone node) from cluster.cfg, and on each sensor node a sensor and a shipper sending to
//! the manager, each with its own folder `<SpoolDir>/<node>/` (sensor logs, `netstats.json`,
//! the derived `ship.toml`, the shipper's state, every daemon's stderr).

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use estuary_config::node_cfg::{Capture, Node, SiteConfig, Source};

use crate::pidfile::Daemon;

/// The logs the sensor can write, so that the shipper follows each from its first line; logs
/// found in the folder are added as well, and `estuary cron` adds new ones.
pub const SENSOR_LOGS: &[&str] = &[
    "conn", "dns", "http", "ssl", "ssh", "ftp", "smtp", "ntp", "notice", "weird",
];

/// One daemon of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub node: String,
    pub daemon: Daemon,
    /// Arguments to the `estuary` binary.
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub pid_file: PathBuf,
    /// Its stderr and stdout.
    pub log: PathBuf,
    /// The derived ship.toml to write before starting (`None`: explicit or not a shipper).
    pub derived: Option<(PathBuf, String)>,
    /// Where it serves `/metrics` and `/status`, if it does.
    pub metrics: Option<SocketAddr>,
}

/// The folder of `node`: `<SpoolDir>/<node>`.
pub fn node_dir(site: &SiteConfig, node: &str) -> PathBuf {
    spool(site).join(node)
}

fn spool(site: &SiteConfig) -> PathBuf {
    match &site.cluster {
        Some((_, c)) => c.spool_dir.clone(),
        None => site
            .node_cfg
            .parent()
            .unwrap_or(Path::new("."))
            .join("spool"),
    }
}

/// Every daemon of `node`, in start order.
pub fn processes(site: &SiteConfig, node: &Node) -> Vec<Process> {
    let dir = node_dir(site, &node.name);
    let mut out = Vec::new();
    if node.role.runs_aggregator() {
        if let Some((file, config)) = &site.cluster {
            out.push(Process {
                node: node.name.clone(),
                daemon: Daemon::Aggregate,
                args: vec![
                    "aggregate".into(),
                    "--config".into(),
                    file.display().to_string(),
                ],
                env: node.env_vars.clone(),
                pid_file: Daemon::Aggregate.pid_path(&config.spool_dir),
                log: dir.join("aggregator.stderr"),
                derived: None,
                metrics: config.metrics_address,
            });
        }
    }
    if let Some(capture) = node.role.capture() {
        out.push(shipper(site, node, capture, &dir));
        out.push(sensor(site, node, capture, &dir));
    }
    out
}

/// The metrics address of a sensor node's shipper (`offset` 1) or sensor (2): the ports after
/// the aggregator's `MetricsAddress`, two per sensor node in node.cfg order; none without one.
fn metrics_address(site: &SiteConfig, capture: &Capture, offset: u16) -> Option<SocketAddr> {
    let base = site.cluster.as_ref()?.1.metrics_address?;
    let index = u16::try_from(capture.index).ok()?;
    let port = base
        .port()
        .checked_add(offset)?
        .checked_add(index.checked_mul(2)?)?;
    Some(SocketAddr::new(base.ip(), port))
}

fn shipper(site: &SiteConfig, node: &Node, capture: &Capture, dir: &Path) -> Process {
    let (config, work_dir, derived, metrics) = match &capture.ship_config {
        Some(file) => {
            let (work, metrics) = estuary_config::shipper::load(file)
                .map(|c| (c.work_dir, c.metrics_address))
                .unwrap_or_else(|_| (dir.join("shipper"), None));
            (file.clone(), work, None, metrics)
        }
        None => {
            let file = dir.join("ship.toml");
            let metrics = metrics_address(site, capture, 1);
            let text = ship_toml(site, dir, metrics);
            (
                file.clone(),
                dir.join("shipper"),
                Some((file, text)),
                metrics,
            )
        }
    };
    Process {
        node: node.name.clone(),
        daemon: Daemon::Ship,
        args: vec![
            "ship".into(),
            "--config".into(),
            config.display().to_string(),
        ],
        env: node.env_vars.clone(),
        pid_file: Daemon::Ship.pid_path(&work_dir),
        log: dir.join("shipper.stderr"),
        derived,
        metrics,
    }
}

fn sensor(site: &SiteConfig, node: &Node, capture: &Capture, dir: &Path) -> Process {
    let pid_file = Daemon::Sensor.pid_path(dir);
    let mut args = vec!["sensor".to_owned()];
    match &capture.source {
        Source::Interface(i) => args.extend(["--interface".to_owned(), i.clone()]),
        Source::File(f) => args.extend(["--read".to_owned(), f.display().to_string()]),
    }
    args.extend(
        [
            "--logdir",
            &dir.display().to_string(),
            "--node-count",
            &capture.count.to_string(),
            "--node-index",
            &capture.index.to_string(),
            "--lb-procs",
            &capture.lb_procs.to_string(),
            "--pid-file",
            &pid_file.display().to_string(),
        ]
        .map(str::to_owned),
    );
    if let Some(config) = &capture.sensor_config {
        args.extend(["--config".to_owned(), config.display().to_string()]);
    }
    let metrics = metrics_address(site, capture, 2);
    if let Some(addr) = metrics {
        args.extend(["--metrics-address".to_owned(), addr.to_string()]);
    }
    Process {
        node: node.name.clone(),
        daemon: Daemon::Sensor,
        args,
        env: node.env_vars.clone(),
        pid_file,
        log: dir.join("sensor.stderr"),
        derived: None,
        metrics,
    }
}

/// The shipper configuration of a sensor node: every sensor log in `dir` to the manager.
pub fn ship_toml(site: &SiteConfig, dir: &Path, metrics: Option<SocketAddr>) -> String {
    let (host, port, transport) = destination(site);
    let metrics = metrics.map_or_else(String::new, |a| format!("metrics_address = \"{a}\"\n"));
    let mut text = format!(
        "# Derived from {} by estuary; edits are replaced at the next start.\nwork_dir = \"{}\"\n{metrics}\n[[destination]]\nname = \"manager\"\nhost = \"{host}\"\nport = {port}\ntransport = \"{transport}\"\nformat = \"rfc5424\"\nretry_interval = \"1s\"\nretry_max = \"30s\"\n",
        site.node_cfg.display(),
        dir.join("shipper").display(),
    );
    let mut logs: Vec<String> = SENSOR_LOGS.iter().map(|s| (*s).to_owned()).collect();
    for name in present_logs(dir) {
        if !logs.contains(&name) {
            logs.push(name);
        }
    }
    for name in logs {
        text.push_str(&estuary_config::standalone::ship_input(dir, &name));
    }
    text
}

/// The manager's host (as node.cfg names it) and its aggregator's RELP or TCP port.
fn destination(site: &SiteConfig) -> (String, u16, &'static str) {
    let host = site
        .nodes
        .iter()
        .find(|n| n.role.runs_aggregator())
        .map_or_else(|| "127.0.0.1".to_owned(), |n| n.host.clone());
    let listen = site.cluster.as_ref().map(|(_, c)| &c.listen);
    match listen.and_then(|l| {
        l.relp
            .map(|a| (a.port(), "relp"))
            .or(l.tcp.map(|a| (a.port(), "tcp")))
    }) {
        Some((port, transport)) => (host, port, transport),
        // node.cfg validation requires a listener; this is only reached for a site without one.
        None => (host, 514, "tcp"),
    }
}

/// `<name>.log` files in `dir` with a name the aggregator routes.
pub fn present_logs(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.strip_suffix(".log")?.to_owned();
            let ok =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            ok.then_some(name)
        })
        .collect();
    names.sort();
    names
}

/// Whether `host` is this machine, zeekctl's way: a name or address that resolves to an address
/// of one of its interfaces. Only the loopback interface's own address counts, not all of
/// 127.0.0.0/8, so that a test can stand for another host on 127.0.0.2.
pub fn is_local(host: &str) -> bool {
    let Ok(addrs) = (host, 0).to_socket_addrs() else {
        return false;
    };
    let own = interface_addresses();
    // Without /proc (an unusual sandbox), the loopback addresses are all it can tell.
    addrs
        .map(|a| a.ip())
        .any(|ip| own.contains(&ip) || (own.is_empty() && ip.is_loopback()))
}

/// The addresses of this machine's interfaces: IPv4 from the kernel's local routing table
/// (`/32 host LOCAL` entries of `/proc/net/fib_trie`), IPv6 from `/proc/net/if_inet6`.
fn interface_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let trie = std::fs::read_to_string("/proc/net/fib_trie").unwrap_or_default();
    let mut previous: Option<&str> = None;
    for line in trie.lines() {
        let line = line.trim();
        if line == "/32 host LOCAL" {
            if let Some(ip) = previous.and_then(|p| p.strip_prefix("|-- ")?.parse().ok()) {
                out.push(IpAddr::V4(ip));
            }
        }
        previous = Some(line);
    }
    let six = std::fs::read_to_string("/proc/net/if_inet6").unwrap_or_default();
    for line in six.lines() {
        let Some(hex) = line.split_whitespace().next() else {
            continue;
        };
        if let Ok(n) = u128::from_str_radix(hex, 16) {
            out.push(IpAddr::V6(n.into()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_hosts_own_addresses_are_local() {
        assert!(is_local("localhost"));
        assert!(is_local("127.0.0.1"));
        assert!(!is_local("127.0.0.2"));
        assert!(!is_local("192.0.2.254"));
    }

    fn site(dir: &Path, nodes: &str) -> SiteConfig {
        std::fs::write(dir.join("node.cfg"), nodes).unwrap();
        std::fs::write(
            dir.join("cluster.cfg"),
            format!(
                "LogDir = {0}/logs\nSpoolDir = {0}/spool\nListenRELP = 127.0.0.1:2514\nSendMail =\n",
                dir.display()
            ),
        )
        .unwrap();
        estuary_config::node_cfg::load(&dir.join("node.cfg")).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn workers_run_a_sensor_and_a_shipper_to_the_manager() {
        let tmp = tempfile::tempdir().unwrap();
        let site = site(
            tmp.path(),
            "[manager]\ntype=manager\nhost=localhost\n[proxy-1]\ntype=proxy\nhost=localhost\n[worker-1]\ntype=worker\nhost=127.0.0.1\nread=a.pcap\n[worker-2]\ntype=worker\nhost=127.0.0.1\ninterface=eth4\nlb_procs=2\nenv_vars=X=1\n",
        );
        let manager = processes(&site, &site.nodes[0]);
        assert_eq!(manager.len(), 1);
        assert_eq!(manager[0].daemon, Daemon::Aggregate);
        assert!(
            processes(&site, &site.nodes[1]).is_empty(),
            "a proxy runs nothing"
        );
        let w2 = processes(&site, &site.nodes[3]);
        assert_eq!(
            w2.iter().map(|p| p.daemon).collect::<Vec<_>>(),
            [Daemon::Ship, Daemon::Sensor]
        );
        let sensor = w2[1].args.join(" ");
        assert!(
            sensor.contains("--interface eth4")
                && sensor.contains("--node-count 2 --node-index 1 --lb-procs 2"),
            "{sensor}"
        );
        assert_eq!(w2[1].env, [("X".to_owned(), "1".to_owned())]);
        // The derived ship.toml is a valid shipper configuration sending to the manager.
        let (path, text) = w2[0].derived.clone().unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        let ship = estuary_config::shipper::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (
                ship.destinations[0].host.as_str(),
                ship.destinations[0].port
            ),
            ("localhost", 2514)
        );
        assert_eq!(ship.inputs.len(), SENSOR_LOGS.len());
        assert!(ship.inputs.iter().any(|i| i.tag == "bro_notice:"));
    }

    #[test]
    fn each_sensor_node_gets_metrics_ports_after_the_aggregators() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("node.cfg"),
            "[manager]\ntype=manager\nhost=localhost\n[w1]\ntype=worker\nhost=localhost\nread=a.pcap\n[w2]\ntype=worker\nhost=localhost\nread=b.pcap\n",
        )
        .unwrap();
        std::fs::write(
            tmp.path().join("cluster.cfg"),
            "LogDir = logs\nSpoolDir = spool\nListenRELP = 127.0.0.1:2514\nMetricsAddress = 127.0.0.1:9900\nSendMail =\n",
        )
        .unwrap();
        let site = estuary_config::node_cfg::load(&tmp.path().join("node.cfg")).unwrap();
        let w2 = processes(&site, &site.nodes[2]);
        assert!(w2[0]
            .derived
            .as_ref()
            .unwrap()
            .1
            .contains("metrics_address = \"127.0.0.1:9903\"\n"));
        assert!(w2[1]
            .args
            .join(" ")
            .ends_with("--metrics-address 127.0.0.1:9904"));
    }

    #[test]
    fn loopback_names_are_local() {
        assert!(is_local("localhost"));
        assert!(is_local("127.0.0.1"));
        assert!(!is_local("192.0.2.1"));
        assert!(!is_local("no-such-host.invalid"));
    }
}
