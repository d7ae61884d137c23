//! Which logs are forwarded, and the shipper configuration that forwards them.

use std::path::PathBuf;
use std::time::Duration;

use estuary_config::aggregator::forward::{Forward, ForwardTarget, ForwardTransport};
use estuary_config::aggregator::AggregatorConfig;
use estuary_config::shipper::{
    ClientAuth, DestinationConfig, InputConfig, LongLines, OnShrink, ShipperConfig, StartAt,
    TlsClient, Transport, WatchMode,
};
use estuary_wire::{Facility, Framing, Severity};
use regex::Regex;

use crate::ForwardError;

/// One file in `LogDir/current/` (or a host's folder in it) and the tag its lines arrived with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentLog {
    pub path: PathBuf,
    /// `bro_conn` for `conn.log` and for a schema variant `conn-1a2b3c4d.log`.
    pub tag: String,
    /// Where the shipper keeps its offset in this file.
    state_file: PathBuf,
}

/// The merged logs in `current/` (not the catch-all, whose lines are whole raw messages), and
/// those forwarded before (they have a state file) even while rotation has left none in
/// `current/`. With `PerHostDirs` they are in one folder per sending host.
pub fn current_logs(config: &AggregatorConfig) -> Result<Vec<CurrentLog>, ForwardError> {
    let current = config.log_dir.join("current");
    let work = work_dir(config);
    let folders = if config.routing.per_host {
        let mut hosts = names_in(&current, Kind::Folder)?;
        hosts.extend(names_in(&work, Kind::Folder)?);
        hosts.sort();
        hosts.dedup();
        hosts.into_iter().map(PathBuf::from).collect()
    } else {
        vec![PathBuf::new()]
    };
    let mut logs = Vec::new();
    for folder in folders {
        let (current, work) = (current.join(&folder), work.join(&folder));
        let mut stems: Vec<String> = names_in(&current, Kind::File(".log"))?;
        stems.extend(names_in(&work, Kind::File(STATE_SUFFIX))?);
        stems.sort();
        stems.dedup();
        logs.extend(stems.iter().filter_map(|stem| {
            if *stem == config.routing.catch_all || stem.starts_with('.') {
                return None;
            }
            let log = match stem.rsplit_once('-') {
                Some((log, hex))
                    if hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_hexdigit()) =>
                {
                    log
                }
                _ => stem,
            };
            Some(CurrentLog {
                path: current.join(format!("{stem}.log")),
                tag: format!("{}{log}", config.routing.tag_prefix),
                state_file: work.join(format!("{stem}{STATE_SUFFIX}")),
            })
        }));
    }
    logs.retain(|log| config.forward.iter().any(|g| selects(g, &log.tag)));
    Ok(logs)
}

const STATE_SUFFIX: &str = ".state";

fn work_dir(config: &AggregatorConfig) -> PathBuf {
    config.spool_dir.join("forward")
}

enum Kind {
    /// Files whose names end in this suffix.
    File(&'static str),
    Folder,
}

/// The names in `dir` of the given kind (files without their suffix); none when `dir` is
/// missing.
fn names_in(dir: &std::path::Path, kind: Kind) -> Result<Vec<String>, ForwardError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ForwardError::Scan {
                path: dir.display().to_string(),
                source,
            })
        }
    };
    Ok(entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let file_type = e.file_type().ok()?;
            let name = e.file_name().into_string().ok()?;
            match kind {
                Kind::File(suffix) if file_type.is_file() => {
                    name.strip_suffix(suffix).map(str::to_owned)
                }
                Kind::Folder if file_type.is_dir() => Some(name),
                _ => None,
            }
        })
        .collect())
}

fn selects(group: &Forward, tag: &str) -> bool {
    group.tags.as_ref().is_none_or(|r| r.is_match(tag))
}

/// A shipper reading `logs` from the start (saved offsets win) and sending each group's tags
/// to its destinations.
pub fn shipper_config(config: &AggregatorConfig, logs: &[CurrentLog]) -> ShipperConfig {
    let work_dir = work_dir(config);
    let inputs = logs
        .iter()
        .map(|log| InputConfig {
            path: log.path.clone(),
            tag: format!("{}:", log.tag),
            facility: Facility::Local7,
            severity: Severity::Informational,
            state_file: log.state_file.clone(),
            watch: WatchMode::Inotify {
                fallback: Duration::from_secs(10),
            },
            start_at: StartAt::Beginning,
            max_line_bytes: config.max_message_size,
            long_lines: LongLines::Split,
            partial_line_timeout: None,
            // The aggregator cuts its current files back to what it committed when it restarts
            // after a crash; bytes past that come again from its peers.
            on_shrink: OnShrink::Retract,
        })
        .collect();
    let mut destinations = Vec::new();
    for group in &config.forward {
        // The exact input tags this group takes, so a tag regex never sees the colon.
        let tags: Vec<String> = logs
            .iter()
            .filter(|log| selects(group, &log.tag))
            .map(|log| regex::escape(&format!("{}:", log.tag)))
            .collect();
        let filter = Regex::new(&format!("^(?:{})$", tags.join("|")))
            .expect("escaped alternatives form a valid regex");
        for target in &group.to {
            destinations.push(DestinationConfig {
                name: target.to_string(),
                host: target.host.clone(),
                port: target.port,
                transport: transport(config, target),
                format: group.format,
                body: group.body,
                tag_filter: Some(filter.clone()),
                facility: None,
                retry_interval: Duration::from_secs(1),
                retry_max: Duration::from_secs(30),
            });
        }
    }
    ShipperConfig::derived(
        config.source.clone(),
        work_dir,
        hostname(),
        inputs,
        destinations,
        Duration::from_secs(60),
    )
}

fn transport(config: &AggregatorConfig, target: &ForwardTarget) -> Transport {
    // Validation guarantees TLSCAFile whenever a TLS scheme is used.
    let tls = || {
        config.tls.as_ref().and_then(|t| {
            Some(TlsClient {
                ca_file: t.ca_file.clone()?,
                client_auth: Some(ClientAuth {
                    cert_file: t.cert_file.clone(),
                    key_file: t.key_file.clone(),
                }),
                server_name: None,
            })
        })
    };
    match target.transport {
        ForwardTransport::Udp => Transport::Udp,
        // ELSA's syslog-ng and most SIEMs read newline-framed syslog over plain TCP.
        ForwardTransport::Tcp => Transport::Tcp {
            framing: Framing::NewLine,
            tls: None,
        },
        ForwardTransport::Tls => Transport::Tcp {
            framing: Framing::OctetCounting,
            tls: tls(),
        },
        ForwardTransport::Relp => Transport::Relp {
            window: estuary_wire::relp::client::DEFAULT_WINDOW,
            tls: None,
        },
        ForwardTransport::RelpTls => Transport::Relp {
            window: estuary_wire::relp::client::DEFAULT_WINDOW,
            tls: tls(),
        },
    }
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs_in(layout: &[&str], extra: &str) -> Vec<(String, String, String)> {
        let dir = tempfile::tempdir().unwrap();
        for file in layout {
            let path = dir.path().join("logs/current").join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        let cfg = dir.path().join("aggregator.cfg");
        std::fs::write(
            &cfg,
            format!(
                "LogDir = {0}/logs\nSpoolDir = {0}/spool\nListenTCP = 127.0.0.1:1\nForwardTo = tcp://siem:514\n{extra}",
                dir.path().display()
            ),
        )
        .unwrap();
        let config = estuary_config::aggregator::load(&cfg).unwrap();
        let relative = |p: &PathBuf| p.strip_prefix(dir.path()).unwrap().display().to_string();
        current_logs(&config)
            .unwrap()
            .iter()
            .map(|l| (relative(&l.path), l.tag.clone(), relative(&l.state_file)))
            .collect()
    }

    #[test]
    fn per_host_folders_are_scanned_each_with_its_own_offsets() {
        let layout = [
            "s1/conn.log",
            "s1/dns-0a1b2c3d.log",
            "s2/conn.log",
            "s2/unrouted.log",
        ];
        let want = [
            (
                "logs/current/s1/conn.log",
                "bro_conn",
                "spool/forward/s1/conn.state",
            ),
            (
                "logs/current/s1/dns-0a1b2c3d.log",
                "bro_dns",
                "spool/forward/s1/dns-0a1b2c3d.state",
            ),
            (
                "logs/current/s2/conn.log",
                "bro_conn",
                "spool/forward/s2/conn.state",
            ),
        ];
        let got = logs_in(&layout, "PerHostDirs = yes\n");
        let want: Vec<_> = want
            .iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect();
        assert_eq!(got, want);
        assert!(
            logs_in(&layout, "").is_empty(),
            "host folders without PerHostDirs"
        );
    }
}
