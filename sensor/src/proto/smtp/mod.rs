//! SMTP: smtp.log (envelope, top-level message headers, BDAT chunking, STARTTLS).

mod decode;
mod files;
mod log;
mod mime;
mod parser;
mod state;

pub use log::SmtpInfo;
pub use state::SmtpAnalyzer;

use crate::flow::{ConnInfo, Direction, Transport};
use crate::proto::Analyzer;

/// Zeek's `SMTP::ports`.
pub const PORTS: &[(Transport, u16)] = &[(Transport::Tcp, 25), (Transport::Tcp, 587)];

pub fn new_analyzer(info: &ConnInfo) -> Box<dyn Analyzer> {
    Box::new(SmtpAnalyzer::new(info.clone()))
}

/// `HELO`/`EHLO` from the client, or a `220` greeting that names SMTP from the server.
pub fn probe(dir: Direction, first_bytes: &[u8]) -> bool {
    let line = first_bytes
        .split(|b| *b == b'\n')
        .next()
        .unwrap_or_default();
    match dir {
        Direction::Orig => {
            line.len() >= 5
                && (line[..5].eq_ignore_ascii_case(b"HELO ")
                    || line[..5].eq_ignore_ascii_case(b"EHLO "))
        }
        Direction::Resp => {
            let lower = line.to_ascii_lowercase();
            (line.starts_with(b"220 ") || line.starts_with(b"220-"))
                && (lower.windows(4).any(|w| w == b"smtp")
                    || lower.windows(4).any(|w| w == b"mail"))
        }
    }
}
