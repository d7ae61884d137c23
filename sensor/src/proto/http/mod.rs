//! HTTP/1.x: http.log.

mod body;
mod encoding;
pub(crate) mod filename;
mod files;
mod header_rules;
mod log;
mod mime_tree;
mod multipart;
mod nested;
mod parser;
pub(crate) mod part;
mod state;
#[cfg(test)]
mod testing;
mod websocket;
mod zip;

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

/// The methods of Zeek's `dpd_http_client` signature (`http/dpd.sig`), with the QUERY method its
/// current version finds on any port (zeek-dev d50).
const DPD_CLIENT_METHODS: &[&[u8]] = &[
    b"OPTIONS",
    b"GET",
    b"HEAD",
    b"POST",
    b"PUT",
    b"DELETE",
    b"ACL",
    b"BASELINE-CONTROL",
    b"BIND",
    b"CHECKIN",
    b"CHECKOUT",
    b"CONNECT",
    b"COPY",
    b"LABEL",
    b"LINK",
    b"LOCK",
    b"MERGE",
    b"MKACTIVITY",
    b"MKCALENDAR",
    b"MKCOL",
    b"MKREDIRECTREF",
    b"MOVE",
    b"ORDERPATCH",
    b"PATCH",
    b"PROPFIND",
    b"PROPPATCH",
    b"REBIND",
    b"REPORT",
    b"SEARCH",
    b"TRACE",
    b"UNBIND",
    b"UNCHECKOUT",
    b"UNLINK",
    b"UNLOCK",
    b"UPDATE",
    b"VERSION-CONTROL",
    b"BCOPY",
    b"BDELETE",
    b"BMOVE",
    b"BPROPFIND",
    b"BPROPPATCH",
    b"NOTIFY",
    b"POLL",
    b"SUBSCRIBE",
    b"UNSUBSCRIBE",
    b"X-MS-ENUMATTS",
    b"MKWORKSPACE",
    b"RPC_IN_DATA",
    b"RPC_OUT_DATA",
    b"QUERY",
];

/// Zeek's two HTTP signatures (`http/dpd.sig`), each of which enables HTTP on its own: the
/// client's first bytes are one of [`DPD_CLIENT_METHODS`] after optional white space, or the
/// server's begin `HTTP/` and a digit, in any case.
pub fn probe(dir: Direction, first_bytes: &[u8]) -> bool {
    match dir {
        Direction::Orig => {
            let start = first_bytes
                .iter()
                .take_while(|b| b.is_ascii_whitespace())
                .count();
            let rest = &first_bytes[start..];
            DPD_CLIENT_METHODS
                .iter()
                .any(|method| rest.starts_with(method))
        }
        Direction::Resp => {
            first_bytes.len() > 5
                && first_bytes[..5].eq_ignore_ascii_case(b"http/")
                && first_bytes[5].is_ascii_digit()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_follows_zeeks_dpd_signatures() {
        assert!(probe(Direction::Orig, b"GET / HTTP/1.1\r\n"));
        assert!(probe(Direction::Orig, b"\r\n  POST /x HTTP/1.0\r\n"));
        assert!(probe(
            Direction::Orig,
            b"NOTIFY /upnp/eventing HTTP/1.1\r\n"
        ));
        assert!(probe(Direction::Orig, b"RPC_IN_DATA /rpc HTTP/1.1\r\n"));
        assert!(probe(Direction::Orig, b"VERSION-CONTROL /x HTTP/1.1\r\n"));
        assert!(!probe(Direction::Orig, b"get / HTTP/1.1\r\n"));
        assert!(!probe(Direction::Orig, b"HELO example.org\r\n"));
        assert!(probe(Direction::Resp, b"HTTP/1.1 200 OK\r\n"));
        assert!(probe(Direction::Resp, b"http/1.0 200 OK\r\n"));
        assert!(!probe(Direction::Resp, b"HTTP/x 200 OK\r\n"));
    }
}
