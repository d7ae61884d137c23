//! estuary-wire's rustls configurations against rsyslog's GnuTLS driver (RFC 5425): rsyslog
//! `omfwd` with a client certificate to our server, and our client to rsyslog `imtcp`; and RELP
//! over TLS both ways (librelp starts TLS right after connecting).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::BytesMut;
use estuary_wire::encode::write_frame;
use estuary_wire::framing::SyslogDecoder;
use estuary_wire::relp::{Action, ClientSession, Event, Frame, RelpCodec, ServerSession};
use estuary_wire::tls::{self, ClientAuth, KeyPair};
use estuary_wire::{parse, Framing};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_util::codec::{Decoder, Encoder};

const TIMEOUT: Duration = Duration::from_secs(20);
const COUNT: usize = 50;

struct Pki {
    ca: PathBuf,
    server: (PathBuf, PathBuf),
    client: (PathBuf, PathBuf),
}

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write PEM");
    path
}

/// A CA, a server certificate for `localhost` and a client certificate for `sensor1`.
fn pki(dir: &Path) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "estuary test CA");
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let ca = ca_params.self_signed(&ca_key).expect("ca cert");
    let leaf = |cn: &str, dns: &str| {
        let mut params = CertificateParams::new(vec![dns.to_owned()]).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = rcgen::KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &ca, &ca_key).expect("leaf cert");
        (
            write(dir, &format!("{cn}.crt"), &cert.pem()),
            write(dir, &format!("{cn}.key"), &key.serialize_pem()),
        )
    };
    Pki {
        ca: write(dir, "ca.pem", &ca.pem()),
        server: leaf("aggregator", "localhost"),
        client: leaf("sensor1", "sensor1.example"),
    }
}

fn tls_globals(pki: &Pki, identity: &(PathBuf, PathBuf)) -> String {
    format!(
        "global(defaultNetstreamDriver=\"gtls\" defaultNetstreamDriverCAFile=\"{}\" \
         defaultNetstreamDriverCertFile=\"{}\" defaultNetstreamDriverKeyFile=\"{}\")\n",
        pki.ca.display(),
        identity.0.display(),
        identity.1.display()
    )
}

fn line(i: usize) -> String {
    format!("1763812559.{i:06}\tC{i:017}\t10.0.0.1\t443\t-\t\t")
}

#[tokio::test]
async fn rsyslog_gtls_client_to_our_rustls_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki(dir.path());
    let log = dir.path().join("ssl.log");
    std::fs::write(&log, (0..COUNT).map(|i| line(i) + "\n").collect::<String>()).expect("log");

    let server = tls::server_config(
        KeyPair {
            cert_file: &pki.server.0,
            key_file: &pki.server.1,
        },
        ClientAuth::Required { ca_file: &pki.ca },
    )
    .expect("server config");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let config = format!(
        "{}global(localHostname=\"sensor1\" parser.escapeControlCharacterTab=\"off\")\n\
         module(load=\"imfile\")\n\
         input(type=\"imfile\" file=\"{}\" tag=\"bro_ssl:\" facility=\"local7\" \
         severity=\"info\" ruleset=\"fwd\")\n\
         ruleset(name=\"fwd\") {{ action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{port}\" \
         protocol=\"tcp\" tcp_framing=\"octet-counted\" streamDriver=\"gtls\" \
         streamDriverMode=\"1\" streamDriverAuthMode=\"x509/name\" \
         streamDriverPermittedPeers=\"localhost\" \
         template=\"RSYSLOG_SyslogProtocol23Format\") }}\n",
        tls_globals(&pki, &pki.client),
        log.display()
    );
    let rsyslog = common::start_rsyslog("gtls-client", dir.path(), &config);

    let (tcp, _) = tokio::time::timeout(TIMEOUT, listener.accept())
        .await
        .unwrap_or_else(|_| panic!("rsyslog did not connect: {}", rsyslog.output()))
        .expect("accept");
    let mut stream = TlsAcceptor::from(server)
        .accept(tcp)
        .await
        .expect("TLS handshake");
    let peer = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .cloned();
    let names = tls::peer_cert_names(&peer.expect("client certificate"));
    assert_eq!(
        names,
        vec!["sensor1".to_owned(), "sensor1.example".to_owned()]
    );

    let (mut decoder, mut buf, mut bodies) = (SyslogDecoder::default(), BytesMut::new(), vec![]);
    while bodies.len() < COUNT {
        while let Some(item) = decoder.decode(&mut buf).expect("framing") {
            let message = item.expect("not oversized");
            let parsed = parse(&message).expect("parse");
            assert_eq!(parsed.app_name, Some("bro_ssl"));
            bodies.push(String::from_utf8(parsed.body.to_vec()).expect("utf-8"));
        }
        if bodies.len() < COUNT {
            let n = tokio::time::timeout(TIMEOUT, stream.read_buf(&mut buf))
                .await
                .expect("data in time")
                .expect("read");
            assert!(n > 0, "rsyslog closed after {} messages", bodies.len());
        }
    }
    assert_eq!(bodies, (0..COUNT).map(line).collect::<Vec<_>>());
}

#[tokio::test]
async fn our_rustls_client_to_rsyslog_gtls_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki(dir.path());
    let out = dir.path().join("out.log");
    let port = common::free_tcp_port();
    let config = format!(
        "{}global(parser.escapeControlCharacterTab=\"off\")\n\
         module(load=\"imtcp\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" \
         streamDriver.authMode=\"x509/certvalid\")\n\
         template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
         input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"out\")\n\
         ruleset(name=\"out\") {{ action(type=\"omfile\" file=\"{}\" template=\"raw\") }}\n",
        tls_globals(&pki, &pki.server),
        out.display()
    );
    let rsyslog = common::start_rsyslog("gtls-server", dir.path(), &config);
    common::wait_for_tcp_listen(port, TIMEOUT);

    let client = tls::client_config(
        &pki.ca,
        Some(KeyPair {
            cert_file: &pki.client.0,
            key_file: &pki.client.1,
        }),
    )
    .expect("client config");
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let name = tls::server_name("localhost").expect("server name");
    let mut stream = TlsConnector::from(client)
        .connect(name, tcp)
        .await
        .unwrap_or_else(|e| panic!("handshake with rsyslog: {e}: {}", rsyslog.output()));
    let mut wire = Vec::new();
    for i in 0..COUNT {
        let message = format!("<190>1 - sensor1 bro_ssl - - - {}", line(i));
        write_frame(&mut wire, Framing::OctetCounting, message.as_bytes());
    }
    stream.write_all(&wire).await.expect("write");
    // RFC 5425 section 4.4: close_notify before closing.
    stream.shutdown().await.expect("close_notify");

    let lines = common::wait_for(TIMEOUT, "imtcp to write every message", || {
        let text = std::fs::read_to_string(&out).ok()?;
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        (lines.len() >= COUNT).then_some(lines)
    });
    let expected: Vec<String> = (0..COUNT)
        .map(|i| format!("<190>1 - sensor1 bro_ssl - - - {}", line(i)))
        .collect();
    assert_eq!(lines, expected);
}

/// Reads the next RELP frame, failing the test on EOF or after `TIMEOUT`.
async fn next_frame<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut BytesMut) -> Frame {
    let read = async {
        loop {
            if let Some(frame) = RelpCodec::default().decode(buf).expect("valid RELP") {
                return frame;
            }
            let n = stream.read_buf(buf).await.expect("read RELP");
            assert!(n > 0, "peer closed the RELP connection");
        }
    };
    tokio::time::timeout(TIMEOUT, read)
        .await
        .expect("RELP frame in time")
}

async fn send_frame<S: AsyncWrite + Unpin>(stream: &mut S, frame: &Frame) {
    let mut out = BytesMut::new();
    RelpCodec::default()
        .encode(frame, &mut out)
        .expect("encode");
    stream.write_all(&out).await.expect("write RELP");
}

fn relp_tls_params(pki: &Pki, identity: &(PathBuf, PathBuf), peer: &str) -> String {
    format!(
        "tls=\"on\" tls.caCert=\"{}\" tls.myCert=\"{}\" tls.myPrivKey=\"{}\" \
         tls.authMode=\"name\" tls.permittedPeer=[\"{peer}\"]",
        pki.ca.display(),
        identity.0.display(),
        identity.1.display()
    )
}

#[tokio::test]
async fn our_relp_client_over_tls_to_rsyslog_imrelp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki(dir.path());
    let out = dir.path().join("out.log");
    let port = common::free_tcp_port();
    let config = format!(
        "global(parser.escapeControlCharacterTab=\"off\")\n\
         module(load=\"imrelp\")\n\
         template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
         input(type=\"imrelp\" address=\"127.0.0.1\" port=\"{port}\" {} ruleset=\"out\")\n\
         ruleset(name=\"out\") {{ action(type=\"omfile\" file=\"{}\" template=\"raw\") }}\n",
        relp_tls_params(&pki, &pki.server, "sensor1.example"),
        out.display()
    );
    let rsyslog = common::start_rsyslog("imrelp-tls", dir.path(), &config);
    common::wait_for_tcp_listen(port, TIMEOUT);

    let client = tls::client_config(
        &pki.ca,
        Some(KeyPair {
            cert_file: &pki.client.0,
            key_file: &pki.client.1,
        }),
    )
    .expect("client config");
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let mut stream = TlsConnector::from(client)
        .connect(tls::server_name("localhost").expect("name"), tcp)
        .await
        .unwrap_or_else(|e| panic!("handshake with imrelp: {e}: {}", rsyslog.output()));
    let mut buf = BytesMut::new();
    let mut session = ClientSession::new(8);
    send_frame(&mut stream, &session.open("estuary-test,0.1")).await;
    match session.handle(next_frame(&mut stream, &mut buf).await) {
        Ok(Event::Opened(_)) => {}
        other => panic!("open answered with {other:?}: {}", rsyslog.output()),
    }
    let mut acked = 0;
    let mut sent = 0;
    while acked < COUNT {
        while sent < COUNT && session.can_send() {
            let message = format!("<190>1 - sensor1 bro_ssl - - - {}", line(sent));
            send_frame(
                &mut stream,
                &session.send(message.into(), sent).expect("room"),
            )
            .await;
            sent += 1;
        }
        match session.handle(next_frame(&mut stream, &mut buf).await) {
            Ok(Event::Acked(i)) => assert_eq!(i, acked),
            other => panic!("unexpected {other:?}"),
        }
        acked += 1;
    }
    let lines = common::wait_for(TIMEOUT, "imrelp to write every message", || {
        let text = std::fs::read_to_string(&out).ok()?;
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        (lines.len() >= COUNT).then_some(lines)
    });
    let expected: Vec<String> = (0..COUNT)
        .map(|i| format!("<190>1 - sensor1 bro_ssl - - - {}", line(i)))
        .collect();
    assert_eq!(lines, expected);
}

#[tokio::test]
async fn rsyslog_omrelp_over_tls_to_our_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki(dir.path());
    let log = dir.path().join("ssl.log");
    std::fs::write(&log, (0..COUNT).map(|i| line(i) + "\n").collect::<String>()).expect("log");
    let server = tls::server_config(
        KeyPair {
            cert_file: &pki.server.0,
            key_file: &pki.server.1,
        },
        ClientAuth::Required { ca_file: &pki.ca },
    )
    .expect("server config");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let config = format!(
        "global(localHostname=\"sensor1\" parser.escapeControlCharacterTab=\"off\")\n\
         module(load=\"imfile\")\n\
         module(load=\"omrelp\")\n\
         input(type=\"imfile\" file=\"{}\" tag=\"bro_ssl:\" facility=\"local7\" \
         severity=\"info\" ruleset=\"fwd\")\n\
         ruleset(name=\"fwd\") {{ action(type=\"omrelp\" target=\"127.0.0.1\" port=\"{port}\" \
         {} template=\"RSYSLOG_SyslogProtocol23Format\") }}\n",
        log.display(),
        relp_tls_params(&pki, &pki.client, "localhost"),
    );
    let rsyslog = common::start_rsyslog("omrelp-tls", dir.path(), &config);
    let (tcp, _) = tokio::time::timeout(TIMEOUT, listener.accept())
        .await
        .unwrap_or_else(|_| panic!("omrelp did not connect: {}", rsyslog.output()))
        .expect("accept");
    let mut stream = TlsAcceptor::from(server)
        .accept(tcp)
        .await
        .expect("TLS handshake");
    let peer = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .cloned();
    assert!(tls::peer_cert_names(&peer.expect("client cert")).contains(&"sensor1".to_owned()));

    let mut buf = BytesMut::new();
    let mut session = ServerSession::new("estuary-test,0.1");
    let mut bodies = Vec::new();
    while bodies.len() < COUNT {
        match session
            .handle(next_frame(&mut stream, &mut buf).await)
            .expect("protocol")
        {
            Action::Reply(frame) => send_frame(&mut stream, &frame).await,
            Action::Deliver { txnr, message } => {
                let parsed = parse(&message).expect("parse");
                bodies.push(String::from_utf8(parsed.body.to_vec()).expect("utf-8"));
                send_frame(&mut stream, &ServerSession::ack(txnr)).await;
            }
            Action::ReplyAndClose(frame) => panic!("omrelp closed early: {frame:?}"),
        }
    }
    assert_eq!(bodies, (0..COUNT).map(line).collect::<Vec<_>>());
}
