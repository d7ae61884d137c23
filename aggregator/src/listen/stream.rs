//! Syslog over a byte stream (TCP or TLS): frames decoded with the mixed-framing decoder,
//! everything a read brought in goes to the writer as one batch.
//!
//! Plain syslog has no acknowledgement: a sender counts a line as delivered once it wrote it to
//! the socket. So a stopping daemon (SIGTERM, or the restart of a SIGHUP reload) does not drop a
//! connection with bytes in flight: it closes its side, which senders notice before their next
//! write, and reads on until the sender closes too or goes quiet for [`DRAIN_QUIET`].

use std::sync::Arc;
use std::time::Duration;

use estuary_wire::framing::SyslogDecoder;
use tokio::io::{AsyncRead, AsyncWrite};

use super::connection::{Connection, ConnectionError};
use super::Ctx;
use crate::events::{Arrivals, Refusal};
use crate::ingest::Batch;
use crate::peers::Admission;
use crate::workers::Job;

/// How long a draining connection may stay quiet before it is closed.
const DRAIN_QUIET: Duration = Duration::from_secs(1);

pub async fn serve_syslog<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    peer: Arc<str>,
    admission: Admission,
    ctx: &Ctx,
) {
    let mut conn = Connection::new(stream, SyslogDecoder::new(ctx.max_len), ctx.timeouts);
    let mut draining = false;
    loop {
        let mut arrivals = Arrivals::default();
        let mut msgs = Vec::new();
        // Reading is cancel-safe: a read cut short by the stop has taken nothing.
        let next = tokio::select! {
            biased;
            () = ctx.stop.cancelled(), if !draining => {
                draining = true;
                conn.drain(DRAIN_QUIET).await;
                continue;
            }
            next = conn.read_frame() => next,
        };
        let mut next = match next {
            Ok(None) => return,
            Err(ConnectionError::Idle(_) | ConnectionError::NoFirstFrame(_)) if draining => return,
            next => next,
        };
        let mut end = false;
        loop {
            match next {
                Ok(Some(Ok(frame))) => {
                    arrivals.add(frame.len());
                    msgs.extend(ctx.parse(&peer, frame, &admission, "dropped"));
                }
                Ok(Some(Err(skipped))) => {
                    arrivals.add(0);
                    ctx.events.refused(&peer, Refusal::Oversized, &skipped);
                }
                Ok(None) => break,
                Err(err @ ConnectionError::NoFirstFrame(_)) => {
                    ctx.events.refused(&peer, Refusal::FirstFrameTimeout, &err);
                    end = true;
                }
                Err(err @ (ConnectionError::Idle(_) | ConnectionError::Read(_))) => {
                    let kind = match err {
                        ConnectionError::Idle(_) => "idle",
                        _ => "read",
                    };
                    ctx.events.connection_ended(&peer, kind, &err);
                    // What was buffered before is still delivered.
                    end = true;
                }
                Err(err @ (ConnectionError::MidFrame(_) | ConnectionError::Decode(_))) => {
                    let detail = format_args!("{err}; closing");
                    ctx.events.refused(&peer, Refusal::Framing, &detail);
                    end = true;
                    break;
                }
            }
            next = conn.buffered_frame();
        }
        ctx.events.received(&peer, arrivals);
        if !msgs.is_empty() {
            let batch = Batch {
                peer: peer.clone(),
                msgs,
                ack: None,
                prepare: None,
            };
            if ctx.jobs.send(Job::Batch(batch)).await.is_err() {
                return;
            }
        }
        if end {
            return;
        }
    }
}
