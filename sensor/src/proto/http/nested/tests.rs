use super::*;
use crate::proto::http::testing;
use crate::proto::testkit::Collect;

/// A gzip stream of one stored block holding `text` (what the deflate of tiny data can be).
fn gzip_stored(text: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 1];
    let n = u16::try_from(text.len()).unwrap();
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&(!n).to_le_bytes());
    out.extend_from_slice(text);
    out
}

fn post(content_type: &str, encoding: &str, body: &[u8]) -> Collect {
    let headers = format!("Content-Type: {content_type}\r\n{encoding}");
    testing::post(&headers, body, Some(testing::OK_EMPTY))
}

fn request_body_len(out: &Collect) -> String {
    out.rows()[0]
        .split('\t')
        .nth(8)
        .unwrap_or_default()
        .to_string()
}

/// A gzip'd `message/*` body: each line's content, without its end, goes through the
/// decompressor, whose output is the body length, and reaches the nested entity without a
/// CRLF while it reads its headers, where a Transfer-Encoding is a weird.
#[test]
fn a_gzipped_message_body_is_a_nested_entity() {
    let text = b"MIME-Version: 1.0\r\nTransfer-Encoding: chunked\r\n\0\r\nB0001!!!\nBoom?\n";
    let out = post(
        "message/rfc822",
        "Content-Encoding: gzip\r\n",
        &gzip_stored(text),
    );
    // 17 + 26 + 1 + 8 + 5 bytes come out of the lines, without their ends.
    assert_eq!(request_body_len(&out), "57");
    assert_eq!(
        out.weirds,
        vec![
            "http_no_crlf_in_header_list".to_string(),
            "HTTP_nested_transfer_encoding_header".to_string()
        ]
    );
    assert_eq!(out.files.len(), 1, "the nested entity's data is a file");
    assert_eq!(out.files[0].seen_bytes, 13);
}

/// Without a content encoding each line counts 2 for its end, and the nested entity gets
/// whole lines: no weird for its headers, and its body lines keep their CRLF.
#[test]
fn a_plain_message_body_counts_lines() {
    let body = b"Subject: hi\r\nTransfer-Encoding: chunked\r\n\r\nhello\nworld\r\n";
    let out = post("Message/partial; id=1", "", body);
    assert_eq!(request_body_len(&out), (body.len() + 1).to_string());
    assert_eq!(
        out.weirds,
        vec!["HTTP_nested_transfer_encoding_header".to_string()]
    );
    assert_eq!(out.files[0].seen_bytes, 14);
    let out = post("text/plain", "", body);
    assert_eq!(request_body_len(&out), body.len().to_string());
    assert!(out.weirds.is_empty());
}

/// `HTTP_Entity::Deliver`: the entity ends when its count of lines (2 for each end) reaches
/// the Content-Length, and what follows is the next request.
#[test]
fn the_line_count_ends_the_entity() {
    let mut n = Nested::new(Encoding::Identity, Some(6));
    assert_eq!(n.feed(b"a\nb\nGET", &mut LineEnds::default()), 4);
    assert_eq!(n.body_len(), 6);
    assert!(n.take_weirds().is_empty());
}

/// A lone CR ends a line, with the content line analyzer's weird due.
#[test]
fn a_lone_cr_ends_a_line() {
    let mut n = Nested::new(Encoding::Identity, None);
    let mut ends = LineEnds::default();
    n.feed(b"a: b\rc: d\r\n\r\nx", &mut ends);
    n.end_line();
    n.finish();
    assert_eq!(n.body_len(), 4 * 2 + 9);
    assert!(ends.take_single_cr());
    assert_eq!(n.take_parts()[0].len, 3, "x and its CRLF");
}

#[test]
fn field_names() {
    assert_eq!(
        field_name(b"Transfer-Encoding : x"),
        Some(&b"Transfer-Encoding"[..])
    );
    assert_eq!(field_name(b"no colon"), None);
}

/// `HTTP_Entity::SubmitAllHeaders` of the nested entity: its Content-Length makes what
/// follows plain data, counted as it is, without line ends, until it ends or the body does.
#[test]
fn a_nested_content_length_makes_plain_data() {
    let mut n = Nested::new(Encoding::Identity, Some(40));
    let mut ends = LineEnds::default();
    let head = b"Content-Length: 100\r\n\r\n";
    assert_eq!(n.feed(head, &mut ends), head.len());
    assert_eq!(n.feed(b"one\ntwo\r\n", &mut ends), 9);
    assert_eq!(n.body_len(), head.len() as u64 + 9);
    assert!(!n.line_open());
    let mut n = Nested::new(Encoding::Identity, None);
    n.feed(
        b"Content-Length: 2\r\n\r\nabc\r\n",
        &mut LineEnds::default(),
    );
    n.finish();
    assert_eq!(
        n.take_parts()[0].len,
        2,
        "the nested entity ended after 2 bytes"
    );
    assert_eq!(n.body_len(), 21 + 2 + 3);
}
