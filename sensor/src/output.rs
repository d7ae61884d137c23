//! What the engine hands to the record sink: finished log rows, typed where a cross-connection
//! detection reads them.

use crate::conn_log::ConnRecord;
use crate::files_log::FileInfo;
use crate::proto::ssh::SshInfo;
use crate::proto::ssl::x509::X509Info;
use crate::tunnel_log::TunnelRecord;
use crate::zeeklog::Record;

/// One finished row.
pub enum Output {
    /// A conn.log row; the scan detector reads it.
    Conn(ConnRecord),
    /// An ssh.log row; the password-guessing detector reads its login outcome.
    Ssh(SshInfo),
    /// An x509.log row; the sink logs each certificate once a day.
    X509(X509Info),
    /// A files.log row; the sink sets `local_orig`.
    File(FileInfo),
    /// A tunnel.log DISCOVER row of a proxy an analyzer found; the engine keeps it only when
    /// the tunnel is not active yet.
    Tunnel(TunnelRecord),
    /// Any other log's row.
    Log(Box<dyn Record + Send>),
}

impl Output {
    /// The row as a log record, for the writers.
    pub fn record(&self) -> &dyn Record {
        match self {
            Output::Conn(c) => c,
            Output::Ssh(s) => s,
            Output::X509(c) => c,
            Output::File(f) => f,
            Output::Tunnel(t) => t,
            Output::Log(r) => r.as_ref(),
        }
    }
}

/// Rows produced while processing (conn, protocol logs, weirds).
pub type Records = Vec<Output>;
