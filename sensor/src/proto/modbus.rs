//! Modbus/TCP: only the `modbus` service (no modbus.log), confirmed once a whole PDU parses.

use crate::flow::{ConnInfo, Direction, Timestamp, Transport};
use crate::proto::{Analyzer, Emit};

/// Zeek's `Modbus::ports` (base/protocols/modbus/main.zeek).
pub const PORTS: &[(Transport, u16)] = &[(Transport::Tcp, 502)];

/// `ModbusTCP_TransportHeader` up to `len`: transaction, protocol identifier, length.
const HEADER_LEN: usize = 6;
/// The unit identifier and function code, which `len` counts and the header record reads.
const MIN_LEN: usize = 2;

pub fn new_analyzer(_info: &ConnInfo) -> Box<dyn Analyzer> {
    Box::new(ModbusAnalyzer {
        pending: [Vec::new(), Vec::new()],
        done: false,
    })
}

/// Never: Zeek has no Modbus DPD signature; its analyzer is attached by port only.
pub fn probe(_dir: Direction, _first_bytes: &[u8]) -> bool {
    false
}

/// What a direction's bytes so far say about its first PDU.
#[derive(Debug, PartialEq, Eq)]
enum Pdu {
    /// The whole `ModbusTCP_PDU` (`&length=header.len+6`) is there.
    Complete,
    NeedMore,
    NotModbus,
}

/// Modbus/TCP's protocol identifier is 0; any other value, or a length too short for the
/// unit identifier and function code the header reads, is not Modbus.
fn first_pdu(data: &[u8]) -> Pdu {
    let (Some(pid), Some(len)) = (be16(data, 2), be16(data, 4)) else {
        return Pdu::NeedMore;
    };
    if pid != 0 || usize::from(len) < MIN_LEN {
        return Pdu::NotModbus;
    }
    if data.len() >= HEADER_LEN + usize::from(len) {
        Pdu::Complete
    } else {
        Pdu::NeedMore
    }
}

fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]))
}

pub struct ModbusAnalyzer {
    /// Each direction's bytes until its first PDU is complete (at most one PDU: 65541 bytes).
    pending: [Vec<u8>; 2],
    /// Confirmed, or found not to be Modbus.
    done: bool,
}

impl Analyzer for ModbusAnalyzer {
    /// `ModbusTCP_Flow::deliver_ModbusTCP_PDU` (modbus-analyzer.pac): the first complete PDU
    /// of either direction confirms the protocol.
    fn data(&mut self, _ts: Timestamp, dir: Direction, data: &[u8], out: &mut dyn Emit) {
        if self.done {
            return;
        }
        let buf = &mut self.pending[usize::from(dir == Direction::Resp)];
        buf.extend_from_slice(data);
        match first_pdu(buf) {
            Pdu::Complete => {
                self.done = true;
                out.confirm_service("modbus");
            }
            Pdu::NotModbus => {
                self.done = true;
                out.violation("modbus");
            }
            Pdu::NeedMore => return,
        }
        self.pending = [Vec::new(), Vec::new()];
    }

    fn gap(&mut self, _ts: Timestamp, _dir: Direction, _len: u64, _out: &mut dyn Emit) {
        self.done = true;
        self.pending = [Vec::new(), Vec::new()];
    }

    fn finish(&mut self, _ts: Timestamp, _out: &mut dyn Emit) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testkit::{feed, Collect};

    fn run(chunks: &[(Direction, &[u8])]) -> Collect {
        feed(new_analyzer, 502, chunks)
    }

    /// A read-coils request, split across two segments.
    #[test]
    fn a_whole_pdu_confirms_modbus() {
        let req = [0, 1, 0, 0, 0, 6, 0x0a, 1, 0, 0, 0, 1];
        let out = run(&[(Direction::Orig, &req[..5]), (Direction::Orig, &req[5..])]);
        assert_eq!(out.services, ["modbus"]);
    }

    /// A server answering other protocols with a short reply whose length covers it: not
    /// Modbus while the protocol identifier is not 0.
    #[test]
    fn a_nonzero_protocol_identifier_is_not_modbus() {
        let out = run(&[
            (Direction::Orig, b"\x05\x00\x0b\x03\x10\x00\x00\x00\x48\x00"),
            (Direction::Resp, b"\x05\x00\x0b\x03\x00\x03\x00\x80\x01"),
        ]);
        assert!(out.services.is_empty());
        assert_eq!(out.violations, ["modbus"]);
    }

    #[test]
    fn an_incomplete_pdu_confirms_nothing() {
        let out = run(&[(Direction::Orig, &[0, 1, 0, 0, 0, 6, 0x0a, 1])]);
        assert!(out.services.is_empty() && out.violations.is_empty());
    }
}
