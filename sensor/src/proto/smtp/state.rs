//! Per-connection SMTP state, following Zeek's SMTP scripts: one row per mail transaction
//! with the envelope from the commands and the top-level headers of the message, written when
//! the message is accepted (the reply to `.` or to the last BDAT chunk), when a new MAIL FROM
//! starts another transaction, or when the connection ends.

use std::collections::VecDeque;

use super::files::mail_file;
use super::log::SmtpInfo;
use super::mime::{Mime, MimeEvent};
use super::parser;
use crate::flow::{ConnInfo, Direction, Timestamp};
use crate::proto::file_stream::FileStream;
use crate::proto::lines::StreamBuf;
use crate::proto::ssl::SslAnalyzer;
use crate::proto::{Analyzer, Emit};
use crate::uid::UidGen;

/// Longest command or reply line, and the most of a message line taken at once: Zeek's
/// `ContentLine_Analyzer` cuts lines only at 16 MiB, so a longer message line goes on to the
/// MIME reader in pieces joined without line ends.
const MAX_LINE: usize = 16 * 1024;
/// Commands awaiting replies (pipelining); beyond this the oldest is forgotten.
const MAX_PENDING: usize = 100;
/// Zeek's `SMTP::max_invalid_mail_transactions`.
const MAX_INVALID_TRANSACTIONS: u64 = 25;
/// Recipients, addresses and files kept per transaction.
const MAX_SET: usize = 256;

enum Mode {
    Command,
    /// DATA was sent: the next client line starts the message unless the server refuses first.
    DataPending,
    Data,
    Bdat {
        remaining: u64,
        last: bool,
    },
    /// After STARTTLS: the rest is TLS.
    Tls(Box<SslAnalyzer>),
    /// Too many invalid transactions: Zeek disables the analyzer.
    Stopped,
}

pub struct SmtpAnalyzer {
    conn: ConnInfo,
    fuids: UidGen,
    orig: StreamBuf,
    resp: StreamBuf,
    mode: Mode,
    /// The message being transferred (by DATA or BDAT chunks).
    mail: Option<Mime>,
    /// The last message line taken was cut at `MAX_LINE`: the next one continues it.
    line_cut: bool,
    /// The file of the MIME entity being transferred.
    file: FileStream,
    /// `SMTP::State$mime_depth`: MIME entities begun on this connection.
    mime_depth: u64,
    /// Bytes of BDAT chunks not yet ending in a line.
    bdat_line: Vec<u8>,
    /// Bytes a BDAT chunk still expected when a gap cut it off.
    bdat_undelivered: u64,
    /// BDAT chunks were sent and the LAST one is still to come.
    bdat_open: bool,
    /// Commands waiting for their replies, oldest first.
    pending: VecDeque<String>,
    info: Option<SmtpInfo>,
    helo: Option<Vec<u8>>,
    messages_transferred: u64,
    mail_from_seen: bool,
    rcpt_seen: bool,
    bdat_last_observed: bool,
    invalid_transactions: u64,
    invalid_reported: bool,
    confirmed: bool,
}

impl SmtpAnalyzer {
    pub fn new(conn: ConnInfo) -> Self {
        SmtpAnalyzer {
            fuids: UidGen::for_connection(&conn.uid, 0x5347_5450),
            conn,
            orig: StreamBuf::default(),
            resp: StreamBuf::default(),
            mode: Mode::Command,
            mail: None,
            line_cut: false,
            file: FileStream::default(),
            mime_depth: 0,
            bdat_line: Vec::new(),
            bdat_undelivered: 0,
            bdat_open: false,
            pending: VecDeque::new(),
            info: None,
            helo: None,
            messages_transferred: 0,
            mail_from_seen: false,
            rcpt_seen: false,
            bdat_last_observed: false,
            invalid_transactions: 0,
            invalid_reported: false,
            confirmed: false,
        }
    }

    fn new_log(&self, ts: Timestamp) -> SmtpInfo {
        SmtpInfo::new(
            ts,
            self.conn.clone(),
            self.messages_transferred + 1,
            self.helo.clone(),
        )
    }

    /// Zeek's `set_smtp_session`.
    fn info(&mut self, ts: Timestamp) -> &mut SmtpInfo {
        if self.info.is_none() {
            self.info = Some(self.new_log(ts));
        }
        self.info
            .get_or_insert_with(|| SmtpInfo::new(ts, ConnInfo::clone(&self.conn), 1, None))
    }

    /// Zeek's `smtp_message`: writes the transaction if the client did something in it.
    fn message(&mut self, ts: Timestamp, out: &mut dyn Emit) {
        if self.info.as_ref().is_some_and(|i| i.has_client_activity) {
            if let Some(done) = self.info.take() {
                out.record(Box::new(done));
            }
            self.info = Some(self.new_log(ts));
        }
    }

    fn invalid(&mut self, ts: Timestamp, addl: &str, out: &mut dyn Emit) {
        // Zeek logs this weird once per connection (Weird::ACTION_LOG_PER_CONN).
        if !self.invalid_reported {
            self.invalid_reported = true;
            out.weird(ts, "smtp_mail_transaction_invalid", Some(addl.to_string()));
        }
        self.invalid_transactions += 1;
        if self.invalid_transactions > MAX_INVALID_TRANSACTIONS {
            out.weird(ts, "smtp_excessive_invalid_mail_transactions", None);
            self.mode = Mode::Stopped;
        }
    }

    fn command(&mut self, ts: Timestamp, line: &[u8], out: &mut dyn Emit) {
        let (verb, arg) = parser::parse_command(line);
        self.info(ts);
        if !parser::is_command_verb(&verb) {
            return;
        }
        if verb != "BDAT" && self.bdat_open {
            // A client that stops sending BDAT chunks without a LAST one.
            out.weird(ts, "smtp_missing_bdat_last_chunk", None);
            self.bdat_open = false;
            self.end_mail(ts, out);
        }
        if !self.confirmed {
            self.confirmed = true;
            out.confirm_service("smtp");
        }
        let lower_arg = arg.to_ascii_lowercase();
        match verb.as_str() {
            "HELO" | "EHLO" => {
                self.helo = Some(arg.clone());
                self.info(ts).helo = Some(arg);
            }
            "RCPT" if lower_arg.starts_with(b"to:") => {
                let info = self.info(ts);
                let set = info.rcptto.get_or_insert_with(Vec::new);
                for addr in parser::extract_email_addrs(&arg) {
                    let addr = strip_orcpt(&addr);
                    if !set.contains(&addr) && set.len() < MAX_SET {
                        set.push(addr);
                    }
                }
                info.has_client_activity = true;
                self.rcpt_seen = true;
                if !self.mail_from_seen {
                    self.invalid(ts, "rcpt to missing mail from", out);
                }
            }
            "MAIL" if lower_arg.starts_with(b"from:") => {
                self.message(ts, out);
                let info = self.info(ts);
                if let Some(addr) = parser::extract_email_addrs(&arg).into_iter().next() {
                    info.mailfrom = Some(addr);
                }
                info.has_client_activity = true;
                self.mail_from_seen = true;
                self.rcpt_seen = false;
            }
            "DATA" | "BDAT" => {
                if !self.rcpt_seen {
                    self.invalid(ts, "data missing rcpt to", out);
                }
                if self.mail.is_none() {
                    self.begin_mail(ts, out);
                }
                if verb == "DATA" {
                    self.mode = Mode::DataPending;
                } else if let Ok((size, last)) = parser::parse_bdat(&arg).inspect_err(|e| {
                    out.weird(ts, "smtp_invalid_bdat_command", Some((*e).to_string()))
                }) {
                    if arg.ends_with(b" LAST") {
                        self.mail_from_seen = false;
                        self.rcpt_seen = false;
                        self.bdat_last_observed = true;
                    }
                    self.mode = Mode::Bdat {
                        remaining: size,
                        last,
                    };
                    self.bdat_open = !last;
                }
            }
            _ => {}
        }
        self.push_pending(ts, verb, out);
    }

    fn push_pending(&mut self, ts: Timestamp, cmd: String, out: &mut dyn Emit) {
        if self.pending.len() >= MAX_PENDING {
            // A client that never reads replies: pairing is lost for the oldest command.
            out.weird(ts, "SMTP_too_many_pending_commands", None);
            self.pending.pop_front();
        }
        self.pending.push_back(cmd);
    }

    fn begin_mail(&mut self, ts: Timestamp, out: &mut dyn Emit) {
        let mime = Mime::new();
        let events = mime.begin();
        self.mail = Some(mime);
        self.mime_events(ts, events, out);
    }

    fn mail_line(&mut self, ts: Timestamp, line: &[u8], out: &mut dyn Emit) {
        self.mail_piece(ts, line, true, out);
    }

    /// A message line, or (`ends` false) a piece of one that goes on.
    fn mail_piece(&mut self, ts: Timestamp, piece: &[u8], ends: bool, out: &mut dyn Emit) {
        let mut events = Vec::new();
        if let Some(m) = self.mail.as_mut() {
            if ends {
                m.line(piece, &mut events);
            } else {
                m.part(piece, &mut events);
            }
        }
        self.mime_events(ts, events, out);
    }

    /// The message ended (`.` or the last BDAT chunk).
    fn end_mail(&mut self, ts: Timestamp, out: &mut dyn Emit) {
        let mut events = Vec::new();
        if let Some(mut m) = self.mail.take() {
            m.end(&mut events);
        }
        self.mime_events(ts, events, out);
        self.bdat_line.clear();
        self.bdat_abandoned(ts, out);
    }

    /// A BDAT chunk cut short by a gap is reported when its message ends.
    fn bdat_abandoned(&mut self, ts: Timestamp, out: &mut dyn Emit) {
        if self.bdat_undelivered > 0 {
            self.bdat_undelivered = 0;
            out.weird(ts, "smtp_bdat_remaining_at_end_data", None);
            out.weird_from(ts, "smtp_bdat_undelivered_at_done", None, "SMTP_BDAT");
        }
    }

    fn mime_events(&mut self, ts: Timestamp, events: Vec<MimeEvent>, out: &mut dyn Emit) {
        for ev in events {
            match ev {
                MimeEvent::BeginEntity => {
                    self.mime_depth += 1;
                    self.info(ts).entity_count += 1;
                }
                MimeEvent::NewFile(filename) => {
                    let fuid = self.fuids.next('F');
                    let info = self.info(ts);
                    if info.fuids.len() < MAX_SET {
                        info.fuids.push(fuid.clone());
                    }
                    let depth = self.mime_depth;
                    self.file
                        .begin(mail_file(fuid, &self.conn, ts, depth, filename), out);
                }
                MimeEvent::Data(bytes) => {
                    self.file.data(ts, &bytes);
                }
                MimeEvent::EndFile => {
                    self.file.end(out);
                }
                MimeEvent::Header(name, value) => self.header(ts, &name, value, out),
            }
        }
    }

    /// `MIME_Mail::Undelivered`: the lost bytes are a gap in the current entity's file, which
    /// the gap creates (`file_mgr->Gap` by the SMTP file handle) when it had no data yet.
    fn file_gap(&mut self, ts: Timestamp, len: u64, out: &mut dyn Emit) {
        let Some(m) = self.mail.as_ref() else {
            return;
        };
        if !self.file.is_open() {
            let filename = m.filename();
            self.mime_events(ts, vec![MimeEvent::NewFile(filename)], out);
        }
        self.file.gap(len);
    }

    fn header(&mut self, ts: Timestamp, name: &str, value: Vec<u8>, _out: &mut dyn Emit) {
        let info = self.info(ts);
        if info.entity_count > 1 {
            return;
        }
        let add_all = |set: &mut Option<Vec<Vec<u8>>>, value: &[u8]| {
            let s = set.get_or_insert_with(Vec::new);
            for a in parser::split_mime_addresses(value) {
                if !s.contains(&a) && s.len() < MAX_SET {
                    s.push(a);
                }
            }
        };
        match name {
            "MESSAGE-ID" => info.msg_id = Some(value),
            "RECEIVED" => {
                if let Some(first) = info.first_received.take() {
                    info.second_received = Some(first);
                }
                let ips = parser::extract_ips(&value, true);
                info.first_received = Some(value);
                let ip = if ips.len() > 1 {
                    ips.get(1)
                } else {
                    ips.first()
                };
                if let (Some(ip), true) = (ip, info.process_received_from) {
                    if info.path.last() != Some(ip) && info.path.len() < MAX_SET {
                        info.path.push(*ip);
                    }
                }
            }
            "IN-REPLY-TO" => info.in_reply_to = Some(value),
            "SUBJECT" => info.subject = Some(value),
            "FROM" => info.from = Some(value),
            "REPLY-TO" => info.reply_to = Some(value),
            "DATE" => info.date = Some(value),
            "TO" => add_all(&mut info.to, &value),
            "CC" => add_all(&mut info.cc, &value),
            "X-ORIGINATING-IP" => {
                if let Some(ip) = parser::extract_ips(&value, false).first() {
                    info.x_originating_ip = Some(*ip);
                }
            }
            "X-MAILER" | "USER-AGENT" | "X-USER-AGENT" => info.user_agent = Some(value),
            _ => {}
        }
    }

    fn reply(&mut self, ts: Timestamp, line: &[u8], out: &mut dyn Emit) {
        let Some(r) = parser::parse_reply(line) else {
            return;
        };
        let cmd = self.pending.front().cloned().unwrap_or_default();
        let mut last = format!("{} ", r.code).into_bytes();
        last.extend_from_slice(&r.msg);
        self.info(ts).last_reply = Some(last);
        if !r.cont {
            self.pending.pop_front();
        }
        if cmd == "." || (!r.cont && cmd == "BDAT" && self.bdat_last_observed) {
            self.messages_transferred += 1;
            self.bdat_last_observed = false;
            self.message(ts, out);
            self.info = Some(self.new_log(ts));
        }
        if r.cont {
            return;
        }
        match cmd.as_str() {
            "DATA" if matches!(self.mode, Mode::DataPending) => {
                if r.code == 354 {
                    self.mode = Mode::Data;
                } else {
                    self.mode = Mode::Command;
                }
            }
            "STARTTLS" if r.code == 220 => {
                let info = self.info(ts);
                info.tls = true;
                info.has_client_activity = true;
                let mut tls = Box::new(SslAnalyzer::new(self.conn.clone()));
                let client = self.orig.take_all();
                let server = self.resp.take_all();
                if !client.is_empty() {
                    tls.data(ts, Direction::Orig, &client, out);
                }
                if !server.is_empty() {
                    tls.data(ts, Direction::Resp, &server, out);
                }
                self.mode = Mode::Tls(tls);
            }
            _ => {}
        }
    }

    fn client_data(&mut self, ts: Timestamp, out: &mut dyn Emit) {
        loop {
            match &mut self.mode {
                Mode::Tls(_) | Mode::Stopped => return,
                Mode::Bdat { remaining, last } => {
                    let chunk = self
                        .orig
                        .take(usize::try_from(*remaining).unwrap_or(usize::MAX));
                    if chunk.is_empty() {
                        return;
                    }
                    *remaining -= chunk.len() as u64;
                    let (done, last) = (*remaining == 0, *last);
                    self.bdat_bytes(ts, &chunk, out);
                    if done {
                        if last {
                            let rest = std::mem::take(&mut self.bdat_line);
                            if !rest.is_empty() {
                                self.mail_line(ts, &rest, out);
                            }
                            self.end_mail(ts, out);
                        }
                        self.mode = Mode::Command;
                    }
                }
                Mode::Command => {
                    let Some(line) = self.orig.line(MAX_LINE) else {
                        return;
                    };
                    self.command(ts, &line.text, out);
                }
                Mode::DataPending | Mode::Data => {
                    let Some(line) = self.orig.line(MAX_LINE) else {
                        return;
                    };
                    self.mode = Mode::Data;
                    let ends = !line.overflow;
                    if std::mem::replace(&mut self.line_cut, line.overflow) {
                        self.mail_piece(ts, &line.text, ends, out);
                    } else if line.text == b"." {
                        self.end_mail(ts, out);
                        self.info(ts);
                        self.mail_from_seen = false;
                        self.rcpt_seen = false;
                        self.push_pending(ts, ".".into(), out);
                        self.mode = Mode::Command;
                    } else {
                        // `SMTP_Analyzer::ProcessLine` drops any leading dot of a data line.
                        let text = line.text.strip_prefix(b".").unwrap_or(&line.text);
                        self.mail_piece(ts, text, ends, out);
                    }
                }
            }
        }
    }

    /// BDAT chunk bytes, split into message lines.
    fn bdat_bytes(&mut self, ts: Timestamp, mut bytes: &[u8], out: &mut dyn Emit) {
        while let Some(nl) = bytes.iter().position(|b| *b == b'\n') {
            let mut line = std::mem::take(&mut self.bdat_line);
            line.extend_from_slice(&bytes[..nl]);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            self.mail_line(ts, &line, out);
            bytes = &bytes[nl + 1..];
        }
        if self.bdat_line.len() + bytes.len() > MAX_LINE {
            let line = std::mem::take(&mut self.bdat_line);
            self.mail_line(ts, &line, out);
        }
        self.bdat_line.extend_from_slice(bytes);
    }
}

fn strip_orcpt(addr: &[u8]) -> Vec<u8> {
    let needle = b"ORCPT=rfc822";
    match addr.windows(needle.len()).position(|w| w == needle) {
        Some(i) => {
            let mut out = addr[..i].to_vec();
            let rest = &addr[i + needle.len()..];
            out.extend_from_slice(rest.strip_prefix(b";").unwrap_or(rest));
            out
        }
        None => addr.to_vec(),
    }
}

impl Analyzer for SmtpAnalyzer {
    fn data(&mut self, ts: Timestamp, dir: Direction, data: &[u8], out: &mut dyn Emit) {
        if let Mode::Tls(tls) = &mut self.mode {
            tls.data(ts, dir, data, out);
            return;
        }
        if matches!(self.mode, Mode::Stopped) {
            return;
        }
        match dir {
            Direction::Orig => {
                self.orig.extend(data);
                self.client_data(ts, out);
            }
            Direction::Resp => {
                self.resp.extend(data);
                while let Some(line) = self.resp.line(MAX_LINE) {
                    self.reply(ts, &line.text, out);
                    if matches!(self.mode, Mode::Tls(_) | Mode::Stopped) {
                        break;
                    }
                }
                // A reply may have let the client's buffered lines through (DATA refused).
                self.client_data(ts, out);
            }
        }
    }

    fn gap(&mut self, ts: Timestamp, dir: Direction, len: u64, out: &mut dyn Emit) {
        if let Mode::Tls(tls) = &mut self.mode {
            tls.gap(ts, dir, len, out);
            return;
        }
        match dir {
            Direction::Resp => self.resp.clear(),
            Direction::Orig => {
                // Zeek ends the message at a gap in its data (the rest is lost) and goes
                // back to reading commands.
                let partial = match self.mode {
                    Mode::Bdat { remaining, .. } => {
                        self.bdat_undelivered = remaining;
                        std::mem::take(&mut self.bdat_line)
                    }
                    Mode::Data | Mode::DataPending => self.orig.take_all(),
                    _ => Vec::new(),
                };
                self.orig.clear();
                self.line_cut = false;
                let in_message = matches!(
                    self.mode,
                    Mode::Bdat { .. } | Mode::Data | Mode::DataPending
                );
                let mut events = Vec::new();
                if let Some(m) = self.mail.as_mut() {
                    m.gap(&partial, &mut events);
                }
                self.mime_events(ts, events, out);
                if in_message {
                    self.file_gap(ts, len, out);
                }
                if in_message || self.bdat_open {
                    self.end_mail(ts, out);
                    self.bdat_open = false;
                    self.mode = Mode::Command;
                }
            }
        }
    }

    fn finish(&mut self, ts: Timestamp, out: &mut dyn Emit) {
        match &mut self.mode {
            Mode::Tls(tls) => tls.finish(ts, out),
            Mode::Bdat { remaining, .. } if *remaining > 0 => self.bdat_undelivered = *remaining,
            _ => {}
        }
        self.bdat_abandoned(ts, out);
        // SMTP_Analyzer::Done ends an unfinished message, and with it its open file.
        if self.mail.is_some() {
            self.end_mail(ts, out);
        }
        self.message(ts, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Transport;
    use crate::proto::testkit::{conn, Collect};
    use proptest::prelude::*;

    fn run(steps: &[(Direction, &[u8])]) -> Collect {
        let mut a = SmtpAnalyzer::new(conn(Transport::Tcp, 25));
        let mut out = Collect::default();
        for (i, (dir, data)) in steps.iter().enumerate() {
            a.data(Timestamp(i as f64), *dir, data, &mut out);
        }
        a.finish(Timestamp(100.0), &mut out);
        out
    }

    #[test]
    fn one_message_with_headers() {
        let out = run(&[
            (Direction::Resp, b"220 mx ESMTP\r\n"),
            (Direction::Orig, b"EHLO client\r\n"),
            (Direction::Resp, b"250-mx\r\n250 PIPELINING\r\n"),
            (Direction::Orig, b"MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\n"),
            (Direction::Resp, b"250 ok\r\n250 ok\r\n354 go\r\n"),
            (Direction::Orig, b"From: A <a@x.org>\r\nTo: B <b@y.org>\r\nSubject: hi\r\nReceived: from h ([192.0.2.9])\r\n\r\nbody\r\n..dots\r\n.\r\n"),
            (Direction::Resp, b"250 queued\r\n"),
            (Direction::Orig, b"QUIT\r\n"),
            (Direction::Resp, b"221 bye\r\n"),
        ]);
        let rows = out.rows();
        assert_eq!(rows.len(), 1, "{rows:?}");
        let cols: Vec<&str> = rows[0].split('\t').collect();
        assert_eq!(&cols[..4], ["1", "client", "a@x.org", "b@y.org"]);
        assert_eq!(cols[5], "A <a@x.org>");
        assert_eq!(cols[11], "hi");
        assert_eq!(cols[15], "250 queued");
        assert_eq!(cols[16], "10.0.0.2,10.0.0.1,192.0.2.9");
        assert!(cols[19].starts_with('F'));
        assert_eq!(out.services, vec!["smtp"]);
    }

    #[test]
    fn bdat_chunks_form_one_message() {
        let out = run(&[
            (
                Direction::Orig,
                b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 14\r\nSubject: one\r\n",
            ),
            (Direction::Resp, b"250 ok\r\n250 ok\r\n250 chunk\r\n"),
            (Direction::Orig, b"BDAT 7 LAST\r\n\r\nbody\r\n"),
            (Direction::Resp, b"250 queued\r\n"),
            (
                Direction::Orig,
                b"MAIL FROM:<c@x>\r\nRCPT TO:<d@y>\r\nBDAT 5\r\nX: 1\n",
            ),
            (Direction::Orig, b"QUIT\r\n"),
        ]);
        let rows = out.rows();
        assert_eq!(rows.len(), 2, "{rows:?}");
        let first: Vec<&str> = rows[0].split('\t').collect();
        assert_eq!((first[0], first[11], first[15]), ("1", "one", "250 queued"));
        assert!(first[19].starts_with('F'));
        assert_eq!(out.weirds, vec!["smtp_missing_bdat_last_chunk"]);
    }

    #[test]
    fn rcpt_without_mail_is_invalid_once() {
        let out = run(&[(
            Direction::Orig,
            b"HELO x\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\n",
        )]);
        assert_eq!(out.weirds, vec!["smtp_mail_transaction_invalid"]);
    }

    proptest! {
        #[test]
        fn arbitrary_streams_never_panic(
            chunks in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..200)), 0..16),
            gap in any::<bool>(),
        ) {
            let mut a = SmtpAnalyzer::new(conn(Transport::Tcp, 25));
            let mut out = Collect::default();
            a.data(Timestamp(0.0), Direction::Orig, b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 300\r\n", &mut out);
            for (orig, data) in chunks {
                let dir = if orig { Direction::Orig } else { Direction::Resp };
                a.data(Timestamp(1.0), dir, &data, &mut out);
                if gap {
                    a.gap(Timestamp(1.0), dir, 5, &mut out);
                }
            }
            a.finish(Timestamp(2.0), &mut out);
        }
    }
}
