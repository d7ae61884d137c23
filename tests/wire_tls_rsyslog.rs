//! estuary-wire's rustls configurations against rsyslog's GnuTLS driver (RFC 5425): rsyslog
//! `omfwd` with a client certificate to our server, and our client to rsyslog `imtcp`; and RELP
//! over TLS both ways (librelp starts TLS right after connecting).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::BytesMut;
use common::{write_relp_frame as send_frame, Daemon, TestPki};
use estuary_wire::encode::write_frame;
use estuary_wire::framing::SyslogDecoder;
use estuary_wire::relp::{Action, ClientSession, Event, Frame, ServerSession};
use estuary_wire::tls::{self, ClientAuth, KeyPair};
use estuary_wire::{parse, Framing};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{client, server, TlsAcceptor, TlsConnector};
use tokio_util::codec::Decoder;

const TIMEOUT: Duration = Duration::from_secs(20);
const COUNT: usize = 50;

fn key_pair((cert_file, key_file): &(PathBuf, PathBuf)) -> KeyPair<'_> {
    KeyPair {
        cert_file,
        key_file,
    }
}

/// Accepts rsyslog's connection on `listener` and completes a TLS handshake that requires a
/// client certificate from the test CA; returns the stream and the client certificate's names.
async fn accept_tls(
    listener: &TcpListener,
    pki: &TestPki,
    rsyslog: &Daemon,
) -> (server::TlsStream<TcpStream>, Vec<String>) {
    let config = tls::server_config(
        key_pair(&pki.server),
        ClientAuth::Required { ca_file: &pki.ca },
    )
    .expect("server config");
    let (tcp, _) = tokio::time::timeout(TIMEOUT, listener.accept())
        .await
        .unwrap_or_else(|_| panic!("rsyslog did not connect: {}", rsyslog.output()))
        .expect("accept");
    let stream = TlsAcceptor::from(config)
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
    (stream, names)
}

/// Connects to rsyslog on `port` with the test client certificate, verifying `localhost`.
async fn connect_tls(port: u16, pki: &TestPki, rsyslog: &Daemon) -> client::TlsStream<TcpStream> {
    let config = tls::client_config(&pki.ca, Some(key_pair(&pki.client))).expect("client config");
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    TlsConnector::from(config)
        .connect(tls::server_name("localhost").expect("server name"), tcp)
        .await
        .unwrap_or_else(|e| panic!("handshake with rsyslog: {e}: {}", rsyslog.output()))
}

fn tls_globals(pki: &TestPki, identity: &(PathBuf, PathBuf)) -> String {
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

/// `line(i)` as an RFC 5424 message from `sensor1`, tag `bro_ssl`.
fn message(i: usize) -> String {
    format!("<190>1 - sensor1 bro_ssl - - - {}", line(i))
}

fn write_log(dir: &Path) -> PathBuf {
    let log = dir.join("ssl.log");
    std::fs::write(&log, (0..COUNT).map(|i| line(i) + "\n").collect::<String>()).expect("log");
    log
}

#[tokio::test]
async fn rsyslog_gtls_client_to_our_rustls_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = common::test_pki(dir.path());
    let log = write_log(dir.path());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let config = common::rsyslog_forwarder_config(
        &tls_globals(&pki, &pki.client),
        &log,
        "bro_ssl:",
        &format!(
            "type=\"omfwd\" target=\"127.0.0.1\" port=\"{port}\" \
             protocol=\"tcp\" tcp_framing=\"octet-counted\" streamDriver=\"gtls\" \
             streamDriverMode=\"1\" streamDriverAuthMode=\"x509/name\" \
             streamDriverPermittedPeers=\"localhost\" \
             template=\"RSYSLOG_SyslogProtocol23Format\""
        ),
    );
    let rsyslog = common::start_rsyslog("gtls-client", dir.path(), &config);

    let (mut stream, names) = accept_tls(&listener, &pki, &rsyslog).await;
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
    let pki = common::test_pki(dir.path());
    let out = dir.path().join("out.log");
    let port = common::free_tcp_port();
    let config = common::rsyslog_receiver_config(
        &format!(
            "{}global(parser.escapeControlCharacterTab=\"off\")\n\
             module(load=\"imtcp\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" \
             streamDriver.authMode=\"x509/certvalid\")\n",
            tls_globals(&pki, &pki.server)
        ),
        &format!("type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\""),
        &out,
    );
    let rsyslog = common::start_rsyslog("gtls-server", dir.path(), &config);
    common::wait_for_tcp_listen(port, TIMEOUT);

    let mut stream = connect_tls(port, &pki, &rsyslog).await;
    let mut wire = Vec::new();
    for i in 0..COUNT {
        write_frame(&mut wire, Framing::OctetCounting, message(i).as_bytes());
    }
    stream.write_all(&wire).await.expect("write");
    // RFC 5425 section 4.4: close_notify before closing.
    stream.shutdown().await.expect("close_notify");

    let lines = common::wait_for_lines(&out, COUNT, "imtcp to write every message", TIMEOUT);
    assert_eq!(lines, (0..COUNT).map(message).collect::<Vec<_>>());
}

async fn next_frame<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut BytesMut) -> Frame {
    common::read_relp_frame(stream, buf, TIMEOUT).await
}

fn relp_tls_params(pki: &TestPki, identity: &(PathBuf, PathBuf), peer: &str) -> String {
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
    let pki = common::test_pki(dir.path());
    let out = dir.path().join("out.log");
    let port = common::free_tcp_port();
    let config = common::rsyslog_receiver_config(
        "global(parser.escapeControlCharacterTab=\"off\")\nmodule(load=\"imrelp\")\n",
        &format!(
            "type=\"imrelp\" address=\"127.0.0.1\" port=\"{port}\" {}",
            relp_tls_params(&pki, &pki.server, "sensor1.example")
        ),
        &out,
    );
    let rsyslog = common::start_rsyslog("imrelp-tls", dir.path(), &config);
    common::wait_for_tcp_listen(port, TIMEOUT);

    let mut stream = connect_tls(port, &pki, &rsyslog).await;
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
            send_frame(
                &mut stream,
                &session.send(message(sent).into(), sent).expect("room"),
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
    let lines = common::wait_for_lines(&out, COUNT, "imrelp to write every message", TIMEOUT);
    assert_eq!(lines, (0..COUNT).map(message).collect::<Vec<_>>());
}

#[tokio::test]
async fn rsyslog_omrelp_over_tls_to_our_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = common::test_pki(dir.path());
    let log = write_log(dir.path());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let config = common::rsyslog_forwarder_config(
        "module(load=\"omrelp\")\n",
        &log,
        "bro_ssl:",
        &format!(
            "type=\"omrelp\" target=\"127.0.0.1\" port=\"{port}\" {} \
             template=\"RSYSLOG_SyslogProtocol23Format\"",
            relp_tls_params(&pki, &pki.client, "localhost")
        ),
    );
    let rsyslog = common::start_rsyslog("omrelp-tls", dir.path(), &config);
    let (mut stream, names) = accept_tls(&listener, &pki, &rsyslog).await;
    assert!(names.contains(&"sensor1".to_owned()));

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
