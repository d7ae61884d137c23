//! `NatsServers` and friends: the aggregator reads its tags from a NATS JetStream stream
//! instead of (or as well as) listening for syslog.

use std::path::PathBuf;
use std::time::Duration;

use super::Settings;
use crate::aggregator::Listeners;
use crate::value;

/// What the aggregator does with the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatsRole {
    /// Reads its `NatsTags` from the stream and writes them (the default).
    Reader,
    /// `NatsIngest = 1`: publishes what its listeners receive to the stream, for senders that
    /// cannot speak NATS, and writes no logs itself.
    Ingest,
}

/// The aggregator as one of several reading a NATS JetStream stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsInput {
    /// `NatsServers`: `nats://host:port` (or `tls://`) URLs of the cluster's servers, comma- or
    /// space-separated.
    pub servers: Vec<String>,
    /// `NatsStream`, default `ESTUARY`.
    pub stream: String,
    pub role: NatsRole,
    /// `NatsTags`: the syslog tags (as shippers send them) read from the stream; each is held
    /// by one aggregator at a time. Empty for an ingest node.
    pub tags: Vec<String>,
    /// `NatsName`: this aggregator in the marks it commits; default the host name.
    pub name: String,
    /// `NatsCredentials`: a `.creds` file.
    pub credentials: Option<PathBuf>,
    /// `NatsCAFile`: CA bundle to verify the servers with; implies TLS.
    pub ca_file: Option<PathBuf>,
    /// `NatsReplicas`: copies of the stream and marks, 3 by default (1 for a test bench).
    pub replicas: usize,
    /// `NatsPriorityTimeout`: how long a silent aggregator keeps its tags. Default 30 s.
    pub priority_timeout: Duration,
    /// `NatsMaxAge`: how long the stream keeps lines no aggregator took. Default 72 h.
    pub max_age: Duration,
    /// `NatsDuplicateWindow`: how long the servers drop a resent batch by id. Default 2 min.
    pub duplicate_window: Duration,
}

/// Below this the pull requests that keep a pin (a third of it, at least a second) cannot.
const MIN_PRIORITY_TIMEOUT: Duration = Duration::from_secs(3);

impl Settings<'_> {
    pub(super) fn nats(
        &mut self,
        path_of: &dyn Fn(&str) -> Result<PathBuf, String>,
        listen: &Listeners,
    ) -> Option<NatsInput> {
        let ingest = self.get("NatsIngest", value::parse_bool).unwrap_or(false);
        let servers = self.get("NatsServers", parse_servers).unwrap_or_default();
        if servers.is_empty() {
            if ingest {
                self.error("NatsIngest", "needs NatsServers (where to publish)");
            }
            return None;
        }
        let role = if ingest {
            NatsRole::Ingest
        } else {
            NatsRole::Reader
        };
        let tags = match role {
            NatsRole::Reader => {
                if !self.values.contains_key("NatsTags") {
                    self.error(
                        "NatsTags",
                        "is required with NatsServers (the tags this aggregator reads)",
                    );
                }
                self.get("NatsTags", parse_tags)
            }
            NatsRole::Ingest => {
                if self.values.contains_key("NatsTags") {
                    self.error(
                        "NatsTags",
                        "is for aggregators reading the stream; an ingest node (NatsIngest = 1) publishes every tag it receives",
                    );
                }
                let Listeners {
                    udp,
                    tcp,
                    tls,
                    relp,
                    relp_tls,
                } = listen;
                if [udp, tcp, tls, relp, relp_tls].iter().all(|l| l.is_none()) {
                    self.error(
                        "NatsIngest",
                        "needs a listener (ListenUDP, ListenTCP, ListenTLS, ListenRELP or ListenRELPTLS)",
                    );
                }
                None
            }
        };
        let stream = self
            .get("NatsStream", |v| {
                let ok = !v.is_empty()
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                ok.then(|| v.to_owned())
                    .ok_or_else(|| format!("{v:?} is not a stream name (A-Z a-z 0-9 _ -)"))
            })
            .unwrap_or_else(|| "ESTUARY".to_owned());
        let name = self
            .get("NatsName", |v| {
                value::check_hostname(v).map(|()| v.to_owned())
            })
            .unwrap_or_else(value::local_hostname);
        let credentials = self.get("NatsCredentials", path_of);
        let ca_file = self.get("NatsCAFile", path_of);
        let replicas = self
            .get("NatsReplicas", |v| match v {
                "1" => Ok(1),
                "3" => Ok(3),
                "5" => Ok(5),
                _ => Err(format!("expected 1, 3 or 5, got {v:?}")),
            })
            .unwrap_or(3);
        let priority_timeout = self
            .get("NatsPriorityTimeout", |v| match value::parse_duration(v)? {
                d if d < MIN_PRIORITY_TIMEOUT => Err(format!("{v:?} is shorter than 3s")),
                d => Ok(d),
            })
            .unwrap_or(Duration::from_secs(30));
        let max_age = self
            .get("NatsMaxAge", value::parse_duration)
            .unwrap_or(Duration::from_secs(72 * 3600));
        let duplicate_window = self
            .get("NatsDuplicateWindow", value::parse_duration)
            .unwrap_or(Duration::from_secs(120));
        if duplicate_window.is_zero() || duplicate_window > max_age {
            self.error(
                "NatsDuplicateWindow",
                "must be above 0 and not longer than NatsMaxAge",
            );
        }
        Some(NatsInput {
            servers,
            stream,
            role,
            tags: tags.unwrap_or_default(),
            name,
            credentials,
            ca_file,
            replicas,
            priority_timeout,
            max_age,
            duplicate_window,
        })
    }
}

/// Lists are comma- or space-separated (a TOML array arrives space-separated).
fn separator(c: char) -> bool {
    c == ',' || c.is_whitespace()
}

fn parse_servers(v: &str) -> Result<Vec<String>, String> {
    let servers: Vec<String> = v
        .split(separator)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    for s in &servers {
        let rest = s
            .strip_prefix("nats://")
            .or_else(|| s.strip_prefix("tls://"))
            .ok_or_else(|| format!("{s:?} is not a nats:// or tls:// URL"))?;
        let host_port = rest.rsplit_once('@').map_or(rest, |(_, hp)| hp);
        value::parse_host_port(host_port, Some(4222)).map_err(|e| format!("{s:?}: {e}"))?;
    }
    Ok(servers)
}

fn parse_tags(v: &str) -> Result<Vec<String>, String> {
    let mut tags: Vec<String> = Vec::new();
    for tag in v.split(separator).filter(|t| !t.is_empty()) {
        if let Some(bad) = tag.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(format!("invalid character {bad:?} in tag {tag:?}"));
        }
        if tags.iter().any(|t| t == tag) {
            return Err(format!("tag {tag:?} is listed twice"));
        }
        tags.push(tag.to_owned());
    }
    if tags.is_empty() {
        return Err("no tags".into());
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregator::cluster_cfg;
    use std::path::Path;

    const BASE: &str = "LogDir = /l\nSpoolDir = /s\n";

    #[test]
    fn cluster_cfg_keys_make_a_nats_input() {
        let text = format!(
            "{BASE}NatsServers = nats://10.0.0.1:4222, nats://10.0.0.2:4222\nNatsTags = bro_conn bro_notice\nNatsName = agg1\nNatsPriorityTimeout = 10s\n"
        );
        let cfg = cluster_cfg::parse(
            Path::new("/etc/cluster.cfg"),
            &text,
            crate::aggregator::files::Files::Ignore,
        )
        .unwrap();
        let nats = cfg.nats.unwrap();
        assert_eq!(nats.servers.len(), 2);
        assert_eq!(nats.tags, ["bro_conn", "bro_notice"]);
        assert_eq!(nats.stream, "ESTUARY");
        assert_eq!(nats.name, "agg1");
        assert_eq!(nats.replicas, 3);
        assert_eq!(nats.priority_timeout, Duration::from_secs(10));
        let relp = format!("{BASE}ListenRELP = 127.0.0.1:2514\n");
        let plain = cluster_cfg::parse(
            Path::new("/etc/cluster.cfg"),
            &relp,
            crate::aggregator::files::Files::Ignore,
        )
        .unwrap();
        assert!(plain.nats.is_none());
    }

    #[test]
    fn errors_name_line_and_key() {
        let text = format!("{BASE}NatsServers = nats://h:4222\nNatsPriorityTimeout = 1s\n");
        let err = cluster_cfg::parse(
            Path::new("/etc/cluster.cfg"),
            &text,
            crate::aggregator::files::Files::Ignore,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("NatsTags") && err.contains("required"),
            "{err}"
        );
        assert!(err.contains("cluster.cfg:4: NatsPriorityTimeout"), "{err}");
    }

    #[test]
    fn an_ingest_node_publishes_every_tag_from_its_listeners() {
        let parse = |extra: &str| {
            cluster_cfg::parse(
                Path::new("/etc/cluster.cfg"),
                &format!("{BASE}{extra}"),
                crate::aggregator::files::Files::Ignore,
            )
        };
        let cfg =
            parse("NatsServers = nats://h:4222\nNatsIngest = 1\nListenRELP = 127.0.0.1:2514\n")
                .unwrap();
        let nats = cfg.nats.unwrap();
        assert_eq!(nats.role, NatsRole::Ingest);
        assert!(nats.tags.is_empty());
        let with_tags = parse("NatsServers = nats://h:4222\nNatsIngest = 1\nListenTCP = 127.0.0.1:514\nNatsTags = a\n")
            .unwrap_err()
            .to_string();
        assert!(with_tags.contains("cluster.cfg:6: NatsTags"), "{with_tags}");
        let deaf = parse("NatsServers = nats://h:4222\nNatsIngest = yes\n")
            .unwrap_err()
            .to_string();
        assert!(
            deaf.contains("cluster.cfg:4: NatsIngest") && deaf.contains("listener"),
            "{deaf}"
        );
        let nowhere = parse("NatsIngest = 1\nListenTCP = 127.0.0.1:514\n")
            .unwrap_err()
            .to_string();
        assert!(
            nowhere.contains("cluster.cfg:3: NatsIngest") && nowhere.contains("NatsServers"),
            "{nowhere}"
        );
        let bad =
            parse("NatsServers = nats://h:4222\nNatsIngest = maybe\nListenTCP = 127.0.0.1:514\n")
                .unwrap_err()
                .to_string();
        assert!(bad.contains("cluster.cfg:4: NatsIngest"), "{bad}");
    }

    #[test]
    fn servers_are_nats_urls_with_ports() {
        assert_eq!(
            parse_servers("nats://127.0.0.1:4222, tls://a.example:4443").unwrap(),
            ["nats://127.0.0.1:4222", "tls://a.example:4443"]
        );
        assert!(parse_servers("http://x:1").is_err());
        assert!(parse_servers("nats://x:notaport").is_err());
    }

    #[test]
    fn tags_are_distinct_printable_words() {
        assert_eq!(
            parse_tags("bro_conn, bro_dns").unwrap(),
            ["bro_conn", "bro_dns"]
        );
        assert!(parse_tags("a, a").is_err());
        assert!(parse_tags(" , ").is_err());
    }
}
