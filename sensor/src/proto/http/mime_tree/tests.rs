use super::*;
use crate::proto::http::testing;
use proptest::prelude::*;

fn feed(tree: &mut MimeTree, text: &[u8]) {
    let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    let last = lines.pop().unwrap_or_default();
    for l in lines {
        tree.deliver(l, true);
    }
    if !last.is_empty() {
        tree.deliver(last, false);
    }
}

/// Python's email package nesting (a boundary is matched as a prefix, so none is a prefix
/// of another): each level a text part and a `message/rfc822` part whose
/// body is the next level's multipart.
fn nested(levels: usize) -> Vec<u8> {
    let mut inner = Vec::new();
    for k in (1..=levels).rev() {
        let mut level = format!(
            "Content-Type: multipart/mixed; boundary=\"b{k}.\"\n\n--b{k}.\nContent-Type: text/plain\n\nPart number {k}\n\n--b{k}.\nContent-Type: message/rfc822\n\n"
        )
        .into_bytes();
        level.extend_from_slice(&inner);
        level.extend_from_slice(format!("\n--b{k}.--\n").as_bytes());
        inner = level;
    }
    inner
}

/// Leaves at every depth are files; a part's last CRLF belongs to the boundary.
#[test]
fn nested_multiparts_recurse_into_their_leaves() {
    let mut t = MimeTree::new(0, b"message/rfc822").unwrap();
    feed(&mut t, &nested(3));
    t.finish();
    let parts = t.take_parts();
    let heads: Vec<&[u8]> = parts.iter().map(|p| &p.head[..]).collect();
    assert_eq!(
        heads,
        [
            &b"Part number 1\r\n"[..],
            b"Part number 2\r\n",
            b"Part number 3\r\n"
        ]
    );
    assert!(t.take_refused().is_empty());
}

/// `MIME_Entity::BeginChildEntity`: an entity at depth `MIME::max_depth` gets no child, once
/// for the `message/rfc822` whose body would be it; nothing below is read.
#[test]
fn children_stop_at_the_max_depth() {
    let mut t = MimeTree::new(0, b"message/rfc822").unwrap();
    feed(&mut t, &nested(60));
    t.finish();
    // Depth 2k holds level k's text part: levels 1 to 50 fit in depth 100.
    assert_eq!(t.take_parts().len(), 50);
    assert_eq!(t.take_refused(), [MAX_DEPTH]);
}

/// A multipart type without a boundary, or a leaf type, is no container.
#[test]
fn only_messages_and_multiparts_with_a_boundary_nest() {
    assert!(MimeTree::new(1, b"multipart/mixed").is_none());
    assert!(MimeTree::new(1, b"text/plain").is_none());
    assert!(MimeTree::new(1, b"Message/Partial").is_some());
}

/// Lines after a closing boundary, and an unclosed part at the end, are handled as Zeek's
/// `EndOfData` does: the epilogue is dropped, the open part is a file.
#[test]
fn epilogue_and_unclosed_parts() {
    let mut t = MimeTree::new(1, b"multipart/form-data; boundary=x").unwrap();
    feed(&mut t, b"pre\n--x\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\n\nA\n--x--\nafter\n--x\n\nB\n");
    t.finish();
    let parts = t.take_parts();
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].filename.as_deref(), Some(&b"a.txt"[..]));
    assert_eq!(parts[0].head, b"A");
}

/// A POST of type `message/rfc822` nested 60 levels: 50 leaves are files, of which http.log
/// lists 15 (`HTTP::max_files_orig`); the refused child is one `exceeded_mime_max_depth` with
/// the depth as addl, from HTTP, and marks the analysis partial (the history's 'X').
#[test]
fn an_http_body_nested_past_the_max_depth() {
    use crate::proto::http::encoding::Encoding;
    use crate::proto::http::nested::Nested;

    let body: Vec<u8> = nested(60)
        .split(|&b| b == b'\n')
        .flat_map(|l| [l, b"\r\n"].concat())
        .collect();
    let mut n = Nested::new(Encoding::Identity, None);
    n.feed(&body, &mut Default::default());
    let weirds = n.take_weirds();
    assert_eq!(
        weirds,
        [("exceeded_mime_max_depth", Some("100".to_string()), "HTTP")]
    );
    assert!(n.take_limit_reached());
    assert!(!n.take_limit_reached(), "reported once");

    let out = testing::post(
        "Content-Type: message/rfc822\r\n",
        &body,
        Some(testing::OK_EMPTY),
    );
    assert_eq!(out.weirds, ["exceeded_mime_max_depth"]);
    assert_eq!(out.partial, 1);
    assert_eq!(out.files.len(), 50);
    let row = &out.rows()[0];
    let mime_types = row.split('\t').nth(20).unwrap_or_default();
    assert_eq!(mime_types, vec!["text/plain"; 15].join(","));
}

proptest! {
    #[test]
    fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut t = MimeTree::new(1, b"multipart/mixed; boundary=b").unwrap();
        feed(&mut t, &data);
        feed(&mut t, b"--b\nContent-Type: message/rfc822\n\nContent-Type: multipart/x; boundary=b\n\n--b\n\nx\n");
        t.finish();
        prop_assert!(t.take_parts().len() <= MAX_PARTS);
    }
}
