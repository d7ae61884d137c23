//! Ticks: empty messages that make the servers pin a tag nobody holds. The servers pin a
//! client when they deliver a message to it, so a quiet tag (the notices, on a calm day) has no
//! holder after a start or a failover until its next line, and the digests and cron mail that
//! follow the notice tag's holder would wait for it. An aggregator that sees the tag unpinned
//! and nothing waiting publishes a tick; the reader it reaches takes the tag and acknowledges
//! it, writing nothing.

use async_nats::jetstream::{self, message::PublishMessage};
use async_nats::HeaderMap;

use crate::{names, Error};

/// The header that makes a message a tick; its value names the aggregator that sent it.
const TICK: &str = "Estuary-Tick";

pub fn is_tick(headers: Option<&HeaderMap>) -> bool {
    headers.is_some_and(|h| h.get(TICK).is_some())
}

/// Publishes a tick for `tag` from aggregator `from`. Ticks from several aggregators within the
/// same `slot` (any number that changes over time) are stored once.
pub async fn publish(
    js: &jetstream::Context,
    stream: &str,
    tag: &str,
    from: &str,
    slot: u64,
) -> Result<(), Error> {
    let mut headers = HeaderMap::new();
    headers.insert(TICK, from);
    let msg = PublishMessage::build()
        .headers(headers)
        .message_id(format!("tick.{}.{slot}", names::tag_token(tag)))
        .expected_stream(stream);
    let failed = |e: &dyn std::fmt::Display| Error::Consumer(format!("tick for {tag}: {e}"));
    js.send_publish(names::subject(tag, from), msg)
        .await
        .map_err(|e| failed(&e))?
        .await
        .map_err(|e| failed(&e))?;
    Ok(())
}
