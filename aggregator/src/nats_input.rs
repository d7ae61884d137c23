//! The `nats` input: with `NatsServers` set, the aggregator reads its tags from the stream.
//! One task per tag holds the tag's pinned consumer while this aggregator is its holder; its
//! batches go to the writer like a RELP connection's, and are committed to the stream's marks
//! (then acknowledged) only once the writer has committed them.
//!
//! Zeek logs start with a header block that a shipper sends once per file; the holder keeps
//! each host's last block in the marks bucket, and a new holder writes it first, so a log
//! continued after a failover has its header.
//!
//! A batch's group is prepared in the writer until the reader knows whether its
//! compare-and-set landed: kept if it did, cut away if not (deposed, or killed in between and
//! told at the next start), so a group another holder writes after a failover is in one
//! archive only.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use estuary_config::aggregator::NatsInput;
use estuary_nats::{site, tick, Connect, Delivery, Error as NatsError, Layout, TagReader};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::clock::unix_secs;
use crate::holdings::Holdings;
use crate::ingest::{self, Batch, Parsed};
use crate::peers::Admission;
use crate::workers::{Job, Settle};
use crate::writer::Prepare;

/// Batches taken from the stream per writer job.
const MAX_BATCHES: usize = 64;
const IDLE_WAIT: Duration = Duration::from_secs(1);
const RETRY_AFTER: Duration = Duration::from_secs(2);
/// How often the stream's and the consumers' state is asked for `estuary status`.
const ASK_EVERY: Duration = Duration::from_secs(3);

/// Starts one reader task per tag of `input`, and one that keeps the cluster's state for the
/// status.
pub fn spawn(
    input: &NatsInput,
    jobs: mpsc::Sender<Job>,
    holdings: &Arc<Holdings>,
    unsettled: &Arc<Mutex<Option<Prepare>>>,
    tasks: &mut JoinSet<()>,
) {
    for tag in &input.tags {
        let (input, tag, jobs) = (input.clone(), tag.clone(), jobs.clone());
        let (holdings, unsettled) = (holdings.clone(), unsettled.clone());
        tasks.spawn(async move { read_tag(input, tag, jobs, holdings, unsettled).await });
    }
    let (input, holdings) = (input.clone(), holdings.clone());
    tasks.spawn(async move { watch_cluster(input, holdings).await });
}

/// Keeps the cluster's state for the status, and ticks the notice tag while nobody holds it
/// (see [`estuary_nats::tick`]), so that some aggregator sends the mail.
async fn watch_cluster(input: NatsInput, holdings: Arc<Holdings>) {
    let js = loop {
        match Connect::from(&input).jetstream().await {
            Ok(js) => break js,
            Err(err) => tracing::debug!(%err, "NATS status cannot connect; retrying"),
        }
        tokio::time::sleep(RETRY_AFTER).await;
    };
    loop {
        let now = unix_secs(SystemTime::now());
        match estuary_nats::state::query(&js, &input.stream, &input.tags).await {
            Ok(state) => {
                let unheld = holdings.notice_tag().filter(|tag| {
                    state
                        .tags
                        .get(*tag)
                        .is_some_and(|t| !t.pinned && t.pending == 0 && t.ack_pending == 0)
                });
                if let Some(tag) = unheld {
                    let slot = now / ASK_EVERY.as_secs();
                    let ticked = tick::publish(&js, &input.stream, tag, &input.name, slot).await;
                    if let Err(err) = ticked {
                        tracing::debug!(%err, "NATS tick");
                    }
                }
                holdings.cluster_answered(state, now);
            }
            Err(err) => tracing::debug!(%err, "NATS status"),
        }
        tokio::time::sleep(ASK_EVERY).await;
    }
}

async fn read_tag(
    input: NatsInput,
    tag: String,
    jobs: mpsc::Sender<Job>,
    holdings: Arc<Holdings>,
    unsettled: Arc<Mutex<Option<Prepare>>>,
) {
    loop {
        let prepared = unsettled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .filter(|p| p.tag == tag);
        match open(&input, &tag).await {
            Ok(reader) => match forward(reader, prepared, &jobs, &holdings).await {
                Ok(()) => return,
                Err(err) => tracing::warn!(%tag, %err, "NATS input; starting over"),
            },
            Err(err) => tracing::warn!(%tag, %err, "NATS input cannot start; retrying"),
        }
        holdings.report(&tag, false);
        tokio::time::sleep(RETRY_AFTER).await;
    }
}

async fn open(input: &NatsInput, tag: &str) -> Result<TagReader, NatsError> {
    let js = Connect::from(input).jetstream().await?;
    estuary_nats::setup::init(&js, &Layout::from(input)).await?;
    TagReader::open(&js, site::reader_options(input, tag)).await
}

/// Returns `Ok` when the writer is gone (shutdown). `prepared`: the writer's group of this tag
/// that an earlier reader (or run) left without knowing whether its commit landed.
async fn forward(
    mut reader: TagReader,
    prepared: Option<Prepare>,
    jobs: &mpsc::Sender<Job>,
    holdings: &Holdings,
) -> Result<(), NatsError> {
    if let Some(prepare) = prepared {
        let landed = reader.settle(&prepare.holder, prepare.revision).await?;
        if jobs
            .send(Job::Settle(Settle { prepare, landed }))
            .await
            .is_err()
        {
            return Ok(());
        }
    }
    let peer: Arc<str> = Arc::from(format!("nats:{}", reader.tag()));
    let mut takes = reader.takes();
    // Header blocks for the writer ahead of the next delivery it writes.
    let mut kept = Vec::new();
    loop {
        let next = reader.next(MAX_BATCHES, IDLE_WAIT).await?;
        // Every turn (at most a sixth of the priority timeout apart) renews the report.
        holdings.report(reader.tag(), reader.holds());
        let Some(delivery) = next else {
            continue;
        };
        if reader.takes() != takes {
            // Newly claimed: the files of the tag get the headers their hosts sent to a former
            // holder (a header this writer has adopted already changes nothing). Asked before
            // the freshness check: the bucket may take seconds to answer during an election.
            takes = reader.takes();
            kept = kept_headers(&reader).await?;
        }
        if !reader.is_fresh(&delivery) {
            continue;
        }
        let (fresh, blocks) = messages(&delivery);
        let mut msgs = std::mem::take(&mut kept);
        msgs.extend(fresh);
        let (ack, committed) = oneshot::channel();
        let prepare = Prepare {
            tag: reader.tag().to_owned(),
            holder: reader.holder().to_owned(),
            revision: delivery.revision(),
        };
        let batch = Batch {
            peer: peer.clone(),
            msgs,
            ack: Some(ack),
            prepare: Some(prepare.clone()),
        };
        if jobs.send(Job::Batch(batch)).await.is_err() || committed.await.is_err() {
            return Ok(());
        }
        let result = reader.commit(delivery).await;
        let landed = match &result {
            Ok(()) => true,
            Err(_) => reader.settle(&prepare.holder, prepare.revision).await?,
        };
        if jobs
            .send(Job::Settle(Settle { prepare, landed }))
            .await
            .is_err()
        {
            return Ok(());
        }
        match result {
            // After the commit, which must not wait for it: a holder dying in between leaves
            // a successor without this block (its files get no header), never a line twice.
            Ok(()) => {
                for (host, block) in &blocks {
                    reader.keep_header(host, block).await?;
                }
            }
            Err(NatsError::Deposed(tag)) => {
                holdings.report(&tag, false);
                tracing::warn!(%tag, landed, "deposed after a commit; another aggregator holds the tag")
            }
            Err(err) => return Err(err),
        }
    }
}

/// The batches' messages, parsed as a syslog connection's are (the shipper sent the same
/// RFC 5424 messages it sends over RELP). A message that is not syslog is kept whole, as on a
/// connection, so nothing the stream acknowledged is dropped. Also the header blocks among
/// them (runs of `#` lines from `#separator` on), per host.
fn messages(delivery: &Delivery) -> (Vec<Parsed>, Vec<(String, Vec<Bytes>)>) {
    let mut msgs = Vec::with_capacity(delivery.lines());
    let mut blocks: Vec<(String, Vec<Bytes>)> = Vec::new();
    for (origin, lines) in &delivery.batches {
        let mut block: Option<Vec<Bytes>> = None;
        for line in lines {
            let Ok(mut p) = ingest::parse(line.text.clone(), &Admission::All) else {
                continue;
            };
            // The writer's own marks then cover the lines an ingest node numbered too: a holder
            // restarted between its writer's commit and the bucket's drops them when they come
            // again.
            p.origin = Some((origin.file, line.offset));
            let body = p.slice(&p.body);
            match (&mut block, body.first() == Some(&b'#')) {
                (_, true) if body.starts_with(b"#separator") => {
                    block = Some(vec![line.text.clone()]);
                }
                (Some(b), true) => b.push(line.text.clone()),
                (_, false) => {
                    if let Some(b) = block.take() {
                        blocks.push((origin.host.clone(), b));
                    }
                }
                (None, true) => {}
            }
            msgs.push(p);
        }
        if let Some(b) = block {
            blocks.push((origin.host.clone(), b));
        }
    }
    (msgs, blocks)
}

/// The header blocks kept for the tag, as messages for the writer.
async fn kept_headers(reader: &TagReader) -> Result<Vec<Parsed>, NatsError> {
    Ok(reader
        .headers()
        .await?
        .into_values()
        .flatten()
        .filter_map(|line| ingest::parse(Bytes::from(line), &Admission::All).ok())
        .collect())
}
