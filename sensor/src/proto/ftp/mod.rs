//! FTP control connections (ftp.log) and the data connections they announce (files.log).

mod adat;
mod data;
mod expect;
mod log;
mod parser;
mod state;

pub use data::FtpDataAnalyzer;
pub use expect::{Expectations, Transfer};
pub use log::{DataChannel, FtpInfo};
pub use state::FtpAnalyzer;

use crate::flow::{ConnInfo, Direction, Transport};
use crate::proto::Analyzer;

/// The service of a data connection (`scheduled_analyzer_applied` in main.zeek).
pub const DATA_SERVICE: &str = "ftp-data";

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
