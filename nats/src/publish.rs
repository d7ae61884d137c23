//! The shipper side: publish a batch and wait for the stream to store it on a quorum.

use std::time::Duration;

use async_nats::jetstream::context::{PublishAckFuture, PublishErrorKind};
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::{self, message::PublishMessage};
use bytes::Bytes;

use crate::batch::Origin;
use crate::Error;

pub struct Publisher {
    js: jetstream::Context,
    stream: String,
    retry_every: Duration,
}

/// The stream's answer to a stored batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub sequence: u64,
    /// The server had this message id inside its duplicate window: a resend.
    pub duplicate: bool,
}

impl Publisher {
    pub fn new(js: jetstream::Context, stream: impl Into<String>) -> Self {
        Publisher {
            js,
            stream: stream.into(),
            retry_every: Duration::from_millis(250),
        }
    }

    /// Publishes `lines` (contiguous lines of the origin's file, each ending in `\n`) and returns
    /// once the stream acknowledged them, resending with the same message id until it does: a
    /// resend the server already stored comes back as a duplicate, not as a second copy. Only
    /// an error that a resend cannot fix (a batch larger than the server accepts) is returned.
    pub async fn publish(&self, origin: &Origin, lines: Bytes) -> Result<Stored, Error> {
        loop {
            match self.attempt(origin, lines.clone()).await {
                Attempt::Stored(s) => return Ok(s),
                Attempt::Fatal(e) => return Err(e),
                Attempt::Again => tokio::time::sleep(self.retry_every).await,
            }
        }
    }

    /// Publishes several batches with all of them in flight at once, and returns when every one
    /// is stored, in the order given. A batch that failed is sent again (same id) after the
    /// others, so the stream may hold a file's batches out of order; the reader waits for the
    /// earlier one.
    pub async fn publish_all(&self, batches: &[(Origin, Bytes)]) -> Result<Vec<Stored>, Error> {
        let mut pending = Vec::with_capacity(batches.len());
        for (origin, lines) in batches {
            pending.push(self.send(origin, lines.clone()).await);
        }
        let mut stored = Vec::with_capacity(batches.len());
        for ((origin, lines), sent) in batches.iter().zip(pending) {
            let outcome = match sent {
                Ok(future) => classify(future.await, origin),
                Err(e) => classify(Err(e), origin),
            };
            stored.push(match outcome {
                Attempt::Stored(s) => s,
                Attempt::Fatal(e) => return Err(e),
                Attempt::Again => self.publish(origin, lines.clone()).await?,
            });
        }
        Ok(stored)
    }

    async fn send(
        &self,
        origin: &Origin,
        lines: Bytes,
    ) -> Result<PublishAckFuture, async_nats::jetstream::context::PublishError> {
        let msg = PublishMessage::build()
            .payload(lines)
            .headers(origin.headers())
            .message_id(origin.message_id())
            .expected_stream(&self.stream);
        self.js.send_publish(origin.subject(), msg).await
    }

    async fn attempt(&self, origin: &Origin, lines: Bytes) -> Attempt {
        match self.send(origin, lines).await {
            Ok(future) => classify(future.await, origin),
            Err(e) => classify(Err(e), origin),
        }
    }
}

enum Attempt {
    Stored(Stored),
    Again,
    Fatal(Error),
}

fn classify(
    acked: Result<PublishAck, async_nats::jetstream::context::PublishError>,
    origin: &Origin,
) -> Attempt {
    match acked {
        Ok(ack) => Attempt::Stored(Stored {
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        }),
        Err(e) if e.kind() == PublishErrorKind::MaxPayloadExceeded => {
            Attempt::Fatal(Error::Publish(e.to_string()))
        }
        Err(e) => {
            tracing::warn!(id = %origin.message_id(), error = %e, "batch not stored yet; sending it again");
            Attempt::Again
        }
    }
}
