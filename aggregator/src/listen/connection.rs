//! One received byte stream with its buffer and decoder, as mini-redis's `Connection`: frames
//! are decoded from what is buffered, more is read only when none is left, and the end of the
//! stream is told apart: a clean close, or an end in the middle of a frame.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::Decoder;

const READ_CHUNK: usize = 256 << 10;

/// Why a connection delivers no more frames.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError<E> {
    #[error("connection idle for {}s; closed", .0.as_secs())]
    Idle(Duration),
    #[error("no whole frame within {}s of connecting; closed", .0.as_secs())]
    NoFirstFrame(Duration),
    #[error("read failed: {0}")]
    Read(std::io::Error),
    #[error("connection closed in the middle of a frame ({0} bytes left undecoded)")]
    MidFrame(usize),
    #[error("framing lost: {0}")]
    Decode(E),
}

pub struct Connection<S, D> {
    stream: S,
    buf: BytesMut,
    decoder: D,
    timeouts: Timeouts,
    /// A frame was delivered: the idle timeout applies, not the first-frame one.
    delivered: bool,
    /// No more bytes will come: what is buffered is the end of the stream.
    eof: bool,
}

/// How long a connection may stay silent.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Until its first whole frame: a peer that connects and sends nothing is soon gone.
    pub first_frame: Duration,
    /// Between reads after that.
    pub idle: Duration,
}

impl<S: AsyncRead + Unpin, D: Decoder> Connection<S, D> {
    pub fn new(stream: S, decoder: D, timeouts: Timeouts) -> Self {
        Connection {
            stream,
            buf: BytesMut::with_capacity(READ_CHUNK),
            decoder,
            timeouts,
            delivered: false,
            eof: false,
        }
    }

    /// The next frame, reading as needed; `None` once the peer closed cleanly. After an idle
    /// timeout or a read error, what is buffered is still there for [`Self::buffered_frame`].
    pub async fn read_frame(&mut self) -> Result<Option<D::Item>, ConnectionError<D::Error>> {
        loop {
            if let Some(frame) = self.buffered_frame()? {
                self.delivered = true;
                return Ok(Some(frame));
            }
            if self.eof {
                return Ok(None);
            }
            if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
                self.buf.reserve(READ_CHUNK);
            }
            let timeout = match self.delivered {
                true => self.timeouts.idle,
                false => self.timeouts.first_frame,
            };
            let read = tokio::time::timeout(timeout, self.stream.read_buf(&mut self.buf));
            match read.await {
                Ok(Ok(0)) => self.eof = true,
                Ok(Ok(_)) => {}
                Ok(Err(err)) => {
                    self.eof = true;
                    return Err(ConnectionError::Read(err));
                }
                Err(_) if self.delivered => {
                    self.eof = true;
                    return Err(ConnectionError::Idle(timeout));
                }
                Err(_) => {
                    self.eof = true;
                    return Err(ConnectionError::NoFirstFrame(timeout));
                }
            }
        }
    }

    /// The next frame already buffered, without reading.
    pub fn buffered_frame(&mut self) -> Result<Option<D::Item>, ConnectionError<D::Error>> {
        if !self.eof {
            return self
                .decoder
                .decode(&mut self.buf)
                .map_err(ConnectionError::Decode);
        }
        if self.buf.is_empty() {
            return Ok(None);
        }
        let left = self.buf.len();
        match self.decoder.decode_eof(&mut self.buf) {
            Ok(Some(frame)) => Ok(Some(frame)),
            Ok(None) if self.buf.is_empty() => Ok(None),
            Ok(None) | Err(_) => {
                self.buf.clear();
                Err(ConnectionError::MidFrame(left))
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin, D: Decoder> Connection<S, D> {
    /// Tells the peer this side is done (FIN, or TLS close_notify first) and from now on waits at
    /// most `quiet` for each further read: what the peer sent meanwhile is still read, until it
    /// closes too or goes quiet.
    pub async fn drain(&mut self, quiet: Duration) {
        let _ = self.stream.shutdown().await;
        self.timeouts = Timeouts {
            first_frame: quiet,
            idle: quiet,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use estuary_wire::relp::RelpCodec;

    async fn frames(input: &[u8]) -> (usize, Result<(), ConnectionError<impl std::fmt::Debug>>) {
        let timeouts = Timeouts {
            first_frame: Duration::from_secs(1),
            idle: Duration::from_secs(1),
        };
        let mut conn = Connection::new(input, RelpCodec::default(), timeouts);
        let mut n = 0;
        loop {
            match conn.read_frame().await {
                Ok(Some(_)) => n += 1,
                Ok(None) => return (n, Ok(())),
                Err(err) => return (n, Err(err)),
            }
        }
    }

    #[tokio::test]
    async fn tells_a_clean_close_from_an_end_mid_frame() {
        assert!(matches!(
            frames(b"1 open 0\n2 close 0\n").await,
            (2, Ok(()))
        ));
        assert!(matches!(
            frames(b"1 open 0\n2 syslog 10 abc").await,
            (1, Err(ConnectionError::MidFrame(15)))
        ));
        assert!(matches!(
            frames(b"1 open 0\nnonsense\n").await,
            (1, Err(ConnectionError::Decode(_)))
        ));
    }
}
