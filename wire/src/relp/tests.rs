use super::*;
use crate::test_util::decode_all;
use proptest::prelude::*;

const SOFTWARE: &str = "librelp,1.2.16,http://librelp.adiscon.com";

fn encoded(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::new();
    frame.encode(&mut out);
    out
}

#[test]
fn librelp_open_exchange_byte_for_byte() {
    let open = Frame::new(
        Txnr::FIRST,
        Command::Open,
        Offers::librelp(SOFTWARE).to_bytes(),
    );
    assert_eq!(
        encoded(&open),
        b"1 open 86 relp_version=0\nrelp_software=librelp,1.2.16,\
          http://librelp.adiscon.com\ncommands=syslog\n"
    );
    let offers = Offers::parse(&open.data).unwrap();
    assert_eq!(offers.get("relp_version"), Some(&["0".to_owned()][..]));
    assert!(offers.supports(&Command::Syslog));
    assert!(!offers.supports(&Command::StartTls));

    let rsp = Response::open_ok(&offers).to_frame(open.txnr);
    let wire = encoded(&rsp);
    assert!(
        wire.starts_with(b"1 rsp 93 200 OK\nrelp_version=0\n"),
        "{wire:?}"
    );
    let parsed = Response::parse(&rsp.data).unwrap();
    assert!(parsed.is_ok());
    assert_eq!(Offers::parse(&parsed.data).unwrap(), offers);
}

#[test]
fn decodes_syslog_close_and_rsp() {
    let input: &[u8] = b"2 syslog 64 <167>2015-03-01T01:00:00-07:00 172.20.245.8 tag \
        msgnum:00000401:\n3 close 0\n0 serverclose 0\n3 rsp 20 500 command disabled\n";
    let frames = decode_all(&mut RelpCodec::default(), &[input]).unwrap();
    assert_eq!(frames.len(), 4);
    assert_eq!(frames[0].command, Command::Syslog);
    assert_eq!(frames[0].data.len(), 64);
    assert_eq!(frames[1], Frame::new(Txnr(3), Command::Close, Bytes::new()));
    assert_eq!(frames[2].txnr, Txnr::HINT);
    assert_eq!(frames[2].command, Command::ServerClose);
    let rsp = Response::parse(&frames[3].data).unwrap();
    assert_eq!(rsp, Response::error("command disabled"));
    for frame in &frames {
        let mut re = BytesMut::new();
        RelpCodec::default().encode(frame, &mut re).unwrap();
        assert_eq!(
            decode_all(&mut RelpCodec::default(), &[&re]).unwrap(),
            vec![frame.clone()]
        );
    }
}

#[test]
fn unknown_command_is_kept() {
    let frames = decode_all(&mut RelpCodec::default(), &[b"7 fancy 1 x\n"]).unwrap();
    assert_eq!(frames[0].command, Command::Other("fancy".into()));
}

#[test]
fn txnr_wraps_to_one() {
    assert_eq!(Txnr::new(999_999_999).unwrap().next(), Txnr::FIRST);
    assert_eq!(Txnr::FIRST.next().get(), 2);
    assert_eq!(Txnr::new(1_000_000_000), None);
}

#[test]
fn errors_are_clear_and_bounded() {
    let err = |input: &[u8]| decode_all(&mut RelpCodec::new(100), &[input]).unwrap_err();
    assert!(matches!(
        err(b"1234567890 open 0\n"),
        RelpError::BadHeader {
            field: HeaderField::Txnr,
            ..
        }
    ));
    assert!(matches!(
        err(b"1 op3n 0\n"),
        RelpError::BadHeader {
            field: HeaderField::Command,
            ..
        }
    ));
    assert!(matches!(
        err(b"1 open 0 \n"),
        RelpError::BadHeader {
            field: HeaderField::DataLen,
            ..
        }
    ));
    assert!(matches!(
        err(b"1 open 2\nab\n"),
        RelpError::BadHeader {
            field: HeaderField::DataLen,
            ..
        }
    ));
    assert!(matches!(
        err(b"1 syslog 101 "),
        RelpError::TooLarge {
            len: 101,
            max_len: 100
        }
    ));
    assert!(matches!(
        err(b"1 syslog 2 abX"),
        RelpError::BadTrailer { found: b'X', .. }
    ));
    assert!(matches!(
        err(b"1 syslog 5 ab"),
        RelpError::Truncated { buffered: 13 }
    ));
    let long = format!("1 {} 0\n", "a".repeat(33));
    assert!(matches!(
        err(long.as_bytes()),
        RelpError::BadHeader {
            field: HeaderField::Command,
            ..
        }
    ));
    let e = err(b"x");
    assert!(e.to_string().contains("bad Txnr"), "{e}");
}

#[test]
fn rsp_parse_rejects_garbage() {
    assert!(Response::parse(b"20 OK").is_err());
    assert!(Response::parse(b"200OK").is_err());
    assert_eq!(Response::parse(b"200").unwrap().status, Status::Ok);
}

fn arb_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        Just(Command::Open),
        Just(Command::Syslog),
        Just(Command::Rsp),
        Just(Command::Close),
        Just(Command::ServerClose),
        "[a-z]{1,32}".prop_map(|s| Command::from_name(s.as_bytes()).unwrap()),
    ]
}

proptest! {
    #[test]
    fn frames_round_trip_across_chunks(
        frames in prop::collection::vec(
            (0u32..=MAX_TXNR, arb_command(), prop::collection::vec(any::<u8>(), 0..50)),
            0..10),
        chunk in 1usize..40,
    ) {
        let frames: Vec<Frame> = frames
            .into_iter()
            .map(|(t, c, d)| Frame::new(Txnr(t), c, d))
            .collect();
        let mut wire = Vec::new();
        for f in &frames {
            f.encode(&mut wire);
        }
        let chunks: Vec<&[u8]> = wire.chunks(chunk).collect();
        prop_assert_eq!(decode_all(&mut RelpCodec::new(50), &chunks).unwrap(), frames);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..200), chunk in 1usize..30) {
        let chunks: Vec<&[u8]> = data.chunks(chunk).collect();
        if let Ok(frames) = decode_all(&mut RelpCodec::new(64), &chunks) {
            for f in frames {
                prop_assert!(f.data.len() <= 64);
            }
        }
        let _ = Response::parse(&data);
        let _ = Offers::parse(&data);
    }

    #[test]
    fn header_like_garbage_never_panics(s in "[0-9]{0,11}[ \n]?[a-z0-9]{0,34}[ \n]?[0-9]{0,11}[ \n]?.{0,5}") {
        let _ = decode_all(&mut RelpCodec::new(64), &[s.as_bytes()]);
    }
}
