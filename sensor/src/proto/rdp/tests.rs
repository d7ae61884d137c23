use super::parser::{self, Found, Malformed};
use super::*;
use crate::proto::testkit::{conn, feed, Collect};

fn tpkt(cotp: &[u8]) -> Vec<u8> {
    let len = u16::try_from(cotp.len() + 4).expect("short record");
    let mut out = vec![3, 0];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(cotp);
    out
}

fn le32(v: u32) -> [u8; 4] {
    v.to_le_bytes()
}

/// An MCS Connect Response whose Server Security Data carries `cert` (version and body).
fn server_response(method: u32, level: u32, cert: &[u8]) -> Vec<u8> {
    let mut d = vec![0x02, 0xf0, 0x80, 0x7f, 0x66, 0x82, 0x01, 0x00];
    d.extend_from_slice(&[0x0a, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x02, 0x02, 0x01]);
    d.extend_from_slice(&[0x04, 0x82, 0x00, 0x00]);
    d.extend_from_slice(&[0x00, 0x05, 0x00, 0x14, 0x7c, 0x00, 0x01, 0x2a]);
    d.extend_from_slice(&[0x14, 0x76, 0x0a, 0x01, 0x01, 0x00, 0x01, 0xc0, 0x00]);
    d.extend_from_slice(b"McDn");
    d.extend_from_slice(&[0x00, 0x00]);
    // Server Core Data, then the security block.
    d.extend_from_slice(&[0x01, 0x0c, 0x0c, 0x00, 0x04, 0x00, 0x08, 0x00, 0, 0, 0, 0]);
    let mut sec = Vec::new();
    sec.extend_from_slice(&le32(method));
    sec.extend_from_slice(&le32(level));
    sec.extend_from_slice(&le32(4));
    sec.extend_from_slice(&le32(u32::try_from(cert.len()).expect("short")));
    sec.extend_from_slice(&[9, 9, 9, 9]);
    sec.extend_from_slice(cert);
    d.extend_from_slice(&[0x02, 0x0c]);
    d.extend_from_slice(&u16::try_from(sec.len() + 4).expect("short").to_le_bytes());
    d.extend_from_slice(&sec);
    tpkt(&d)
}

/// A version 2 (X.509) server certificate, not permanently issued, with this chain.
fn x509_chain(certs: &[&[u8]]) -> Vec<u8> {
    let mut c = le32(0x8000_0002).to_vec();
    c.extend_from_slice(&le32(u32::try_from(certs.len()).expect("few")));
    for cert in certs {
        c.extend_from_slice(&le32(u32::try_from(cert.len()).expect("short")));
        c.extend_from_slice(cert);
    }
    c
}

fn parse(record: &[u8]) -> (Found<'_>, Result<(), Malformed>) {
    let mut found = Found::default();
    let r = parser::tpkt(record, &mut found);
    (found, r)
}

#[test]
fn the_server_security_data_holds_the_certificate_chain() {
    let rec = server_response(2, 2, &x509_chain(&[b"first", b"second"]));
    let (found, r) = parse(&rec);
    assert_eq!(r, Ok(()));
    assert!(found.confirmed);
    assert_eq!(found.certs, [&b"first"[..], b"second"]);
    assert_eq!(found.encrypted, Some(0), "RDP's own encryption follows");
    let plain = server_response(0, 0, &x509_chain(&[b"c"]));
    let (found, _) = parse(&plain);
    assert_eq!(found.encrypted, None);
}

/// A certificate type that is neither proprietary nor X.509 has no case in Zeek's record:
/// the GCC response before it has confirmed, the certificate raises the violation.
#[test]
fn an_unknown_certificate_type_is_malformed_after_the_confirmation() {
    let unknown = server_response(1, 1, &le32(7));
    let (found, r) = parse(&unknown);
    assert!(found.confirmed && found.certs.is_empty());
    assert_eq!(r, Err(Malformed));
    let truncated = x509_chain(&[b"first", b"second"]);
    let short = server_response(1, 1, &truncated[..truncated.len() - 1]);
    let (found, r) = parse(&short);
    assert_eq!((found.certs.len(), r), (1, Err(Malformed)));
}

#[test]
fn connect_requests_need_the_cookie() {
    let mut req = vec![0x26, 0xe0, 0, 0, 0, 0, 0];
    req.extend_from_slice(b"Cookie: mstshash=JOHN\r\n");
    req.extend_from_slice(&[1, 0, 8, 0, 3, 0, 0, 0]);
    req[0] = u8::try_from(req.len() - 1).expect("short");
    assert_eq!(parse(&tpkt(&req)).1, Ok(()));
    let mut no_cookie = vec![0x0e, 0xe0, 0, 0, 0, 0, 0];
    no_cookie.extend_from_slice(&[1, 0, 8, 0, 3, 0, 0, 0]);
    assert_eq!(parse(&tpkt(&no_cookie)).1, Err(Malformed));
}

#[test]
fn a_negotiated_security_protocol_goes_encrypted() {
    let confirm = |proto: u32| {
        let mut c = vec![0x0e, 0xd0, 0, 0, 0x12, 0x34, 0, 0x02, 0x00, 0x08, 0x00];
        c.extend_from_slice(&le32(proto));
        tpkt(&c)
    };
    assert_eq!(parse(&confirm(1)).0.encrypted, Some(1));
    assert_eq!(parse(&confirm(0)).0.encrypted, None);
    let bare = tpkt(&[0x06, 0xd0, 0, 0, 0x12, 0x34, 0]);
    assert_eq!(parse(&bare), (Found::default(), Ok(())));
}

fn run(chunks: &[(Direction, &[u8])]) -> Collect {
    feed(new_analyzer, 3389, chunks)
}

#[test]
fn the_connect_response_confirms_across_segments() {
    let rec = server_response(0, 0, &x509_chain(&[b"not der"]));
    let (a, b) = rec.split_at(20);
    let out = run(&[(Direction::Resp, a), (Direction::Resp, b)]);
    assert_eq!(out.services, ["rdp"]);
    assert!(
        out.records.is_empty(),
        "a chain entry that is no certificate"
    );
    assert!(out.violations.is_empty());
}

#[test]
fn nothing_is_parsed_after_tls_is_selected_or_a_violation() {
    let mut confirm = vec![0x0e, 0xd0, 0, 0, 0x12, 0x34, 0, 0x02, 0x00, 0x08, 0x00];
    confirm.extend_from_slice(&le32(1));
    let response = server_response(0, 0, &x509_chain(&[b"c"]));
    let out = run(&[
        (Direction::Resp, &tpkt(&confirm)),
        (Direction::Resp, &response),
    ]);
    assert!(out.services.is_empty() && out.violations.is_empty());
    let out = run(&[
        (
            Direction::Orig,
            &tpkt(&[0x0e, 0xe0, 0, 0, 0, 0, 0, 1, 0, 8, 0, 3, 0, 0, 0]),
        ),
        (Direction::Resp, &response),
    ]);
    assert_eq!(out.violations, ["rdp"]);
    assert!(out.services.is_empty());
}

#[test]
fn probe_follows_zeeks_client_signature() {
    let req = b"\x03\x00\x00\x2f\x2a\xe0\x00\x00\x00\x00\x00Cookie: mstshash=JOHN\r\n";
    assert!(probe(Direction::Orig, req));
    assert!(!probe(Direction::Resp, req));
    assert!(probe(Direction::Orig, b"\x7f\x65..Duca....rdpsnd"));
    assert!(!probe(Direction::Orig, b"Duca\nrdpsnd"));
    assert!(!probe(Direction::Orig, b"\x03\x00\x00\x13\x0e\xe0"));
}

#[test]
fn random_input_never_panics() {
    use proptest::prelude::*;
    proptest!(|(chunks in proptest::collection::vec(
        (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..300)), 0..8))| {
        let mut a = new_analyzer(&conn(Transport::Tcp, 3389));
        let mut out = Collect::default();
        for (orig, data) in &chunks {
            let dir = if *orig { Direction::Orig } else { Direction::Resp };
            // Well-formed TPKT headers, so that the records' contents get parsed.
            let mut rec = vec![3, 0];
            rec.extend_from_slice(&u16::try_from(data.len() + 4).unwrap_or(4).to_be_bytes());
            rec.extend_from_slice(data);
            a.data(Timestamp(1.0), dir, &rec, &mut out);
            let mut found = Found::default();
            let _ = parser::tpkt(data, &mut found);
        }
        a.finish(Timestamp(2.0), &mut out);
    });
}
