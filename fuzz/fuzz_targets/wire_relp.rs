//! The RELP codec and the server session on arbitrary bytes.
#![no_main]

use bytes::BytesMut;
use estuary_wire::relp::{Offers, RelpCodec, Response, ServerSession};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let mut codec = RelpCodec::new(256);
    let mut session = ServerSession::new("fuzz");
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = codec.decode(&mut buf) {
        assert!(frame.data.len() <= 256);
        let _ = Response::parse(&frame.data);
        let _ = Offers::parse(&frame.data);
        if session.handle(frame).is_err() {
            break;
        }
    }
});
