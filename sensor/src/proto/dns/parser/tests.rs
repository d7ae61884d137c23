use super::*;
use proptest::prelude::*;

fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    m
}

#[test]
fn parses_question_lowercased() {
    let m = parse_message(&query(7, "WWW.Example.com", 1)).unwrap();
    assert_eq!(m.header.id, 7);
    assert!(m.header.rd);
    assert!(!m.header.qr);
    assert_eq!(m.questions[0].name, b"www.example.com");
    assert_eq!(m.questions[0].qtype, 1);
    assert!(m.error.is_none());
}

#[test]
fn renders_answers_with_compression() {
    let mut m = query(7, "a.example", 1);
    m[2] = 0x81;
    m[3] = 0x80;
    m[7] = 3; // ancount
              // A 10.0.0.1, CNAME -> pointer to name, TXT "hi" "you"
    m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1]);
    m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 12]);
    m.extend_from_slice(&[0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, 7, 2, b'h', b'i']);
    m.extend_from_slice(&[3, b'y', b'o', b'u']);
    let parsed = parse_message(&m).unwrap();
    let rendered: Vec<_> = parsed
        .answers
        .iter()
        .filter_map(|a| a.rendered.clone())
        .collect();
    assert_eq!(
        rendered,
        vec![
            b"10.0.0.1".to_vec(),
            b"a.example".to_vec(),
            b"TXT 2 hi TXT 3 you".to_vec()
        ]
    );
    assert_eq!(parsed.answers[0].ttl, 60);
}

#[test]
fn truncated_answer_keeps_earlier_records() {
    let mut m = query(7, "a.example", 1);
    m[2] = 0x81;
    m[7] = 2;
    m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1]);
    m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0]);
    let parsed = parse_message(&m).unwrap();
    assert_eq!(parsed.answers.len(), 1);
    assert_eq!(parsed.error, Some(ParseError::Truncated));
}

#[test]
fn pointer_loop_is_an_error() {
    let mut m = vec![0u8; 12];
    m[5] = 1;
    m.extend_from_slice(&[0xc0, 12]);
    assert_eq!(read_name(&m, 12), Err(ParseError::BadName));
    assert_eq!(parse_message(&m).unwrap().error, Some(ParseError::BadName));
}

#[test]
fn short_header() {
    assert_eq!(parse_message(&[0; 11]), Err(ParseError::ShortHeader));
}

#[test]
fn dynamic_update_forms() {
    // zone a.b; prerequisite "name not in use"; updates: delete RRset, add CNAME, add A
    let mut m = vec![0, 1, 0x28, 0, 0, 1, 0, 1, 0, 3, 0, 0];
    m.extend_from_slice(&[1, b'a', 1, b'b', 0, 0, 6, 0, 1]);
    m.extend_from_slice(&[0xc0, 12, 0, 255, 0, 254, 0, 0, 0, 0, 0, 0]);
    m.extend_from_slice(&[0xc0, 12, 0, 28, 0, 255, 0, 0, 0, 0, 0, 0]);
    m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 12]);
    m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 9]);
    let parsed = parse_message(&m).unwrap();
    let rendered: Vec<String> = parsed
        .answers
        .iter()
        .filter_map(|a| a.rendered.clone())
        .map(|r| String::from_utf8(r).unwrap())
        .collect();
    assert_eq!(
        rendered,
        vec![
            "pre: NameNotInUse a.b",
            "del: RRSet AAAA",
            "add: a.b",
            "add: A a.b 10.0.0.9"
        ]
    );
}

#[test]
fn unhandled_types_leave_no_answer() {
    let mut m = query(7, "a.example", 13);
    m[2] = 0x81;
    m[7] = 1;
    m.extend_from_slice(&[0xc0, 12, 0, 13, 0, 1, 0, 0, 0, 60, 0, 4, 1, b'x', 1, b'y']);
    let parsed = parse_message(&m).unwrap();
    assert_eq!(parsed.answers[0].rendered, None);
}

#[test]
fn netbios_names() {
    assert_eq!(
        decode_netbios_name(b"fhepfcelehfcepfffacacacacacacabl"),
        b"WORKGROUP"
    );
    assert_eq!(
        decode_netbios_name(b"abacfpfpenfdecfcepfhfdeffpfpacab"),
        b"\x01\x02__MSBROWSE__\x02"
    );
    assert_eq!(decode_netbios_name(b"short"), b"");
}

#[test]
fn names_of_codes() {
    assert_eq!(qtype_name(65534), "query-65534");
    assert_eq!(qtype_name(255), "*");
    assert_eq!(rcode_name(8), "NXRRSet");
    assert_eq!(opcode_name(5), "dynamic-update");
    assert_eq!(qclass_name(1), "C_INTERNET");
}

proptest! {
    #[test]
    fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse_message(&data);
    }

    #[test]
    fn never_panics_after_valid_header(tail in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 2, 0, 5, 0, 3, 0, 1];
        m.extend_from_slice(&tail);
        let _ = parse_message(&m);
        m[2] = 0x28; // update
        let _ = parse_message(&m);
    }
}
