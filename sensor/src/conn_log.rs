//! The conn.log record, written when the flow table removes a connection.

use std::net::IpAddr;

use crate::flow::Timestamp;
use crate::zeeklog::record_id::log_fields;
use crate::zeeklog::{Field, Record, Value};

/// conn.log `proto`: the transport, or `unknown_transport` for other IP protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnProto {
    Tcp,
    Udp,
    Icmp,
    Unknown,
}

impl ConnProto {
    pub fn zeek_name(self) -> &'static str {
        match self {
            ConnProto::Tcp => "tcp",
            ConnProto::Udp => "udp",
            ConnProto::Icmp => "icmp",
            ConnProto::Unknown => "unknown_transport",
        }
    }
}

/// One conn.log row.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnRecord {
    pub ts: Timestamp,
    pub uid: String,
    pub orig_h: IpAddr,
    pub orig_p: u16,
    pub resp_h: IpAddr,
    pub resp_p: u16,
    pub proto: ConnProto,
    pub service: Vec<&'static str>,
    /// Set only when the duration is positive, like the byte counts.
    pub duration: Option<f64>,
    pub orig_bytes: Option<u64>,
    pub resp_bytes: Option<u64>,
    pub conn_state: &'static str,
    pub local_orig: Option<bool>,
    pub local_resp: Option<bool>,
    pub missed_bytes: u64,
    pub history: String,
    pub orig_pkts: u64,
    pub orig_ip_bytes: u64,
    pub resp_pkts: u64,
    pub resp_ip_bytes: u64,
    pub tunnel_parents: Vec<String>,
    pub ip_proto: u8,
}

const FIELDS: &[Field] = log_fields!(
    "proto": Enum,
    "service": String,
    "duration": Interval,
    "orig_bytes": Count,
    "resp_bytes": Count,
    "conn_state": String,
    "local_orig": Bool,
    "local_resp": Bool,
    "missed_bytes": Count,
    "history": String,
    "orig_pkts": Count,
    "orig_ip_bytes": Count,
    "resp_pkts": Count,
    "resp_ip_bytes": Count,
    "tunnel_parents": SetString,
    "ip_proto": Count,
);

impl Record for ConnRecord {
    fn path(&self) -> &'static str {
        "conn"
    }
    fn fields(&self) -> &'static [Field] {
        FIELDS
    }
    fn values(&self) -> Vec<Value> {
        vec![
            Value::Time(self.ts),
            Value::Str(self.uid.clone()),
            Value::Addr(self.orig_h),
            Value::Port(self.orig_p),
            Value::Addr(self.resp_h),
            Value::Port(self.resp_p),
            Value::Enum(self.proto.zeek_name()),
            if self.service.is_empty() {
                Value::Unset
            } else {
                Value::Str(self.service.join(","))
            },
            self.duration.map_or(Value::Unset, Value::Interval),
            self.orig_bytes.map_or(Value::Unset, Value::Count),
            self.resp_bytes.map_or(Value::Unset, Value::Count),
            Value::Str(self.conn_state.to_string()),
            self.local_orig.map_or(Value::Unset, Value::Bool),
            self.local_resp.map_or(Value::Unset, Value::Bool),
            Value::Count(self.missed_bytes),
            if self.history.is_empty() {
                Value::Unset
            } else {
                Value::Str(self.history.clone())
            },
            Value::Count(self.orig_pkts),
            Value::Count(self.orig_ip_bytes),
            Value::Count(self.resp_pkts),
            Value::Count(self.resp_ip_bytes),
            if self.tunnel_parents.is_empty() {
                Value::Unset
            } else {
                Value::List(
                    self.tunnel_parents
                        .iter()
                        .cloned()
                        .map(Value::Str)
                        .collect(),
                )
            },
            Value::Count(u64::from(self.ip_proto)),
        ]
    }
}
