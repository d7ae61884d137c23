//! HTTP CONNECT: `HTTP_Analyzer::DeliverStream` hands the stream after a 200 reply's head to
//! a new protocol detection, and http/main.zeek's `http_reply` registers a `Tunnel::HTTP`.

use super::*;
use crate::flow::Transport;
use crate::proto::testkit::{conn, Collect};

const CONNECT: &[u8] = b"CONNECT example.org:80 HTTP/1.1\r\nHost: example.org:80\r\n\r\n";

fn run(reply: &[u8], after: &[(Direction, &[u8])]) -> Collect {
    let mut a = HttpAnalyzer::new(conn(Transport::Tcp, 3128));
    let mut out = Collect::default();
    a.data(Timestamp(1.0), Direction::Orig, CONNECT, &mut out);
    a.data(Timestamp(2.0), Direction::Resp, reply, &mut out);
    for (dir, data) in after {
        a.data(Timestamp(3.0), *dir, data, &mut out);
    }
    a.finish(Timestamp(4.0), &mut out);
    out
}

/// After a 200 the tunneled stream is found by content: here HTTP inside the tunnel, logged
/// as a second transaction of its own. The reply's head may carry headers.
#[test]
fn a_200_to_connect_opens_a_tunnel() {
    let out = run(
        b"HTTP/1.1 200 Connection Established\r\nProxy-Agent: p\r\n\r\n",
        &[
            (
                Direction::Orig,
                b"GET /in HTTP/1.1\r\nHost: example.org\r\n\r\n",
            ),
            (Direction::Resp, b"HTTP/1.1 204 No Content\r\n\r\n"),
        ],
    );
    assert_eq!(out.tunnels, [TunnelType::Http]);
    let rows = out.rows();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[0].starts_with("1\tCONNECT\t"), "{}", rows[0]);
    assert!(
        rows[1].starts_with("1\tGET\texample.org\t/in\t"),
        "{}",
        rows[1]
    );
}

/// The bytes after the reply's head in the same delivery belong to the tunnel.
#[test]
fn bytes_after_the_head_go_to_the_tunnel() {
    let out = run(
        b"HTTP/1.0 200 OK\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        &[],
    );
    assert_eq!(out.tunnels, [TunnelType::Http]);
    assert_eq!(out.rows().len(), 2, "{:?}", out.rows());
}

/// `connect_request && reply_code != 200`: any other reply, even a 2xx, sets up no tunnel
/// and is read as HTTP with its body.
#[test]
fn other_replies_set_up_no_tunnel() {
    for reply in [
        &b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 2\r\n\r\nno"[..],
        b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nno",
    ] {
        let out = run(reply, &[(Direction::Orig, b"GET / HTTP/1.1\r\n\r\n")]);
        assert!(out.tunnels.is_empty());
        let rows = out.rows();
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert!(rows[0].contains("\t0\t2\t"), "body of 2 bytes: {}", rows[0]);
    }
}
