//! files.log, as Zeek's `base/frameworks/files` writes it with its default scripts: one row
//! per file a protocol analyzer hands to file analysis (an HTTP message body, each part of a
//! multipart body, each MIME entity of a mail), written when the file ends. Without `frameworks/files/hash-all-files`
//! (which only `local.zeek` loads) no hash is computed, so the hash and extraction columns
//! stay unset; X.509 certificates are left out as `X509::log_x509_in_files_log=F` does.

use std::net::IpAddr;

use crate::flow::{ConnInfo, Direction, Timestamp};
use crate::zeeklog::{Field, FieldType, Record, Value};

/// One files.log row.
#[derive(Debug, Clone)]
pub struct FileInfo {
    /// When the file's first data was seen.
    pub ts: Timestamp,
    pub fuid: String,
    pub conn: ConnInfo,
    /// The protocol that carried it (`"HTTP"`, `"SMTP"`, `"FTP_DATA"`).
    pub source: &'static str,
    /// `Files::Info$depth`: in SMTP the count of MIME entities begun on the connection so far
    /// (`SMTP::State$mime_depth`); HTTP's scripts never set it (0).
    pub depth: u64,
    pub mime_type: Option<&'static str>,
    pub filename: Option<Vec<u8>>,
    /// When the file's last data was seen.
    pub last: Timestamp,
    /// Set by the sink from the configured local networks (unset when there are none).
    pub local_orig: Option<bool>,
    pub dir: Direction,
    pub seen_bytes: u64,
    pub total_bytes: Option<u64>,
    pub missing_bytes: u64,
    /// The file was still open when analysis ended (Zeek times it out then).
    pub timedout: bool,
}

impl FileInfo {
    /// A file whose first data is seen at `ts`, nothing known of it yet.
    pub fn new(
        ts: Timestamp,
        fuid: String,
        conn: &ConnInfo,
        source: &'static str,
        dir: Direction,
    ) -> Self {
        FileInfo {
            ts,
            fuid,
            conn: conn.clone(),
            source,
            depth: 0,
            mime_type: None,
            filename: None,
            last: ts,
            local_orig: None,
            dir,
            seen_bytes: 0,
            total_bytes: None,
            missing_bytes: 0,
            timedout: false,
        }
    }

    /// The file analyzers Zeek's default scripts attach by MIME type
    /// (`Files::register_for_mime_type`): PE for Windows executables (base/files/pe).
    pub fn analyzers(&self) -> impl Iterator<Item = &'static str> {
        (self.mime_type == Some("application/x-dosexec"))
            .then_some("PE")
            .into_iter()
    }

    /// The address that sent the file: `local_orig` tells whether it is local.
    pub fn sender(&self) -> IpAddr {
        match self.dir {
            Direction::Orig => self.conn.id.orig_h,
            Direction::Resp => self.conn.id.resp_h,
        }
    }
}

const fn field(name: &'static str, ty: FieldType) -> Field {
    Field { name, ty }
}

const FIELDS: &[Field] = &[
    field("ts", FieldType::Time),
    field("fuid", FieldType::String),
    field("uid", FieldType::String),
    field("id.orig_h", FieldType::Addr),
    field("id.orig_p", FieldType::Port),
    field("id.resp_h", FieldType::Addr),
    field("id.resp_p", FieldType::Port),
    field("source", FieldType::String),
    field("depth", FieldType::Count),
    field("analyzers", FieldType::SetString),
    field("mime_type", FieldType::String),
    field("filename", FieldType::String),
    field("duration", FieldType::Interval),
    field("local_orig", FieldType::Bool),
    field("is_orig", FieldType::Bool),
    field("seen_bytes", FieldType::Count),
    field("total_bytes", FieldType::Count),
    field("missing_bytes", FieldType::Count),
    field("overflow_bytes", FieldType::Count),
    field("timedout", FieldType::Bool),
    field("parent_fuid", FieldType::String),
    field("md5", FieldType::String),
    field("sha1", FieldType::String),
    field("sha256", FieldType::String),
    field("extracted", FieldType::String),
    field("extracted_cutoff", FieldType::Bool),
    field("extracted_size", FieldType::Count),
];

impl Record for FileInfo {
    fn path(&self) -> &'static str {
        "files"
    }

    fn fields(&self) -> &'static [Field] {
        FIELDS
    }

    fn values(&self) -> Vec<Value> {
        let id = &self.conn.id;
        vec![
            Value::Time(self.ts),
            Value::Str(self.fuid.clone()),
            Value::Str(self.conn.uid.clone()),
            Value::Addr(id.orig_h),
            Value::Port(id.orig_p),
            Value::Addr(id.resp_h),
            Value::Port(id.resp_p),
            Value::Str(self.source.into()),
            Value::Count(self.depth),
            Value::List(self.analyzers().map(|a| Value::Str(a.into())).collect()),
            self.mime_type
                .map_or(Value::Unset, |m| Value::Str(m.into())),
            self.filename.clone().map_or(Value::Unset, Value::Bytes),
            Value::Interval((self.last.0 - self.ts.0).max(0.0)),
            self.local_orig.map_or(Value::Unset, Value::Bool),
            Value::Bool(self.dir == Direction::Orig),
            Value::Count(self.seen_bytes),
            self.total_bytes.map_or(Value::Unset, Value::Count),
            Value::Count(self.missing_bytes),
            Value::Count(0),
            Value::Bool(self.timedout),
            Value::Unset,
            Value::Unset,
            Value::Unset,
            Value::Unset,
            Value::Unset,
            Value::Unset,
            Value::Unset,
        ]
    }
}
