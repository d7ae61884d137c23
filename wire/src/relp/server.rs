//! The server side of a RELP session, without I/O, following librelp: transaction numbers in
//! strict sequence from 1, `open` first and once (offering `relp_version=0` and the `syslog`
//! command), `syslog` handed to the caller, which answers each one in order with
//! [`ServerSession::ack`] once the message is stored.

use bytes::Bytes;

use super::{Command, Frame, Offers, Response, Txnr, RELP_VERSION};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitingOpen,
    Open,
    Closed,
}

/// What to do with a frame from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this frame and go on.
    Reply(Frame),
    /// Store the message, then send [`ServerSession::ack`] for `txnr`.
    Deliver { txnr: Txnr, message: Bytes },
    /// Send this frame, then close the connection.
    ReplyAndClose(Frame),
}

/// The client broke the protocol; the connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerError {
    #[error("RELP transaction number {got}, expected {expected}")]
    TxnrOutOfSequence { got: Txnr, expected: Txnr },
    #[error("RELP command {0} before open")]
    NotOpen(Command),
    #[error("RELP client sent {0}, which a client must not send")]
    UnexpectedCommand(Command),
    #[error("RELP frame after close")]
    AfterClose,
}

/// The server half of one RELP connection.
#[derive(Debug)]
pub struct ServerSession {
    state: State,
    expected: Txnr,
    offers: Offers,
}

impl ServerSession {
    /// `software` is what the server names itself in its answer to `open`.
    pub fn new(software: &str) -> ServerSession {
        ServerSession {
            state: State::AwaitingOpen,
            expected: Txnr::FIRST,
            offers: Offers::librelp(software),
        }
    }

    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Interprets one frame from the client.
    pub fn handle(&mut self, frame: Frame) -> Result<Action, ServerError> {
        if self.state == State::Closed {
            return Err(ServerError::AfterClose);
        }
        // Transaction number 0 is the server's (a `serverclose` hint); a client has none.
        if frame.txnr != self.expected {
            return Err(ServerError::TxnrOutOfSequence {
                got: frame.txnr,
                expected: self.expected,
            });
        }
        self.expected = self.expected.next();
        let txnr = frame.txnr;
        match (self.state, frame.command) {
            (State::AwaitingOpen, Command::Open) => Ok(self.open(txnr, &frame.data)),
            (State::Open, Command::Open) => Ok(Action::Reply(
                Response::error("protocol error: connection already open").to_frame(txnr),
            )),
            (State::Open, Command::Syslog) => Ok(Action::Deliver {
                txnr,
                message: frame.data,
            }),
            (_, Command::Close) => {
                self.state = State::Closed;
                Ok(Action::ReplyAndClose(Response::ok().to_frame(txnr)))
            }
            (_, command @ (Command::Rsp | Command::ServerClose)) => {
                Err(ServerError::UnexpectedCommand(command))
            }
            (State::AwaitingOpen, command) => Err(ServerError::NotOpen(command)),
            (_, command) => {
                let message = format!("command {command} not supported");
                Ok(Action::Reply(Response::error(message).to_frame(txnr)))
            }
        }
    }

    fn open(&mut self, txnr: Txnr, data: &[u8]) -> Action {
        let refusal = match Offers::parse(data) {
            Err(_) => Some("malformed offer"),
            Ok(o) if o.get("relp_version") != Some(&[RELP_VERSION.to_owned()][..]) => {
                Some("unsupported relp_version")
            }
            Ok(o) if !o.supports(&Command::Syslog) => {
                Some("required command not supported by client")
            }
            Ok(_) => None,
        };
        if let Some(why) = refusal {
            self.state = State::Closed;
            return Action::ReplyAndClose(Response::error(why).to_frame(txnr));
        }
        self.state = State::Open;
        Action::Reply(Response::open_ok(&self.offers).to_frame(txnr))
    }

    /// The acknowledgement for a delivered message, once it is stored.
    pub fn ack(txnr: Txnr) -> Frame {
        Frame::new(txnr, Command::Rsp, Bytes::from_static(b"200 OK"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relp::client::{ClientSession, Event};

    fn reply(action: Action) -> Frame {
        match action {
            Action::Reply(frame) | Action::ReplyAndClose(frame) => frame,
            Action::Deliver { .. } => panic!("expected a reply, got {action:?}"),
        }
    }

    #[test]
    fn client_and_server_sessions_talk() {
        let mut client = ClientSession::new(4);
        let mut server = ServerSession::new("estuary,0.1.0");
        let open = client.open("estuary,0.1.0");
        let rsp = reply(server.handle(open).unwrap());
        let mut wire = Vec::new();
        rsp.encode(&mut wire);
        assert!(wire.starts_with(b"1 rsp 65 200 OK\nrelp_version=0\nrelp_software=estuary,0.1.0"));
        assert!(matches!(client.handle(rsp), Ok(Event::Opened(_))));

        let msg = client.send(Bytes::from_static(b"<190>x"), "token").unwrap();
        let Action::Deliver { txnr, message } = server.handle(msg).unwrap() else {
            panic!("syslog not delivered");
        };
        assert_eq!(&message[..], b"<190>x");
        assert_eq!(
            client.handle(ServerSession::ack(txnr)),
            Ok(Event::Acked("token"))
        );

        let close = client.close();
        let Action::ReplyAndClose(rsp) = server.handle(close).unwrap() else {
            panic!("close not answered");
        };
        assert_eq!(client.handle(rsp), Ok(Event::Closed));
        let late = Frame::new(Txnr::new(5).unwrap(), Command::Syslog, Bytes::new());
        assert_eq!(server.handle(late), Err(ServerError::AfterClose));
    }

    #[test]
    fn protocol_violations() {
        let syslog = |n| Frame::new(Txnr::new(n).unwrap(), Command::Syslog, Bytes::new());
        let mut server = ServerSession::new("s");
        assert_eq!(
            server.handle(syslog(1)),
            Err(ServerError::NotOpen(Command::Syslog))
        );

        let mut server = ServerSession::new("s");
        assert!(server.handle(syslog(0)).is_err());

        let mut server = ServerSession::new("s");
        assert_eq!(
            server.handle(syslog(2)),
            Err(ServerError::TxnrOutOfSequence {
                got: Txnr::new(2).unwrap(),
                expected: Txnr::FIRST
            })
        );

        let mut server = ServerSession::new("s");
        let mut client = ClientSession::<()>::new(1);
        reply(server.handle(client.open("c")).unwrap());
        let again = Frame::new(
            Txnr::new(2).unwrap(),
            Command::Open,
            Offers::librelp("c").to_bytes(),
        );
        let rsp = Response::parse(&reply(server.handle(again).unwrap()).data).unwrap();
        assert_eq!(
            rsp,
            Response::error("protocol error: connection already open")
        );
        let odd = Frame::new(
            Txnr::new(3).unwrap(),
            Command::Other("fancy".into()),
            Bytes::new(),
        );
        assert!(!Response::parse(&reply(server.handle(odd).unwrap()).data)
            .unwrap()
            .is_ok());

        let mut server = ServerSession::new("s");
        let open = Frame::new(
            Txnr::FIRST,
            Command::Open,
            Bytes::from_static(b"relp_version=0"),
        );
        let Action::ReplyAndClose(rsp) = server.handle(open).unwrap() else {
            panic!("open without syslog must be refused");
        };
        let rsp = Response::parse(&rsp.data).unwrap();
        assert_eq!(rsp.message, "required command not supported by client");

        for (offer, why) in [
            (
                &b"relp_version=99\ncommands=syslog"[..],
                "unsupported relp_version",
            ),
            (b"commands=syslog", "unsupported relp_version"),
            (b"\xff\xfe", "malformed offer"),
        ] {
            let mut server = ServerSession::new("s");
            let open = Frame::new(Txnr::FIRST, Command::Open, Bytes::copy_from_slice(offer));
            let Action::ReplyAndClose(rsp) = server.handle(open).unwrap() else {
                panic!("open {offer:?} must be refused");
            };
            assert_eq!(Response::parse(&rsp.data).unwrap().message, why);
            assert!(!server.is_open());
        }
    }

    fn arb_frame() -> impl proptest::strategy::Strategy<Value = Frame> {
        use proptest::prelude::*;
        let command = prop_oneof![
            Just(Command::Open),
            Just(Command::Syslog),
            Just(Command::Rsp),
            Just(Command::Close),
            Just(Command::ServerClose),
            Just(Command::Other("x".into())),
        ];
        let data = prop_oneof![
            Just(Offers::librelp("c").to_bytes().to_vec()),
            Just(b"200 OK".to_vec()),
            Just(b"200 OK\nrelp_version=0\ncommands=syslog".to_vec()),
            prop::collection::vec(any::<u8>(), 0..20),
        ];
        (0u32..5, command, data)
            .prop_map(|(t, c, d)| Frame::new(Txnr::new(t).unwrap_or(Txnr::FIRST), c, d))
    }

    proptest::proptest! {
        #[test]
        fn sessions_never_panic_on_any_frame_sequence(
            frames in proptest::collection::vec(arb_frame(), 0..12),
        ) {
            let mut server = ServerSession::new("s");
            let mut client = ClientSession::new(2);
            let _ = client.open("c");
            for frame in frames {
                let _ = server.handle(frame.clone());
                let _ = client.handle(frame);
                if client.can_send() {
                    let _ = client.send(Bytes::from_static(b"m"), ());
                }
            }
        }
    }
}
