//! Application-layer analyzers. Each protocol lives in its own folder with three parts, as
//! Suricata does it: `parser.rs` (pure, bounded parsing functions), `state.rs` (the per-connection
//! state machine implementing [`Analyzer`]) and `log.rs` (the log record and its Zeek fields).
//!
//! The connection tracker owns reassembly: an analyzer sees each direction's bytes in order,
//! is told about gaps, and never sees a packet.

use crate::flow::{Direction, Timestamp};

/// Where analyzers put what they find: log records, weirds, notices, and the service they confirmed.
pub trait Emit {
    /// Write a finished record (dns, http, ssl ...) to its log.
    fn record(&mut self, record: Box<dyn crate::zeeklog::Record + Send>);
    /// Write an ssh.log row; separate from [`Emit::record`] because the password-guessing
    /// detection reads its login outcome.
    fn ssh(&mut self, info: ssh::SshInfo) {
        self.record(Box::new(info));
    }
    /// Write an x509.log row; separate because the sink logs a certificate once a day.
    fn x509(&mut self, cert: ssl::x509::X509Info) {
        self.record(Box::new(cert));
    }
    /// A files.log row; separate because the sink decides `local_orig` from its local networks.
    fn file(&mut self, file: crate::files_log::FileInfo) {
        self.record(Box::new(file));
    }
    /// A protocol violation, for weird.log (`name` as Zeek spells it, e.g. `"DNS_truncated_len_lt_hdr_len"`).
    fn weird(&mut self, ts: Timestamp, name: &str, addl: Option<String>);
    /// A weird raised by a sub-analyzer Zeek names separately in weird.log's `source` column
    /// (`"SMTP_BDAT"`, `"CONTENTLINE"`); by default the same as [`Emit::weird`].
    fn weird_from(
        &mut self,
        ts: Timestamp,
        name: &str,
        addl: Option<String>,
        source: &'static str,
    ) {
        let _ = source;
        self.weird(ts, name, addl);
    }
    /// A weird raised by a protocol's script (`Reporter::conn_weird` in Zeek's
    /// `scripts/base/protocols/*/main.zeek`): weird.log's `source` is unset.
    fn script_weird(&mut self, ts: Timestamp, name: &str, addl: Option<String>) {
        self.weird(ts, name, addl);
    }
    /// The analyzer recognized its protocol: adds `service` to conn.log (`"dns"`, `"http"`, `"ssl"` ...).
    fn confirm_service(&mut self, service: &'static str);
    /// The analyzer hit a protocol violation and stops (Zeek's `AnalyzerViolation`):
    /// `base/frameworks/analyzer/dpd.zeek` then disables it and drops its confirmed
    /// `service` from conn.log, unless the connection carried more than
    /// `DPD::ignore_violations_after` bytes. By default nothing happens.
    fn violation(&mut self, service: &'static str) {
        let _ = service;
    }
    /// The connection is a proxy (SOCKS, HTTP CONNECT): `Tunnel::register` of its id with
    /// orig port 0 (tunnel.log). By default nothing happens.
    fn tunnel(&mut self, ts: Timestamp, kind: crate::flow::TunnelType) {
        let _ = (ts, kind);
    }
    /// The analyzer found the roles the wrong way round (Zeek's `Connection::FlipRoles`): the
    /// responder is the originator from now on. By default nothing happens.
    fn flip_roles(&mut self) {}
    /// A limit cut the analysis short (Zeek's `Analyzer::LimitReachedWeird`, which calls
    /// `Connection::CheckHistory(HIST_UNKNOWN_PKT, 'X')`): conn.log's history gets 'X' once.
    /// By default nothing happens.
    fn analysis_partial(&mut self) {}
    /// An FTP session announced a data channel (`FTP::add_expected_data_channel`): the
    /// connection it expects gets the `FTP_DATA` analyzer, whose files note themselves on
    /// `transfer`. By default nothing happens.
    fn expect_ftp_data(&mut self, ts: Timestamp, chan: ftp::DataChannel, transfer: ftp::Transfer) {
        let _ = (ts, chan, transfer);
    }
}

/// One protocol analyzer instance for one connection.
///
/// For TCP, `data` is the reassembled stream of one direction, in order; for UDP, one datagram
/// per call. After `gap`, the analyzer must resynchronize (or give up) rather than misparse.
pub trait Analyzer: Send {
    fn data(&mut self, ts: Timestamp, dir: Direction, data: &[u8], out: &mut dyn Emit);
    /// `len` bytes of `dir` were lost (capture loss or not captured); counted in missed_bytes by the caller.
    fn gap(&mut self, ts: Timestamp, dir: Direction, len: u64, out: &mut dyn Emit);
    /// The connection ended (FIN/RST, timeout, or end of input): flush pending transactions.
    fn finish(&mut self, ts: Timestamp, out: &mut dyn Emit);
    /// Before each TCP delivery: whether the connection was picked up without its SYN
    /// handshake (Zeek's `TCP()->IsPartial()`). By default this changes nothing.
    fn tcp_partial(&mut self, partial: bool) {
        let _ = partial;
    }
}

mod base64_decode;
mod content_line;
pub mod dce_rpc;
pub mod dns;
mod file_stream;
pub mod ftp;
pub mod http;
mod lines;
pub mod modbus;
pub mod ntp;
pub mod pia;
pub mod pop3;
pub mod rdp;
pub mod smtp;
pub mod socks;
pub mod ssh;
pub mod ssl;
#[cfg(test)]
pub(crate) mod testkit;
