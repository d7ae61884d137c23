//! What analyzers write through while they run on a connection: log rows, weirds tagged with
//! the connection and the analyzer, confirmed services and role flips.

use super::history::{bits, History};
use super::Records;
use crate::flow::{ConnInfo, Timestamp, TunnelType};
use crate::output::Output;
use crate::proto::ssh::SshInfo;
use crate::proto::ssl::x509::X509Info;
use crate::proto::{ftp, Emit};
use crate::tunnel_log::TunnelRecord;
use crate::weird::Weird;
use crate::zeeklog::Record;

/// Emit implementation handed to analyzers.
pub(super) struct ConnEmit<'a> {
    pub(super) info: &'a ConnInfo,
    pub(super) source: &'static str,
    pub(super) peer: &'a str,
    pub(super) out: &'a mut Records,
    pub(super) services: &'a mut Vec<&'static str>,
    /// Set when an analyzer asks for the roles to be flipped.
    pub(super) flip: bool,
    pub(super) history: &'a mut History,
    /// Payload bytes both endpoints sent so far (Zeek's `c$orig$size + c$resp$size`).
    pub(super) conn_size: u64,
    /// The tracker's expected FTP data connections.
    pub(super) ftp_data: &'a mut ftp::Expectations,
}

/// Zeek's `DPD::ignore_violations_after`.
const IGNORE_VIOLATIONS_AFTER: u64 = 10 * 1024;

impl Emit for ConnEmit<'_> {
    fn record(&mut self, record: Box<dyn Record + Send>) {
        self.out.push(Output::Log(record));
    }
    fn ssh(&mut self, info: SshInfo) {
        self.out.push(Output::Ssh(info));
    }
    fn x509(&mut self, cert: X509Info) {
        self.out.push(Output::X509(cert));
    }
    fn file(&mut self, file: crate::files_log::FileInfo) {
        self.out.push(Output::File(file));
    }
    fn weird(&mut self, ts: Timestamp, name: &str, addl: Option<String>) {
        let source = self.source;
        self.weird_from(ts, name, addl, source);
    }
    fn weird_from(
        &mut self,
        ts: Timestamp,
        name: &str,
        addl: Option<String>,
        source: &'static str,
    ) {
        self.push_weird(ts, name, addl, Some(source));
    }
    fn script_weird(&mut self, ts: Timestamp, name: &str, addl: Option<String>) {
        self.push_weird(ts, name, addl, None);
    }
    fn confirm_service(&mut self, service: &'static str) {
        if !self.services.contains(&service) {
            self.services.push(service);
        }
    }
    fn violation(&mut self, service: &'static str) {
        if self.conn_size <= IGNORE_VIOLATIONS_AFTER {
            self.services.retain(|s| *s != service);
        }
    }
    fn flip_roles(&mut self) {
        self.flip = true;
    }
    fn analysis_partial(&mut self) {
        self.history.check(true, bits::UNKNOWN, 'X');
    }
    fn expect_ftp_data(&mut self, ts: Timestamp, chan: ftp::DataChannel, transfer: ftp::Transfer) {
        self.ftp_data.expect(ts.0, chan, transfer);
    }
    fn tunnel(&mut self, ts: Timestamp, kind: TunnelType) {
        self.out
            .push(Output::Tunnel(TunnelRecord::proxy(ts, &self.info.id, kind)));
    }
}

impl ConnEmit<'_> {
    fn push_weird(
        &mut self,
        ts: Timestamp,
        name: &str,
        addl: Option<String>,
        source: Option<&'static str>,
    ) {
        self.out.push(Output::Log(Box::new(Weird::conn(
            ts,
            &self.info.uid,
            self.info.id,
            name,
            addl,
            source,
            self.peer,
        ))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Transport;
    use crate::proto::testkit::conn;

    /// `Analyzer::LimitReachedWeird`: a limit reached adds 'X' to the history once, upper
    /// case whichever side reached it (`Connection::CheckHistory`).
    #[test]
    fn a_partial_analysis_marks_the_history_once() {
        let info = conn(Transport::Tcp, 80);
        let mut out = Records::default();
        let mut services = Vec::new();
        let mut history = History::default();
        history.add('S');
        let mut emit = ConnEmit {
            info: &info,
            source: "HTTP",
            peer: "zeek",
            out: &mut out,
            services: &mut services,
            flip: false,
            history: &mut history,
            conn_size: 0,
            ftp_data: &mut ftp::Expectations::default(),
        };
        emit.analysis_partial();
        emit.analysis_partial();
        assert_eq!(history.as_str(), "SX");
    }

    /// dpd.zeek: a violation removes the confirmed service, up to 10 KiB into the connection.
    #[test]
    fn violations_drop_the_service_early_in_a_connection() {
        let info = conn(Transport::Tcp, 443);
        let mut out = Records::default();
        for (size, kept) in [(10 * 1024, false), (10 * 1024 + 1, true)] {
            let mut services = vec!["ssl"];
            let mut emit = ConnEmit {
                info: &info,
                source: "SSL",
                peer: "zeek",
                out: &mut out,
                services: &mut services,
                flip: false,
                history: &mut History::default(),
                conn_size: size,
                ftp_data: &mut ftp::Expectations::default(),
            };
            emit.violation("ssl");
            assert_eq!(services.contains(&"ssl"), kept, "size {size}");
        }
    }
}
