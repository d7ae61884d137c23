//! WebSocket (RFC 6455) after an HTTP upgrade, read as Zeek's WebSocket analyzer reads it
//! (`src/analyzer/protocol/websocket/websocket-protocol.pac` and `websocket-analyzer.pac`): the
//! frames of each direction are parsed, client payloads unmasked, and the payload of text and
//! binary messages is handed, as one stream per direction, to the analyzer that protocol
//! detection finds for it (`WebSocket_Analyzer::Configure` attaches a PIA when the script's
//! `use_dpd` is set, as it is by default). A whole message confirms the service `websocket`.

use super::HttpAnalyzer;
use crate::flow::{ConnInfo, Direction, Timestamp};
use crate::proto::pia::InnerStream;
use crate::proto::{Analyzer, Emit};

const OPCODE_CONTINUATION: u8 = 0x0;
const OPCODE_TEXT: u8 = 0x1;
const OPCODE_BINARY: u8 = 0x2;
/// The longest frame header: 2 bytes, an 8-byte length and a 4-byte masking key.
const MAX_HEADER: usize = 14;
/// `WebSocket::payload_chunk_size`: a frame's payload is handed on in whole chunks of this
/// size (its last chunk shorter), however the TCP stream was cut.
const CHUNK: u64 = 8192;
/// Where a direction is in its frames.
#[derive(Debug)]
enum Frame {
    Header(Vec<u8>),
    Payload {
        remaining: u64,
        mask: Option<[u8; 4]>,
        /// The chunk being gathered.
        chunk: Vec<u8>,
        fin: bool,
    },
}

#[derive(Debug)]
struct Side {
    frame: Frame,
    /// The opcode of the message being read (Zeek's `effective_opcode_`), once its first
    /// frame was seen; `None` when the next frame starts a message.
    message: Option<u8>,
}

impl Default for Side {
    fn default() -> Self {
        Side {
            frame: Frame::Header(Vec::with_capacity(MAX_HEADER)),
            message: None,
        }
    }
}

pub struct WebSocket {
    sides: [Side; 2],
    /// The protocol detection of the payload. The connection's HTTP transactions go on in
    /// it if the payload is HTTP, and are written at the end otherwise.
    inner: InnerStream,
    confirmed: bool,
    /// A gap or a malformed frame: nothing more is parsed (Zeek's `had_gap`, or the
    /// violation after a parse error).
    stopped: bool,
}

/// A frame header, once all its bytes are there.
struct Header {
    fin: bool,
    opcode: u8,
    len: u64,
    mask: Option<[u8; 4]>,
}

/// Parses a frame header from the start of `buf`: `Ok(None)` when more bytes are needed.
fn header(buf: &[u8]) -> Option<(Header, usize)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    let len1 = u64::from(b1 & 0x7f);
    let extended = match len1 {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let masked = b1 & 0x80 != 0;
    let size = 2 + extended + if masked { 4 } else { 0 };
    let rest = buf.get(2..size)?;
    let len = match extended {
        0 => len1,
        n => rest[..n].iter().fold(0u64, |v, b| (v << 8) | u64::from(*b)),
    };
    let mask = masked.then(|| {
        let k = &rest[extended..extended + 4];
        [k[0], k[1], k[2], k[3]]
    });
    let h = Header {
        fin: b0 & 0x80 != 0,
        opcode: b0 & 0x0f,
        len,
        mask,
    };
    Some((h, size))
}

impl WebSocket {
    pub fn new(conn: ConnInfo, http: HttpAnalyzer) -> Self {
        WebSocket {
            sides: Default::default(),
            inner: InnerStream::continuing(&conn, "HTTP", Box::new(http)),
            confirmed: false,
            stopped: false,
        }
    }

    fn side(&mut self, dir: Direction) -> &mut Side {
        &mut self.sides[usize::from(dir == Direction::Resp)]
    }

    /// One frame header, or `None` when the frame is not where a message stands (the
    /// `&enforce` on the first two bytes: a message begins with an opcode, continues with 0).
    fn begin_frame(&mut self, dir: Direction, h: Header) -> Option<Frame> {
        let side = self.side(dir);
        let first = side.message.is_none();
        if first == (h.opcode == OPCODE_CONTINUATION) {
            return None;
        }
        if first {
            side.message = Some(h.opcode);
        }
        Some(Frame::Payload {
            remaining: h.len,
            mask: h.mask,
            chunk: Vec::new(),
            fin: h.fin,
        })
    }

    /// The end of a frame: a final frame ends its message.
    fn end_frame(&mut self, dir: Direction, fin: bool, out: &mut dyn Emit) {
        let side = self.side(dir);
        side.frame = Frame::Header(Vec::with_capacity(MAX_HEADER));
        if fin {
            side.message = None;
            if !self.confirmed {
                self.confirmed = true;
                out.confirm_service("websocket");
            }
        }
    }

    fn payload(&mut self, ts: Timestamp, dir: Direction, data: &[u8], out: &mut dyn Emit) {
        let carries_data = matches!(self.side(dir).message, Some(OPCODE_TEXT | OPCODE_BINARY));
        if !carries_data || data.is_empty() {
            return;
        }
        self.inner.data(ts, dir, data, out);
    }

    fn stop(&mut self) {
        self.stopped = true;
    }
}

impl Analyzer for WebSocket {
    fn data(&mut self, ts: Timestamp, dir: Direction, mut data: &[u8], out: &mut dyn Emit) {
        while !data.is_empty() && !self.stopped {
            match &mut self.side(dir).frame {
                Frame::Header(buf) => {
                    let take = data.len().min(MAX_HEADER - buf.len());
                    buf.extend_from_slice(&data[..take]);
                    let Some((h, size)) = header(buf) else {
                        data = &data[take..];
                        continue;
                    };
                    // Bytes taken past the header belong to the payload.
                    let unused = buf.len() - size;
                    data = &data[take - unused..];
                    let Some(frame) = self.begin_frame(dir, h) else {
                        out.violation("websocket");
                        self.stop();
                        return;
                    };
                    if let Frame::Payload {
                        remaining: 0, fin, ..
                    } = frame
                    {
                        self.end_frame(dir, fin, out);
                    } else {
                        self.side(dir).frame = frame;
                    }
                }
                Frame::Payload {
                    remaining,
                    mask,
                    chunk,
                    fin,
                } => {
                    // `remaining` counts what is not yet in `chunk`.
                    let size = (*remaining + chunk.len() as u64).min(CHUNK) as usize;
                    let n = data.len().min(size - chunk.len());
                    chunk.extend_from_slice(&data[..n]);
                    *remaining -= n as u64;
                    data = &data[n..];
                    if chunk.len() < size {
                        continue;
                    }
                    let mut chunk = std::mem::take(chunk);
                    // The masking key runs on over the frame: chunks are multiples of 4
                    // bytes, but the last one.
                    if let Some(key) = mask {
                        for (i, b) in chunk.iter_mut().enumerate() {
                            *b ^= key[i % 4];
                        }
                    }
                    let (ended, fin) = (*remaining == 0, *fin);
                    self.payload(ts, dir, &chunk, out);
                    if ended {
                        self.end_frame(dir, fin, out);
                    }
                }
            }
        }
    }

    fn gap(&mut self, ts: Timestamp, dir: Direction, len: u64, out: &mut dyn Emit) {
        if !self.stopped {
            self.inner.gap(ts, dir, len, out);
        }
        self.stop();
    }

    fn finish(&mut self, ts: Timestamp, out: &mut dyn Emit) {
        self.inner.finish(ts, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Transport;
    use crate::proto::testkit::{conn, Collect};

    /// A frame as a client sends it (masked) or a server (not).
    fn frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        let mut f = vec![u8::from(fin) << 7 | opcode];
        let m = if mask.is_some() { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => f.push(m | n as u8),
            n if n <= 0xffff => {
                f.push(m | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(m | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        match mask {
            Some(k) => {
                f.extend_from_slice(&k);
                f.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
            }
            None => f.extend_from_slice(payload),
        }
        f
    }

    fn new_ws() -> WebSocket {
        let c = conn(Transport::Tcp, 80);
        WebSocket::new(c.clone(), HttpAnalyzer::new(c))
    }

    const KEY: Option<[u8; 4]> = Some([0x37, 0xfa, 0x21, 0x3d]);

    fn ssh_over_websocket(split: usize) -> Collect {
        let mut ws = new_ws();
        let mut out = Collect::default();
        let client = [
            frame(false, OPCODE_BINARY, b"SSH-2.0-Open", KEY),
            frame(true, OPCODE_CONTINUATION, b"SSH_9.6\r\n", KEY),
        ]
        .concat();
        // Delivered in pieces of `split` bytes, cutting headers and payloads anywhere.
        for piece in client.chunks(split) {
            ws.data(Timestamp(1.0), Direction::Orig, piece, &mut out);
        }
        let server = frame(true, OPCODE_BINARY, b"SSH-2.0-OpenSSH_8.2\r\n", None);
        ws.data(Timestamp(2.0), Direction::Resp, &server, &mut out);
        ws.finish(Timestamp(3.0), &mut out);
        out
    }

    #[test]
    fn unmasked_message_payload_reaches_the_protocol_found_in_it() {
        for split in [1, 2, 3, 7, 64] {
            let out = ssh_over_websocket(split);
            assert_eq!(out.services, vec!["websocket"], "split {split}");
            assert_eq!(out.records.len(), 1, "split {split}: one ssh.log row");
            assert!(
                out.rows()[0].contains("SSH-2.0-OpenSSH_9.6"),
                "{:?}",
                out.rows()
            );
        }
    }

    #[test]
    fn control_frames_are_not_payload_and_a_misplaced_continuation_stops_the_analysis() {
        let mut ws = new_ws();
        let mut out = Collect::default();
        let ping = frame(true, 0x9, b"SSH-2.0-x\r\n", KEY);
        ws.data(Timestamp(1.0), Direction::Orig, &ping, &mut out);
        // A control frame is a whole message: it confirms, but carries nothing on.
        assert!(out.records.is_empty());
        assert_eq!(out.services, vec!["websocket"]);
        let stray = frame(true, OPCODE_CONTINUATION, b"x", KEY);
        ws.data(Timestamp(1.0), Direction::Orig, &stray, &mut out);
        assert_eq!(out.violations, vec!["websocket"]);
        let text = frame(true, OPCODE_TEXT, b"SSH-2.0-x\r\n", KEY);
        ws.data(Timestamp(1.0), Direction::Orig, &text, &mut out);
        assert!(out.records.is_empty() && !out.services.contains(&"ssh"));
    }

    #[test]
    fn lengths_of_16_and_64_bits_and_unrecognised_payload_are_followed() {
        let mut ws = new_ws();
        let mut out = Collect::default();
        let big = vec![b'z'; 70_000];
        ws.data(
            Timestamp(1.0),
            Direction::Resp,
            &frame(true, OPCODE_BINARY, &big[..300], None),
            &mut out,
        );
        ws.data(
            Timestamp(1.0),
            Direction::Resp,
            &frame(true, OPCODE_BINARY, &big, None),
            &mut out,
        );
        assert_eq!(out.services, vec!["websocket"]);
        // Still in step after both: the next frame is parsed as a frame.
        ws.data(
            Timestamp(1.0),
            Direction::Resp,
            &frame(true, 0xa, b"", None),
            &mut out,
        );
        assert!(out.violations.is_empty());
        assert!(matches!(ws.sides[1].frame, Frame::Header(ref b) if b.is_empty()));
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut ws = new_ws();
            let mut out = Collect::default();
            let bytes: Vec<u8> = (0..64)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            ws.data(Timestamp(1.0), Direction::Orig, &bytes, &mut out);
            ws.gap(Timestamp(1.0), Direction::Orig, 10, &mut out);
            ws.finish(Timestamp(2.0), &mut out);
        }
    }
}
