//! What the cluster holds for an aggregator's tags, as `estuary status` and `/metrics` show it:
//! the stream's size, and per tag its consumer's backlog and the holder its marks name.

use std::collections::BTreeMap;

use async_nats::jetstream;
use serde::{Deserialize, Serialize};

use crate::marks::Marks;
use crate::{names, Error};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamState {
    pub stream: String,
    pub messages: u64,
    pub bytes: u64,
    /// Per tag as configured.
    pub tags: BTreeMap<String, TagState>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagState {
    /// Batches not yet delivered to any aggregator: the tag's lag.
    pub pending: u64,
    /// Batches delivered and not yet acknowledged (written, not yet committed).
    pub ack_pending: u64,
    /// Batches delivered more than once (redelivered after the ack wait or a failover).
    pub redelivered: u64,
    /// Whether the servers have a client pinned for the tag at all.
    pub pinned: bool,
    /// The aggregator named in the tag's committed marks (the last to claim or commit it).
    pub marks_holder: String,
}

/// Asks the cluster; one request per object, so a few per tag.
pub async fn query(
    js: &jetstream::Context,
    stream: &str,
    tags: &[String],
) -> Result<StreamState, Error> {
    let failed = |what: &str, e: &dyn std::fmt::Display| Error::Consumer(format!("{what}: {e}"));
    let mut handle = js
        .get_stream(stream)
        .await
        .map_err(|e| failed(&format!("stream {stream}"), &e))?;
    let info = handle
        .info()
        .await
        .map_err(|e| failed(&format!("stream {stream}"), &e))?;
    let mut state = StreamState {
        stream: stream.to_owned(),
        messages: info.state.messages,
        bytes: info.state.bytes,
        tags: BTreeMap::new(),
    };
    let kv = js
        .get_key_value(names::MARKS_BUCKET)
        .await
        .map_err(|e| failed(names::MARKS_BUCKET, &e))?;
    for tag in tags {
        let name = names::consumer(tag);
        let info = handle
            .consumer_info(&name)
            .await
            .map_err(|e| failed(&format!("consumer {name}"), &e))?;
        let marks_holder = match kv.get(names::marks_key(tag)).await {
            Ok(Some(value)) => Marks::decode(&value)?.holder,
            Ok(None) => String::new(),
            Err(e) => return Err(failed(names::MARKS_BUCKET, &e)),
        };
        state.tags.insert(
            tag.clone(),
            TagState {
                pending: info.num_pending,
                ack_pending: info.num_ack_pending as u64,
                redelivered: info.num_redelivered as u64,
                pinned: info
                    .priority_groups
                    .iter()
                    .any(|g| g.pinned_client_id.is_some()),
                marks_holder,
            },
        );
    }
    Ok(state)
}
