//! The client side of a RELP session, without I/O: transaction numbers, the `open` handshake,
//! the window of unacknowledged messages and what to resend after a reconnect.
//!
//! The caller writes the frames this returns and feeds back the frames it reads. Each message
//! carries a caller token (for example the file offset to commit) that comes back when the
//! server acknowledges it.

use std::collections::VecDeque;

use bytes::Bytes;

use super::{Command, Frame, OfferError, Offers, Response, Txnr};

/// librelp's default window of unacknowledged `syslog` frames.
pub const DEFAULT_WINDOW: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    New,
    Opening(Txnr),
    Open,
    Closing(Txnr),
    Closed,
}

/// A message sent and not yet acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unacked<T> {
    pub txnr: Txnr,
    pub message: Bytes,
    pub token: T,
}

/// What a frame from the server meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<T> {
    /// The server accepted the `open` offer; messages may be sent now.
    Opened(Offers),
    /// The server has taken this message.
    Acked(T),
    /// The server answered a `syslog` command with an error; the message was not taken.
    Rejected { token: T, message: String },
    /// The server announced it is closing (`serverclose` hint).
    ServerClosing,
    /// The server confirmed our `close`.
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("RELP session is not open")]
    NotOpen,
    #[error("RELP window of {0} unacknowledged messages is full")]
    WindowFull(usize),
    #[error("RELP server refused the session: {0}")]
    OpenRefused(String),
    #[error("RELP server does not offer the syslog command")]
    SyslogNotOffered,
    #[error("RELP server answered transaction {0}, which is not outstanding")]
    UnexpectedRsp(Txnr),
    #[error("RELP server sent command {0}, which a server must not send")]
    UnexpectedCommand(Command),
    #[error("RELP rsp: {0}")]
    BadRsp(#[from] OfferError),
}

/// The client half of one RELP connection.
#[derive(Debug)]
pub struct ClientSession<T> {
    state: State,
    next: Txnr,
    window: usize,
    unacked: VecDeque<Unacked<T>>,
}

impl<T> ClientSession<T> {
    pub fn new(window: usize) -> ClientSession<T> {
        ClientSession {
            state: State::New,
            next: Txnr::FIRST,
            window: window.max(1),
            unacked: VecDeque::new(),
        }
    }

    fn take_txnr(&mut self) -> Txnr {
        let txnr = self.next;
        self.next = txnr.next();
        txnr
    }

    /// The `open` frame offering `relp_version=0`, `software` and `commands=syslog`.
    pub fn open(&mut self, software: &str) -> Frame {
        let txnr = self.take_txnr();
        self.state = State::Opening(txnr);
        Frame::new(txnr, Command::Open, Offers::librelp(software).to_bytes())
    }

    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Whether another message fits in the window now.
    pub fn can_send(&self) -> bool {
        self.is_open() && self.unacked.len() < self.window
    }

    pub fn unacked_len(&self) -> usize {
        self.unacked.len()
    }

    /// The `syslog` frame for `message`; the token comes back in [`Event::Acked`].
    pub fn send(&mut self, message: Bytes, token: T) -> Result<Frame, SessionError> {
        if !self.is_open() {
            return Err(SessionError::NotOpen);
        }
        if self.unacked.len() >= self.window {
            return Err(SessionError::WindowFull(self.window));
        }
        let txnr = self.take_txnr();
        let frame = Frame::new(txnr, Command::Syslog, message.clone());
        self.unacked.push_back(Unacked {
            txnr,
            message,
            token,
        });
        Ok(frame)
    }

    /// The `close` frame; wait for [`Event::Closed`] before dropping the connection.
    pub fn close(&mut self) -> Frame {
        let txnr = self.take_txnr();
        self.state = State::Closing(txnr);
        Frame::new(txnr, Command::Close, Bytes::new())
    }

    /// Interprets one frame from the server.
    pub fn handle(&mut self, frame: Frame) -> Result<Event<T>, SessionError> {
        match frame.command {
            Command::Rsp => self.handle_rsp(frame.txnr, &frame.data),
            Command::ServerClose => Ok(Event::ServerClosing),
            other => Err(SessionError::UnexpectedCommand(other)),
        }
    }

    fn handle_rsp(&mut self, txnr: Txnr, data: &[u8]) -> Result<Event<T>, SessionError> {
        // librelp answers `close` with an empty rsp.
        if self.state == State::Closing(txnr) {
            self.state = State::Closed;
            return Ok(Event::Closed);
        }
        let rsp = Response::parse(data)?;
        if self.state == State::Opening(txnr) {
            if !rsp.is_ok() {
                self.state = State::Closed;
                return Err(SessionError::OpenRefused(rsp.message));
            }
            let offers = Offers::parse(&rsp.data)?;
            if !offers.supports(&Command::Syslog) {
                self.state = State::Closed;
                return Err(SessionError::SyslogNotOffered);
            }
            self.state = State::Open;
            return Ok(Event::Opened(offers));
        }
        // The server answers in order, so this is nearly always the front.
        let done = self
            .unacked
            .iter()
            .position(|u| u.txnr == txnr)
            .and_then(|at| self.unacked.remove(at))
            .ok_or(SessionError::UnexpectedRsp(txnr))?;
        if rsp.is_ok() {
            Ok(Event::Acked(done.token))
        } else {
            Ok(Event::Rejected {
                token: done.token,
                message: rsp.message,
            })
        }
    }

    /// The messages never acknowledged, oldest first, to send again on a new session (under
    /// new transaction numbers, as librelp does): at-least-once, never lost.
    pub fn into_unacked(self) -> impl Iterator<Item = Unacked<T>> {
        self.unacked.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(txnr: Txnr) -> Frame {
        Response::ok().to_frame(txnr)
    }

    fn opened(window: usize) -> ClientSession<u32> {
        let mut s = ClientSession::new(window);
        let open = s.open("estuary,test");
        assert_eq!(open.txnr, Txnr::FIRST);
        let server = Offers::librelp("librelp,1.11.0,http://librelp.adiscon.com");
        let rsp = Response::open_ok(&server).to_frame(open.txnr);
        assert!(matches!(s.handle(rsp), Ok(Event::Opened(_))));
        s
    }

    #[test]
    fn messages_wait_for_open_and_respect_the_window() {
        let mut fresh = ClientSession::<u32>::new(2);
        assert_eq!(
            fresh.send(Bytes::from_static(b"x"), 0),
            Err(SessionError::NotOpen)
        );
        let mut s = opened(2);
        let a = s.send(Bytes::from_static(b"a"), 10).unwrap();
        let b = s.send(Bytes::from_static(b"b"), 11).unwrap();
        assert_eq!((a.txnr.get(), b.txnr.get()), (2, 3));
        assert!(!s.can_send());
        assert_eq!(
            s.send(Bytes::from_static(b"c"), 12),
            Err(SessionError::WindowFull(2))
        );
        assert_eq!(s.handle(ok(a.txnr)), Ok(Event::Acked(10)));
        assert!(s.can_send());
        let rsp = Response::error("command disabled").to_frame(b.txnr);
        assert_eq!(
            s.handle(rsp),
            Ok(Event::Rejected {
                token: 11,
                message: "command disabled".into()
            })
        );
        assert_eq!(
            s.handle(ok(b.txnr)),
            Err(SessionError::UnexpectedRsp(b.txnr))
        );
        let close = s.close();
        // As librelp answers close: `N rsp 0`.
        let empty = Frame::new(close.txnr, Command::Rsp, Bytes::new());
        assert_eq!(s.handle(empty), Ok(Event::Closed));
    }

    #[test]
    fn refused_open_and_missing_syslog_are_errors() {
        let mut s = ClientSession::<()>::new(4);
        let open = s.open("x");
        let refused =
            Response::error("protocol error: connection already open").to_frame(open.txnr);
        assert!(
            matches!(s.handle(refused), Err(SessionError::OpenRefused(m)) if m.contains("already"))
        );

        let mut s = ClientSession::<()>::new(4);
        let open = s.open("x");
        let offers = Offers::parse(b"relp_version=0\ncommands=starttls").unwrap();
        let rsp = Response::open_ok(&offers).to_frame(open.txnr);
        assert_eq!(s.handle(rsp), Err(SessionError::SyslogNotOffered));
        assert!(!s.is_open());
    }

    #[test]
    fn unacked_messages_are_resent_on_a_new_session_with_new_txnrs() {
        let mut s = opened(8);
        for i in 0..5 {
            s.send(Bytes::from(format!("m{i}")), i).unwrap();
        }
        assert_eq!(s.handle(ok(Txnr::new(2).unwrap())), Ok(Event::Acked(0)));
        let pending: Vec<_> = s.into_unacked().collect();
        assert_eq!(
            pending.iter().map(|u| u.token).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );

        let mut again = opened(8);
        let frames: Vec<Frame> = pending
            .into_iter()
            .map(|u| again.send(u.message, u.token).unwrap())
            .collect();
        assert_eq!(frames[0].txnr.get(), 2);
        assert_eq!(&frames[0].data[..], b"m1");
    }

    #[test]
    fn server_commands_other_than_rsp_are_errors() {
        let mut s = opened(1);
        let hint = Frame::new(Txnr::HINT, Command::ServerClose, Bytes::new());
        assert_eq!(s.handle(hint), Ok(Event::ServerClosing));
        let bogus = Frame::new(Txnr::FIRST, Command::Syslog, Bytes::new());
        assert_eq!(
            s.handle(bogus),
            Err(SessionError::UnexpectedCommand(Command::Syslog))
        );
        let garbage = Frame::new(Txnr::FIRST, Command::Rsp, Bytes::from_static(b"OK"));
        assert!(matches!(s.handle(garbage), Err(SessionError::BadRsp(_))));
    }
}
