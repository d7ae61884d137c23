use std::io::Write;

use flate2::write::{GzEncoder, ZlibEncoder};
use flate2::Compression;

use super::*;

fn run(deliveries: &[&[u8]]) -> (Vec<u8>, Vec<usize>, Vec<&'static str>) {
    let mut zip = Zip::default();
    let (mut out, mut pieces, mut weirds) = (Vec::new(), Vec::new(), Vec::new());
    for d in deliveries {
        let weird = zip.deliver(d, &mut |p| {
            out.extend_from_slice(p);
            pieces.push(p.len());
        });
        weirds.extend(weird);
    }
    (out, pieces, weirds)
}

fn plain() -> Vec<u8> {
    (0..20_000u32)
        .flat_map(|i| (i % 251).to_le_bytes())
        .collect()
}

/// `inflateInit2(.., MAX_WBITS + 32)` reads gzip and zlib alike; a stream without a header
/// fails its first `inflate` and is read again as raw deflate.
#[test]
fn gzip_zlib_and_raw_deflate_alike() {
    let mut g = GzEncoder::new(Vec::new(), Compression::default());
    g.write_all(&plain()).unwrap();
    let gzip = g.finish().unwrap();
    let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
    z.write_all(&plain()).unwrap();
    let zlib = z.finish().unwrap();
    let raw = zlib[2..zlib.len() - 4].to_vec();
    for data in [&gzip, &zlib, &raw] {
        let (out, pieces, weirds) = run(&[data]);
        assert_eq!(out, plain());
        assert!(weirds.is_empty());
        assert!(pieces.iter().all(|&n| n <= UNZIP_SIZE), "{pieces:?}");
    }
    // Byte by byte (the header split too) gives the same for a gzip or zlib header.
    for data in [&gzip, &zlib] {
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        assert_eq!(run(&bytes).0, plain());
    }
}

/// Only the first `inflate` of a delivery may restart; a failure later raises
/// `inflate_failed`, and nothing is inflated after it or after the end of the stream.
#[test]
fn failures_and_the_end_stop_inflating() {
    let (out, _, weirds) = run(&[b"\x78\x9c", b"\xff\xff\xff\xff"]);
    assert!(out.is_empty());
    assert_eq!(weirds, vec!["inflate_failed"]);
    let mut g = GzEncoder::new(Vec::new(), Compression::default());
    g.write_all(b"hello").unwrap();
    let gzip = g.finish().unwrap();
    let (out, _, weirds) = run(&[&gzip, &gzip]);
    assert_eq!((out, weirds), (b"hello".to_vec(), vec![]));
    // A bad CRC fails the inflate that reads it, losing its output; read again as raw
    // deflate, the gzip header is not a valid block.
    let mut bad = gzip.clone();
    let n = bad.len();
    bad[n - 8] ^= 1;
    let (out, _, weirds) = run(&[&bad]);
    assert_eq!(weirds, vec!["inflate_failed"]);
    assert!(out.is_empty());
    // Delivered after its header, the same data restarts as raw deflate, which ends before
    // the trailer.
    let (out, _, weirds) = run(&[&bad[..10], &bad[10..]]);
    assert_eq!((out, weirds), (b"hello".to_vec(), vec![]));
}

/// A stored raw deflate block: 0x01 then LEN and NLEN.
#[test]
fn headerless_stored_block() {
    let (out, _, weirds) = run(&[b"\x01\x02\x00\xfd\xffhi"]);
    assert_eq!((out, weirds), (b"hi".to_vec(), vec![]));
}
