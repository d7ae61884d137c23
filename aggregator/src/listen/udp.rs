//! Syslog over UDP (RFC 5426): one message per datagram.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::net::UdpSocket;

use super::Ctx;
use crate::ingest::{self, Batch, Rejected};
use crate::stats::Counters;
use crate::workers::Job;

pub async fn serve_udp(socket: UdpSocket, ctx: Arc<Ctx>) {
    let mut buf = BytesMut::new();
    loop {
        buf.resize(ctx.max_len.max(2048) + 1, 0);
        let (n, addr) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(err) => {
                tracing::warn!(%err, "UDP receive failed");
                continue;
            }
        };
        let peer: Arc<str> = addr.ip().to_canonical().to_string().into();
        let mut counters = Counters::default();
        let Some(admission) = ctx.policy.admit(addr.ip(), &[]) else {
            counters.received += 1;
            counters.refused += 1;
            ctx.count(&peer, &counters);
            ctx.complain(&peer, "refused", &"peer not allowed");
            continue;
        };
        if n > ctx.max_len {
            counters.received += 1;
            counters.malformed += 1;
            ctx.count(&peer, &counters);
            ctx.complain(
                &peer,
                "oversized",
                &format_args!("datagram longer than {} bytes dropped", ctx.max_len),
            );
            continue;
        }
        let mut end = n;
        while end > 0 && matches!(buf[end - 1], b'\n' | b'\r' | b'\0') {
            end -= 1;
        }
        let frame: Bytes = buf.split_to(n).freeze().slice(..end);
        match ingest::parse(frame, &admission, &mut counters) {
            Ok(p) => {
                ctx.count(&peer, &counters);
                let batch = Batch {
                    peer,
                    msgs: vec![p],
                    ack: None,
                };
                if ctx.jobs.send(Job::Batch(batch)).await.is_err() {
                    return;
                }
            }
            Err(Rejected::Malformed) => {
                ctx.count(&peer, &counters);
                ctx.complain(&peer, "malformed", &"datagram is not syslog; dropped");
            }
            Err(Rejected::Refused) => {
                ctx.count(&peer, &counters);
                ctx.complain(
                    &peer,
                    "refused-tag",
                    &"tag not allowed for this peer; dropped",
                );
            }
        }
    }
}
