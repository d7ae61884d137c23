//! The files of mail messages: each MIME leaf entity's decoded body, as `MIME_Mail::SubmitData`
//! hands it to file analysis from the client's side, described as
//! `base/protocols/smtp/{files,entities}.zeek` do (the file name from the entity's headers,
//! `depth` the connection's count of MIME entities so far).

use crate::files_log::FileInfo;
use crate::flow::{ConnInfo, Direction, Timestamp};

/// The file of a MIME entity: sent by the client, with its place among the connection's
/// entities as `depth`.
pub(super) fn mail_file(
    fuid: String,
    conn: &ConnInfo,
    ts: Timestamp,
    depth: u64,
    filename: Option<Vec<u8>>,
) -> FileInfo {
    FileInfo {
        depth,
        filename,
        ..FileInfo::new(ts, fuid, conn, "SMTP", Direction::Orig)
    }
}

#[cfg(test)]
mod tests {
    use crate::flow::{Direction, Timestamp, Transport};
    use crate::proto::smtp::SmtpAnalyzer;
    use crate::proto::testkit::{conn, Collect};
    use crate::proto::Analyzer;

    /// A transaction up to DATA, then `body` from the client, message not yet ended.
    fn message_begun(body: &[u8]) -> (SmtpAnalyzer, Collect) {
        let mut a = SmtpAnalyzer::new(conn(Transport::Tcp, 25));
        let mut out = Collect::default();
        let steps: [(Direction, &[u8]); 4] = [
            (Direction::Resp, b"220 mx ESMTP\r\n"),
            (
                Direction::Orig,
                b"HELO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n",
            ),
            (Direction::Resp, b"250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
            (Direction::Orig, body),
        ];
        for (i, (dir, data)) in steps.iter().enumerate() {
            a.data(Timestamp(i as f64), *dir, data, &mut out);
        }
        (a, out)
    }

    /// A whole mail with `body`, ended and accepted.
    fn mail(body: &[u8]) -> Collect {
        let (mut a, mut out) = message_begun(body);
        a.data(Timestamp(4.0), Direction::Orig, b".\r\n", &mut out);
        a.data(Timestamp(5.0), Direction::Resp, b"250 queued\r\n", &mut out);
        a.finish(Timestamp(100.0), &mut out);
        out
    }

    /// MIME_Mail::SubmitData: each leaf entity's decoded body is a file from the client, with
    /// the fuid smtp.log lists; entities.zeek: the file name from Content-Disposition and the
    /// depth from the connection's count of mime_begin_entity events.
    #[test]
    fn multipart_entities_are_files_with_names_and_depths() {
        let out = mail(
            b"Subject: s\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
Content-Type: text/plain\r\n\r\nhello\r\nthere\r\n--b\r\nContent-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"a.pdf\"\r\n\r\n\
JVBERi0xLjQK\r\n--b--\r\n",
        );
        let files = &out.files;
        assert_eq!(files.len(), 2, "{files:?}");
        let text = &files[0];
        assert_eq!(
            (text.source, text.depth, text.dir),
            ("SMTP", 2, Direction::Orig)
        );
        assert_eq!((text.seen_bytes, text.mime_type), (12, Some("text/plain")));
        assert_eq!(text.filename, None);
        let pdf = &files[1];
        assert_eq!((pdf.depth, pdf.seen_bytes), (3, 9));
        assert_eq!(pdf.mime_type, Some("application/pdf"));
        assert_eq!(pdf.filename.as_deref(), Some(&b"a.pdf"[..]));
        let row = &out.rows()[0];
        assert!(
            row.contains(&format!("{},{}", text.fuid, pdf.fuid)),
            "{row}"
        );
    }

    /// MIME_Mail::Undelivered: a gap in the message is missing bytes of the current entity's
    /// file, and the message ends there.
    #[test]
    fn a_gap_in_the_message_is_missing_bytes_of_its_file() {
        let (mut a, mut out) = message_begun(b"Subject: s\r\n\r\nsome text\r\n");
        a.gap(Timestamp(5.0), Direction::Orig, 100, &mut out);
        a.finish(Timestamp(10.0), &mut out);
        assert_eq!(out.files.len(), 1, "{:?}", out.files);
        let f = &out.files[0];
        assert_eq!((f.seen_bytes, f.missing_bytes), (11, 100));
        assert_eq!(f.mime_type, Some("text/plain"));
    }

    /// SMTP_Analyzer::Done: a message still open when the connection ends is ended, and so is
    /// its file (the rest of a base64 group included).
    #[test]
    fn an_unfinished_message_ends_with_the_connection() {
        let (mut a, mut out) =
            message_begun(b"Content-Transfer-Encoding: base64\r\n\r\naGVsbG8g\r\nd29y\r\nbA\r\n");
        a.finish(Timestamp(10.0), &mut out);
        assert_eq!(out.files.len(), 1, "{:?}", out.files);
        assert_eq!(out.files[0].seen_bytes, b"hello worl".len() as u64);
        assert!(
            out.rows()[0].ends_with(&out.files[0].fuid),
            "{}",
            out.rows()[0]
        );
    }

    /// A message without MIME structure is one file of depth 1, line ends included.
    #[test]
    fn a_plain_message_is_one_file() {
        let out = mail(b"Subject: s\r\n\r\nline one\r\nline two\r\n");
        assert_eq!(out.files.len(), 1);
        let f = &out.files[0];
        assert_eq!((f.depth, f.seen_bytes, f.total_bytes), (1, 20, None));
        assert_eq!(f.mime_type, Some("text/plain"));
    }

    /// Zeek's SMTP `ContentLine_Analyzer` cuts lines only at 16 MiB: a part of one line of
    /// 40000 bytes is a file of 40000 bytes (the line end before the boundary is the
    /// boundary's), however the sensor takes the line in.
    #[test]
    fn a_long_line_is_one_line() {
        let mut body = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n".to_vec();
        body.extend(std::iter::repeat_n(b'x', 40_000));
        body.extend_from_slice(b"\r\n.\r\n--b--\r\n");
        let out = mail(&body);
        assert_eq!(out.files.len(), 1, "{:?}", out.files);
        assert_eq!(out.files[0].seen_bytes, 40_000);
    }

    /// SMTP_Analyzer::ProcessLine drops the first dot of any data line, not only of `..`.
    #[test]
    fn a_data_lines_leading_dot_is_dropped() {
        let out = mail(b"Subject: s\r\n\r\n.a\r\n..b\r\n");
        assert_eq!(out.files[0].seen_bytes, b"a\r\n.b\r\n".len() as u64);
    }

    /// MIME_Entity::EndOfData: a message whose header section never ends ("entity body
    /// missing") has no body, so no file.
    #[test]
    fn a_message_without_a_blank_line_has_no_file() {
        let out = mail(b"This is a test\r\n");
        assert!(out.files.is_empty(), "{:?}", out.files);
    }
}
