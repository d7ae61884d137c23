use super::*;
use crate::test_util::{expect_errors, lines_and_keys, Found};

fn parse_str(text: &str) -> Result<ShipperConfig, ConfigErrors> {
    parse(Path::new("/etc/estuary/ship.toml"), text)
}

fn errors(text: &str) -> Vec<Found> {
    expect_errors(parse_str(text))
}

const FULL: &str = r#"
work_dir = "state"
hostname = "sensor1"
stats_interval = "5m"

[[input]]
path = "/usr/local/bro/logs/current/*.log"
tag = "bro_conn:"
facility = "local7"
severity = "info"
watch = "polling"
poll_interval = "500ms"
start_at = "end"
max_line_bytes = "64k"
long_lines = "truncate"
partial_line_timeout = 30

[[input]]
path = "notice.log"
tag = "bro_notice:"
state_file = "/var/lib/notice.state"

[[destination]]
name = "central"
host = "::1"
port = 6514
transport = "tls"
format = "rfc5424"
tag_regex = "^bro_"
retry_interval = "500ms"
retry_max = "1m"
ca_file = "ca.pem"
cert_file = "/etc/c.pem"
key_file = "/etc/k.pem"
server_name = "logs.example"

[[destination]]
host = "127.0.0.1"
transport = "relp"
window = 1024
facility = "local7"
"#;

#[test]
fn full_example() {
    let cfg = parse_str(FULL).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.work_dir, Path::new("/etc/estuary/state"));
    assert_eq!(cfg.hostname, "sensor1");
    assert_eq!(cfg.stats_interval, Duration::from_secs(300));
    let a = &cfg.inputs[0];
    assert_eq!(
        a.watch,
        WatchMode::Polling {
            interval: Duration::from_millis(500)
        }
    );
    assert_eq!(
        (a.facility, a.severity, a.start_at),
        (Facility::Local7, Severity::Informational, StartAt::End)
    );
    assert_eq!(
        (a.max_line_bytes, a.long_lines, a.partial_line_timeout),
        (65536, LongLines::Truncate, Some(Duration::from_secs(30)))
    );
    let b = &cfg.inputs[1];
    assert_eq!(b.path, Path::new("/etc/estuary/notice.log"));
    assert_eq!(b.state_file, Path::new("/var/lib/notice.state"));
    assert_eq!(
        (b.facility, b.severity),
        (Facility::Local0, Severity::Notice)
    );
    assert_eq!(
        b.watch,
        WatchMode::Inotify {
            fallback: Duration::from_secs(10)
        }
    );
    let d = &cfg.destinations[0];
    assert_eq!(d.name, "central");
    let Transport::Tcp {
        framing,
        tls: Some(tls),
    } = &d.transport
    else {
        panic!("not tls")
    };
    assert_eq!(*framing, Framing::OctetCounting);
    assert_eq!(tls.ca_file, Path::new("/etc/estuary/ca.pem"));
    assert_eq!(tls.server_name.as_deref(), Some("logs.example"));
    assert!(d.tag_filter.as_ref().is_some_and(|r| r.is_match("bro_ssl")));
    let r = &cfg.destinations[1];
    assert_eq!((r.name.as_str(), r.port), ("127.0.0.1:514", 514));
    assert_eq!(
        r.transport,
        Transport::Relp {
            window: 1024,
            tls: None
        }
    );
    assert_eq!(r.facility, Some(Facility::Local7));
}

#[test]
fn unknown_key_names_line_and_key() {
    let errs = errors("[[input]]\npath = \"/a\"\ntag = \"a:\"\ncolour = \"red\"\n");
    // Reported together with the rest: here, that no destination is configured.
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_eq!((errs[0].0, errs[0].1.as_deref()), (Some(4), Some("colour")));
    assert!(
        errs[0].2.contains("unknown field `colour`"),
        "{}",
        errs[0].2
    );
}

#[test]
fn syntax_error_names_line() {
    let errs = errors("work_dir = \"/x\"\nhostname = \n");
    assert_eq!(
        (errs[0].0, errs[0].1.as_deref()),
        (Some(2), Some("hostname"))
    );
}

#[test]
fn validation_errors_are_all_collected_with_lines() {
    let errs = errors(
            "[[input]]\npath = \"/a\"\ntag = \"a:\"\nfacility = \"local9\"\nwatch = \"fanotify\"\n\n[[destination]]\nhost = \"h\"\ntransport = \"udp\"\nwindow = 5\nport = 0\n\n[[destination]]\nhost = \"h\"\ntransport = \"tls\"\n",
        );
    let got = lines_and_keys(&errs);
    assert_eq!(
        got,
        vec![
            (Some(4), Some("facility")),
            (Some(5), Some("watch")),
            (Some(11), Some("port")),
            (Some(10), Some("window")),
            (Some(13), Some("ca_file")),
        ]
    );
}

#[test]
fn missing_sections_are_reported() {
    let errs = errors("hostname = \"x\"\n");
    let keys: Vec<Option<&str>> = errs.iter().map(|e| e.1.as_deref()).collect();
    assert_eq!(keys, vec![Some("input"), Some("destination")]);
}

#[test]
fn empty_paths_are_errors() {
    let errs = errors("work_dir = \"\"\n[[input]]\npath = \"\"\ntag = \"a:\"\nstate_file = \" \"\n[[destination]]\nhost = \"h\"\ntransport = \"udp\"\n");
    let got = lines_and_keys(&errs);
    assert_eq!(
        got,
        vec![
            (Some(1), Some("work_dir")),
            (Some(3), Some("path")),
            (Some(5), Some("state_file"))
        ]
    );
}

#[test]
fn missing_required_field() {
    let errs =
        errors("[[input]]\npath = \"/a\"\n\n[[destination]]\nhost = \"h\"\ntransport = \"udp\"\n");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].2.contains("missing field `tag`"), "{}", errs[0].2);
    assert_eq!(errs[0].0, Some(1));
}

#[test]
fn nats_destination_takes_servers_not_host() {
    let input = "[[input]]\npath = \"/a\"\ntag = \"bro_conn:\"\n";
    let cfg = parse_str(&format!(
            "{input}[[destination]]\ntransport = \"nats\"\nservers = [\"nats://10.0.0.1:4222\", \"tls://n2:4443\"]\n"
        ))
        .unwrap();
    let d = &cfg.destinations[0];
    assert_eq!(d.name, "nats:ESTUARY");
    assert_eq!(d.format, Format::Rfc5424);
    let Transport::Nats(n) = &d.transport else {
        panic!("{:?}", d.transport)
    };
    assert_eq!(n.servers, ["nats://10.0.0.1:4222", "tls://n2:4443"]);
    assert!(n.tls.is_none());

    let errs = parse_str(&format!(
        "{input}[[destination]]\ntransport = \"nats\"\nhost = \"h\"\nformat = \"rfc3164\"\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(errs.contains("host: does not apply"), "{errs}");
    assert!(errs.contains("servers: is required"), "{errs}");
    assert!(
        errs.contains("format: transport \"nats\" sends rfc5424"),
        "{errs}"
    );
    let errs = parse_str(&format!(
        "{input}[[destination]]\ntransport = \"relp\"\nservers = [\"nats://h:1\"]\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(errs.contains("host: is required"), "{errs}");
    assert!(errs.contains("servers: does not apply"), "{errs}");
}
