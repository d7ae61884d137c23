//! The shipper's validated configuration. Built from TOML (`*.toml`) or from rsyslog legacy
//! directives (`*.conf`); the shipper only ever sees this form.

use std::path::{Path, PathBuf};
use std::time::Duration;

use estuary_wire::{Facility, Format, Framing, Severity};
use regex::Regex;

use crate::{ConfigError, ConfigErrors};

mod defaults;
mod describe;
pub(crate) mod native;
pub(crate) mod rsyslog;
mod tls_files;

/// Reads a shipper configuration: `*.conf` as rsyslog legacy directives, `*.toml` as estuary's TOML form.
/// Every problem found is returned, each naming the file, line and key.
pub fn load(path: &Path) -> Result<ShipperConfig, ConfigErrors> {
    let text = crate::read_text(path)?;
    let config = match crate::Kind::of(path) {
        Some(crate::Kind::Conf) => rsyslog::parse(path, &text),
        Some(crate::Kind::Toml) => native::parse(path, &text),
        _ => Err(ConfigError::new(
            path,
            None,
            None,
            "a shipper configuration must end in .conf (rsyslog) or .toml",
        )
        .into()),
    }?;
    tls_files::check(path, &config.tls_files).into_result(config)
}

#[derive(Debug, Clone)]
pub struct ShipperConfig {
    /// The file this was read from, for messages.
    pub source: PathBuf,
    /// Where relative state file names are resolved (`$WorkDirectory`).
    pub work_dir: PathBuf,
    /// The host name written into every message's HOSTNAME field.
    pub hostname: String,
    pub inputs: Vec<InputConfig>,
    pub destinations: Vec<DestinationConfig>,
    /// How often statistics are logged (and written to the status file).
    pub stats_interval: Duration,
    /// The TLS files the destinations name, where they are named: checked by [`load`].
    pub(crate) tls_files: Vec<tls_files::TlsFiles>,
    /// Where `/metrics` and `/status` are served (`metrics_address`); `None` = off.
    pub metrics_address: Option<std::net::SocketAddr>,
}

impl ShipperConfig {
    /// A configuration built by code rather than read from a file (the aggregator's forwarder,
    /// a site's derived nodes): its TLS files were checked where they were named.
    pub fn derived(
        source: PathBuf,
        work_dir: PathBuf,
        hostname: String,
        inputs: Vec<InputConfig>,
        destinations: Vec<DestinationConfig>,
        stats_interval: Duration,
    ) -> ShipperConfig {
        ShipperConfig {
            source,
            work_dir,
            hostname,
            inputs,
            destinations,
            stats_interval,
            tls_files: Vec::new(),
            metrics_address: None,
        }
    }
}

/// One monitored file or glob (an imfile input).
#[derive(Debug, Clone)]
pub struct InputConfig {
    /// A path or a glob pattern (`*`, `?`, `[...]`).
    pub path: PathBuf,
    /// The syslog tag as configured, e.g. `bro_ssl:` (rsyslog keeps the colon as part of the tag).
    pub tag: String,
    pub facility: Facility,
    pub severity: Severity,
    /// Absolute path of the state file (relative names are resolved against `work_dir`).
    pub state_file: PathBuf,
    pub watch: WatchMode,
    pub start_at: StartAt,
    /// Lines longer than this many bytes are split or truncated per `long_lines`.
    pub max_line_bytes: usize,
    pub long_lines: LongLines,
    /// Send an unterminated last line after it has been idle this long (flagged); `None` = hold it forever.
    pub partial_line_timeout: Option<Duration>,
    /// What a file that shrank below where it was read holds (built in; not a key).
    pub on_shrink: OnShrink,
}

/// How file changes are noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchMode {
    /// inotify events, with a poll every `fallback` in case an event is missed.
    Inotify { fallback: Duration },
    /// Poll only (file systems without events, e.g. NFS), every `interval`.
    Polling { interval: Duration },
}

/// Where reading starts in a file that has no saved state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    Beginning,
    End,
}

/// What a file holds when it is found shorter than where it was read, its first bytes unchanged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnShrink {
    /// New content written after a truncation (copytruncate): read again from the start.
    #[default]
    NewContent,
    /// The same content cut back (a writer that rolls back what it had not committed): reading
    /// goes on from the end of the last whole line left.
    Retract,
}

/// What happens to a line longer than `max_line_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LongLines {
    /// The rest becomes further messages (imfile's default).
    Split,
    /// The rest is dropped and counted.
    Truncate,
}

/// One place lines are forwarded to (a seed `Remote::destinations` entry or a selector line).
#[derive(Debug, Clone)]
pub struct DestinationConfig {
    /// A name for statistics and logs (`host:port` when not given).
    pub name: String,
    pub host: String,
    pub port: u16,
    pub transport: Transport,
    pub format: Format,
    /// What each line becomes in its message.
    pub body: Body,
    /// Only lines from inputs whose tag matches are sent here; `None` = all.
    pub tag_filter: Option<Regex>,
    /// Only inputs with this facility (`local7.*`); `None` = `*.*`.
    pub facility: Option<Facility>,
    /// Initial reconnect delay; doubles up to `retry_max`.
    pub retry_interval: Duration,
    pub retry_max: Duration,
}

/// The message body made of a line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Body {
    /// The line as read.
    #[default]
    Line,
    /// A row of a Zeek TSV log as the object Zeek's JSON writer writes, typed by its file's
    /// `#fields` and `#types`; the header lines are not sent, a line of a file without a Zeek
    /// header goes as read.
    ZeekJson,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// RFC 5426; one datagram per line, no delivery guarantee.
    Udp,
    /// RFC 6587, optionally inside TLS (RFC 5425).
    Tcp {
        framing: Framing,
        tls: Option<TlsClient>,
    },
    /// librelp's protocol, optionally over TLS; `window` unacknowledged frames at most.
    Relp {
        window: usize,
        tls: Option<TlsClient>,
    },
    /// A NATS JetStream stream (several aggregators read it): RFC 5424 messages in batches,
    /// taken once the stream has stored them.
    Nats(NatsDestination),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsDestination {
    /// `nats://host:port` (or `tls://`) URLs of the cluster's servers.
    pub servers: Vec<String>,
    /// The stream, `ESTUARY` by default.
    pub stream: String,
    /// A `.creds` file (JWT and NKey seed).
    pub credentials: Option<PathBuf>,
    /// `ca_file` (and `cert_file`/`key_file`) set: TLS to the servers.
    pub tls: Option<TlsClient>,
}

/// Client side TLS files (PEM). `cert_file` and `key_file` come together (mutual auth) or not at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsClient {
    pub ca_file: PathBuf,
    pub client_auth: Option<ClientAuth>,
    /// Name the server certificate must carry; the destination host when not given.
    pub server_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAuth {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}
