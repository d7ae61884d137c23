//! The listening sockets: bound before anything is created on disk, then served.

use std::net::SocketAddr;
use std::sync::Arc;

use estuary_config::aggregator::AggregatorConfig;
use estuary_wire::tls::{ClientAuth, KeyPair};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::error::Error;
use crate::listen::{accept_loop, serve_udp, Ctx, Protocol};

/// The addresses actually bound (port 0 in the config gets a real port).
#[derive(Debug, Clone, Default)]
pub struct Bound {
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
    pub tls: Option<SocketAddr>,
    pub relp: Option<SocketAddr>,
    pub relp_tls: Option<SocketAddr>,
}

/// Sockets bound before anything is created on disk, so that a taken port fails the start
/// without leaving folders behind.
pub(crate) struct Listening {
    bound: Bound,
    udp: Option<UdpSocket>,
    streams: Vec<(TcpListener, Option<TlsAcceptor>, Protocol)>,
}

pub(crate) async fn bind(config: &AggregatorConfig) -> Result<Listening, Error> {
    let mut bound = Bound::default();
    let tls = match (
        &config.tls,
        config.listen.tls.is_some() || config.listen.relp_tls.is_some(),
    ) {
        (Some(t), true) => {
            let auth = match (&t.ca_file, t.require_client_cert) {
                (Some(ca), true) => ClientAuth::Required { ca_file: ca },
                (Some(ca), false) => ClientAuth::Optional { ca_file: ca },
                (None, _) => ClientAuth::Off,
            };
            let server = estuary_wire::tls::server_config_revoking(
                KeyPair {
                    cert_file: &t.cert_file,
                    key_file: &t.key_file,
                },
                auth,
                t.crl_file.as_deref(),
            )?;
            Some(TlsAcceptor::from(server))
        }
        (None, true) => return Err(Error::TlsMissing),
        (_, false) => None,
    };
    let udp = match config.listen.udp {
        Some(addr) => {
            let socket = UdpSocket::bind(addr).await.map_err(|source| Error::Bind {
                listener: "UDP",
                addr,
                source,
            })?;
            bound.udp = socket.local_addr().ok();
            Some(socket)
        }
        None => None,
    };
    let wanted = [
        (
            config.listen.tcp,
            None,
            Protocol::Syslog,
            &mut bound.tcp,
            "TCP",
        ),
        (
            config.listen.tls,
            tls.clone(),
            Protocol::Syslog,
            &mut bound.tls,
            "TLS",
        ),
        (
            config.listen.relp,
            None,
            Protocol::Relp,
            &mut bound.relp,
            "RELP",
        ),
        (
            config.listen.relp_tls,
            tls.clone(),
            Protocol::Relp,
            &mut bound.relp_tls,
            "RELP over TLS",
        ),
    ];
    let mut streams = Vec::new();
    for (addr, acceptor, protocol, slot, what) in wanted {
        let Some(addr) = addr else { continue };
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind {
                listener: what,
                addr,
                source,
            })?;
        *slot = listener.local_addr().ok();
        streams.push((listener, acceptor, protocol));
    }
    Ok(Listening {
        bound,
        udp,
        streams,
    })
}

pub(crate) fn listen(listening: Listening, ctx: &Arc<Ctx>, tasks: &mut JoinSet<()>) -> Bound {
    if let Some(socket) = listening.udp {
        tasks.spawn(serve_udp(socket, ctx.clone()));
    }
    for (listener, acceptor, protocol) in listening.streams {
        tasks.spawn(accept_loop(listener, acceptor, protocol, ctx.clone()));
    }
    listening.bound
}
