//! The content line analyzer's delivery size (`ContentLine_Analyzer::SetDeliverySize`): Zeek
//! reads a multipart or `message/*` body line by line, limited to its Content-Length. When a
//! delivery ends exactly at that size with a line still open, `ContentLine_Analyzer::DeliverStream`
//! terminates the line with a CRLF of its own, which the body length then counts, and weirds
//! `line_terminated_without_CRLF` (logged once per connection, see `weird_once`).

use super::HttpAnalyzer;
use crate::flow::Timestamp;
use crate::proto::http::body::{Body, Framing};
use crate::proto::Emit;

impl HttpAnalyzer {
    /// A Content-Length body ended; `delivery_ended` tells whether the data delivered last
    /// ended with it.
    pub(super) fn close_delivery(
        &mut self,
        ts: Timestamp,
        body: &mut Body,
        delivery_ended: bool,
        out: &mut dyn Emit,
    ) {
        let line_delivered = body.delivers_lines() && body.framing() == Framing::Length(0);
        if !(line_delivered && delivery_ended && body.last_line_open()) {
            return;
        }
        body.terminate_last_line();
        out.weird_from(ts, "line_terminated_without_CRLF", None, "CONTENTLINE");
    }
}

#[cfg(test)]
mod tests {
    use crate::flow::{Direction, Timestamp, Transport};
    use crate::proto::http::HttpAnalyzer;
    use crate::proto::testkit::{conn, Collect};
    use crate::proto::Analyzer;

    fn post(body: &str, split_after_body: bool) -> Collect {
        let mut a = HttpAnalyzer::new(conn(Transport::Tcp, 80));
        let mut out = Collect::default();
        let head = format!(
            "POST / HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=xx\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let mut first = head.into_bytes();
        first.extend_from_slice(body.as_bytes());
        if !split_after_body {
            first.extend_from_slice(b"GET /next HTTP/1.1\r\n\r\n");
        }
        a.data(Timestamp(1.0), Direction::Orig, &first, &mut out);
        a.finish(Timestamp(2.0), &mut out);
        out
    }

    /// A multipart body whose last line has no CRLF, ending with the delivery: two bytes more
    /// and one weird; ending inside a delivery, or with a CRLF: neither.
    #[test]
    fn an_open_last_line_is_terminated_at_the_delivery_size() {
        let body = "--xx\r\nContent-Type: text/plain\r\n\r\nhello\r\n--xx--\r\ntrailer";
        let out = post(body, true);
        assert!(
            out.rows()[0].contains(&format!("\t{}\t0\t", body.len() + 2)),
            "{}",
            out.rows()[0]
        );
        assert_eq!(out.weirds, vec!["line_terminated_without_CRLF".to_string()]);
        let out = post(body, false);
        assert!(out.rows()[0].contains(&format!("\t{}\t0\t", body.len())));
        assert!(out.weirds.is_empty());
        let closed = "--xx\r\nContent-Type: text/plain\r\n\r\nhello\r\n--xx--\r\n";
        let out = post(closed, true);
        assert!(out.rows()[0].contains(&format!("\t{}\t0\t", closed.len())));
        assert!(out.weirds.is_empty());
    }
}
