//! RDP over TCP (Zeek's `RDP` analyzer): the `rdp` service and the server's X.509 chain for
//! x509.log. rdp.log is not written.

mod parser;

use crate::flow::{ConnInfo, Direction, Timestamp, Transport};
use crate::proto::pia::InnerStream;
use crate::proto::ssl::x509::{CertRole, X509Info};
use crate::proto::{Analyzer, Emit};

/// Zeek's `RDP::rdp_ports` (base/protocols/rdp/main.zeek).
pub const PORTS: &[(Transport, u16)] = &[(Transport::Tcp, 3389)];

pub fn new_analyzer(info: &ConnInfo) -> Box<dyn Analyzer> {
    Box::new(RdpAnalyzer {
        conn: info.clone(),
        pending: [Vec::new(), Vec::new()],
        encrypted: None,
        inner: None,
        stopped: false,
        tcp_partial: false,
    })
}

/// Zeek's `dpd_rdp_client` (rdp/dpd.sig): `.*(Cookie: mstshash\=|Duca.*(rdpdr|rdpsnd|drdynvc|cliprdr))`
/// from the start of the originator's payload, where `.` is any byte but a newline. The server
/// signature that Zeek also requires is left to the analyzer, which confirms only on records
/// that parse.
pub fn probe(dir: Direction, first_bytes: &[u8]) -> bool {
    if dir != Direction::Orig {
        return false;
    }
    let line = first_bytes
        .split(|b| *b == b'\n')
        .next()
        .unwrap_or_default();
    if find(line, b"Cookie: mstshash=").is_some() {
        return true;
    }
    let Some(at) = find(line, b"Duca") else {
        return false;
    };
    let after = line.get(at + 4..).unwrap_or_default();
    [&b"rdpdr"[..], b"rdpsnd", b"drdynvc", b"cliprdr"]
        .iter()
        .any(|name| find(after, name).is_some())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub struct RdpAnalyzer {
    conn: ConnInfo,
    /// Each direction's bytes of an incomplete TPKT (at most 65535 bytes).
    pending: [Vec<u8>; 2],
    /// `RDP_Conn::encryption_method_` once `go_encrypted` ran.
    encrypted: Option<u32>,
    /// The PIA that TLS or CredSSP is handed to (`RDP_Analyzer::DeliverStream`).
    inner: Option<InnerStream>,
    /// After a violation (dpd.zeek disables the analyzer) or a content gap (`had_gap`).
    stopped: bool,
    tcp_partial: bool,
}

impl RdpAnalyzer {
    /// `interp->NewData`: every whole TPKT of the delivery, even after one of them turned the
    /// connection encrypted (that is looked at per delivery).
    fn records(&mut self, ts: Timestamp, dir: Direction, data: &[u8], out: &mut dyn Emit) {
        let d = usize::from(dir == Direction::Resp);
        self.pending[d].extend_from_slice(data);
        let buf = std::mem::take(&mut self.pending[d]);
        let mut at = 0;
        while let Some(len) = buf.get(at..).and_then(parser::tpkt_len) {
            let Some(record) = buf.get(at..at + len) else {
                break;
            };
            at += len;
            let mut found = parser::Found::default();
            let parsed = parser::tpkt(record, &mut found);
            if found.confirmed {
                out.confirm_service("rdp");
            }
            for der in found.certs {
                // `proc_x509_cert_data`: every certificate of the chain is a server's
                // "application/x-x509-user-cert", so each is a host certificate.
                if let Some(cert) = X509Info::parse(ts, der, CertRole::Host) {
                    out.x509(cert);
                }
            }
            if let Some(method) = found.encrypted {
                self.encrypted = Some(method);
            }
            if parsed.is_err() {
                out.violation("rdp");
                self.stopped = true;
                return;
            }
        }
        self.pending[d] = buf.get(at..).unwrap_or_default().to_vec();
    }
}

impl Analyzer for RdpAnalyzer {
    /// `RDP_Analyzer::DeliverStream`: records until encrypted; then TLS or CredSSP (any
    /// method but RDP's own, 0) goes to protocol detection and native encryption is skipped.
    fn data(&mut self, ts: Timestamp, dir: Direction, data: &[u8], out: &mut dyn Emit) {
        if self.stopped || self.tcp_partial {
            return;
        }
        match self.encrypted {
            None => self.records(ts, dir, data, out),
            Some(0) => {}
            Some(_) => {
                let conn = &self.conn;
                self.inner
                    .get_or_insert_with(|| InnerStream::new(conn))
                    .data(ts, dir, data, out);
            }
        }
    }

    /// `had_gap`: nothing of either direction is delivered any more, not even to the PIA.
    fn gap(&mut self, _ts: Timestamp, _dir: Direction, _len: u64, _out: &mut dyn Emit) {
        self.stopped = true;
        self.pending = [Vec::new(), Vec::new()];
    }

    fn finish(&mut self, ts: Timestamp, out: &mut dyn Emit) {
        if let Some(inner) = &mut self.inner {
            inner.finish(ts, out);
        }
    }

    fn tcp_partial(&mut self, partial: bool) {
        self.tcp_partial = partial;
    }
}

#[cfg(test)]
mod tests;
