//! What a protocol violation does to the analyzer (`AnalyzerViolation("not a http request
//! line")`): `base/frameworks/analyzer/dpd.zeek` disables the analyzer unless the connection
//! is more than `DPD::ignore_violations_after` bytes in. The removal only shows once the
//! analyzer was confirmed; before that the server's replies are still read (Zeek logs the
//! reply to a garbled first request).

use super::{HttpAnalyzer, Mode};

/// `DPD::ignore_violations_after`.
const IGNORE_VIOLATIONS_AFTER: u64 = 10 * 1024;

impl HttpAnalyzer {
    pub(super) fn violation(&mut self) {
        if self.confirmed && self.payload_bytes <= IGNORE_VIOLATIONS_AFTER {
            self.mode = Mode::Stopped;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::flow::{Direction, Timestamp, Transport};
    use crate::proto::http::HttpAnalyzer;
    use crate::proto::testkit::{conn, Collect};
    use crate::proto::Analyzer;

    /// After a confirmed exchange, a request line that is not HTTP removes the analyzer: the
    /// reply that follows is not logged. `ParseRequest` took the line for HTTP/0.9 before
    /// rejecting it, so the request version changed.
    #[test]
    fn a_violation_after_confirmation_stops_the_analyzer() {
        let mut a = HttpAnalyzer::new(conn(Transport::Tcp, 80));
        let mut out = Collect::default();
        let exchanges: [(Direction, &[u8]); 4] = [
            (Direction::Orig, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"),
            (
                Direction::Resp,
                b"HTTP/1.1 301 Moved\r\nContent-Length: 0\r\n\r\n",
            ),
            (Direction::Orig, b"T / HTTP\r\n\r\n"),
            (
                Direction::Resp,
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
            ),
        ];
        for (i, (dir, data)) in exchanges.iter().enumerate() {
            a.data(Timestamp(i as f64), *dir, data, &mut out);
        }
        a.finish(Timestamp(10.0), &mut out);
        assert_eq!(out.weirds, ["HTTP_version_mismatch", "bad_HTTP_request"]);
        let rows = out.rows();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert!(rows[0].contains("\t301\tMoved\t"), "{}", rows[0]);
    }
}
