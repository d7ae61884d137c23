//! Both aggregator formats reduce to the same option set (zeekctl's names); this module validates it
//! into an `AggregatorConfig`, so a `.cfg` and a `.toml` saying the same thing agree.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;

use super::files::{self, Files};
use super::forward::{self, Forward};
use super::{
    AggregatorConfig, DiskConfig, Durability, Listeners, MailConfig, MailTransport, PeerMatch,
    PeerRule, Routing, TlsServer,
};
use crate::cidr::Cidr;
use crate::value;
use crate::{ConfigError, ConfigErrors};

pub(crate) mod limits;
mod listen;
pub(crate) mod nats;

/// Every option: zeekctl spelling and the TOML path that sets it.
pub(crate) const OPTIONS: &[(&str, &str)] = &[
    ("LogDir", "log_dir"),
    ("SpoolDir", "spool_dir"),
    ("LogRotationInterval", "rotation_interval"),
    ("LogExpireInterval", "expire_interval"),
    ("KeepLogs", "keep_logs"),
    ("StatsLog", "stats_log"),
    ("StatsLogExpireInterval", "stats_expire_interval"),
    ("TimeFmt", "time_fmt"),
    ("Debug", "debug"),
    ("MaxMessageSize", "max_message_size"),
    ("Durability", "durability"),
    ("ReplayMarkRetention", "replay_mark_retention"),
    ("CompressLevel", "compress_level"),
    ("MetricsAddress", "metrics_address"),
    ("ForwardMetricsAddress", "forward_metrics_address"),
    ("TagPrefix", "routing.tag_prefix"),
    ("CatchAllLog", "routing.catch_all"),
    ("PerHostDirs", "routing.per_host"),
    ("MailTo", "mail.to"),
    ("MailFrom", "mail.from"),
    ("MailReplyTo", "mail.reply_to"),
    ("MailSubjectPrefix", "mail.subject_prefix"),
    ("MailAlarmPrefix", "mail.alarm_prefix"),
    ("MailAlarms", "mail.alarms"),
    ("MailAlarmsTo", "mail.alarms_to"),
    ("MailAlarmsInterval", "mail.alarms_interval"),
    ("SendMail", "mail.sendmail"),
    ("SmtpServer", "mail.smtp_server"),
    ("MinDiskSpace", "disk.min_free_percent"),
    ("DiskHardFloor", "disk.hard_floor_percent"),
    ("ListenUDP", "listen.udp"),
    ("ListenTCP", "listen.tcp"),
    ("ListenTLS", "listen.tls"),
    ("ListenRELP", "listen.relp"),
    ("ListenRELPTLS", "listen.relp_tls"),
    (
        "MaxConnectionsPerAddress",
        "listen.max_connections_per_address",
    ),
    (
        "MaxConnectionsPerCertName",
        "listen.max_connections_per_cert_name",
    ),
    ("TLSCertFile", "tls.cert_file"),
    ("TLSKeyFile", "tls.key_file"),
    ("TLSCAFile", "tls.ca_file"),
    ("TLSRequireClientCert", "tls.require_client_cert"),
    ("TLSCRLFile", "tls.crl_file"),
    ("AllowedPeers", "allowed_peers"),
    ("ForwardTo", "forward.to"),
    ("ForwardTags", "forward.tags"),
    ("ForwardFormat", "forward.format"),
    ("NatsServers", "nats.servers"),
    ("NatsStream", "nats.stream"),
    ("NatsTags", "nats.tags"),
    ("NatsName", "nats.name"),
    ("NatsCredentials", "nats.credentials"),
    ("NatsCAFile", "nats.ca_file"),
    ("NatsReplicas", "nats.replicas"),
    ("NatsPriorityTimeout", "nats.priority_timeout"),
    ("NatsMaxAge", "nats.max_age"),
    ("NatsDuplicateWindow", "nats.duplicate_window"),
    ("NatsIngest", "nats.ingest"),
];

/// The canonical (zeekctl) spelling of a case-insensitive option name.
pub(crate) fn canonical(name: &str) -> Option<&'static str> {
    OPTIONS
        .iter()
        .map(|(cfg, _)| *cfg)
        .find(|cfg| cfg.eq_ignore_ascii_case(name))
}

const ROTATION_INTERVAL: Duration = Duration::from_secs(86_400);
const EXPIRE_DAYS: u64 = 30;
const MAX_MESSAGE_SIZE: usize = 64 * 1024;
const SENDMAIL: &str = "/usr/sbin/sendmail";
const SMTP_PORT: u16 = 25;
const REPLAY_MARK_RETENTION_DAYS: u64 = 7;
/// Shorter than this, an ordinary shipper outage could outlast its marks.
const MIN_REPLAY_MARK_RETENTION: Duration = Duration::from_secs(3600);

/// One option as written: its value and where.
#[derive(Debug, Clone)]
pub(crate) struct Setting {
    pub value: String,
    pub line: Option<usize>,
    /// As the user spelled it (`logdir`, `mail.to`).
    pub key: String,
}

/// A `[[forward]]` table from the TOML form (the `.cfg` form has one group, `Forward*`), each
/// value with the line of its key.
pub(crate) struct ForwardSetting {
    pub to: (usize, String),
    pub tags: Option<(usize, String)>,
    pub format: Option<(usize, String)>,
}

/// A `[[peer]]` table from the TOML form (the `.cfg` form has `AllowedPeers` only).
pub(crate) struct PeerSetting {
    pub line: usize,
    pub address: Option<String>,
    pub cert_name: Option<String>,
    pub tag_regex: Option<String>,
}

pub(crate) struct Settings<'a> {
    pub file: &'a Path,
    pub values: HashMap<&'static str, Setting>,
    pub peers: Vec<PeerSetting>,
    pub forwards: Vec<ForwardSetting>,
    pub errors: ConfigErrors,
}

impl<'a> Settings<'a> {
    pub fn new(file: &'a Path) -> Self {
        Settings {
            file,
            values: HashMap::new(),
            peers: Vec::new(),
            forwards: Vec::new(),
            errors: ConfigErrors::default(),
        }
    }

    /// Records an option; setting one twice is an error naming the first line.
    pub fn set(&mut self, option: &'static str, setting: Setting) {
        if let Some(first) = self.values.get(option) {
            let at = first
                .line
                .map(|l| format!(" (first set on line {l})"))
                .unwrap_or_default();
            let message = format!("{option} is set twice{at}");
            self.error_at(setting.line, &setting.key, message);
            return;
        }
        self.values.insert(option, setting);
    }

    fn error_at(&mut self, line: Option<usize>, key: &str, message: impl Into<String>) {
        self.errors
            .push(ConfigError::new(self.file, line, Some(key), message));
    }

    fn error(&mut self, option: &str, message: impl Into<String>) {
        let (line, key) = match self.values.get(option) {
            Some(s) => (s.line, s.key.clone()),
            None => (None, option.to_owned()),
        };
        self.error_at(line, &key, message);
    }

    /// Parses a set option, recording its error.
    fn get<T>(
        &mut self,
        option: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let setting = self.values.get(option)?;
        match parse(&setting.value) {
            Ok(v) => Some(v),
            Err(e) => {
                let (line, key) = (setting.line, setting.key.clone());
                self.error_at(line, &key, e);
                None
            }
        }
    }

    fn string(&mut self, option: &'static str, default: &str) -> String {
        self.values
            .get(option)
            .map_or_else(|| default.to_owned(), |s| s.value.clone())
    }

    fn is_set(&self, option: &str) -> bool {
        self.values.get(option).is_some_and(|s| !s.value.is_empty())
    }

    /// Expands `${Option}` references (zeekctl style) in every value, then validates.
    pub fn validate(mut self, files: Files) -> Result<AggregatorConfig, ConfigErrors> {
        self.expand_references();
        let dir = value::config_dir(self.file);
        let path_of = |v: &str| -> Result<PathBuf, String> {
            if v.is_empty() {
                Err("path is empty".into())
            } else {
                Ok(value::resolve(&dir, Path::new(v)))
            }
        };

        let log_dir = self.get("LogDir", path_of);
        let spool_dir = self.get("SpoolDir", path_of);
        for required in ["LogDir", "SpoolDir"] {
            if !self.values.contains_key(required) {
                self.error(required, "is required");
            }
        }
        let rotation_interval = self
            .get("LogRotationInterval", |v| match value::parse_duration(v)? {
                d if d.is_zero() => {
                    Err("rotation cannot be turned off (0); give an interval such as 3600".into())
                }
                d => Ok(d),
            })
            .unwrap_or(ROTATION_INTERVAL);
        let expire_interval = self
            .get("LogExpireInterval", parse_expire_interval)
            .unwrap_or(Some(Duration::from_secs(EXPIRE_DAYS * 86_400)));
        if let Some(expire) = expire_interval {
            if expire < rotation_interval {
                self.error(
                    "LogExpireInterval",
                    "log expire interval cannot be shorter than the log rotation interval",
                );
            }
        }
        let keep_logs = self.get("KeepLogs", parse_keep_logs).unwrap_or_default();
        let stats_log = self.get("StatsLog", path_of);
        let stats_expire_interval = self
            .get("StatsLogExpireInterval", parse_expire_interval)
            .flatten();
        let time_fmt = self
            .get("TimeFmt", check_time_fmt)
            .unwrap_or_else(|| "%d %b %H:%M:%S".to_owned());
        let debug = self.get("Debug", value::parse_bool).unwrap_or(false);
        let max_message_size = self
            .get("MaxMessageSize", |v| {
                let n = value::parse_size(v)?;
                if (480..=16 * 1024 * 1024).contains(&n) {
                    Ok(n)
                } else {
                    Err(format!("{n} is out of range (480 bytes to 16m)"))
                }
            })
            .unwrap_or(MAX_MESSAGE_SIZE);
        let durability = self
            .get("Durability", |v| match v.to_ascii_lowercase().as_str() {
                "written" => Ok(Durability::Written),
                "synced" => Ok(Durability::Synced),
                _ => Err(format!("expected written or synced, got {v:?}")),
            })
            .unwrap_or(Durability::Written);
        let replay_mark_retention = self
            .get("ReplayMarkRetention", |v| match parse_expire_interval(v)? {
                Some(d) if d < MIN_REPLAY_MARK_RETENTION => Err(format!(
                    "{v:?} is shorter than 1hr; a shipper away longer than this would have its replays written twice (0 = keep marks forever)"
                )),
                retention => Ok(retention),
            })
            .unwrap_or(Some(Duration::from_secs(
                REPLAY_MARK_RETENTION_DAYS * 86_400,
            )));

        let compress_level = self
            .get("CompressLevel", |v| match v.parse::<u32>() {
                Ok(level @ 1..=9) => Ok(level),
                _ => Err(format!("expected a gzip level from 1 to 9, got {v:?}")),
            })
            .unwrap_or(6);

        let metrics_address = self
            .get("MetricsAddress", value::parse_optional_addr)
            .flatten();
        let forward_metrics_address = self
            .get("ForwardMetricsAddress", value::parse_optional_addr)
            .flatten();
        let routing = self.routing();
        let mail = self.mail(&dir);
        let disk = self.disk();
        let listen = self.listeners();
        let connection_limits = self.connection_limits();
        let tls = self.tls(&listen, &path_of, files);
        let peers = self.peers(tls.as_ref());
        let forward = self.forward(tls.as_ref());
        let nats = self.nats(&path_of, &listen);

        let (Some(log_dir), Some(spool_dir)) = (log_dir, spool_dir) else {
            return Err(self.errors);
        };
        let stats_log = stats_log.unwrap_or_else(|| spool_dir.join("stats.log"));
        self.errors.into_result(AggregatorConfig {
            source: self.file.to_path_buf(),
            log_dir,
            spool_dir,
            rotation_interval,
            expire_interval,
            keep_logs,
            stats_log,
            stats_expire_interval,
            time_fmt,
            debug,
            metrics_address,
            forward_metrics_address,
            mail,
            disk,
            listen,
            connection_limits,
            tls,
            peers,
            max_message_size,
            routing,
            durability,
            replay_mark_retention,
            compress_level,
            forward,
            nats,
        })
    }

    fn expand_references(&mut self) {
        let raw: HashMap<&'static str, String> = self
            .values
            .iter()
            .map(|(k, s)| (*k, s.value.clone()))
            .collect();
        let options: Vec<&'static str> = self.values.keys().copied().collect();
        for option in options {
            let Some(setting) = self.values.get(option) else {
                continue;
            };
            if !setting.value.contains("${") {
                continue;
            }
            match expand(&setting.value, &raw, 0) {
                Ok(v) => {
                    if let Some(s) = self.values.get_mut(option) {
                        s.value = v;
                    }
                }
                Err(e) => self.error(option, e),
            }
        }
    }

    fn routing(&mut self) -> Routing {
        let tag_prefix = self.string("TagPrefix", "bro_");
        if let Some(bad) = tag_prefix.chars().find(|c| !c.is_ascii_graphic()) {
            self.error("TagPrefix", format!("invalid character {bad:?}"));
        }
        let catch_all = self
            .get("CatchAllLog", |v| {
                let name = v.strip_suffix(".log").unwrap_or(v);
                let ok = !name.is_empty()
                    && name.len() <= 64
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if ok {
                    Ok(name.to_owned())
                } else {
                    Err(format!("{v:?} is not a log name (1-64 of A-Z a-z 0-9 _ -)"))
                }
            })
            .unwrap_or_else(|| "unrouted".to_owned());
        let per_host = self.get("PerHostDirs", value::parse_bool).unwrap_or(false);
        Routing {
            tag_prefix,
            catch_all,
            per_host,
        }
    }

    fn mail(&mut self, dir: &Path) -> MailConfig {
        let user = std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "root".to_owned());
        let to = self.string("MailTo", &user);
        let alarms_to = self.string("MailAlarmsTo", &to);
        let reply_to = Some(self.string("MailReplyTo", "")).filter(|r| !r.is_empty());
        let alarms_interval = self.get("MailAlarmsInterval", |v| match value::parse_duration(v)? {
            d if d.is_zero() => {
                Err("0 is not supported; set MailAlarms = 0 to stop alarm mails".into())
            }
            d => Ok(d),
        });
        let smtp = self.get("SmtpServer", |v| match v {
            "" => Ok(None),
            _ => value::parse_host_port(v, Some(SMTP_PORT)).map(Some),
        });
        let sendmail = self.get("SendMail", |v| {
            Ok(match v {
                "" | "0" => None,
                "1" => Some(PathBuf::from(SENDMAIL)),
                program if !program.contains('/') => Some(PathBuf::from(program)),
                path => Some(value::resolve(dir, Path::new(path))),
            })
        });
        let transport = match (smtp.flatten(), sendmail) {
            (Some((host, port)), None | Some(None)) => MailTransport::Smtp { host, port },
            (Some((host, port)), Some(Some(_))) => {
                self.error("SmtpServer", "set either SmtpServer or SendMail, not both");
                MailTransport::Smtp { host, port }
            }
            (None, None) => MailTransport::SendMail(PathBuf::from(SENDMAIL)),
            (None, Some(Some(program))) => MailTransport::SendMail(program),
            (None, Some(None)) => MailTransport::Disabled,
        };
        MailConfig {
            to,
            from: self.string("MailFrom", "Big Brother <bro@localhost>"),
            reply_to,
            subject_prefix: self.string("MailSubjectPrefix", "[Bro]"),
            alarm_prefix: self.string("MailAlarmPrefix", "ALERT:"),
            mail_alarms: self.get("MailAlarms", value::parse_bool).unwrap_or(true),
            alarms_to,
            alarms_interval,
            transport,
        }
    }

    fn disk(&mut self) -> DiskConfig {
        let percent = |v: &str| -> Result<f64, String> {
            match v.trim_end_matches('%').parse::<f64>() {
                Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
                _ => Err(format!("expected a percentage from 0 to 100, got {v:?}")),
            }
        };
        let min_free_percent = self.get("MinDiskSpace", percent).unwrap_or(5.0);
        let hard_floor_percent = self.get("DiskHardFloor", percent).unwrap_or(1.0);
        if min_free_percent > 0.0 && hard_floor_percent >= min_free_percent {
            let option = if self.values.contains_key("DiskHardFloor") {
                "DiskHardFloor"
            } else {
                "MinDiskSpace"
            };
            self.error(
                option,
                "DiskHardFloor must be below MinDiskSpace, so the warning comes before the stop",
            );
        }
        DiskConfig {
            min_free_percent,
            hard_floor_percent,
        }
    }

    /// `ForwardTo` and friends as one group, then each `[[forward]]` table.
    fn forward(&mut self, tls: Option<&TlsServer>) -> Vec<Forward> {
        let mut groups = Vec::new();
        if self.values.contains_key("ForwardTo") {
            let to = self.get("ForwardTo", forward::parse_targets);
            let tags = self.get("ForwardTags", forward::parse_tags).flatten();
            let format = self.get("ForwardFormat", forward::parse_format);
            if let Some(to) = to {
                let line = self
                    .values
                    .get("ForwardTo")
                    .map(|s| (s.line, s.key.clone()));
                groups.push((line, {
                    let (format, body) = format.unwrap_or(Forward::DEFAULT_FORMAT);
                    Forward {
                        to,
                        tags,
                        format,
                        body,
                    }
                }));
            }
        } else {
            for option in ["ForwardTags", "ForwardFormat"] {
                if self.values.contains_key(option) {
                    self.error(option, "has no effect without ForwardTo");
                }
            }
        }
        for group in std::mem::take(&mut self.forwards) {
            let (to_line, to) = &group.to;
            let parsed = (
                forward::parse_targets(to).map_err(|e| (*to_line, "to", e)),
                group.tags.as_ref().map_or(Ok(None), |(line, tags)| {
                    forward::parse_tags(tags).map_err(|e| (*line, "tags", e))
                }),
                group
                    .format
                    .as_ref()
                    .map_or(Ok(Forward::DEFAULT_FORMAT), |(line, format)| {
                        forward::parse_format(format).map_err(|e| (*line, "format", e))
                    }),
            );
            match parsed {
                (Ok(to), Ok(tags), Ok((format, body))) => groups.push((
                    Some((Some(*to_line), "to".to_owned())),
                    Forward {
                        to,
                        tags,
                        format,
                        body,
                    },
                )),
                (to, tags, format) => {
                    for (line, key, e) in [to.err(), tags.err(), format.err()].into_iter().flatten()
                    {
                        self.error_at(Some(line), key, e);
                    }
                }
            }
        }
        let verifiable = tls.is_some_and(|t| t.ca_file.is_some());
        for (at, group) in &groups {
            if !verifiable && group.to.iter().any(|t| t.transport.is_tls()) {
                let (line, key) = at.clone().unwrap_or((None, "ForwardTo".to_owned()));
                self.error_at(line, &key, "tls:// and relp+tls:// verify the destination against TLSCAFile, which is not set");
            }
        }
        groups.into_iter().map(|(_, g)| g).collect()
    }
}

/// `${Option}` references, resolved against the other options as written.
fn expand(text: &str, raw: &HashMap<&'static str, String>, depth: usize) -> Result<String, String> {
    if depth > 8 {
        return Err("${...} references nest too deeply (a loop?)".into());
    }
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or("unterminated ${")?;
        let name = &after[..end];
        let option = canonical(name).ok_or_else(|| format!("${{{name}}} is not a known option"))?;
        let value = raw
            .get(option)
            .ok_or_else(|| format!("${{{name}}} refers to an option that is not set"))?;
        out.push_str(&expand(value, raw, depth + 1)?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// zeekctl's `LogExpireInterval`: a bare integer is days, else `<n>[ ](day|hr|min)[s]`; 0 = never.
/// Other unit spellings (`30d`, `12h`) are accepted too.
pub(crate) fn parse_expire_interval(text: &str) -> Result<Option<Duration>, String> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("invalid interval {text:?} (examples: 30, 30day, 12hr, 90min)"))?;
    let seconds = match unit.trim_start().trim_end_matches('s') {
        "" | "day" => n.checked_mul(86_400),
        "hr" => n.checked_mul(3_600),
        "min" => n.checked_mul(60),
        _ => return value::parse_duration(text).map(|d| Some(d).filter(|d| !d.is_zero())),
    };
    let seconds = seconds.ok_or_else(|| format!("interval {text:?} is too large"))?;
    Ok((seconds > 0).then(|| Duration::from_secs(seconds)))
}

/// A strftime format chrono can render (an unknown `%` specifier is an error, not literal text).
fn check_time_fmt(text: &str) -> Result<String, String> {
    use chrono::format::{Item, StrftimeItems};
    if text.is_empty() {
        return Err("is empty".into());
    }
    if StrftimeItems::new(text).any(|item| matches!(item, Item::Error)) {
        return Err(format!("{text:?} is not a valid strftime format"));
    }
    Ok(text.to_owned())
}

/// Space-separated file name patterns, no directories.
fn parse_keep_logs(text: &str) -> Result<Vec<String>, String> {
    text.split_whitespace()
        .map(|p| {
            if p.contains('/') {
                return Err(format!("{p:?}: patterns match file names, not directories"));
            }
            glob::Pattern::new(p).map_err(|e| format!("invalid pattern {p:?}: {e}"))?;
            Ok(p.to_owned())
        })
        .collect()
}

/// `10.0.0.0/8`, `127.0.0.1`, `::1/128`; `Ok(None)` when it is not an address at all.
fn parse_network(text: &str) -> Result<Option<PeerMatch>, String> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let Ok(addr) = addr.parse::<IpAddr>() else {
        return if prefix.is_some()
            || addr.contains(':')
            || addr.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        {
            Err(format!("{text:?} is not a valid address or network"))
        } else {
            Ok(None)
        };
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix_len = match prefix {
        None => max,
        Some(p) => p
            .parse::<u8>()
            .ok()
            .filter(|&p| p <= max)
            .ok_or_else(|| format!("invalid prefix length in {text:?} (0-{max})"))?,
    };
    let cidr = Cidr::new(addr, prefix_len).map_err(|e| format!("{text:?}: {e}"))?;
    Ok(Some(PeerMatch::Network(cidr)))
}

#[cfg(test)]
mod tests;
