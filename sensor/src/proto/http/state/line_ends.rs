//! Request and reply heads read through `ContentLine_Analyzer` (see `content_line`): a lone
//! CR ends a line in both directions, once weird per connection, and the LF after a CR that
//! ended a packet is not body data.

use super::*;
use crate::flow::Transport;
use crate::proto::testkit::{conn, Collect};

fn run(request: &[&[u8]], reply: &[&[u8]]) -> Collect {
    let mut a = HttpAnalyzer::new(conn(Transport::Tcp, 80));
    let mut out = Collect::default();
    for (dir, packets) in [(Direction::Orig, request), (Direction::Resp, reply)] {
        for p in packets {
            a.data(Timestamp(1.0), dir, p, &mut out);
        }
    }
    a.finish(Timestamp(3.0), &mut out);
    out
}

#[test]
fn lone_crs_end_request_and_reply_lines() {
    let out = run(
        &[b"POST /a HTTP/1.1\rHost: h\rContent-Length: 2\r\rok"],
        &[b"HTTP/1.1 200 OK\rContent-Length: 3\r\rabc"],
    );
    let rows = out.rows();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        rows[0].starts_with("1\tPOST\th\t/a\t-\t1.1\t-\t-\t2\t3\t200\tOK\t"),
        "{}",
        rows[0]
    );
    assert_eq!(out.weirds, ["line_terminated_with_single_CR"]);
}

/// A CR closing a packet ends the line there; the LF opening the next packet is dropped
/// before the body's plain delivery, so the body is the Content-Length bytes after it.
#[test]
fn a_cr_lf_split_across_packets() {
    let out = run(
        &[b"POST /a HTTP/1.1\r", b"\nContent-Length: 2\r\n\r", b"\nok"],
        &[b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"],
    );
    let rows = out.rows();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        rows[0].starts_with("1\tPOST\t-\t/a\t-\t1.1\t-\t-\t2\t0\t200\tOK\t"),
        "{}",
        rows[0]
    );
    assert!(out.weirds.is_empty(), "{:?}", out.weirds);
}
