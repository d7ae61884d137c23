//! The checked-in fixtures parse: the seed's rsyslog snippet verbatim and the benchmark configurations.

use std::fs;
use std::path::{Path, PathBuf};

use estuary_config::aggregator::{self, MailTransport};
use estuary_config::shipper::{self, Transport};
use estuary_wire::{Facility, Format, Framing, Severity};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Copies a fixture into `dir` with the harness placeholders filled in.
fn instantiate(dir: &Path, name: &str) -> PathBuf {
    let text = fs::read_to_string(fixture(name)).expect("fixture is readable");
    let rundir = dir.display().to_string();
    let text = text
        .replace("{rundir}", &rundir)
        .replace("{input}", &format!("{rundir}/input.log"))
        .replace("{logdir}", &format!("{rundir}/logs"))
        .replace("{port}", "10514");
    let path = dir.join(name);
    fs::write(&path, text).expect("temp dir is writable");
    path
}

#[test]
fn seed_rsyslog_snippet_parses_verbatim() {
    let cfg = shipper::load(&fixture("seed-60-bro.conf")).unwrap_or_else(|e| panic!("{e}"));
    let tags: Vec<&str> = cfg.inputs.iter().map(|i| i.tag.as_str()).collect();
    assert_eq!(
        tags,
        [
            "bro_ssl:",
            "bro_smtp:",
            "bro_smtp_entities:",
            "bro_notice:",
            "bro_ssh:",
            "bro_ftp:"
        ]
    );
    for input in &cfg.inputs {
        assert_eq!(
            (input.facility, input.severity),
            (Facility::Local7, Severity::Informational)
        );
        assert!(input.path.starts_with("/usr/local/bro/logs/current"));
    }
    assert_eq!(
        cfg.inputs[3].state_file,
        Path::new("/var/spool/estuary/stat-bro_notice")
    );
    let dest = &cfg.destinations[..];
    assert_eq!(dest.len(), 1);
    assert_eq!(
        (dest[0].host.as_str(), dest[0].port, &dest[0].transport),
        ("central_syslog_server", 514, &Transport::Udp)
    );
}

#[test]
fn seed_loopback_copy_parses() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = shipper::load(&instantiate(dir.path(), "seed-60-bro-loopback.conf"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.work_dir, dir.path());
    assert_eq!(cfg.inputs[0].path, dir.path().join("logs/ssl.log"));
    assert_eq!(cfg.inputs[0].state_file, dir.path().join("stat-bro_ssl"));
    assert_eq!(
        (cfg.destinations[0].host.as_str(), cfg.destinations[0].port),
        ("127.0.0.1", 10514)
    );
}

#[test]
fn bench_shipper_configs_parse() {
    let dir = tempfile::tempdir().unwrap();
    let tcp = shipper::load(&instantiate(dir.path(), "estuary-ship-tcp.conf"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        tcp.destinations[0].transport,
        Transport::Tcp {
            framing: Framing::NewLine,
            tls: None
        }
    );
    assert_eq!(tcp.destinations[0].format, Format::Rfc3164);
    let relp = shipper::load(&instantiate(dir.path(), "estuary-ship-relp.conf"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        relp.destinations[0].transport,
        Transport::Relp {
            window: 128,
            tls: None
        }
    );
    assert_eq!(relp.destinations[0].format, Format::Rfc5424);
    assert_eq!(relp.inputs[0].path, dir.path().join("input.log"));
    assert_eq!(relp.destinations[0].facility, Some(Facility::Local7));
}

#[test]
fn bench_aggregator_configs_parse() {
    let dir = tempfile::tempdir().unwrap();
    for (name, relp) in [
        ("estuary-aggregate-tcp.cfg", false),
        ("estuary-aggregate-relp.cfg", true),
    ] {
        let cfg =
            aggregator::load(&instantiate(dir.path(), name)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.log_dir, dir.path().join("logs"));
        assert_eq!(cfg.spool_dir, dir.path().join("spool"));
        assert_eq!(cfg.mail.transport, MailTransport::Disabled);
        let addr = Some("127.0.0.1:10514".parse().unwrap());
        assert_eq!(
            (cfg.listen.relp, cfg.listen.tcp),
            if relp { (addr, None) } else { (None, addr) }
        );
    }
}

#[test]
fn load_any_tells_kinds_apart() {
    use estuary_config::{load_any, AnyConfig};
    let dir = tempfile::tempdir().unwrap();
    let ship = dir.path().join("ship.toml");
    fs::write(&ship, "[[input]]\npath = \"/a\"\ntag = \"a:\"\n[[destination]]\nhost = \"h\"\ntransport = \"udp\"\n").unwrap();
    assert!(matches!(load_any(&ship), Ok(AnyConfig::Shipper(_))));
    let agg = dir.path().join("agg.toml");
    fs::write(
        &agg,
        "log_dir = \"/l\"\nspool_dir = \"/s\"\n[listen]\ntcp = \"127.0.0.1:514\"\n",
    )
    .unwrap();
    assert!(matches!(load_any(&agg), Ok(AnyConfig::Aggregator(_))));
    assert!(matches!(
        load_any(&fixture("seed-60-bro.conf")),
        Ok(AnyConfig::Shipper(_))
    ));
    let sensor = dir.path().join("sensor.toml");
    fs::write(&sensor, "[site]\nlocal_nets = [\"10.0.0.0/8\"]\n").unwrap();
    let Ok(loaded @ AnyConfig::Sensor(_)) = load_any(&sensor) else {
        panic!("not a sensor config")
    };
    let options = loaded.describe();
    assert!(
        options.contains(&("site.local_nets".to_owned(), "10.0.0.0/8".to_owned())),
        "{options:?}"
    );
    let other = dir.path().join("x.yaml");
    fs::write(&other, "a: 1\n").unwrap();
    let err = load_any(&other).unwrap_err();
    assert_eq!(err.0[0].file, other);
    assert!(err.0[0].message.contains("unknown configuration type"));
    let missing = load_any(&dir.path().join("missing.cfg")).unwrap_err();
    assert!(
        missing.0[0].message.starts_with("cannot read"),
        "{}",
        missing
    );
}

#[test]
fn byte_order_mark_and_crlf_are_accepted_and_bad_utf8_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bom.conf");
    fs::write(
        &path,
        b"\xef\xbb\xbf$ModLoad imfile\r\n$InputFileName /a.log\r\n$InputFileTag a:\r\n*.* @h\r\n",
    )
    .unwrap();
    let cfg = shipper::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.inputs[0].tag, "a:");
    let bad = dir.path().join("bad.cfg");
    fs::write(&bad, b"LogDir = /l\nMailTo = \xff\n").unwrap();
    let err = aggregator::load(&bad).unwrap_err();
    assert_eq!(
        (err.0[0].line, err.0[0].message.as_str()),
        (Some(2), "not valid UTF-8")
    );
}
