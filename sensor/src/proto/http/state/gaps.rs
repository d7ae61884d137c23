use super::*;
use crate::flow::Transport;
use crate::proto::testkit::{conn, Collect};

#[test]
fn gap_in_headers_resyncs_at_the_next_request() {
    let mut a = HttpAnalyzer::new(conn(Transport::Tcp, 80));
    let mut out = Collect::default();
    a.data(
        Timestamp(1.0),
        Direction::Orig,
        b"GET /a HTTP/1.1\r\nHost: x",
        &mut out,
    );
    a.gap(Timestamp(1.1), Direction::Orig, 100, &mut out);
    a.data(
        Timestamp(1.2),
        Direction::Orig,
        b"garbage\r\nGET /b HTTP/1.1\r\nHost: y\r\n\r\n",
        &mut out,
    );
    a.data(
        Timestamp(1.3),
        Direction::Resp,
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 404 No\r\nContent-Length: 0\r\n\r\n",
        &mut out,
    );
    a.finish(Timestamp(2.0), &mut out);
    let rows = out.rows();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[0].starts_with("1\tGET\t-\t/a\t"), "{}", rows[0]);
    assert!(rows[1].starts_with("2\tGET\ty\t/b\t"), "{}", rows[1]);
    assert!(rows[1].contains("\t404\tNo\t"), "{}", rows[1]);
}

#[test]
fn gap_in_a_sized_body_keeps_its_place() {
    let mut a = HttpAnalyzer::new(conn(Transport::Tcp, 80));
    let mut out = Collect::default();
    a.data(
        Timestamp(1.0),
        Direction::Orig,
        b"GET / HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n",
        &mut out,
    );
    a.data(
        Timestamp(1.1),
        Direction::Resp,
        b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n0123456789",
        &mut out,
    );
    a.gap(Timestamp(1.2), Direction::Resp, 10, &mut out);
    a.data(
        Timestamp(1.3),
        Direction::Resp,
        b"HTTP/1.1 204 Empty\r\n\r\n",
        &mut out,
    );
    a.finish(Timestamp(2.0), &mut out);
    let rows = out.rows();
    assert_eq!(rows.len(), 2, "{rows:?}");
    // HTTP_Entity::Undelivered counts the lost bytes in the body length.
    assert!(rows[0].contains("\t0\t20\t200\tOK\t"), "{}", rows[0]);
    assert!(rows[1].contains("\t204\tEmpty\t"), "{}", rows[1]);
}
