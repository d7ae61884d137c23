//! zeekctl's `node.cfg`: one INI section per node (`[worker-1]`, `type=worker`, `host=...`,
//! `interface=eth4`, `lb_procs=8` ...), with the cluster options (`cluster.cfg`, or zeekctl's
//! `zeekctl.cfg`) in the same folder. Together they describe the whole site.
//!
//! A manager or logger node runs the aggregator that `cluster.cfg` configures; a worker runs a
//! sensor and a shipper sending to the manager; a proxy has nothing to run in estuary; a
//! standalone node runs all three on one host. estuary adds `read = FILE` (a capture instead of
//! an interface) and `sensor_config`/`ship_config` (files that replace the derived ones).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::aggregator::AggregatorConfig;
use crate::{value, ConfigError, ConfigErrors};

/// The file names the cluster options may have beside node.cfg, in the order looked for.
pub const CLUSTER_CFG_NAMES: &[&str] = &["cluster.cfg", "zeekctl.cfg", "broctl.cfg"];

/// A validated node.cfg with the cluster options it leads to.
#[derive(Debug, Clone)]
pub struct SiteConfig {
    pub node_cfg: PathBuf,
    pub nodes: Vec<Node>,
    /// The cluster options and the file they came from (`None` when no node runs an aggregator).
    pub cluster: Option<(PathBuf, Box<AggregatorConfig>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The section name, e.g. `worker-1`.
    pub name: String,
    /// A host name or address, resolved when used.
    pub host: String,
    pub role: Role,
    /// `env_vars`: set in the environment of the node's processes.
    pub env_vars: Vec<(String, String)>,
    /// Line of the `[name]` header.
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Runs the aggregator.
    Manager,
    /// Runs the aggregator (zeekctl's dedicated log receiver); estuary treats it like a manager.
    Logger,
    /// Relays state between Zeek workers; estuary has no use for one.
    Proxy,
    Worker(Capture),
    /// Sensor, shipper and aggregator on one host.
    Standalone(Capture),
}

impl Role {
    pub fn name(&self) -> &'static str {
        match self {
            Role::Manager => "manager",
            Role::Logger => "logger",
            Role::Proxy => "proxy",
            Role::Worker(_) => "worker",
            Role::Standalone(_) => "standalone",
        }
    }

    pub fn runs_aggregator(&self) -> bool {
        matches!(self, Role::Manager | Role::Logger | Role::Standalone(_))
    }

    pub fn capture(&self) -> Option<&Capture> {
        match self {
            Role::Worker(c) | Role::Standalone(c) => Some(c),
            _ => None,
        }
    }
}

/// What a sensor node captures and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    pub source: Source,
    /// Capture threads (`lb_procs`).
    pub lb_procs: u16,
    /// `lb_method` as written; estuary splits flows itself, whatever the method.
    pub lb_method: Option<String>,
    /// CPUs to pin the capture threads to, one per thread.
    pub pin_cpus: Vec<u16>,
    /// This sensor's place among the sensor nodes (0-based) and their number, for the node split.
    pub index: u32,
    pub count: u32,
    /// Explicit configurations that replace the derived ones.
    pub sensor_config: Option<PathBuf>,
    pub ship_config: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Interface(String),
    File(PathBuf),
}

/// zeekctl keys about running Zeek that estuary accepts and does not use.
const ZEEKCTL_ONLY: &[&str] = &[
    "aux_scripts",
    "zone_id",
    "lb_interfaces",
    "af_packet_fanout_id",
    "af_packet_fanout_mode",
    "af_packet_buffer_size",
];

/// One `key=value` line in a section.
struct Entry {
    value: String,
    line: usize,
}

struct Section {
    name: String,
    line: usize,
    keys: HashMap<String, Entry>,
}

/// Whether `text` looks like a node.cfg (its first setting is a `[section]` header).
pub fn looks_like_node_cfg(text: &str) -> bool {
    text.lines()
        .map(|l| value::strip_comment(l).trim())
        .find(|l| !l.is_empty())
        .is_some_and(|l| l.starts_with('['))
}

/// Reads node.cfg and the cluster options beside it; every error of both files is reported.
pub fn load(path: &Path) -> Result<SiteConfig, ConfigErrors> {
    let text = crate::read_text(path)?;
    let mut errors = ConfigErrors::default();
    let nodes = parse(path, &text, &mut errors);
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut cluster = None;
    if let Some(node) = nodes.iter().find(|n| n.role.runs_aggregator()) {
        match CLUSTER_CFG_NAMES
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.exists())
        {
            None => errors.push(ConfigError::new(
                path,
                Some(node.line),
                Some("type"),
                format!(
                    "node {} runs the aggregator, which needs cluster.cfg in {}",
                    node.name,
                    dir.display()
                ),
            )),
            Some(file) => match crate::aggregator::load(&file) {
                Ok(config) => cluster = Some((file, Box::new(config))),
                Err(e) => errors.0.extend(e.0),
            },
        }
    }
    // Only a derived ship.toml needs to know where the manager listens.
    let derives_shipper = nodes
        .iter()
        .any(|n| n.role.capture().is_some_and(|c| c.ship_config.is_none()));
    if let Some((file, config)) = &cluster {
        if derives_shipper && config.listen.relp.is_none() && config.listen.tcp.is_none() {
            errors.push(ConfigError::new(
                file,
                None,
                Some("ListenRELP"),
                "workers send to the manager over RELP or TCP: set ListenRELP (or ListenTCP)",
            ));
        }
    }
    for node in &nodes {
        if let Some(capture) = node.role.capture() {
            for (key, file) in [
                ("sensor_config", &capture.sensor_config),
                ("ship_config", &capture.ship_config),
            ] {
                if let Some(file) = file {
                    let loaded = match key {
                        "sensor_config" => crate::sensor::load(file).map(drop),
                        _ => crate::shipper::load(file).map(drop),
                    };
                    if let Err(e) = loaded {
                        errors.0.extend(e.0);
                    }
                }
            }
        }
    }
    errors.into_result(SiteConfig {
        node_cfg: path.to_path_buf(),
        nodes,
        cluster,
    })
}

impl SiteConfig {
    /// Every node with its role, host and derived settings, as `estuary config` prints options.
    pub fn describe(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some((file, _)) = &self.cluster {
            out.push(("cluster_cfg".to_owned(), file.display().to_string()));
        }
        for node in &self.nodes {
            let mut add =
                |key: &str, value: String| out.push((format!("{}.{key}", node.name), value));
            add("type", node.role.name().to_owned());
            add("host", node.host.clone());
            if let Some(c) = node.role.capture() {
                match &c.source {
                    Source::Interface(i) => add("interface", i.clone()),
                    Source::File(f) => add("read", f.display().to_string()),
                }
                add("lb_procs", c.lb_procs.to_string());
                add("node_split", format!("{} of {}", c.index + 1, c.count));
            }
        }
        out
    }
}

fn parse(file: &Path, text: &str, errors: &mut ConfigErrors) -> Vec<Node> {
    let mut sections: Vec<Section> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let content = value::strip_comment(raw).trim();
        if content.is_empty() {
            continue;
        }
        let error =
            |key: &str, message: &str| ConfigError::new(file, Some(line), Some(key), message);
        if let Some(rest) = content.strip_prefix('[') {
            let name = rest.strip_suffix(']').map(str::trim).unwrap_or("");
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                errors.push(error(
                    content,
                    "a node name is letters, digits, '-' and '_' between [ and ]",
                ));
                continue;
            }
            if let Some(first) = sections.iter().find(|s| s.name == name) {
                errors.push(error(
                    name,
                    &format!("node defined twice (first on line {})", first.line),
                ));
                continue;
            }
            sections.push(Section {
                name: name.to_owned(),
                line,
                keys: HashMap::new(),
            });
            continue;
        }
        let Some((key, val)) = content.split_once('=') else {
            errors.push(error(content, "expected `key=value` or a `[node]` header"));
            continue;
        };
        let (key, val) = (key.trim().to_ascii_lowercase(), val.trim());
        let Some(section) = sections.last_mut() else {
            errors.push(error(&key, "comes before the first [node] header"));
            continue;
        };
        if section.keys.contains_key(&key) {
            errors.push(error(&key, "given twice for this node"));
            continue;
        }
        section.keys.insert(
            key,
            Entry {
                value: val.to_owned(),
                line,
            },
        );
    }
    if sections.is_empty() {
        errors.push(ConfigError::new(file, None, None, "no node is defined"));
    }
    let sensors = sections
        .iter()
        .filter(|s| {
            s.keys
                .get("type")
                .is_some_and(|t| matches!(t.value.as_str(), "worker" | "standalone"))
        })
        .count() as u32;
    let mut sensor_index = 0;
    let mut nodes = Vec::new();
    for section in &sections {
        if let Some(node) = node(file, section, &mut sensor_index, sensors, errors) {
            nodes.push(node);
        }
    }
    check_roles(file, &nodes, errors);
    nodes
}

fn node(
    file: &Path,
    s: &Section,
    sensor_index: &mut u32,
    sensors: u32,
    errors: &mut ConfigErrors,
) -> Option<Node> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let err = |key: &str, line: usize, message: String| {
        ConfigError::new(file, Some(line), Some(key), message)
    };
    let get = |key: &str| s.keys.get(key);
    let mut ok = true;
    let mut fail = |e: ConfigError| {
        errors.push(e);
        ok = false;
    };
    for (key, entry) in &s.keys {
        let known = matches!(
            key.as_str(),
            "type"
                | "host"
                | "interface"
                | "read"
                | "lb_procs"
                | "lb_method"
                | "pin_cpus"
                | "env_vars"
                | "sensor_config"
                | "ship_config"
        );
        if !known && !ZEEKCTL_ONLY.contains(&key.as_str()) {
            fail(err(key, entry.line, "unknown node option".into()));
        }
    }
    let host = match get("host") {
        Some(h) if !h.value.is_empty() => h.value.clone(),
        Some(h) => {
            fail(err("host", h.line, "must not be empty".into()));
            String::new()
        }
        None => {
            fail(err("host", s.line, format!("node {} has no host", s.name)));
            String::new()
        }
    };
    let env_vars = match get("env_vars") {
        None => Vec::new(),
        Some(e) => e
            .value
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .filter_map(|v| match v.split_once('=') {
                Some((k, val)) if !k.trim().is_empty() => {
                    Some((k.trim().to_owned(), val.trim().to_owned()))
                }
                _ => {
                    fail(err("env_vars", e.line, format!("{v:?} is not NAME=value")));
                    None
                }
            })
            .collect(),
    };
    let kind = match get("type") {
        None => {
            fail(err("type", s.line, format!("node {} has no type", s.name)));
            return None;
        }
        Some(t) => t,
    };
    let capture = |fail: &mut dyn FnMut(ConfigError), index: u32| -> Capture {
        let source = match (get("interface"), get("read")) {
            (Some(i), None) if !i.value.is_empty() => Source::Interface(i.value.clone()),
            (None, Some(r)) if !r.value.is_empty() => Source::File(dir.join(&r.value)),
            (Some(i), Some(_)) => {
                fail(err(
                    "read",
                    i.line,
                    "give interface or read, not both".into(),
                ));
                Source::Interface(i.value.clone())
            }
            _ => {
                fail(err(
                    "interface",
                    s.line,
                    format!("node {} needs an interface (or read = FILE)", s.name),
                ));
                Source::Interface(String::new())
            }
        };
        let lb_procs = match get("lb_procs") {
            None => 1,
            Some(e) => match e.value.parse::<u16>() {
                Ok(n @ 1..=256) => n,
                _ => {
                    fail(err(
                        "lb_procs",
                        e.line,
                        format!("{:?} is not a number from 1 to 256", e.value),
                    ));
                    1
                }
            },
        };
        let pin_cpus: Vec<u16> = match get("pin_cpus") {
            None => Vec::new(),
            Some(e) => {
                let cpus: Result<Vec<u16>, _> = e
                    .value
                    .split(',')
                    .map(|c| c.trim().parse::<u16>())
                    .collect();
                match cpus {
                    Ok(cpus) if cpus.len() == usize::from(lb_procs) => cpus,
                    Ok(cpus) => {
                        fail(err(
                            "pin_cpus",
                            e.line,
                            format!(
                                "lists {} CPUs for lb_procs={lb_procs}; give one per process",
                                cpus.len()
                            ),
                        ));
                        Vec::new()
                    }
                    Err(_) => {
                        fail(err(
                            "pin_cpus",
                            e.line,
                            format!("{:?} is not a comma-separated list of CPU numbers", e.value),
                        ));
                        Vec::new()
                    }
                }
            }
        };
        Capture {
            source,
            lb_procs,
            lb_method: get("lb_method").map(|e| e.value.clone()),
            pin_cpus,
            index,
            count: sensors,
            sensor_config: get("sensor_config").map(|e| dir.join(&e.value)),
            ship_config: get("ship_config").map(|e| dir.join(&e.value)),
        }
    };
    let role = match kind.value.as_str() {
        "manager" => Role::Manager,
        "logger" => Role::Logger,
        "proxy" => Role::Proxy,
        "worker" | "standalone" => {
            let c = capture(&mut fail, *sensor_index);
            *sensor_index += 1;
            if kind.value == "worker" {
                Role::Worker(c)
            } else {
                Role::Standalone(c)
            }
        }
        other => {
            fail(err(
                "type",
                kind.line,
                format!("{other:?} is not manager, logger, proxy, worker or standalone"),
            ));
            return None;
        }
    };
    if role.capture().is_none() {
        for key in [
            "interface",
            "read",
            "lb_procs",
            "lb_method",
            "pin_cpus",
            "sensor_config",
            "ship_config",
        ] {
            if let Some(e) = get(key) {
                fail(err(
                    key,
                    e.line,
                    format!(
                        "only for worker and standalone nodes, not a {}",
                        role.name()
                    ),
                ));
            }
        }
    }
    ok.then(|| Node {
        name: s.name.clone(),
        host,
        role,
        env_vars,
        line: s.line,
    })
}

/// One manager (or logger), or a single standalone node; workers need somewhere to send.
fn check_roles(file: &Path, nodes: &[Node], errors: &mut ConfigErrors) {
    let of = |f: fn(&Role) -> bool| nodes.iter().filter(move |n| f(&n.role));
    if let Some(standalone) = of(|r| matches!(r, Role::Standalone(_))).next() {
        if nodes.len() > 1 {
            errors.push(ConfigError::new(
                file,
                Some(standalone.line),
                Some("type"),
                "a standalone node must be the only node",
            ));
        }
        return;
    }
    let receivers: Vec<&Node> = of(|r| matches!(r, Role::Manager | Role::Logger)).collect();
    if let Some(second) = receivers.get(1) {
        errors.push(ConfigError::new(
            file,
            Some(second.line),
            Some("type"),
            format!("a second aggregator node (the first is {}); estuary has one manager or logger per site", receivers[0].name),
        ));
    }
    if receivers.is_empty() && !nodes.is_empty() {
        errors.push(ConfigError::new(
            file,
            None,
            Some("type"),
            "no manager: the workers have nowhere to send their logs",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{expect_errors, Found};

    const SEED: &str = "[manager]\ntype=manager\nhost=host1\n\n[proxy-1]\ntype=proxy\nhost=host1\n\n[worker-1]\ntype=worker\nhost=host2\ninterface=eth4\nlb_procs=8\n\n[worker-2]\ntype=worker\nhost=host3\ninterface=eth4\nlb_method=pf_ring\nlb_procs=2\npin_cpus=0,1\nenv_vars=A=1, B=2\n";

    fn load_site(files: &[(&str, &str)]) -> (tempfile::TempDir, Result<SiteConfig, ConfigErrors>) {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let loaded = load(&dir.path().join("node.cfg"));
        (dir, loaded)
    }

    const CLUSTER: &str =
        "LogDir = /var/log/bro\nSpoolDir = /var/spool/bro\nListenRELP = 0.0.0.0:2514\nSendMail =\n";

    #[test]
    fn the_seed_node_cfg_reads_as_written() {
        let (_dir, site) = load_site(&[("node.cfg", SEED), ("cluster.cfg", CLUSTER)]);
        let site = site.unwrap_or_else(|e| panic!("{e}"));
        let roles: Vec<(&str, &str, &str)> = site
            .nodes
            .iter()
            .map(|n| (n.name.as_str(), n.role.name(), n.host.as_str()))
            .collect();
        assert_eq!(
            roles,
            [
                ("manager", "manager", "host1"),
                ("proxy-1", "proxy", "host1"),
                ("worker-1", "worker", "host2"),
                ("worker-2", "worker", "host3")
            ]
        );
        let w2 = site.nodes[3].role.capture().unwrap();
        assert_eq!(w2.source, Source::Interface("eth4".into()));
        assert_eq!((w2.lb_procs, w2.index, w2.count), (2, 1, 2));
        assert_eq!(w2.pin_cpus, [0, 1]);
        assert_eq!(w2.lb_method.as_deref(), Some("pf_ring"));
        assert_eq!(
            site.nodes[3].env_vars,
            [
                ("A".to_owned(), "1".to_owned()),
                ("B".to_owned(), "2".to_owned())
            ]
        );
        assert_eq!(site.nodes[2].role.capture().unwrap().lb_procs, 8);
        assert!(site.cluster.is_some());
    }

    #[test]
    fn a_manager_listens_for_workers_only_when_a_shipper_is_derived() {
        let tls_only = "LogDir = /l\nSpoolDir = /s\nListenUDP = 127.0.0.1:5514\nSendMail =\n";
        let manager = "[manager]\ntype=manager\nhost=h\n";
        let (_dir, site) = load_site(&[("node.cfg", manager), ("cluster.cfg", tls_only)]);
        site.unwrap_or_else(|e| panic!("{e}"));
        let worker = format!("{manager}[w1]\ntype=worker\nhost=h\ninterface=eth0\n");
        let (_dir, site) = load_site(&[("node.cfg", &worker), ("cluster.cfg", tls_only)]);
        let e = site.unwrap_err().to_string();
        assert!(e.contains("cluster.cfg: ListenRELP:"), "{e}");
    }

    #[test]
    fn every_error_names_file_line_and_key() {
        let text = "[manager]\ntype=manager\nhost=h\n[w1]\ntype=worker\nhost=h\nlb_procs=0\ncolour=red\n[w2]\ntype=router\nhost=h\n[w3]\ntype=worker\nhost=h\ninterface=eth0\npin_cpus=1,2\n";
        let (_dir, site) = load_site(&[
            ("node.cfg", text),
            (
                "cluster.cfg",
                "LogDir = /l\nSpoolDir = /s\nListenRELP = 1.2.3.4:99999\n",
            ),
        ]);
        let found: Vec<Found> = expect_errors(site);
        let keys: Vec<(Option<usize>, Option<&str>)> =
            found.iter().map(|(l, k, _)| (*l, k.as_deref())).collect();
        assert!(keys.contains(&(Some(4), Some("interface"))), "{found:?}");
        assert!(keys.contains(&(Some(7), Some("lb_procs"))), "{found:?}");
        assert!(keys.contains(&(Some(8), Some("colour"))), "{found:?}");
        assert!(keys.contains(&(Some(10), Some("type"))), "{found:?}");
        assert!(keys.contains(&(Some(16), Some("pin_cpus"))), "{found:?}");
        assert!(
            keys.contains(&(Some(3), Some("ListenRELP"))),
            "the cluster.cfg error is reported too: {found:?}"
        );
    }

    #[test]
    fn a_manager_needs_cluster_cfg_and_workers_need_a_manager() {
        let (_dir, site) = load_site(&[("node.cfg", "[manager]\ntype=manager\nhost=h\n")]);
        let found = expect_errors(site);
        assert!(found[0].2.contains("needs cluster.cfg"), "{found:?}");
        let (_dir, site) = load_site(&[("node.cfg", "[w]\ntype=worker\nhost=h\nread=x.pcap\n")]);
        let found = expect_errors(site);
        assert!(found[0].2.contains("no manager"), "{found:?}");
    }

    #[test]
    fn a_standalone_node_alone_reads_a_capture() {
        let (dir, site) = load_site(&[
            (
                "node.cfg",
                "[bro]\ntype=standalone\nhost=localhost\nread=t.pcap\n",
            ),
            ("zeekctl.cfg", CLUSTER),
        ]);
        let site = site.unwrap_or_else(|e| panic!("{e}"));
        let capture = site.nodes[0].role.capture().unwrap();
        assert_eq!(capture.source, Source::File(dir.path().join("t.pcap")));
        assert_eq!(site.cluster.unwrap().0, dir.path().join("zeekctl.cfg"));
        assert!(looks_like_node_cfg("# c\n\n[bro]\n"));
        assert!(!looks_like_node_cfg("LogDir = x\n"));
    }
}
