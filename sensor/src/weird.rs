//! weird.log records: protocol violations and malformed packets, under Zeek's names.

use std::net::IpAddr;

use crate::flow::{ConnId, Timestamp};
use crate::zeeklog::record_id::log_fields;
use crate::zeeklog::{Field, Record, Value};

/// One weird.log row.
#[derive(Debug, Clone, PartialEq)]
pub struct Weird {
    pub ts: Timestamp,
    pub uid: Option<String>,
    pub id: Option<ConnId>,
    /// For weirds without a connection but with addresses (IP-layer weirds).
    pub addrs: Option<(IpAddr, IpAddr)>,
    pub name: String,
    pub addl: Option<String>,
    /// The analyzer that raised it (`TCP`, `IP`, `HTTP` ...), unset for the core.
    pub source: Option<&'static str>,
    pub peer: String,
}

impl Weird {
    /// A weird of a connection.
    pub fn conn(
        ts: Timestamp,
        uid: &str,
        id: ConnId,
        name: &str,
        addl: Option<String>,
        source: &'static str,
        peer: &str,
    ) -> Self {
        Weird {
            ts,
            uid: Some(uid.to_string()),
            id: Some(id),
            addrs: None,
            name: name.to_string(),
            addl,
            source: Some(source),
            peer: peer.to_string(),
        }
    }

    /// A weird outside any connection, with the packet's addresses where it has them.
    pub fn flow(
        ts: Timestamp,
        addrs: Option<(IpAddr, IpAddr)>,
        name: &str,
        addl: Option<String>,
        source: Option<&'static str>,
        peer: &str,
    ) -> Self {
        Weird {
            ts,
            uid: None,
            id: None,
            addrs,
            name: name.to_string(),
            addl,
            source,
            peer: peer.to_string(),
        }
    }
}

const FIELDS: &[Field] = log_fields!(
    "name": String,
    "addl": String,
    "notice": Bool,
    "peer": String,
    "source": String,
);

impl Record for Weird {
    fn path(&self) -> &'static str {
        "weird"
    }
    fn fields(&self) -> &'static [Field] {
        FIELDS
    }
    fn values(&self) -> Vec<Value> {
        let (oh, op, rh, rp) = match (&self.id, &self.addrs) {
            (Some(id), _) => (
                Value::Addr(id.orig_h),
                Value::Port(id.orig_p),
                Value::Addr(id.resp_h),
                Value::Port(id.resp_p),
            ),
            (None, Some((s, d))) => (
                Value::Addr(*s),
                Value::Port(0),
                Value::Addr(*d),
                Value::Port(0),
            ),
            (None, None) => (Value::Unset, Value::Unset, Value::Unset, Value::Unset),
        };
        vec![
            Value::Time(self.ts),
            self.uid.clone().map_or(Value::Unset, Value::Str),
            oh,
            op,
            rh,
            rp,
            Value::Str(self.name.clone()),
            self.addl.clone().map_or(Value::Unset, Value::Str),
            Value::Bool(false),
            Value::Str(self.peer.clone()),
            self.source
                .map_or(Value::Unset, |s| Value::Str(s.to_string())),
        ]
    }
}
