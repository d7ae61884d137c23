//! The aggregator's errors at start and stop.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Why the aggregator could not start or stop cleanly; each kind asks something else of the
/// operator. Messages leave the cause to `source()`, so a printed chain says each part once.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// LogDir or SpoolDir cannot be opened or recovered.
    #[error("opening logs in {}", log_dir.display())]
    Open { log_dir: PathBuf, source: io::Error },
    /// Another process holds the address, or it is not ours to take.
    #[error("binding {listener} {addr}")]
    Bind {
        listener: &'static str,
        addr: SocketAddr,
        source: io::Error,
    },
    #[error("TLS")]
    Tls(#[from] estuary_wire::tls::TlsError),
    #[error("a TLS or RELP-over-TLS listener needs TLSCertFile and TLSKeyFile")]
    TlsMissing,
    /// The system refused a thread or the runtime.
    #[error("starting the {what}")]
    Start {
        what: &'static str,
        source: io::Error,
    },
    /// A worker thread or task died instead of finishing.
    #[error("{what} did not finish")]
    Worker {
        what: &'static str,
        source: tokio::task::JoinError,
    },
}
