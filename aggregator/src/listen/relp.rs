//! RELP server sessions, driven by wire's sans-I/O [`ServerSession`] (open first and checked,
//! transaction numbers in strict sequence). A `syslog` frame is answered `rsp 200 OK` only after
//! the writer committed it (and synced it, with `Durability::Synced`): the reader hands each
//! batch to the writer with a completion signal and queues its transaction numbers; the
//! responder waits for each signal in order before writing the answers. Frames keep flowing
//! meanwhile.

use std::sync::Arc;

use bytes::BytesMut;
use estuary_wire::relp::{Action, Frame, RelpCodec, Response, ServerSession, Txnr};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::Encoder;

use super::connection::{Connection, ConnectionError};
use super::Ctx;
use crate::events::{Arrivals, Refusal};
use crate::ingest::{Batch, Parsed};
use crate::peers::Admission;
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
                prepare: None,
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
    // One task for both halves: when the daemon stops, dropping it stops the answers too.
    tokio::join!(read(reader, peer, admission, &ctx, tx), respond(writer, rx));
}

async fn read<R: AsyncRead + Unpin>(
    reader: R,
    peer: Arc<str>,
    admission: Admission,
    ctx: &Ctx,
    tx: mpsc::Sender<Reply>,
) {
    let codec = RelpCodec::new(ctx.max_len + RELP_OVERHEAD);
    let mut conn = Connection::new(reader, codec, ctx.timeouts);
    let mut session = ServerSession::new(&format!("estuary,{}", env!("CARGO_PKG_VERSION")));
    loop {
        let mut next = match conn.read_frame().await {
            Ok(None) => break,
            next => next,
        };
        let mut arrivals = Arrivals::default();
        let mut taken = Taken::default();
        let mut close = None;
        let mut end = false;
        loop {
            let frame = match next {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(err) => {
                    let detail = format_args!("RELP: {err}; closing");
                    match err {
                        ConnectionError::Decode(_) => {
                            ctx.events.refused(&peer, Refusal::Framing, &detail)
                        }
                        // Unacknowledged: the client sends it again.
                        ConnectionError::MidFrame(_) => {
                            ctx.events.connection_ended(&peer, "cut", &detail)
                        }
                        ConnectionError::NoFirstFrame(_) => {
                            ctx.events
                                .refused(&peer, Refusal::FirstFrameTimeout, &detail)
                        }
                        ConnectionError::Idle(_) => {
                            ctx.events.connection_ended(&peer, "idle", &detail)
                        }
                        ConnectionError::Read(_) => {
                            ctx.events.connection_ended(&peer, "read", &detail)
                        }
                    }
                    end = true;
                    break;
                }
            };
            match session.handle(frame) {
                Ok(Action::Deliver { txnr, message }) => {
                    arrivals.add(message.len());
                    let then = "acknowledged and dropped";
                    taken
                        .msgs
                        .extend(ctx.parse(&peer, message, &admission, then));
                    taken.txnrs.push(txnr);
                }
                Ok(Action::Reply(rsp)) => {
                    refused_by_session(ctx, &peer, &rsp);
                    // Answers keep the order of the frames they answer.
                    if !taken.hand_over(&peer, ctx, &tx).await
                        || tx.send(Reply::Frame(rsp)).await.is_err()
                    {
                        end = true;
                        break;
                    }
                }
                Ok(Action::ReplyAndClose(rsp)) => {
                    refused_by_session(ctx, &peer, &rsp);
                    close = Some(rsp);
                    break;
                }
                Err(err) => {
                    let detail = format_args!("{err}; closing");
                    ctx.events.refused(&peer, Refusal::RelpProtocol, &detail);
                    end = true;
                    break;
                }
            }
            next = conn.buffered_frame();
        }
        ctx.events.received(&peer, arrivals);
        if !taken.hand_over(&peer, ctx, &tx).await {
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
}

/// Counts a frame the session answered with an error (a refused `open`, an unknown command).
fn refused_by_session(ctx: &Ctx, peer: &str, rsp: &Frame) {
    if let Ok(answer) = Response::parse(&rsp.data) {
        if !answer.is_ok() {
            let detail = format_args!("RELP: answered {}", answer.message);
            ctx.events.refused(peer, Refusal::RelpProtocol, &detail);
        }
    }
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
