use super::*;

#[test]
fn every_signature_compiles() {
    assert_eq!(compiled().len(), signatures::SIGNATURES.len());
}

/// file-plaintext (-20) loses to every other match; file-json (1) and file-html (49) win
/// over it.
#[test]
fn text_signatures_by_strength() {
    assert_eq!(detect(b"hello world, plain"), Some("text/plain"));
    assert_eq!(detect(b"{\"users\": [1, 2]}"), Some("text/json"));
    assert_eq!(detect(b"[\"a\", \"b\"]"), Some("text/json"));
    assert_eq!(detect(b"  {}  "), Some("text/json"));
    assert_eq!(detect(b"{not json at all}"), Some("text/plain"));
    assert_eq!(
        detect(b"\r\n<!DOCTYPE html PUBLIC \"-//W3C//DTD\">"),
        Some("text/html")
    );
    assert_eq!(detect(b"<!-- c -->\n<html>"), Some("text/html"));
    assert_eq!(detect(b"<title>x</title>"), Some("text/html"));
}

/// An XML declaration before an HTML root is file-xhtml (100), a bare one file-xml (10).
#[test]
fn xml_declarations() {
    assert_eq!(
        detect(b"<?xml version=\"1.0\"?>\n<!DOCTYPE html>"),
        Some("text/html")
    );
    assert_eq!(
        detect(b"<?xml version=\"1.0\"?>\n<a/>"),
        Some("application/xml")
    );
    assert_eq!(detect(b"<?xml \n<rss>"), Some("application/xml"));
}

/// Patterns are anchored at the start, and `.` does not match a newline.
#[test]
fn anchoring_and_dot() {
    assert_eq!(detect(b"xxMZ"), None);
    assert_eq!(detect(b"MZ\x90\x00"), Some("application/x-dosexec"));
    assert_eq!(detect(b"RIFF\x10\x00\x00\x00WEBPVP8 "), Some("image/webp"));
    assert_eq!(detect(b"RIFF\n\x00\x00\x00WEBPVP8 "), None);
}

/// Equal strengths: the lexicographically smallest MIME type.
#[test]
fn ties_pick_the_smallest_type() {
    // file-zip (10) and file-xml (10) cannot both match; PNG (110) matches twice.
    assert_eq!(detect(b"\x89PNG\r\n\x1a\n\x00\x00"), Some("image/png"));
    assert_eq!(detect(b"GIF89a\x01\x00"), Some("image/gif"));
    assert_eq!(detect(b"\xff\xd8\xff\xe0"), Some("image/jpeg"));
    assert_eq!(detect(b"%PDF-1.4"), Some("application/pdf"));
}

/// Only the BOF buffer is looked at; an empty buffer has no type.
#[test]
fn only_the_bof_buffer_counts() {
    assert_eq!(detect(b""), None);
    let mut long = vec![b' '; BOF_BUFFER_SIZE];
    long.extend_from_slice(b"{}");
    assert_eq!(detect(&long), Some("text/plain"));
    assert_eq!(detect(&[0u8, 1, 2, 3, 200]), None);
}
