//! Plain TCP or TLS, RFC 6587 framing (written by the reader). A batch counts as taken once it is
//! written to the socket; a batch whose write failed is written again whole after reconnecting.
//! A batch is written only while at most a batch's size is unsaved, so `kill -9` repeats at most
//! about two batches.

use tokio::io::AsyncWriteExt;
use tracing::{info, warn};

use super::stream::{self, BoxStream};
use super::{Backoff, Sender};
use crate::batch::BATCH_BYTES;
use crate::checkpoint::Unsaved;
use crate::stats::DestStats;

pub async fn run(mut sender: Sender) {
    let mut backoff = Backoff::new(sender.config.retry_interval, sender.config.retry_max);
    let mut conn: Option<BoxStream> = None;
    let mut unsaved = Unsaved::default();
    while let Some(batch) = sender.rx.recv().await {
        sender.wait_saved(&mut unsaved, BATCH_BYTES).await;
        let mut attempt = 0u32;
        loop {
            if let Some(stream) = conn.as_mut() {
                if stream::peer_closed(stream) {
                    info!(dest = sender.name(), "connection closed by peer");
                    conn = None;
                    sender
                        .stats()
                        .connected
                        .store(false, std::sync::atomic::Ordering::Relaxed);
                }
            }
            let stream = match conn.as_mut() {
                Some(stream) => stream,
                None => {
                    let Some(stream) = sender.connect(&mut backoff).await else {
                        return;
                    };
                    info!(dest = sender.name(), "connected");
                    backoff.reset();
                    DestStats::add(&sender.stats().counters.connects, 1);
                    sender
                        .stats()
                        .connected
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                    conn.insert(stream)
                }
            };
            if attempt > 0 {
                DestStats::add(&sender.stats().counters.lines_retried, batch.messages());
            }
            attempt += 1;
            match stream.write_all(&batch.buf).await {
                Ok(()) => break,
                Err(err) => {
                    warn!(dest = sender.name(), %err, "write failed; reconnecting");
                    DestStats::add(&sender.stats().counters.send_errors, 1);
                    conn = None;
                    sender
                        .stats()
                        .connected
                        .store(false, std::sync::atomic::Ordering::Relaxed);
                    if *sender.shutdown.borrow() {
                        return;
                    }
                }
            }
        }
        let lines = batch.messages();
        let c = &sender.stats().counters;
        DestStats::add(&c.lines_sent, lines);
        DestStats::add(&c.lines_acked, lines);
        DestStats::add(&c.bytes_sent, batch.buf.len() as u64);
        let mark = sender.commit(&batch.entries);
        sender.sent(&mut unsaved, mark, batch.buf.len());
    }
    if let Some(mut stream) = conn {
        let _ = stream.flush().await;
        let _ = stream.shutdown().await;
    }
}
