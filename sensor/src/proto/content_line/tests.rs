use super::*;

fn lines(r: &mut ContentLines) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| r.line(100).map(|l| l.text)).collect()
}

#[test]
fn crlf_lone_lf_and_lone_cr_end_lines() {
    let mut r = ContentLines::default();
    r.extend(b"ab\r\ncd\nef\rgh");
    assert_eq!(
        lines(&mut r),
        vec![b"ab".to_vec(), b"cd".to_vec(), b"ef".to_vec()]
    );
    assert!(
        r.ends().take_single_cr(),
        "the byte after a lone CR is the weird"
    );
    r.extend(b"\n");
    assert_eq!(lines(&mut r), vec![b"gh".to_vec()]);
    assert!(!r.ends().take_single_cr());
}

/// A CR ending a packet ends its line at once; the LF opening the next one is dropped, and
/// no weird is due.
#[test]
fn a_cr_at_a_packet_end_and_its_lf_in_the_next() {
    let mut r = ContentLines::default();
    r.extend(b"GET / HTTP/1.1\r");
    assert_eq!(lines(&mut r), vec![b"GET / HTTP/1.1".to_vec()]);
    r.extend(b"\nHost: x\r\n");
    assert_eq!(lines(&mut r), vec![b"Host: x".to_vec()]);
    assert!(!r.ends().take_single_cr());
}

/// CR CR ends a line and an empty one: the second CR ends a line, so it is no weird; the
/// byte after it is.
#[test]
fn cr_cr_is_two_line_ends() {
    let mut r = ContentLines::default();
    r.extend(b"a\r\r");
    assert_eq!(lines(&mut r), vec![b"a".to_vec(), Vec::new()]);
    assert!(!r.ends().take_single_cr());
    r.extend(b"b\n");
    assert_eq!(lines(&mut r), vec![b"b".to_vec()]);
    assert!(r.ends().take_single_cr());
}

/// HTTP does not make its content line analyzers NUL-sensitive: a NUL is a line byte.
#[test]
fn a_nul_stays_in_the_line() {
    let mut r = ContentLines::default();
    r.extend(b"a\0b\n");
    assert_eq!(lines(&mut r), vec![b"a\0b".to_vec()]);
}

/// Plain delivery after a line ended by a CR: an LF right after is dropped first, and the
/// plain bytes clear the CR (no weird).
#[test]
fn plain_delivery_after_a_lone_cr() {
    let mut r = ContentLines::default();
    r.extend(b"h\r");
    assert_eq!(r.line(100).unwrap().text, b"h");
    r.extend(b"\nbody");
    assert_eq!(r.take(2), b"bo");
    assert_eq!(r.take_all(), b"dy");
    let mut r = ContentLines::default();
    r.extend(b"h\rbody");
    assert_eq!(r.line(100).unwrap().text, b"h");
    assert_eq!(r.take_all(), b"body");
    assert!(!r.ends().take_single_cr());
}

#[test]
fn an_open_line_grows_across_packets_up_to_the_cap() {
    let mut r = ContentLines::default();
    r.extend(b"abc");
    assert_eq!(r.line(100), None);
    assert!(r.available().is_empty(), "the open line holds its bytes");
    r.extend(b"defgh");
    let l = r.line(4).unwrap();
    assert!(l.overflow);
    assert_eq!(l.text, b"abcd");
}
