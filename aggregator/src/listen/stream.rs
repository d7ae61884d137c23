//! Syslog over a byte stream (TCP or TLS): frames decoded with the mixed-framing decoder,
//! everything a read brought in goes to the writer as one batch.

use std::sync::Arc;

use bytes::BytesMut;
use estuary_wire::framing::SyslogDecoder;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::codec::Decoder;

use super::Ctx;
use crate::ingest::{self, Batch, Rejected};
use crate::peers::Admission;
use crate::stats::Counters;
use crate::workers::Job;

const READ_CHUNK: usize = 256 << 10;

pub async fn serve_syslog<S: AsyncRead + Unpin>(
    mut stream: S,
    peer: Arc<str>,
    admission: Admission,
    ctx: &Ctx,
) {
    let mut decoder = SyslogDecoder::new(ctx.max_len);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        let read = tokio::time::timeout(ctx.idle_timeout, stream.read_buf(&mut buf)).await;
        let eof = match read {
            Err(_) => {
                ctx.complain(&peer, "idle", &"connection idle too long; closed");
                true
            }
            Ok(Err(err)) => {
                ctx.complain(&peer, "read", &format_args!("read failed: {err}"));
                true
            }
            Ok(Ok(0)) => true,
            Ok(Ok(_)) => false,
        };
        let mut counters = Counters::default();
        let mut msgs = Vec::new();
        let mut fatal = None;
        loop {
            let item = if eof {
                decoder.decode_eof(&mut buf)
            } else {
                decoder.decode(&mut buf)
            };
            match item {
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
                Err(err) => {
                    fatal = Some(err);
                    break;
                }
            }
        }
        if let Some(err) = &fatal {
            counters.malformed += 1;
            ctx.complain(
                &peer,
                "framing",
                &format_args!("framing lost, closing: {err}"),
            );
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
        if eof || fatal.is_some() {
            return;
        }
    }
}
