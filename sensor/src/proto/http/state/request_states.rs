//! Zeek's `HTTP_Analyzer::DeliverStream` after a request line it cannot parse, and after an
//! HTTP/0.9 request.

use super::*;
use crate::flow::Transport;
use crate::proto::testkit::{conn, Collect};

fn run(request: &[u8], reply: &[u8]) -> Collect {
    let mut a = HttpAnalyzer::new(conn(Transport::Tcp, 80));
    let mut out = Collect::default();
    a.data(Timestamp(1.0), Direction::Orig, request, &mut out);
    a.data(Timestamp(2.0), Direction::Resp, reply, &mut out);
    a.finish(Timestamp(3.0), &mut out);
    out
}

/// EXPECT_REQUEST_NOTHING: the client side stops, the server's reply is still logged,
/// and without a waiting request the protocol is not confirmed.
#[test]
fn a_bad_request_line_still_logs_the_reply() {
    let out = run(
        b"\x01\x02 / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"HTTP/1.0 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad",
    );
    assert_eq!(out.weirds, ["bad_HTTP_request_with_version"]);
    let rows = out.rows();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        rows[0].starts_with("1\t-\t-\t-\t-\t1.0\t-\t-\t0\t3\t400\tBad Request\t"),
        "{}",
        rows[0]
    );
    assert!(out.services.is_empty());
}

/// EXPECT_REPLY_HTTP09: after an HTTP/0.9 request the whole reply is body, even when it
/// starts with a status line.
#[test]
fn the_reply_to_an_http09_request_is_all_body() {
    let reply = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno";
    let out = run(b"GET /HTTP/1.1\r\n\r\n", reply);
    let rows = out.rows();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let want = format!(
        "1\tGET\t-\t/HTTP/1.1\t-\t0.9\t-\t-\t0\t{}\t0\t<empty>\t",
        reply.len()
    );
    assert!(rows[0].starts_with(&want), "{}", rows[0]);
}

/// scripts/base/protocols/http/main.zeek raises `unknown_HTTP_method` (and the pipelining
/// weirds) with `Reporter::conn_weird`: weird.log's `source` stays unset for them.
#[test]
fn an_unknown_method_is_a_script_weird() {
    let out = run(
        b"CCM_POST / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(out.script_weirds, ["unknown_HTTP_method"]);
    assert_eq!(out.weirds, ["unknown_HTTP_method"]);
}

/// A reply begun before an HTTP/0.9 request is ended where it stands (with weird
/// `http_09_reply_before_request`), and what the server sends next is the 0.9 reply's body.
#[test]
fn a_reply_begun_before_an_http09_request_ends_there() {
    let mut a = HttpAnalyzer::new(conn(Transport::Tcp, 80));
    let mut out = Collect::default();
    a.data(
        Timestamp(1.0),
        Direction::Resp,
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n",
        &mut out,
    );
    a.data(Timestamp(2.0), Direction::Orig, b"GET /\r\n\r\n", &mut out);
    a.data(Timestamp(3.0), Direction::Resp, b"too much.\r\n", &mut out);
    a.finish(Timestamp(4.0), &mut out);
    assert!(out
        .weirds
        .contains(&"http_09_reply_before_request".to_string()));
    let rows = out.rows();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows[0].starts_with("1\t-\t-\t-\t-\t1.1\t-\t-\t0\t0\t200\tOK\t"),
        "{}",
        rows[0]
    );
    assert!(
        rows[1].starts_with("2\tGET\t-\t/\t-\t0.9\t-\t-\t0\t11\t0\t<empty>\t"),
        "{}",
        rows[1]
    );
}

/// HTTP_Analyzer::DeliverStream returns at once on a partial TCP connection (one that began
/// without a handshake): nothing is logged and the protocol is not confirmed.
#[test]
fn a_partial_connection_is_not_analyzed() {
    let mut a = HttpAnalyzer::new(conn(Transport::Tcp, 80));
    a.tcp_partial(true);
    let mut out = Collect::default();
    a.data(
        Timestamp(1.0),
        Direction::Orig,
        b"GET / HTTP/1.1\r\n\r\n",
        &mut out,
    );
    a.data(
        Timestamp(2.0),
        Direction::Resp,
        b"HTTP/1.1 304 Not Modified\r\n\r\n",
        &mut out,
    );
    a.finish(Timestamp(3.0), &mut out);
    assert!(out.rows().is_empty());
    assert!(out.services.is_empty());
}

/// HTTP_Analyzer::ReplyMade: after a 101 with `Connection: Upgrade` and an `Upgrade` protocol,
/// what follows is not HTTP (a WebSocket here) and is not read.
#[test]
fn an_upgrade_ends_http_analysis() {
    let mut a = HttpAnalyzer::new(conn(Transport::Tcp, 80));
    let mut out = Collect::default();
    a.data(
        Timestamp(1.0),
        Direction::Orig,
        b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        &mut out,
    );
    a.data(
        Timestamp(2.0),
        Direction::Resp,
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        &mut out,
    );
    a.data(Timestamp(3.0), Direction::Orig, b"\x81\x05hello", &mut out);
    a.finish(Timestamp(4.0), &mut out);
    assert!(out.weirds.is_empty(), "{:?}", out.weirds);
    let rows = out.rows();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        rows[0].contains("\t101\tSwitching Protocols\t"),
        "{}",
        rows[0]
    );
}
