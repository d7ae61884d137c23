//! Per-connection SOCKS state, following Zeek's `SOCKS_Analyzer` and the `SOCKS_Conn` of
//! `socks-protocol.pac`: one message per delivery until both sides are done with the
//! handshake, then the stream goes to a new protocol detection.

use super::parser::{self, UserPass, Violation};
use crate::flow::{ConnInfo, Direction, Timestamp, TunnelType};
use crate::proto::pia::InnerStream;
use crate::proto::{Analyzer, Emit};

/// `SOCKS5_Auth_Negotiation_Reply`'s method for username/password (RFC 1929).
const USERPASS: u8 = 2;

pub struct SocksAnalyzer {
    conn: ConnInfo,
    /// `v5_in_auth_sub_negotiation_`.
    sub_negotiation: bool,
    /// `v5_authenticated_`: the server selected an authentication method.
    past_auth: bool,
    /// `selected_auth_method_`.
    auth_method: u8,
    /// `EndpointDone`: the request (client) and the reply (server) were read.
    orig_done: bool,
    resp_done: bool,
    /// After a violation: Zeek's DPD removes the analyzer.
    stopped: bool,
    tcp_partial: bool,
    inner: Option<InnerStream>,
}

impl SocksAnalyzer {
    pub fn new(conn: ConnInfo) -> Self {
        SocksAnalyzer {
            conn,
            sub_negotiation: false,
            past_auth: false,
            auth_method: 255,
            orig_done: false,
            resp_done: false,
            stopped: false,
            tcp_partial: false,
            inner: None,
        }
    }

    /// `SOCKS_Message`: one message of `dir` in `data`.
    fn message(
        &mut self,
        ts: Timestamp,
        dir: Direction,
        data: &[u8],
        out: &mut dyn Emit,
    ) -> Result<(), Violation> {
        let orig = dir == Direction::Orig;
        if self.sub_negotiation {
            return self.sub_negotiation(ts, orig, data, out);
        }
        match parser::version(data)? {
            (4, rest) if orig => {
                parser::socks4_request(rest)?;
                self.request(ts, out);
            }
            (4, rest) => {
                parser::socks4_reply(rest)?;
                self.reply(out);
            }
            (5, rest) if !self.past_auth => {
                if orig {
                    parser::socks5_methods(rest)?;
                } else {
                    let method = parser::socks5_selected_method(rest)?;
                    self.sub_negotiation = method != 0 && method != 0xff;
                    self.past_auth = true;
                    self.auth_method = method;
                }
            }
            (5, rest) if orig => {
                parser::socks5_request(rest)?;
                self.request(ts, out);
            }
            (5, rest) => {
                parser::socks5_reply(rest)?;
                self.reply(out);
            }
            (other, _) => return Err(Violation::Version(other)),
        }
        Ok(())
    }

    /// `SOCKS5_Auth_Message`: the sub-negotiation of the selected method, which the server's
    /// answer ends.
    fn sub_negotiation(
        &mut self,
        ts: Timestamp,
        orig: bool,
        data: &[u8],
        out: &mut dyn Emit,
    ) -> Result<(), Violation> {
        let method = self.auth_method;
        if method == USERPASS {
            let read = if orig {
                parser::userpass_request(data)?
            } else {
                parser::userpass_reply(data)?
            };
            if let UserPass::Unsupported(version) = read {
                out.script_weird(
                    ts,
                    "socks5_unsupported_authentication",
                    Some(format!("method {method}, version {version}")),
                );
            }
        } else {
            out.script_weird(
                ts,
                "socks5_unsupported_authentication_method",
                Some(method.to_string()),
            );
        }
        if !orig {
            self.sub_negotiation = false;
        }
        Ok(())
    }

    /// `socks4_request`/`socks5_request`: main.zeek's `socks_request` registers the tunnel.
    fn request(&mut self, ts: Timestamp, out: &mut dyn Emit) {
        out.tunnel(ts, TunnelType::Socks);
        self.orig_done = true;
    }

    /// `socks4_reply`/`socks5_reply`: any reply that parses confirms the protocol.
    fn reply(&mut self, out: &mut dyn Emit) {
        out.confirm_service("socks");
        self.resp_done = true;
    }
}

impl Analyzer for SocksAnalyzer {
    fn data(&mut self, ts: Timestamp, dir: Direction, data: &[u8], out: &mut dyn Emit) {
        if self.tcp_partial || self.stopped {
            return;
        }
        if self.orig_done && self.resp_done {
            self.inner
                .get_or_insert_with(|| InnerStream::new(&self.conn))
                .data(ts, dir, data, out);
            return;
        }
        if self.message(ts, dir, data, out).is_err() {
            out.violation("socks");
            self.stopped = true;
        }
    }

    fn gap(&mut self, ts: Timestamp, dir: Direction, len: u64, out: &mut dyn Emit) {
        if let Some(inner) = self.inner.as_mut() {
            inner.gap(ts, dir, len, out);
        }
    }

    fn finish(&mut self, ts: Timestamp, out: &mut dyn Emit) {
        if let Some(inner) = self.inner.as_mut() {
            inner.finish(ts, out);
        }
    }

    fn tcp_partial(&mut self, partial: bool) {
        self.tcp_partial = partial;
    }
}

#[cfg(test)]
mod tests;
