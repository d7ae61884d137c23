//! The shipper side: publish a batch and wait for the stream to store it on a quorum.

use std::time::Duration;

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};
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
    /// an error that a resend cannot fix (a batch larger than the server accepts, a stream that
    /// does not take the subject) is returned.
    pub async fn publish(&self, origin: &Origin, lines: Bytes) -> Result<Stored, Error> {
        let subject = origin.subject();
        loop {
            let msg = PublishMessage::build()
                .payload(lines.clone())
                .headers(origin.headers())
                .message_id(origin.message_id())
                .expected_stream(&self.stream);
            let sent = self.js.send_publish(subject.clone(), msg).await;
            let acked = match sent {
                Ok(future) => future.await,
                Err(e) => Err(e),
            };
            match acked {
                Ok(ack) => {
                    return Ok(Stored {
                        sequence: ack.sequence,
                        duplicate: ack.duplicate,
                    })
                }
                Err(e) if matches!(e.kind(), PublishErrorKind::MaxPayloadExceeded) => {
                    return Err(Error::Publish(e.to_string()))
                }
                Err(e) => {
                    tracing::warn!(id = %origin.message_id(), error = %e, "publish not acknowledged; sending again");
                    tokio::time::sleep(self.retry_every).await;
                }
            }
        }
    }
}
