//! estuary-wire's RELP codec and sessions against real rsyslog: our client to `imrelp`, and
//! rsyslog's `omrelp` to our server, with more messages than the window holds.

mod common;

use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::write_relp_frame as write_frame;
use estuary_wire::parse;
use estuary_wire::relp::{Action, ClientSession, Event, Frame, ServerSession};
use tokio::net::{TcpListener, TcpStream};

const TIMEOUT: Duration = Duration::from_secs(20);

async fn next_frame(stream: &mut TcpStream, buf: &mut BytesMut) -> Frame {
    common::read_relp_frame(stream, buf, TIMEOUT).await
}

fn zeek_line(i: usize) -> String {
    format!("1763812559.{i:06}\tC{i:017}\t10.0.0.1\t443\t[x]\t-\t\t")
}

#[tokio::test]
async fn our_client_delivers_to_rsyslog_imrelp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.log");
    let port = common::free_tcp_port();
    let config = common::rsyslog_receiver_config(
        "global(parser.escapeControlCharacterTab=\"off\")\nmodule(load=\"imrelp\")\n",
        &format!("type=\"imrelp\" address=\"127.0.0.1\" port=\"{port}\""),
        &out,
    );
    let rsyslog = common::start_rsyslog("imrelp", dir.path(), &config);
    common::wait_for_tcp_listen(port, TIMEOUT);

    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to imrelp");
    let mut buf = BytesMut::new();
    let mut session = ClientSession::new(16);
    write_frame(&mut stream, &session.open("estuary-test,0.1")).await;
    let offers = match session.handle(next_frame(&mut stream, &mut buf).await) {
        Ok(Event::Opened(offers)) => offers,
        other => panic!("open answered with {other:?}: {}", rsyslog.output()),
    };
    assert_eq!(
        offers.get("relp_version").map(|v| v.to_vec()),
        Some(vec!["0".to_owned()])
    );

    const COUNT: usize = 300;
    let mut sent = 0;
    let mut acked = Vec::new();
    while acked.len() < COUNT {
        while sent < COUNT && session.can_send() {
            let message = format!("<190>1 - sensor1 bro_conn - - - {}", zeek_line(sent));
            let frame = session.send(message.into(), sent).expect("window has room");
            write_frame(&mut stream, &frame).await;
            sent += 1;
        }
        match session.handle(next_frame(&mut stream, &mut buf).await) {
            Ok(Event::Acked(i)) => acked.push(i),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(acked, (0..COUNT).collect::<Vec<_>>(), "acks in order");
    write_frame(&mut stream, &session.close()).await;
    loop {
        match session.handle(next_frame(&mut stream, &mut buf).await) {
            Ok(Event::Closed) => break,
            Ok(Event::ServerClosing) => continue,
            other => panic!("close answered with {other:?}"),
        }
    }

    let lines = common::wait_for_lines(&out, COUNT, "imrelp to write every message", TIMEOUT);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(
            line,
            &format!("<190>1 - sensor1 bro_conn - - - {}", zeek_line(i))
        );
    }
}

#[tokio::test]
async fn rsyslog_omrelp_delivers_to_our_server() {
    const COUNT: usize = 300;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("conn.log");
    let text: String = (0..COUNT).map(|i| zeek_line(i) + "\n").collect();
    std::fs::write(&log, text).expect("write log");

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let config = common::rsyslog_forwarder_config(
        "module(load=\"omrelp\")\n",
        &log,
        "bro_conn:",
        &format!(
            "type=\"omrelp\" target=\"127.0.0.1\" port=\"{port}\" \
             template=\"RSYSLOG_SyslogProtocol23Format\""
        ),
    );
    let rsyslog = common::start_rsyslog("omrelp", dir.path(), &config);
    let (mut stream, _) = tokio::time::timeout(TIMEOUT, listener.accept())
        .await
        .unwrap_or_else(|_| panic!("omrelp did not connect: {}", rsyslog.output()))
        .expect("accept");

    let mut buf = BytesMut::new();
    let mut session = ServerSession::new("estuary-test,0.1");
    let started = Instant::now();
    let mut bodies = Vec::new();
    while bodies.len() < COUNT {
        assert!(
            started.elapsed() < TIMEOUT,
            "got {} of {COUNT}",
            bodies.len()
        );
        let frame = next_frame(&mut stream, &mut buf).await;
        match session.handle(frame).expect("omrelp follows the protocol") {
            Action::Reply(frame) => write_frame(&mut stream, &frame).await,
            Action::Deliver { txnr, message } => {
                let parsed = parse(&message).expect("parse omrelp message");
                assert_eq!(parsed.app_name, Some("bro_conn"));
                assert_eq!(parsed.hostname, Some("sensor1"));
                bodies.push(String::from_utf8(parsed.body.to_vec()).expect("utf-8 line"));
                write_frame(&mut stream, &ServerSession::ack(txnr)).await;
            }
            Action::ReplyAndClose(frame) => panic!("omrelp closed early: {frame:?}"),
        }
    }
    assert!(session.is_open());
    let expected: Vec<String> = (0..COUNT).map(zeek_line).collect();
    assert_eq!(bodies, expected);
}

/// Opens a RELP session to 127.0.0.1:`port`.
async fn open_session(port: u16) -> (TcpStream, BytesMut, ClientSession<usize>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to imrelp");
    let mut buf = BytesMut::new();
    let mut session = ClientSession::new(64);
    write_frame(&mut stream, &session.open("estuary-test,0.1")).await;
    let event = session.handle(next_frame(&mut stream, &mut buf).await);
    assert!(
        matches!(event, Ok(Event::Opened(_))),
        "open answered with {event:?}"
    );
    (stream, buf, session)
}

/// The connection drops with messages unacknowledged: a new session resends them under new
/// transaction numbers, and imrelp takes every one (at least once; the originals it already
/// had become duplicates, which the origin data lets a receiver drop).
#[tokio::test]
async fn unacked_messages_are_resent_after_reconnect() {
    const COUNT: usize = 20;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.log");
    let port = common::free_tcp_port();
    let config = common::rsyslog_receiver_config(
        "module(load=\"imrelp\")\n",
        &format!("type=\"imrelp\" address=\"127.0.0.1\" port=\"{port}\""),
        &out,
    );
    let _rsyslog = common::start_rsyslog("imrelp-resend", dir.path(), &config);
    common::wait_for_tcp_listen(port, TIMEOUT);
    let message = |i: usize| format!("<190>1 - sensor1 bro_conn - - - line {i}");

    let (mut stream, _, mut first) = open_session(port).await;
    for i in 0..COUNT {
        let frame = first.send(message(i).into(), i).expect("window has room");
        write_frame(&mut stream, &frame).await;
    }
    // Gone without reading a single rsp.
    drop(stream);

    let (mut stream, mut buf, mut second) = open_session(port).await;
    for pending in first.into_unacked() {
        let frame = second
            .send(pending.message, pending.token)
            .expect("window has room");
        assert!(
            frame.txnr.get() >= 2,
            "new session numbers from 2 after open"
        );
        write_frame(&mut stream, &frame).await;
    }
    let mut acked = Vec::new();
    while acked.len() < COUNT {
        match second.handle(next_frame(&mut stream, &mut buf).await) {
            Ok(Event::Acked(i)) => acked.push(i),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(acked, (0..COUNT).collect::<Vec<_>>());

    let lines = common::wait_for_lines(&out, COUNT, "imrelp to write the resent messages", TIMEOUT);
    for i in 0..COUNT {
        let copies = lines.iter().filter(|l| **l == message(i)).count();
        assert!((1..=2).contains(&copies), "line {i} arrived {copies} times");
    }
}
