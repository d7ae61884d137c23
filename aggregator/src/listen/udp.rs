//! Syslog over UDP (RFC 5426): one message per datagram.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::net::UdpSocket;

use super::Ctx;
use crate::events::{Arrivals, Refusal};
use crate::ingest::Batch;
use crate::workers::Job;

pub async fn serve_udp(socket: UdpSocket, ctx: Arc<Ctx>) {
    let mut buf = BytesMut::new();
    loop {
        buf.resize(ctx.max_len.max(2048) + 1, 0);
        let (n, addr) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(err) => {
                ctx.events.accept_failed("UDP", &err);
                continue;
            }
        };
        let peer: Arc<str> = addr.ip().to_canonical().to_string().into();
        let mut arrivals = Arrivals::default();
        let Some(admission) = ctx.policy.admit(addr.ip(), &[]) else {
            arrivals.add(0);
            ctx.events.received(&peer, arrivals);
            ctx.events
                .refused(&peer, Refusal::PeerNotAllowed, &"peer not allowed");
            continue;
        };
        if n > ctx.max_len {
            arrivals.add(0);
            ctx.events.received(&peer, arrivals);
            let detail = format_args!("datagram longer than {} bytes dropped", ctx.max_len);
            ctx.events.refused(&peer, Refusal::Oversized, &detail);
            continue;
        }
        let mut end = n;
        while end > 0 && matches!(buf[end - 1], b'\n' | b'\r' | b'\0') {
            end -= 1;
        }
        let frame: Bytes = buf.split_to(n).freeze().slice(..end);
        arrivals.add(frame.len());
        ctx.events.received(&peer, arrivals);
        if let Some(mut p) = ctx.parse(&peer, frame, &admission, "dropped") {
            // A datagram's source address can be forged: its origin (and the high-water mark
            // it would move) is not believed.
            p.origin = None;
            let batch = Batch {
                peer,
                msgs: vec![p],
                ack: None,
                prepare: None,
            };
            if ctx.jobs.send(Job::Batch(batch)).await.is_err() {
                return;
            }
        }
    }
}
