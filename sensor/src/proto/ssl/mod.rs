//! SSL/TLS: ssl.log, directly or after a POP3/XMPP STARTTLS upgrade.

mod log;
mod names;
mod parser;
pub mod starttls;
mod state;
pub mod x509;

pub use log::SslInfo;
pub use state::SslAnalyzer;

use crate::flow::{ConnInfo, Direction, Transport};
use crate::proto::Analyzer;

/// Zeek's `SSL::ssl_ports` (TLS over TCP).
pub const PORTS: &[(Transport, u16)] = &[
    (Transport::Tcp, 443),
    (Transport::Tcp, 563),
    (Transport::Tcp, 585),
    (Transport::Tcp, 614),
    (Transport::Tcp, 636),
    (Transport::Tcp, 989),
    (Transport::Tcp, 990),
    (Transport::Tcp, 992),
    (Transport::Tcp, 993),
    (Transport::Tcp, 995),
    (Transport::Tcp, 5223),
];

/// Zeek's `SSL::dtls_ports`.
pub const DTLS_PORTS: &[(Transport, u16)] = &[(Transport::Udp, 443)];

pub fn new_analyzer(info: &ConnInfo) -> Box<dyn Analyzer> {
    Box::new(SslAnalyzer::new(info.clone()))
}

pub fn new_dtls_analyzer(info: &ConnInfo) -> Box<dyn Analyzer> {
    Box::new(SslAnalyzer::new_dtls(info.clone()))
}

/// Zeek's `dpd_dtls_client` signature: a DTLS 1.0/1.2 record in epoch 0 holding a ClientHello.
pub fn probe_dtls(_dir: Direction, first_bytes: &[u8]) -> bool {
    matches!(
        first_bytes,
        [
            0x16,
            0xfe,
            0xff | 0xfd,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            _,
            _,
            _,
            1,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            0xfe,
            0xff | 0xfd,
            ..
        ]
    )
}

/// A TLS handshake record header (`0x16 0x03 0x00..=0x04`), or an SSLv2-format ClientHello.
pub fn probe(dir: Direction, first_bytes: &[u8]) -> bool {
    matches!(first_bytes, [0x16, 0x03, minor, ..] if *minor <= 4)
        || (dir == Direction::Orig
            && matches!(first_bytes, [hi, _, 1, 3 | 2, ..] if hi & 0x80 != 0))
}
