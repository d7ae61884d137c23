//! RELP server sessions. A `syslog` frame is answered `rsp 200 OK` only after the writer
//! committed it (and synced it, with `Durability::Synced`): the reader hands each batch to the
//! writer with a completion signal and queues its transaction numbers; the responder waits for
//! each signal in order before writing the answers. Frames keep flowing meanwhile.

use std::sync::Arc;

use bytes::BytesMut;
use estuary_wire::relp::{Command, Frame, Offer, Offers, RelpCodec, Response, Txnr, RELP_VERSION};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{Decoder, Encoder};

use super::Ctx;
use crate::ingest::{self, Batch, Rejected};
use crate::peers::Admission;
use crate::stats::Counters;
use crate::workers::Job;

const READ_CHUNK: usize = 256 << 10;
/// Room for the RELP header around a syslog message.
const RELP_OVERHEAD: usize = 64;

enum Reply {
    /// Answer these transactions once `done` fires (no signal: nothing to wait for).
    Acks {
        txnrs: Vec<Txnr>,
        done: Option<oneshot::Receiver<()>>,
    },
    Frame(Frame),
    /// Answer `close` and end the session.
    Close(Txnr),
}

fn server_offers() -> Offers {
    Offers(vec![
        Offer {
            name: "relp_version".into(),
            values: vec![RELP_VERSION.into()],
        },
        Offer {
            name: "relp_software".into(),
            values: vec![format!("estuary,{}", env!("CARGO_PKG_VERSION"))],
        },
        Offer {
            name: "commands".into(),
            values: vec!["syslog".into()],
        },
    ])
}

pub async fn serve_relp<S>(stream: S, peer: Arc<str>, admission: Admission, ctx: Arc<Ctx>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, writer) = tokio::io::split(stream);
    let (tx, rx) = mpsc::channel::<Reply>(1024);
    let responder = tokio::spawn(respond(writer, rx));
    let mut codec = RelpCodec::new(ctx.max_len + RELP_OVERHEAD);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut opened = false;
    'session: loop {
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        match tokio::time::timeout(ctx.idle_timeout, reader.read_buf(&mut buf)).await {
            Err(_) => {
                ctx.complain(&peer, "idle", &"RELP session idle too long; closed");
                break;
            }
            Ok(Err(err)) => {
                ctx.complain(&peer, "read", &format_args!("read failed: {err}"));
                break;
            }
            Ok(Ok(0)) => break,
            Ok(Ok(_)) => {}
        }
        let mut counters = Counters::default();
        let mut msgs = Vec::new();
        let mut txnrs = Vec::new();
        let mut end = None;
        loop {
            let frame = match codec.decode(&mut buf) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(err) => {
                    counters.malformed += 1;
                    ctx.complain(
                        &peer,
                        "framing",
                        &format_args!("RELP framing lost, closing: {err}"),
                    );
                    end = Some(None);
                    break;
                }
            };
            match (&frame.command, opened) {
                (Command::Open, false) => {
                    opened = true;
                    let rsp = Response::open_ok(&server_offers()).to_frame(frame.txnr);
                    if tx.send(Reply::Frame(rsp)).await.is_err() {
                        break 'session;
                    }
                }
                (Command::Syslog, true) => {
                    match ingest::parse(frame.data, &admission, &mut counters) {
                        Ok(p) => msgs.push(p),
                        Err(Rejected::Malformed) => ctx.complain(
                            &peer,
                            "malformed",
                            &"RELP message is not syslog; acknowledged and dropped",
                        ),
                        Err(Rejected::Refused) => ctx.complain(
                            &peer,
                            "refused-tag",
                            &"tag not allowed for this peer; acknowledged and dropped",
                        ),
                    }
                    txnrs.push(frame.txnr);
                }
                (Command::Close, true) => {
                    end = Some(Some(frame.txnr));
                    break;
                }
                (command, _) => {
                    counters.malformed += 1;
                    ctx.complain(
                        &peer,
                        "relp",
                        &format_args!(
                            "unexpected RELP command {command} (opened: {opened}); closing"
                        ),
                    );
                    end = Some(None);
                    break;
                }
            }
        }
        ctx.count(&peer, &counters);
        if !txnrs.is_empty() {
            let done = if msgs.is_empty() {
                None
            } else {
                let (ack, done) = oneshot::channel();
                let batch = Batch {
                    peer: peer.clone(),
                    msgs,
                    ack: Some(ack),
                };
                if ctx.jobs.send(Job::Batch(batch)).await.is_err() {
                    break;
                }
                Some(done)
            };
            if tx.send(Reply::Acks { txnrs, done }).await.is_err() {
                break;
            }
        }
        match end {
            Some(Some(close)) => {
                let _ = tx.send(Reply::Close(close)).await;
                break;
            }
            Some(None) => break,
            None => {}
        }
    }
    drop(tx);
    let _ = responder.await;
}

async fn respond<W: AsyncWrite + Unpin>(mut writer: W, mut rx: mpsc::Receiver<Reply>) {
    let mut out = BytesMut::with_capacity(64 << 10);
    let mut codec = RelpCodec::default();
    let ok = Response::ok();
    while let Some(reply) = rx.recv().await {
        let mut next = Some(reply);
        while let Some(reply) = next.take() {
            match reply {
                Reply::Frame(frame) => {
                    if codec.encode(&frame, &mut out).is_err() {
                        return;
                    }
                }
                Reply::Acks { txnrs, done } => {
                    if let Some(done) = done {
                        if !out.is_empty() {
                            // Answers ready so far go out before waiting for the writer.
                            if writer.write_all(&out).await.is_err() {
                                return;
                            }
                            out.clear();
                        }
                        if done.await.is_err() {
                            // The writer is gone: nothing was committed, answer nothing.
                            return;
                        }
                    }
                    for txnr in txnrs {
                        if codec.encode(&ok.to_frame(txnr), &mut out).is_err() {
                            return;
                        }
                    }
                }
                Reply::Close(txnr) => {
                    let _ = codec.encode(&ok.to_frame(txnr), &mut out);
                    let _ = writer.write_all(&out).await;
                    let _ = writer.shutdown().await;
                    return;
                }
            }
            next = rx.try_recv().ok();
        }
        if !out.is_empty() {
            if writer.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
    }
    let _ = writer.flush().await;
}
