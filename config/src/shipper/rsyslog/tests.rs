use super::*;
use crate::shipper::Transport;
use crate::test_util::{expect_errors, lines_and_keys, Found};
use estuary_wire::{Format, Framing};

fn parse_str(text: &str) -> Result<ShipperConfig, ConfigErrors> {
    parse(Path::new("/etc/estuary/60-bro.conf"), text)
}

fn errors(text: &str) -> Vec<Found> {
    expect_errors(parse_str(text))
}

const SEED_BLOCK: &str = "$ModLoad imfile #
$InputFileName /usr/local/bro/logs/current/ssl.log
$InputFileTag bro_ssl:
$InputFileStateFile stat-bro_ssl
$InputFileSeverity info
$InputFileFacility local7
$InputFileName /usr/local/bro/logs/current/smtp.log
$InputFileTag bro_smtp:
$InputFileStateFile stat-bro_smtp
$InputFileSeverity info
$InputFileFacility local7
# check for new lines every second
$InputFilePollingInterval 1
local7.* @central_syslog_server
";

#[test]
fn seed_block_without_run_file_monitor() {
    let cfg = parse_str(SEED_BLOCK).unwrap();
    assert_eq!(cfg.inputs.len(), 2);
    let ssl = &cfg.inputs[0];
    assert_eq!(ssl.path, Path::new("/usr/local/bro/logs/current/ssl.log"));
    assert_eq!(ssl.tag, "bro_ssl:");
    assert_eq!(ssl.facility, Facility::Local7);
    assert_eq!(ssl.severity, Severity::Informational);
    assert_eq!(ssl.state_file, Path::new("/var/spool/estuary/stat-bro_ssl"));
    assert_eq!(
        ssl.watch,
        WatchMode::Inotify {
            fallback: Duration::from_secs(1)
        }
    );
    assert_eq!(ssl.long_lines, LongLines::Split);
    assert_eq!(ssl.max_line_bytes, 8192);
    assert_eq!(cfg.inputs[1].tag, "bro_smtp:");
    assert_eq!(cfg.destinations.len(), 1);
    let d = &cfg.destinations[0];
    assert_eq!(
        (d.name.as_str(), d.host.as_str(), d.port),
        ("central_syslog_server:514", "central_syslog_server", 514)
    );
    assert_eq!(d.transport, Transport::Udp);
    assert_eq!(d.format, Format::Rfc3164);
    assert_eq!(d.facility, Some(Facility::Local7));
}

#[test]
fn run_file_monitor_resets_facility_and_severity() {
    let cfg = parse_str(
            "$WorkDirectory /tmp/w\n$ModLoad imfile\n$InputFileName /a.log\n$InputFileTag a:\n$InputFileFacility local7\n$InputFileSeverity info\n$InputRunFileMonitor\n$InputFileName /b.log\n$InputFileTag b:\n$InputRunFileMonitor\n*.* @@[::1]:10514;RSYSLOG_SyslogProtocol23Format\n",
        )
        .unwrap();
    assert_eq!(cfg.inputs[1].facility, Facility::Local0);
    assert_eq!(cfg.inputs[1].severity, Severity::Notice);
    assert_eq!(
        cfg.inputs[1].state_file,
        Path::new("/tmp/w/imfile-state:-b.log")
    );
    assert_eq!(
        cfg.inputs[0].watch,
        WatchMode::Inotify {
            fallback: Duration::from_secs(10)
        }
    );
    let d = &cfg.destinations[0];
    assert_eq!(
        (d.name.as_str(), d.host.as_str(), d.port),
        ("[::1]:10514", "::1", 10514)
    );
    assert_eq!(
        d.transport,
        Transport::Tcp {
            framing: Framing::NewLine,
            tls: None
        }
    );
    assert_eq!(d.format, Format::Rfc5424);
    assert_eq!(d.facility, None);
}

#[test]
fn relp_tls_and_octet_counting() {
    let cfg = parse_str(
            "$ModLoad imfile\n$ModLoad omrelp\n$InputFileName /a.log\n$InputFileTag a:\n$MaxMessageSize 64k\n\
             *.* :omrelp:127.0.0.1:2514\n*.* @@(o)127.0.0.1\n\
             $DefaultNetstreamDriver gtls\n$DefaultNetstreamDriverCAFile /ca.pem\n$DefaultNetstreamDriverCertFile /c.pem\n\
             $DefaultNetstreamDriverKeyFile /k.pem\n$ActionSendStreamDriverMode 1\n$ActionSendStreamDriverAuthMode x509/name\n\
             $ActionSendStreamDriverPermittedPeer logs.example\n*.* @@127.0.0.1:6514\n",
        )
        .unwrap();
    assert_eq!(cfg.inputs[0].max_line_bytes, 65536);
    assert_eq!(
        cfg.destinations[0].transport,
        Transport::Relp {
            window: 128,
            tls: None
        }
    );
    assert_eq!(
        cfg.destinations[1].transport,
        Transport::Tcp {
            framing: Framing::OctetCounting,
            tls: None
        }
    );
    assert_eq!(cfg.destinations[1].name, "127.0.0.1:514");
    let Transport::Tcp { tls: Some(tls), .. } = &cfg.destinations[2].transport else {
        panic!("not TLS")
    };
    assert_eq!(tls.ca_file, Path::new("/ca.pem"));
    assert_eq!(tls.server_name.as_deref(), Some("logs.example"));
    assert_eq!(
        tls.client_auth.as_ref().map(|c| c.key_file.as_path()),
        Some(Path::new("/k.pem"))
    );
}

#[test]
fn unsupported_directive_names_line_and_key() {
    let errs = errors("$ModLoad imfile\n$InputFileName /a\n$InputFileTag a:\n$ActionQueueType LinkedList\n*.* @h\n");
    assert_eq!(
        errs,
        vec![(
            Some(4),
            Some("$ActionQueueType".into()),
            "directive is not supported by estuary ship".into()
        )]
    );
}

#[test]
fn collects_every_error() {
    let errs = errors(
            "$ModLoad imuxsock\n$InputFileName /a\n$ModLoad imfile\n$InputFileName /a\n$InputFileFacility local9\n$InputFileTag a:\n*.* @h:99999\n/var/log/x.log\n",
        );
    let keys = lines_and_keys(&errs);
    assert_eq!(
        keys,
        vec![
            (Some(1), Some("$ModLoad")),
            (Some(2), Some("$InputFileName")),
            (Some(5), Some("$InputFileFacility")),
            (Some(7), Some("@h:99999")),
            (Some(8), Some("/var/log/x.log")),
        ]
    );
    assert!(errs[3].2.contains("invalid port"), "{}", errs[3].2);
}

#[test]
fn incomplete_block_is_reported_at_its_line() {
    let errs = errors("$ModLoad imfile\n$InputFileName /a\n$InputFileSeverity info\n*.* @h\n");
    assert_eq!(
        errs[0],
        (
            Some(2),
            Some("$InputFileTag".into()),
            "missing for $InputFileName /a".into()
        )
    );
}

#[test]
fn selector_that_matches_no_input_is_an_error() {
    let errs = errors("$ModLoad imfile\n$InputFileName /a\n$InputFileTag a:\nlocal7.* @h\n");
    assert_eq!(errs.len(), 1);
    assert_eq!(
        (errs[0].0, errs[0].1.as_deref()),
        (Some(4), Some("local7.*"))
    );
    assert!(errs[0].2.contains("local0.notice"), "{}", errs[0].2);
}

#[test]
fn severity_filter_must_not_split_a_facility() {
    let base = "$ModLoad imfile\n$InputFileName /a\n$InputFileTag a:\n$InputFileSeverity debug\n$InputFileName /b\n$InputFileTag b:\n$InputFileSeverity info\n";
    let errs = errors(&format!("{base}local0.info @h\n"));
    assert_eq!(errs[0].0, Some(8));
    let cfg = parse_str(&format!("{base}local0.debug @h\n*.*;local1.none @h\n")).unwrap();
    assert_eq!(cfg.destinations[0].facility, Some(Facility::Local0));
    assert_eq!(cfg.destinations[1].name, "h:514#2");
    let errs = errors(&format!("{base}*.*;local0.none @h\n"));
    assert!(
        errs[0].2.contains("none of the monitored files"),
        "{}",
        errs[0].2
    );
}

#[test]
fn duplicate_state_files_are_an_error() {
    let errs = errors("$ModLoad imfile\n$InputFileName /a\n$InputFileTag a:\n$InputFileStateFile s\n$InputFileName /b\n$InputFileTag b:\n$InputFileStateFile s\n*.* @h\n");
    assert_eq!(
        (errs[0].0, errs[0].1.as_deref()),
        (Some(5), Some("$InputFileStateFile"))
    );
}

#[test]
fn tls_without_ca_is_an_error() {
    let errs = errors("$ModLoad imfile\n$InputFileName /a\n$InputFileTag a:\n$DefaultNetstreamDriver gtls\n$ActionSendStreamDriverMode 1\n*.* @@h:6514\n");
    assert_eq!(
        (errs[0].0, errs[0].1.as_deref()),
        (Some(6), Some("@@h:6514"))
    );
}

#[test]
fn imfile_directives_need_modload() {
    let errs =
        errors("$InputFileName /a\n$ModLoad imfile\n$InputFileName /a\n$InputFileTag a:\n*.* @h\n");
    assert_eq!(
        errs,
        vec![(
            Some(1),
            Some("$InputFileName".into()),
            "imfile directive before `$ModLoad imfile`".into()
        )]
    );
}
