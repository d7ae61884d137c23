//! The RFC 6587 decoder on arbitrary bytes, fed in chunks whose size the input picks.
#![no_main]

use bytes::BytesMut;
use estuary_wire::framing::SyslogDecoder;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, data)) = data.split_first() else {
        return;
    };
    let max_len = 64;
    let mut decoder = SyslogDecoder::new(max_len);
    let mut buf = BytesMut::new();
    for piece in data.chunks(usize::from(chunk).max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(Ok(message))) => assert!(message.len() <= max_len),
                Ok(Some(Err(_skipped))) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }
    while let Ok(Some(_)) = decoder.decode_eof(&mut buf) {}
});
