//! Real TLS handshakes over 127.0.0.1 with configurations built from PEM files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use estuary_wire::tls::{self, ClientAuth, KeyPair, TlsError};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

struct Ca {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
    pem: PathBuf,
}

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn new_ca(dir: &Path, name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let pem = write(dir, &format!("{name}.pem"), &cert.pem());
    Ca { cert, key, pem }
}

/// PEM files of a leaf certificate and its key.
struct Leaf {
    cert: PathBuf,
    key: PathBuf,
}

impl Leaf {
    fn pair(&self) -> KeyPair<'_> {
        KeyPair {
            cert_file: &self.cert,
            key_file: &self.key,
        }
    }
}

/// A leaf certificate signed by `ca`.
fn leaf(dir: &Path, ca: &Ca, cn: &str, dns: &[&str]) -> Leaf {
    let mut params =
        CertificateParams::new(dns.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
    Leaf {
        cert: write(dir, &format!("{cn}.crt"), &cert.pem()),
        key: write(dir, &format!("{cn}.key"), &key.serialize_pem()),
    }
}

/// Runs one handshake; the server side returns the client's certificate names.
async fn handshake(
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
) -> (
    Result<Vec<String>, std::io::Error>,
    Result<(), std::io::Error>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server_task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut tls = TlsAcceptor::from(server).accept(tcp).await?;
        let names = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(tls::peer_cert_names)
            .unwrap_or_default();
        let mut buf = [0u8; 5];
        tls.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"hello");
        tls.shutdown().await?;
        Ok(names)
    });
    let client_result = async {
        let tcp = TcpStream::connect(addr).await?;
        let name = tls::server_name("localhost").unwrap();
        let mut tls = TlsConnector::from(client).connect(name, tcp).await?;
        tls.write_all(b"hello").await?;
        tls.flush().await?;
        // Under TLS 1.3 a rejected client certificate shows up on the first read.
        let mut buf = [0u8; 1];
        let n = tls.read(&mut buf).await?;
        assert_eq!(n, 0, "server sends close_notify, nothing else");
        Ok(())
    }
    .await;
    (server_task.await.unwrap(), client_result)
}

#[tokio::test]
async fn mutual_tls_accepts_good_client_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca = new_ca(dir.path(), "ca");
    let server_leaf = leaf(dir.path(), &ca, "aggregator", &["localhost"]);
    let client_leaf = leaf(dir.path(), &ca, "sensor1", &["sensor1.example"]);
    let server = tls::server_config(
        server_leaf.pair(),
        ClientAuth::Required { ca_file: &ca.pem },
    )
    .unwrap();
    let client = tls::client_config(&ca.pem, Some(client_leaf.pair())).unwrap();
    let (server_result, client_result) = handshake(server, client).await;
    assert_eq!(
        server_result.unwrap(),
        vec!["sensor1".to_owned(), "sensor1.example".to_owned()]
    );
    client_result.unwrap();
}

#[tokio::test]
async fn client_cert_from_wrong_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = new_ca(dir.path(), "ca");
    let rogue = new_ca(dir.path(), "rogue");
    let server_leaf = leaf(dir.path(), &ca, "aggregator", &["localhost"]);
    let client_leaf = leaf(dir.path(), &rogue, "intruder", &[]);
    let server = tls::server_config(
        server_leaf.pair(),
        ClientAuth::Required { ca_file: &ca.pem },
    )
    .unwrap();
    let client = tls::client_config(&ca.pem, Some(client_leaf.pair())).unwrap();
    let (server_result, client_result) = handshake(server.clone(), client).await;
    let err = server_result.unwrap_err().to_string();
    assert!(err.contains("UnknownIssuer"), "server error: {err}");
    assert!(client_result.is_err());

    // No certificate at all is refused too when one is required.
    let anonymous = tls::client_config(&ca.pem, None).unwrap();
    let (server_result, _) = handshake(server, anonymous).await;
    let err = server_result.unwrap_err().to_string();
    assert!(err.contains("certificate"), "server error: {err}");
}

#[tokio::test]
async fn server_from_wrong_ca_is_refused_by_client() {
    let dir = tempfile::tempdir().unwrap();
    let ca = new_ca(dir.path(), "ca");
    let rogue = new_ca(dir.path(), "rogue");
    let server_leaf = leaf(dir.path(), &rogue, "impostor", &["localhost"]);
    let server = tls::server_config(server_leaf.pair(), ClientAuth::Off).unwrap();
    let client = tls::client_config(&ca.pem, None).unwrap();
    let (_, client_result) = handshake(server, client).await;
    let err = client_result.unwrap_err().to_string();
    assert!(err.contains("UnknownIssuer"), "client error: {err}");
}

#[test]
fn errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let err = tls::client_config(&missing, None).unwrap_err();
    assert!(matches!(err, TlsError::Read { .. }));
    assert!(err.to_string().contains("missing.pem"), "{err}");

    let empty = write(dir.path(), "empty.pem", "not pem\n");
    let err = tls::client_config(&empty, None).unwrap_err();
    assert!(matches!(err, TlsError::NoCertificates { .. }), "{err}");
    assert!(err.to_string().contains("empty.pem"), "{err}");

    let ca = new_ca(dir.path(), "ca");
    let Leaf { cert, .. } = leaf(dir.path(), &ca, "server", &["localhost"]);
    let err = tls::server_config(
        KeyPair {
            cert_file: &cert,
            key_file: &cert,
        },
        ClientAuth::Off,
    )
    .unwrap_err();
    assert!(matches!(err, TlsError::NoPrivateKey { .. }), "{err}");
    assert!(err.to_string().contains("server.crt"), "{err}");
}
