//! The shipper side: publish a batch and wait for the stream to store it on a quorum.

use std::time::Duration;

use async_nats::jetstream::context::{PublishAckFuture, PublishError, PublishErrorKind};
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::{self, message::PublishMessage};
use bytes::Bytes;

use crate::batch::Origin;
use crate::{payload, Error};

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
        let packed = payload::compress(&lines)?;
        self.until_stored(origin, packed).await
    }

    async fn until_stored(&self, origin: &Origin, packed: Bytes) -> Result<Stored, Error> {
        loop {
            match self.attempt(origin, packed.clone()).await {
                Attempt::Stored(s) => return Ok(s),
                Attempt::Fatal(e) => return Err(e),
                Attempt::Again => tokio::time::sleep(self.retry_every).await,
            }
        }
    }

    /// Publishes several batches with all of them in flight at once, and returns when every one
    /// is stored, in the order given (see [`Publisher::send_all`]). They are compressed on a
    /// blocking thread.
    pub async fn publish_all(&self, batches: &[(Origin, Bytes)]) -> Result<Vec<Stored>, Error> {
        let plain = batches.to_vec();
        let packed = tokio::task::spawn_blocking(move || pack(plain))
            .await
            .map_err(|e| Error::Publish(format!("compression task: {e}")))??;
        let sent = self.send_all(packed).await;
        self.stored(sent).await
    }

    /// Sends packed batches in the order given, without waiting for the stream's answers: a
    /// file's batches must reach the stream in order, or the reader holds the later ones back
    /// until the earlier one comes.
    pub async fn send_all(&self, packed: Packed) -> Sent {
        let mut sent = Vec::with_capacity(packed.0.len());
        for (origin, bytes) in packed.0 {
            let answer = self.send(&origin, bytes.clone()).await;
            sent.push((origin, bytes, answer));
        }
        Sent(sent)
    }

    /// Waits for the stream to store every sent batch. A batch that failed is sent again (same
    /// id) after the others, so the stream may hold a file's batches out of order; the reader
    /// waits for the earlier one.
    pub async fn stored(&self, sent: Sent) -> Result<Vec<Stored>, Error> {
        let mut stored = Vec::with_capacity(sent.0.len());
        for (origin, packed, answer) in sent.0 {
            let outcome = match answer {
                Ok(future) => classify(future.await, &origin),
                Err(e) => classify(Err(e), &origin),
            };
            stored.push(match outcome {
                Attempt::Stored(s) => s,
                Attempt::Fatal(e) => return Err(e),
                Attempt::Again => self.until_stored(&origin, packed).await?,
            });
        }
        Ok(stored)
    }

    async fn send(&self, origin: &Origin, packed: Bytes) -> Result<PublishAckFuture, PublishError> {
        let mut headers = origin.headers();
        payload::mark(&mut headers);
        let msg = PublishMessage::build()
            .payload(packed)
            .headers(headers)
            .message_id(origin.message_id())
            .expected_stream(&self.stream);
        self.js.send_publish(origin.subject(), msg).await
    }

    async fn attempt(&self, origin: &Origin, packed: Bytes) -> Attempt {
        match self.send(origin, packed).await {
            Ok(future) => classify(future.await, origin),
            Err(e) => classify(Err(e), origin),
        }
    }
}

/// Batches compressed for the stream, in their order.
pub struct Packed(Vec<(Origin, Bytes)>);

/// Batches sent, with the stream's answers to come.
pub struct Sent(Vec<(Origin, Bytes, Answer)>);

type Answer = Result<PublishAckFuture, PublishError>;

/// Compresses batches for [`Publisher::send_all`]: blocking work, to run off the event loop.
pub fn pack(batches: Vec<(Origin, Bytes)>) -> Result<Packed, Error> {
    batches
        .into_iter()
        .map(|(origin, lines)| Ok((origin, payload::compress(&lines)?)))
        .collect::<Result<Vec<_>, Error>>()
        .map(Packed)
}

enum Attempt {
    Stored(Stored),
    Again,
    Fatal(Error),
}

fn classify(acked: Result<PublishAck, PublishError>, origin: &Origin) -> Attempt {
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
