//! The decompressor of a gzip or deflate body, as Zeek's `ZIP_Analyzer` runs it: one for
//! both encodings, opened with zlib's header detection (`inflateInit2(.., MAX_WBITS + 32)`:
//! a gzip or a zlib header), and reopened as raw deflate (`-MAX_WBITS`) on the same bytes
//! when the first `inflate` of a delivery fails with a data error.

use flate2::{Crc, Decompress, FlushDecompress, Status};

/// `ZIP_Analyzer::DeliverStream`'s `unzip_size`: each `inflate` fills at most this much.
const UNZIP_SIZE: usize = 4096;

/// Why an `inflate` failed: only `Z_DATA_ERROR` allows the raw deflate restart.
#[derive(Debug, PartialEq, Eq)]
enum Error {
    Data,
    Other,
}

pub struct Zip {
    stream: Stream,
    /// `zip_status` is no longer `Z_OK` (the stream ended or failed): deliveries are ignored.
    stopped: bool,
    buf: Vec<u8>,
}

impl Default for Zip {
    fn default() -> Self {
        Zip {
            stream: Stream::Detect(Vec::new()),
            stopped: false,
            buf: vec![0; UNZIP_SIZE],
        }
    }
}

impl Zip {
    /// `ZIP_Analyzer::DeliverStream`: hands each `inflate`'s output to `sink`; returns the
    /// weird it raised (`inflate_failed`), after which nothing more is inflated.
    pub fn deliver(&mut self, data: &[u8], sink: &mut dyn FnMut(&[u8])) -> Option<&'static str> {
        if data.is_empty() || self.stopped {
            return None;
        }
        let mut allow_restart = true;
        let mut input = data;
        loop {
            match self.stream.inflate(input, &mut self.buf) {
                Ok((used, have, end)) => {
                    allow_restart = false;
                    if have > 0 {
                        sink(&self.buf[..have]);
                    }
                    input = &input[used.min(input.len())..];
                    if end {
                        self.stopped = true;
                        return None;
                    }
                    // A full buffer may leave output held back (the decompressor takes
                    // its input ahead of what it writes).
                    if input.is_empty() && have < self.buf.len() {
                        return None;
                    }
                    if used == 0 && have == 0 {
                        // Z_BUF_ERROR: no progress was possible.
                        self.stopped = true;
                        return Some("inflate_failed");
                    }
                }
                // "Some servers seem to not generate zlib headers".
                Err(Error::Data) if allow_restart => {
                    self.stream = Stream::Raw(Decompress::new(false));
                    input = data;
                    allow_restart = false;
                }
                Err(_) => {
                    self.stopped = true;
                    return Some("inflate_failed");
                }
            }
        }
    }
}

enum Stream {
    /// Fewer than the two bytes that tell a gzip header from a zlib one.
    Detect(Vec<u8>),
    Zlib(Decompress),
    Gzip(Box<Gzip>),
    Raw(Decompress),
}

impl Stream {
    /// One `inflate(.., Z_SYNC_FLUSH)`: the input bytes it used, the output it made and
    /// whether the stream ended (`Z_STREAM_END`).
    fn inflate(&mut self, input: &[u8], out: &mut [u8]) -> Result<(usize, usize, bool), Error> {
        let Stream::Detect(held) = self else {
            return self.inflate_decided(input, out);
        };
        let earlier = held.len();
        let mut data = std::mem::take(held);
        data.extend_from_slice(input);
        match data[..] {
            [0x1f, 0x8b, ..] => *self = Stream::Gzip(Box::default()),
            [cmf, flg, ..] => {
                // inflate.c HEAD: the zlib header check, its method and window size.
                let check = (u16::from(cmf) * 256 + u16::from(flg)) % 31 == 0;
                if !check || cmf & 0x0f != 8 || cmf >> 4 > 7 {
                    return Err(Error::Data);
                }
                if flg & 0x20 != 0 {
                    // Z_NEED_DICT
                    return Err(Error::Other);
                }
                *self = Stream::Zlib(Decompress::new(true));
            }
            _ => {
                *self = Stream::Detect(data);
                return Ok((input.len(), 0, false));
            }
        }
        let (used, have, end) = self.inflate_decided(&data, out)?;
        Ok((used.saturating_sub(earlier), have, end))
    }

    fn inflate_decided(
        &mut self,
        input: &[u8],
        out: &mut [u8],
    ) -> Result<(usize, usize, bool), Error> {
        match self {
            Stream::Zlib(d) | Stream::Raw(d) => decompress(d, input, out),
            Stream::Gzip(g) => g.inflate(input, out),
            Stream::Detect(_) => Ok((0, 0, false)),
        }
    }
}

/// `inflate` on a zlib or raw deflate stream.
fn decompress(
    d: &mut Decompress,
    input: &[u8],
    out: &mut [u8],
) -> Result<(usize, usize, bool), Error> {
    let (in0, out0) = (d.total_in(), d.total_out());
    let status = d
        .decompress(input, out, FlushDecompress::Sync)
        .map_err(|e| {
            if e.needs_dictionary().is_some() {
                Error::Other
            } else {
                Error::Data
            }
        })?;
    let used = usize::try_from(d.total_in() - in0).unwrap_or(usize::MAX);
    let have = usize::try_from(d.total_out() - out0).unwrap_or(usize::MAX);
    Ok((used, have, status == Status::StreamEnd))
}

/// A gzip member as zlib's `inflate` reads it: the header (inflate.c FLAGS .. HCRC), the
/// deflate data, then the CRC-32 and length of the data (CHECK, LENGTH).
#[derive(Default)]
struct Gzip {
    part: GzipPart,
    /// The header, then the trailer, while it arrives.
    held: Vec<u8>,
    crc: Crc,
}

#[derive(Default)]
enum GzipPart {
    #[default]
    Header,
    Body(Decompress),
    Trailer,
}

/// Longest gzip header kept while its fields arrive (the name and comment are unbounded).
const MAX_GZIP_HEADER: usize = 64 * 1024;

impl Gzip {
    fn inflate(&mut self, input: &[u8], out: &mut [u8]) -> Result<(usize, usize, bool), Error> {
        // The header and trailer bytes are kept until they are complete.
        let mut used = 0;
        if matches!(self.part, GzipPart::Header) {
            let held = self.held.len();
            let room = MAX_GZIP_HEADER.saturating_sub(held);
            self.held.extend_from_slice(&input[..input.len().min(room)]);
            match gzip_header_len(&self.held)? {
                None if self.held.len() >= MAX_GZIP_HEADER => return Err(Error::Data),
                None => return Ok((input.len(), 0, false)),
                Some(n) => {
                    used = n.saturating_sub(held);
                    self.held.clear();
                    self.part = GzipPart::Body(Decompress::new(false));
                }
            }
        }
        let mut have = 0;
        if let GzipPart::Body(d) = &mut self.part {
            let (u, h, end) = decompress(d, &input[used..], out)?;
            self.crc.update(&out[..h]);
            used += u;
            have = h;
            if !end {
                return Ok((used, have, false));
            }
            self.part = GzipPart::Trailer;
        }
        let take = (8 - self.held.len().min(8)).min(input.len() - used);
        self.held.extend_from_slice(&input[used..used + take]);
        used += take;
        let [c0, c1, c2, c3, l0, l1, l2, l3] = self.held[..] else {
            return Ok((used, have, false));
        };
        if u32::from_le_bytes([c0, c1, c2, c3]) != self.crc.sum()
            || u32::from_le_bytes([l0, l1, l2, l3]) != self.crc.amount()
        {
            return Err(Error::Data);
        }
        Ok((used, have, true))
    }
}

/// The little-endian 16-bit number at `pos`, if `h` holds it yet.
fn le16(h: &[u8], pos: usize) -> Option<u16> {
    h.get(pos..pos + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
}

/// The length of a complete gzip header at the start of `h`, `None` while it is incomplete.
fn gzip_header_len(h: &[u8]) -> Result<Option<usize>, Error> {
    const FHCRC: u8 = 2;
    const FEXTRA: u8 = 4;
    const FNAME: u8 = 8;
    const FCOMMENT: u8 = 16;
    if h.get(2).is_some_and(|&m| m != 8) || h.get(3).is_some_and(|&f| f & 0xe0 != 0) {
        // "unknown compression method", "unknown header flags set"
        return Err(Error::Data);
    }
    let Some(&flags) = h.get(3) else {
        return Ok(None);
    };
    let mut pos = 10;
    if flags & FEXTRA != 0 {
        let Some(extra) = le16(h, pos) else {
            return Ok(None);
        };
        pos += 2 + usize::from(extra);
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let Some(end) = h.get(pos..).and_then(|s| s.iter().position(|&b| b == 0)) else {
                return Ok(None);
            };
            pos += end + 1;
        }
    }
    if flags & FHCRC != 0 {
        let Some(header_crc) = le16(h, pos) else {
            return Ok(None);
        };
        let mut crc = Crc::new();
        crc.update(&h[..pos]);
        if header_crc != (crc.sum() & 0xffff) as u16 {
            // "header crc mismatch"
            return Err(Error::Data);
        }
        pos += 2;
    }
    Ok((h.len() >= pos).then_some(pos))
}

#[cfg(test)]
mod tests;
