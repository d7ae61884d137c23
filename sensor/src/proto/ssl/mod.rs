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

/// Zeek's `dpd_tls_client` (an originator's ClientHello offering SSL 3 to TLS 1.2 in a
/// record of those versions) and `dpd_tls_server` (a responder's ServerHello, possibly after
/// an alert record) signatures.
pub fn probe(dir: Direction, first_bytes: &[u8]) -> bool {
    let tls_record = |b: &[u8], kind: u8| matches!(b, [k, 3, 0..=3, ..] if *k == kind);
    match dir {
        Direction::Orig => {
            tls_record(first_bytes, 0x16)
                && matches!(first_bytes.get(5..11), Some([1, _, _, _, 3, 0..=3]))
        }
        Direction::Resp => {
            let hello = if tls_record(first_bytes, 0x15) {
                first_bytes.get(7..).unwrap_or_default()
            } else {
                first_bytes
            };
            tls_record(hello, 0x16)
                && matches!(
                    hello.get(5..11),
                    Some([2, _, _, _, 3, 0..=4] | [2, _, _, _, 0x7f, 0..=0x50])
                )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_follow_zeeks_dpd_signatures() {
        let client = [0x16, 3, 1, 0, 0x40, 1, 0, 0, 0x3c, 3, 3];
        assert!(probe(Direction::Orig, &client));
        assert!(!probe(Direction::Resp, &client));
        // A TLS 1.3 record version is not in the client signature; neither is SSLv2.
        assert!(!probe(
            Direction::Orig,
            &[0x16, 3, 4, 0, 0x40, 1, 0, 0, 0x3c, 3, 3]
        ));
        assert!(!probe(Direction::Orig, &[0x80, 0x2e, 1, 3, 1, 0, 0x15]));
        let server = [0x16, 3, 3, 0, 0x40, 2, 0, 0, 0x3c, 3, 3];
        assert!(probe(Direction::Resp, &server));
        let mut after_alert = vec![0x15, 3, 3, 0, 2, 1, 0];
        after_alert.extend_from_slice(&[0x16, 3, 3, 0, 0x40, 2, 0, 0, 0x3c, 0x7f, 0x17]);
        assert!(probe(Direction::Resp, &after_alert));
    }
}
