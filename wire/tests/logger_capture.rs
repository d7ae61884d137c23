//! What util-linux `logger` really sends, captured on 127.0.0.1 and read with `parse` and the
//! TCP framing decoder.

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::BytesMut;
use estuary_wire::framing::SyslogDecoder;
use estuary_wire::{parse, Facility, Format, Pri, Severity};
use tokio_util::codec::Decoder;

const LOCAL7_INFO: Pri = Pri {
    facility: Facility::Local7,
    severity: Severity::Informational,
};

/// Runs `logger <args>` with `stdin` and waits for it.
fn logger(args: &[&str], stdin: &[u8]) {
    let mut child = Command::new("logger")
        .args(args)
        .stdin(Stdio::piped())
        .spawn()
        .expect("run logger (util-linux bsdutils)");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin).expect("write to logger");
    drop(input);
    assert!(
        child.wait().expect("wait for logger").success(),
        "logger {args:?} failed"
    );
}

/// Sends `stdin` lines with `logger <args>` over UDP and returns the datagrams.
fn over_udp(args: &[&str], stdin: &[u8], count: usize) -> Vec<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let port = socket.local_addr().expect("addr").port().to_string();
    let mut full = vec!["-d", "-n", "127.0.0.1", "-P", &port];
    full.extend_from_slice(args);
    logger(&full, stdin);
    let mut buf = vec![0u8; 65536];
    (0..count)
        .map(|_| {
            let n = socket.recv(&mut buf).expect("datagram from logger");
            buf[..n].to_vec()
        })
        .collect()
}

#[test]
fn logger_rfc3164_over_udp() {
    let got = over_udp(
        &["--rfc3164", "-t", "bro_ssl", "-p", "local7.info"],
        b"a\tb\t[c]\t\t\n[x] y\n",
        2,
    );
    let m = parse(&got[0]).unwrap();
    assert_eq!(m.format, Format::Rfc3164);
    assert_eq!(m.pri, LOCAL7_INFO);
    assert!(m.hostname.is_some());
    assert_eq!(m.app_name, Some("bro_ssl"));
    assert_eq!(m.body, b"a\tb\t[c]\t\t");
    assert_eq!(parse(&got[1]).unwrap().body, b"[x] y");
}

#[test]
fn logger_rfc5424_over_udp() {
    let got = over_udp(
        &["--rfc5424", "-t", "bro_ssl", "-p", "local7.info"],
        b"[x] a\tb\t\n",
        1,
    );
    let m = parse(&got[0]).unwrap();
    assert_eq!(m.format, Format::Rfc5424);
    assert_eq!(m.pri, LOCAL7_INFO);
    assert_eq!(m.app_name, Some("bro_ssl"));
    assert!(m
        .structured_data
        .is_some_and(|sd| sd.starts_with(b"[timeQuality ")));
    assert_eq!(m.origin, None);
    assert_eq!(m.body, b"[x] a\tb\t");
    assert!(m.resolve_timestamp(chrono::Local::now()).is_some());

    // Without a timestamp, with a PID, and with bytes that are not UTF-8.
    let got = over_udp(
        &["--rfc5424=notq,notime", "-i", "-t", "t"],
        b"raw \xff\xfe\tq\n",
        1,
    );
    let m = parse(&got[0]).unwrap();
    assert_eq!((m.timestamp, m.app_name), (None, Some("t")));
    assert!(m
        .procid
        .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit())));
    assert_eq!(m.body, b"raw \xff\xfe\tq");
}

#[test]
fn logger_over_tcp_octet_counted_and_newline_framed() {
    for octet_count in [true, false] {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind tcp");
        let port = listener.local_addr().expect("addr").port().to_string();
        let mut args = vec![
            "-T",
            "-n",
            "127.0.0.1",
            "-P",
            &port,
            "--rfc5424",
            "-t",
            "bro_dns",
        ];
        if octet_count {
            args.push("--octet-count");
        }
        let reader = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept logger");
            let mut raw = Vec::new();
            stream.read_to_end(&mut raw).expect("read from logger");
            raw
        });
        logger(&args, b"one\ttwo\nthree \n");
        let raw = reader.join().expect("reader thread");
        let mut buf = BytesMut::from(&raw[..]);
        let mut decoder = SyslogDecoder::default();
        let mut bodies = Vec::new();
        while let Some(item) = decoder.decode_eof(&mut buf).expect("framing") {
            let message = item.expect("not oversized");
            bodies.push(parse(&message).expect("parse").body.to_vec());
        }
        assert_eq!(
            bodies,
            vec![b"one\ttwo".to_vec(), b"three ".to_vec()],
            "{raw:?}"
        );
    }
}
