//! The aggregator side: read one tag's batches while this process holds the tag's pin, drop
//! what is already committed, commit by compare-and-set of the tag's marks, acknowledge after.
//!
//! Order of a commit, for the caller: write the lines of a [`Delivery`] and make them durable,
//! then [`TagReader::commit`]; on [`Error::Deposed`] cut them away again. The compare-and-set
//! is the commit point: a line is in exactly one aggregator's output once its mark is in the
//! bucket, and the stream redelivers every batch not yet acknowledged.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::consumer::{pull, PullConsumer};
use async_nats::jetstream::kv::{self, CreateErrorKind, UpdateErrorKind};
use async_nats::jetstream::{self, AckKind};
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};

use crate::batch::{self, Line, Origin};
use crate::marks::Marks;
use crate::{names, payload, tick, Error};

/// How often a batch after a gap is delivered again before the gap is taken as final (lines
/// the shipper never sent, such as the start of a file it began reading in the middle, or
/// where a destination it replaced stopped). With [`gap_delay`] this is about 19 s: a shipper
/// resends a batch the servers lost within seconds of a leader election (4-6 s here), and a
/// gap taken as final drops that batch when it comes.
const GAP_PATIENCE: i64 = 20;
/// Grace periods a new holder waits at most for a former holder's commits to stop.
const GRACE_ROUNDS: usize = 4;
/// Batches fetched per pull request.
const PULL_BATCH: usize = 256;

/// How a reader runs; see [`crate::setup::Layout`] for the server side.
#[derive(Debug, Clone)]
pub struct ReaderOptions {
    pub stream: String,
    pub tag: String,
    /// This aggregator's name, written into the marks it commits.
    pub holder: String,
    /// The consumer's priority timeout: a reader stalled for half of it assumes another one
    /// holds the tag now, and commits nothing it received before.
    pub priority_timeout: Duration,
    /// The stream's max age: marks of files idle that long are forgotten.
    pub retention: Duration,
}

struct Claim {
    pin: String,
    revision: u64,
    marks: Marks,
}

/// One tag's pinned pull consumer and its fenced marks.
pub struct TagReader {
    opts: ReaderOptions,
    key: String,
    kv: kv::Store,
    consumer: PullConsumer,
    messages: pull::Stream,
    claim: Option<Claim>,
    /// Pins this reader lost; batches still arriving under them are left to their new holder.
    lost: Vec<String>,
    commits: u64,
    /// How many times this reader claimed the tag.
    takes: u64,
    /// When this reader last heard from the server.
    last_turn: Instant,
}

/// Lines of one or more batches, already stripped of what is committed.
pub struct Delivery {
    pub batches: Vec<(Origin, Vec<Line>)>,
    msgs: Vec<jetstream::Message>,
    marks: Marks,
    revision: u64,
    received: Instant,
}

impl Delivery {
    pub fn lines(&self) -> usize {
        self.batches.iter().map(|(_, l)| l.len()).sum()
    }

    /// The marks' revision this delivery's commit compares against: what
    /// [`TagReader::settle`] asks about.
    pub fn revision(&self) -> u64 {
        self.revision
    }
}

impl TagReader {
    pub async fn open(js: &jetstream::Context, opts: ReaderOptions) -> Result<Self, Error> {
        let kv = js
            .get_key_value(names::MARKS_BUCKET)
            .await
            .map_err(|e| Error::Setup(format!("KV bucket {}: {e}", names::MARKS_BUCKET)))?;
        let name = names::consumer(&opts.tag);
        let consumer: PullConsumer = js
            .get_stream(&opts.stream)
            .await
            .map_err(|e| Error::Setup(format!("stream {}: {e}", opts.stream)))?
            .get_consumer(&name)
            .await
            .map_err(|e| {
                Error::Setup(format!("consumer {name} (run `estuary cluster init`): {e}"))
            })?;
        let messages = pull(&consumer, opts.priority_timeout).await?;
        Ok(TagReader {
            key: names::marks_key(&opts.tag),
            opts,
            kv,
            consumer,
            messages,
            claim: None,
            lost: Vec::new(),
            commits: 0,
            takes: 0,
            last_turn: Instant::now(),
        })
    }

    pub fn tag(&self) -> &str {
        &self.opts.tag
    }

    pub fn holder(&self) -> &str {
        &self.opts.holder
    }

    /// True while this reader holds the tag's pin as far as it knows.
    pub fn holds(&self) -> bool {
        self.claim.is_some()
    }

    /// How many times this reader claimed the tag: a change means another aggregator may have
    /// held it in between.
    pub fn takes(&self) -> u64 {
        self.takes
    }

    /// Keeps the header block (`#` lines, whole syslog messages) a host last sent for the tag,
    /// so that a later holder, which never received it, can give its files the same header.
    /// Called after [`TagReader::commit`] of the delivery that held it.
    pub async fn keep_header(&self, host: &str, block: &[Bytes]) -> Result<(), Error> {
        let key = names::headers_key(&self.opts.tag);
        let mut blocks = self.headers().await?;
        let block: Vec<String> = block
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        if blocks.get(host) == Some(&block) {
            return Ok(());
        }
        blocks.insert(host.to_owned(), block);
        let value = serde_json::to_vec(&blocks).map_err(|e| Error::Marks(e.to_string()))?;
        self.kv
            .put(key, value.into())
            .await
            .map_err(|e| Error::Marks(e.to_string()))?;
        Ok(())
    }

    /// The header blocks kept for the tag, per host.
    pub async fn headers(&self) -> Result<BTreeMap<String, Vec<String>>, Error> {
        match self.kv.get(names::headers_key(&self.opts.tag)).await {
            Ok(Some(v)) => serde_json::from_slice(&v)
                .map_err(|e| Error::Malformed(format!("header blocks: {e}"))),
            Ok(None) => Ok(BTreeMap::new()),
            Err(e) => Err(Error::Marks(e.to_string())),
        }
    }

    /// Waits up to `wait` for batches and returns up to `max` of them, stripped of committed
    /// lines. `None` when nothing came (also while another aggregator holds the tag).
    pub async fn next(&mut self, max: usize, wait: Duration) -> Result<Option<Delivery>, Error> {
        // Short waits keep `last_turn` fresh, so a freeze shows as a long gap.
        let wait = wait.min(self.opts.priority_timeout / 6);
        if self.last_turn.elapsed() > self.stall_limit() {
            self.give_up("stalled past the priority timeout").await?;
        }
        let first = match tokio::time::timeout(wait, self.messages.next()).await {
            Err(_) => {
                self.last_turn = Instant::now();
                return Ok(None);
            }
            Ok(None) => return Err(Error::Consumer("pull stream ended".into())),
            Ok(Some(msg)) => msg,
        };
        if self.last_turn.elapsed() > self.stall_limit() {
            // Frozen while waiting: what arrived may be another holder's by now.
            self.give_up("stalled past the priority timeout").await?;
            return Ok(None);
        }
        let mut msgs = vec![first];
        while msgs.len() < max {
            match self.messages.next().now_or_never() {
                Some(Some(msg)) => msgs.push(msg),
                _ => break,
            }
        }
        self.last_turn = Instant::now();
        let mut delivery: Option<Delivery> = None;
        for msg in msgs {
            let msg = match msg {
                Ok(m) => m,
                Err(e) => {
                    tracing::debug!(tag = %self.opts.tag, error = %e, "pull");
                    continue;
                }
            };
            let Some(pin) = msg
                .headers
                .as_ref()
                .and_then(|h| h.get(async_nats::header::NATS_PIN_ID))
                .map(|p| p.as_str().to_owned())
            else {
                return Err(Error::ServerTooOld(names::consumer(&self.opts.tag)));
            };
            if self.lost.contains(&pin) {
                continue;
            }
            if self.claim.as_ref().is_none_or(|c| c.pin != pin) {
                if delivery.is_some() {
                    // A new pin mid-delivery: commit what came under the old one first.
                    continue;
                }
                self.take(pin).await?;
            }
            if tick::is_tick(msg.headers.as_ref()) {
                // It got this reader the pin, which is all a tick is for.
                if let Err(e) = msg.ack().await {
                    tracing::debug!(tag = %self.opts.tag, error = %e, "ack of a tick");
                }
                continue;
            }
            let claim = self.claim.as_ref().expect("claimed above");
            let d = delivery.get_or_insert_with(|| Delivery {
                batches: Vec::new(),
                msgs: Vec::new(),
                marks: claim.marks.clone(),
                revision: claim.revision,
                received: Instant::now(),
            });
            accept(
                &self.opts.tag,
                &mut d.batches,
                &mut d.marks,
                &mut d.msgs,
                msg,
            )
            .await;
        }
        Ok(delivery)
    }

    /// False once a delivery is older than half the priority timeout: its tag may have moved to
    /// another aggregator meanwhile, so it should not be written (it is delivered again).
    pub fn is_fresh(&self, d: &Delivery) -> bool {
        d.received.elapsed() <= self.stall_limit()
    }

    /// How long this reader may go without a turn before it assumes it lost the pin. The server
    /// counts the priority timeout from the last pull request, which the background puller
    /// may have sent up to a pull expiry (a third of it) before this reader's last turn; half
    /// the timeout notices every freeze the server may have noticed, and some it did not.
    fn stall_limit(&self) -> Duration {
        self.opts.priority_timeout / 2
    }

    /// Commits a delivery whose lines the caller made durable, then acknowledges its batches.
    /// [`Error::Deposed`]: another aggregator holds the tag; the caller must cut the lines away.
    pub async fn commit(&mut self, d: Delivery) -> Result<(), Error> {
        if !self.is_fresh(&d) {
            self.give_up("the delivery is older than the priority timeout")
                .await?;
            return Err(Error::Deposed(self.opts.tag.clone()));
        }
        let Some(claim) = self.claim.as_mut() else {
            return Err(Error::Deposed(self.opts.tag.clone()));
        };
        self.commits += 1;
        let mut marks = d.marks;
        marks.holder = self.opts.holder.clone();
        marks.commit = self.commits;
        marks.landed.insert(self.opts.holder.clone(), d.revision);
        marks.prune(unix_now().saturating_sub(self.opts.retention.as_secs()));
        let value = marks.encode();
        match cas(&self.kv, &self.key, &value, d.revision).await? {
            Some(revision) => {
                claim.revision = revision;
                claim.marks = marks;
                for msg in &d.msgs {
                    // A lost acknowledgement means a redelivery, which the marks drop.
                    if let Err(e) = msg.ack().await {
                        tracing::debug!(tag = %self.opts.tag, error = %e, "ack");
                    }
                }
                self.last_turn = Instant::now();
                Ok(())
            }
            None => {
                self.give_up("another aggregator committed to the tag")
                    .await?;
                Err(Error::Deposed(self.opts.tag.clone()))
            }
        }
    }

    /// Whether `holder`'s commit against `revision` landed, for a holder that wrote a delivery
    /// and then lost track of its commit (killed, deposed, an error). The value that follows
    /// `revision` is that commit's if it landed, and every later value carries its `landed`
    /// entry forward: so true when the key's value says it landed, false once the key moved
    /// past `revision` without it. While the key still stands at `revision` the commit may be
    /// on its way (a bucket electing a leader), so the key is moved on first, which fails it.
    pub async fn settle(&self, holder: &str, revision: u64) -> Result<bool, Error> {
        loop {
            let (marks, current) = match self.kv.entry(&self.key).await {
                Ok(Some(e)) if e.operation == kv::Operation::Put => {
                    (Marks::decode(&e.value)?, e.revision)
                }
                Ok(_) => return Ok(false),
                Err(e) => return Err(Error::Marks(e.to_string())),
            };
            if marks.landed(holder, revision) {
                return Ok(true);
            }
            if current > revision {
                return Ok(false);
            }
            let mut fence = marks;
            fence.commit += 1;
            if cas(&self.kv, &self.key, &fence.encode(), current)
                .await?
                .is_some()
            {
                return Ok(false);
            }
        }
    }

    /// Claims the tag under a new pin: bumps the marks' revision so that a former holder's next
    /// commit fails.
    async fn take(&mut self, pin: String) -> Result<(), Error> {
        // Revisions seen while letting a former holder finish (see below).
        let mut seen: Vec<u64> = Vec::new();
        loop {
            let (marks, revision) = match self.kv.entry(&self.key).await {
                Ok(Some(e)) if e.operation == kv::Operation::Put => {
                    (Marks::decode(&e.value)?, e.revision)
                }
                Ok(_) => match self
                    .kv
                    .create(&self.key, Marks::default().encode().into())
                    .await
                {
                    Ok(rev) => (Marks::default(), rev),
                    Err(e) if e.kind() == CreateErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(Error::Marks(e.to_string())),
                },
                Err(e) => return Err(Error::Marks(e.to_string())),
            };
            let settled = seen.last() == Some(&revision) || seen.len() > GRACE_ROUNDS;
            if !settled && !marks.holder.is_empty() && marks.holder != self.opts.holder {
                // The pin moves when a consumer's leader changes too, not only when its holder
                // died: let a live former holder finish the commits it may be in (it still can,
                // until the bump below; a leader election of the bucket can hold one for
                // seconds), so its lines are in the marks this reader starts from instead of
                // written twice. Done once the key stood still for a grace period.
                seen.push(revision);
                tokio::time::sleep(self.stall_limit()).await;
                continue;
            }
            self.commits += 1;
            let mut claimed = marks;
            claimed.holder = self.opts.holder.clone();
            claimed.commit = self.commits;
            if let Some(revision) = cas(&self.kv, &self.key, &claimed.encode(), revision).await? {
                tracing::info!(tag = %self.opts.tag, holder = %self.opts.holder, "took the tag");
                self.takes += 1;
                self.last_turn = Instant::now();
                self.claim = Some(Claim {
                    pin,
                    revision,
                    marks: claimed,
                });
                return Ok(());
            }
        }
    }

    /// Forgets the claim and every batch received under it; a fresh pull stream starts on
    /// standby.
    async fn give_up(&mut self, why: &str) -> Result<(), Error> {
        if let Some(claim) = self.claim.take() {
            tracing::warn!(tag = %self.opts.tag, why, "deposed: writing nothing more for the tag");
            self.lost.push(claim.pin);
            if self.lost.len() > 8 {
                self.lost.remove(0);
            }
        }
        self.messages = pull(&self.consumer, self.opts.priority_timeout).await?;
        self.last_turn = Instant::now();
        Ok(())
    }
}

async fn pull(consumer: &PullConsumer, priority_timeout: Duration) -> Result<pull::Stream, Error> {
    // The pin lapses when no pull is open for the priority timeout: expire pulls well before.
    let expires = (priority_timeout / 3).max(Duration::from_secs(1));
    consumer
        .stream()
        .group(names::GROUP)
        .max_messages_per_batch(PULL_BATCH)
        .expires(expires)
        .heartbeat(expires / 4)
        .messages()
        .await
        .map_err(|e| Error::Consumer(e.to_string()))
}

/// Adds one delivered batch to a delivery: its uncommitted lines, its marks, its message.
async fn accept(
    tag: &str,
    batches: &mut Vec<(Origin, Vec<Line>)>,
    marks: &mut Marks,
    msgs: &mut Vec<jetstream::Message>,
    msg: jetstream::Message,
) {
    let parsed = Origin::from_headers(msg.headers.as_ref()).and_then(|o| {
        let plain = payload::decompress(msg.headers.as_ref(), &msg.payload)?;
        batch::lines(&o, &plain).map(|l| (o, l))
    });
    let (origin, lines) = match parsed {
        Ok((o, _)) if names::tag_token(&o.tag) != names::tag_token(tag) => {
            terminate(
                &msg,
                tag,
                &format!("tag {} on the consumer of {tag}", o.tag),
            )
            .await;
            return;
        }
        Ok(ok) => ok,
        Err(e) => {
            terminate(&msg, tag, &e.to_string()).await;
            return;
        }
    };
    let end = marks.end(&origin.host, origin.file);
    if origin.from > end {
        let delivered = msg.info().map_or(0, |i| i.delivered);
        if delivered < GAP_PATIENCE {
            // An earlier batch of the file is still being redelivered: take this one after it.
            let _ = msg.ack_with(AckKind::Nak(Some(gap_delay(delivered)))).await;
            return;
        }
        tracing::warn!(tag, host = %origin.host, file = origin.file, from = end, to = origin.from,
            "lines of a file never arrived; going on after the gap");
    }
    marks.advance(&origin.host, origin.file, origin.end, unix_now());
    let fresh: Vec<Line> = lines.into_iter().filter(|l| l.offset >= end).collect();
    if !fresh.is_empty() {
        batches.push((origin, fresh));
    }
    msgs.push(msg);
}

/// The wait before the next delivery of a batch held back by a gap: short at first (the batch
/// before it is usually just behind), then a second.
fn gap_delay(delivered: i64) -> Duration {
    Duration::from_millis(500 * delivered.clamp(1, 2) as u64)
}

/// A batch no aggregator can use stays in the stream for inspection and is not delivered again.
async fn terminate(msg: &jetstream::Message, tag: &str, why: &str) {
    let seq = msg.info().map_or(0, |i| i.stream_sequence);
    tracing::error!(tag, seq, why, "malformed batch left in the stream");
    let _ = msg.ack_with(AckKind::Term).await;
}

/// Compare-and-set; `None` when another writer got there first. An answer lost on the way (a
/// leader election) is resolved by reading the key's history: our value is unique.
async fn cas(kv: &kv::Store, key: &str, value: &[u8], revision: u64) -> Result<Option<u64>, Error> {
    loop {
        match kv.update(key, value.to_vec().into(), revision).await {
            Ok(rev) => return Ok(Some(rev)),
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => {
                return written(kv, key, value, revision).await
            }
            Err(e) => {
                tracing::debug!(key, error = %e, "marks update unanswered; trying again");
                tokio::time::sleep(Duration::from_millis(200)).await;
                if let Ok(Some(rev)) = written(kv, key, value, revision).await {
                    return Ok(Some(rev));
                }
                match kv.entry(key).await {
                    Ok(Some(entry)) if entry.revision > revision => return Ok(None),
                    _ => {}
                }
            }
        }
    }
}

/// The revision at which `value` was written after `revision`, if it was.
async fn written(
    kv: &kv::Store,
    key: &str,
    value: &[u8],
    revision: u64,
) -> Result<Option<u64>, Error> {
    let mut history = kv
        .history(key)
        .await
        .map_err(|e| Error::Marks(e.to_string()))?;
    while let Some(Ok(entry)) = history.next().await {
        if entry.revision > revision && entry.value == value {
            return Ok(Some(entry.revision));
        }
    }
    Ok(None)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_is_waited_for_longer_than_a_leader_election_before_it_is_taken_as_final() {
        let patience: Duration = (1..GAP_PATIENCE).map(gap_delay).sum();
        assert!(patience > Duration::from_secs(15), "{patience:?}");
        assert_eq!(gap_delay(1), Duration::from_millis(500));
    }
}
