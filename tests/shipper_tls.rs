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

/// A temp dir holding the `good` PKI, a free port for rsyslog, and the file it writes to.
struct Peer {
    dir: tempfile::TempDir,
    pki: Pki,
    port: u16,
    out: PathBuf,
}

impl Peer {
    fn new() -> Peer {
        let dir = tempfile::tempdir().unwrap();
        let pki = pki(dir.path(), "good");
        let out = dir.path().join("received.log");
        Peer {
            dir,
            pki,
            port: free_tcp_port(),
            out,
        }
    }

    /// Starts rsyslog writing `%syslogtag% %msg%` lines to `out` from an `input_type` input on
    /// `port`; waits until it listens.
    fn start_rsyslog(
        &self,
        name: &str,
        global_extra: &str,
        module: &str,
        input_type: &str,
        input_extra: &str,
    ) -> common::Daemon {
        let config = format!(
            "global(parser.escapeControlCharacterTab=\"off\"{global_extra})\n\
             module({module})\n\
             template(name=\"plain\" type=\"string\" string=\"%syslogtag% %msg%\\n\")\n\
             ruleset(name=\"out\") {{ action(type=\"omfile\" file=\"{}\" template=\"plain\") }}\n\
             input(type=\"{input_type}\" address=\"127.0.0.1\" port=\"{}\" ruleset=\"out\"{input_extra})\n",
            self.out.display(),
            self.port
        );
        let rsyslog = start_rsyslog(name, self.dir.path(), &config);
        wait_for_tcp_listen(self.port, Duration::from_secs(20));
        rsyslog
    }

    /// rsyslog `imtcp` over GnuTLS, requiring a client certificate from the `good` CA.
    fn start_tls_receiver(&self) -> common::Daemon {
        let global = format!(
            " defaultNetstreamDriver=\"gtls\" defaultNetstreamDriverCAFile=\"{}\" \
             defaultNetstreamDriverCertFile=\"{}\" defaultNetstreamDriverKeyFile=\"{}\"",
            self.pki.ca.display(),
            self.pki.server.0.display(),
            self.pki.server.1.display()
        );
        let module = "load=\"imtcp\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" \
                      streamDriver.authMode=\"x509/certvalid\"";
        self.start_rsyslog("rsyslog-tls", &global, module, "imtcp", "")
    }

    /// rsyslog `imrelp` with TLS, requiring a client certificate from the `good` CA.
    fn start_relp_tls_receiver(&self) -> common::Daemon {
        let input = format!(
            " tls=\"on\" tls.caCert=\"{}\" tls.myCert=\"{}\" tls.myPrivKey=\"{}\" \
             tls.authMode=\"certvalid\"",
            self.pki.ca.display(),
            self.pki.server.0.display(),
            self.pki.server.1.display()
        );
        self.start_rsyslog("rsyslog-relp-tls", "", "load=\"imrelp\"", "imrelp", &input)
    }
}

/// A started shipper tailing `conn.log` (tag `bro_conn:`), which already holds `seqs`.
fn ship_conn_log(destination: String, seqs: std::ops::Range<u64>) -> Shipper {
    let mut s = Shipper::toml(&[("conn.log", "bro_conn:")], "", &[destination]);
    append(&s.log("conn.log"), seqs);
    s.start();
    s
}

/// A `[[destination]]` on `port` over `transport` (`tls` or `relp-tls`) with `pki`'s CA and client.
fn tls_destination(port: u16, pki: &Pki, transport: &str) -> String {
    format!(
        "[[destination]]\nname = \"tls\"\nhost = \"127.0.0.1\"\nport = {port}\ntransport = \"{transport}\"\n\
         server_name = \"localhost\"\nca_file = \"{}\"\ncert_file = \"{}\"\nkey_file = \"{}\"\n\
         retry_interval = \"100ms\"\nretry_max = \"300ms\"\n",
        pki.ca.display(),
        pki.client.0.display(),
        pki.client.1.display()
    )
}

#[test]
fn tls_with_mutual_auth_to_rsyslog_gtls_delivers_every_line() {
    let peer = Peer::new();
    let _rsyslog = peer.start_tls_receiver();
    let mut s = ship_conn_log(tls_destination(peer.port, &peer.pki, "tls"), 0..2000);
    let text = wait_for_file_lines(&peer.out, 2000);
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
    let peer = Peer::new();
    let other = pki(peer.dir.path(), "other");
    let _rsyslog = peer.start_tls_receiver();
    // The shipper trusts only the other CA.
    let mut s = ship_conn_log(tls_destination(peer.port, &other, "tls"), 0..10);
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
        fs::read_to_string(&peer.out).unwrap_or_default().is_empty(),
        "a line got through"
    );
    s.stop();
}

#[test]
fn relp_over_tls_with_mutual_auth_to_rsyslog_imrelp_delivers_every_line() {
    let peer = Peer::new();
    let _rsyslog = peer.start_relp_tls_receiver();
    let mut s = ship_conn_log(tls_destination(peer.port, &peer.pki, "relp-tls"), 0..2000);
    let text = wait_for_file_lines(&peer.out, 2000);
    assert_eq!(
        received_seqs(&text),
        (0..2000).collect::<Vec<_>>(),
        "{}",
        s.output()
    );
    s.stop();
}
