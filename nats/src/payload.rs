//! A stream message's payload travels zstd-compressed. The servers' cost grows with the bytes
//! they receive, store three times and replicate, not with the messages: a batch of syslog
//! messages shrinks about threefold at level 1, for about a second of one core per million
//! lines. A payload without the encoding header is taken as it is, so a reader also takes
//! what an older publisher sent.

use async_nats::HeaderMap;
use bytes::Bytes;

use crate::Error;

pub const ENCODING: &str = "Estuary-Encoding";
const ZSTD: &str = "zstd";
/// zstd's fastest level that still finds the repeats of one batch's syslog envelopes.
const LEVEL: i32 = 1;
/// The largest payload a reader inflates: a message is far smaller (a shipper's holds at most
/// about three 256 KiB batches before compression, an ingest node's 64 KiB), so more means a
/// message that did not come from a publisher of this project.
const MAX_PLAIN: usize = 64 << 20;

/// The compressed payload.
pub fn compress(plain: &[u8]) -> Result<Bytes, Error> {
    zstd::bulk::compress(plain, LEVEL)
        .map(Bytes::from)
        .map_err(|e| Error::Publish(format!("zstd: {e}")))
}

/// Says in the headers that the payload is compressed.
pub fn mark(headers: &mut HeaderMap) {
    headers.insert(ENCODING, ZSTD);
}

/// The plain payload of a delivered message.
pub fn decompress(headers: Option<&HeaderMap>, payload: &Bytes) -> Result<Bytes, Error> {
    match headers.and_then(|h| h.get(ENCODING)).map(|v| v.as_str()) {
        None => Ok(payload.clone()),
        Some(ZSTD) => zstd::bulk::decompress(payload, MAX_PLAIN)
            .map(Bytes::from)
            .map_err(|e| Error::Malformed(format!("zstd payload: {e}"))),
        Some(other) => Err(Error::Malformed(format!("{ENCODING}: {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marked() -> HeaderMap {
        let mut h = HeaderMap::new();
        mark(&mut h);
        h
    }

    #[test]
    fn a_compressed_payload_comes_back_whole_and_smaller() {
        let plain: Vec<u8> = (0..2000)
            .flat_map(|n| {
                format!("<190>1 - s1 conn - - [origin@32473 file=\"07\" off=\"{n}\"] line {n}\n")
                    .into_bytes()
            })
            .collect();
        let packed = compress(&plain).unwrap();
        assert!(
            packed.len() * 3 < plain.len(),
            "{} of {}",
            packed.len(),
            plain.len()
        );
        assert_eq!(decompress(Some(&marked()), &packed).unwrap(), plain);
    }

    #[test]
    fn a_payload_without_the_header_is_taken_as_it_is() {
        let plain = Bytes::from_static(b"<13>1 - s1 conn - - - a\n");
        assert_eq!(decompress(None, &plain).unwrap(), plain);
        assert_eq!(decompress(Some(&HeaderMap::new()), &plain).unwrap(), plain);
    }

    #[test]
    fn garbage_an_unknown_encoding_and_a_bomb_are_refused() {
        let garbage = Bytes::from_static(b"\x28\xb5\x2f\xfd not zstd at all");
        assert!(matches!(
            decompress(Some(&marked()), &garbage),
            Err(Error::Malformed(_))
        ));
        let mut h = HeaderMap::new();
        h.insert(ENCODING, "lz4");
        assert!(matches!(
            decompress(Some(&h), &Bytes::new()),
            Err(Error::Malformed(_))
        ));
        let bomb = compress(&vec![b'a'; MAX_PLAIN + 1]).unwrap();
        assert!(matches!(
            decompress(Some(&marked()), &bomb),
            Err(Error::Malformed(_))
        ));
    }
}
