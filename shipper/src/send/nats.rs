//! NATS JetStream: each run of one file's lines in a batch becomes one stream message (the
//! lines' RFC 5424 messages as RELP would carry them, newline-framed, compressed), subject
//! `estuary.<tag>.<host>`. A batch counts as taken once the stream stored every message of it
//! on a quorum; until then the file is the buffer, through an outage of the whole cluster. A
//! message sent again keeps its id, so the servers drop what they already have.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use estuary_config::shipper::NatsDestination;
use estuary_nats::{pack, Connect, Error as NatsError, Numbering, Origin, Packed, Publisher};
use futures_util::stream::{FuturesOrdered, StreamExt};

use super::{Backoff, Sender};
use crate::batch::{Batch, Entry, BATCH_BYTES};
use crate::events::Link;
use crate::state::FileId;

/// Batches published at once; the reader prepares this many ahead.
const IN_FLIGHT: usize = 4;

pub async fn run(mut sender: Sender, nats: NatsDestination) {
    let mut backoff = Backoff::new(sender.config.retry_interval, sender.config.retry_max);
    let connect = Connect {
        servers: nats.servers.clone(),
        credentials: nats.credentials.clone(),
        ca_file: nats.tls.as_ref().map(|t| t.ca_file.clone()),
        client_cert: nats
            .tls
            .as_ref()
            .and_then(|t| t.client_auth.as_ref())
            .map(|a| (a.cert_file.clone(), a.key_file.clone())),
        name: format!("estuary shipper {}", sender.name()),
    };
    let publisher = loop {
        match connect.jetstream().await {
            Ok(js) => break Publisher::new(js, nats.stream.clone()),
            Err(err) => {
                sender.events().connect_failed(Link::Tcp, &err);
                if sender.pause(backoff.next_delay()).await {
                    return;
                }
            }
        }
    };
    sender.events().connected(Link::Tcp);
    let publisher = Arc::new(publisher);
    // Where each file's last published run ended: the next run continues from there.
    let mut ends: HashMap<FileId, u64> = HashMap::new();
    // Two stages, each in the order the batches were read: compression on blocking threads,
    // then sending (so a file's batches reach the stream in order) with the stream's answers
    // awaited; taken in this order, so the state file still only advances over lines the
    // stream has.
    let mut packing = FuturesOrdered::new();
    let mut in_flight = FuturesOrdered::new();
    // Small batches read while others are on their way, published together once those are
    // stored (or once they hold two batches' bytes): at a trickle of lines one stream message
    // per round trip instead of one per read, which the servers pay for per message.
    let mut gathered: Vec<Batch> = Vec::new();
    let mut open = true;
    let mut shutdown = sender.shutdown.clone();
    while open || !gathered.is_empty() || !packing.is_empty() || !in_flight.is_empty() {
        let ready: Option<(Vec<Batch>, Packed)> = tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => return,
            Some((group, stored)) = in_flight.next(), if !in_flight.is_empty() => {
                if let Err(err) = stored {
                    refused(&sender, &err);
                    return;
                }
                for batch in &group {
                    taken(&sender, batch);
                }
                None
            }
            Some(packed) = packing.next(), if !packing.is_empty() => {
                let (group, packed): (Vec<Batch>, Result<Packed, NatsError>) = match packed {
                    Ok(done) => done,
                    Err(err) => {
                        tracing::error!(dest = %sender.name(), %err, "compression task failed; stopping");
                        return;
                    }
                };
                match packed {
                    Ok(p) => Some((group, p)),
                    Err(err) => {
                        refused(&sender, &err);
                        return;
                    }
                }
            }
            next = sender.rx.recv(), if open && packing.len() + in_flight.len() < IN_FLIGHT => {
                match next {
                    Some(batch) => gathered.push(batch),
                    None => open = false,
                }
                None
            }
        };
        if let Some((group, packed)) = ready {
            let sent = publisher.send_all(packed).await;
            let publisher = publisher.clone();
            in_flight.push_back(async move {
                let stored = publisher.stored(sent).await;
                (group, stored)
            });
        }
        let idle = packing.is_empty() && in_flight.is_empty();
        let gathered_bytes: usize = gathered.iter().map(|b| b.buf.len()).sum();
        if !gathered.is_empty() && (idle || !open || gathered_bytes >= 2 * BATCH_BYTES) {
            let group = std::mem::take(&mut gathered);
            let messages = runs(&sender, &group, &mut ends);
            packing.push_back(tokio::task::spawn_blocking(move || (group, pack(messages))));
        }
    }
}

/// Only a message larger than the servers take, or one that cannot be compressed; a message
/// (at most three batches, 768 KiB, before compression) is below the servers' default 1 MiB.
fn refused(sender: &Sender, err: &NatsError) {
    tracing::error!(dest = %sender.name(), %err, "the stream refuses this batch; stopping");
}

fn taken(sender: &Sender, batch: &Batch) {
    let lines = batch.messages();
    sender.events().sent(lines, batch.buf.len() as u64);
    sender.events().taken(lines);
    sender.commit(&batch.entries);
    sender.checkpoints.request();
}

/// Splits batches read one after the other into one message per run of consecutive lines of
/// one file.
fn runs(sender: &Sender, group: &[Batch], ends: &mut HashMap<FileId, u64>) -> Vec<(Origin, Bytes)> {
    let entries: Vec<(&Batch, &Entry)> = group
        .iter()
        .flat_map(|b| b.entries.iter().map(move |e| (b, e)))
        .collect();
    let mut out = Vec::new();
    for run in entries.chunk_by(|(_, a), (_, b)| a.file == b.file) {
        let file = run[0].1.file;
        let end = run[run.len() - 1].1.end;
        let msgs: Vec<&[u8]> = run
            .iter()
            .filter_map(|(b, e)| e.msg.clone().and_then(|r| b.buf.get(r)))
            .collect();
        let from = match ends.get(&file) {
            Some(from) => *from,
            None => start_of(sender, file),
        };
        ends.insert(file, end);
        let Some(first) = msgs.first() else {
            // Only empty lines: nothing to send; the next run continues after them.
            continue;
        };
        let (Some(offset), Ok(parsed)) = (origin_offset(first), estuary_wire::parse(first)) else {
            continue;
        };
        let origin = Origin {
            host: parsed.hostname.unwrap_or_default().to_owned(),
            tag: parsed.app_name.unwrap_or_default().to_owned(),
            file: file.0,
            offset,
            from,
            end,
            numbering: Numbering::Element,
        };
        out.push((origin, Bytes::from(msgs.concat())));
    }
    out
}

/// Where this destination started reading `file` (its saved offset).
fn start_of(sender: &Sender, file: FileId) -> u64 {
    sender
        .registry
        .snapshot(sender.dest, u64::MAX)
        .and_then(|(_, views)| views.into_iter().find(|v| v.id == file))
        .map_or(0, |v| v.start)
}

fn origin_offset(msg: &[u8]) -> Option<u64> {
    let at = memchr::memmem::find(msg, b"[origin@32473 ")?;
    estuary_wire::Origin::parse_encoded(&msg[at..]).map(|(o, _)| o.offset)
}
