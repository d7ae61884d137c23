//! The shipper over TLS (RFC 5425) into real rsyslog (`imtcp` with the GnuTLS driver) and RELP over
//! TLS into `imrelp`, with mutual authentication, and a server certificate from the wrong CA: refused with a clear error, retried,
//! nothing sent in the clear.

mod common;
mod shipper_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use common::{free_tcp_port, start_rsyslog, wait_for_tcp_listen};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa};
use shipper_support::{append, received_seqs, wait_for_file_lines, Shipper};

struct Pki {
    ca: PathBuf,
    server: (PathBuf, PathBuf),
    client: (PathBuf, PathBuf),
}

fn pki(dir: &Path, name: &str) -> Pki {
    let write = |file: &str, text: &str| {
        let path = dir.join(format!("{name}-{file}"));
        fs::write(&path, text).unwrap();
        path
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{name} CA"));
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf = |cn: &str, dns: &str| {
        let mut params = CertificateParams::new(vec![dns.to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
        (
            write(&format!("{cn}.crt"), &cert.pem()),
            write(&format!("{cn}.key"), &key.serialize_pem()),
        )
    };
    Pki {
        ca: write("ca.pem", &ca.pem()),
        server: leaf("server", "localhost"),
        client: leaf("sensor1", "sensor1.example"),
    }
}

/// rsyslog `imtcp` over GnuTLS, requiring a client certificate from `pki`'s CA.
fn tls_receiver(dir: &Path, pki: &Pki, port: u16, out: &Path) -> common::Daemon {
    let config = format!(
        "global(parser.escapeControlCharacterTab=\"off\" defaultNetstreamDriver=\"gtls\" \
         defaultNetstreamDriverCAFile=\"{}\" defaultNetstreamDriverCertFile=\"{}\" defaultNetstreamDriverKeyFile=\"{}\")\n\
         module(load=\"imtcp\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=\"x509/certvalid\")\n\
         template(name=\"plain\" type=\"string\" string=\"%syslogtag% %msg%\\n\")\n\
         ruleset(name=\"out\") {{ action(type=\"omfile\" file=\"{}\" template=\"plain\") }}\n\
         input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"out\")\n",
        pki.ca.display(),
        pki.server.0.display(),
        pki.server.1.display(),
        out.display()
    );
    start_rsyslog("rsyslog-tls", dir, &config)
}

fn tls_destination(port: u16, ca: &Path, client: &(PathBuf, PathBuf)) -> String {
    format!(
        "[[destination]]\nname = \"tls\"\nhost = \"127.0.0.1\"\nport = {port}\ntransport = \"tls\"\n\
         server_name = \"localhost\"\nca_file = \"{}\"\ncert_file = \"{}\"\nkey_file = \"{}\"\n\
         retry_interval = \"100ms\"\nretry_max = \"300ms\"\n",
        ca.display(),
        client.0.display(),
        client.1.display()
    )
}

#[test]
fn tls_with_mutual_auth_to_rsyslog_gtls_delivers_every_line() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path(), "good");
    let port = free_tcp_port();
    let out = dir.path().join("received.log");
    let _rsyslog = tls_receiver(dir.path(), &pki, port, &out);
    wait_for_tcp_listen(port, Duration::from_secs(20));
    let mut s = Shipper::toml(
        &[("conn.log", "bro_conn:")],
        "",
        &[tls_destination(port, &pki.ca, &pki.client)],
    );
    append(&s.log("conn.log"), 0..2000);
    s.start();
    let text = wait_for_file_lines(&out, 2000);
    assert_eq!(
        received_seqs(&text),
        (0..2000).collect::<Vec<_>>(),
        "{}",
        s.output()
    );
    let last = text
        .lines()
        .find(|l| l.contains("seq=1999\t"))
        .unwrap_or_default();
    assert!(
        last.starts_with("bro_conn")
            && last.ends_with(" 1999\tseq=1999\tC00000000000001999\t10.0.0.1\t443\ttcp"),
        "tabs or tag altered: {last:?}"
    );
    s.stop();
}

#[test]
fn tls_server_certificate_from_the_wrong_ca_is_refused_with_a_clear_error_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let good = pki(dir.path(), "good");
    let other = pki(dir.path(), "other");
    let port = free_tcp_port();
    let out = dir.path().join("received.log");
    let _rsyslog = tls_receiver(dir.path(), &good, port, &out);
    wait_for_tcp_listen(port, Duration::from_secs(20));
    // The shipper trusts only the other CA.
    let mut s = Shipper::toml(
        &[("conn.log", "bro_conn:")],
        "",
        &[tls_destination(port, &other.ca, &other.client)],
    );
    append(&s.log("conn.log"), 0..10);
    s.start();
    let mut output = String::new();
    for _ in 0..100 {
        output = s.output();
        if output.matches("TLS handshake with 127.0.0.1").count() >= 3 {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    assert!(
        output.matches("TLS handshake with 127.0.0.1").count() >= 3
            && output.contains("UnknownIssuer"),
        "expected repeated certificate errors:\n{output}"
    );
    assert!(
        fs::read_to_string(&out).unwrap_or_default().is_empty(),
        "a line got through"
    );
    s.stop();
}

#[test]
fn relp_over_tls_with_mutual_auth_to_rsyslog_imrelp_delivers_every_line() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path(), "good");
    let port = free_tcp_port();
    let out = dir.path().join("received.log");
    let config = format!(
        "global(parser.escapeControlCharacterTab=\"off\")\n\
         module(load=\"imrelp\")\n\
         template(name=\"plain\" type=\"string\" string=\"%syslogtag% %msg%\\n\")\n\
         ruleset(name=\"out\") {{ action(type=\"omfile\" file=\"{}\" template=\"plain\") }}\n\
         input(type=\"imrelp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"out\" tls=\"on\" \
         tls.caCert=\"{}\" tls.myCert=\"{}\" tls.myPrivKey=\"{}\" tls.authMode=\"certvalid\")\n",
        out.display(),
        pki.ca.display(),
        pki.server.0.display(),
        pki.server.1.display()
    );
    let _rsyslog = start_rsyslog("rsyslog-relp-tls", dir.path(), &config);
    wait_for_tcp_listen(port, Duration::from_secs(20));
    let destination = tls_destination(port, &pki.ca, &pki.client)
        .replace("transport = \"tls\"", "transport = \"relp-tls\"");
    let mut s = Shipper::toml(&[("conn.log", "bro_conn:")], "", &[destination]);
    append(&s.log("conn.log"), 0..2000);
    s.start();
    let text = wait_for_file_lines(&out, 2000);
    assert_eq!(
        received_seqs(&text),
        (0..2000).collect::<Vec<_>>(),
        "{}",
        s.output()
    );
    s.stop();
}
