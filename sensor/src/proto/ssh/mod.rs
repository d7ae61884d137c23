//! SSH: ssh.log (banners, negotiated algorithms, host key, authentication heuristic).

mod log;
mod parser;
mod state;

pub use log::{LoginOutcome, SshInfo};
pub use state::SshAnalyzer;

use crate::flow::{ConnInfo, Direction, Transport};
use crate::proto::Analyzer;

/// Zeek's `SSH::ports`.
pub const PORTS: &[(Transport, u16)] = &[(Transport::Tcp, 22)];

pub fn new_analyzer(info: &ConnInfo) -> Box<dyn Analyzer> {
    Box::new(SshAnalyzer::new(info.clone()))
}

/// The payload of Zeek's `dpd_ssh_client` and `dpd_ssh_server` signatures
/// (`^[sS][sS][hH]-[12]\.`), from either side.
pub fn probe(_dir: Direction, first_bytes: &[u8]) -> bool {
    matches!(first_bytes, [s1, s2, h, b'-', b'1' | b'2', b'.', ..]
        if s1.eq_ignore_ascii_case(&b's') && s2.eq_ignore_ascii_case(&b's') && h.eq_ignore_ascii_case(&b'h'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_follows_zeeks_dpd_signature() {
        assert!(probe(Direction::Resp, b"SSH-2.0-OpenSSH_9.6"));
        assert!(probe(Direction::Orig, b"ssh-1.99-x"));
        assert!(!probe(Direction::Orig, b"SSH-3.0-x"));
        assert!(!probe(Direction::Orig, b"SSH-"));
    }
}
