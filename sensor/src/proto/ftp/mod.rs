//! FTP control connections: ftp.log.

mod adat;
mod log;
mod parser;
mod state;

pub use log::FtpInfo;
pub use state::FtpAnalyzer;

use crate::flow::{ConnInfo, Direction, Transport};
use crate::proto::Analyzer;

/// Zeek's `FTP::ports`.
pub const PORTS: &[(Transport, u16)] = &[(Transport::Tcp, 21), (Transport::Tcp, 2811)];

pub fn new_analyzer(info: &ConnInfo) -> Box<dyn Analyzer> {
    Box::new(FtpAnalyzer::new(info.clone()))
}

/// A `USER` command from the client, or a `220` greeting that names FTP from the server.
pub fn probe(dir: Direction, first_bytes: &[u8]) -> bool {
    match dir {
        Direction::Orig => first_bytes.len() > 5 && first_bytes[..5].eq_ignore_ascii_case(b"USER "),
        Direction::Resp => {
            let line = first_bytes
                .split(|b| *b == b'\n')
                .next()
                .unwrap_or_default();
            (line.starts_with(b"220 ") || line.starts_with(b"220-"))
                && line.to_ascii_lowercase().windows(3).any(|w| w == b"ftp")
        }
    }
}
