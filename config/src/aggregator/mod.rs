//! The aggregator's validated configuration. Built from TOML (`*.toml`) or from broctl/zeekctl
//! `key = value` cluster options (`*.cfg`); the aggregator only ever sees this form.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;

use crate::cidr::Cidr;
use crate::{ConfigError, ConfigErrors};
use files::Files;

pub(crate) mod cluster_cfg;
mod describe;
pub(crate) mod files;
pub mod forward;
pub(crate) mod native;
pub(crate) mod settings;

pub use settings::limits::ConnectionLimits;
pub use settings::nats::{NatsInput, NatsRole};

/// Reads an aggregator configuration: `*.cfg` as broctl/zeekctl options, `*.toml` as estuary's TOML
/// form. Every problem found is returned, each naming the file, line and key.
pub fn load(path: &Path) -> Result<AggregatorConfig, ConfigErrors> {
    let text = crate::read_text(path)?;
    match crate::Kind::of(path) {
        Some(crate::Kind::Cfg) => cluster_cfg::parse(path, &text, Files::Read),
        Some(crate::Kind::Toml) => native::parse(path, &text, Files::Read),
        _ => Err(ConfigError::new(
            path,
            None,
            None,
            "an aggregator configuration must end in .cfg (zeekctl) or .toml",
        )
        .into()),
    }
}

#[derive(Debug, Clone)]
pub struct AggregatorConfig {
    pub source: PathBuf,
    /// `LogDir`: `current/` and the dated archive folders live here.
    pub log_dir: PathBuf,
    /// `SpoolDir`: state (high-water marks, pending mail, alarms) lives here.
    pub spool_dir: PathBuf,
    /// `LogRotationInterval`, aligned to the clock. zeekctl default 3600 s.
    pub rotation_interval: Duration,
    /// `LogExpireInterval`; `None` = never expire. Default 30 days.
    pub expire_interval: Option<Duration>,
    /// `KeepLogs`: glob patterns of archived log names never expired.
    pub keep_logs: Vec<String>,
    /// `StatsLog` and `StatsLogExpireInterval` (`None` = keep forever).
    pub stats_log: PathBuf,
    pub stats_expire_interval: Option<Duration>,
    /// `TimeFmt` (strftime), used in mails.
    pub time_fmt: String,
    pub debug: bool,
    /// `MetricsAddress`: where `/metrics` and `/status` are served; `None` (empty) = off.
    pub metrics_address: Option<SocketAddr>,
    /// `ForwardMetricsAddress`: where `estuary forward` serves its per-destination `/metrics`
    /// and `/status`; `None` (empty) = off.
    pub forward_metrics_address: Option<SocketAddr>,
    pub mail: MailConfig,
    pub disk: DiskConfig,
    pub listen: Listeners,
    pub connection_limits: ConnectionLimits,
    pub tls: Option<TlsServer>,
    /// Who may send, and what. Empty = everybody, everything.
    pub peers: Vec<PeerRule>,
    /// Larger messages are refused and counted (`MaxMessageSize`, bytes).
    pub max_message_size: usize,
    pub routing: Routing,
    /// When a message counts as written (before a RELP ack is sent).
    pub durability: Durability,
    /// `ReplayMarkRetention`: how long the exactly-once high-water mark of a shipper file is
    /// kept after its last line arrived, counting only time the aggregator runs (`None` =
    /// forever). A shipper that replays a file after a longer outage gets those lines twice.
    pub replay_mark_retention: Option<Duration>,
    /// `CompressLevel`: the gzip level of archives, 1 (fastest) to 9 (smallest), as zeekctl's
    /// `CompressCmd = gzip -N`. Default 6, gzip's own.
    pub compress_level: u32,
    /// Onward destinations (ELSA, a SIEM) for committed lines; empty = none.
    pub forward: Vec<forward::Forward>,
    /// `NatsServers` and the other `Nats*` options: read tags from a NATS JetStream stream.
    pub nats: Option<NatsInput>,
}

#[derive(Debug, Clone)]
pub struct MailConfig {
    /// `MailTo`.
    pub to: String,
    /// `MailFrom`.
    pub from: String,
    /// `MailReplyTo`; not written when `None`.
    pub reply_to: Option<String>,
    /// `MailSubjectPrefix`, default `[Bro]`.
    pub subject_prefix: String,
    /// `MailAlarmPrefix`, default `ALERT:`.
    pub alarm_prefix: String,
    /// `MailAlarms`: mail Notice::ACTION_EMAIL notices at once.
    pub mail_alarms: bool,
    /// `MailAlarmsTo` (defaults to `MailTo`).
    pub alarms_to: String,
    /// `MailAlarmsInterval`; `None` = at each rotation.
    pub alarms_interval: Option<Duration>,
    pub transport: MailTransport,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailTransport {
    /// `SendMail` empty and no `SmtpServer`: mail is not sent, and that is not an error.
    Disabled,
    /// The `SendMail` program, run as `<program> -t -oi` with the message on stdin.
    SendMail(PathBuf),
    /// `SmtpServer` (host:port), plain SMTP.
    Smtp { host: String, port: u16 },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiskConfig {
    /// `MinDiskSpace` percent free; below it the cron mail warns once per crossing. 0 = off.
    pub min_free_percent: f64,
    /// Below this percent free the aggregator stops reading and acknowledging until space returns.
    pub hard_floor_percent: f64,
}

/// Listening sockets; `None` = off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listeners {
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
    /// RFC 5425 syslog over TLS; requires `tls`.
    pub tls: Option<SocketAddr>,
    pub relp: Option<SocketAddr>,
    /// RELP over TLS; requires `tls`.
    pub relp_tls: Option<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsServer {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// CA that client certificates must chain to; required when `require_client_cert`.
    pub ca_file: Option<PathBuf>,
    pub require_client_cert: bool,
    /// Revoked client certificates (`estuary tls revoke`), read at start.
    pub crl_file: Option<PathBuf>,
}

/// Which senders are accepted, and which tags from them.
#[derive(Debug, Clone)]
pub struct PeerRule {
    pub matcher: PeerMatch,
    /// Tags accepted from this peer; `None` = all.
    pub tags: Option<Regex>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerMatch {
    /// An address or network (`10.0.0.0/8`, `127.0.0.1`).
    Network(Cidr),
    /// The subject CN or a DNS SAN of a verified TLS client certificate.
    CertName(String),
}

/// How a message's tag picks its log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    /// Stripped from the tag: `bro_` turns `bro_ssl` into `ssl.log`.
    pub tag_prefix: String,
    /// Messages whose tag does not have the prefix (or is not a safe name) go here.
    pub catch_all: String,
    /// One folder per sending host under `current/` (rsyslog dynafile style) instead of merged logs.
    pub per_host: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Acknowledge once the message is in the file (page cache).
    Written,
    /// Acknowledge once the file is fsync'ed (batched).
    Synced,
}
