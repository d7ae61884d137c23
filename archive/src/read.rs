//! Finding the members of an archive and decoding one.

use std::fs::File;
use std::io::{self, Read};
use std::ops::Range;
use std::os::unix::fs::FileExt;

use estuary_fsutil::read_full_at;
use flate2::read::MultiGzDecoder;

use crate::member::{extent, Extent, LENGTH_AT};

/// The byte ranges of `data` that decode independently, in order. A member whose header records
/// its length is one range; from the first member that does not (an archive from another writer,
/// or a damaged header) the rest of the file is one range, decoded as a stream. A length running
/// past the end (a truncated file) also ends the list with the rest, so that [`decoder`] recovers
/// what it can and reports the damage.
pub fn members(data: &[u8]) -> Vec<Range<usize>> {
    // Reading from memory cannot fail.
    hop(data.len() as u64, |at| Ok(extent(&data[at as usize..])))
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.start as usize..r.end as usize)
        .collect()
}

/// [`members`] of a file, found by reading only the member headers.
pub fn file_members(file: &File) -> io::Result<Vec<Range<u64>>> {
    let len = file.metadata()?.len();
    let mut head = Vec::new();
    hop(len, |at| {
        // The fixed part and the extra field's length first, then the extra field.
        head.resize(12, 0);
        let n = read_full_at(file, &mut head, at)?;
        head.truncate(n);
        if let [.., xlen0, xlen1] = head[..] {
            if n == 12 && head[3] & 4 != 0 {
                let xlen = usize::from(u16::from_le_bytes([xlen0, xlen1]));
                head.resize(12 + xlen, 0);
                let n = read_full_at(file, &mut head[12..], at + 12)?;
                head.truncate(12 + n);
            }
        }
        Ok(extent(&head))
    })
}

/// Member ranges of `len` bytes whose header at an offset `header_at` reads.
fn hop(
    len: u64,
    mut header_at: impl FnMut(u64) -> io::Result<Extent>,
) -> io::Result<Vec<Range<u64>>> {
    let mut ranges = Vec::new();
    let mut at = 0;
    while at < len {
        match header_at(at)? {
            Extent::Known(n) if n > LENGTH_AT && at + n as u64 <= len => {
                ranges.push(at..at + n as u64);
                at += n as u64;
            }
            _ => {
                ranges.push(at..len);
                break;
            }
        }
    }
    Ok(ranges)
}

/// A reader of the bytes `range` of `file`, independent of the file's cursor (so that several
/// ranges are read at once).
pub struct RangeReader<'a> {
    file: &'a File,
    range: Range<u64>,
}

impl<'a> RangeReader<'a> {
    pub fn new(file: &'a File, range: Range<u64>) -> RangeReader<'a> {
        RangeReader { file, range }
    }
}

impl Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.range.end.saturating_sub(self.range.start);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.file.read_at(&mut buf[..want], self.range.start)?;
        self.range.start += n as u64;
        Ok(n)
    }
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
    fn file_members_are_the_members_of_its_bytes() {
        let dir = std::env::temp_dir().join(format!("estuary-archive-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("members.gz");
        let data = lines(300_000);
        let mut gz = Vec::new();
        compress(&data[..], &mut gz, Level::default(), Some("conn.log")).unwrap();
        let cut = &gz[..gz.len() - 100];
        for bytes in [&gz[..], cut, b"", b"\x1f\x8b\x08\x04\x00"] {
            std::fs::write(&path, bytes).unwrap();
            let file = File::open(&path).unwrap();
            let ranges: Vec<Range<usize>> = file_members(&file)
                .unwrap()
                .into_iter()
                .map(|r| r.start as usize..r.end as usize)
                .collect();
            assert_eq!(ranges, members(bytes));
            let mut out = Vec::new();
            for r in file_members(&file).unwrap() {
                let _ = decoder(RangeReader::new(&file, r)).read_to_end(&mut out);
            }
            assert!(data.starts_with(&out));
        }
        std::fs::remove_dir_all(&dir).unwrap();
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
