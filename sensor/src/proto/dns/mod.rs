//! DNS over UDP and TCP: dns.log.

mod log;
mod parser;
mod state;

pub use log::DnsInfo;
pub use state::DnsAnalyzer;

use crate::flow::{ConnInfo, Direction, Transport};
use crate::proto::Analyzer;

/// Zeek's `DNS::ports`.
pub const PORTS: &[(Transport, u16)] = &[
    (Transport::Udp, 53),
    (Transport::Tcp, 53),
    (Transport::Udp, 137),
    (Transport::Udp, 5353),
    (Transport::Udp, 5355),
];

pub fn new_analyzer(info: &ConnInfo) -> Box<dyn Analyzer> {
    Box::new(DnsAnalyzer::new(info.clone()))
}

/// Whether the first payload looks like a DNS message (bare, or with TCP's length prefix).
pub fn probe(dir: Direction, first_bytes: &[u8]) -> bool {
    let plausible = |msg: &[u8]| {
        let Ok(m) = parser::parse_message(msg) else {
            return false;
        };
        let h = m.header;
        let query_side = matches!(dir, Direction::Orig) != h.qr;
        m.error.is_none()
            && matches!(h.opcode, 0 | 4 | 5)
            && h.qdcount <= 4
            && (h.qdcount == 1 || h.qr || h.opcode != 0)
            && (h.qr || h.ancount == 0 || h.opcode != 0)
            && query_side
    };
    if plausible(first_bytes) {
        return true;
    }
    match first_bytes {
        [hi, lo, rest @ ..] => {
            let len = usize::from(u16::from_be_bytes([*hi, *lo]));
            len >= parser::HEADER_LEN && plausible(rest.get(..len.min(rest.len())).unwrap_or(rest))
        }
        _ => false,
    }
}
