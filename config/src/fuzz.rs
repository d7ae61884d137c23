//! Property tests ("fuzzing" that runs in `cargo test`): no input makes a parser panic, every error
//! points at a real line, and whatever is accepted holds the invariants components rely on.

use std::collections::HashSet;
use std::path::Path;

use proptest::prelude::*;

use crate::aggregator::AggregatorConfig;
use crate::shipper::ShipperConfig;
use crate::ConfigErrors;

const FILE: &str = "/etc/estuary/fuzz";
/// The fuzzed paths name no real files.
const IGNORE: crate::aggregator::files::Files = crate::aggregator::files::Files::Ignore;

fn check_errors(errors: &ConfigErrors, text: &str) {
    assert!(!errors.is_empty());
    let lines = text.lines().count();
    for e in &errors.0 {
        assert_eq!(e.file, Path::new(FILE));
        if let Some(line) = e.line {
            assert!(
                (1..=lines.max(1)).contains(&line),
                "line {line} of {lines}: {e}"
            );
        }
        assert!(!e.message.is_empty());
    }
}

fn check_shipper(result: Result<ShipperConfig, ConfigErrors>, text: &str) {
    match result {
        Ok(cfg) => {
            assert!(!cfg.inputs.is_empty() && !cfg.destinations.is_empty());
            let states: HashSet<_> = cfg.inputs.iter().map(|i| &i.state_file).collect();
            assert_eq!(states.len(), cfg.inputs.len(), "state files must be unique");
            let names: HashSet<_> = cfg.destinations.iter().map(|d| &d.name).collect();
            assert_eq!(
                names.len(),
                cfg.destinations.len(),
                "destination names must be unique"
            );
            for input in &cfg.inputs {
                assert!(!input.tag.is_empty() && input.tag.len() <= 32);
                assert!(input.state_file.is_absolute() || !cfg.work_dir.is_absolute());
            }
            for d in &cfg.destinations {
                assert!(d.port > 0 && !d.host.is_empty());
                assert!(d.retry_interval <= d.retry_max);
            }
            assert!(!cfg.describe().is_empty());
        }
        Err(errors) => check_errors(&errors, text),
    }
}

fn check_aggregator(result: Result<AggregatorConfig, ConfigErrors>, text: &str) {
    match result {
        Ok(cfg) => {
            if let Some(expire) = cfg.expire_interval {
                assert!(expire >= cfg.rotation_interval);
            }
            let l = &cfg.listen;
            assert!(
                l.udp.is_some()
                    || l.tcp.is_some()
                    || l.tls.is_some()
                    || l.relp.is_some()
                    || l.relp_tls.is_some()
            );
            assert_eq!(cfg.tls.is_some(), l.tls.is_some() || l.relp_tls.is_some());
            if let Some(tls) = &cfg.tls {
                assert!(!tls.require_client_cert || tls.ca_file.is_some());
            }
            assert!(
                cfg.disk.min_free_percent == 0.0
                    || cfg.disk.hard_floor_percent < cfg.disk.min_free_percent
            );
            assert!(!cfg.describe().is_empty());
        }
        Err(errors) => check_errors(&errors, text),
    }
}

fn one_of(items: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::sample::select(items).prop_map(str::to_owned)
}

/// Words that are sometimes valid, sometimes nearly valid.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        one_of(&[
            "/var/log/a.log",
            "/b/*.log",
            "rel.log",
            "bro_ssl:",
            "stat-a",
            "info",
            "local7",
            "local0",
            "debug",
            "1",
            "0",
            "10",
            "64k",
            "gtls",
            "x509/name",
            "anon",
            "imfile",
            "omrelp",
            "imuxsock",
            "/ca.pem",
            "[::1]",
            "",
            "a[",
            "9999999999999999999999",
            "-1",
            "émoji✓",
            "#",
            ";",
            "\t",
        ]),
        "[ -~]{0,12}",
    ]
}

fn rsyslog_line() -> impl Strategy<Value = String> {
    let directive = one_of(&[
        "$ModLoad",
        "$WorkDirectory",
        "$LocalHostName",
        "$MaxMessageSize",
        "$InputFileName",
        "$InputFileTag",
        "$InputFileStateFile",
        "$InputFileSeverity",
        "$InputFileFacility",
        "$InputFileTrimLineOverBytes",
        "$InputFileReadMode",
        "$InputFilePersistStateInterval",
        "$InputFilePollInterval",
        "$InputFilePollingInterval",
        "$InputRunFileMonitor",
        "$ResetConfigVariables",
        "$DefaultNetstreamDriver",
        "$DefaultNetstreamDriverCAFile",
        "$DefaultNetstreamDriverCertFile",
        "$DefaultNetstreamDriverKeyFile",
        "$ActionSendStreamDriverMode",
        "$ActionSendStreamDriverAuthMode",
        "$ActionSendStreamDriverPermittedPeer",
        "$Bogus",
    ]);
    let selector = one_of(&[
        "*.*",
        "local7.*",
        "local0.info",
        "local6,local7.*",
        "*.info;local0.none",
        "local7.=debug",
        "local7.!info",
        "x.y",
        "*",
        "local0.none",
    ]);
    let action = one_of(&[
        "@h",
        "@@h:10514",
        "@@(o)h",
        "@[::1]:514",
        ":omrelp:127.0.0.1:2514",
        "@@h;RSYSLOG_SyslogProtocol23Format",
        "@h;Nope",
        "@@(z9)h",
        "/var/log/x",
        "@@[::1",
        "@h:0",
        "@@h:65536",
        ":omrelp:",
        "@",
    ]);
    prop_oneof![
        4 => (directive, prop::collection::vec(word(), 0..3)).prop_map(|(d, args)| format!("{d} {}", args.join(" "))),
        2 => (selector, action).prop_map(|(s, a)| format!("{s} {a}")),
        1 => word().prop_map(|w| format!("# {w}")),
        1 => word(),
    ]
}

fn cfg_line() -> impl Strategy<Value = String> {
    let keys: Vec<&'static str> = crate::aggregator::settings::OPTIONS
        .iter()
        .map(|(k, _)| *k)
        .collect();
    let key = prop_oneof![
        6 => prop::sample::select(keys).prop_map(str::to_owned),
        1 => one_of(&["broargs", "LOGDIR", "Nope", "", "Mail To"]),
    ];
    let value = prop_oneof![
        one_of(&[
            "/var/log/bro",
            "logs",
            "127.0.0.1:514",
            "[::1]:6514",
            "0.0.0.0:2514",
            "30",
            "0",
            "12hr",
            "90min",
            "30day",
            "3600",
            "1",
            "yes",
            "synced",
            "written",
            "5",
            "2.5",
            "101",
            "10.0.0.0/8, 127.0.0.1",
            "host.example",
            "${SpoolDir}/s.log",
            "${Nope}",
            "${LogDir",
            "\"quoted\"",
            "conn.* dns*",
            "a/b*",
            "8k",
            "[Bro]",
        ]),
        "[ -~]{0,16}",
    ];
    prop_oneof![
        8 => (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => word().prop_map(|w| format!("# {w}")),
        1 => word(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let file = Path::new(FILE);
        check_shipper(crate::shipper::rsyslog::parse(file, &text), &text);
        check_shipper(crate::shipper::native::parse(file, &text), &text);
        check_aggregator(crate::aggregator::cluster_cfg::parse(file, &text, IGNORE), &text);
        check_aggregator(crate::aggregator::native::parse(file, &text, IGNORE), &text);
    }

    #[test]
    fn rsyslog_directive_soup(lines in prop::collection::vec(rsyslog_line(), 0..24)) {
        let text = lines.join("\n");
        check_shipper(crate::shipper::rsyslog::parse(Path::new(FILE), &text), &text);
    }

    #[test]
    fn zeekctl_cfg_soup(lines in prop::collection::vec(cfg_line(), 0..24)) {
        let text = lines.join("\n");
        check_aggregator(crate::aggregator::cluster_cfg::parse(Path::new(FILE), &text, IGNORE), &text);
    }

    #[test]
    fn valid_rsyslog_blocks_always_parse(
        files in prop::collection::vec(("[a-z]{1,8}", "[a-z_]{1,10}:", 0u8..8, 16u8..24), 1..6),
        port in 1u16..,
    ) {
        let mut text = String::from("$ModLoad imfile\n");
        for (i, (name, tag, severity, facility)) in files.iter().enumerate() {
            text.push_str(&format!(
                "$InputFileName /logs/{name}{i}.log\n$InputFileTag {tag}\n$InputFileSeverity {severity}\n$InputFileFacility {facility}\n"
            ));
        }
        text.push_str(&format!("*.* @@127.0.0.1:{port}\n"));
        let cfg = crate::shipper::rsyslog::parse(Path::new(FILE), &text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(cfg.inputs.len(), files.len());
        prop_assert_eq!(cfg.destinations[0].port, port);
    }
}

/// One file monitor as both forms can say it.
#[derive(Debug, Clone)]
struct AnyInput {
    name: String,
    tag: String,
    severity: estuary_wire::Severity,
    facility: estuary_wire::Facility,
    state: Option<String>,
}

fn any_input() -> impl Strategy<Value = AnyInput> {
    (
        "[a-z]{1,8}",
        "[a-z_]{1,12}:?",
        prop::sample::select(estuary_wire::Severity::ALL),
        prop::sample::select(estuary_wire::Facility::ALL),
        prop::option::of("[a-z-]{1,10}"),
    )
        .prop_map(|(name, tag, severity, facility, state)| AnyInput {
            name,
            tag,
            severity,
            facility,
            state,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// The same setup written as rsyslog directives and as TOML gives the same configuration.
    #[test]
    fn conf_and_toml_agree(
        inputs in prop::collection::vec(any_input(), 1..5),
        transport in prop::sample::select(&[("@", "udp"), ("@@", "tcp"), (":omrelp:", "relp")][..]),
        port in 1u16..,
        rfc5424 in any::<bool>(),
        poll_secs in 1u64..100,
    ) {
        let mut conf = String::from("$WorkDirectory /w\n$LocalHostName sensor\n$ModLoad imfile\n");
        let mut toml = String::from("work_dir = \"/w\"\nhostname = \"sensor\"\n");
        for (i, input) in inputs.iter().enumerate() {
            conf.push_str(&format!(
                "$InputFileName /logs/{}{i}.log\n$InputFileTag {}\n$InputFileSeverity {}\n$InputFileFacility {}\n",
                input.name, input.tag, input.severity, input.facility
            ));
            toml.push_str(&format!(
                "[[input]]\npath = \"/logs/{}{i}.log\"\ntag = \"{}\"\nseverity = \"{}\"\nfacility = \"{}\"\npoll_interval = {poll_secs}\n",
                input.name, input.tag, input.severity, input.facility
            ));
            if let Some(state) = &input.state {
                conf.push_str(&format!("$InputFileStateFile {state}{i}\n"));
                toml.push_str(&format!("state_file = \"{state}{i}\"\n"));
            }
            conf.push_str("$InputRunFileMonitor\n");
        }
        let template = if rfc5424 { ";RSYSLOG_SyslogProtocol23Format" } else { "" };
        conf.push_str(&format!("$InputFilePollInterval {poll_secs}\n*.* {}127.0.0.1:{port}{template}\n", transport.0));
        toml.push_str(&format!(
            "[[destination]]\nhost = \"127.0.0.1\"\nport = {port}\ntransport = \"{}\"\nformat = \"{}\"\n",
            transport.1,
            if rfc5424 { "rfc5424" } else { "rfc3164" }
        ));
        let from_conf = crate::shipper::rsyslog::parse(Path::new(FILE), &conf).map_err(|e| TestCaseError::fail(format!("{e}\n{conf}")))?;
        let from_toml = crate::shipper::native::parse(Path::new(FILE), &toml).map_err(|e| TestCaseError::fail(format!("{e}\n{toml}")))?;
        let without_source = |c: &ShipperConfig| c.describe().into_iter().filter(|(k, _)| k != "source").collect::<Vec<_>>();
        prop_assert_eq!(without_source(&from_conf), without_source(&from_toml));
    }
}

/// An aggregator option value as each form writes it: (`.cfg` text, TOML literal).
fn cfg_and_toml_value(option: &'static str) -> BoxedStrategy<(String, String)> {
    let quoted = |s: &str| format!("\"{s}\"");
    match option {
        "LogRotationInterval" => (60u64..200_000)
            .prop_map(|n| (n.to_string(), n.to_string()))
            .boxed(),
        "LogExpireInterval" | "StatsLogExpireInterval" => (
            0u64..100,
            prop::sample::select(&["", "day", "hr", "min"][..]),
        )
            .prop_map(move |(n, unit)| (format!("{n}{unit}"), quoted(&format!("{n}{unit}"))))
            .boxed(),
        "Debug" | "PerHostDirs" | "MailAlarms" => any::<bool>()
            .prop_map(|b| (if b { "1" } else { "0" }.to_owned(), b.to_string()))
            .boxed(),
        "MinDiskSpace" | "DiskHardFloor" => (0u8..=100)
            .prop_map(|n| (n.to_string(), n.to_string()))
            .boxed(),
        "MaxConnectionsPerAddress" | "MaxConnectionsPerCertName" => (1usize..=4096)
            .prop_map(|n| (n.to_string(), n.to_string()))
            .boxed(),
        "MaxMessageSize" => (480usize..100_000)
            .prop_map(|n| (n.to_string(), n.to_string()))
            .boxed(),
        "Durability" => prop::sample::select(&["written", "synced"][..])
            .prop_map(move |d| (d.to_owned(), quoted(d)))
            .boxed(),
        "ListenUDP" | "ListenTCP" | "ListenRELP" => (1u16..)
            .prop_map(move |p| (format!("127.0.0.1:{p}"), quoted(&format!("127.0.0.1:{p}"))))
            .boxed(),
        "KeepLogs" => prop::collection::vec("[a-z]{1,6}\\.\\*", 0..3)
            .prop_map(|v| {
                (
                    v.join(" "),
                    format!(
                        "[{}]",
                        v.iter()
                            .map(|s| format!("\"{s}\""))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
            .boxed(),
        _ => "[a-zA-Z0-9@.<>_-]{1,12}"
            .prop_map(move |s| (s.clone(), quoted(&s)))
            .boxed(),
    }
}

fn aggregator_settings() -> impl Strategy<Value = Vec<(&'static str, String, String)>> {
    const PICKABLE: &[&str] = &[
        "LogRotationInterval",
        "LogExpireInterval",
        "StatsLogExpireInterval",
        "KeepLogs",
        "Debug",
        "PerHostDirs",
        "MailAlarms",
        "MinDiskSpace",
        "DiskHardFloor",
        "MaxMessageSize",
        "MaxConnectionsPerAddress",
        "MaxConnectionsPerCertName",
        "Durability",
        "ListenUDP",
        "ListenTCP",
        "ListenRELP",
        "MailTo",
        "MailFrom",
        "MailSubjectPrefix",
        "TagPrefix",
    ];
    prop::sample::subsequence(PICKABLE, 0..PICKABLE.len()).prop_flat_map(|options| {
        options
            .into_iter()
            .map(|o| cfg_and_toml_value(o).prop_map(move |(c, t)| (o, c, t)))
            .collect::<Vec<_>>()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// The same options as zeekctl `Key = value` lines and as TOML tables give the same result,
    /// or the same complaints.
    #[test]
    fn cfg_and_toml_agree(settings in aggregator_settings()) {
        let mut cfg = String::from("LogDir = /l\nSpoolDir = /s\n");
        let mut top = String::from("log_dir = \"/l\"\nspool_dir = \"/s\"\n");
        let mut tables: std::collections::BTreeMap<&str, String> = std::collections::BTreeMap::new();
        for (option, cfg_value, toml_value) in &settings {
            cfg.push_str(&format!("{option} = {cfg_value}\n"));
            let path = crate::aggregator::settings::OPTIONS.iter().find(|(o, _)| o == option).map(|(_, p)| *p).unwrap_or_default();
            match path.split_once('.') {
                Some((table, key)) => tables.entry(table).or_default().push_str(&format!("{key} = {toml_value}\n")),
                None => top.push_str(&format!("{path} = {toml_value}\n")),
            }
        }
        let toml = tables.iter().fold(top, |acc, (table, body)| format!("{acc}[{table}]\n{body}"));
        let from_cfg = crate::aggregator::cluster_cfg::parse(Path::new(FILE), &cfg, IGNORE);
        let from_toml = crate::aggregator::native::parse(Path::new(FILE), &toml, IGNORE);
        match (from_cfg, from_toml) {
            (Ok(a), Ok(b)) => {
                let without_source = |c: &AggregatorConfig| c.describe().into_iter().filter(|(k, _)| k != "source").collect::<Vec<_>>();
                prop_assert_eq!(without_source(&a), without_source(&b));
            }
            (Err(a), Err(b)) => {
                let messages = |e: &ConfigErrors| e.0.iter().map(|e| e.message.clone()).collect::<Vec<_>>();
                prop_assert_eq!(messages(&a), messages(&b), "\n{}\n---\n{}", cfg, toml);
            }
            (a, b) => prop_assert!(false, "forms disagree:\n{cfg}\n{a:?}\n---\n{toml}\n{b:?}"),
        }
    }
}
