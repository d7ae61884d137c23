//! The files of HTTP message bodies, as Zeek's HTTP analyzer hands them to file analysis
//! (`HTTP_Entity::SubmitData`) and `base/protocols/http/{files,entities}.zeek` describe them.

use super::encoding::Encoding;
use crate::files_log::FileInfo;
use crate::flow::{ConnInfo, Direction, Timestamp};

/// A file a message body carries: a whole body, or one part of a multipart body.
#[derive(Clone)]
pub(super) struct BodyFile {
    /// The type files.log shows (inferred by the time the file ends).
    pub mime: Option<&'static str>,
    /// The type http.log lists (inferred before the transaction's row is written).
    pub logged_mime: Option<&'static str>,
    pub filename: Option<Vec<u8>>,
    pub seen: u64,
    pub total: Option<u64>,
    pub missing: u64,
    /// A 206 body's range: the file offset of its first byte and the whole file's length.
    pub range: Option<(u64, Option<u64>)>,
}

impl BodyFile {
    /// Its files.log row. HTTP's scripts never set `depth`, so it stays 0.
    pub fn record(
        &self,
        fuid: &str,
        conn: &ConnInfo,
        dir: Direction,
        start: Timestamp,
        end: Timestamp,
    ) -> FileInfo {
        FileInfo {
            ts: start,
            fuid: fuid.to_string(),
            conn: conn.clone(),
            source: "HTTP",
            depth: 0,
            mime_type: self.mime,
            filename: self.filename.clone(),
            last: end,
            local_orig: None,
            dir,
            seen_bytes: self.seen,
            total_bytes: self.total,
            missing_bytes: self.missing,
            timedout: false,
        }
    }
}

/// A 206 reply whose range does not start at offset 0 hands its body to the file at that
/// offset (`file_mgr->DataIn` with an offset), where Zeek's file reassembler holds it until
/// the bytes before it arrive; such a file never gets a BOF buffer and so no type.
pub(super) fn file_type(
    range_first: Option<u64>,
    mime: Option<&'static str>,
) -> Option<&'static str> {
    mime.filter(|_| range_first.unwrap_or(0) == 0)
}

/// The type http.log lists for a body. `HTTP_Message::Done` does not end the file of a 206
/// reply (byte ranges may continue in another message), so its type is only inferred before
/// the row is written when the BOF buffer filled (`File::DeliverStream`; a gap fills it too,
/// `File::Gap`) or the file reached its announced size (`File::DeliverChunk` ends a complete
/// file); otherwise it is typed when the file is closed at the end, too late for http.log.
pub(super) fn logged_type(
    status: Option<u16>,
    range_first: Option<u64>,
    typed_in_time: bool,
    mime: Option<&'static str>,
) -> Option<&'static str> {
    let mime = file_type(range_first, mime);
    if status == Some(206) && !typed_in_time {
        return None;
    }
    mime
}

/// The size Zeek announces for a body's file (`file_mgr->SetSize`): a 206 reply's whole
/// length from its Content-Range (`instance_length`), else the Content-Length; none when
/// the body is gzip- or deflate-encoded (decoding makes sizes from headers wrong) or the
/// size is 0.
pub(super) fn announced_size(
    encoding: Option<Encoding>,
    partial: Option<Option<u64>>,
    content_length: Option<u64>,
) -> Option<u64> {
    if matches!(encoding, Some(Encoding::Gzip | Encoding::Deflate)) {
        return None;
    }
    match partial {
        Some(total) => total,
        None => content_length,
    }
    .filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Transport;
    use crate::proto::http::HttpAnalyzer;
    use crate::proto::testkit::{conn, Collect};
    use crate::proto::Analyzer;

    fn run(exchanges: &[(Direction, &[u8])]) -> Collect {
        let mut a = HttpAnalyzer::new(conn(Transport::Tcp, 80));
        let mut out = Collect::default();
        for (i, (dir, data)) in exchanges.iter().enumerate() {
            a.data(Timestamp(i as f64), *dir, data, &mut out);
        }
        a.finish(Timestamp(100.0), &mut out);
        out
    }

    /// HTTP_Entity::SubmitData: SetSize(content_length) for an identity body, and the fuid
    /// is the one http.log lists in resp_fuids.
    #[test]
    fn a_response_body_is_one_file_with_its_content_length() {
        let out = run(&[
            (Direction::Orig, b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"),
            (
                Direction::Resp,
                b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nContent-Disposition: attachment; filename=\"a.txt\"\r\n\r\nhello world",
            ),
        ]);
        assert_eq!(out.files.len(), 1);
        let f = &out.files[0];
        assert_eq!((f.source, f.depth, f.dir), ("HTTP", 0, Direction::Resp));
        assert_eq!(
            (f.seen_bytes, f.total_bytes, f.missing_bytes),
            (11, Some(11), 0)
        );
        assert_eq!(f.mime_type, Some("text/plain"));
        assert_eq!(f.filename.as_deref(), Some(&b"a.txt"[..]));
        assert!(out.rows()[0].contains(&f.fuid), "{}", out.rows()[0]);
    }

    /// A gzip body's file has no announced size; an empty body has no file.
    #[test]
    fn encoded_bodies_announce_no_size_and_empty_bodies_no_file() {
        assert_eq!(announced_size(Some(Encoding::Gzip), None, Some(10)), None);
        assert_eq!(announced_size(None, Some(Some(500)), Some(10)), Some(500));
        assert_eq!(announced_size(None, Some(None), Some(10)), None);
        let out = run(&[
            (Direction::Orig, b"GET / HTTP/1.1\r\n\r\n"),
            (
                Direction::Resp,
                b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            ),
        ]);
        assert!(out.files.is_empty());
    }

    /// HTTP_Message::Done: a short 206 body's file stays open, so http.log has no type for
    /// it; a range past offset 0 is never typed; a full BOF buffer is typed in time.
    #[test]
    fn partial_content_types() {
        let reply = |range: &str, body: &[u8]| {
            let mut resp = format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {range}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            resp.extend_from_slice(body);
            let out = run(&[
                (
                    Direction::Orig,
                    b"GET / HTTP/1.1\r\nRange: bytes=0-\r\n\r\n",
                ),
                (Direction::Resp, &resp),
            ]);
            let row = out.rows()[0].clone();
            (row, out.files[0].mime_type)
        };
        let (row, file) = reply("0-15/100", b"some plain text.");
        assert!(row.ends_with("\t-"), "{row}");
        assert_eq!(file, Some("text/plain"));
        let (row, file) = reply("0-15/16", b"some plain text.");
        assert!(row.ends_with("\ttext/plain"), "{row}");
        assert_eq!(file, Some("text/plain"));
        let (row, file) = reply("10-25/100", b"some plain text.");
        assert!(row.ends_with("\t-"), "{row}");
        assert_eq!(file, None);
        let big = vec![b'a'; 5000];
        let (row, file) = reply("0-4999/9000", &big);
        assert!(row.ends_with("\ttext/plain"), "{row}");
        assert_eq!(file, Some("text/plain"));
    }

    /// File::Gap: a gap marks a 206 body's BOF buffer full, so it is typed for http.log.
    #[test]
    fn a_gap_types_a_partial_body_in_time() {
        let mut a = HttpAnalyzer::new(conn(Transport::Tcp, 80));
        let mut out = Collect::default();
        a.data(
            Timestamp(1.0),
            Direction::Orig,
            b"GET / HTTP/1.1\r\n\r\n",
            &mut out,
        );
        a.data(
            Timestamp(1.1),
            Direction::Resp,
            b"HTTP/1.1 206 Partial\r\nContent-Range: bytes 0-29/100\r\nContent-Length: 30\r\n\r\nsome plain text",
            &mut out,
        );
        a.gap(Timestamp(1.2), Direction::Resp, 15, &mut out);
        a.finish(Timestamp(2.0), &mut out);
        assert!(out.rows()[0].ends_with("\ttext/plain"), "{}", out.rows()[0]);
    }

    /// A gap inside a Content-Length body counts as missing bytes of its file.
    #[test]
    fn a_gap_in_the_body_is_missing_bytes() {
        let mut a = HttpAnalyzer::new(conn(Transport::Tcp, 80));
        let mut out = Collect::default();
        a.data(
            Timestamp(1.0),
            Direction::Orig,
            b"GET / HTTP/1.1\r\n\r\n",
            &mut out,
        );
        a.data(
            Timestamp(1.1),
            Direction::Resp,
            b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n0123456789",
            &mut out,
        );
        a.gap(Timestamp(1.2), Direction::Resp, 10, &mut out);
        a.finish(Timestamp(2.0), &mut out);
        assert_eq!(out.files.len(), 1);
        let f = &out.files[0];
        assert_eq!(
            (f.seen_bytes, f.total_bytes, f.missing_bytes),
            (10, Some(20), 10)
        );
    }
}
