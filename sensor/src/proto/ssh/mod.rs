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

/// An identification line (`SSH-`) from either side.
pub fn probe(_dir: Direction, first_bytes: &[u8]) -> bool {
    first_bytes.starts_with(b"SSH-")
}
