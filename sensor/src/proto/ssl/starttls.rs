//! Plaintext protocols that upgrade to TLS (POP3 `STLS`, XMPP `<starttls/>`): the plaintext
//! phase is watched for the upgrade, then the connection is handed to the TLS analyzer.

use super::state::SslAnalyzer;
use crate::flow::{ConnInfo, Direction, Timestamp, Transport};
use crate::proto::pop3::{self, Event};
use crate::proto::{Analyzer, Emit};

/// Plaintext kept per direction while looking for the upgrade.
const MAX_PLAINTEXT: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Pop3,
    Imap,
    Xmpp,
}

impl Protocol {
    fn service(self) -> &'static str {
        match self {
            Protocol::Pop3 => "pop3",
            Protocol::Imap => "imap",
            Protocol::Xmpp => "xmpp",
        }
    }

    /// Where the client's request ends in `orig`, if it asked to upgrade.
    fn request_end(self, orig: &[u8]) -> Option<usize> {
        match self {
            Protocol::Pop3 => orig
                .split(|b| *b == b'\n')
                .find_map(|line| {
                    let l = line.strip_suffix(b"\r").unwrap_or(line);
                    l.eq_ignore_ascii_case(b"STLS").then_some(())
                })
                .map(|()| orig.len()),
            // `tag STARTTLS`
            Protocol::Imap => orig
                .split(|b| *b == b'\n')
                .find_map(|line| {
                    let l = line.strip_suffix(b"\r").unwrap_or(line);
                    let mut words = l.split(|b| *b == b' ');
                    let (_tag, verb) = (words.next()?, words.next()?);
                    verb.eq_ignore_ascii_case(b"STARTTLS").then_some(())
                })
                .map(|()| orig.len()),
            Protocol::Xmpp => find(orig, b"<starttls").map(|_| orig.len()),
        }
    }

    /// Where the server's go-ahead ends in `resp`: TLS starts right after it.
    fn proceed_end(self, resp: &[u8], from: usize) -> Option<usize> {
        let tail = resp.get(from..)?;
        match self {
            Protocol::Pop3 => {
                let start = find(tail, b"+OK")?;
                let nl = tail[start..].iter().position(|b| *b == b'\n')?;
                Some(from + start + nl + 1)
            }
            // The tagged `tag OK ...` completion (untagged `* ...` lines may come first).
            Protocol::Imap => {
                let mut at = 0;
                for line in tail.split_inclusive(|b| *b == b'\n') {
                    at += line.len();
                    if !line.ends_with(b"\n") {
                        return None;
                    }
                    let mut words = line.split(|b| *b == b' ');
                    let tag = words.next()?;
                    let status = words.next().unwrap_or_default();
                    if tag != b"*" && status.eq_ignore_ascii_case(b"OK") {
                        return Some(from + at);
                    }
                }
                None
            }
            Protocol::Xmpp => {
                let start = find(tail, b"<proceed")?;
                let gt = tail[start..].iter().position(|b| *b == b'>')?;
                Some(from + start + gt + 1)
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

enum Phase {
    Plain {
        orig: Vec<u8>,
        resp: Vec<u8>,
        /// How much of `resp` was seen before the client asked (a go-ahead must come after).
        requested_at: Option<usize>,
    },
    Tls(Box<SslAnalyzer>),
    /// The plaintext grew past the cap without an upgrade.
    Done,
}

pub struct StartTls {
    protocol: Protocol,
    conn: ConnInfo,
    phase: Phase,
    confirmed: bool,
    /// Handed to the TLS analyzer (Zeek's `TCP()->IsPartial()`).
    partial: bool,
    /// POP3's commands and replies, which decide its confirmation and weirds.
    pop3: Option<pop3::Lines>,
}

impl StartTls {
    pub fn new(protocol: Protocol, conn: ConnInfo) -> Self {
        StartTls {
            protocol,
            conn,
            phase: Phase::Plain {
                orig: Vec::new(),
                resp: Vec::new(),
                requested_at: None,
            },
            confirmed: false,
            partial: false,
            pop3: (protocol == Protocol::Pop3).then(pop3::Lines::default),
        }
    }

    /// Confirms the service once: POP3 when its state machine says so, the others on their
    /// first bytes. Returns false when the analyzer gave up on the connection.
    fn follow_plaintext(
        &mut self,
        ts: Timestamp,
        dir: Direction,
        data: &[u8],
        out: &mut dyn Emit,
    ) -> bool {
        let service = self.protocol.service();
        let Some(lines) = &mut self.pop3 else {
            if !self.confirmed {
                self.confirmed = true;
                out.confirm_service(service);
            }
            return true;
        };
        // Zeek's POP3 analyzer reads nothing of a connection picked up without its handshake.
        if self.partial {
            return true;
        }
        let mut events = Vec::new();
        lines.data(dir, data, &mut events);
        for event in events {
            match event {
                Event::Weird(name, addl) => {
                    out.weird(ts, name, (!addl.is_empty()).then_some(addl));
                }
                Event::Confirm if !self.confirmed => {
                    self.confirmed = true;
                    out.confirm_service(service);
                }
                Event::Confirm => {}
                Event::Violation => {
                    out.violation(service);
                    return false;
                }
            }
        }
        true
    }
}

impl Analyzer for StartTls {
    fn data(&mut self, ts: Timestamp, dir: Direction, data: &[u8], out: &mut dyn Emit) {
        if matches!(self.phase, Phase::Plain { .. }) && !self.follow_plaintext(ts, dir, data, out) {
            self.phase = Phase::Done;
            return;
        }
        let Phase::Plain {
            orig,
            resp,
            requested_at,
        } = &mut self.phase
        else {
            if let Phase::Tls(tls) = &mut self.phase {
                tls.data(ts, dir, data, out);
            }
            return;
        };
        match dir {
            Direction::Orig => orig.extend_from_slice(data),
            Direction::Resp => resp.extend_from_slice(data),
        }
        if requested_at.is_none() && self.protocol.request_end(orig).is_some() {
            *requested_at = Some(resp.len());
            orig.clear();
        }
        let Some(from) = *requested_at else {
            if orig.len() > MAX_PLAINTEXT || resp.len() > MAX_PLAINTEXT {
                let keep = |b: &mut Vec<u8>| {
                    let cut = b.len().saturating_sub(MAX_PLAINTEXT / 2);
                    b.drain(..cut);
                };
                keep(orig);
                keep(resp);
            }
            return;
        };
        match self.protocol.proceed_end(resp, from) {
            Some(end) => {
                let server_tls = resp[end..].to_vec();
                let client_tls = std::mem::take(orig);
                let mut tls = Box::new(SslAnalyzer::new(self.conn.clone()));
                tls.tcp_partial(self.partial);
                if !client_tls.is_empty() {
                    tls.data(ts, Direction::Orig, &client_tls, out);
                }
                if !server_tls.is_empty() {
                    tls.data(ts, Direction::Resp, &server_tls, out);
                }
                self.phase = Phase::Tls(tls);
            }
            None if resp.len() > MAX_PLAINTEXT => self.phase = Phase::Done,
            None => {}
        }
    }

    fn gap(&mut self, ts: Timestamp, dir: Direction, len: u64, out: &mut dyn Emit) {
        match &mut self.phase {
            Phase::Tls(tls) => tls.gap(ts, dir, len, out),
            Phase::Plain { .. } => self.phase = Phase::Done,
            Phase::Done => {}
        }
    }

    fn finish(&mut self, ts: Timestamp, out: &mut dyn Emit) {
        if let Phase::Tls(tls) = &mut self.phase {
            tls.finish(ts, out);
        }
    }

    fn tcp_partial(&mut self, partial: bool) {
        self.partial = partial;
        if let Phase::Tls(tls) = &mut self.phase {
            tls.tcp_partial(partial);
        }
    }
}

pub const POP3_PORTS: &[(Transport, u16)] = &[(Transport::Tcp, 110)];
pub const XMPP_PORTS: &[(Transport, u16)] = &[(Transport::Tcp, 5222), (Transport::Tcp, 5269)];
/// Zeek's `IMAP::ports`.
pub const IMAP_PORTS: &[(Transport, u16)] = &[(Transport::Tcp, 143)];

pub fn new_imap_analyzer(info: &ConnInfo) -> Box<dyn Analyzer> {
    Box::new(StartTls::new(Protocol::Imap, info.clone()))
}

/// An IMAP server greeting.
pub fn probe_imap(dir: Direction, first_bytes: &[u8]) -> bool {
    dir == Direction::Resp
        && (first_bytes.starts_with(b"* OK") || first_bytes.starts_with(b"* PREAUTH"))
}

pub fn new_pop3_analyzer(info: &ConnInfo) -> Box<dyn Analyzer> {
    Box::new(StartTls::new(Protocol::Pop3, info.clone()))
}

pub fn new_xmpp_analyzer(info: &ConnInfo) -> Box<dyn Analyzer> {
    Box::new(StartTls::new(Protocol::Xmpp, info.clone()))
}

/// A POP3 server greeting.
pub fn probe_pop3(dir: Direction, first_bytes: &[u8]) -> bool {
    dir == Direction::Resp && first_bytes.starts_with(b"+OK ")
}

/// An XMPP stream opening.
pub fn probe_xmpp(dir: Direction, first_bytes: &[u8]) -> bool {
    dir == Direction::Orig
        && (first_bytes.starts_with(b"<stream:stream") || first_bytes.starts_with(b"<?xml"))
        && find(first_bytes, b"jabber").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testkit::{conn, Collect};

    #[test]
    fn imap_starttls_hands_over_to_tls() {
        let mut a = StartTls::new(Protocol::Imap, conn(Transport::Tcp, 143));
        let mut out = Collect::default();
        a.data(
            Timestamp(1.0),
            Direction::Resp,
            b"* OK IMAP4rev1 ready\r\n",
            &mut out,
        );
        a.data(
            Timestamp(2.0),
            Direction::Orig,
            b"a1 STARTTLS\r\n",
            &mut out,
        );
        a.data(
            Timestamp(3.0),
            Direction::Resp,
            b"a1 OK Begin TLS\r\n",
            &mut out,
        );
        a.data(
            Timestamp(4.0),
            Direction::Orig,
            &[22, 3, 1, 0, 4, 1, 0, 0, 0],
            &mut out,
        );
        a.data(
            Timestamp(5.0),
            Direction::Resp,
            &[21, 3, 3, 0, 2, 2, 40],
            &mut out,
        );
        a.finish(Timestamp(6.0), &mut out);
        assert_eq!(out.services, vec!["imap"]);
        assert_eq!(out.rows().len(), 1);
        assert!(out.rows()[0].contains("\tCl\t"), "{:?}", out.rows());
    }
}
