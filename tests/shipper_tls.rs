//! The shipper over TLS (RFC 5425) into real rsyslog (`imtcp` with the GnuTLS driver) and RELP over
//! TLS into `imrelp`, with mutual authentication, and a server certificate from the wrong CA: refused with a clear error, retried,
//! nothing sent in the clear.

mod common;
mod shipper_support;

use std::fs;
use std::thread;
use std::time::Duration;

use common::{free_tcp_port, test_pki_with_ca, TestPki};
use shipper_support::{append, received_seqs, wait_for_file_lines, RsyslogSink, Shipper};

/// An rsyslog receiver's sink with the `good` PKI in its dir.
struct Peer {
    sink: RsyslogSink,
    pki: TestPki,
}

impl Peer {
    fn new() -> Peer {
        let sink = RsyslogSink::new(free_tcp_port());
        let pki = test_pki_with_ca(&sink.dir.path().join("good"), "good CA");
        Peer { sink, pki }
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
        let config = self.sink.config(&global, module, "imtcp", "");
        self.sink.start_tcp("rsyslog-tls", &config)
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
        let config = self.sink.config("", "load=\"imrelp\"", "imrelp", &input);
        self.sink.start_tcp("rsyslog-relp-tls", &config)
    }

    /// Waits for `n` lines and checks they are `seq=0` to `n - 1` in order; returns them.
    fn received_in_order(&self, n: u64, shipper: &Shipper) -> String {
        let text = wait_for_file_lines(&self.sink.out, n as usize);
        assert_eq!(
            received_seqs(&text),
            (0..n).collect::<Vec<_>>(),
            "{}",
            shipper.output()
        );
        text
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
fn tls_destination(port: u16, pki: &TestPki, transport: &str) -> String {
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
    let mut s = ship_conn_log(tls_destination(peer.sink.port, &peer.pki, "tls"), 0..2000);
    let text = peer.received_in_order(2000, &s);
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
    let other = test_pki_with_ca(&peer.sink.dir.path().join("other"), "other CA");
    let _rsyslog = peer.start_tls_receiver();
    // The shipper trusts only the other CA.
    let mut s = ship_conn_log(tls_destination(peer.sink.port, &other, "tls"), 0..10);
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
        fs::read_to_string(&peer.sink.out)
            .unwrap_or_default()
            .is_empty(),
        "a line got through"
    );
    s.stop();
}

#[test]
fn relp_over_tls_with_mutual_auth_to_rsyslog_imrelp_delivers_every_line() {
    let peer = Peer::new();
    let _rsyslog = peer.start_relp_tls_receiver();
    let mut s = ship_conn_log(
        tls_destination(peer.sink.port, &peer.pki, "relp-tls"),
        0..2000,
    );
    peer.received_in_order(2000, &s);
    s.stop();
}

/// `estuary check` opens the TLS files a shipper configuration names: a missing CA file, a CA file
/// holding a private key, and a key file holding no key are each reported with the configuration's
/// file, line and key; usable files pass.
#[test]
fn check_reports_unusable_tls_files_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let pki = test_pki_with_ca(&dir.path().join("pki"), "estuary test CA");
    let ca_with_key = dir.path().join("ca-with-key.pem");
    let pem = [fs::read(&pki.ca).unwrap(), fs::read(&pki.client.1).unwrap()].concat();
    fs::write(&ca_with_key, pem).unwrap();
    let conf = dir.path().join("ship.toml");
    let check = |ca: &std::path::Path, key: &std::path::Path| {
        let work = dir.path().display();
        fs::write(
            &conf,
            format!(
                "work_dir = \"{work}\"\n\
                 [[input]]\npath = \"{work}/conn.log\"\ntag = \"bro_conn:\"\n\
                 [[destination]]\nname = \"tls\"\nhost = \"127.0.0.1\"\nport = 6514\n\
                 transport = \"tls\"\nserver_name = \"localhost\"\n\
                 ca_file = \"{}\"\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
                ca.display(),
                pki.client.0.display(),
                key.display()
            ),
        )
        .unwrap();
        let out = std::process::Command::new(common::estuary_bin())
            .args(["check", "--config"])
            .arg(&conf)
            .output()
            .expect("run estuary check");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let at = |line: usize, key: &str| format!("{}:{line}: {key}: ", conf.display());

    let (ok, out) = check(&pki.ca, &pki.client.1);
    assert!(ok, "{out}");
    let missing = dir.path().join("missing-ca.pem");
    let (ok, out) = check(&missing, &pki.client.1);
    assert!(!ok, "{out}");
    let expected = format!("{}cannot read {}", at(11, "ca_file"), missing.display());
    assert!(out.contains(&expected), "{out}");
    let (ok, out) = check(&ca_with_key, &pki.client.1);
    assert!(!ok, "{out}");
    assert!(out.contains(&at(11, "ca_file")), "{out}");
    assert!(out.contains("holds a private key"), "{out}");
    let (ok, out) = check(&pki.ca, &pki.client.0);
    assert!(!ok, "{out}");
    let expected = format!(
        "{}{} contains no PEM private key",
        at(13, "key_file"),
        pki.client.0.display()
    );
    assert!(out.contains(&expected), "{out}");
}
