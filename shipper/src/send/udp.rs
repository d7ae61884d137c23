//! UDP (RFC 5426): one datagram per message; a line counts as taken once sent. A batch is sent
//! only while at most a batch's size is unsaved, so `kill -9` repeats at most about two batches.

use std::time::Duration;

use tokio::net::UdpSocket;

use super::{Backoff, Sender};
use crate::batch::BATCH_BYTES;
use crate::checkpoint::Unsaved;
use crate::events::Link;

/// The largest UDP payload; longer messages are cut (as rsyslog does).
const MAX_DATAGRAM: usize = 65_507;

pub async fn run(mut sender: Sender) {
    let mut backoff = Backoff::new(sender.config.retry_interval, sender.config.retry_max);
    let socket = loop {
        match bind(&sender.config.host, sender.config.port).await {
            Ok(socket) => break socket,
            Err(err) => {
                sender.events().connect_failed(Link::Udp, &err);
                let delay = backoff.next_delay();
                if sender.pause(delay).await {
                    return;
                }
            }
        }
    };
    sender.events().connected(Link::Udp);
    let mut unsaved = Unsaved::default();
    while let Some(batch) = sender.rx.recv().await {
        sender.wait_saved(&mut unsaved, BATCH_BYTES).await;
        let mut sent = 0;
        let mut bytes = 0;
        for entry in &batch.entries {
            let Some(range) = entry.msg.clone() else {
                continue;
            };
            let msg = &batch.buf[range];
            let msg = &msg[..msg.len().min(MAX_DATAGRAM)];
            match socket.send(msg).await {
                Ok(n) => {
                    sent += 1;
                    bytes += n as u64;
                }
                Err(err) => {
                    // Usually ICMP port unreachable from an earlier datagram; UDP cannot do better.
                    sender.events().send_failed(Link::Udp, &err);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
        sender.events().sent(sent, bytes);
        sender.events().taken(sent);
        let mark = sender.commit(&batch.entries);
        sender.sent(&mut unsaved, mark, bytes as usize);
    }
}

async fn bind(host: &str, port: u16) -> std::io::Result<UdpSocket> {
    let target = tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{host} has no address")))?;
    let local = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(target).await?;
    Ok(socket)
}
