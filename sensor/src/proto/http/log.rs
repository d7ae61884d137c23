//! The http.log record (`HTTP::Info` plus the file columns of `HTTP::Entity`, 30 columns).

use crate::flow::{ConnInfo, Timestamp};
use crate::zeeklog::record_id::{id_values, log_fields, opt_bytes, opt_count};
use crate::zeeklog::{Field, Record, Value};

pub const FIELDS: &[Field] = log_fields!(
    "trans_depth": Count,
    "method": String,
    "host": String,
    "uri": String,
    "referrer": String,
    "version": String,
    "user_agent": String,
    "origin": String,
    "request_body_len": Count,
    "response_body_len": Count,
    "status_code": Count,
    "status_msg": String,
    "info_code": Count,
    "info_msg": String,
    "tags": SetEnum,
    "username": String,
    "password": String,
    "proxied": SetString,
    "orig_fuids": VectorString,
    "orig_filenames": VectorString,
    "orig_mime_types": VectorString,
    "resp_fuids": VectorString,
    "resp_filenames": VectorString,
    "resp_mime_types": VectorString,
);

/// Files (message bodies) seen in one direction of a transaction.
#[derive(Debug, Clone, Default)]
pub struct Files {
    pub fuids: Vec<String>,
    pub filenames: Vec<Vec<u8>>,
    pub mime_types: Vec<&'static str>,
}

impl Files {
    fn values(&self) -> [Value; 3] {
        let list = |v: Vec<Value>| {
            if v.is_empty() {
                Value::Unset
            } else {
                Value::List(v)
            }
        };
        [
            list(self.fuids.iter().cloned().map(Value::Str).collect()),
            list(self.filenames.iter().cloned().map(Value::Bytes).collect()),
            list(
                self.mime_types
                    .iter()
                    .map(|m| Value::Str((*m).into()))
                    .collect(),
            ),
        ]
    }
}

/// One request/response pair.
#[derive(Debug, Clone)]
pub struct HttpInfo {
    pub ts: Timestamp,
    pub conn: ConnInfo,
    pub trans_depth: u64,
    pub method: Option<String>,
    pub host: Option<Vec<u8>>,
    pub uri: Option<Vec<u8>>,
    pub referrer: Option<Vec<u8>>,
    pub version: Option<String>,
    pub user_agent: Option<Vec<u8>>,
    pub origin: Option<Vec<u8>>,
    pub request_body_len: u64,
    pub response_body_len: u64,
    pub status_code: Option<u16>,
    pub status_msg: Option<Vec<u8>>,
    pub info_code: Option<u16>,
    pub info_msg: Option<Vec<u8>>,
    pub username: Option<Vec<u8>>,
    pub proxied: Option<Vec<Vec<u8>>>,
    pub orig_files: Files,
    pub resp_files: Files,
    /// Zeek's `current_entity`: a body is being read (not logged).
    pub in_entity: bool,
    /// The request asked for a byte range (`HTTP::Info$range_request`, not logged).
    pub range_request: bool,
}

impl HttpInfo {
    pub fn new(ts: Timestamp, conn: ConnInfo, trans_depth: u64) -> Self {
        HttpInfo {
            ts,
            conn,
            trans_depth,
            method: None,
            host: None,
            uri: None,
            referrer: None,
            version: None,
            user_agent: None,
            origin: None,
            request_body_len: 0,
            response_body_len: 0,
            status_code: None,
            status_msg: None,
            info_code: None,
            info_msg: None,
            username: None,
            proxied: None,
            orig_files: Files::default(),
            resp_files: Files::default(),
            in_entity: false,
            range_request: false,
        }
    }
}

impl Record for HttpInfo {
    fn path(&self) -> &'static str {
        "http"
    }

    fn fields(&self) -> &'static [Field] {
        FIELDS
    }

    fn values(&self) -> Vec<Value> {
        let mut v = id_values(self.ts, &self.conn);
        v.push(Value::Count(self.trans_depth));
        v.push(self.method.clone().map_or(Value::Unset, Value::Str));
        v.push(opt_bytes(&self.host));
        v.push(opt_bytes(&self.uri));
        v.push(opt_bytes(&self.referrer));
        v.push(self.version.clone().map_or(Value::Unset, Value::Str));
        v.push(opt_bytes(&self.user_agent));
        v.push(opt_bytes(&self.origin));
        v.push(Value::Count(self.request_body_len));
        v.push(Value::Count(self.response_body_len));
        v.push(opt_count(self.status_code.map(u64::from)));
        v.push(opt_bytes(&self.status_msg));
        v.push(opt_count(self.info_code.map(u64::from)));
        v.push(opt_bytes(&self.info_msg));
        v.push(Value::List(Vec::new()));
        v.push(opt_bytes(&self.username));
        // The password is only logged with HTTP::default_capture_password=T (off by default).
        v.push(Value::Unset);
        v.push(self.proxied.as_ref().map_or(Value::Unset, |p| {
            Value::List(p.iter().cloned().map(Value::Bytes).collect())
        }));
        v.extend(self.orig_files.values());
        v.extend(self.resp_files.values());
        v
    }
}
