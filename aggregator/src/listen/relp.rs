//! RELP server sessions, driven by wire's sans-I/O [`ServerSession`] (open first and checked,
//! transaction numbers in strict sequence). A `syslog` frame is answered `rsp 200 OK` only after
//! the writer committed it (and synced it, with `Durability::Synced`): the reader hands each
//! batch to the writer with a completion signal and queues its transaction numbers; the
//! responder waits for each signal in order before writing the answers. Frames keep flowing
//! meanwhile.

use std::sync::Arc;

use bytes::BytesMut;
use estuary_wire::relp::{Action, Frame, RelpCodec, ServerSession, Txnr};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::Encoder;

use super::connection::{Connection, ConnectionError};
use super::Ctx;
use crate::ingest::{self, Batch, Parsed, Rejected};
use crate::peers::Admission;
use crate::stats::Counters;
use crate::workers::Job;

/// Room for the RELP header around a syslog message.
const RELP_OVERHEAD: usize = 64;

enum Reply {
    /// Answer these transactions once `done` fires (no signal: nothing to wait for).
    Acks {
        txnrs: Vec<Txnr>,
        done: Option<oneshot::Receiver<()>>,
    },
    Frame(Frame),
    /// Send this answer and end the session.
    Close(Frame),
}

/// What one read brought in: messages for the writer and the transactions to answer after.
#[derive(Default)]
struct Taken {
    msgs: Vec<Parsed>,
    txnrs: Vec<Txnr>,
}

impl Taken {
    /// Hands the messages to the writer and queues their answers; false when the session must
    /// end (the writer or the responder is gone).
    async fn hand_over(
        &mut self,
        peer: &Arc<str>,
        ctx: &Ctx,
        replies: &mpsc::Sender<Reply>,
    ) -> bool {
        let Taken { msgs, txnrs } = std::mem::take(self);
        if txnrs.is_empty() {
            return true;
        }
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
                return false;
            }
            Some(done)
        };
        replies.send(Reply::Acks { txnrs, done }).await.is_ok()
    }
}

pub async fn serve_relp<S>(stream: S, peer: Arc<str>, admission: Admission, ctx: Arc<Ctx>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reader, writer) = tokio::io::split(stream);
    let (tx, rx) = mpsc::channel::<Reply>(1024);
    let responder = tokio::spawn(respond(writer, rx));
    let codec = RelpCodec::new(ctx.max_len + RELP_OVERHEAD);
    let mut conn = Connection::new(reader, codec, ctx.idle_timeout);
    let mut session = ServerSession::new(&format!("estuary,{}", env!("CARGO_PKG_VERSION")));
    loop {
        let mut next = match conn.read_frame().await {
            Ok(None) => break,
            next => next,
        };
        let mut counters = Counters::default();
        let mut taken = Taken::default();
        let mut close = None;
        let mut end = false;
        loop {
            let frame = match next {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(err) => {
                    let kind = match err {
                        ConnectionError::Idle(_) => "idle",
                        ConnectionError::Read(_) => "read",
                        ConnectionError::MidFrame(_) => "framing",
                        ConnectionError::Decode(_) => {
                            counters.malformed += 1;
                            "framing"
                        }
                    };
                    ctx.complain(&peer, kind, &format_args!("RELP: {err}; closing"));
                    end = true;
                    break;
                }
            };
            match session.handle(frame) {
                Ok(Action::Deliver { txnr, message }) => {
                    match ingest::parse(message, &admission, &mut counters) {
                        Ok(p) => taken.msgs.push(p),
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
                    taken.txnrs.push(txnr);
                }
                Ok(Action::Reply(rsp)) => {
                    // Answers keep the order of the frames they answer.
                    if !taken.hand_over(&peer, &ctx, &tx).await
                        || tx.send(Reply::Frame(rsp)).await.is_err()
                    {
                        end = true;
                        break;
                    }
                }
                Ok(Action::ReplyAndClose(rsp)) => {
                    close = Some(rsp);
                    break;
                }
                Err(err) => {
                    counters.malformed += 1;
                    ctx.complain(&peer, "relp", &format_args!("{err}; closing"));
                    end = true;
                    break;
                }
            }
            next = conn.buffered_frame();
        }
        ctx.count(&peer, &counters);
        if !taken.hand_over(&peer, &ctx, &tx).await {
            break;
        }
        if let Some(rsp) = close {
            let _ = tx.send(Reply::Close(rsp)).await;
            break;
        }
        if end {
            break;
        }
    }
    drop(tx);
    let _ = responder.await;
}

async fn respond<W: AsyncWrite + Unpin>(mut writer: W, mut rx: mpsc::Receiver<Reply>) {
    let mut out = BytesMut::with_capacity(64 << 10);
    let mut codec = RelpCodec::default();
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
                        if codec.encode(&ServerSession::ack(txnr), &mut out).is_err() {
                            return;
                        }
                    }
                }
                Reply::Close(frame) => {
                    let _ = codec.encode(&frame, &mut out);
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
