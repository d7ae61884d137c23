//! estuary over NATS JetStream: shippers publish batches of lines to one replicated stream,
//! aggregators read one tag each at a time through pinned pull consumers and fence their
//! commits in a replicated KV bucket, so a line is archived exactly once while any one server,
//! shipper or aggregator dies.
//!
//! - [`setup`]: the stream, the marks bucket and the consumers (`estuary cluster init`).
//! - [`publish`]: the shipper's side; [`read`]: the aggregator's side; [`ingest`]: an ingest
//!   node's, publishing what legacy senders sent it.
//! - [`batch`]: what one message holds; [`payload`]: how it travels compressed; [`marks`]: the
//!   committed high-water marks; [`names`].
//! - [`site`]: from the aggregator's `Nats*` options to the above.
//! - [`state`]: the stream's and the consumers' state for `estuary status` and `/metrics`.
//! - [`tick`]: empty messages that make the servers pin a quiet tag.

pub mod batch;
pub mod ingest;
pub mod marks;
pub mod names;
pub mod payload;
pub mod publish;
pub mod read;
pub mod setup;
pub mod site;
pub mod state;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tick;

pub use batch::{Line, Numbering, Origin};
pub use publish::{pack, Packed, Publisher, Sent, Stored};
pub use read::{Delivery, ReaderOptions, TagReader};
pub use setup::Layout;

/// Servers, TLS and credentials of a connection.
#[derive(Debug, Clone, Default)]
pub struct Connect {
    pub servers: Vec<String>,
    /// A `.creds` file (JWT and NKey seed).
    pub credentials: Option<std::path::PathBuf>,
    /// CA bundle to verify the servers with (PEM); implies TLS.
    pub ca_file: Option<std::path::PathBuf>,
    /// Client certificate and key (PEM) for servers that verify clients.
    pub client_cert: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// Connection name shown by the servers.
    pub name: String,
}

impl Connect {
    /// Connects and returns a JetStream context. When no server can be reached at once, the
    /// reason (refused, a certificate the CA does not vouch for ...) is logged and the client goes
    /// on trying in the background: the client's own reconnect events say no more than "IO error".
    pub async fn jetstream(&self) -> Result<async_nats::jetstream::Context, Error> {
        let addrs: Vec<async_nats::ServerAddr> = self
            .servers
            .iter()
            .map(|s| s.parse())
            .collect::<Result<_, _>>()
            .map_err(|e| Error::Connect(format!("{:?}: {e}", self.servers)))?;
        let client = match self.options().await?.connect(addrs.clone()).await {
            Ok(client) => client,
            Err(err) => {
                tracing::warn!(servers = ?self.servers, error = %err, "cannot connect to NATS yet; retrying");
                self.options()
                    .await?
                    .retry_on_initial_connect()
                    .connect(addrs)
                    .await
                    .map_err(|e| Error::Connect(e.to_string()))?
            }
        };
        Ok(async_nats::jetstream::new(client))
    }

    async fn options(&self) -> Result<async_nats::ConnectOptions, Error> {
        let mut opts = async_nats::ConnectOptions::new().name(&self.name);
        if let Some(creds) = &self.credentials {
            opts = opts
                .credentials_file(creds)
                .await
                .map_err(|e| Error::Connect(format!("{}: {e}", creds.display())))?;
        }
        if let Some(ca) = &self.ca_file {
            opts = opts.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let Some((cert, key)) = &self.client_cert {
            opts = opts.add_client_certificate(cert.clone(), key.clone());
        }
        Ok(opts)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("connect to NATS: {0}")]
    Connect(String),
    #[error("cluster setup: {0}")]
    Setup(String),
    #[error("consumer {0} lost its pinned-client priority settings: the server is older than 2.11 and would hand a tag to every aggregator at once")]
    ServerTooOld(String),
    #[error("publish: {0}")]
    Publish(String),
    #[error("pull: {0}")]
    Consumer(String),
    #[error("marks bucket: {0}")]
    Marks(String),
    #[error("malformed batch: {0}")]
    Malformed(String),
    #[error("tag {0}: another aggregator holds it now")]
    Deposed(String),
}
