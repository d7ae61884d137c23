//! The dns.log record (`DNS::Info`, 26 columns in Zeek 8.1+).

use crate::flow::{ConnInfo, Timestamp, Transport};
use crate::zeeklog::record_id::{id_values, log_fields, opt_bytes, opt_count};
use crate::zeeklog::{Field, Record, Value};

pub const FIELDS: &[Field] = log_fields!(
    "proto": Enum,
    "trans_id": Count,
    "rtt": Interval,
    "query": String,
    "qclass": Count,
    "qclass_name": String,
    "qtype": Count,
    "qtype_name": String,
    "rcode": Count,
    "rcode_name": String,
    "AA": Bool,
    "TC": Bool,
    "RD": Bool,
    "RA": Bool,
    "Z": Count,
    "answers": VectorString,
    "TTLs": VectorInterval,
    "rejected": Bool,
    "opcode": Count,
    "opcode_name": String,
);

/// One query/response pair (or an unmatched query or response).
#[derive(Debug, Clone)]
pub struct DnsInfo {
    pub ts: Timestamp,
    pub conn: ConnInfo,
    pub trans_id: u16,
    pub rtt: Option<f64>,
    pub query: Option<Vec<u8>>,
    pub qclass: Option<u16>,
    pub qtype: Option<u16>,
    pub rcode: Option<u8>,
    pub aa: bool,
    pub tc: bool,
    pub rd: bool,
    pub ra: bool,
    pub z: u8,
    /// Rendered answers with their TTLs; `None` until a reply brought one.
    pub answers: Option<Vec<(Vec<u8>, u32)>>,
    pub rejected: bool,
    pub opcode: u8,
}

impl DnsInfo {
    pub fn new(ts: Timestamp, conn: ConnInfo, trans_id: u16, opcode: u8) -> Self {
        DnsInfo {
            ts,
            conn,
            trans_id,
            rtt: None,
            query: None,
            qclass: None,
            qtype: None,
            rcode: None,
            aa: false,
            tc: false,
            rd: false,
            ra: false,
            z: 0,
            answers: None,
            rejected: false,
            opcode,
        }
    }
}

impl Record for DnsInfo {
    fn path(&self) -> &'static str {
        "dns"
    }

    fn fields(&self) -> &'static [Field] {
        FIELDS
    }

    fn values(&self) -> Vec<Value> {
        use super::parser::{
            netbios_opcode_name, opcode_name, qclass_name, qtype_name, rcode_name,
        };
        let mut v = id_values(self.ts, &self.conn);
        v.push(Value::Enum(match self.conn.id.proto {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::Icmp => "icmp",
        }));
        v.push(Value::Count(self.trans_id.into()));
        v.push(self.rtt.map_or(Value::Unset, Value::Interval));
        v.push(opt_bytes(&self.query));
        v.push(opt_count(self.qclass.map(u64::from)));
        v.push(
            self.qclass
                .map_or(Value::Unset, |c| Value::Str(qclass_name(c))),
        );
        v.push(opt_count(self.qtype.map(u64::from)));
        // The NetBIOS name service reuses type 33 (SRV) for its node status queries.
        let netbios = self.conn.id.resp_p == 137;
        v.push(self.qtype.map_or(Value::Unset, |t| {
            Value::Str(if netbios && t == 33 {
                "NBSTAT".to_string()
            } else {
                qtype_name(t)
            })
        }));
        v.push(opt_count(self.rcode.map(u64::from)));
        v.push(
            self.rcode
                .map_or(Value::Unset, |r| Value::Str(rcode_name(r))),
        );
        v.extend([self.aa, self.tc, self.rd, self.ra].map(Value::Bool));
        v.push(Value::Count(self.z.into()));
        match &self.answers {
            Some(a) => {
                v.push(Value::List(
                    a.iter().map(|(s, _)| Value::Bytes(s.clone())).collect(),
                ));
                v.push(Value::List(
                    a.iter()
                        .map(|(_, t)| Value::Interval(f64::from(*t)))
                        .collect(),
                ));
            }
            None => v.extend([Value::Unset, Value::Unset]),
        }
        v.push(Value::Bool(self.rejected));
        v.push(Value::Count(self.opcode.into()));
        v.push(Value::Str(if netbios {
            netbios_opcode_name(self.opcode)
        } else {
            opcode_name(self.opcode)
        }));
        v
    }
}
