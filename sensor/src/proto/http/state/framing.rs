//! Whether and how a body follows a message head (RFC 9112 section 6.3).

use super::*;

impl HttpAnalyzer {
    /// The body that follows a complete head, or `None` when the message has none (nor
    /// after a 200 to a CONNECT, where the tunnel begins).
    pub(super) fn framing(dir: Direction, head: &Head) -> Option<Framing> {
        if dir == Direction::Resp {
            let code = head.status.unwrap_or(0);
            let method = head.request.as_ref().map(|r| r.method.as_str());
            if (100..200).contains(&code)
                || code == 204
                || code == 304
                || method == Some("HEAD")
                || (method == Some("CONNECT") && code == 200)
            {
                return None;
            }
        }
        if head.chunked {
            return Some(Framing::Chunked);
        }
        match (head.content_length, dir) {
            (Some(0), _) => None,
            (Some(n), _) => Some(Framing::Length(n)),
            (None, Direction::Orig) => None,
            (None, Direction::Resp) => Some(Framing::UntilEof),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::flow::{Direction, Timestamp, Transport};
    use crate::proto::http::HttpAnalyzer;
    use crate::proto::testkit::{conn, Collect};
    use crate::proto::Analyzer;

    fn body_len(reply: &[u8]) -> String {
        let mut a = HttpAnalyzer::new(conn(Transport::Tcp, 80));
        let mut out = Collect::default();
        a.data(
            Timestamp(1.0),
            Direction::Orig,
            b"GET / HTTP/1.1\r\n\r\n",
            &mut out,
        );
        a.data(Timestamp(2.0), Direction::Resp, reply, &mut out);
        a.finish(Timestamp(3.0), &mut out);
        out.rows()[0]
            .split('\t')
            .nth(9)
            .unwrap_or_default()
            .to_string()
    }

    /// A reply body without a length is read as lines until the connection closes: every
    /// line end counts 2 bytes, and an open last line gets one at the end; with
    /// `Connection: close` it is plain data.
    #[test]
    fn a_body_until_close_counts_lines() {
        assert_eq!(body_len(b"HTTP/1.0 200 OK\r\n\r\na\nb\r\nc\rdone"), "15");
        assert_eq!(
            body_len(b"HTTP/1.0 200 OK\r\nConnection: close\r\n\r\na\nb\r\nc\rdone"),
            "11"
        );
    }
}
