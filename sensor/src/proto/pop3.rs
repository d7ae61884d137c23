//! POP3's command and reply state machine, as Zeek's `POP3_Analyzer` keeps it
//! (`src/analyzer/protocol/pop3/POP3.cc`): pipelined client commands wait in a queue for their
//! replies, `+OK` to a multi-line command starts a listing ended by a lone `.`, and what fits
//! neither side's grammar is a weird. It decides when the protocol is confirmed (`+OK` to
//! `USER`, `CAPA` or `STLS`) and when the analyzer gives up (an unknown server reply, Zeek's
//! `AnalyzerViolation`). The upgrade to TLS is followed by [`super::ssl::starttls`].

use std::collections::VecDeque;

use crate::flow::Direction;

/// `POP3::max_pending_commands`: commands a client may have waiting for replies before the
/// oldest is dropped.
const MAX_PENDING: usize = 10;
/// `POP3::max_unknown_client_commands`: unknown client commands tolerated before they count as
/// a violation.
const MAX_UNKNOWN_CLIENT: usize = 10;

/// What a line made the analyzer do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A weird, by Zeek's name, with its `addl`.
    Weird(&'static str, String),
    /// The protocol is POP3 (`AnalyzerConfirmation`).
    Confirm,
    /// The connection is not POP3 after all: analysis stops (`AnalyzerViolation`).
    Violation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Ok,
    Err,
    User,
    Pass,
    Apop,
    Auth,
    Stat,
    List,
    Retr,
    Dele,
    Rset,
    Noop,
    Last,
    Quit,
    Top,
    Capa,
    Uidl,
    Stls,
    Xsender,
}

const WORDS: [(&str, Cmd); 19] = [
    ("OK", Cmd::Ok),
    ("ERR", Cmd::Err),
    ("USER", Cmd::User),
    ("PASS", Cmd::Pass),
    ("APOP", Cmd::Apop),
    ("AUTH", Cmd::Auth),
    ("STAT", Cmd::Stat),
    ("LIST", Cmd::List),
    ("RETR", Cmd::Retr),
    ("DELE", Cmd::Dele),
    ("RSET", Cmd::Rset),
    ("NOOP", Cmd::Noop),
    ("LAST", Cmd::Last),
    ("QUIT", Cmd::Quit),
    ("TOP", Cmd::Top),
    ("CAPA", Cmd::Capa),
    ("UIDL", Cmd::Uidl),
    ("STLS", Cmd::Stls),
    ("XSENDER", Cmd::Xsender),
];

/// `POP3_Analyzer::ParseCmd`: a leading `+` or `-` is dropped, the rest compared without case.
fn parse_cmd(token: &str) -> Option<Cmd> {
    let word = token
        .strip_prefix('+')
        .or_else(|| token.strip_prefix('-'))
        .unwrap_or(token);
    WORDS
        .iter()
        .find(|(w, _)| w.eq_ignore_ascii_case(word))
        .map(|&(_, c)| c)
}

/// `trim_whitespace` then `TokenizeLine(str, ' ')`: the first word and the rest.
fn tokens(line: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(line);
    let squeezed = text
        .trim_start_matches([' ', '\t', '\r', '\n'])
        .split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    match squeezed.split_once(' ') {
        Some((first, rest)) => (first.to_owned(), rest.to_owned()),
        None => (squeezed, String::new()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Master {
    Start,
    Authorization,
    Transaction,
    Update,
    Finished,
}

/// The command a reply answers (`POP3_State`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Command(Cmd),
    AuthLogin,
    AuthPlain,
    AuthCramMd5,
}

/// Longest line kept; the rest of a longer one is dropped.
const MAX_LINE: usize = 8 * 1024;

/// Both directions' bytes cut into lines (CRLF or LF, as Zeek's `ContentLine_Analyzer` does
/// for POP3) and fed to the [`Session`].
#[derive(Debug, Default)]
pub struct Lines {
    session: Session,
    partial: [Vec<u8>; 2],
}

impl Lines {
    pub fn data(&mut self, dir: Direction, data: &[u8], out: &mut Vec<Event>) {
        let ix = usize::from(dir == Direction::Resp);
        let mut rest = data;
        while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
            let buf = &mut self.partial[ix];
            take_bounded(buf, &rest[..nl]);
            let mut line = std::mem::take(buf);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            match dir {
                Direction::Orig => self.session.client_line(&line, out),
                Direction::Resp => self.session.server_line(&line, out),
            }
            rest = &rest[nl + 1..];
        }
        take_bounded(&mut self.partial[ix], rest);
    }
}

fn take_bounded(buf: &mut Vec<u8>, bytes: &[u8]) {
    let room = MAX_LINE.saturating_sub(buf.len());
    buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

#[derive(Debug)]
pub struct Session {
    master: Master,
    state: State,
    last_state: State,
    guessing: bool,
    waiting_for_auth: bool,
    request_multi_line: bool,
    multi_line: bool,
    /// Client lines waiting for their replies, oldest first.
    cmds: VecDeque<Vec<u8>>,
    unknown_client: usize,
}

impl Default for Session {
    fn default() -> Self {
        Session {
            master: Master::Start,
            state: State::Start,
            last_state: State::Start,
            guessing: false,
            waiting_for_auth: false,
            request_multi_line: false,
            multi_line: false,
            cmds: VecDeque::new(),
            unknown_client: 0,
        }
    }
}

impl Session {
    /// `ProcessRequest`: one client line, without its line ending.
    pub fn client_line(&mut self, line: &[u8], out: &mut Vec<Event>) {
        if line.is_empty() || self.waiting_for_auth {
            // Authentication exchanges (base64) are not commands.
            return;
        }
        if self.cmds.len() >= MAX_PENDING {
            self.cmds.pop_front();
        }
        self.cmds.push_back(line.to_vec());
        if self.cmds.len() == 1 {
            self.process_client_cmd(out);
        }
    }

    /// `ProcessClientCmd`: the oldest waiting command takes effect.
    fn process_client_cmd(&mut self, out: &mut Vec<Event>) {
        let Some(line) = self.cmds.front() else {
            return;
        };
        let (word, message) = tokens(line);
        let Some(cmd) = parse_cmd(&word) else {
            if !self.waiting_for_auth {
                out.push(Event::Weird("pop3_client_command_unknown", word));
                self.unknown_client += 1;
                if self.unknown_client > MAX_UNKNOWN_CLIENT {
                    out.push(Event::Violation);
                }
            }
            return;
        };
        let in_transaction = self.master == Master::Transaction;
        match cmd {
            Cmd::Ok | Cmd::Err => out.push(Event::Weird(
                "pop3_client_sending_server_commands",
                String::new(),
            )),
            Cmd::User | Cmd::Apop if self.master == Master::Authorization => {
                self.state = State::Command(cmd);
            }
            Cmd::Pass
                if self.master == Master::Authorization
                    && self.state == State::Command(Cmd::User) =>
            {
                self.state = State::Command(Cmd::Pass);
            }
            Cmd::Auth if self.master == Master::Authorization => {
                if message.is_empty() {
                    self.request_multi_line = true;
                    self.state = State::Command(Cmd::Auth);
                } else {
                    self.state = if message.contains("LOGIN") {
                        State::AuthLogin
                    } else if message.contains("PLAIN") {
                        State::AuthPlain
                    } else if message.contains("CRAM-MD5") {
                        State::AuthCramMd5
                    } else {
                        State::Command(Cmd::Auth)
                    };
                    self.waiting_for_auth = true;
                }
            }
            Cmd::Stat if in_transaction => self.state = State::Command(cmd),
            Cmd::List | Cmd::Uidl => {
                if message.is_empty() {
                    self.request_multi_line = true;
                }
                self.in_transaction_or_guess(cmd);
            }
            Cmd::Retr | Cmd::Top => {
                self.request_multi_line = true;
                self.in_transaction_or_guess(cmd);
            }
            Cmd::Dele | Cmd::Rset | Cmd::Noop | Cmd::Last => self.in_transaction_or_guess(cmd),
            // Zeek answers XSENDER's reply as LAST's.
            Cmd::Xsender if in_transaction => self.state = State::Command(Cmd::Last),
            Cmd::Xsender => self.guess(Cmd::Xsender),
            Cmd::Quit
                if matches!(
                    self.master,
                    Master::Authorization | Master::Transaction | Master::Start
                ) =>
            {
                self.state = State::Command(Cmd::Quit);
            }
            Cmd::Quit => self.guess(Cmd::Last),
            Cmd::Capa => {
                self.state = State::Command(Cmd::Capa);
                self.request_multi_line = true;
            }
            Cmd::Stls => self.state = State::Command(Cmd::Stls),
            // Not allowed in this state: only an event in Zeek.
            Cmd::User | Cmd::Apop | Cmd::Pass | Cmd::Auth | Cmd::Stat => {}
        }
    }

    fn in_transaction_or_guess(&mut self, cmd: Cmd) {
        if self.master == Master::Transaction {
            self.state = State::Command(cmd);
        } else {
            self.guess(cmd);
        }
    }

    /// A transaction command before any login: if the server says `+OK`, it needed none.
    fn guess(&mut self, state: Cmd) {
        self.guessing = true;
        self.last_state = State::Command(state);
    }

    fn finish_client_cmd(&mut self, out: &mut Vec<Event>) {
        if self.cmds.pop_front().is_some() {
            self.process_client_cmd(out);
        }
    }

    /// `ProcessReply`: one server line, without its line ending.
    pub fn server_line(&mut self, line: &[u8], out: &mut Vec<Event>) {
        if self.multi_line {
            if line == b"." {
                self.request_multi_line = false;
                self.multi_line = false;
                self.finish_client_cmd(out);
            }
            return;
        }
        let (word, _) = tokens(line);
        let Some(cmd) = parse_cmd(&word) else {
            if !self.waiting_for_auth {
                let addl = if word.is_empty() { "???".into() } else { word };
                out.push(Event::Weird("pop3_server_command_unknown", addl));
                out.push(Event::Violation);
            }
            return;
        };
        match cmd {
            Cmd::Ok => self.ok(out),
            Cmd::Err => self.err(out),
            _ => out.push(Event::Weird(
                "pop3_server_sending_client_commands",
                String::new(),
            )),
        }
    }

    fn ok(&mut self, out: &mut Vec<Event>) {
        if self.guessing {
            self.master = Master::Transaction;
            self.guessing = false;
            self.state = self.last_state;
        }
        match self.state {
            State::Start => self.master = Master::Authorization,
            State::Command(Cmd::User) => {
                self.master = Master::Authorization;
                out.push(Event::Confirm);
            }
            State::Command(
                Cmd::Pass
                | Cmd::Apop
                | Cmd::Noop
                | Cmd::Last
                | Cmd::Stat
                | Cmd::Rset
                | Cmd::Dele
                | Cmd::Xsender,
            ) => self.master = Master::Transaction,
            State::Command(Cmd::Auth)
            | State::AuthLogin
            | State::AuthPlain
            | State::AuthCramMd5 => {
                if self.request_multi_line {
                    self.multi_line = true;
                }
                if self.waiting_for_auth {
                    self.master = Master::Transaction;
                }
                self.waiting_for_auth = false;
            }
            State::Command(Cmd::Capa) => {
                out.push(Event::Confirm);
                self.multi_line |= self.request_multi_line;
            }
            State::Command(Cmd::Top | Cmd::Retr | Cmd::Uidl | Cmd::List) => {
                self.multi_line |= self.request_multi_line;
            }
            State::Command(Cmd::Stls) => {
                // The caller hands the connection to TLS.
                out.push(Event::Confirm);
                return;
            }
            State::Command(Cmd::Quit) => match self.master {
                Master::Authorization | Master::Start => self.master = Master::Finished,
                Master::Transaction => self.master = Master::Update,
                Master::Update | Master::Finished => {}
            },
            State::Command(Cmd::Ok | Cmd::Err) => {}
        }
        if !self.multi_line {
            self.finish_client_cmd(out);
        }
    }

    fn err(&mut self, out: &mut Vec<Event>) {
        self.multi_line = false;
        self.request_multi_line = false;
        self.guessing = false;
        self.waiting_for_auth = false;
        match self.state {
            State::Command(Cmd::User | Cmd::Pass | Cmd::Apop | Cmd::Auth)
            | State::AuthLogin
            | State::AuthPlain
            | State::AuthCramMd5 => {
                self.master = Master::Authorization;
                self.state = State::Start;
            }
            State::Command(
                Cmd::Noop
                | Cmd::Last
                | Cmd::Stat
                | Cmd::Rset
                | Cmd::Dele
                | Cmd::List
                | Cmd::Retr
                | Cmd::Uidl
                | Cmd::Top
                | Cmd::Xsender,
            ) => self.master = Master::Transaction,
            State::Command(Cmd::Quit)
                if matches!(
                    self.master,
                    Master::Authorization | Master::Transaction | Master::Start
                ) =>
            {
                self.master = Master::Finished;
            }
            _ => {}
        }
        self.finish_client_cmd(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(script: &[(bool, &str)]) -> Vec<Event> {
        let mut s = Session::default();
        let mut out = Vec::new();
        for (from_client, line) in script {
            if *from_client {
                s.client_line(line.as_bytes(), &mut out);
            } else {
                s.server_line(line.as_bytes(), &mut out);
            }
        }
        out
    }

    #[test]
    fn a_login_and_a_retrieval_confirm_once_without_weirds() {
        let out = run(&[
            (false, "+OK ready"),
            (true, "USER alice"),
            (false, "+OK"),
            (true, "PASS secret"),
            (false, "+OK logged in"),
            (true, "RETR 1"),
            (false, "+OK 12 octets"),
            (false, "+ERR inside the message is data"),
            (false, "."),
            (true, "QUIT"),
            (false, "+OK bye"),
        ]);
        assert_eq!(out, vec![Event::Confirm]);
    }

    #[test]
    fn an_unknown_server_reply_is_a_weird_naming_its_word_and_a_violation() {
        let out = run(&[
            (false, "+OK example.com POP3-Server"),
            (true, "LIST"),
            (false, "GARBAGE (and LIST response missing .)"),
        ]);
        assert_eq!(
            out,
            vec![
                Event::Weird("pop3_server_command_unknown", "GARBAGE".into()),
                Event::Violation
            ]
        );
        assert_eq!(
            run(&[(false, "")]),
            vec![
                Event::Weird("pop3_server_command_unknown", "???".into()),
                Event::Violation
            ]
        );
    }

    #[test]
    fn pipelined_commands_wait_for_the_end_of_a_listing() {
        // LIST before a login: guessed as a transaction once the server says +OK; the RETR
        // sent meanwhile is read only after the listing's terminator, so the message lines
        // (one looks like a command) are data.
        let out = run(&[
            (false, "+OK hello"),
            (true, "LIST"),
            (true, "RETR 1"),
            (false, "+OK 2 messages"),
            (false, "1 120"),
            (false, "."),
            (false, "+OK message follows"),
            (false, "USER is a header here"),
            (false, "."),
        ]);
        assert_eq!(out, vec![]);
    }

    #[test]
    fn client_side_misuse_is_reported() {
        let out = run(&[(true, "+OK"), (false, "+OK"), (true, "FROB x")]);
        assert_eq!(
            out,
            vec![
                Event::Weird("pop3_client_sending_server_commands", String::new()),
                Event::Weird("pop3_client_command_unknown", "FROB".into()),
            ]
        );
        let out = run(&[(false, "+OK"), (true, "CAPA"), (false, "USER")]);
        assert_eq!(
            out,
            vec![Event::Weird(
                "pop3_server_sending_client_commands",
                String::new()
            )]
        );
    }

    #[test]
    fn many_unknown_client_commands_are_a_violation() {
        let mut s = Session::default();
        let mut out = Vec::new();
        for _ in 0..=MAX_UNKNOWN_CLIENT {
            s.client_line(b"PING", &mut out);
            s.server_line(b"+OK", &mut out);
        }
        assert_eq!(out.last(), Some(&Event::Violation));
        assert_eq!(
            out.iter().filter(|e| **e == Event::Violation).count(),
            1,
            "{out:?}"
        );
    }

    #[test]
    fn lines_are_cut_at_lf_across_deliveries_and_bounded() {
        let mut l = Lines::default();
        let mut out = Vec::new();
        l.data(Direction::Resp, b"+OK hi\r\nGARB", &mut out);
        assert!(out.is_empty());
        l.data(Direction::Resp, b"AGE x\r\n", &mut out);
        assert_eq!(
            out[0],
            Event::Weird("pop3_server_command_unknown", "GARBAGE".into())
        );
        let mut l = Lines::default();
        let mut out = Vec::new();
        l.data(Direction::Orig, &vec![b'A'; 3 * MAX_LINE], &mut out);
        l.data(Direction::Orig, b"\n", &mut out);
        let Event::Weird(_, word) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(word.len(), MAX_LINE);
    }

    #[test]
    fn capa_and_stls_confirm() {
        assert_eq!(
            run(&[
                (false, "+OK"),
                (true, "CAPA"),
                (false, "+OK"),
                (false, "STLS"),
                (false, ".")
            ]),
            vec![Event::Confirm]
        );
        assert_eq!(
            run(&[(false, "+OK"), (true, "STLS"), (false, "+OK begin TLS")]),
            vec![Event::Confirm]
        );
    }
}
