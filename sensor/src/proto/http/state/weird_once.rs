//! `base/frameworks/notice/weird.zeek`: a connection's weird is logged once per name; repeats
//! within `weird_ignore`'s ten minutes (from when it was logged) are dropped. The HTTP
//! analyzer's weirds, and those of what a CONNECT tunnel carries, pass through this filter.

use std::collections::HashMap;

use crate::flow::Timestamp;
use crate::proto::ssh::SshInfo;
use crate::proto::ssl::x509::X509Info;
use crate::proto::Emit;
use crate::zeeklog::Record;

/// `weird_ignore`'s `&create_expire`.
const IGNORE_FOR: f64 = 600.0;

/// Weirds the content line analyzer raises only once per connection
/// (`Connection::FlagEvent(SINGULAR_CR)` in `ContentLine_Analyzer::DoDeliverOnce`).
const FLAGGED: &[&str] = &["line_terminated_with_single_CR"];

/// When each weird name was last logged on the connection.
pub(super) type Logged = HashMap<String, f64>;

pub(super) struct WeirdOnce<'a> {
    pub(super) inner: &'a mut dyn Emit,
    pub(super) logged: &'a mut Logged,
}

impl WeirdOnce<'_> {
    fn admit(&mut self, ts: Timestamp, name: &str) -> bool {
        match self.logged.get(name) {
            Some(_) if FLAGGED.contains(&name) => false,
            Some(at) if ts.0 - at < IGNORE_FOR => false,
            _ => {
                self.logged.insert(name.to_string(), ts.0);
                true
            }
        }
    }
}

impl Emit for WeirdOnce<'_> {
    fn record(&mut self, record: Box<dyn Record + Send>) {
        self.inner.record(record);
    }
    fn ssh(&mut self, info: SshInfo) {
        self.inner.ssh(info);
    }
    fn x509(&mut self, cert: X509Info) {
        self.inner.x509(cert);
    }
    fn file(&mut self, file: crate::files_log::FileInfo) {
        self.inner.file(file);
    }
    fn weird(&mut self, ts: Timestamp, name: &str, addl: Option<String>) {
        if self.admit(ts, name) {
            self.inner.weird(ts, name, addl);
        }
    }
    fn weird_from(
        &mut self,
        ts: Timestamp,
        name: &str,
        addl: Option<String>,
        source: &'static str,
    ) {
        if self.admit(ts, name) {
            self.inner.weird_from(ts, name, addl, source);
        }
    }
    fn script_weird(&mut self, ts: Timestamp, name: &str, addl: Option<String>) {
        if self.admit(ts, name) {
            self.inner.script_weird(ts, name, addl);
        }
    }
    fn confirm_service(&mut self, service: &'static str) {
        self.inner.confirm_service(service);
    }
    fn flip_roles(&mut self) {
        self.inner.flip_roles();
    }
    fn analysis_partial(&mut self) {
        self.inner.analysis_partial();
    }
    fn violation(&mut self, service: &'static str) {
        self.inner.violation(service);
    }
    fn tunnel(&mut self, ts: Timestamp, kind: crate::flow::TunnelType) {
        self.inner.tunnel(ts, kind);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testkit::Collect;

    #[test]
    fn a_weird_is_logged_once_per_name_for_ten_minutes() {
        let mut out = Collect::default();
        let mut logged = Logged::new();
        let mut w = WeirdOnce {
            inner: &mut out,
            logged: &mut logged,
        };
        w.weird(Timestamp(1.0), "a", None);
        w.script_weird(Timestamp(2.0), "a", None);
        w.weird(Timestamp(3.0), "b", None);
        w.weird(Timestamp(601.0), "a", None);
        assert_eq!(out.weirds, ["a", "b", "a"]);
    }

    #[test]
    fn a_flagged_weird_is_logged_once_per_connection() {
        let mut out = Collect::default();
        let mut logged = Logged::new();
        let mut w = WeirdOnce {
            inner: &mut out,
            logged: &mut logged,
        };
        let cr = "line_terminated_with_single_CR";
        w.weird(Timestamp(1.0), cr, None);
        w.weird(Timestamp(700.0), cr, None);
        assert_eq!(out.weirds, [cr]);
    }
}
