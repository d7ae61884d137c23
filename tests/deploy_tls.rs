//! Peers known by certificate: `estuary tls init` and `estuary tls issue` make the only PKI a
//! site needs. A real `estuary ship` delivers to a real `estuary aggregate` over RELP with mutual
//! TLS; a shipper whose certificate comes from another CA, one whose certificate has expired and
//! one revoked with `estuary tls revoke` are refused with errors that say so, and nothing they
//! send is written.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use common::*;
use estuary_pki::{SiteCa, Validity};

fn tls(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(estuary_bin())
        .args(["tls", "--dir", dir.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "estuary tls {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// (certificate, key) of `node` in a site directory.
fn identity(dir: &Path, node: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{node}.pem")),
        dir.join(format!("{node}.key")),
    )
}

/// A shipper sending `lines` numbered lines of `tag` over RELP/TLS, presenting `id`.
fn ship(
    dir: &Path,
    name: &str,
    tag: &str,
    port: u16,
    ca: &Path,
    id: &(PathBuf, PathBuf),
) -> Daemon {
    let work = dir.join(name);
    std::fs::create_dir_all(&work).unwrap();
    let input = work.join("in.log");
    let text: String = (0..100).map(|i| format!("{tag}\tseq={i}\tx\t\n")).collect();
    std::fs::write(&input, text).unwrap();
    let config = work.join("ship.toml");
    std::fs::write(
        &config,
        format!(
            r#"work_dir = "{work}"
[[input]]
path = "{input}"
tag = "{tag}:"
facility = "local7"
state_file = "state"
[[destination]]
host = "127.0.0.1"
port = {port}
transport = "relp-tls"
ca_file = "{ca}"
cert_file = "{cert}"
key_file = "{key}"
retry_interval = "200ms"
retry_max = "1s"
"#,
            work = work.display(),
            input = input.display(),
            ca = ca.display(),
            cert = id.0.display(),
            key = id.1.display(),
        ),
    )
    .unwrap();
    Daemon::estuary(name, &["ship", "--config", config.to_str().unwrap()], dir)
}

#[test]
fn mutual_tls_with_site_certificates_refuses_foreign_expired_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    let printed = tls(&site, &["init", "--name", "estuary test site"]);
    assert_eq!(printed.trim(), site.join("ca.pem").to_str().unwrap());
    tls(&site, &["issue", "aggregator", "--san", "127.0.0.1"]);
    tls(&site, &["issue", "sensor1"]);
    tls(&site, &["issue", "sensor3"]);
    let crl = tls(&site, &["revoke", "sensor3"]);
    assert_eq!(crl.trim(), site.join("crl.pem").to_str().unwrap());
    let other = dir.path().join("other");
    tls(&other, &["init", "--name", "someone else's CA"]);
    tls(&other, &["issue", "sensor1"]);
    // Signed by the site CA, but valid only until yesterday.
    let day = Duration::from_secs(86_400);
    let now = SystemTime::now();
    let expired = SiteCa::load(&site, now)
        .unwrap()
        .issue(
            &"sensor2".parse().unwrap(),
            &[],
            Validity {
                not_before: now - 30 * day,
                not_after: now - day,
            },
        )
        .unwrap();

    let port = free_tcp_port();
    let logs = dir.path().join("logs");
    let (cert, key) = identity(&site, "aggregator");
    let config = dir.path().join("aggregator.toml");
    std::fs::write(
        &config,
        format!(
            r#"log_dir = "{logs}"
spool_dir = "{spool}"
[listen]
relp_tls = "127.0.0.1:{port}"
[mail]
sendmail = ""
[tls]
cert_file = "{cert}"
key_file = "{key}"
ca_file = "{ca}"
crl_file = "{crl}"
require_client_cert = true
[[peer]]
cert_name = "sensor1"
tag_regex = "^bro_"
[[peer]]
cert_name = "sensor2"
tag_regex = "^bro_"
"#,
            logs = logs.display(),
            spool = dir.path().join("spool").display(),
            cert = cert.display(),
            key = key.display(),
            ca = site.join("ca.pem").display(),
            crl = site.join("crl.pem").display(),
        ),
    )
    .unwrap();
    let agg = Daemon::estuary(
        "aggregator",
        &["aggregate", "--config", config.to_str().unwrap()],
        dir.path(),
    );
    // Not a TCP probe: the aggregator logs one refusal per peer address and interval, and the
    // expired certificate's must be that one.
    wait_for(Duration::from_secs(20), "the aggregator listening", || {
        agg.output().contains("aggregator listening").then_some(())
    });

    let ca = site.join("ca.pem");
    let stale = ship(
        dir.path(),
        "expired",
        "bro_http",
        port,
        &ca,
        &(expired.cert_file, expired.key_file),
    );
    wait_for(
        Duration::from_secs(20),
        "the expired certificate refused",
        || {
            let (a, s) = (agg.output(), stale.output());
            (a.contains("certificate expired") && s.contains("CertificateExpired")).then_some(())
        },
    );
    let foreign = ship(
        dir.path(),
        "foreign",
        "bro_dns",
        port,
        &ca,
        &identity(&other, "sensor1"),
    );
    wait_for(
        Duration::from_secs(20),
        "the foreign CA's certificate refused",
        || foreign.output().contains("UnknownCA").then_some(()),
    );
    let revoked = ship(
        dir.path(),
        "revoked",
        "bro_ssl",
        port,
        &ca,
        &identity(&site, "sensor3"),
    );
    wait_for(
        Duration::from_secs(20),
        "the revoked certificate refused",
        || {
            revoked
                .output()
                .contains("CertificateRevoked")
                .then_some(())
        },
    );
    let _good = ship(
        dir.path(),
        "good",
        "bro_conn",
        port,
        &ca,
        &identity(&site, "sensor1"),
    );

    let conn = logs.join("current/conn.log");
    let got = wait_for(Duration::from_secs(30), "100 lines from sensor1", || {
        let text = std::fs::read_to_string(&conn).ok()?;
        (text.lines().count() >= 100).then_some(text)
    });
    let tally = tally(&count_sequence_numbers(&got), 0..100);
    assert!(
        tally.missing.is_empty() && tally.duplicated.is_empty(),
        "{tally:?}"
    );
    let status = dir.path().join("spool/status.json");
    wait_for(Duration::from_secs(10), "refusals counted", || {
        let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&status).ok()?).ok()?;
        (s["peers"]["127.0.0.1"]["refused"].as_u64()? >= 2).then_some(())
    });
    assert!(!logs.join("current/dns.log").exists(), "{}", agg.output());
    assert!(!logs.join("current/http.log").exists(), "{}", agg.output());
    assert!(!logs.join("current/ssl.log").exists(), "{}", agg.output());
}
