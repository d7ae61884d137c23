//! DCE-RPC over TCP (Zeek's `DCE_RPC` analyzer): only the `dce_rpc` service, confirmed by the
//! first whole PDU of either direction as `dce_rpc-protocol.pac` reads it. No dce_rpc.log.
//!
//! Zeek's analyzer violations (binpac exceptions) are not reported: dce-rpc/main.zeek puts
//! `ANALYZER_DCE_RPC` in `DPD::ignore_violations`, so they neither remove the analyzer nor
//! its service. A direction that raised one is not read further.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use crate::flow::{ConnInfo, Direction, Timestamp, Transport};
use crate::proto::{Analyzer, Emit};

/// Zeek's `DCE_RPC::ports` (base/protocols/dce-rpc/main.zeek).
pub const PORTS: &[(Transport, u16)] = &[(Transport::Tcp, 135)];

/// `DCE_RPC_Header`: version, minor version, type, flags, data representation, lengths, call id.
const HEADER_LEN: usize = 16;
/// `DCE_RPC::max_frag_data` and `DCE_RPC::max_cmd_reassembly` (dce-rpc/consts.bif defaults).
const MAX_FRAG_DATA: usize = 30000;
const MAX_CMD_REASSEMBLY: usize = 20;

pub fn new_analyzer(_info: &ConnInfo) -> Box<dyn Analyzer> {
    Box::new(DceRpcAnalyzer {
        dirs: [Flow::default(), Flow::default()],
        confirmed: false,
        skip: false,
    })
}

/// Zeek's `dpd_dce_rpc` (dce-rpc/dpd.sig): `^\x05[\x00\x01][\x00-\x13]\x03` in either direction.
pub fn probe(_dir: Direction, first_bytes: &[u8]) -> bool {
    matches!(first_bytes, [5, 0 | 1, 0..=0x13, 3, ..])
}

#[derive(Default)]
struct Flow {
    pending: Vec<u8>,
    /// `DCE_RPC_Flow::fb`: the fragments of each call id so far.
    fragments: HashMap<u32, Vec<u8>>,
    /// A binpac exception ended this direction.
    broken: bool,
}

/// A binpac exception.
struct Malformed;

pub struct DceRpcAnalyzer {
    dirs: [Flow; 2],
    confirmed: bool,
    /// `SetSkip(true)` (after a reassembly limit) or a content gap (`had_gap`).
    skip: bool,
}

impl DceRpcAnalyzer {
    /// One whole `DCE_RPC_PDU` (`&length=header.frag_length`, at least its header).
    fn pdu(
        &mut self,
        ts: Timestamp,
        d: usize,
        pdu: &[u8],
        out: &mut dyn Emit,
    ) -> Result<(), Malformed> {
        let little = pdu[4] >> 4 != 0;
        let u16_at = |at: usize| {
            let b = [pdu[at], pdu[at + 1]];
            usize::from(if little {
                u16::from_le_bytes(b)
            } else {
                u16::from_be_bytes(b)
            })
        };
        let auth_len = u16_at(10);
        let call_id = u32::from_le_bytes([pdu[12], pdu[13], pdu[14], pdu[15]]);
        let trailer = auth_len + if auth_len > 0 { 8 } else { 0 };
        let frag = pdu
            .len()
            .checked_sub(HEADER_LEN + trailer)
            .and_then(|n| pdu.get(HEADER_LEN..HEADER_LEN + n))
            .ok_or(Malformed)?;
        let (first, last, object) = (pdu[3] & 1 != 0, pdu[3] & 2 != 0, pdu[3] & 0x80 != 0);
        let fragments = &mut self.dirs[d].fragments;
        // `reassemble_fragment` and `reassembled_body`.
        let body = if first {
            let count = fragments.len();
            match fragments.entry(call_id) {
                Entry::Occupied(_) => {
                    out.weird(ts, "multiple_first_fragments_in_dce_rpc_reassembly", None);
                    self.skip = true;
                    None
                }
                Entry::Vacant(_) if last => Some(frag.to_vec()),
                Entry::Vacant(slot) => {
                    slot.insert(frag.to_vec());
                    if count + 1 > MAX_CMD_REASSEMBLY {
                        out.weird(ts, "too_many_dce_rpc_msgs_in_reassembly", None);
                        self.skip = true;
                    }
                    if frag.len() > MAX_FRAG_DATA {
                        out.weird(ts, "too_much_dce_rpc_fragment_data", None);
                        self.skip = true;
                    }
                    None
                }
            }
        } else if let Some(buf) = fragments.get_mut(&call_id) {
            buf.extend_from_slice(frag);
            if buf.len() > MAX_FRAG_DATA {
                out.weird(ts, "too_much_dce_rpc_fragment_data", None);
                self.skip = true;
            }
            if last {
                fragments.remove(&call_id)
            } else {
                None
            }
        } else {
            None
        };
        if let Some(body) = body {
            check_body(pdu[2], object, little, &body)?;
        }
        // `proc_dce_rpc_pdu`: a whole PDU parsed.
        if !self.confirmed {
            self.confirmed = true;
            out.confirm_service("dce_rpc");
        }
        Ok(())
    }
}

/// `DCE_RPC_Body`: whether the body of this type parses.
fn check_body(ptype: u8, object: bool, little: bool, body: &[u8]) -> Result<(), Malformed> {
    let get = |at: usize, n: usize| body.get(at..at.saturating_add(n)).ok_or(Malformed);
    match ptype {
        // Bind, AlterContext: a list of context requests.
        11 | 14 => {
            let mut at = 8;
            let n = get(at, 1)?[0];
            at += 4;
            for _ in 0..n {
                let syntaxes = usize::from(get(at + 2, 1)?[0]);
                at += 4 + 20 * (1 + syntaxes);
            }
            get(0, at).map(|_| ())
        }
        // BindAck, AlterContextResp: the secondary address, aligned, then context replies.
        12 | 15 => {
            let b = get(8, 2)?;
            let sec = usize::from(if little {
                u16::from_le_bytes([b[0], b[1]])
            } else {
                u16::from_be_bytes([b[0], b[1]])
            });
            let at = (10 + sec).next_multiple_of(4);
            let n = usize::from(get(at, 1)?[0]);
            get(0, at + 4 + 24 * n).map(|_| ())
        }
        // Request: the object uuid when flagged; the stub's alignment to 8 adds nothing.
        0 => get(0, if object { 24 } else { 8 }).map(|_| ()),
        // Response.
        2 => get(0, 8).map(|_| ()),
        _ => Ok(()),
    }
}

impl Analyzer for DceRpcAnalyzer {
    /// `DCE_RPC_Analyzer::DeliverStream`: `DCE_RPC_PDU` flow units, in each direction.
    fn data(&mut self, ts: Timestamp, dir: Direction, data: &[u8], out: &mut dyn Emit) {
        let d = usize::from(dir == Direction::Resp);
        if self.skip || self.dirs[d].broken {
            return;
        }
        let mut buf = std::mem::take(&mut self.dirs[d].pending);
        buf.extend_from_slice(data);
        let mut at = 0;
        while let Some(header) = buf.get(at..at + HEADER_LEN) {
            // `rpc_vers &enforce(rpc_vers == 5)`, and a fragment shorter than its header.
            let little = header[4] >> 4 != 0;
            let b = [header[8], header[9]];
            let len = usize::from(if little {
                u16::from_le_bytes(b)
            } else {
                u16::from_be_bytes(b)
            });
            if header[0] != 5 || len < HEADER_LEN {
                self.dirs[d].broken = true;
                return;
            }
            let Some(pdu) = buf.get(at..at + len) else {
                break;
            };
            at += len;
            if self.pdu(ts, d, pdu, out).is_err() {
                self.dirs[d].broken = true;
                return;
            }
            if self.skip {
                return;
            }
        }
        self.dirs[d].pending = buf.get(at..).unwrap_or_default().to_vec();
    }

    fn gap(&mut self, _ts: Timestamp, _dir: Direction, _len: u64, _out: &mut dyn Emit) {
        self.skip = true;
        self.dirs = [Flow::default(), Flow::default()];
    }

    fn finish(&mut self, _ts: Timestamp, _out: &mut dyn Emit) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testkit::{conn, feed, Collect};

    fn run(chunks: &[(Direction, &[u8])]) -> Collect {
        feed(new_analyzer, 502, chunks)
    }

    /// A bind of one context with one transfer syntax (72 bytes, little-endian).
    fn bind() -> Vec<u8> {
        let mut p = vec![5, 0, 11, 3, 0x10, 0, 0, 0, 72, 0, 0, 0, 1, 0, 0, 0];
        p.extend_from_slice(&[0xb8, 0x10, 0xb8, 0x10, 0, 0, 0, 0, 1, 0, 0, 0]);
        p.extend_from_slice(&[0, 0, 1, 0]);
        p.extend_from_slice(&[0xaa; 40]);
        p
    }

    #[test]
    fn a_whole_bind_confirms_dce_rpc() {
        let p = bind();
        let out = run(&[(Direction::Orig, &p[..30]), (Direction::Orig, &p[30..])]);
        assert_eq!(out.services, ["dce_rpc"]);
        assert!(out.violations.is_empty());
    }

    #[test]
    fn a_short_reply_or_a_bind_too_short_for_its_contexts_confirms_nothing() {
        let out = run(&[(Direction::Resp, b"\x05\x00\x0c\x03\x10\x00\x00\x00\x48")]);
        assert!(out.services.is_empty());
        let mut p = bind();
        p[8] = 40;
        p.truncate(40);
        let out = run(&[(Direction::Orig, &p), (Direction::Orig, &bind())]);
        assert!(
            out.services.is_empty(),
            "the direction is not read after an exception"
        );
        assert!(out.violations.is_empty(), "DPD::ignore_violations");
    }

    #[test]
    fn fragments_confirm_before_their_body_is_whole() {
        let mut first = vec![5, 0, 0, 1, 0x10, 0, 0, 0, 24, 0, 0, 0, 7, 0, 0, 0];
        first.extend_from_slice(&[0; 8]);
        let out = run(&[(Direction::Orig, &first)]);
        assert_eq!(out.services, ["dce_rpc"]);
    }

    #[test]
    fn probe_follows_zeeks_signature() {
        assert!(probe(Direction::Orig, b"\x05\x00\x0b\x03\x10\x00"));
        assert!(probe(Direction::Resp, b"\x05\x01\x13\x03"));
        assert!(!probe(Direction::Orig, b"\x05\x00\x14\x03"));
        assert!(!probe(Direction::Orig, b"\x04\x00\x0b\x03"));
    }

    #[test]
    fn random_input_never_panics() {
        use proptest::prelude::*;
        proptest!(|(chunks in proptest::collection::vec(
            (any::<bool>(), any::<u8>(), any::<u8>(), proptest::collection::vec(any::<u8>(), 0..120)),
            0..10))| {
            let mut a = new_analyzer(&conn(Transport::Tcp, 135));
            let mut out = Collect::default();
            for (orig, ptype, flags, body) in &chunks {
                let dir = if *orig { Direction::Orig } else { Direction::Resp };
                let len = u16::try_from(body.len() + HEADER_LEN).unwrap_or(16);
                let mut p = vec![5, 0, *ptype % 20, *flags, 0x10, 0, 0, 0];
                p.extend_from_slice(&len.to_le_bytes());
                p.extend_from_slice(&[body.first().copied().unwrap_or(0) % 4, 0, 1, 0, 0, 0]);
                p.extend_from_slice(body);
                a.data(Timestamp(1.0), dir, &p, &mut out);
            }
        });
    }
}
