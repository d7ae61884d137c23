//! SOCKS 4, 4a and 5 proxy handshakes (Zeek's `SOCKS` analyzer): conn.log's `socks` service,
//! tunnel.log's `Tunnel::SOCKS`, and the tunneled stream handed to protocol detection.
//! socks.log is not written.

mod parser;
mod state;

pub use state::SocksAnalyzer;

use crate::flow::{ConnInfo, Direction, Transport};
use crate::proto::Analyzer;

/// Zeek's `SOCKS::ports`.
pub const PORTS: &[(Transport, u16)] = &[(Transport::Tcp, 1080)];

pub fn new_analyzer(info: &ConnInfo) -> Box<dyn Analyzer> {
    Box::new(SocksAnalyzer::new(info.clone()))
}

/// The client signatures of Zeek's `socks/dpd.sig`: `dpd_socks4_client`
/// (`^\x04[\x01\x02].{0,32}\x00`) and `dpd_socks5_client` (`^\x05.[\x00\x01\x02]`), where `.`
/// is any byte but a newline. The server signatures that Zeek also requires are left to the
/// analyzer, which confirms only on a reply that parses.
pub fn probe(dir: Direction, first_bytes: &[u8]) -> bool {
    if dir != Direction::Orig {
        return false;
    }
    match first_bytes {
        [4, 1 | 2, rest @ ..] => {
            for &b in rest.iter().take(33) {
                match b {
                    0 => return true,
                    b'\n' => return false,
                    _ => {}
                }
            }
            false
        }
        [5, second, 0..=2, ..] => *second != b'\n',
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_follows_zeeks_client_signatures() {
        let o = Direction::Orig;
        assert!(probe(o, b"\x05\x01\x00"));
        assert!(probe(o, b"\x05\x03\x00\x03\x02"));
        assert!(!probe(o, b"\x05\x01\x03"), "method outside 0-2");
        assert!(!probe(o, b"\x05\n\x00"), "'.' is no newline");
        assert!(!probe(o, b"\x05\x01"), "truncated");
        assert!(probe(o, b"\x04\x01\x00\x50\xc0\x96\xbb\x0c\x00"));
        assert!(probe(o, b"\x04\x02\x00"));
        let mut long = b"\x04\x01".to_vec();
        long.extend([b'a'; 32]);
        long.push(0);
        assert!(probe(o, &long), "32 bytes before the NUL");
        long.insert(2, b'a');
        assert!(!probe(o, &long), "33 bytes before the NUL");
        assert!(!probe(o, b"\x04\x01ab\ncd\x00"), "newline before the NUL");
        assert!(!probe(o, b"\x04\x03\x00"));
        assert!(!probe(o, b"\x04\x01abc"), "no NUL");
        assert!(!probe(Direction::Resp, b"\x05\x01\x00"));
    }
}
