//! The ssl.log record (`SSL::Info`, 18 columns in Zeek 8).

use crate::flow::{ConnInfo, Timestamp};
use crate::zeeklog::record_id::{id_values, log_fields, opt_bytes};
use crate::zeeklog::{Field, Record, Value};

pub const FIELDS: &[Field] = log_fields!(
    "version": String,
    "cipher": String,
    "curve": String,
    "server_name": String,
    "resumed": Bool,
    "last_alert": String,
    "next_protocol": String,
    "established": Bool,
    "ssl_history": String,
    "cert_chain_fps": VectorString,
    "client_cert_chain_fps": VectorString,
    "sni_matches_cert": Bool,
);

#[derive(Debug, Clone)]
pub struct SslInfo {
    pub ts: Timestamp,
    pub conn: ConnInfo,
    /// The version's number (not logged).
    pub version_num: Option<u16>,
    pub version: Option<String>,
    pub cipher: Option<String>,
    pub curve: Option<String>,
    pub server_name: Option<Vec<u8>>,
    pub resumed: bool,
    pub last_alert: Option<String>,
    pub next_protocol: Option<Vec<u8>>,
    pub established: bool,
    pub ssl_history: String,
    pub cert_chain_fps: Option<Vec<String>>,
    pub client_cert_chain_fps: Option<Vec<String>>,
    pub sni_matches_cert: Option<bool>,
}

impl SslInfo {
    pub fn new(ts: Timestamp, conn: ConnInfo) -> Self {
        SslInfo {
            ts,
            conn,
            version_num: None,
            version: None,
            cipher: None,
            curve: None,
            server_name: None,
            resumed: false,
            last_alert: None,
            next_protocol: None,
            established: false,
            ssl_history: String::new(),
            cert_chain_fps: None,
            client_cert_chain_fps: None,
            sni_matches_cert: None,
        }
    }
}

fn opt_list(v: &Option<Vec<String>>) -> Value {
    v.as_ref().map_or(Value::Unset, |l| {
        Value::List(l.iter().cloned().map(Value::Str).collect())
    })
}

impl Record for SslInfo {
    fn path(&self) -> &'static str {
        "ssl"
    }

    fn fields(&self) -> &'static [Field] {
        FIELDS
    }

    fn values(&self) -> Vec<Value> {
        let s = |o: &Option<String>| o.clone().map_or(Value::Unset, Value::Str);
        let mut v = id_values(self.ts, &self.conn);
        v.push(s(&self.version));
        v.push(s(&self.cipher));
        v.push(s(&self.curve));
        v.push(opt_bytes(&self.server_name));
        v.push(Value::Bool(self.resumed));
        v.push(s(&self.last_alert));
        v.push(opt_bytes(&self.next_protocol));
        v.push(Value::Bool(self.established));
        v.push(if self.ssl_history.is_empty() {
            Value::Unset
        } else {
            Value::Str(self.ssl_history.clone())
        });
        v.push(opt_list(&self.cert_chain_fps));
        v.push(opt_list(&self.client_cert_chain_fps));
        v.push(self.sni_matches_cert.map_or(Value::Unset, Value::Bool));
        v
    }
}
