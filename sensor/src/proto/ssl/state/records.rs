//! The record layer of TLS streams, and of the SSLv2 connections Zeek's `ssl-protocol.pac`
//! still reads (`determine_ssl_record_layer`).

use super::{idx, names, parser, SslAnalyzer, SSLV2};
use crate::flow::{Direction, Timestamp};
use crate::proto::Emit;

impl SslAnalyzer {
    /// Analyzes the record at the start of `buf`; the bytes it took, or `None` if it is
    /// incomplete.
    pub(super) fn tls_record(
        &mut self,
        ts: Timestamp,
        dir: Direction,
        buf: &[u8],
        out: &mut dyn Emit,
    ) -> Option<usize> {
        if self.record_layer.is_none() {
            match parser::sslv2_record(buf, dir == Direction::Orig) {
                Some(parser::Sslv2Record::ClientHello { len, version }) => {
                    self.sslv2_client_hello(ts, version, out);
                    return Some(len);
                }
                Some(parser::Sslv2Record::ServerHello { len, hello }) => {
                    self.record_layer = Some(SSLV2);
                    self.v2_server_hello(ts, hello, out);
                    return Some(len);
                }
                Some(parser::Sslv2Record::Incomplete) => return None,
                Some(parser::Sslv2Record::NotSsl) => {
                    self.violation("Invalid headers in SSL connection", out);
                    return Some(buf.len());
                }
                None => {}
            }
        }
        let r = parser::next_record(buf)?;
        if self.record_layer_ok(&buf[..parser::RECORD_HEADER_LEN], out) {
            self.record(ts, dir, r.kind, r.payload, out);
        }
        Some(r.len)
    }

    /// A record of a connection that stays SSLv2 (two-byte headers; the message type is the
    /// third byte).
    pub(super) fn v2_record(
        &mut self,
        ts: Timestamp,
        dir: Direction,
        buf: &[u8],
        out: &mut dyn Emit,
    ) -> Option<usize> {
        let [h0, h1, ..] = buf else { return None };
        let len = 2 + (usize::from(h0 & 0x7f) << 8 | usize::from(*h1));
        let rec = buf.get(..len)?;
        let [_, _, kind, h3, h4, ..] = rec else {
            self.violation("SSLv2 record too short", out);
            return Some(len);
        };
        if self.dirs[idx(dir)].encrypted {
            self.ciphertext(out);
            return Some(len);
        }
        match kind {
            0 => {
                self.letter(ts, dir == Direction::Orig, 'L', out);
                let code = u16::from_be_bytes([*h3, *h4]);
                self.info(ts).last_alert = Some(names::alert_name(code));
            }
            1 => match parser::sslv2_record(rec, true) {
                Some(parser::Sslv2Record::ClientHello { version, .. }) => {
                    self.sslv2_client_hello(ts, version, out)
                }
                _ => self.violation("bad SSLv2 client hello", out),
            },
            // CLIENT-MASTER-KEY: both sides encrypt from here on.
            2 => {
                for d in &mut self.dirs {
                    d.encrypted = true;
                }
                self.ciphertext(out);
            }
            4 => match parser::sslv2_record(rec, false) {
                Some(parser::Sslv2Record::ServerHello { hello, .. }) => {
                    self.v2_server_hello(ts, hello, out)
                }
                _ => self.violation("bad SSLv2 server hello", out),
            },
            _ => self.violation("unknown SSL record type", out),
        }
        Some(len)
    }

    fn v2_server_hello(
        &mut self,
        ts: Timestamp,
        hello: Option<parser::V2ServerHello>,
        out: &mut dyn Emit,
    ) {
        let Some(hello) = hello else {
            self.violation("truncated SSLv2 server hello", out);
            return;
        };
        if hello.version != SSLV2 {
            self.violation("Invalid version in SSL server hello", out);
            return;
        }
        let info = self.info(ts);
        let v = *info.version_num.get_or_insert(SSLV2);
        info.version = Some(names::version_name(v));
        info.cipher = Some(names::v2_cipher_name(hello.cipher.unwrap_or(0)));
        self.letter(ts, false, 'S', out);
        self.certificates(ts, false, vec![hello.certificate], out);
    }
}
