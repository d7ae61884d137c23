//! Syslog over a byte stream (TCP or TLS): frames decoded with the mixed-framing decoder,
//! everything a read brought in goes to the writer as one batch.

use std::sync::Arc;

use estuary_wire::framing::SyslogDecoder;
use tokio::io::AsyncRead;

use super::connection::{Connection, ConnectionError};
use super::Ctx;
use crate::ingest::{self, Batch, Rejected};
use crate::peers::Admission;
use crate::stats::Counters;
use crate::workers::Job;

pub async fn serve_syslog<S: AsyncRead + Unpin>(
    stream: S,
    peer: Arc<str>,
    admission: Admission,
    ctx: &Ctx,
) {
    let mut conn = Connection::new(stream, SyslogDecoder::new(ctx.max_len), ctx.idle_timeout);
    loop {
        let mut counters = Counters::default();
        let mut msgs = Vec::new();
        let mut next = match conn.read_frame().await {
            Ok(None) => return,
            next => next,
        };
        let mut end = false;
        loop {
            match next {
                Ok(Some(Ok(frame))) => match ingest::parse(frame, &admission, &mut counters) {
                    Ok(p) => msgs.push(p),
                    Err(Rejected::Malformed) => ctx.complain(
                        &peer,
                        "malformed",
                        &"message is not syslog (RFC 3164/5424); dropped",
                    ),
                    Err(Rejected::Refused) => ctx.complain(
                        &peer,
                        "refused-tag",
                        &"tag not allowed for this peer; dropped",
                    ),
                },
                Ok(Some(Err(skipped))) => {
                    counters.received += 1;
                    counters.malformed += 1;
                    ctx.complain(&peer, "oversized", &skipped);
                }
                Ok(None) => break,
                Err(err @ (ConnectionError::Idle(_) | ConnectionError::Read(_))) => {
                    let kind = match err {
                        ConnectionError::Idle(_) => "idle",
                        _ => "read",
                    };
                    ctx.complain(&peer, kind, &err);
                    // What was buffered before is still delivered.
                    end = true;
                }
                Err(err @ (ConnectionError::MidFrame(_) | ConnectionError::Decode(_))) => {
                    counters.malformed += 1;
                    ctx.complain(&peer, "framing", &format_args!("{err}; closing"));
                    end = true;
                    break;
                }
            }
            next = conn.buffered_frame();
        }
        ctx.count(&peer, &counters);
        if !msgs.is_empty() {
            let batch = Batch {
                peer: peer.clone(),
                msgs,
                ack: None,
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
