use super::*;
use crate::flow::Transport;
use crate::proto::testkit::{conn, Collect};
use proptest::prelude::*;

const O: Direction = Direction::Orig;
const R: Direction = Direction::Resp;

fn run(port: u16, msgs: &[(Direction, &[u8])]) -> (SocksAnalyzer, Collect) {
    let mut a = SocksAnalyzer::new(conn(Transport::Tcp, port));
    let mut out = Collect::default();
    for (dir, data) in msgs {
        a.data(Timestamp(1.0), *dir, data, &mut out);
    }
    a.finish(Timestamp(2.0), &mut out);
    (a, out)
}

const V5_HANDSHAKE: &[(Direction, &[u8])] = &[
    (O, b"\x05\x01\x00"),
    (R, b"\x05\x00"),
    (O, b"\x05\x01\x00\x03\x0ewww.osnews.com\x00\x50"),
    (R, b"\x05\x00\x00\x01\xc0\xa8\x00\x1f\x0a\x80"),
];

/// socks_request registers the tunnel, socks5_reply confirms, and after both the stream goes
/// to a new protocol detection, which finds HTTP inside.
#[test]
fn socks5_hands_the_stream_on_after_request_and_reply() {
    let mut msgs = V5_HANDSHAKE.to_vec();
    msgs.push((O, b"GET / HTTP/1.1\r\nHost: www.osnews.com\r\n\r\n"));
    msgs.push((R, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    let (a, out) = run(1080, &msgs);
    assert_eq!(out.tunnels, [TunnelType::Socks]);
    assert_eq!(out.services, ["socks", "http"]);
    assert!(out.violations.is_empty());
    assert_eq!(out.records.len(), 1, "http.log row of the tunneled request");
    assert!(a.orig_done && a.resp_done);
}

/// The request alone registers the tunnel; the reply alone confirms.
#[test]
fn the_tunnel_comes_with_the_request_and_the_service_with_the_reply() {
    let (_, out) = run(1080, &V5_HANDSHAKE[..3]);
    assert_eq!(out.tunnels, [TunnelType::Socks]);
    assert!(out.services.is_empty());
}

/// Username/password sub-negotiation (RFC 1929) between method selection and request.
#[test]
fn socks5_with_user_and_password() {
    let (_, out) = run(
        10080,
        &[
            (O, b"\x05\x03\x00\x03\x02"),
            (R, b"\x05\x02"),
            (O, b"\x01\x03bob\x05alice"),
            (R, b"\x01\x00"),
            (O, b"\x05\x01\x00\x01\xc0\xa8\x00\x02\x00\x16"),
            (R, b"\x05\x00\x00\x01\xc0\xa8\x00\x01\xda\x8f"),
        ],
    );
    assert_eq!(out.tunnels, [TunnelType::Socks]);
    assert_eq!(out.services, ["socks"]);
    assert!(out.weirds.is_empty());
}

/// `socks5_unsupported_authentication_method` and `_authentication` (method and version).
#[test]
fn unsupported_authentication_is_weird_and_the_handshake_goes_on() {
    let (_, out) = run(
        1080,
        &[
            (O, b"\x05\x01\x01"),
            (R, b"\x05\x01"),
            (O, b"gssapi"),
            (R, b"gssapi"),
            (O, b"\x05\x01\x00\x01\x0a\0\0\x01\x00\x16"),
            (R, b"\x05\x00\x00\x01\x0a\0\0\x01\x00\x16"),
        ],
    );
    assert_eq!(
        out.weirds,
        [
            "socks5_unsupported_authentication_method",
            "socks5_unsupported_authentication_method"
        ]
    );
    assert_eq!(out.services, ["socks"]);
    let (_, out) = run(
        1080,
        &[(O, b"\x05\x01\x02"), (R, b"\x05\x02"), (O, b"\x02ab")],
    );
    assert_eq!(out.weirds, ["socks5_unsupported_authentication"]);
    assert_eq!(out.script_weirds, out.weirds, "no analyzer source");
}

/// SOCKS4 requests register the tunnel; Zeek's grammar reads a reply's first byte as the
/// version, so the usual reply (`00 5a ...`) is a version error and the stream is not handed
/// on, while one beginning with 4 confirms.
#[test]
fn socks4_requests_and_replies_as_zeeks_grammar_reads_them() {
    let request: (Direction, &[u8]) = (O, b"\x04\x01\x00\x50\xc0\x96\xbb\x0c\x00");
    let (a, out) = run(
        1080,
        &[
            request,
            (R, b"\x00\x5a\0\0\0\0\0\0"),
            (O, b"GET / HTTP/1.1\r\n\r\n"),
        ],
    );
    assert_eq!(out.tunnels, [TunnelType::Socks]);
    assert!(out.services.is_empty());
    assert_eq!(out.violations, ["socks"]);
    assert!(a.inner.is_none());
    let (_, out) = run(1080, &[request, (R, b"\x04\x00\x5a\0\0\0\0\0\0")]);
    assert_eq!(out.services, ["socks"]);
    let (_, out) = run(1080, &[(O, b"\x04\x01\x00\x50\0\0\0\x01bob\0a.org\0")]);
    assert_eq!(out.tunnels, [TunnelType::Socks], "4a");
}

/// Every truncation of every handshake message is a violation that stops the analyzer, and
/// nothing after it is read.
#[test]
fn truncated_messages_are_violations() {
    for (i, (dir, msg)) in V5_HANDSHAKE.iter().enumerate() {
        for cut in 0..msg.len() {
            let mut msgs = V5_HANDSHAKE[..i].to_vec();
            msgs.push((*dir, &msg[..cut]));
            msgs.extend_from_slice(&V5_HANDSHAKE[i + 1..]);
            let (a, out) = run(1080, &msgs);
            assert_eq!(out.violations, ["socks"], "message {i} cut at {cut}");
            assert!(a.stopped && a.inner.is_none());
            assert!(out.services.is_empty());
        }
    }
}

#[test]
fn malformed_requests_are_violations() {
    for bad in [
        &b"\x06\x01\x00"[..],
        b"\x05\x01\x07\x01\x0a\0\0\x01\x00\x16",
        b"\x05\x09\x00\x01\x0a\0\0\x01\x00\x16",
        b"\x05\x01\x00\x05\x0a\0\0\x01\x00\x16",
    ] {
        let mut msgs = V5_HANDSHAKE[..2].to_vec();
        msgs.push((O, bad));
        let (_, out) = run(1080, &msgs);
        assert_eq!(out.violations, ["socks"], "{bad:?}");
        assert!(out.tunnels.is_empty());
    }
}

/// `TCP()->IsPartial()`: a connection picked up mid-stream is not analyzed.
#[test]
fn partial_connections_are_skipped() {
    let mut a = SocksAnalyzer::new(conn(Transport::Tcp, 1080));
    a.tcp_partial(true);
    let mut out = Collect::default();
    for (dir, data) in V5_HANDSHAKE {
        a.data(Timestamp(1.0), *dir, data, &mut out);
    }
    assert!(out.tunnels.is_empty() && out.services.is_empty());
}

proptest! {
    #[test]
    fn arbitrary_streams_never_panic(
        chunks in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..64)), 0..12),
        prefix in 0usize..5,
        gap in any::<bool>(),
    ) {
        let mut a = SocksAnalyzer::new(conn(Transport::Tcp, 1080));
        let mut out = Collect::default();
        for (dir, data) in &V5_HANDSHAKE[..prefix.min(V5_HANDSHAKE.len())] {
            a.data(Timestamp(0.0), *dir, data, &mut out);
        }
        for (orig, data) in chunks {
            let dir = if orig { O } else { R };
            a.data(Timestamp(1.0), dir, &data, &mut out);
            if gap {
                a.gap(Timestamp(1.0), dir, 10, &mut out);
            }
        }
        a.finish(Timestamp(2.0), &mut out);
    }
}
