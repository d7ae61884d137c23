//! One destination's sender: takes batches from its reader, delivers them over the configured
//! transport, reconnects with backoff, and commits offsets once the destination has taken the
//! lines (UDP: sent; TCP: written to the socket; RELP: acknowledged). What is taken but not yet
//! saved is bounded (see [`crate::checkpoint`]): RELP keeps it within the window, TCP and UDP
//! within a batch's size before each batch.

mod nats;
mod relp;
mod stream;
mod tcp;
mod udp;

use std::sync::Arc;
use std::time::Duration;

use estuary_config::shipper::{DestinationConfig, Transport};
use tokio::sync::{mpsc, watch};

use crate::batch::{Batch, Entry, BATCH_BYTES};
use crate::checkpoint::{Checkpoints, Mark, Unsaved};
use crate::events::{DestEvents, Events, Link};
use crate::registry::Registry;
use stream::BoxStream;

pub use estuary_wire::tls::TlsError;
pub use stream::tls_config;

pub struct Sender {
    pub dest: usize,
    pub config: DestinationConfig,
    pub registry: Arc<Registry>,
    pub events: Arc<Events>,
    pub rx: mpsc::Receiver<Batch>,
    /// Becomes true on SIGTERM: stop retrying; deliver only what a live connection can take.
    pub shutdown: watch::Receiver<bool>,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub checkpoints: Arc<Checkpoints>,
    pub saved: watch::Receiver<Mark>,
}

impl Sender {
    pub async fn run(self) {
        match self.config.transport.clone() {
            Transport::Udp => udp::run(self).await,
            Transport::Tcp { framing: _, tls: _ } => tcp::run(self).await,
            Transport::Relp { window, .. } => relp::run(self, window).await,
            Transport::Nats(nats) => nats::run(self, nats).await,
        }
    }

    fn events(&self) -> &DestEvents {
        self.events.dest(self.dest)
    }

    fn name(&self) -> &str {
        &self.config.name
    }

    /// Records that the destination has taken these entries; returns a mark that a save holding
    /// them reaches.
    fn commit(&self, entries: &[Entry]) -> Mark {
        let mut last: Option<&Entry> = None;
        for entry in entries {
            if let Some(prev) = last.filter(|p| p.file != entry.file) {
                self.registry.commit(self.dest, prev.file, prev.end);
            }
            last = Some(entry);
        }
        if let Some(last) = last {
            self.registry.commit(self.dest, last.file, last.end);
        }
        self.checkpoints.mark()
    }

    /// Waits until at most `limit` of `unsaved` is not saved yet.
    async fn wait_saved(&mut self, unsaved: &mut Unsaved, limit: usize) {
        unsaved.release(*self.saved.borrow_and_update());
        if unsaved.len() <= limit {
            return;
        }
        self.checkpoints.request();
        while self.saved.changed().await.is_ok() {
            unsaved.release(*self.saved.borrow_and_update());
            if unsaved.len() <= limit {
                return;
            }
        }
    }

    /// Records bytes sent without acknowledgement (TCP, UDP) and asks for a save once half a
    /// batch is unsaved; the next batch waits while more than a batch is.
    fn sent(&self, unsaved: &mut Unsaved, mark: Mark, bytes: usize) {
        unsaved.push(mark, bytes);
        if unsaved.len() >= BATCH_BYTES / 2 {
            self.checkpoints.request();
        }
    }

    /// Connects, waiting with backoff after each failure; `None` once shutdown begins.
    async fn connect(&mut self, link: Link, backoff: &mut Backoff) -> Option<BoxStream> {
        loop {
            let tls_client = match &self.config.transport {
                Transport::Tcp { tls, .. } | Transport::Relp { tls, .. } => tls.as_ref(),
                Transport::Udp | Transport::Nats(_) => None,
            };
            let tls = self.tls.as_ref().zip(tls_client);
            match stream::connect(&self.config.host, self.config.port, tls).await {
                Ok(stream) => return Some(stream),
                Err(err) => {
                    self.events().connect_failed(link, &err);
                    if self.pause(backoff.next_delay()).await {
                        return None;
                    }
                }
            }
        }
    }

    /// Waits `delay`, or less if shutdown begins; returns whether shutdown began.
    async fn pause(&mut self, delay: Duration) -> bool {
        if *self.shutdown.borrow() {
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => *self.shutdown.borrow(),
            _ = self.shutdown.changed() => true,
        }
    }
}

/// Reconnect delays: `initial`, doubling up to `max`.
#[derive(Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
            next: initial,
        }
    }

    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_max() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let delays: Vec<_> = (0..4).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 350, 350]);
        b.reset();
        assert_eq!(b.next_delay().as_millis(), 100);
    }
}
