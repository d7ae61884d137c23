//! Listeners: UDP (RFC 5426), TCP with per-message framing detection (RFC 6587), TLS (RFC 5425)
//! and RELP, plain or over TLS. Each connection is its own task; bad input is counted, logged
//! once per peer per interval, and costs at most its own connection.

mod connection;
mod relp;
mod stream;
mod udp;

pub use relp::serve_relp;
pub use stream::serve_syslog;
pub use udp::serve_udp;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::peers::{Admission, PeerPolicy};
use crate::stats::{Counters, Stats};
use crate::workers::Job;

/// A connection silent this long is closed (slow or half-open peers).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// A TLS handshake must finish within this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once, over all listeners.
pub const MAX_CONNECTIONS: usize = 4096;
/// The same complaint about the same peer is logged at most this often.
const COMPLAIN_EVERY: Duration = Duration::from_secs(60);

pub struct Ctx {
    pub jobs: mpsc::Sender<Job>,
    pub policy: PeerPolicy,
    pub stats: Arc<Stats>,
    pub max_len: usize,
    pub idle_timeout: Duration,
    complaints: Mutex<HashMap<(String, &'static str), Instant>>,
    connections: Arc<Semaphore>,
}

impl Ctx {
    pub fn new(
        jobs: mpsc::Sender<Job>,
        policy: PeerPolicy,
        stats: Arc<Stats>,
        max_len: usize,
    ) -> Self {
        Self {
            jobs,
            policy,
            stats,
            max_len,
            idle_timeout: IDLE_TIMEOUT,
            complaints: Mutex::new(HashMap::new()),
            connections: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
        }
    }

    /// Logs `what` about `peer` unless the same was logged within the last interval.
    pub fn complain(&self, peer: &str, kind: &'static str, what: &dyn std::fmt::Display) {
        let mut seen = self.complaints.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() > 10_000 {
            seen.clear();
        }
        let now = Instant::now();
        let key = (peer.to_owned(), kind);
        if seen
            .get(&key)
            .is_some_and(|t| now.duration_since(*t) < COMPLAIN_EVERY)
        {
            return;
        }
        seen.insert(key, now);
        tracing::warn!(peer, kind, "{what}");
    }

    pub fn count(&self, peer: &str, delta: &Counters) {
        if *delta != Counters::default() {
            self.stats.add(peer, delta);
        }
    }

    fn refuse(&self, peer: &str, why: &dyn std::fmt::Display) {
        self.count(
            peer,
            &Counters {
                refused: 1,
                ..Counters::default()
            },
        );
        self.complain(peer, "refused", why);
    }
}

/// What a stream listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Syslog,
    Relp,
}

/// Accepts connections until the task is dropped.
pub async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    protocol: Protocol,
    ctx: Arc<Ctx>,
) {
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(x) => x,
            Err(err) => {
                tracing::warn!(%err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let peer = addr.ip().to_canonical().to_string();
        let Ok(permit) = ctx.connections.clone().try_acquire_owned() else {
            ctx.refuse(&peer, &"connection limit reached");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let ctx = ctx.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            connection(stream, addr, tls, protocol, ctx).await;
            drop(permit);
        });
    }
}

async fn connection(
    stream: TcpStream,
    addr: SocketAddr,
    tls: Option<TlsAcceptor>,
    protocol: Protocol,
    ctx: Arc<Ctx>,
) {
    let peer: Arc<str> = addr.ip().to_canonical().to_string().into();
    match tls {
        None => {
            let Some(admission) = ctx.policy.admit(addr.ip(), &[]) else {
                ctx.refuse(&peer, &"peer not allowed");
                return;
            };
            serve(stream, peer, admission, protocol, &ctx).await;
        }
        Some(acceptor) => {
            let stream =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(err)) => {
                        ctx.refuse(&peer, &format_args!("TLS handshake failed: {err}"));
                        return;
                    }
                    Err(_) => {
                        ctx.refuse(&peer, &"TLS handshake timed out");
                        return;
                    }
                };
            let names: Vec<String> = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .map(estuary_wire::tls::peer_cert_names)
                .unwrap_or_default();
            let Some(admission) = ctx.policy.admit(addr.ip(), &names) else {
                ctx.refuse(
                    &peer,
                    &format_args!("peer not allowed (certificate names {names:?})"),
                );
                return;
            };
            serve(stream, peer, admission, protocol, &ctx).await;
        }
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    peer: Arc<str>,
    admission: Admission,
    protocol: Protocol,
    ctx: &Arc<Ctx>,
) {
    match protocol {
        Protocol::Syslog => serve_syslog(stream, peer, admission, ctx).await,
        Protocol::Relp => serve_relp(stream, peer, admission, ctx.clone()).await,
    }
}
