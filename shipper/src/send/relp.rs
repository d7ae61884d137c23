//! RELP (librelp's protocol), plain or over TLS: `open` handshake, a window of `syslog` frames,
//! offsets committed on each `rsp 200`, and after a reconnect every unacknowledged message is sent
//! again first (duplicates only within the window, never loss). The window counts frames that are
//! not yet saved, acknowledged or not, so that `kill -9` too repeats at most a window.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use estuary_wire::relp::{ClientSession, Event, RelpCodec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::Decoder;
use tracing::{info, warn};

use super::stream::BoxStream;
use super::{Backoff, Sender};
use crate::batch::Batch;
use crate::checkpoint::Unsaved;
use crate::events::Link;
use crate::state::FileId;

const SOFTWARE: &str = concat!("estuary,", env!("CARGO_PKG_VERSION"));
/// How long the server may take to answer `open` or `close`.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// What an acknowledgement commits.
#[derive(Debug, Clone, Copy)]
struct Token {
    file: FileId,
    end: u64,
}

/// Messages waiting for room in the window, oldest first.
type Queue = VecDeque<(Bytes, Token)>;

/// What outlives a session.
struct Outbox {
    queue: Queue,
    /// Acknowledged but not saved yet: still counts against the window.
    unsaved: Unsaved,
    /// Whether the reader may still send batches.
    input_open: bool,
}

/// Why a session ended.
enum End {
    /// Reconnect after the backoff.
    Broken,
    /// Everything was delivered and the channel is closed: done.
    Finished,
}

pub async fn run(mut sender: Sender, window: usize) {
    let mut backoff = Backoff::new(sender.config.retry_interval, sender.config.retry_max);
    let mut out = Outbox {
        queue: VecDeque::new(),
        unsaved: Unsaved::default(),
        input_open: true,
    };
    loop {
        let Some(conn) = sender.connect(Link::Relp, &mut backoff).await else {
            return;
        };
        let mut session = ClientSession::new(window);
        let end = session_loop(
            &mut sender,
            conn,
            &mut session,
            window,
            &mut out,
            &mut backoff,
        )
        .await;
        sender.events().disconnected();
        // Unacknowledged messages go first on the next session, under new transaction numbers.
        let unacked: Vec<_> = session.into_unacked().collect();
        if !unacked.is_empty() {
            sender.events().retried(unacked.len() as u64);
        }
        for u in unacked.into_iter().rev() {
            out.queue.push_front((u.message, u.token));
        }
        match end {
            End::Finished => return,
            End::Broken => {
                if *sender.shutdown.borrow() || sender.pause(backoff.next_delay()).await {
                    return;
                }
            }
        }
    }
}

async fn session_loop(
    sender: &mut Sender,
    conn: BoxStream,
    session: &mut ClientSession<Token>,
    window: usize,
    out: &mut Outbox,
    backoff: &mut Backoff,
) -> End {
    let Outbox {
        queue,
        unsaved,
        input_open,
    } = out;
    let (mut rd, mut wr) = tokio::io::split(conn);
    let mut codec = RelpCodec::default();
    let mut rbuf = BytesMut::with_capacity(16 * 1024);
    let mut wbuf = Vec::with_capacity(256 * 1024);
    let name = sender.name().to_owned();

    session.open(SOFTWARE).encode(&mut wbuf);
    if let Err(err) = wr.write_all(&wbuf).await {
        warn!(dest = %name, %err, "RELP open failed");
        return End::Broken;
    }
    wbuf.clear();
    let opened = tokio::time::timeout(ANSWER_TIMEOUT, async {
        loop {
            match next_frame(&mut rd, &mut codec, &mut rbuf).await {
                Ok(Some(frame)) => {
                    return session
                        .handle(frame)
                        .map(|e| matches!(e, Event::Opened(_)))
                        .map_err(|e| e.to_string())
                }
                Ok(None) => continue,
                Err(err) => return Err(err.to_string()),
            }
        }
    })
    .await;
    match opened {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => {
            warn!(dest = %name, "RELP server answered open unexpectedly");
            return End::Broken;
        }
        Ok(Err(err)) => {
            warn!(dest = %name, %err, "RELP open failed");
            return End::Broken;
        }
        Err(_) => {
            warn!(dest = %name, "RELP server did not answer open");
            return End::Broken;
        }
    }
    backoff.reset();
    sender.events().connected(Link::Relp);

    loop {
        let mut sent = 0u64;
        let mut bytes = 0u64;
        // With more than half the window in flight, wait for answers and saves and refill in one
        // write instead of one frame per answer.
        let in_flight = |session: &ClientSession<Token>| session.unacked_len() + unsaved.len();
        let refill = in_flight(session) <= window / 2;
        while refill && session.can_send() && in_flight(session) < window {
            let Some((message, token)) = queue.pop_front() else {
                break;
            };
            bytes += message.len() as u64;
            match session.send(message, token) {
                Ok(frame) => frame.encode(&mut wbuf),
                Err(err) => {
                    warn!(dest = %name, %err, "RELP send refused");
                    return End::Broken;
                }
            }
            sent += 1;
        }
        if !wbuf.is_empty() {
            if let Err(err) = wr.write_all(&wbuf).await {
                sender.events().send_failed(Link::Relp, &err);
                return End::Broken;
            }
            wbuf.clear();
            sender.events().sent(sent, bytes);
        }
        if !*input_open && queue.is_empty() && session.unacked_len() == 0 {
            close(session, &mut rd, &mut wr, &mut codec, &mut rbuf).await;
            return End::Finished;
        }
        // Take another batch only when the queue is short: memory stays bounded.
        let want_more = *input_open && queue.len() < window;
        tokio::select! {
            biased;
            frame = next_frame(&mut rd, &mut codec, &mut rbuf) => {
                match frame {
                    Ok(Some(frame)) => {
                        // Every answer already received, so the window refills in one write.
                        let mut acked = 0;
                        let mut frame = Some(frame);
                        let end = loop {
                            if let Some(frame) = frame.take() {
                                match handle(sender, session, frame, &name) {
                                    Ok(n) => acked += n,
                                    Err(end) => break Some(end),
                                }
                            }
                            match codec.decode(&mut rbuf) {
                                Ok(Some(next)) => frame = Some(next),
                                Ok(None) => break None,
                                Err(err) => {
                                    warn!(dest = %name, %err, "RELP protocol error; reconnecting");
                                    break Some(End::Broken);
                                }
                            }
                        };
                        if acked > 0 {
                            unsaved.push(sender.checkpoints.mark(), acked);
                            // Saves in steps of a quarter window: fewer writes, and the refill
                            // at half a window rarely waits.
                            if unsaved.len() >= window / 4 {
                                sender.checkpoints.request();
                            }
                        }
                        if let Some(end) = end {
                            return end;
                        }
                    }
                    Ok(None) => {}
                    Err(err) => {
                        warn!(dest = %name, %err, "RELP connection lost; reconnecting");
                        return End::Broken;
                    }
                }
            }
            batch = sender.rx.recv(), if want_more => match batch {
                Some(batch) => enqueue(queue, batch),
                None => *input_open = false,
            },
            _ = sender.saved.changed(), if unsaved.len() > 0 => {
                unsaved.release(*sender.saved.borrow_and_update());
            }
        }
    }
}

/// Acts on one answer from the server: how many messages it acknowledged; `Err` ends the session.
fn handle(
    sender: &Sender,
    session: &mut ClientSession<Token>,
    frame: estuary_wire::relp::Frame,
    name: &str,
) -> Result<usize, End> {
    match session.handle(frame) {
        Ok(Event::Acked(token)) => {
            sender.events().taken(1);
            sender.registry.commit(sender.dest, token.file, token.end);
            Ok(1)
        }
        Ok(Event::Rejected { message, .. }) => {
            sender.events().rejected(&message);
            Err(End::Broken)
        }
        Ok(Event::ServerClosing) => {
            info!(dest = %name, "RELP server is closing the session");
            Err(End::Broken)
        }
        Ok(Event::Opened(_) | Event::Closed) => Ok(0),
        Err(err) => {
            warn!(dest = %name, %err, "RELP protocol error; reconnecting");
            Err(End::Broken)
        }
    }
}

fn enqueue(queue: &mut Queue, batch: Batch) {
    let buf = Bytes::from(batch.buf);
    for entry in batch.entries {
        let token = Token {
            file: entry.file,
            end: entry.end,
        };
        match entry.msg {
            Some(range) => queue.push_back((buf.slice(range), token)),
            // An empty line sends nothing; its offset rides on the message before it.
            None => {
                if let Some((_, last)) = queue.back_mut().filter(|(_, t)| t.file == entry.file) {
                    last.end = entry.end;
                }
            }
        }
    }
}

/// Reads until one frame is complete. `Ok(None)` never ends the loop by itself: it means "read
/// more"; EOF is an error.
async fn next_frame(
    rd: &mut (impl AsyncReadExt + Unpin),
    codec: &mut RelpCodec,
    rbuf: &mut BytesMut,
) -> Result<Option<estuary_wire::relp::Frame>, std::io::Error> {
    if let Some(frame) = codec.decode(rbuf).map_err(std::io::Error::other)? {
        return Ok(Some(frame));
    }
    let n = rd.read_buf(rbuf).await?;
    if n == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed by server",
        ));
    }
    codec.decode(rbuf).map_err(std::io::Error::other)
}

async fn close(
    session: &mut ClientSession<Token>,
    rd: &mut (impl AsyncReadExt + Unpin),
    wr: &mut (impl AsyncWriteExt + Unpin),
    codec: &mut RelpCodec,
    rbuf: &mut BytesMut,
) {
    let mut out = Vec::new();
    session.close().encode(&mut out);
    if wr.write_all(&out).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(ANSWER_TIMEOUT, async {
        while let Ok(frame) = next_frame(rd, codec, rbuf).await {
            if let Some(frame) = frame {
                if matches!(session.handle(frame), Ok(Event::Closed) | Err(_)) {
                    return;
                }
            }
        }
    })
    .await;
    let _ = wr.shutdown().await;
}
