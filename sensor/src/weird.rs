//! weird.log records: protocol violations and malformed packets, under Zeek's names.

use std::collections::HashMap;
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
        source: Option<&'static str>,
        peer: &str,
    ) -> Self {
        Weird {
            ts,
            uid: Some(uid.to_string()),
            id: Some(id),
            addrs: None,
            name: name.to_string(),
            addl,
            source,
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

/// Zeek's `Weird::weird_ignore`: a weird outside a connection is logged once per name and
/// address pair (once per name without addresses) within ten minutes of packet time, except
/// the checksum weirds in `Weird::weird_do_not_ignore_repeats`.
#[derive(Debug, Default)]
pub struct WeirdIgnore {
    until: HashMap<IgnoreKey, f64>,
}

/// A weird's name and, for a flow weird, its addresses.
type IgnoreKey = (&'static str, Option<(IpAddr, IpAddr)>);

/// `weird_ignore`'s `&create_expire`.
const IGNORE_FOR: f64 = 600.0;
const MAX_IGNORED: usize = 100_000;
const DO_NOT_IGNORE_REPEATS: &[&str] = &[
    "bad_IP_checksum",
    "bad_TCP_checksum",
    "bad_UDP_checksum",
    "bad_ICMP_checksum",
];

impl WeirdIgnore {
    /// Whether to log this weird now; remembers it if so.
    pub fn admit(&mut self, ts: f64, name: &'static str, addrs: Option<(IpAddr, IpAddr)>) -> bool {
        if DO_NOT_IGNORE_REPEATS.contains(&name) {
            return true;
        }
        let key = (name, addrs);
        if self.until.get(&key).is_some_and(|&until| ts < until) {
            return false;
        }
        if self.until.len() >= MAX_IGNORED {
            self.until.retain(|_, until| *until > ts);
        }
        self.until.insert(key, ts + IGNORE_FOR);
        true
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
