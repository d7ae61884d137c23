//! For the HTTP analyzer's tests: one POST, and its reply if given, through a new analyzer.

use super::HttpAnalyzer;
use crate::flow::{Direction, Timestamp, Transport};
use crate::proto::testkit::{conn, Collect};
use crate::proto::Analyzer;

/// A POST of `body` with `headers` (each ending in CRLF) and its Content-Length, then `reply`.
pub fn post(headers: &str, body: &[u8], reply: Option<&[u8]>) -> Collect {
    let mut req = format!(
        "POST /up HTTP/1.1\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    let mut a = HttpAnalyzer::new(conn(Transport::Tcp, 80));
    let mut out = Collect::default();
    a.data(Timestamp(1.0), Direction::Orig, &req, &mut out);
    if let Some(reply) = reply {
        a.data(Timestamp(2.0), Direction::Resp, reply, &mut out);
    }
    a.finish(Timestamp(3.0), &mut out);
    out
}

pub const OK_EMPTY: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
