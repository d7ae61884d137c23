//! The ftp.log record (`FTP::Info`, 19 columns).

use std::net::IpAddr;

use crate::flow::{ConnInfo, Timestamp};
use crate::zeeklog::record_id::{id_values, log_fields, opt_bytes, opt_count};
use crate::zeeklog::{Field, Record, Value};

pub const FIELDS: &[Field] = log_fields!(
    "user": String,
    "password": String,
    "command": String,
    "arg": String,
    "mime_type": String,
    "file_size": Count,
    "reply_code": Count,
    "reply_msg": String,
    "data_channel.passive": Bool,
    "data_channel.orig_h": Addr,
    "data_channel.resp_h": Addr,
    "data_channel.resp_p": Port,
    "fuid": String,
);

/// The expected data connection announced by PASV/EPSV replies or PORT/EPRT commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataChannel {
    pub passive: bool,
    pub orig_h: IpAddr,
    pub resp_h: IpAddr,
    pub resp_p: u16,
}

/// One ftp.log row.
#[derive(Debug, Clone)]
pub struct FtpInfo {
    pub ts: Timestamp,
    pub conn: ConnInfo,
    pub user: Vec<u8>,
    pub password: Option<Vec<u8>>,
    pub command: Option<String>,
    pub arg: Option<Vec<u8>>,
    pub file_size: Option<u64>,
    pub reply_code: Option<u16>,
    pub reply_msg: Option<Vec<u8>>,
    pub data_channel: Option<DataChannel>,
    /// Set by the data connection's file (base/protocols/ftp/files.zeek).
    pub mime_type: Option<&'static str>,
    pub fuid: Option<String>,
}

impl FtpInfo {
    pub fn new(ts: Timestamp, conn: ConnInfo) -> Self {
        FtpInfo {
            ts,
            conn,
            user: b"<unknown>".to_vec(),
            password: None,
            command: None,
            arg: None,
            file_size: None,
            reply_code: None,
            reply_msg: None,
            data_channel: None,
            mime_type: None,
            fuid: None,
        }
    }
}

impl Record for FtpInfo {
    fn path(&self) -> &'static str {
        "ftp"
    }

    fn fields(&self) -> &'static [Field] {
        FIELDS
    }

    fn values(&self) -> Vec<Value> {
        let mut v = id_values(self.ts, &self.conn);
        v.push(Value::Bytes(self.user.clone()));
        v.push(opt_bytes(&self.password));
        v.push(self.command.clone().map_or(Value::Unset, Value::Str));
        v.push(opt_bytes(&self.arg));
        v.push(
            self.mime_type
                .map_or(Value::Unset, |m| Value::Str(m.into())),
        );
        v.push(opt_count(self.file_size));
        v.push(opt_count(self.reply_code.map(u64::from)));
        v.push(opt_bytes(&self.reply_msg));
        match self.data_channel {
            Some(d) => v.extend([
                Value::Bool(d.passive),
                Value::Addr(d.orig_h),
                Value::Addr(d.resp_h),
                Value::Port(d.resp_p),
            ]),
            None => v.extend([Value::Unset, Value::Unset, Value::Unset, Value::Unset]),
        }
        v.push(self.fuid.clone().map_or(Value::Unset, Value::Str));
        v
    }
}
