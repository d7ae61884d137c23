//! `NatsIngest = 1`: the aggregator as an ingest node. Its listeners take UDP, TCP, TLS and
//! RELP as always, but what they receive goes to the stream instead of to a writer: a RELP
//! window is acknowledged only once the stream stored all of it on a quorum (the PubAck), plain
//! syslog is published as soon as it arrives. No log files are written here; `SpoolDir` gets
//! the status file, where a message counts as accepted once the stream stored it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use estuary_config::aggregator::{AggregatorConfig, NatsInput};
use estuary_nats::ingest::{Ingest, Received};
use estuary_nats::{Connect, Layout, Publisher};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::error::Error;
use crate::events::Events;
use crate::ingest::Batch;
use crate::listen::Ctx;
use crate::sockets::{self, Bound};
use crate::stats::StatusFile;
use crate::workers::{Job, QUEUE_DEPTH};

/// Listener batches published together (their lines share stream messages and PubAck waits).
const MAX_JOBS: usize = 64;
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// Runs the ingest node until `shutdown` completes. Windows not yet stored stay unanswered:
/// RELP senders send them again.
pub async fn serve(
    config: AggregatorConfig,
    input: NatsInput,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()>,
    bound_tx: Option<oneshot::Sender<Bound>>,
) -> Result<(), Error> {
    let listening = sockets::bind(&config).await?;
    std::fs::create_dir_all(&config.spool_dir).map_err(|source| Error::Open {
        log_dir: config.spool_dir.clone(),
        source,
    })?;
    let events = Arc::new(Events::new(clock.now()));
    let stop = CancellationToken::new();
    let (jobs_tx, jobs_rx) = mpsc::channel(QUEUE_DEPTH);
    let ctx = Arc::new(Ctx::new(&config, jobs_tx, events.clone(), stop.clone()));
    let mut tasks = JoinSet::new();
    tasks.spawn(publish(input, jobs_rx, events.clone()));
    let failed = events.clone();
    tasks.spawn(Arc::new(StatusFile::new(&config.spool_dir)).refresh(
        move || events.snapshot(clock.now()),
        move |err| failed.statistics_not_written("status file", err),
    ));
    let bound = sockets::listen(listening, &ctx, &mut tasks);
    tracing::info!(?bound, "ingest node listening; publishing to the stream");
    if let Some(tx) = bound_tx {
        let _ = tx.send(bound);
    }
    shutdown.await;
    tracing::info!("shutting down");
    stop.cancel();
    tasks.shutdown().await;
    Ok(())
}

async fn publish(input: NatsInput, mut jobs: mpsc::Receiver<Job>, events: Arc<Events>) {
    let mut ingest = loop {
        match connect(&input).await {
            Ok(ingest) => break ingest,
            Err(err) => tracing::warn!(%err, "ingest cannot reach the stream yet; retrying"),
        }
        tokio::time::sleep(RETRY_AFTER).await;
    };
    let mut batches = Vec::with_capacity(MAX_JOBS);
    while let Some(job) = jobs.recv().await {
        take(job, &mut batches);
        while batches.len() < MAX_JOBS {
            match jobs.try_recv() {
                Ok(job) => take(job, &mut batches),
                Err(_) => break,
            }
        }
        let msgs = batches
            .iter()
            .flat_map(|b| b.msgs.iter().map(|p| received(b, p)));
        match ingest.publish(msgs.collect::<Vec<_>>()).await {
            Ok(()) => {
                for batch in batches.drain(..) {
                    events.committed(&batch.peer, batch.msgs.len() as u64, 0);
                    if let Some(ack) = batch.ack {
                        let _ = ack.send(());
                    }
                }
            }
            Err(err) => {
                // Only a message the servers refuse outright (larger than they accept): the
                // RELP senders get no answer and close, the lines stay theirs.
                tracing::error!(%err, "batches not stored; not acknowledged");
                batches.clear();
            }
        }
    }
}

async fn connect(input: &NatsInput) -> Result<Ingest, estuary_nats::Error> {
    let js = Connect::from(input).jetstream().await?;
    estuary_nats::setup::init(&js, &Layout::from(input)).await?;
    Ok(Ingest::new(Publisher::new(js, input.stream.clone())))
}

fn take(job: Job, batches: &mut Vec<Batch>) {
    match job {
        Job::Batch(batch) => batches.push(batch),
        // Nothing is written here, so nothing rotates and no stream is read.
        Job::Rotate(_) | Job::Settle(_) => {}
    }
}

fn received(batch: &Batch, p: &crate::ingest::Parsed) -> Received {
    let host = p
        .host
        .as_ref()
        .map_or(batch.peer.as_bytes(), |h| p.slice(h));
    Received {
        host: String::from_utf8_lossy(host).into_owned(),
        tag: String::from_utf8_lossy(p.slice(&p.tag)).into_owned(),
        text: p.raw.clone(),
    }
}
