//! The `nats` input: with `NatsServers` set, the aggregator reads its tags from the stream.
//! One task per tag holds the tag's pinned consumer while this aggregator is its holder; its
//! batches go to the writer like a RELP connection's, and are committed to the stream's marks
//! (then acknowledged) only once the writer has committed them.
//!
//! A holder deposed between its writer's commit and its marks' compare-and-set keeps that one
//! group while the new holder writes it too: the fence stops it there, and everything after.

use std::sync::Arc;
use std::time::Duration;

use estuary_config::aggregator::NatsInput;
use estuary_nats::{site, Connect, Delivery, Error as NatsError, Layout, TagReader};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::ingest::{self, Batch, Parsed};
use crate::peers::Admission;
use crate::workers::Job;

/// Batches taken from the stream per writer job.
const MAX_BATCHES: usize = 64;
const IDLE_WAIT: Duration = Duration::from_secs(1);
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// Starts one reader task per tag of `input`.
pub fn spawn(input: &NatsInput, jobs: mpsc::Sender<Job>, tasks: &mut JoinSet<()>) {
    for tag in &input.tags {
        let (input, tag, jobs) = (input.clone(), tag.clone(), jobs.clone());
        tasks.spawn(async move { read_tag(input, tag, jobs).await });
    }
}

async fn read_tag(input: NatsInput, tag: String, jobs: mpsc::Sender<Job>) {
    loop {
        match open(&input, &tag).await {
            Ok(reader) => match forward(reader, &jobs).await {
                Ok(()) => return,
                Err(err) => tracing::warn!(%tag, %err, "NATS input; starting over"),
            },
            Err(err) => tracing::warn!(%tag, %err, "NATS input cannot start; retrying"),
        }
        tokio::time::sleep(RETRY_AFTER).await;
    }
}

async fn open(input: &NatsInput, tag: &str) -> Result<TagReader, NatsError> {
    let js = Connect::from(input).jetstream().await?;
    estuary_nats::setup::init(&js, &Layout::from(input)).await?;
    TagReader::open(&js, site::reader_options(input, tag)).await
}

/// Returns `Ok` when the writer is gone (shutdown).
async fn forward(mut reader: TagReader, jobs: &mpsc::Sender<Job>) -> Result<(), NatsError> {
    let peer: Arc<str> = Arc::from(format!("nats:{}", reader.tag()));
    loop {
        let Some(delivery) = reader.next(MAX_BATCHES, IDLE_WAIT).await? else {
            continue;
        };
        if !reader.is_fresh(&delivery) {
            continue;
        }
        let (ack, committed) = oneshot::channel();
        let batch = Batch {
            peer: peer.clone(),
            msgs: messages(&delivery),
            ack: Some(ack),
        };
        if jobs.send(Job::Batch(batch)).await.is_err() || committed.await.is_err() {
            return Ok(());
        }
        match reader.commit(delivery).await {
            Ok(()) => {}
            Err(NatsError::Deposed(tag)) => {
                tracing::warn!(%tag, "deposed after a commit; another aggregator holds the tag")
            }
            Err(err) => return Err(err),
        }
    }
}

/// The batches' messages, parsed as a syslog connection's are (the shipper sent the same
/// RFC 5424 messages it sends over RELP). A message that is not syslog is kept whole, as on a
/// connection, so nothing the stream acknowledged is dropped.
fn messages(delivery: &Delivery) -> Vec<Parsed> {
    delivery
        .batches
        .iter()
        .flat_map(|(_, lines)| lines)
        .filter_map(|line| ingest::parse(line.text.clone(), &Admission::All).ok())
        .collect()
}
