//! Listeners: UDP (RFC 5426), TCP with per-message framing detection (RFC 6587), TLS (RFC 5425)
//! and RELP, plain or over TLS. Each connection is its own task; bad input is reported to
//! [`crate::events`] and costs at most its own connection.

mod connection;
mod relp;
mod slots;
mod stream;
mod udp;

pub use relp::serve_relp;
pub use stream::serve_syslog;
pub use udp::serve_udp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::events::{Events, Refusal};
use crate::ingest::{self, Parsed, Rejected};
use crate::peers::{Admission, PeerPolicy};
use crate::workers::Job;
use connection::Timeouts;
use estuary_config::aggregator::AggregatorConfig;
use slots::{AddressSlots, NameSlots};

/// A connection silent this long is closed (slow or half-open peers).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// A connection must bring its first whole frame within this, or it is closed.
pub const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// A TLS handshake must finish within this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once, over all listeners.
pub const MAX_CONNECTIONS: usize = 4096;
/// TLS handshakes in progress at once from one address.
pub const MAX_HANDSHAKES_PER_ADDRESS: usize = 16;

pub struct Ctx {
    pub jobs: mpsc::Sender<Job>,
    pub policy: PeerPolicy,
    pub events: Arc<Events>,
    pub max_len: usize,
    pub timeouts: Timeouts,
    connections: Arc<Semaphore>,
    /// `MaxConnectionsPerAddress`: one peer leaves room for the others.
    per_address: Arc<AddressSlots>,
    /// `MaxConnectionsPerCertName`: nor does one certificate, from however many addresses.
    per_cert_name: Arc<NameSlots>,
    handshakes: Arc<AddressSlots>,
    /// The daemon is stopping: RELP connections end at once, unanswered (their senders send again
    /// what was not answered); plain syslog streams are drained first (see [`serve_syslog`]).
    stop: CancellationToken,
}

impl Ctx {
    /// The listeners' shared state for `config`: its peers, message size and connection limits.
    pub fn new(
        config: &AggregatorConfig,
        jobs: mpsc::Sender<Job>,
        events: Arc<Events>,
        stop: CancellationToken,
    ) -> Self {
        let limits = config.connection_limits;
        Self {
            jobs,
            policy: PeerPolicy::new(config.peers.clone()),
            events,
            max_len: config.max_message_size,
            timeouts: Timeouts {
                first_frame: FIRST_FRAME_TIMEOUT,
                idle: IDLE_TIMEOUT,
            },
            connections: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            per_address: AddressSlots::new(limits.per_address),
            per_cert_name: NameSlots::new(limits.per_cert_name),
            handshakes: AddressSlots::new(MAX_HANDSHAKES_PER_ADDRESS),
            stop,
        }
    }

    /// Parses one frame from `peer`; `None` when it is not taken, `then` saying what became of
    /// it.
    fn parse(&self, peer: &str, frame: Bytes, admission: &Admission, then: &str) -> Option<Parsed> {
        let (why, what) = match ingest::parse(frame, admission) {
            Ok(parsed) => {
                if !parsed.syslog {
                    self.events.unparsed(peer);
                }
                return Some(parsed);
            }
            Err(Rejected::Malformed) => (Refusal::NotSyslog, "message too large to parse"),
            Err(Rejected::Refused) => (Refusal::TagNotAllowed, "tag not allowed for this peer"),
        };
        self.events
            .refused(peer, why, &format_args!("{what}; {then}"));
        None
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
                ctx.events.accept_failed("TCP", &err);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let peer = addr.ip().to_canonical().to_string();
        let Some(slot) = ctx.per_address.take(addr.ip().to_canonical()) else {
            let detail = format_args!("more than {} connections", ctx.per_address.each());
            ctx.events
                .refused(&peer, Refusal::AddressConnectionLimit, &detail);
            continue;
        };
        let Ok(permit) = ctx.connections.clone().try_acquire_owned() else {
            ctx.events
                .refused(&peer, Refusal::ConnectionLimit, &"connection limit reached");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let ctx = ctx.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            connection(stream, addr, tls, protocol, ctx).await;
            drop((permit, slot));
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
                ctx.events
                    .refused(&peer, Refusal::PeerNotAllowed, &"peer not allowed");
                return;
            };
            serve(stream, peer, admission, protocol, &ctx).await;
        }
        Some(acceptor) => {
            let Some(handshake) = ctx.handshakes.take(addr.ip().to_canonical()) else {
                let detail = format_args!("more than {MAX_HANDSHAKES_PER_ADDRESS} TLS handshakes");
                ctx.events.refused(&peer, Refusal::HandshakeLimit, &detail);
                return;
            };
            let accepted = tokio::select! {
                () = ctx.stop.cancelled() => return,
                accepted = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => accepted,
            };
            drop(handshake);
            let stream = match accepted {
                Ok(Ok(s)) => s,
                Ok(Err(err)) => {
                    let detail = format_args!("TLS handshake failed: {err}");
                    ctx.events
                        .refused(&peer, Refusal::TlsHandshakeFailed, &detail);
                    return;
                }
                Err(_) => {
                    let detail = "TLS handshake timed out";
                    ctx.events
                        .refused(&peer, Refusal::TlsHandshakeTimeout, &detail);
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
                let detail = format_args!("peer not allowed (certificate names {names:?})");
                ctx.events.refused(&peer, Refusal::PeerNotAllowed, &detail);
                return;
            };
            let mut keys: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
            keys.sort();
            keys.dedup();
            let Some(_slots) = ctx.per_cert_name.take_each(keys) else {
                let detail = format_args!(
                    "more than {} connections under certificate names {names:?}",
                    ctx.per_cert_name.each()
                );
                ctx.events
                    .refused(&peer, Refusal::CertNameConnectionLimit, &detail);
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
        Protocol::Relp => tokio::select! {
            () = ctx.stop.cancelled() => {}
            () = serve_relp(stream, peer, admission, ctx.clone()) => {}
        },
    }
}
