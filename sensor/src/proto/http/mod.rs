//! HTTP/1.x: http.log.

mod body;
pub(crate) mod filename;
mod files;
mod header_rules;
mod log;
mod multipart;
mod parser;
mod state;

pub use log::HttpInfo;
pub use state::HttpAnalyzer;

use crate::flow::{ConnInfo, Direction, Transport};
use crate::proto::Analyzer;

/// Zeek's `HTTP::ports`.
pub const PORTS: &[(Transport, u16)] = &[
    (Transport::Tcp, 80),
    (Transport::Tcp, 81),
    (Transport::Tcp, 631),
    (Transport::Tcp, 1080),
    (Transport::Tcp, 3128),
    (Transport::Tcp, 8000),
    (Transport::Tcp, 8080),
    (Transport::Tcp, 8888),
];

pub fn new_analyzer(info: &ConnInfo) -> Box<dyn Analyzer> {
    Box::new(HttpAnalyzer::new(info.clone()))
}

/// A request line (`METHOD SP ...`) from the client, or a status line from the server.
pub fn probe(dir: Direction, first_bytes: &[u8]) -> bool {
    match dir {
        Direction::Orig => {
            let line = first_bytes
                .split(|b| *b == b'\n')
                .next()
                .unwrap_or_default();
            let method_len = line.iter().take_while(|b| b.is_ascii_uppercase()).count();
            method_len > 0
                && line.get(method_len) == Some(&b' ')
                && parser::is_known_method(&String::from_utf8_lossy(&line[..method_len]))
        }
        Direction::Resp => first_bytes.starts_with(b"HTTP/1."),
    }
}

type Probe = fn(Direction, &[u8]) -> bool;
type Factory = fn(&ConnInfo) -> Box<dyn Analyzer>;

/// The analyzer for what a CONNECT tunnel carries, picked by content.
fn tunnel_analyzer(conn: &ConnInfo, dir: Direction, data: &[u8]) -> Option<Box<dyn Analyzer>> {
    let candidates: &[(Probe, Factory)] = &[
        (crate::proto::smtp::probe, crate::proto::smtp::new_analyzer),
        (crate::proto::ssl::probe, crate::proto::ssl::new_analyzer),
        (crate::proto::ssh::probe, crate::proto::ssh::new_analyzer),
        (crate::proto::ftp::probe, crate::proto::ftp::new_analyzer),
        (probe, new_analyzer),
    ];
    candidates
        .iter()
        .find(|(p, _)| p(dir, data))
        .map(|(_, f)| f(conn))
}
