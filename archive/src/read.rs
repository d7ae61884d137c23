//! Finding the members of an archive and decoding one.

use std::io::Read;
use std::ops::Range;

use flate2::read::MultiGzDecoder;

use crate::member::{extent, Extent};

/// The byte ranges of `data` that decode independently, in order. A member whose header records
/// its length is one range; from the first member that does not (an archive from another writer,
/// or a damaged header) the rest of the file is one range, decoded as a stream. A length running
/// past the end (a truncated file) also ends the list with the rest, so that [`decoder`] recovers
/// what it can and reports the damage.
pub fn members(data: &[u8]) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut at = 0;
    while at < data.len() {
        match extent(&data[at..]) {
            Extent::Known(len) if len > 0 && at + len <= data.len() => {
                ranges.push(at..at + len);
                at += len;
            }
            _ => {
                ranges.push(at..data.len());
                break;
            }
        }
    }
    ranges
}

/// A reader of the log in one range from [`members`], or in any gzip stream.
pub fn decoder<R: Read>(gzip: R) -> impl Read {
    MultiGzDecoder::new(gzip)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::write::GzEncoder;
    use flate2::Compression;
    use proptest::prelude::*;

    use super::*;
    use crate::{compress, Level, CHUNK};

    fn decode(range: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
        decoder(range).read_to_end(out).map(|_| ())
    }

    fn lines(n: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| format!("{i}\t10.0.{}.{}\tsome text\n", i % 250, i % 7).into_bytes())
            .collect()
    }

    fn round_trip(data: &[u8]) -> (Vec<u8>, Vec<Range<usize>>) {
        let mut gz = Vec::new();
        compress(data, &mut gz, Level::default(), Some("conn.log")).unwrap();
        let ranges = members(&gz);
        let mut out = Vec::new();
        for r in &ranges {
            decode(&gz[r.clone()], &mut out).unwrap();
        }
        (out, ranges)
    }

    #[test]
    fn members_hold_whole_lines_and_decode_back() {
        let data = lines(300_000);
        assert!(data.len() > 3 * CHUNK);
        let mut gz = Vec::new();
        compress(&data[..], &mut gz, Level::default(), Some("conn.log")).unwrap();
        let ranges = members(&gz);
        assert!(ranges.len() >= 4, "{} members", ranges.len());
        let mut all = Vec::new();
        for r in &ranges {
            let mut one = Vec::new();
            decode(&gz[r.clone()], &mut one).unwrap();
            assert_eq!(one.last(), Some(&b'\n'));
            all.extend(one);
        }
        assert_eq!(all, data);
        // One stream to an ordinary reader, with the name in the first header.
        let mut whole = Vec::new();
        let mut reader = MultiGzDecoder::new(&gz[..]);
        reader.read_to_end(&mut whole).unwrap();
        assert_eq!(whole, data);
        let first = flate2::read::GzDecoder::new(&gz[..]);
        assert_eq!(first.header().unwrap().filename(), Some(&b"conn.log"[..]));
    }

    #[test]
    fn empty_input_is_a_valid_gzip_file() {
        let (out, ranges) = round_trip(b"");
        assert!(out.is_empty());
        assert_eq!(ranges.len(), 1);
    }

    #[test]
    fn a_plain_gzip_file_is_one_range() {
        let data = lines(1000);
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(members(&gz), vec![0..gz.len()]);
    }

    #[test]
    fn truncation_keeps_the_whole_members_and_reports_the_cut() {
        let data = lines(300_000);
        let mut gz = Vec::new();
        compress(&data[..], &mut gz, Level::new(1).unwrap(), None).unwrap();
        let cut = &gz[..gz.len() * 2 / 3];
        let ranges = members(cut);
        let (last, whole) = ranges.split_last().unwrap();
        let mut out = Vec::new();
        for r in whole {
            decode(&cut[r.clone()], &mut out).unwrap();
        }
        assert!(data.starts_with(&out) && !out.is_empty());
        assert!(decode(&cut[last.clone()], &mut out).is_err());
        assert!(data.starts_with(&out));
    }

    #[test]
    fn levels() {
        assert_eq!(Level::new(0), None);
        assert_eq!(Level::new(10), None);
        assert_eq!(Level::new(9).map(Level::get), Some(9));
    }

    proptest! {
        #[test]
        fn any_bytes_round_trip(data in proptest::collection::vec(any::<u8>(), 0..5000)) {
            prop_assert_eq!(round_trip(&data).0, data);
        }

        #[test]
        fn members_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let ranges = members(&data);
            let mut out = Vec::new();
            for r in ranges {
                let _ = decode(&data[r], &mut out);
            }
        }
    }
}
