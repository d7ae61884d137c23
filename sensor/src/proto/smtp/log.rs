//! The smtp.log record (`SMTP::Info`, 26 columns).

use std::net::IpAddr;

use crate::flow::{ConnInfo, Timestamp};
use crate::zeeklog::record_id::{id_values, log_fields, opt_bytes};
use crate::zeeklog::{Field, Record, Value};

pub const FIELDS: &[Field] = log_fields!(
    "trans_depth": Count,
    "helo": String,
    "mailfrom": String,
    "rcptto": SetString,
    "date": String,
    "from": String,
    "to": SetString,
    "cc": SetString,
    "reply_to": String,
    "msg_id": String,
    "in_reply_to": String,
    "subject": String,
    "x_originating_ip": Addr,
    "first_received": String,
    "second_received": String,
    "last_reply": String,
    "path": VectorAddr,
    "user_agent": String,
    "tls": Bool,
    "fuids": VectorString,
);

/// One mail transaction.
#[derive(Debug, Clone)]
pub struct SmtpInfo {
    pub ts: Timestamp,
    pub conn: ConnInfo,
    pub trans_depth: u64,
    pub helo: Option<Vec<u8>>,
    pub mailfrom: Option<Vec<u8>>,
    pub rcptto: Option<Vec<Vec<u8>>>,
    pub date: Option<Vec<u8>>,
    pub from: Option<Vec<u8>>,
    pub to: Option<Vec<Vec<u8>>>,
    pub cc: Option<Vec<Vec<u8>>>,
    pub reply_to: Option<Vec<u8>>,
    pub msg_id: Option<Vec<u8>>,
    pub in_reply_to: Option<Vec<u8>>,
    pub subject: Option<Vec<u8>>,
    pub x_originating_ip: Option<IpAddr>,
    pub first_received: Option<Vec<u8>>,
    pub second_received: Option<Vec<u8>>,
    pub last_reply: Option<Vec<u8>>,
    pub path: Vec<IpAddr>,
    pub user_agent: Option<Vec<u8>>,
    pub tls: bool,
    pub fuids: Vec<String>,
    /// Zeek's `has_client_activity`: only such transactions are logged (not a column).
    pub has_client_activity: bool,
    /// Received headers still extend `path` (not a column).
    pub process_received_from: bool,
    /// Entities begun in the current message; headers count only for the first (not a column).
    pub entity_count: u64,
}

impl SmtpInfo {
    pub fn new(ts: Timestamp, conn: ConnInfo, trans_depth: u64, helo: Option<Vec<u8>>) -> Self {
        let path = vec![conn.id.resp_h, conn.id.orig_h];
        SmtpInfo {
            ts,
            conn,
            trans_depth,
            helo,
            mailfrom: None,
            rcptto: None,
            date: None,
            from: None,
            to: None,
            cc: None,
            reply_to: None,
            msg_id: None,
            in_reply_to: None,
            subject: None,
            x_originating_ip: None,
            first_received: None,
            second_received: None,
            last_reply: None,
            path,
            user_agent: None,
            tls: false,
            fuids: Vec::new(),
            has_client_activity: false,
            process_received_from: true,
            entity_count: 0,
        }
    }
}

fn set(v: &Option<Vec<Vec<u8>>>) -> Value {
    v.as_ref().map_or(Value::Unset, |s| {
        Value::List(s.iter().cloned().map(Value::Bytes).collect())
    })
}

impl Record for SmtpInfo {
    fn path(&self) -> &'static str {
        "smtp"
    }

    fn fields(&self) -> &'static [Field] {
        FIELDS
    }

    fn values(&self) -> Vec<Value> {
        let mut v = id_values(self.ts, &self.conn);
        v.push(Value::Count(self.trans_depth));
        v.push(opt_bytes(&self.helo));
        v.push(opt_bytes(&self.mailfrom));
        v.push(set(&self.rcptto));
        v.push(opt_bytes(&self.date));
        v.push(opt_bytes(&self.from));
        v.push(set(&self.to));
        v.push(set(&self.cc));
        v.push(opt_bytes(&self.reply_to));
        v.push(opt_bytes(&self.msg_id));
        v.push(opt_bytes(&self.in_reply_to));
        v.push(opt_bytes(&self.subject));
        v.push(self.x_originating_ip.map_or(Value::Unset, Value::Addr));
        v.push(opt_bytes(&self.first_received));
        v.push(opt_bytes(&self.second_received));
        v.push(opt_bytes(&self.last_reply));
        v.push(Value::List(
            self.path.iter().copied().map(Value::Addr).collect(),
        ));
        v.push(opt_bytes(&self.user_agent));
        v.push(Value::Bool(self.tls));
        v.push(Value::List(
            self.fuids.iter().cloned().map(Value::Str).collect(),
        ));
        v
    }
}
