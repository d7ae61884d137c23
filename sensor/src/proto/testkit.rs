//! An [`Emit`](crate::proto::Emit) that keeps everything, for analyzer tests.
use crate::flow::{ConnId, ConnInfo, Timestamp, Transport};
use crate::proto::Emit;
use crate::zeeklog::format::tsv_value;
use crate::zeeklog::Record;

#[derive(Default)]
pub struct Collect {
    pub records: Vec<Box<dyn Record + Send>>,
    pub weirds: Vec<String>,
    /// The weirds that Zeek raises from a script (also in `weirds`).
    pub script_weirds: Vec<String>,
    pub services: Vec<&'static str>,
    /// The services whose analyzer reported a violation.
    pub violations: Vec<&'static str>,
    pub files: Vec<crate::files_log::FileInfo>,
    pub tunnels: Vec<crate::flow::TunnelType>,
    /// Times an analyzer marked the analysis partial.
    pub partial: usize,
    /// The FTP data channels announced, with the session their files note themselves on.
    pub ftp_data: Vec<(crate::proto::ftp::DataChannel, crate::proto::ftp::Transfer)>,
}

impl Emit for Collect {
    fn record(&mut self, record: Box<dyn Record + Send>) {
        self.records.push(record);
    }
    fn file(&mut self, file: crate::files_log::FileInfo) {
        self.files.push(file);
    }
    fn weird(&mut self, _ts: Timestamp, name: &str, _addl: Option<String>) {
        self.weirds.push(name.to_string());
    }
    fn script_weird(&mut self, _ts: Timestamp, name: &str, _addl: Option<String>) {
        self.weirds.push(name.to_string());
        self.script_weirds.push(name.to_string());
    }
    fn confirm_service(&mut self, service: &'static str) {
        self.services.push(service);
    }
    fn violation(&mut self, service: &'static str) {
        self.violations.push(service);
    }
    fn tunnel(&mut self, _ts: Timestamp, kind: crate::flow::TunnelType) {
        self.tunnels.push(kind);
    }
    fn analysis_partial(&mut self) {
        self.partial += 1;
    }
    fn expect_ftp_data(
        &mut self,
        _ts: Timestamp,
        chan: crate::proto::ftp::DataChannel,
        transfer: crate::proto::ftp::Transfer,
    ) {
        self.ftp_data.push((chan, transfer));
    }
}

impl Collect {
    /// Each record's values after `id.resp_p`, tab-joined as the TSV writer renders them.
    pub fn rows(&self) -> Vec<String> {
        self.records
            .iter()
            .map(|r| {
                r.values()
                    .iter()
                    .zip(r.fields())
                    .skip(6)
                    .map(|(v, f)| {
                        let mut cell = String::new();
                        tsv_value(&mut cell, f.ty, v);
                        cell
                    })
                    .collect::<Vec<_>>()
                    .join("\t")
            })
            .collect()
    }
}

pub fn conn(proto: Transport, resp_p: u16) -> ConnInfo {
    ConnInfo {
        uid: "CTest".into(),
        id: ConnId {
            orig_h: "10.0.0.1".parse().expect("literal address"),
            orig_p: 40000,
            resp_h: "10.0.0.2".parse().expect("literal address"),
            resp_p,
            proto,
        },
    }
}

/// Weirds with their `addl` and where weird.log's `source` comes from: `"analyzer"` for
/// [`Emit::weird`], the named sub-analyzer for [`Emit::weird_from`], `"-"` for
/// [`Emit::script_weird`].
#[derive(Default)]
pub struct WeirdLog(pub Vec<(String, Option<String>, &'static str)>);

impl Emit for WeirdLog {
    fn record(&mut self, _record: Box<dyn Record + Send>) {}
    fn weird(&mut self, _ts: Timestamp, name: &str, addl: Option<String>) {
        self.0.push((name.to_string(), addl, "analyzer"));
    }
    fn weird_from(
        &mut self,
        _ts: Timestamp,
        name: &str,
        addl: Option<String>,
        source: &'static str,
    ) {
        self.0.push((name.to_string(), addl, source));
    }
    fn script_weird(&mut self, _ts: Timestamp, name: &str, addl: Option<String>) {
        self.0.push((name.to_string(), addl, "-"));
    }
    fn confirm_service(&mut self, _service: &'static str) {}
}

/// Feeds `chunks` to a new analyzer of `new` on a TCP connection to `resp_p`, all at one time.
pub fn feed(
    new: fn(&ConnInfo) -> Box<dyn crate::proto::Analyzer>,
    resp_p: u16,
    chunks: &[(crate::flow::Direction, &[u8])],
) -> Collect {
    let mut a = new(&conn(Transport::Tcp, resp_p));
    let mut out = Collect::default();
    for (dir, data) in chunks {
        a.data(Timestamp(1.0), *dir, data, &mut out);
    }
    out
}
