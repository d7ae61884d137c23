//! The ntp.log record.

use crate::flow::{ConnInfo, Timestamp};
use crate::zeeklog::record_id::{id_values, log_fields};
use crate::zeeklog::{Field, Record, Value};

use super::parser::StdMessage;

/// One ntp.log row.
#[derive(Debug, Clone)]
pub struct NtpInfo {
    pub ts: Timestamp,
    pub conn: ConnInfo,
    pub msg: StdMessage,
}

const FIELDS: &[Field] = log_fields!(
    "version": Count,
    "mode": Count,
    "stratum": Count,
    "poll": Interval,
    "precision": Interval,
    "root_delay": Interval,
    "root_disp": Interval,
    "ref_id": String,
    "ref_time": Time,
    "org_time": Time,
    "rec_time": Time,
    "xmt_time": Time,
    "num_exts": Count,
);

/// Zeek's `ref_id` column: the reference clock code at stratum 0/1, an IPv4 address above.
fn ref_id(m: &StdMessage) -> String {
    let r = m.ref_id;
    if m.stratum <= 1 {
        String::from_utf8_lossy(&r)
            .trim_end_matches('\0')
            .to_string()
    } else {
        format!("{}.{}.{}.{}", r[0], r[1], r[2], r[3])
    }
}

impl Record for NtpInfo {
    fn path(&self) -> &'static str {
        "ntp"
    }
    fn fields(&self) -> &'static [Field] {
        FIELDS
    }
    fn values(&self) -> Vec<Value> {
        let m = &self.msg;
        let mut v = id_values(self.ts, &self.conn);
        v.extend([
            Value::Count(u64::from(m.version)),
            Value::Count(u64::from(m.mode)),
            Value::Count(u64::from(m.stratum)),
            Value::Interval(m.poll),
            Value::Interval(m.precision),
            Value::Interval(m.root_delay),
            Value::Interval(m.root_disp),
            Value::Str(ref_id(m)),
            Value::Time(Timestamp(m.ref_time)),
            Value::Time(Timestamp(m.org_time)),
            Value::Time(Timestamp(m.rec_time)),
            Value::Time(Timestamp(m.xmt_time)),
            Value::Count(m.num_exts),
        ]);
        v
    }
}
