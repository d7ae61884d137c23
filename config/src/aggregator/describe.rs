//! `estuary config` for an aggregator: every option with its effective value, defaults included,
//! under its zeekctl name.

use std::time::Duration;

use super::{AggregatorConfig, Durability, MailTransport, NatsRole, PeerMatch};
use crate::value::format_duration;

impl AggregatorConfig {
    /// `(option, value)` pairs, zeekctl spelling, in the order of the option reference.
    pub fn describe(&self) -> Vec<(String, String)> {
        let path = |p: &std::path::Path| p.display().to_string();
        let interval = |d: Option<Duration>| d.map_or_else(|| "0".to_owned(), format_duration);
        let flag = |b: bool| if b { "1" } else { "0" }.to_owned();
        let addr = |a: Option<std::net::SocketAddr>| a.map(|a| a.to_string()).unwrap_or_default();
        let (send_mail, smtp) = match &self.mail.transport {
            MailTransport::Disabled => (String::new(), String::new()),
            MailTransport::SendMail(program) => (path(program), String::new()),
            MailTransport::Smtp { host, port } => {
                (String::new(), crate::value::display_host_port(host, *port))
            }
        };
        let tls = self.tls.as_ref();
        let nats = self.nats.as_ref();
        let peers: Vec<String> = self
            .peers
            .iter()
            .map(|p| {
                let who = match &p.matcher {
                    PeerMatch::Network(cidr) => cidr.to_string(),
                    PeerMatch::CertName(name) => name.clone(),
                };
                match &p.tags {
                    Some(r) => format!("{who} (tags /{}/)", r.as_str()),
                    None => who,
                }
            })
            .collect();
        [
            ("source", path(&self.source)),
            ("LogDir", path(&self.log_dir)),
            ("SpoolDir", path(&self.spool_dir)),
            (
                "LogRotationInterval",
                format_duration(self.rotation_interval),
            ),
            ("LogExpireInterval", interval(self.expire_interval)),
            ("KeepLogs", self.keep_logs.join(" ")),
            ("StatsLog", path(&self.stats_log)),
            (
                "StatsLogExpireInterval",
                interval(self.stats_expire_interval),
            ),
            ("TimeFmt", self.time_fmt.clone()),
            ("Debug", flag(self.debug)),
            ("MaxMessageSize", self.max_message_size.to_string()),
            (
                "Durability",
                match self.durability {
                    Durability::Written => "written",
                    Durability::Synced => "synced",
                }
                .to_owned(),
            ),
            ("ReplayMarkRetention", interval(self.replay_mark_retention)),
            ("CompressLevel", self.compress_level.to_string()),
            (
                "MetricsAddress",
                self.metrics_address
                    .map_or_else(String::new, |a| a.to_string()),
            ),
            (
                "ForwardMetricsAddress",
                self.forward_metrics_address
                    .map_or_else(String::new, |a| a.to_string()),
            ),
            ("TagPrefix", self.routing.tag_prefix.clone()),
            ("CatchAllLog", self.routing.catch_all.clone()),
            ("PerHostDirs", flag(self.routing.per_host)),
            ("MailTo", self.mail.to.clone()),
            ("MailFrom", self.mail.from.clone()),
            (
                "MailReplyTo",
                self.mail.reply_to.clone().unwrap_or_default(),
            ),
            ("MailSubjectPrefix", self.mail.subject_prefix.clone()),
            ("MailAlarmPrefix", self.mail.alarm_prefix.clone()),
            ("MailAlarms", flag(self.mail.mail_alarms)),
            ("MailAlarmsTo", self.mail.alarms_to.clone()),
            (
                "MailAlarmsInterval",
                self.mail
                    .alarms_interval
                    .map_or_else(|| "at each rotation".to_owned(), format_duration),
            ),
            ("SendMail", send_mail),
            ("SmtpServer", smtp),
            ("MinDiskSpace", self.disk.min_free_percent.to_string()),
            ("DiskHardFloor", self.disk.hard_floor_percent.to_string()),
            ("ListenUDP", addr(self.listen.udp)),
            ("ListenTCP", addr(self.listen.tcp)),
            ("ListenTLS", addr(self.listen.tls)),
            ("ListenRELP", addr(self.listen.relp)),
            ("ListenRELPTLS", addr(self.listen.relp_tls)),
            (
                "MaxConnectionsPerAddress",
                self.connection_limits.per_address.to_string(),
            ),
            (
                "MaxConnectionsPerCertName",
                self.connection_limits.per_cert_name.to_string(),
            ),
            (
                "TLSCertFile",
                tls.map(|t| path(&t.cert_file)).unwrap_or_default(),
            ),
            (
                "TLSKeyFile",
                tls.map(|t| path(&t.key_file)).unwrap_or_default(),
            ),
            (
                "TLSCAFile",
                tls.and_then(|t| t.ca_file.as_deref())
                    .map(path)
                    .unwrap_or_default(),
            ),
            (
                "TLSRequireClientCert",
                flag(tls.is_some_and(|t| t.require_client_cert)),
            ),
            (
                "TLSCRLFile",
                tls.and_then(|t| t.crl_file.as_deref())
                    .map(path)
                    .unwrap_or_default(),
            ),
            ("AllowedPeers", peers.join(", ")),
            (
                "ForwardTo",
                self.forward
                    .iter()
                    .map(|g| {
                        let to: Vec<String> = g.to.iter().map(|t| t.to_string()).collect();
                        to.join(", ")
                    })
                    .collect::<Vec<_>>()
                    .join(" | "),
            ),
            (
                "ForwardTags",
                self.forward
                    .iter()
                    .map(|g| g.tags.as_ref().map_or(".*", |r| r.as_str()))
                    .collect::<Vec<_>>()
                    .join(" | "),
            ),
            (
                "ForwardFormat",
                self.forward
                    .iter()
                    .map(|g| match (g.body, g.format) {
                        (crate::shipper::Body::ZeekJson, _) => "json",
                        (_, estuary_wire::Format::Rfc3164) => "rfc3164",
                        (_, estuary_wire::Format::Rfc5424) => "rfc5424",
                    })
                    .collect::<Vec<_>>()
                    .join(" | "),
            ),
            (
                "NatsServers",
                nats.map(|n| n.servers.join(", ")).unwrap_or_default(),
            ),
            (
                "NatsStream",
                nats.map(|n| n.stream.clone()).unwrap_or_default(),
            ),
            (
                "NatsTags",
                nats.map(|n| n.tags.join(", ")).unwrap_or_default(),
            ),
            ("NatsName", nats.map(|n| n.name.clone()).unwrap_or_default()),
            (
                "NatsCredentials",
                nats.and_then(|n| n.credentials.as_deref())
                    .map(path)
                    .unwrap_or_default(),
            ),
            (
                "NatsCAFile",
                nats.and_then(|n| n.ca_file.as_deref())
                    .map(path)
                    .unwrap_or_default(),
            ),
            (
                "NatsReplicas",
                nats.map(|n| n.replicas.to_string()).unwrap_or_default(),
            ),
            (
                "NatsPriorityTimeout",
                nats.map(|n| format_duration(n.priority_timeout))
                    .unwrap_or_default(),
            ),
            (
                "NatsMaxAge",
                nats.map(|n| format_duration(n.max_age)).unwrap_or_default(),
            ),
            (
                "NatsDuplicateWindow",
                nats.map(|n| format_duration(n.duplicate_window))
                    .unwrap_or_default(),
            ),
            (
                "NatsIngest",
                flag(nats.is_some_and(|n| n.role == NatsRole::Ingest)),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}
