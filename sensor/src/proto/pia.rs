//! The protocol detection of the stream a proxy hands on once its handshake is done: Zeek's
//! SOCKS analyzer (`SOCKS_Analyzer::DeliverStream`) and HTTP's CONNECT
//! (`HTTP_Analyzer::DeliverStream`) add a child `PIA_TCP` that finds the tunneled protocol
//! by content alone, as on a new connection but without the ports' analyzers.

use crate::dispatch::{registry, PROBE_LIMIT};
use crate::files_log::FileInfo;
use crate::flow::{ConnInfo, Direction, Timestamp, Transport, TunnelType};
use crate::proto::ssh::SshInfo;
use crate::proto::ssl::x509::X509Info;
use crate::proto::{ftp, Analyzer, Emit};
use crate::zeeklog::Record;

/// The analyzers found inside a tunnel, fed its bytes after the handshake.
pub struct InnerStream {
    conn: ConnInfo,
    analyzers: Vec<(&'static str, Box<dyn Analyzer>)>,
    tried: Vec<&'static str>,
    probed: [usize; 2],
    /// An inner analyzer confirmed its protocol: probing stops, as the tracker's does.
    confirmed: bool,
    /// An analyzer that goes on with the outer connection's state (Zeek keeps scripts'
    /// state per connection), used instead of a new one when its protocol is found, and
    /// finished at the end either way.
    continuing: Option<(&'static str, Box<dyn Analyzer>)>,
}

impl InnerStream {
    pub fn new(conn: &ConnInfo) -> Self {
        InnerStream {
            conn: conn.clone(),
            analyzers: Vec::new(),
            tried: Vec::new(),
            probed: [0; 2],
            confirmed: false,
            continuing: None,
        }
    }

    /// A detection that gives the protocol `name`, when found, to `analyzer`.
    pub fn continuing(conn: &ConnInfo, name: &'static str, analyzer: Box<dyn Analyzer>) -> Self {
        InnerStream {
            continuing: Some((name, analyzer)),
            ..InnerStream::new(conn)
        }
    }

    fn probe(&mut self, dir: Direction, data: &[u8]) {
        let d = usize::from(dir == Direction::Resp);
        if self.confirmed || self.probed[d] >= PROBE_LIMIT {
            return;
        }
        self.probed[d] += data.len();
        for spec in registry() {
            let tcp = spec.ports.iter().any(|(t, _)| *t == Transport::Tcp);
            if tcp && !self.tried.contains(&spec.name) && (spec.probe)(dir, data) {
                self.tried.push(spec.name);
                let analyzer = match self.continuing.take_if(|(name, _)| *name == spec.name) {
                    Some((_, a)) => a,
                    None => (spec.new)(&self.conn),
                };
                self.analyzers.push((spec.name, analyzer));
            }
        }
    }

    fn each(&mut self, out: &mut dyn Emit, mut f: impl FnMut(&mut dyn Analyzer, &mut dyn Emit)) {
        for (source, a) in self.analyzers.iter_mut() {
            let mut emit = InnerEmit {
                out: &mut *out,
                source,
                confirmed: &mut self.confirmed,
            };
            f(a.as_mut(), &mut emit);
        }
    }
}

impl Analyzer for InnerStream {
    fn data(&mut self, ts: Timestamp, dir: Direction, data: &[u8], out: &mut dyn Emit) {
        self.probe(dir, data);
        self.each(out, |a, emit| a.data(ts, dir, data, emit));
    }
    fn gap(&mut self, ts: Timestamp, dir: Direction, len: u64, out: &mut dyn Emit) {
        self.each(out, |a, emit| a.gap(ts, dir, len, emit));
    }
    fn finish(&mut self, ts: Timestamp, out: &mut dyn Emit) {
        // Never found: what the outer connection left in it is still written.
        if let Some((name, a)) = self.continuing.take() {
            self.analyzers.push((name, a));
        }
        self.each(out, |a, emit| a.finish(ts, emit));
    }
}

/// Passes an inner analyzer's output on, its weirds named after it, and notes confirmations.
/// A role flip is not passed on: the tunnel's connection keeps its roles.
struct InnerEmit<'a> {
    out: &'a mut dyn Emit,
    source: &'static str,
    confirmed: &'a mut bool,
}

impl Emit for InnerEmit<'_> {
    fn record(&mut self, record: Box<dyn Record + Send>) {
        self.out.record(record);
    }
    fn ssh(&mut self, info: SshInfo) {
        self.out.ssh(info);
    }
    fn x509(&mut self, cert: X509Info) {
        self.out.x509(cert);
    }
    fn file(&mut self, file: FileInfo) {
        self.out.file(file);
    }
    fn weird(&mut self, ts: Timestamp, name: &str, addl: Option<String>) {
        self.out.weird_from(ts, name, addl, self.source);
    }
    fn weird_from(
        &mut self,
        ts: Timestamp,
        name: &str,
        addl: Option<String>,
        source: &'static str,
    ) {
        self.out.weird_from(ts, name, addl, source);
    }
    fn script_weird(&mut self, ts: Timestamp, name: &str, addl: Option<String>) {
        self.out.script_weird(ts, name, addl);
    }
    fn confirm_service(&mut self, service: &'static str) {
        *self.confirmed = true;
        self.out.confirm_service(service);
    }
    fn violation(&mut self, service: &'static str) {
        self.out.violation(service);
    }
    fn tunnel(&mut self, ts: Timestamp, kind: TunnelType) {
        self.out.tunnel(ts, kind);
    }
    fn analysis_partial(&mut self) {
        self.out.analysis_partial();
    }
    fn expect_ftp_data(&mut self, ts: Timestamp, chan: ftp::DataChannel, transfer: ftp::Transfer) {
        self.out.expect_ftp_data(ts, chan, transfer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testkit::{conn, Collect};

    /// Inside a tunnel the analyzer is found by content on any port, and confirms for the
    /// connection.
    #[test]
    fn finds_the_tunneled_protocol_by_content() {
        let mut inner = InnerStream::new(&conn(Transport::Tcp, 1080));
        let mut out = Collect::default();
        let ts = Timestamp(1.0);
        inner.data(
            ts,
            Direction::Orig,
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            &mut out,
        );
        inner.data(
            ts,
            Direction::Resp,
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            &mut out,
        );
        inner.finish(ts, &mut out);
        assert_eq!(out.services, ["http"]);
        assert_eq!(out.records.len(), 1, "one http.log row");
    }

    /// An FTP session inside the tunnel still announces its data channels (main.zeek's
    /// `add_expected_data_channel` runs for any FTP analyzer).
    #[test]
    fn a_tunnelled_ftp_session_announces_its_data_channels() {
        let mut inner = InnerStream::new(&conn(Transport::Tcp, 1080));
        let mut out = Collect::default();
        let ts = Timestamp(1.0);
        inner.data(ts, Direction::Resp, b"220 FTP server ready\r\n", &mut out);
        inner.data(ts, Direction::Orig, b"USER ftp\r\nPASV\r\n", &mut out);
        let reply = b"331 ok\r\n227 Entering Passive Mode (10,0,0,2,4,1)\r\n";
        inner.data(ts, Direction::Resp, reply, &mut out);
        assert_eq!(out.ftp_data.len(), 1, "{:?}", out.ftp_data);
        assert_eq!(out.ftp_data[0].0.resp_p, 1025);
    }

    /// Bytes no probe knows leave the stream unanalyzed; after the probe limit nothing more
    /// is tried.
    #[test]
    fn unknown_bytes_attach_nothing_and_probing_ends() {
        let mut inner = InnerStream::new(&conn(Transport::Tcp, 1080));
        let mut out = Collect::default();
        let ts = Timestamp(1.0);
        inner.data(ts, Direction::Orig, &[0xAB; PROBE_LIMIT], &mut out);
        inner.data(ts, Direction::Orig, b"GET / HTTP/1.1\r\n\r\n", &mut out);
        assert!(inner.analyzers.is_empty());
        assert!(out.services.is_empty());
    }
}
