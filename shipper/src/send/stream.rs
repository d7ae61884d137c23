//! Connecting a stream transport: TCP, optionally inside TLS.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use estuary_config::shipper::TlsClient;
use estuary_wire::tls::{KeyPair, TlsError};
use rustls::pki_types::ServerName;
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

pub type BoxStream = Pin<Box<dyn Stream>>;

/// Why a connection could not be made; the TLS case names the certificate problem.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connecting to {addr}: {source}")]
    Tcp { addr: String, source: io::Error },
    #[error("connecting to {addr}: timed out")]
    Timeout { addr: String },
    #[error("TLS handshake with {addr} failed: {source}")]
    Tls { addr: String, source: io::Error },
    #[error("bad TLS server name {0:?}")]
    ServerName(String),
}

pub async fn connect(
    host: &str,
    port: u16,
    tls: Option<(&Arc<rustls::ClientConfig>, &TlsClient)>,
) -> Result<BoxStream, ConnectError> {
    let addr = format!("{host}:{port}");
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, port))).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(source)) => return Err(ConnectError::Tcp { addr, source }),
        Err(_) => return Err(ConnectError::Timeout { addr }),
    };
    let _ = tcp.set_nodelay(true);
    let Some((config, client)) = tls else {
        return Ok(Box::pin(tcp));
    };
    let name = client
        .server_name
        .clone()
        .unwrap_or_else(|| host.to_owned());
    let server_name =
        ServerName::try_from(name.clone()).map_err(|_| ConnectError::ServerName(name))?;
    let handshake = TlsConnector::from(config.clone()).connect(server_name, tcp);
    match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
        Ok(Ok(stream)) => Ok(Box::pin(stream)),
        Ok(Err(source)) => Err(ConnectError::Tls { addr, source }),
        Err(_) => Err(ConnectError::Timeout { addr }),
    }
}

/// Whether the peer has closed or reset the connection (checked before writing, so that a batch
/// is not written into a connection that is already gone). One poll, no timer, no waiting.
pub fn peer_closed(stream: &mut BoxStream) -> bool {
    let mut byte = [0u8; 256];
    let mut buf = ReadBuf::new(&mut byte);
    let mut cx = Context::from_waker(Waker::noop());
    match stream.as_mut().poll_read(&mut cx, &mut buf) {
        Poll::Ready(Ok(())) => buf.filled().is_empty(),
        Poll::Ready(Err(_)) => true,
        Poll::Pending => false,
    }
}

/// The rustls client configuration for a destination: its CA, and a client certificate for
/// mutual authentication when configured.
pub fn tls_config(tls: &TlsClient) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let identity = tls.client_auth.as_ref().map(|auth| KeyPair {
        cert_file: &auth.cert_file,
        key_file: &auth.key_file,
    });
    estuary_wire::tls::client_config(&tls.ca_file, identity)
}
