//! Plain TCP or TLS, RFC 6587 framing (written by the reader). A batch counts as taken once it is
//! written to the socket; a batch whose write failed is written again whole after reconnecting.
//! A batch is written only while at most a batch's size is unsaved, so `kill -9` repeats at most
//! about two batches.

use tokio::io::AsyncWriteExt;

use super::stream::{self, BoxStream};
use super::{Backoff, Sender};
use crate::batch::BATCH_BYTES;
use crate::checkpoint::Unsaved;
use crate::events::Link;

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
                    conn = None;
                    sender.events().peer_closed();
                }
            }
            let stream = match conn.as_mut() {
                Some(stream) => stream,
                None => {
                    let Some(stream) = sender.connect(Link::Tcp, &mut backoff).await else {
                        return;
                    };
                    backoff.reset();
                    sender.events().connected(Link::Tcp);
                    conn.insert(stream)
                }
            };
            if attempt > 0 {
                sender.events().retried(batch.messages());
            }
            attempt += 1;
            match stream.write_all(&batch.buf).await {
                Ok(()) => break,
                Err(err) => {
                    sender.events().send_failed(Link::Tcp, &err);
                    conn = None;
                    sender.events().disconnected();
                    if *sender.shutdown.borrow() {
                        return;
                    }
                }
            }
        }
        let lines = batch.messages();
        sender.events().sent(lines, batch.buf.len() as u64);
        sender.events().taken(lines);
        let mark = sender.commit(&batch.entries);
        sender.sent(&mut unsaved, mark, batch.buf.len());
    }
    if let Some(mut stream) = conn {
        let _ = stream.flush().await;
        let _ = stream.shutdown().await;
    }
}
