use super::*;
use crate::flow::Transport;
use crate::proto::testkit::{conn, Collect};

fn run(exchanges: &[(Direction, &[u8])]) -> Collect {
    let mut a = HttpAnalyzer::new(conn(Transport::Tcp, 80));
    let mut out = Collect::default();
    for (i, (dir, data)) in exchanges.iter().enumerate() {
        a.data(Timestamp(i as f64), *dir, data, &mut out);
    }
    a.finish(Timestamp(100.0), &mut out);
    out
}

#[test]
fn request_and_response() {
    let out = run(&[
            (Direction::Orig, b"GET /a HTTP/1.1\r\nHost: x.org:8080\r\nUser-Agent: t/1\r\nAuthorization: Basic dXNlcjpwYXNz\r\n\r\n"),
            (Direction::Resp, b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world"),
        ]);
    let rows = out.rows();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].starts_with("1\tGET\tx.org:8080\t/a\t-\t1.1\tt/1\t-\t0\t11\t200\tOK\t-\t-\t(empty)\tuser\t-\t-\t-\t-\t-\t"), "{}", rows[0]);
    assert!(rows[0].ends_with("\t-\ttext/plain"), "{}", rows[0]);
}

/// `HTTP_Entity::SubmitHeader` reads a Content-Range while the analyzer's reply code is 206,
/// on either side: a request's range then sets its body length; once the 206 reply is done
/// (`ReplyMade` clears the code) a request's Content-Range is ignored.
#[test]
fn a_request_content_range_counts_during_a_206_reply() {
    let first = (Direction::Orig, &b"GET /a HTTP/1.1\r\n\r\n"[..]);
    let post = (
        Direction::Orig,
        &b"POST /b HTTP/1.1\r\nContent-Range: bytes 0-4/10\r\n\r\nhello"[..],
    );
    let open_206 = (
        Direction::Resp,
        &b"HTTP/1.1 206 Partial\r\nContent-Range: bytes 0-1/10\r\n"[..],
    );
    let out = run(&[first, open_206, post]);
    let rows = out.rows();
    assert!(
        rows.iter()
            .any(|r| r.contains("\tPOST\t") && r.contains("\t5\t")),
        "{rows:?}"
    );
    let done_206 = (
        Direction::Resp,
        &b"HTTP/1.1 206 Partial\r\nContent-Range: bytes 0-1/10\r\n\r\nab"[..],
    );
    let out = run(&[first, done_206, post]);
    let rows = out.rows();
    let row = rows
        .iter()
        .find(|r| r.contains("\tPOST\t"))
        .expect("POST row");
    assert!(row.contains("\t-\t0\t"), "{row}");
}
