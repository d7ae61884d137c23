//! From an aggregator's validated `Nats*` options to what the cluster and a connection need.

use estuary_config::aggregator::NatsInput;

use crate::{setup, Connect, Error, Layout, ReaderOptions};

impl From<&NatsInput> for Layout {
    fn from(input: &NatsInput) -> Self {
        Layout {
            stream: input.stream.clone(),
            replicas: input.replicas,
            max_age: input.max_age,
            duplicate_window: input.duplicate_window,
            priority_timeout: input.priority_timeout,
            // Below the priority timeout, so the batches of a holder that froze are ready for
            // redelivery, ahead of newer ones, by the time its pin moves.
            ack_wait: (input.priority_timeout * 2 / 3).max(std::time::Duration::from_secs(2)),
            tags: input.tags.clone(),
        }
    }
}

impl From<&NatsInput> for Connect {
    fn from(input: &NatsInput) -> Self {
        Connect {
            servers: input.servers.clone(),
            credentials: input.credentials.clone(),
            ca_file: input.ca_file.clone(),
            client_cert: None,
            name: format!("estuary aggregator {}", input.name),
        }
    }
}

/// The reader options of one of the input's tags.
pub fn reader_options(input: &NatsInput, tag: &str) -> ReaderOptions {
    ReaderOptions {
        stream: input.stream.clone(),
        tag: tag.to_owned(),
        holder: input.name.clone(),
        priority_timeout: input.priority_timeout,
        retention: input.max_age,
    }
}

/// `estuary cluster init`: creates or checks everything the input needs; the report says what
/// the cluster holds.
pub fn init(input: &NatsInput) -> Result<setup::Report, Error> {
    runtime()?.block_on(async {
        let js = tokio::time::timeout(CONNECT_TIMEOUT, Connect::from(input).jetstream())
            .await
            .map_err(|_| Error::Connect(format!("no answer from {:?}", input.servers)))??;
        tokio::time::timeout(SETUP_TIMEOUT, setup::init(&js, &Layout::from(input)))
            .await
            .map_err(|_| {
                Error::Setup("no answer from the cluster (is a meta leader elected?)".into())
            })?
    })
}

const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const SETUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Connect(format!("start the runtime: {e}")))
}
