//! Which logs are forwarded, and the shipper configuration that forwards them.

use std::path::PathBuf;
use std::time::Duration;

use estuary_config::aggregator::forward::{Forward, ForwardTarget, ForwardTransport};
use estuary_config::aggregator::AggregatorConfig;
use estuary_config::shipper::{
    ClientAuth, DestinationConfig, InputConfig, LongLines, ShipperConfig, StartAt, TlsClient,
    Transport, WatchMode,
};
use estuary_wire::{Facility, Framing, Severity};
use regex::Regex;

use crate::ForwardError;

/// One file in `LogDir/current/` and the tag its lines arrived with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentLog {
    pub path: PathBuf,
    /// `bro_conn` for `conn.log` and for a schema variant `conn-1a2b3c4d.log`.
    pub tag: String,
}

/// The merged logs in `current/` (not the catch-all, whose lines are whole raw messages), and
/// those forwarded before (they have a state file) even while rotation has left none in
/// `current/`.
pub fn current_logs(config: &AggregatorConfig) -> Result<Vec<CurrentLog>, ForwardError> {
    let current = config.log_dir.join("current");
    let mut stems: Vec<String> = names_in(&current, ".log")?;
    stems.extend(names_in(&work_dir(config), STATE_SUFFIX)?);
    stems.sort();
    stems.dedup();
    let logs = stems
        .iter()
        .filter_map(|stem| {
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
            })
        })
        .filter(|log| config.forward.iter().any(|g| selects(g, &log.tag)))
        .collect();
    Ok(logs)
}

const STATE_SUFFIX: &str = ".state";

fn work_dir(config: &AggregatorConfig) -> PathBuf {
    config.spool_dir.join("forward")
}

/// The names of the files in `dir` ending in `suffix`, without it; none when `dir` is missing.
fn names_in(dir: &std::path::Path, suffix: &str) -> Result<Vec<String>, ForwardError> {
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
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(suffix).map(str::to_owned)
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
            state_file: work_dir.join(format!(
                "{}{STATE_SUFFIX}",
                log.path.file_stem().unwrap_or_default().to_string_lossy()
            )),
            watch: WatchMode::Inotify {
                fallback: Duration::from_secs(10),
            },
            start_at: StartAt::Beginning,
            max_line_bytes: config.max_message_size,
            long_lines: LongLines::Split,
            partial_line_timeout: None,
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
