//! What analyzers write through while they run on a connection: log rows, weirds tagged with
//! the connection and the analyzer, confirmed services and role flips.

use super::Records;
use crate::flow::{ConnInfo, Timestamp};
use crate::output::Output;
use crate::proto::ssh::SshInfo;
use crate::proto::ssl::x509::X509Info;
use crate::proto::Emit;
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
    /// The connection is a TCP one that began without a SYN handshake.
    pub(super) tcp_partial: bool,
}

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
    fn flip_roles(&mut self) {
        self.flip = true;
    }
    fn tcp_partial(&self) -> bool {
        self.tcp_partial
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
