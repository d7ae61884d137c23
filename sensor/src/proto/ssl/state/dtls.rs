//! The DTLS record layer (Zeek's `dtls-protocol.pac` and `dtls-analyzer.pac`): records with
//! epochs (above 0 is ciphertext), and handshake messages cut into fragments that are put back
//! together before the TLS handshake code reads them.

use super::{idx, parser, SslAnalyzer};
use crate::flow::{Direction, Timestamp};
use crate::proto::Emit;

const RECORD_HEADER_LEN: usize = 13;
const DTLS13: u16 = 0xfefc;
const FRAGMENT_HEADER_LEN: usize = 12;
/// Zeek's `SSL::dtls_max_version_errors`: records with a bad version tolerated before the
/// analyzer gives up.
const MAX_VERSION_ERRORS: u32 = 10;
/// Largest handshake message reassembled from fragments.
const MAX_HANDSHAKE_LEN: usize = 1 << 20;
/// Zeek gives up on a message cut into more than this many records.
const MAX_FRAGMENT_SPAN: u64 = 30;

/// One direction's handshake message under reassembly (`message_info`).
#[derive(Default)]
pub(super) struct Fragments {
    message_seq: u16,
    length: usize,
    buffer: Vec<u8>,
    first_record: u64,
    first_seen: bool,
    last_record: Option<u64>,
    /// Bit n: the fragment in record `first_record + n` was copied.
    seen: u32,
}

/// DTLS state beyond what TLS keeps.
#[derive(Default)]
pub(super) struct DtlsState {
    fragments: [Fragments; 2],
    invalid_versions: u32,
}

fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |acc, b| acc << 8 | u64::from(*b))
}

/// One datagram: a sequence of records (a STUN message, as WebRTC mixes in, is skipped).
pub(super) fn datagram(
    a: &mut SslAnalyzer,
    ts: Timestamp,
    dir: Direction,
    data: &[u8],
    out: &mut dyn Emit,
) {
    if data.len() > 20 && data[4..8] == [0x21, 0x12, 0xa4, 0x42] {
        return;
    }
    let mut rest = data;
    while !a.stopped {
        // DTLS 1.3's unified header (`001` in the top bits): read no further
        // (`is_unified_record`).
        if a.chosen_version == Some(DTLS13) && rest.first().is_some_and(|b| b & 0xe0 == 0x20) {
            return;
        }
        let Some(hdr) = rest.get(..RECORD_HEADER_LEN) else {
            return;
        };
        let version = u16::from_be_bytes([hdr[1], hdr[2]]);
        if !matches!(version, 0xfeff | 0xfefd) {
            // The rest of the datagram is swallowed.
            a.dtls.invalid_versions += 1;
            if a.is_confirmed() {
                a.violation("Invalid version in DTLS connection", out);
            } else if a.dtls.invalid_versions > MAX_VERSION_ERRORS {
                a.stopped = true;
            }
            return;
        }
        if a.is_confirmed() {
            a.dtls.invalid_versions = 0;
        }
        let epoch = u16::from_be_bytes([hdr[3], hdr[4]]);
        let record_seq = be(&hdr[5..11]);
        let len = usize::from(u16::from_be_bytes([hdr[11], hdr[12]]));
        let Some(payload) = rest.get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + len) else {
            a.violation("DTLS record longer than its datagram", out);
            return;
        };
        rest = &rest[RECORD_HEADER_LEN + len..];
        if epoch != 0 {
            a.ciphertext(out);
            continue;
        }
        match parser::ContentType::from_u8(hdr[0]) {
            parser::ContentType::Handshake => fragment(a, ts, dir, record_seq, payload, out),
            kind => a.record(ts, dir, kind, payload, out),
        }
    }
}

/// One handshake fragment: a whole message goes straight on, pieces are collected.
fn fragment(
    a: &mut SslAnalyzer,
    ts: Timestamp,
    dir: Direction,
    record_seq: u64,
    payload: &[u8],
    out: &mut dyn Emit,
) {
    let Some(hdr) = payload.get(..FRAGMENT_HEADER_LEN) else {
        a.violation("truncated DTLS handshake header", out);
        return;
    };
    let kind = hdr[0];
    let length = usize::try_from(be(&hdr[1..4])).unwrap_or(usize::MAX);
    let message_seq = u16::from_be_bytes([hdr[4], hdr[5]]);
    let offset = usize::try_from(be(&hdr[6..9])).unwrap_or(usize::MAX);
    let frag_len = usize::try_from(be(&hdr[9..12])).unwrap_or(usize::MAX);
    let data = &payload[FRAGMENT_HEADER_LEN..];
    if offset == 0 && length == frag_len {
        if let Some(body) = data.get(..length) {
            deliver(a, ts, dir, kind, body, out);
        }
        return;
    }
    if length > MAX_HANDSHAKE_LEN {
        a.violation("DTLS record length larger than allowed maximum", out);
        return;
    }
    let f = &mut a.dtls.fragments[idx(dir)];
    if f.message_seq != message_seq || f.length != length || f.buffer.is_empty() {
        *f = Fragments {
            message_seq,
            length,
            buffer: vec![0; length],
            first_record: record_seq,
            ..Fragments::default()
        };
    }
    if f.first_record > record_seq {
        if f.first_seen {
            a.violation("Saw second and different first message fragment", out);
            return;
        }
        let shift = u32::try_from(f.first_record - record_seq).unwrap_or(u32::MAX);
        f.seen = f.seen.checked_shl(shift).unwrap_or(0);
        f.first_record = record_seq;
    }
    if offset == 0 {
        f.first_seen = true;
    }
    let Some(bit) = u32::try_from(record_seq - f.first_record)
        .ok()
        .and_then(|n| 1u32.checked_shl(n))
    else {
        a.violation("DTLS Message fragmented over too many pieces", out);
        return;
    };
    if f.seen & bit != 0 {
        return;
    }
    if data.len() != frag_len {
        a.violation("DTLS handshake record length does not match", out);
        return;
    }
    let Some(dst) = offset
        .checked_add(frag_len)
        .and_then(|end| f.buffer.get_mut(offset..end))
    else {
        a.violation("DTLS handshake fragment past end of buffer", out);
        return;
    };
    dst.copy_from_slice(data);
    f.seen |= bit;
    if offset + frag_len == length {
        f.last_record = Some(record_seq);
    }
    let (Some(last), true) = (f.last_record, f.first_seen) else {
        return;
    };
    let span = last.saturating_sub(f.first_record);
    if span > MAX_FRAGMENT_SPAN {
        a.violation("DTLS Message fragmented over more than 30 pieces", out);
        return;
    }
    let all = (1u32 << (span + 1)) - 1;
    if !f.seen & all == 0 {
        let body = f.buffer.clone();
        deliver(a, ts, dir, kind, &body, out);
    }
}

/// Hands a whole handshake message to the TLS handshake code, with a TLS header.
fn deliver(
    a: &mut SslAnalyzer,
    ts: Timestamp,
    dir: Direction,
    kind: u8,
    body: &[u8],
    out: &mut dyn Emit,
) {
    let Ok(len) = u32::try_from(body.len()) else {
        return;
    };
    let len = len.to_be_bytes();
    let mut msg = Vec::with_capacity(4 + body.len());
    msg.extend_from_slice(&[kind, len[1], len[2], len[3]]);
    msg.extend_from_slice(body);
    a.handshake(ts, dir, kind, &msg, out);
}
