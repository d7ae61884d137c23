//! broctl/zeekctl `cluster.cfg` / `zeekctl.cfg` syntax: `Key = value` lines, `#` comments, keys
//! case-insensitive, values unquoted, `${Option}` references. Relative paths are resolved against the
//! file's directory (zeekctl's own are absolute under its base directory).
//!
//! Options broctl used for running Bro nodes are reported as such; anything unknown is an error.

use std::path::Path;

use super::files::Files;
use super::settings::{canonical, Setting, Settings};
use super::AggregatorConfig;
use crate::value;
use crate::{ConfigError, ConfigErrors};

/// broctl/zeekctl options about running Bro/Zeek nodes, which the aggregator has no use for.
const BROCTL_ONLY: &[&str] = &[
    "auxscriptsmanager",
    "auxscriptsstandalone",
    "auxscriptsworker",
    "broargs",
    "zeekargs",
    "cflowaddr",
    "cflowpassword",
    "cflowuser",
    "custominstallbin",
    "havenfs",
    "prefixes",
    "savetraces",
    "sitepolicymanager",
    "sitepolicypath",
    "sitepolicystandalone",
    "sitepolicyworker",
    "sitepolicyscripts",
    "analysiscfg",
    "bindir",
    "brobase",
    "zeekbase",
    "capstats",
    "cfgdir",
    "clustercfg",
    "debuglog",
    "distdir",
    "havebroccoli",
    "helperdir",
    "libdir",
    "localnetscfg",
    "lockfile",
    "nodecfg",
    "os",
    "policydir",
    "scripts-manager",
    "scripts-proxy",
    "scripts-standalone",
    "scripts-worker",
    "standalone",
    "statefile",
    "time",
    "tmpdir",
    "tmpexecdir",
    "tracesummary",
    "version",
    "mailconnectionsummary",
    "mailhostupdown",
    "mailreceivingpackets",
    "mailarchivelogfail",
    "compresslogs",
    "compresscmd",
    "compressextension",
    "compresslogsinflight",
    "makearchivename",
    "croncmd",
    "statslogenable",
    "crashexpireinterval",
    "stoptimeout",
    "stopwait",
    "logexpireminutes",
    "statsdir",
    "postprocdir",
    "pfringclusterid",
    "pfringclustertype",
    "env_vars",
];

pub(crate) fn parse(
    file: &Path,
    text: &str,
    files: Files,
) -> Result<AggregatorConfig, ConfigErrors> {
    let mut settings = Settings::new(file);
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let content = value::strip_comment(raw).trim();
        if content.is_empty() {
            continue;
        }
        let error =
            |key: &str, message: String| ConfigError::new(file, Some(line), Some(key), message);
        let Some((key, value)) = content.split_once('=') else {
            let word = content.split_whitespace().next().unwrap_or(content);
            settings
                .errors
                .push(error(word, "expected `Option = value`".into()));
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() {
            settings
                .errors
                .push(error("=", "missing option name before '='".into()));
            continue;
        }
        let Some(option) = canonical(key) else {
            let message = if BROCTL_ONLY.contains(&key.to_ascii_lowercase().as_str()) {
                "is a broctl option for running Bro nodes; estuary aggregate does not use it"
            } else {
                "unknown option"
            };
            settings.errors.push(error(key, message.into()));
            continue;
        };
        if value.len() >= 2
            && (value.starts_with('"') && value.ends_with('"')
                || value.starts_with('\'') && value.ends_with('\''))
        {
            settings
                .errors
                .push(error(key, "values are written without quotes".into()));
            continue;
        }
        settings.set(
            option,
            Setting {
                value: value.to_owned(),
                line: Some(line),
                key: key.to_owned(),
            },
        );
    }
    settings.validate(files)
}

#[cfg(test)]
mod tests {
    use crate::test_util::{expect_errors, lines_and_keys, Found};
    use std::path::PathBuf;
    use std::time::Duration;

    use super::super::{Durability, MailTransport, PeerMatch};
    use super::*;

    fn parse_str(text: &str) -> Result<AggregatorConfig, ConfigErrors> {
        parse(Path::new("/etc/estuary/cluster.cfg"), text, Files::Ignore)
    }

    fn errors(text: &str) -> Vec<Found> {
        expect_errors(parse_str(text))
    }

    const MINIMAL: &str =
        "LogDir = /var/log/bro\nSpoolDir = /var/spool/bro\nListenTCP = 127.0.0.1:514\n";

    #[test]
    fn compress_level() {
        assert_eq!(parse_str(MINIMAL).unwrap().compress_level, 6);
        let cfg = parse_str(&format!("{MINIMAL}CompressLevel = 1\n")).unwrap();
        assert_eq!(cfg.compress_level, 1);
        let found = errors(&format!("{MINIMAL}\ncompresslevel = 10\n"));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, Some(5));
        assert_eq!(found[0].1.as_deref(), Some("compresslevel"));
        assert!(found[0].2.contains("1 to 9"), "{found:?}");
    }

    #[test]
    fn seed_defaults() {
        let cfg = parse_str(MINIMAL).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.log_dir, Path::new("/var/log/bro"));
        assert_eq!(cfg.rotation_interval, Duration::from_secs(86_400));
        assert_eq!(cfg.expire_interval, Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(cfg.stats_log, Path::new("/var/spool/bro/stats.log"));
        assert_eq!(cfg.stats_expire_interval, None);
        assert_eq!(cfg.time_fmt, "%d %b %H:%M:%S");
        assert_eq!(cfg.mail.from, "Big Brother <bro@localhost>");
        assert_eq!(cfg.mail.subject_prefix, "[Bro]");
        assert_eq!(cfg.mail.alarm_prefix, "ALERT:");
        assert!(cfg.mail.mail_alarms);
        assert_eq!(cfg.mail.alarms_to, cfg.mail.to);
        assert_eq!(
            cfg.mail.transport,
            MailTransport::SendMail(PathBuf::from("/usr/sbin/sendmail"))
        );
        assert_eq!(
            (cfg.disk.min_free_percent, cfg.disk.hard_floor_percent),
            (5.0, 1.0)
        );
        assert_eq!(cfg.max_message_size, 65536);
        assert_eq!(
            (
                cfg.routing.tag_prefix.as_str(),
                cfg.routing.catch_all.as_str()
            ),
            ("bro_", "unrouted")
        );
        assert_eq!(cfg.durability, Durability::Written);
        assert_eq!(
            cfg.replay_mark_retention,
            Some(Duration::from_secs(7 * 86_400))
        );
        assert!(cfg.tls.is_none() && cfg.peers.is_empty());
    }

    #[test]
    fn every_option() {
        let cfg = parse_str(
            "# estuary aggregator\nlogdir = logs\nSPOOLDIR = /spool   # trailing comment\nLogRotationInterval = 3600\n\
             LogExpireInterval = 12hr\nKeepLogs = conn.* dns*\nStatsLog = ${SpoolDir}/s.log\nStatsLogExpireInterval = 7\n\
             TimeFmt = %Y-%m-%d\nDebug = 1\nMaxMessageSize = 8k\nDurability = synced\nReplayMarkRetention = 36hr\nTagPrefix = zeek_\nCatchAllLog = other.log\n\
             PerHostDirs = 1\nMailTo = soc@example.org\nMailFrom = estuary <e@example.org>\nMailReplyTo = noc@example.org\n\
             MailSubjectPrefix = [Zeek]\nMailAlarmPrefix = ALARM:\nMailAlarms = 0\nMailAlarmsTo = pager@example.org\n\
             MailAlarmsInterval = 3600\nSendMail =\nSmtpServer = 127.0.0.1:2525\nMinDiskSpace = 10\nDiskHardFloor = 2.5\n\
             ListenUDP = 127.0.0.1:514\nListenTCP = 127.0.0.1:514\nListenTLS = [::1]:6514\nListenRELP = 127.0.0.1:2514\n\
             ListenRELPTLS = 127.0.0.1:2515\nTLSCertFile = c.pem\nTLSKeyFile = /k.pem\nTLSCAFile = /ca.pem\n\
             TLSRequireClientCert = 1\nAllowedPeers = 10.0.0.0/8, 127.0.0.1 sensor1.example\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.log_dir, Path::new("/etc/estuary/logs"));
        assert_eq!(cfg.stats_log, Path::new("/spool/s.log"));
        assert_eq!(cfg.expire_interval, Some(Duration::from_secs(12 * 3600)));
        assert_eq!(cfg.keep_logs, ["conn.*", "dns*"]);
        assert_eq!(
            cfg.stats_expire_interval,
            Some(Duration::from_secs(7 * 86_400))
        );
        assert_eq!(
            (cfg.debug, cfg.max_message_size, cfg.durability),
            (true, 8192, Durability::Synced)
        );
        assert_eq!(
            cfg.replay_mark_retention,
            Some(Duration::from_secs(36 * 3600))
        );
        assert_eq!(cfg.routing.catch_all, "other");
        assert!(cfg.routing.per_host);
        assert!(!cfg.mail.mail_alarms);
        assert_eq!(cfg.mail.alarms_interval, Some(Duration::from_secs(3600)));
        assert_eq!(
            cfg.mail.transport,
            MailTransport::Smtp {
                host: "127.0.0.1".into(),
                port: 2525
            }
        );
        assert_eq!(cfg.mail.reply_to.as_deref(), Some("noc@example.org"));
        assert_eq!(cfg.listen.tls, Some("[::1]:6514".parse().unwrap()));
        let tls = cfg.tls.as_ref().unwrap();
        assert_eq!(tls.cert_file, Path::new("/etc/estuary/c.pem"));
        assert!(tls.require_client_cert);
        assert_eq!(cfg.peers.len(), 3);
        assert_eq!(
            cfg.peers[2].matcher,
            PeerMatch::CertName("sensor1.example".into())
        );
    }

    #[test]
    fn replay_mark_retention_is_zeekctl_interval_and_not_too_short() {
        let cfg = parse_str(&format!("{MINIMAL}ReplayMarkRetention = 0\n")).unwrap();
        assert_eq!(cfg.replay_mark_retention, None);
        let cfg = parse_str(&format!("{MINIMAL}replaymarkretention = 14\n")).unwrap();
        assert_eq!(
            cfg.replay_mark_retention,
            Some(Duration::from_secs(14 * 86_400))
        );
        let errs = errors(&format!("{MINIMAL}ReplayMarkRetention = 30min\n"));
        assert_eq!(errs.len(), 1);
        assert_eq!(
            (errs[0].0, errs[0].1.as_deref()),
            (Some(4), Some("ReplayMarkRetention"))
        );
        assert!(errs[0].2.contains("shorter than 1hr"), "{}", errs[0].2);
        assert_eq!(
            errors(&format!("{MINIMAL}ReplayMarkRetention = soon\n")).len(),
            1
        );
    }

    #[test]
    fn empty_sendmail_disables_mail() {
        let cfg = parse_str(&format!("{MINIMAL}SendMail =\n")).unwrap();
        assert_eq!(cfg.mail.transport, MailTransport::Disabled);
    }

    #[test]
    fn unknown_and_obsolete_keys_name_file_line_key() {
        let errs = errors(&format!(
            "{MINIMAL}BroArgs = -f tcp\nLogExpireIgnore = conn\n"
        ));
        assert_eq!(
            errs,
            vec![
                (
                    Some(4),
                    Some("BroArgs".into()),
                    "is a broctl option for running Bro nodes; estuary aggregate does not use it"
                        .into()
                ),
                (
                    Some(5),
                    Some("LogExpireIgnore".into()),
                    "unknown option".into()
                ),
            ]
        );
    }

    #[test]
    fn validation_errors_carry_lines() {
        let errs = errors(
            "LogDir = /l\nSpoolDir = /s\nLogRotationInterval = 7200\nLogExpireInterval = 1hr\nListenTLS = 127.0.0.1:6514\n\
             TLSRequireClientCert = 1\nMinDiskSpace = 2\nDiskHardFloor = 3\nlogdir = /again\nMailTo = \"x@y\"\n",
        );
        let got = lines_and_keys(&errs);
        assert_eq!(
            got,
            vec![
                (Some(9), Some("logdir")),
                (Some(10), Some("MailTo")),
                (Some(4), Some("LogExpireInterval")),
                (Some(8), Some("DiskHardFloor")),
                (Some(5), Some("ListenTLS")),
                (Some(5), Some("ListenTLS")),
                (Some(6), Some("TLSRequireClientCert")),
            ]
        );
        assert_eq!(
            errs[2].2,
            "log expire interval cannot be shorter than the log rotation interval"
        );
    }

    #[test]
    fn missing_required_and_listener() {
        let errs = errors("MailTo = a@b\n");
        let got = lines_and_keys(&errs);
        assert_eq!(
            got,
            vec![
                (None, Some("LogDir")),
                (None, Some("SpoolDir")),
                (None, None)
            ]
        );
    }

    #[test]
    fn bad_values() {
        let errs = errors(&format!(
            "{MINIMAL}ListenUDP = localhost:514\nAllowedPeers = 10.0.0.0/40\nDebug = maybe\nStatsLog = ${{Nope}}/x\nnonsense\n"
        ));
        let got = lines_and_keys(&errs);
        assert_eq!(
            got,
            vec![
                (Some(8), Some("nonsense")),
                (Some(7), Some("StatsLog")),
                (Some(6), Some("Debug")),
                (Some(4), Some("ListenUDP")),
                (Some(5), Some("AllowedPeers")),
            ]
        );
    }
}
