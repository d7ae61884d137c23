//! The ssh.log record (`SSH::Info`, 18 columns in Zeek 8.1+).

use crate::zeeklog::record_id::{id_values, log_fields, opt_bytes, opt_count};
use std::net::IpAddr;

use crate::flow::{ConnInfo, Timestamp};
use crate::zeeklog::{Field, Record, Value};

pub const FIELDS: &[Field] = log_fields!(
    "version": Count,
    "auth_success": Bool,
    "auth_attempts": Count,
    "direction": Enum,
    "client": String,
    "server": String,
    "cipher_alg": String,
    "mac_alg": String,
    "compression_alg": String,
    "kex_alg": String,
    "host_key_alg": String,
    "host_key_fingerprint": String,
);

/// Zeek's `Direction` enum, from which side is in the local networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SshDirection {
    Inbound,
    Outbound,
}

#[derive(Debug, Clone)]
pub struct SshInfo {
    pub ts: Timestamp,
    pub conn: ConnInfo,
    pub version: Option<u64>,
    pub auth_success: Option<bool>,
    pub auth_attempts: u64,
    pub direction: Option<SshDirection>,
    pub client: Option<Vec<u8>>,
    pub server: Option<Vec<u8>>,
    pub cipher_alg: Option<String>,
    pub mac_alg: Option<String>,
    pub compression_alg: Option<String>,
    pub kex_alg: Option<String>,
    pub host_key_alg: Option<String>,
    pub host_key_fingerprint: Option<String>,
}

impl SshInfo {
    pub fn new(ts: Timestamp, conn: ConnInfo) -> Self {
        SshInfo {
            ts,
            conn,
            version: None,
            auth_success: None,
            auth_attempts: 0,
            direction: None,
            client: None,
            server: None,
            cipher_alg: None,
            mac_alg: None,
            compression_alg: None,
            kex_alg: None,
            host_key_alg: None,
            host_key_fingerprint: None,
        }
    }
}

/// What one SSH connection's login came to, for the password-guessing detection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoginOutcome {
    pub ts: Timestamp,
    pub client: IpAddr,
    pub server: IpAddr,
    /// `None` when the analyzer could not tell.
    pub success: Option<bool>,
}

impl SshInfo {
    pub fn login(&self) -> LoginOutcome {
        LoginOutcome {
            ts: self.ts,
            client: self.conn.id.orig_h,
            server: self.conn.id.resp_h,
            success: self.auth_success,
        }
    }
}

impl Record for SshInfo {
    fn path(&self) -> &'static str {
        "ssh"
    }

    fn fields(&self) -> &'static [Field] {
        FIELDS
    }

    fn values(&self) -> Vec<Value> {
        let s = |o: &Option<String>| o.clone().map_or(Value::Unset, Value::Str);
        let mut v = id_values(self.ts, &self.conn);
        v.push(opt_count(self.version));
        v.push(self.auth_success.map_or(Value::Unset, Value::Bool));
        v.push(Value::Count(self.auth_attempts));
        v.push(self.direction.map_or(Value::Unset, |d| {
            Value::Enum(match d {
                SshDirection::Inbound => "INBOUND",
                SshDirection::Outbound => "OUTBOUND",
            })
        }));
        v.push(opt_bytes(&self.client));
        v.push(opt_bytes(&self.server));
        v.push(s(&self.cipher_alg));
        v.push(s(&self.mac_alg));
        v.push(s(&self.compression_alg));
        v.push(s(&self.kex_alg));
        v.push(s(&self.host_key_alg));
        v.push(s(&self.host_key_fingerprint));
        v
    }
}
