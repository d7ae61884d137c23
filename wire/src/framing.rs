//! Syslog over TCP (RFC 6587): a decoder that tells octet counting from newline framing per
//! message by its first byte, as rsyslog's imtcp does.
//!
//! A message longer than `max_len` is reported once as a [`Skipped`] item and its bytes are
//! discarded; the messages after it still come through. A length prefix that is not a number
//! means framing is lost: that is a fatal [`FramingError`] and the connection should be closed.

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::Decoder;

use crate::Framing;

/// RFC 6587 MSG-LEN digits accepted before the prefix is called garbage.
const MAX_LEN_DIGITS: usize = 10;

/// rsyslog's default `maxMessageSize` is 8 KiB; Zeek lines can be longer.
pub const DEFAULT_MAX_LEN: usize = 64 * 1024;

/// One decoded item: a message without its framing, or a message that was skipped.
pub type Item = Result<Bytes, Skipped>;

/// A message that was not delivered; the stream goes on after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Skipped {
    #[error("{framing:?}-framed message of {len} bytes or more exceeds the limit of {max_len}")]
    TooLong {
        framing: Framing,
        /// The announced length (octet counting) or the bytes seen so far (newline framing).
        len: u64,
        max_len: usize,
    },
}

/// Framing is lost or the stream ended in the middle of a message.
#[derive(Debug, thiserror::Error)]
pub enum FramingError {
    #[error("octet-counting length prefix {prefix:?} is not a number followed by a space")]
    BadLengthPrefix { prefix: String },
    #[error("connection closed {remaining} bytes before the end of an octet-counted message")]
    TruncatedMessage { remaining: u64 },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At a frame boundary or inside a frame that fits.
    Ready,
    /// Dropping the rest of an oversized octet-counted message.
    DiscardingCounted { remaining: u64 },
    /// Dropping an oversized newline-framed message up to its LF.
    DiscardingLine,
}

/// `tokio_util` decoder for RFC 6587 syslog streams with mixed framing.
#[derive(Debug, Clone)]
pub struct SyslogDecoder {
    max_len: usize,
    state: State,
    /// Bytes of a partial newline-framed message already searched for its LF.
    scanned: usize,
}

impl SyslogDecoder {
    pub fn new(max_len: usize) -> Self {
        SyslogDecoder {
            max_len,
            state: State::Ready,
            scanned: 0,
        }
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Drops bytes of a message being skipped; true when it is gone.
    fn discard(&mut self, buf: &mut BytesMut) -> bool {
        match self.state {
            State::Ready => true,
            State::DiscardingCounted { remaining } => {
                let n = remaining.min(buf.len() as u64);
                buf.advance(n as usize);
                if n == remaining {
                    self.state = State::Ready;
                    true
                } else {
                    self.state = State::DiscardingCounted {
                        remaining: remaining - n,
                    };
                    false
                }
            }
            State::DiscardingLine => match memchr::memchr(b'\n', buf) {
                Some(i) => {
                    buf.advance(i + 1);
                    self.state = State::Ready;
                    true
                }
                None => {
                    buf.clear();
                    false
                }
            },
        }
    }

    fn decode_counted(&mut self, buf: &mut BytesMut) -> Result<Option<Item>, FramingError> {
        let digits = buf.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits > MAX_LEN_DIGITS {
            return Err(bad_prefix(&buf[..MAX_LEN_DIGITS + 1]));
        }
        match buf.get(digits) {
            None => return Ok(None),
            Some(b' ') => {}
            Some(_) => return Err(bad_prefix(&buf[..=digits])),
        }
        // At most ten ASCII digits: always fits in a u64.
        let len = buf[..digits]
            .iter()
            .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
        let header = digits + 1;
        if len > self.max_len as u64 {
            buf.advance(header);
            self.state = State::DiscardingCounted { remaining: len };
            return Ok(Some(Err(Skipped::TooLong {
                framing: Framing::OctetCounting,
                len,
                max_len: self.max_len,
            })));
        }
        let len = len as usize;
        if buf.len() < header + len {
            buf.reserve(header + len - buf.len());
            return Ok(None);
        }
        buf.advance(header);
        Ok(Some(Ok(buf.split_to(len).freeze())))
    }

    fn decode_line(&mut self, buf: &mut BytesMut) -> Option<Item> {
        let window = buf.len().min(self.max_len.saturating_add(1));
        let from = self.scanned.min(window);
        match memchr::memchr(b'\n', &buf[from..window]) {
            Some(i) => {
                self.scanned = 0;
                let mut line = buf.split_to(from + i + 1);
                line.truncate(trim_line_end(&line));
                Some(Ok(line.freeze()))
            }
            None if buf.len() > self.max_len => {
                self.scanned = 0;
                let len = buf.len() as u64;
                buf.clear();
                self.state = State::DiscardingLine;
                Some(Err(Skipped::TooLong {
                    framing: Framing::NewLine,
                    len,
                    max_len: self.max_len,
                }))
            }
            None => {
                self.scanned = window;
                None
            }
        }
    }
}

impl Default for SyslogDecoder {
    fn default() -> Self {
        SyslogDecoder::new(DEFAULT_MAX_LEN)
    }
}

/// Length of `line` without its LF and an optional CR before it.
fn trim_line_end(line: &[u8]) -> usize {
    let mut end = line.len();
    if line[..end].ends_with(b"\n") {
        end -= 1;
    }
    if line[..end].ends_with(b"\r") {
        end -= 1;
    }
    end
}

fn bad_prefix(prefix: &[u8]) -> FramingError {
    FramingError::BadLengthPrefix {
        prefix: String::from_utf8_lossy(prefix).into_owned(),
    }
}

/// Bytes senders leave between frames: a LF after an octet-counted frame, CR LF, NUL.
fn is_filler(b: u8) -> bool {
    matches!(b, b'\n' | b'\r' | b'\0')
}

impl Decoder for SyslogDecoder {
    type Item = Item;
    type Error = FramingError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Item>, FramingError> {
        if !self.discard(buf) {
            return Ok(None);
        }
        let filler = buf.iter().take_while(|&&b| is_filler(b)).count();
        buf.advance(filler);
        match buf.first() {
            None => Ok(None),
            Some(b) if b.is_ascii_digit() => self.decode_counted(buf),
            Some(_) => Ok(self.decode_line(buf)),
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Item>, FramingError> {
        if let Some(item) = self.decode(buf)? {
            return Ok(Some(item));
        }
        if buf.is_empty() {
            return Ok(None);
        }
        if let State::DiscardingCounted { .. } | State::DiscardingLine = self.state {
            buf.clear();
            return Ok(None);
        }
        match buf.first() {
            Some(b) if b.is_ascii_digit() => {
                let digits = buf.iter().take_while(|b| b.is_ascii_digit()).count();
                let announced = std::str::from_utf8(&buf[..digits])
                    .ok()
                    .and_then(|d| d.parse::<u64>().ok())
                    .unwrap_or(0);
                let have = buf.len().saturating_sub(digits + 1) as u64;
                buf.clear();
                Err(FramingError::TruncatedMessage {
                    remaining: announced.saturating_sub(have),
                })
            }
            // A last line without its LF is still a whole message: the peer closed after it.
            _ => {
                self.scanned = 0;
                let line = buf.split();
                Ok(Some(Ok(line.freeze())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::write_frame;
    use crate::test_util::decode_all;
    use proptest::prelude::*;

    fn msg(s: &[u8]) -> Item {
        Ok(Bytes::copy_from_slice(s))
    }

    #[test]
    fn mixed_framing_crlf_and_filler() {
        let input: &[u8] = b"5 <1>ab<2>line\r\n\n\x0011 <3>a\nb c d\n<4>last";
        let items = decode_all(&mut SyslogDecoder::new(100), &[input]).unwrap();
        assert_eq!(
            items,
            vec![
                msg(b"<1>ab"),
                msg(b"<2>line"),
                msg(b"<3>a\nb c d\n"),
                msg(b"<4>last")
            ]
        );
    }

    #[test]
    fn incomplete_waits_for_more() {
        let mut d = SyslogDecoder::new(100);
        let mut buf = BytesMut::from(&b"11"[..]);
        assert!(d.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(b" <1>abcdefg");
        assert!(d.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(b"h<2>x");
        assert_eq!(d.decode(&mut buf).unwrap(), Some(msg(b"<1>abcdefgh")));
        assert!(d.decode(&mut buf).unwrap().is_none());
        assert_eq!(buf.as_ref(), b"<2>x");
    }

    #[test]
    fn oversized_is_reported_once_and_skipped() {
        let mut input = b"20 <1>0123456789abcdefg<2>ok\n".to_vec();
        input.extend_from_slice(&[b'x'; 30]);
        input.extend_from_slice(b"\n3 <3>");
        let mut d = SyslogDecoder::new(10);
        // Byte-at-a-time feeding must give the same result as one chunk.
        let chunks: Vec<&[u8]> = input.chunks(1).collect();
        let items = decode_all(&mut d, &chunks).unwrap();
        assert_eq!(
            items,
            vec![
                Err(Skipped::TooLong {
                    framing: Framing::OctetCounting,
                    len: 20,
                    max_len: 10
                }),
                msg(b"<2>ok"),
                Err(Skipped::TooLong {
                    framing: Framing::NewLine,
                    len: 11,
                    max_len: 10
                }),
                msg(b"<3>"),
            ]
        );
    }

    #[test]
    fn garbage_prefix_is_fatal() {
        let mut d = SyslogDecoder::new(100);
        let err = decode_all(&mut d, &[b"12x <1>a"]).unwrap_err();
        assert!(matches!(err, FramingError::BadLengthPrefix { ref prefix } if prefix == "12x"));
        let err = decode_all(&mut SyslogDecoder::new(100), &[b"123456789012 x"]).unwrap_err();
        assert!(matches!(err, FramingError::BadLengthPrefix { .. }), "{err}");
    }

    #[test]
    fn eof_inside_counted_message_is_an_error() {
        let err = decode_all(&mut SyslogDecoder::new(100), &[b"10 <1>ab"]).unwrap_err();
        assert!(
            matches!(err, FramingError::TruncatedMessage { remaining: 5 }),
            "{err}"
        );
    }

    proptest! {
        #[test]
        fn frames_survive_any_chunking(
            messages in prop::collection::vec(
                (prop::collection::vec(any::<u8>(), 0..40), any::<bool>()), 0..20),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        ) {
            let mut wire = Vec::new();
            let mut expected = Vec::new();
            for (body, counted) in &messages {
                let mut m = b"<13>".to_vec();
                if *counted {
                    m.extend_from_slice(body);
                    write_frame(&mut wire, Framing::OctetCounting, &m);
                } else {
                    m.extend(body.iter().copied().filter(|&b| b != b'\n'));
                    while m.last() == Some(&b'\r') { m.pop(); }
                    write_frame(&mut wire, Framing::NewLine, &m);
                }
                expected.push(msg(&m));
            }
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut start = 0;
            for cut in cuts {
                chunks.push(&wire[start..cut]);
                start = cut;
            }
            chunks.push(&wire[start..]);
            let items = decode_all(&mut SyslogDecoder::new(1000), &chunks).unwrap();
            prop_assert_eq!(items, expected);
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            data in prop::collection::vec(any::<u8>(), 0..300),
            max_len in 0usize..64,
            chunk in 1usize..50,
        ) {
            let mut d = SyslogDecoder::new(max_len);
            let chunks: Vec<&[u8]> = data.chunks(chunk).collect();
            if let Ok(items) = decode_all(&mut d, &chunks) {
                for item in items.into_iter().flatten() {
                    prop_assert!(item.len() <= max_len);
                }
            }
        }
    }
}
