//! The aggregator's TOML form: the zeekctl options under snake_case names, grouped in tables, plus
//! `[[peer]]` rules that can limit a sender to some tags.
//!
//! ```toml
//! log_dir = "/var/log/estuary"
//! spool_dir = "/var/spool/estuary"
//! expire_interval = "30day"
//! [listen]
//! relp = "0.0.0.0:2514"
//! [mail]
//! to = "soc@example.org"
//! smtp_server = "127.0.0.1:25"
//! [[peer]]
//! address = "10.1.0.0/16"
//! tag_regex = "^bro_"
//! ```
//!
//! Values have the same meaning as their zeekctl counterparts (`expire_interval = 30` is 30 days),
//! see `settings::OPTIONS` for the mapping.

use std::path::Path;

use serde::Deserialize;
use toml::{Spanned, Value};

use super::files::Files;
use super::settings::{ForwardSetting, PeerSetting, Setting, Settings, OPTIONS};
use super::AggregatorConfig;
use crate::toml_form::TomlFile;
use crate::ConfigErrors;

type Field = Option<Spanned<Value>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAggregator {
    log_dir: Field,
    spool_dir: Field,
    rotation_interval: Field,
    expire_interval: Field,
    keep_logs: Field,
    stats_log: Field,
    stats_expire_interval: Field,
    time_fmt: Field,
    debug: Field,
    max_message_size: Field,
    durability: Field,
    replay_mark_retention: Field,
    compress_level: Field,
    metrics_address: Field,
    forward_metrics_address: Field,
    allowed_peers: Field,
    routing: Option<RawRouting>,
    mail: Option<RawMail>,
    disk: Option<RawDisk>,
    listen: Option<RawListen>,
    tls: Option<RawTls>,
    nats: Option<RawNats>,
    #[serde(default)]
    peer: Vec<Spanned<RawPeer>>,
    #[serde(default)]
    forward: Vec<RawForward>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForward {
    to: Spanned<Value>,
    tags: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRouting {
    tag_prefix: Field,
    catch_all: Field,
    per_host: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMail {
    to: Field,
    from: Field,
    reply_to: Field,
    subject_prefix: Field,
    alarm_prefix: Field,
    alarms: Field,
    alarms_to: Field,
    alarms_interval: Field,
    sendmail: Field,
    smtp_server: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDisk {
    min_free_percent: Field,
    hard_floor_percent: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListen {
    udp: Field,
    tcp: Field,
    tls: Field,
    relp: Field,
    relp_tls: Field,
    max_connections_per_address: Field,
    max_connections_per_cert_name: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Field,
    key_file: Field,
    ca_file: Field,
    crl_file: Field,
    require_client_cert: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNats {
    servers: Field,
    stream: Field,
    tags: Field,
    name: Field,
    credentials: Field,
    ca_file: Field,
    replicas: Field,
    priority_timeout: Field,
    max_age: Field,
    duplicate_window: Field,
    ingest: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeer {
    address: Option<String>,
    cert_name: Option<String>,
    tag_regex: Option<String>,
}

pub(crate) fn parse(
    file: &Path,
    text: &str,
    files: Files,
) -> Result<AggregatorConfig, ConfigErrors> {
    let mut toml = TomlFile::new(file, text);
    let raw: RawAggregator = toml.deserialize()?;
    let routing = raw.routing.as_ref();
    let mail = raw.mail.as_ref();
    let disk = raw.disk.as_ref();
    let listen = raw.listen.as_ref();
    let tls = raw.tls.as_ref();
    let nats = raw.nats.as_ref();
    let fields: Vec<(&str, &Field)> = vec![
        ("log_dir", &raw.log_dir),
        ("spool_dir", &raw.spool_dir),
        ("rotation_interval", &raw.rotation_interval),
        ("expire_interval", &raw.expire_interval),
        ("keep_logs", &raw.keep_logs),
        ("stats_log", &raw.stats_log),
        ("stats_expire_interval", &raw.stats_expire_interval),
        ("time_fmt", &raw.time_fmt),
        ("debug", &raw.debug),
        ("max_message_size", &raw.max_message_size),
        ("durability", &raw.durability),
        ("replay_mark_retention", &raw.replay_mark_retention),
        ("compress_level", &raw.compress_level),
        ("metrics_address", &raw.metrics_address),
        ("forward_metrics_address", &raw.forward_metrics_address),
        ("allowed_peers", &raw.allowed_peers),
        (
            "routing.tag_prefix",
            routing.map_or(&None, |r| &r.tag_prefix),
        ),
        ("routing.catch_all", routing.map_or(&None, |r| &r.catch_all)),
        ("routing.per_host", routing.map_or(&None, |r| &r.per_host)),
        ("mail.to", mail.map_or(&None, |m| &m.to)),
        ("mail.from", mail.map_or(&None, |m| &m.from)),
        ("mail.reply_to", mail.map_or(&None, |m| &m.reply_to)),
        (
            "mail.subject_prefix",
            mail.map_or(&None, |m| &m.subject_prefix),
        ),
        ("mail.alarm_prefix", mail.map_or(&None, |m| &m.alarm_prefix)),
        ("mail.alarms", mail.map_or(&None, |m| &m.alarms)),
        ("mail.alarms_to", mail.map_or(&None, |m| &m.alarms_to)),
        (
            "mail.alarms_interval",
            mail.map_or(&None, |m| &m.alarms_interval),
        ),
        ("mail.sendmail", mail.map_or(&None, |m| &m.sendmail)),
        ("mail.smtp_server", mail.map_or(&None, |m| &m.smtp_server)),
        (
            "disk.min_free_percent",
            disk.map_or(&None, |d| &d.min_free_percent),
        ),
        (
            "disk.hard_floor_percent",
            disk.map_or(&None, |d| &d.hard_floor_percent),
        ),
        ("listen.udp", listen.map_or(&None, |l| &l.udp)),
        ("listen.tcp", listen.map_or(&None, |l| &l.tcp)),
        ("listen.tls", listen.map_or(&None, |l| &l.tls)),
        ("listen.relp", listen.map_or(&None, |l| &l.relp)),
        ("listen.relp_tls", listen.map_or(&None, |l| &l.relp_tls)),
        (
            "listen.max_connections_per_address",
            listen.map_or(&None, |l| &l.max_connections_per_address),
        ),
        (
            "listen.max_connections_per_cert_name",
            listen.map_or(&None, |l| &l.max_connections_per_cert_name),
        ),
        ("tls.cert_file", tls.map_or(&None, |t| &t.cert_file)),
        ("tls.key_file", tls.map_or(&None, |t| &t.key_file)),
        ("tls.ca_file", tls.map_or(&None, |t| &t.ca_file)),
        ("tls.crl_file", tls.map_or(&None, |t| &t.crl_file)),
        (
            "tls.require_client_cert",
            tls.map_or(&None, |t| &t.require_client_cert),
        ),
        ("nats.servers", nats.map_or(&None, |n| &n.servers)),
        ("nats.stream", nats.map_or(&None, |n| &n.stream)),
        ("nats.tags", nats.map_or(&None, |n| &n.tags)),
        ("nats.name", nats.map_or(&None, |n| &n.name)),
        ("nats.credentials", nats.map_or(&None, |n| &n.credentials)),
        ("nats.ca_file", nats.map_or(&None, |n| &n.ca_file)),
        ("nats.replicas", nats.map_or(&None, |n| &n.replicas)),
        (
            "nats.priority_timeout",
            nats.map_or(&None, |n| &n.priority_timeout),
        ),
        ("nats.max_age", nats.map_or(&None, |n| &n.max_age)),
        (
            "nats.duplicate_window",
            nats.map_or(&None, |n| &n.duplicate_window),
        ),
        ("nats.ingest", nats.map_or(&None, |n| &n.ingest)),
    ];

    let mut settings = Settings::new(file);
    for (path, field) in fields {
        let Some(field) = field else { continue };
        let key = path.rsplit('.').next().unwrap_or(path);
        let Some(&(option, _)) = OPTIONS.iter().find(|(_, toml_path)| *toml_path == path) else {
            continue;
        };
        match as_text(field.get_ref()) {
            Ok(value) => settings.set(
                option,
                Setting {
                    value,
                    line: Some(toml.line(&field.span())),
                    key: key.to_owned(),
                },
            ),
            Err(e) => toml.error(&field.span(), key, e),
        }
    }
    for peer in raw.peer {
        let line = toml.line(&peer.span());
        let peer = peer.into_inner();
        settings.peers.push(PeerSetting {
            line,
            address: peer.address,
            cert_name: peer.cert_name,
            tag_regex: peer.tag_regex,
        });
    }
    for group in raw.forward {
        let to_line = toml.line(&group.to.span());
        let keyed = |v: Spanned<String>| (toml.line(&v.span()), v.into_inner());
        match as_text(group.to.get_ref()) {
            Ok(to) => settings.forwards.push(ForwardSetting {
                to: (to_line, to),
                tags: group.tags.map(keyed),
                format: group.format.map(keyed),
            }),
            Err(e) => {
                settings
                    .errors
                    .push(crate::ConfigError::new(file, Some(to_line), Some("to"), e))
            }
        }
    }
    let result = settings.validate(files);
    match (toml.into_result(()), result) {
        (Ok(()), result) => result,
        (Err(mut shape), Err(more)) => {
            shape.0.extend(more.0);
            Err(shape)
        }
        (Err(shape), Ok(_)) => Err(shape),
    }
}

/// TOML values as the `.cfg` text they stand for: booleans as 1/0, arrays space-separated.
fn as_text(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Integer(i) => Ok(i.to_string()),
        Value::Float(f) => Ok(f.to_string()),
        Value::Boolean(b) => Ok(if *b { "1" } else { "0" }.to_owned()),
        Value::Array(items) => {
            let words: Result<Vec<String>, String> = items
                .iter()
                .map(|item| match item {
                    Value::String(s) if !s.is_empty() && !s.contains(char::is_whitespace) => {
                        Ok(s.clone())
                    }
                    other => Err(format!("list items must be single words, got {other}")),
                })
                .collect();
            Ok(words?.join(" "))
        }
        other => Err(format!("unexpected {}", other.type_str())),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{MailTransport, PeerMatch};
    use super::*;

    fn parse_str(text: &str) -> Result<AggregatorConfig, ConfigErrors> {
        parse(
            Path::new("/etc/estuary/aggregate.toml"),
            text,
            Files::Ignore,
        )
    }

    #[test]
    fn full_example() {
        let cfg = parse_str(
            r#"
log_dir = "/var/log/estuary"
spool_dir = "spool"
rotation_interval = "1h"
expire_interval = 30
replay_mark_retention = "10day"
keep_logs = ["conn.*", "notice*"]
[routing]
per_host = true
[mail]
to = "soc@example.org"
alarms = false
smtp_server = "127.0.0.1:2525"
[disk]
min_free_percent = 10
hard_floor_percent = 0.5
[listen]
relp = "127.0.0.1:2514"
tls = "127.0.0.1:6514"
[tls]
cert_file = "/c.pem"
key_file = "/k.pem"
ca_file = "/ca.pem"
require_client_cert = true
[[peer]]
address = "10.1.0.0/16"
tag_regex = "^bro_"
[[peer]]
cert_name = "sensor1.example"
"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.spool_dir, Path::new("/etc/estuary/spool"));
        assert_eq!(cfg.rotation_interval, Duration::from_secs(3600));
        assert_eq!(cfg.expire_interval, Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(
            cfg.replay_mark_retention,
            Some(Duration::from_secs(10 * 86_400))
        );
        assert_eq!(cfg.keep_logs, ["conn.*", "notice*"]);
        assert!(cfg.routing.per_host && !cfg.mail.mail_alarms);
        assert_eq!(
            cfg.mail.transport,
            MailTransport::Smtp {
                host: "127.0.0.1".into(),
                port: 2525
            }
        );
        assert_eq!(
            (cfg.disk.min_free_percent, cfg.disk.hard_floor_percent),
            (10.0, 0.5)
        );
        assert_eq!(cfg.peers.len(), 2);
        assert!(cfg.peers[0]
            .tags
            .as_ref()
            .is_some_and(|r| r.is_match("bro_conn")));
        assert_eq!(
            cfg.peers[1].matcher,
            PeerMatch::CertName("sensor1.example".into())
        );
    }

    #[test]
    fn errors_name_line_and_key() {
        let err = parse_str("log_dir = \"/l\"\nspool_dir = \"/s\"\n[listen]\nrelp = \"nowhere\"\n[mail]\nalarms = {}\n").unwrap_err();
        let got: Vec<(Option<usize>, Option<&str>)> =
            err.0.iter().map(|e| (e.line, e.key.as_deref())).collect();
        assert_eq!(
            got,
            vec![(Some(6), Some("alarms")), (Some(4), Some("relp"))]
        );
        let err = parse_str("log_dir = \"/l\"\n[listen]\nsmtp = \"x\"\n").unwrap_err();
        assert_eq!(
            (err.0[0].line, err.0[0].key.as_deref()),
            (Some(3), Some("smtp"))
        );
        let err = parse_str("log_dir = \"/l\"\nspool_dir = \"/s\"\n[listen]\nudp = \"127.0.0.1:514\"\n[[peer]]\ntag_regex = \"x\"\n").unwrap_err();
        assert_eq!(
            (err.0[0].line, err.0[0].key.as_deref()),
            (Some(5), Some("peer"))
        );
    }
}
