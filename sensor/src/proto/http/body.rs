//! Message bodies: framing (Content-Length, chunked, until close), content decoding (gzip,
//! deflate with or without its zlib header) and the decoded length Zeek logs.

use std::io::Write;

use super::encoding::Encoding;
use super::multipart::Multipart;
use super::nested::Nested;
use super::parser::parse_chunk_size;
use super::part::Part;
use super::zip::Zip;
use crate::flow::Timestamp;
use crate::proto::content_line::{Byte, ContentLines, LineEnds};
use crate::proto::Emit;

/// Longest chunk-size or trailer line.
const MAX_CHUNK_LINE: usize = 4096;
/// Decoded bytes produced per body before decoding stops (decompression bombs).
const MAX_DECODED: u64 = 256 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Length(u64),
    Chunked,
    UntilEof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailers,
}

/// Counts decoded bytes and keeps the first few for file-type detection; a multipart body
/// is also split into its parts.
#[derive(Debug, Default, Clone)]
struct Counter {
    len: u64,
    head: Vec<u8>,
    /// A gap ended the file's BOF buffer: Zeek infers the type from what came before.
    head_closed: bool,
    multipart: Option<Box<Multipart>>,
}

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.len >= MAX_DECODED {
            return Err(std::io::Error::other("decoded body too large"));
        }
        self.len += buf.len() as u64;
        if !self.head_closed {
            crate::file_magic::keep_bof(&mut self.head, buf);
        }
        if let Some(m) = self.multipart.as_mut() {
            m.feed(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The content decoder: the counter, behind the decompressor for a gzip or deflate body.
#[derive(Default)]
struct Decoder {
    counter: Counter,
    zip: Option<Box<Zip>>,
    /// Decoding stopped (the body ended, or the decoded size limit was reached).
    stopped: bool,
    /// Weirds the decompressor raised, not yet logged.
    weirds: Vec<&'static str>,
}

impl Decoder {
    fn write(&mut self, data: &[u8]) {
        if self.stopped {
            return;
        }
        let counter = &mut self.counter;
        let mut full = false;
        match self.zip.as_mut() {
            None => full = counter.write_all(data).is_err(),
            Some(z) => {
                let weird = z.deliver(data, &mut |piece| {
                    full |= !full && counter.write_all(piece).is_err();
                });
                self.weirds.extend(weird);
            }
        }
        self.stopped |= full;
    }

    /// `ZIP_Analyzer::Done`: what is still held is not inflated; nothing more is decoded.
    fn finish(&mut self) {
        self.stopped = true;
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The body continues; more input is needed.
    More,
    /// The body ended.
    Done,
    /// A chunk-size line was not a hex size Zeek accepts (its text, when there was one): the
    /// body is abandoned.
    BadChunk(Option<String>),
}

pub struct Body {
    framing: Framing,
    chunk: Chunk,
    decoder: Decoder,
    raw_len: u64,
    /// Bytes lost to gaps (files.log `missing_bytes`).
    missing: u64,
    /// Lost bytes Zeek still counts in the body length (`HTTP_Entity::Undelivered`).
    gap_len: u64,
    /// The last two body bytes delivered.
    tail: [u8; 2],
    /// The content line analyzer ended the body's last line with a CRLF of its own.
    terminated: bool,
    /// Set for a body Zeek reads line by line until the connection closes.
    lines: Option<Lines>,
    /// A `message/*` body, read as a nested entity.
    nested: Option<Box<Nested>>,
}

/// A body delivered as lines (`HTTP_Entity::Deliver` with `trailing_CRLF`): each line counts
/// its end as 2 bytes whatever it was (see [`LineEnds`]), and an open last line gets one when
/// the stream ends (`ContentLine_Analyzer::EndpointEOF`).
#[derive(Debug, Default, Clone, Copy)]
struct Lines {
    /// Bytes counted beyond the raw data (less for a swallowed LF).
    extra: u64,
    open: bool,
}

impl Lines {
    fn feed(&mut self, data: &[u8], ends: &mut LineEnds) {
        for &b in data {
            match ends.byte(b) {
                Byte::Swallowed => self.extra = self.extra.saturating_sub(1),
                Byte::End => {
                    self.extra += 1;
                    self.open = false;
                }
                Byte::Data => self.open = true,
            }
        }
    }
}

impl Body {
    pub fn new(framing: Framing, encoding: Encoding, boundary: Option<Vec<u8>>) -> Self {
        let counter = Counter {
            multipart: boundary.map(|b| Box::new(Multipart::new(b))),
            ..Counter::default()
        };
        let decoder = Decoder {
            counter,
            zip: (encoding != Encoding::Identity).then(Box::default),
            ..Decoder::default()
        };
        Body {
            framing,
            chunk: Chunk::Size,
            decoder,
            raw_len: 0,
            missing: 0,
            gap_len: 0,
            tail: [0; 2],
            terminated: false,
            lines: None,
            nested: None,
        }
    }

    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Decoded bytes delivered so far (files.log `seen_bytes`).
    pub fn seen(&self) -> u64 {
        if let Some(n) = &self.nested {
            return n.body_len();
        }
        self.decoder.counter.len + self.lines.map_or(0, |l| l.extra)
    }

    /// The body is read line by line (see [`Lines`]).
    pub fn deliver_lines(&mut self) {
        self.lines = Some(Lines::default());
    }

    /// The body is of type `message/*` (see [`Nested`]), with its content `encoding`.
    pub fn nest(&mut self, encoding: Encoding) {
        let length = match self.framing {
            Framing::Length(n) => Some(n),
            Framing::Chunked | Framing::UntilEof => None,
        };
        self.nested = Some(Box::new(Nested::new(encoding, length)));
    }

    /// Logs the weirds a nested entity raised since the last call.
    pub fn emit_weirds(&mut self, ts: Timestamp, out: &mut dyn Emit) {
        for name in std::mem::take(&mut self.decoder.weirds) {
            out.weird_from(ts, name, None, "ZIP");
        }
        if let Some(n) = self.nested.as_mut() {
            for (name, addl, source) in n.take_weirds() {
                out.weird_from(ts, name, addl, source);
            }
            if n.take_limit_reached() {
                out.analysis_partial();
            }
        }
        if let Some(m) = self.counter_mut().multipart.as_mut() {
            for depth in m.take_refused() {
                // Analyzer::LimitReachedWeird
                out.weird_from(
                    ts,
                    "exceeded_mime_max_depth",
                    Some(depth.to_string()),
                    "HTTP",
                );
                out.analysis_partial();
            }
        }
    }

    /// The sender closed its side: an open last line is ended.
    pub fn end_of_stream(&mut self) {
        if let Some(n) = self.nested.as_mut().filter(|n| n.line_open()) {
            n.end_line();
        }
        if let Some(l) = self.lines.as_mut().filter(|l| l.open) {
            l.extra += 2;
            l.open = false;
        }
    }

    /// Body length so far as Zeek counts it: decoded bytes plus the gaps it skipped over.
    pub fn len(&self) -> u64 {
        self.seen() + self.gap_len + if self.terminated { 2 } else { 0 }
    }

    /// A multipart or `message/*` body, which Zeek reads line by line rather than as plain
    /// data.
    pub fn delivers_lines(&self) -> bool {
        self.decoder.counter.multipart.is_some() || self.nested.is_some()
    }

    /// Zeek hands the body on in plain delivery (`SetPlainDelivery`), not as lines.
    fn plain_delivery(&self) -> bool {
        !self.delivers_lines() && self.lines.is_none()
    }

    /// The body has data and its last line has no CRLF.
    pub fn last_line_open(&self) -> bool {
        if let Some(n) = &self.nested {
            return n.line_open();
        }
        self.raw_len > 0 && self.tail != *b"\r\n"
    }

    /// The last line gets a CRLF that is not in the data, which the length counts.
    pub fn terminate_last_line(&mut self) {
        match self.nested.as_mut() {
            Some(n) => n.end_line(),
            None => self.terminated = true,
        }
    }

    /// Whether any body byte arrived (a file is only created for a non-empty body).
    pub fn has_data(&self) -> bool {
        self.raw_len > 0
    }

    /// Body bytes lost to gaps.
    pub fn missing(&self) -> u64 {
        self.missing
    }

    /// The first decoded bytes.
    pub fn head(&self) -> &[u8] {
        &self.decoder.counter.head
    }

    pub fn finish(&mut self) {
        self.decoder.finish();
        if let Some(n) = self.nested.as_mut() {
            n.finish();
        }
    }

    /// For a multipart or `message/*` body (after [`Body::finish`]): its parts that carried
    /// data.
    pub fn take_parts(&mut self) -> Option<Vec<Part>> {
        if let Some(n) = self.nested.as_mut() {
            return Some(n.take_parts());
        }
        self.counter_mut().multipart.take().map(|m| m.finish())
    }

    fn counter_mut(&mut self) -> &mut Counter {
        &mut self.decoder.counter
    }

    /// Delivers raw body bytes, in line delivery for a body read as lines and in plain
    /// delivery otherwise; returns how many the body took (a nested entity may end before
    /// them).
    fn deliver(&mut self, data: &[u8], ends: &mut LineEnds) -> usize {
        let data = match self.nested.as_mut() {
            Some(n) => &data[..n.feed(data, ends)],
            None => data,
        };
        self.raw_len += data.len() as u64;
        match self.lines.as_mut() {
            Some(l) => l.feed(data, ends),
            // A multipart body has its own reader (see `multipart`).
            None if self.nested.is_none() && !data.is_empty() => ends.plain(),
            None => {}
        }
        match data {
            [.., a, b] => self.tail = [*a, *b],
            [b] => self.tail = [self.tail[1], *b],
            [] => {}
        }
        if self.nested.is_none() {
            self.decoder.write(data);
        }
        data.len()
    }

    /// `len` body bytes were lost, as Zeek's `HTTP_Entity::Undelivered` takes it: before any
    /// body byte the gap is not the body's; a Content-Length body keeps its place (and counts
    /// the gap in its length) when the gap fits in what is left, and ends otherwise.
    pub fn gap(&mut self, len: u64) -> Step {
        if self.len() == 0 {
            return Step::Done;
        }
        self.missing += len;
        // File::Gap marks the BOF buffer full: the type comes from the bytes before the gap.
        self.counter_mut().head_closed = true;
        match &mut self.framing {
            Framing::Length(n) if *n >= len => {
                *n -= len;
                self.gap_len += len;
                if *n == 0 {
                    Step::Done
                } else {
                    Step::More
                }
            }
            Framing::Length(_) => Step::Done,
            Framing::UntilEof => Step::More,
            Framing::Chunked => Step::BadChunk(None),
        }
    }

    /// Reads body bytes straight from a segment when nothing is buffered (the common case
    /// for large bodies): returns how many bytes of `data` belong to the body, or `None` for
    /// chunked bodies, which go through the line buffer.
    pub fn consume_direct(&mut self, data: &[u8], ends: &mut LineEnds) -> Option<(usize, Step)> {
        // DoDeliver drops an LF that ends the last line before plain delivery.
        let skip = |body: &Self, ends: &mut LineEnds| {
            usize::from(body.plain_delivery() && data.first().is_some_and(|&b| ends.swallows(b)))
        };
        match self.framing {
            Framing::UntilEof => {
                let skip = skip(self, ends);
                self.deliver(&data[skip..], ends);
                Some((data.len(), Step::More))
            }
            Framing::Length(n) => {
                let skip = skip(self, ends);
                let data = &data[skip..];
                let take = data.len().min(usize::try_from(n).unwrap_or(usize::MAX));
                let used = self.deliver(&data[..take], ends);
                let left = if used < take { 0 } else { n - take as u64 };
                self.framing = Framing::Length(left);
                Some((skip + used, if left == 0 { Step::Done } else { Step::More }))
            }
            Framing::Chunked => None,
        }
    }

    /// Reads body bytes from `buf`.
    pub fn consume(&mut self, buf: &mut ContentLines) -> Step {
        if self.plain_delivery() {
            buf.swallow_lf();
        }
        loop {
            match self.framing {
                Framing::UntilEof => {
                    // What follows an ended nested entity is dropped, as before.
                    buf.read(usize::MAX, |data, ends| {
                        self.deliver(data, ends);
                        data.len()
                    });
                    return Step::More;
                }
                Framing::Length(0) => return Step::Done,
                Framing::Length(n) => {
                    let take = buf
                        .available()
                        .len()
                        .min(usize::try_from(n).unwrap_or(usize::MAX));
                    if take == 0 {
                        return Step::More;
                    }
                    let used = buf.read(take, |data, ends| self.deliver(data, ends));
                    let left = if used < take { 0 } else { n - take as u64 };
                    self.framing = Framing::Length(left);
                }
                Framing::Chunked => match self.chunk {
                    Chunk::Size => {
                        let Some(line) = buf.line(MAX_CHUNK_LINE) else {
                            return Step::More;
                        };
                        if line.text.is_empty() {
                            continue;
                        }
                        match parse_chunk_size(&line.text) {
                            Some(0) => self.chunk = Chunk::Trailers,
                            Some(n) => self.chunk = Chunk::Data(n),
                            None => {
                                let text = String::from_utf8_lossy(line.text.trim_ascii());
                                return Step::BadChunk(Some(text.into_owned()));
                            }
                        }
                    }
                    Chunk::Data(n) => {
                        let data = buf.take(usize::try_from(n).unwrap_or(usize::MAX));
                        if data.is_empty() {
                            return Step::More;
                        }
                        let left = n - data.len() as u64;
                        self.chunk = if left == 0 {
                            Chunk::DataEnd
                        } else {
                            Chunk::Data(left)
                        };
                        self.deliver(&data, buf.ends());
                    }
                    Chunk::DataEnd => {
                        if buf.line(MAX_CHUNK_LINE).is_none() {
                            return Step::More;
                        }
                        self.chunk = Chunk::Size;
                    }
                    Chunk::Trailers => {
                        let Some(line) = buf.line(MAX_CHUNK_LINE) else {
                            return Step::More;
                        };
                        if line.text.is_empty() {
                            return Step::Done;
                        }
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(body: &mut Body, input: &[u8]) -> Step {
        let mut buf = ContentLines::default();
        buf.extend(input);
        body.consume(&mut buf)
    }

    #[test]
    fn content_length() {
        let mut b = Body::new(Framing::Length(5), Encoding::Identity, None);
        assert_eq!(run(&mut b, b"abc"), Step::More);
        assert_eq!(run(&mut b, b"deXX"), Step::Done);
        assert_eq!(b.len(), 5);
    }

    #[test]
    fn direct_consumption_stops_at_the_length() {
        let mut b = Body::new(Framing::Length(5), Encoding::Identity, None);
        let ends = &mut LineEnds::default();
        assert_eq!(b.consume_direct(b"abc", ends), Some((3, Step::More)));
        assert_eq!(b.consume_direct(b"deXX", ends), Some((2, Step::Done)));
        assert_eq!(b.len(), 5);
        let mut c = Body::new(Framing::Chunked, Encoding::Identity, None);
        assert_eq!(c.consume_direct(b"1\r\na", ends), None);
    }

    #[test]
    fn chunked() {
        let mut b = Body::new(Framing::Chunked, Encoding::Identity, None);
        assert_eq!(
            run(&mut b, b"3\r\nabc\r\n2;x\r\nde\r\n0\r\nX-T: 1\r\n\r\n"),
            Step::Done
        );
        assert_eq!(b.len(), 5);
        let mut b = Body::new(Framing::Chunked, Encoding::Identity, None);
        assert_eq!(run(&mut b, b"zz\r\n"), Step::BadChunk(Some("zz".into())));
    }

    #[test]
    fn deflate_with_and_without_zlib_header() {
        let plain = b"hello hello hello hello".repeat(10);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&plain).unwrap();
        let zlib = z.finish().unwrap();
        let raw = zlib[2..zlib.len() - 4].to_vec();
        for data in [zlib, raw] {
            let mut b = Body::new(Framing::Length(data.len() as u64), Encoding::Deflate, None);
            assert_eq!(run(&mut b, &data), Step::Done);
            b.finish();
            assert_eq!(b.len(), plain.len() as u64);
        }
    }

    /// HTTP_Entity::Undelivered: a gap inside a Content-Length body counts in its length.
    #[test]
    fn gaps_count_in_a_sized_body() {
        let mut b = Body::new(Framing::Length(10), Encoding::Identity, None);
        assert_eq!(b.gap(4), Step::Done, "a gap before any body byte ends it");
        let mut b = Body::new(Framing::Length(10), Encoding::Identity, None);
        assert_eq!(run(&mut b, b"abc"), Step::More);
        assert_eq!(b.gap(4), Step::More);
        assert_eq!(run(&mut b, b"xyz"), Step::Done);
        assert_eq!((b.len(), b.missing()), (10, 4));
        assert_eq!(b.head(), b"abc", "the BOF buffer ends at the gap");
    }

    #[test]
    fn garbage_gzip_does_not_panic() {
        let mut b = Body::new(Framing::UntilEof, Encoding::Gzip, None);
        run(&mut b, b"\x1f\x8bnot really gzip at all");
        b.finish();
        assert!(b.has_data());
    }
}
