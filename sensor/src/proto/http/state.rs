//! Per-connection HTTP state, following Zeek's `HTTP::State`: requests and replies are paired
//! by their position (`current_request`, `current_response`), a row is written when its reply
//! ends, and whatever is left is written when the connection ends.

use std::collections::{BTreeMap, VecDeque};

use super::body::{Body, Framing, Step};
use super::encoding::Encoding;
use super::files::{self, BodyFile};
use super::header_rules;
use super::log::HttpInfo;
use super::parser::{self, RequestLine, StatusLine};
use super::part;
use super::websocket::WebSocket;
use crate::flow::{ConnInfo, Direction, Timestamp, TunnelType};
use crate::proto::content_line::ContentLines;
use crate::proto::pia::InnerStream;
use crate::proto::{Analyzer, Emit};
use crate::uid::UidGen;

/// Longest request, status or header line.
const MAX_LINE: usize = 16 * 1024;
/// Headers read per message; later ones are skipped.
const MAX_HEADERS: usize = 256;
/// Zeek's `HTTP::max_files_orig` and `HTTP::max_files_resp`.
const MAX_FILES: usize = 15;
/// Zeek's `HTTP::max_pending_requests`: more open transactions are written out as they are.
const MAX_PENDING: usize = 100;

/// What Zeek's proxy-header option lists (`HTTP::proxy_headers`).
const PROXY_HEADERS: &[&str] = &[
    "FORWARDED",
    "X-FORWARDED-FOR",
    "X-FORWARDED-FROM",
    "CLIENT-IP",
    "VIA",
    "XROXY-CONNECTION",
    "PROXY-CONNECTION",
];

/// A request still waiting for its final reply.
#[derive(Debug, Clone)]
struct RequestMeta {
    method: String,
}

/// The head of the message being read.
#[derive(Debug, Default)]
struct Head {
    /// The last header line, kept until the next line shows it has no continuation.
    header: Option<(String, Vec<u8>)>,
    headers: usize,
    content_length: Option<u64>,
    chunked: bool,
    encoding: Option<Encoding>,
    /// A multipart body's boundary.
    boundary: Option<Vec<u8>>,
    /// The Content-Type is `message/*` (see `nested`).
    message: bool,
    filename: Option<Vec<u8>>,
    /// A 206 reply's Content-Range: the whole file's length when it names one (Zeek's
    /// `is_partial_content` and `instance_length`).
    partial: Option<Option<u64>>,
    /// The current header had continuation lines (obsolete line folding).
    folded: bool,
    /// An `Expect` header was seen (Zeek's `expect_100_cont`).
    expect_100: bool,
    /// A 206 reply's Content-Range first byte: where its body lies in the file (Zeek's
    /// `offset`).
    range_first: Option<u64>,
    /// A 206 reply's Content-Range length (Zeek's `range_length`).
    range_len: Option<u64>,
    /// When the head ended and the body began.
    body_ts: Option<Timestamp>,
    /// Replies: `Connection: upgrade` and an `Upgrade` protocol were named.
    upgrade_connection: bool,
    /// The `Upgrade` header's protocol, in lower case.
    upgrade_protocol: Option<String>,
    /// Replies: the status code and the request answered.
    status: Option<u16>,
    request: Option<RequestMeta>,
}

enum Phase {
    FirstLine,
    Headers(Head),
    Body(Head, Body),
    /// After a gap or a broken chunk: skip lines until a request or status line.
    Resync,
    /// After a request line that is not HTTP (Zeek's `EXPECT_REQUEST_NOTHING`): the client's
    /// bytes are ignored, while the server's replies are still read.
    Nothing,
}

struct Side {
    buf: ContentLines,
    phase: Phase,
}

impl Side {
    fn new() -> Self {
        Side {
            buf: ContentLines::default(),
            phase: Phase::FirstLine,
        }
    }
}

enum Mode {
    Http,
    /// The client's request was not HTTP: nothing more is analyzed (Zeek's protocol violation).
    Stopped,
    /// After a successful CONNECT: the bytes go to a new protocol detection.
    Tunnel(Box<InnerStream>),
    /// After an upgrade to WebSocket: its frames carry the rest.
    WebSocket(Box<WebSocket>),
}

pub struct HttpAnalyzer {
    conn: ConnInfo,
    fuids: UidGen,
    pending: BTreeMap<u64, HttpInfo>,
    current_request: u64,
    current_response: u64,
    trans_depth: u64,
    orig: Side,
    resp: Side,
    requests: VecDeque<RequestMeta>,
    /// The versions of the last request and reply (Zeek weirds when one side's changes).
    request_version: Option<String>,
    reply_version: Option<String>,
    mode: Mode,
    /// An HTTP/0.9 request was seen: the rest of the server's stream is its reply's body
    /// (Zeek's `EXPECT_REPLY_HTTP09`).
    reply_http09: bool,
    confirmed: bool,
    /// The weirds logged on the connection (see [`weird_once`]).
    weirds_logged: weird_once::Logged,
    /// A reply was begun (Zeek keeps its `reply_message` until the next one replaces it).
    reply_begun: bool,
    /// Zeek's `reply_code`: the status of the reply being read, 0 once it is done.
    reply_code: u16,
    /// The server said `Connection: close` (Zeek's `connection_close`): a body without a
    /// length is then read as plain data rather than lines.
    connection_close: bool,
    /// Payload bytes seen in both directions (`c$orig$size + c$resp$size`).
    payload_bytes: u64,
    /// The TCP connection began without a handshake (`Analyzer::tcp_partial`).
    tcp_partial: bool,
    /// The files of byte-range replies, still open.
    range_files: Vec<range_files::RangeFile>,
}

impl HttpAnalyzer {
    pub fn new(conn: ConnInfo) -> Self {
        HttpAnalyzer {
            fuids: UidGen::for_connection(&conn.uid, 0),
            conn,
            pending: BTreeMap::new(),
            current_request: 0,
            current_response: 0,
            trans_depth: 0,
            orig: Side::new(),
            resp: Side::new(),
            requests: VecDeque::new(),
            request_version: None,
            reply_version: None,
            mode: Mode::Http,
            reply_http09: false,
            confirmed: false,
            weirds_logged: weird_once::Logged::new(),
            reply_begun: false,
            reply_code: 0,
            connection_close: false,
            payload_bytes: 0,
            tcp_partial: false,
            range_files: Vec::new(),
        }
    }

    /// Zeek's `set_state`: the record the current request (or response) belongs to, created
    /// with the next `trans_depth` if there is none.
    fn state(&mut self, dir: Direction, ts: Timestamp) -> &mut HttpInfo {
        let key = match dir {
            Direction::Orig => self.current_request,
            Direction::Resp => self.current_response,
        };
        if !self.pending.contains_key(&key) {
            self.trans_depth += 1;
            let info = HttpInfo::new(ts, self.conn.clone(), self.trans_depth);
            self.pending.insert(key, info);
        }
        self.pending
            .entry(key)
            .or_insert_with(|| HttpInfo::new(ts, self.conn.clone(), 0))
    }

    fn side(&mut self, dir: Direction) -> &mut Side {
        match dir {
            Direction::Orig => &mut self.orig,
            Direction::Resp => &mut self.resp,
        }
    }

    /// The message in `dir` ended: Zeek's `http_message_done` (and `http_end_entity`).
    fn message_done(
        &mut self,
        dir: Direction,
        ts: Timestamp,
        head: &Head,
        body: Option<Body>,
        out: &mut dyn Emit,
    ) {
        if dir == Direction::Resp {
            self.reply_code = 0;
        }
        let mut body = body;
        let (len, files) = match body.as_mut() {
            None => (0, Vec::new()),
            Some(b) => {
                // Decoders hold back output until they finish, so the head is read after.
                b.finish();
                b.emit_weirds(ts, out);
                let whole = b.has_data().then(|| crate::file_magic::detect(b.head()));
                let files: Vec<BodyFile> = match b.take_parts() {
                    // Each part of a multipart body is a file of its own.
                    Some(parts) => parts
                        .into_iter()
                        .map(|p| BodyFile {
                            mime: crate::file_magic::detect(&p.head),
                            logged_mime: crate::file_magic::detect(&p.head),
                            filename: p.filename,
                            seen: p.len,
                            total: None,
                            missing: 0,
                            range: p.range.map(|r| (r.first, r.instance)),
                        })
                        .collect(),
                    None => whole
                        .map(|mime| {
                            let total = files::announced_size(
                                head.encoding,
                                head.partial,
                                head.content_length,
                            );
                            let complete = total.is_some_and(|t| b.seen() + b.missing() >= t);
                            BodyFile {
                                mime: files::file_type(head.range_first, mime),
                                logged_mime: files::logged_type(
                                    head.status,
                                    head.range_first,
                                    b.head().len() >= crate::file_magic::BOF_BUFFER_SIZE
                                        || complete
                                        || b.missing() > 0,
                                    mime,
                                ),
                                filename: head.filename.clone(),
                                seen: b.seen(),
                                total,
                                missing: b.missing(),
                                range: head.range_first.map(|f| (f, head.partial.flatten())),
                            }
                        })
                        .into_iter()
                        .collect(),
                };
                (b.len(), files)
            }
        };
        let start = head.body_ts.unwrap_or(ts);
        let listed: Vec<(String, BodyFile)> = match self.range_file_key(dir, head) {
            Some(key) => self.range_file_data(key, start, ts, files, out),
            None => files
                .into_iter()
                .map(|f| {
                    let fuid = self.fuids.next('F');
                    out.file(f.record(&fuid, &self.conn, dir, start, ts));
                    (fuid, f)
                })
                .collect(),
        };
        let info = self.state(dir, ts);
        let list = match dir {
            Direction::Orig => {
                info.request_body_len = len;
                &mut info.orig_files
            }
            Direction::Resp => {
                info.response_body_len = len;
                &mut info.resp_files
            }
        };
        // entities.zeek stops adding a transaction's fuids (with their file names) and its
        // MIME types at HTTP::max_files_orig / max_files_resp, each list on its own.
        for (fuid, f) in listed {
            if list.fuids.len() < MAX_FILES {
                list.fuids.push(fuid);
                if let Some(name) = f.filename {
                    list.filenames.push(name);
                }
            }
            if let Some(m) = f.logged_mime.filter(|_| list.mime_types.len() < MAX_FILES) {
                list.mime_types.push(m);
            }
        }
        info.in_entity = false;
        if dir == Direction::Orig {
            return;
        }
        let informational = info.status_code.is_some_and(|c| (100..200).contains(&c));
        if informational {
            // HTTP_Analyzer::ReplyMade: a 101 answering the only waiting request with an
            // upgrade switches the connection over; HTTP reads no more of it.
            let upgrade =
                head.status == Some(101) && self.requests.len() == 1 && head.upgrade_connection;
            // `HTTP::upgrade_analyzers` names the analyzer that reads on: WebSocket's.
            match head.upgrade_protocol.as_deref() {
                Some("websocket") if upgrade => {
                    let http = self.continuation();
                    self.mode = Mode::WebSocket(Box::new(WebSocket::new(self.conn.clone(), http)));
                }
                Some(_) if upgrade => self.mode = Mode::Stopped,
                _ => {}
            }
            return;
        }
        if let Some(done) = self.pending.remove(&self.current_response) {
            out.record(Box::new(done));
        }
        // HTTP_Analyzer::DeliverStream: only a 200 to a CONNECT sets up the tunnel.
        let connect = head.request.as_ref().is_some_and(|r| r.method == "CONNECT")
            && head.status == Some(200);
        if connect {
            self.mode = Mode::Tunnel(Box::new(InnerStream::new(&self.conn)));
        }
    }

    /// Runs one direction's state machine over its buffered bytes.
    fn process(&mut self, dir: Direction, ts: Timestamp, out: &mut dyn Emit) {
        loop {
            if !matches!(self.mode, Mode::Http) {
                return;
            }
            let side = self.side(dir);
            let phase = std::mem::replace(&mut side.phase, Phase::FirstLine);
            let next = match phase {
                Phase::Nothing => {
                    let side = self.side(dir);
                    side.buf.clear();
                    side.phase = Phase::Nothing;
                    return;
                }
                Phase::FirstLine | Phase::Resync => {
                    let resync = matches!(phase, Phase::Resync);
                    match self.first_line(dir, ts, resync, out) {
                        Some(p) => p,
                        None => {
                            let side = self.side(dir);
                            side.phase = if resync {
                                Phase::Resync
                            } else {
                                Phase::FirstLine
                            };
                            return;
                        }
                    }
                }
                Phase::Headers(mut head) => {
                    let Some(line) = self.side(dir).buf.line(MAX_LINE) else {
                        self.side(dir).phase = Phase::Headers(head);
                        return;
                    };
                    if line.overflow {
                        out.weird(ts, "contentline_size_exceeded", None);
                    }
                    let continuation = matches!(line.text.first(), Some(b' ' | b'\t'));
                    if continuation && head.header.is_some() {
                        if let Some((_, v)) = head.header.as_mut() {
                            v.push(b' ');
                            v.extend_from_slice(line.text.trim_ascii());
                        }
                        head.folded = true;
                        Phase::Headers(head)
                    } else {
                        if let Some((name, value)) = head.header.take() {
                            self.on_header(dir, ts, &mut head, name, value, out);
                        }
                        if line.text.is_empty() {
                            match Self::framing(dir, &head) {
                                None => {
                                    self.message_done(dir, ts, &head, None, out);
                                    Phase::FirstLine
                                }
                                Some(f) => {
                                    let enc = head.encoding.unwrap_or(Encoding::Identity);
                                    head.body_ts = Some(ts);
                                    {
                                        let boundary = head.boundary.clone();
                                        let lines = f == Framing::UntilEof
                                            && enc == Encoding::Identity
                                            && boundary.is_none()
                                            && !self.connection_close;
                                        let mut body = Body::new(f, enc, boundary);
                                        if head.message && f != Framing::Chunked {
                                            body.nest(enc);
                                        } else if lines {
                                            body.deliver_lines();
                                        }
                                        Phase::Body(head, body)
                                    }
                                }
                            }
                        } else {
                            head.header = parser::parse_header_line(&line.text);
                            Phase::Headers(head)
                        }
                    }
                }
                Phase::Body(head, mut body) => match body.consume(&mut self.side(dir).buf) {
                    Step::More => {
                        self.side(dir).phase = Phase::Body(head, body);
                        return;
                    }
                    Step::Done => {
                        let delivery_ended = self.side(dir).buf.available().is_empty();
                        self.close_delivery(ts, &mut body, delivery_ended, out);
                        self.message_done(dir, ts, &head, Some(body), out);
                        Phase::FirstLine
                    }
                    Step::BadChunk(text) => {
                        out.weird(ts, "HTTP_bad_chunk_size", text);
                        self.message_done(dir, ts, &head, Some(body), out);
                        Phase::Resync
                    }
                },
            };
            self.side(dir).phase = next;
            if matches!(self.mode, Mode::Tunnel(_) | Mode::WebSocket(_)) {
                self.start_tunnel(ts, out);
                return;
            }
        }
    }

    /// Reads a request or status line; `None` when more input is needed.
    fn first_line(
        &mut self,
        dir: Direction,
        ts: Timestamp,
        resync: bool,
        out: &mut dyn Emit,
    ) -> Option<Phase> {
        loop {
            match dir {
                Direction::Orig => {
                    let line = self.orig.buf.line(MAX_LINE)?;
                    if line.text.is_empty() {
                        continue;
                    }
                    match parser::parse_request_line(&line.text) {
                        Ok(rl) if !resync || rl.version.is_some() => {
                            self.on_request(ts, rl, out);
                            return Some(Phase::Headers(Head::default()));
                        }
                        _ if resync => continue,
                        Err(e) => {
                            if e == parser::RequestLineError::BadHttp09 {
                                self.set_request_version(ts, "0.9".into(), out);
                            }
                            out.weird(ts, e.weird(), None);
                            self.violation();
                            return Some(Phase::Nothing);
                        }
                        Ok(_) => continue,
                    }
                }
                Direction::Resp => {
                    if self.reply_http09 && !resync {
                        return Some(self.http09_reply(ts, out));
                    }
                    let line = self.resp.buf.line(MAX_LINE)?;
                    if !line.text.starts_with(b"HTTP/") {
                        // Not a reply we can place (Zeek ignores such lines silently).
                        continue;
                    }
                    match parser::parse_status_line(&line.text) {
                        Some(sl) => return Some(Phase::Headers(self.on_reply(ts, sl, out))),
                        None if !resync => out.weird(ts, "bad_HTTP_reply", None),
                        None => {}
                    }
                }
            }
        }
    }

    /// The reply to an HTTP/0.9 request: no status line, and the rest of the stream is
    /// its body.
    fn http09_reply(&mut self, ts: Timestamp, out: &mut dyn Emit) -> Phase {
        let sl = StatusLine {
            version: "0.9".into(),
            code: 0,
            reason: b"<empty>".to_vec(),
        };
        let head = self.on_reply(ts, sl, out);
        Phase::Body(head, Body::new(Framing::UntilEof, Encoding::Identity, None))
    }

    /// Feeds a segment to the body being read without buffering it, when nothing is
    /// buffered before it; returns the bytes after the body (or all of them if this does not
    /// apply).
    fn body_direct<'a>(
        &mut self,
        dir: Direction,
        ts: Timestamp,
        data: &'a [u8],
        out: &mut dyn Emit,
    ) -> &'a [u8] {
        let side = self.side(dir);
        if !side.buf.available().is_empty() {
            return data;
        }
        let Phase::Body(_, body) = &mut side.phase else {
            return data;
        };
        let Some((used, step)) = body.consume_direct(data, side.buf.ends()) else {
            return data;
        };
        if step == Step::Done {
            if let Phase::Body(head, mut body) =
                std::mem::replace(&mut side.phase, Phase::FirstLine)
            {
                self.close_delivery(ts, &mut body, used == data.len(), out);
                self.message_done(dir, ts, &head, Some(body), out);
            }
        }
        &data[used..]
    }

    fn finish_side(&mut self, dir: Direction, ts: Timestamp, out: &mut dyn Emit) {
        let phase = std::mem::replace(&mut self.side(dir).phase, Phase::FirstLine);
        match phase {
            Phase::Headers(mut head) => {
                if let Some((name, value)) = head.header.take() {
                    self.on_header(dir, ts, &mut head, name, value, out);
                }
                self.message_done(dir, ts, &head, None, out);
            }
            Phase::Body(head, mut body) => {
                body.end_of_stream();
                self.message_done(dir, ts, &head, Some(body), out)
            }
            Phase::FirstLine | Phase::Resync | Phase::Nothing => {}
        }
    }
}

impl HttpAnalyzer {
    fn on_data(&mut self, ts: Timestamp, dir: Direction, data: &[u8], out: &mut dyn Emit) {
        self.payload_bytes += data.len() as u64;
        // HTTP_Analyzer::DeliverStream ignores a connection that began without a handshake.
        if self.tcp_partial {
            return;
        }
        match self.mode {
            Mode::Http => {
                let rest = self.body_direct(dir, ts, data, out);
                if !matches!(self.mode, Mode::Http) {
                    return self.on_data(ts, dir, rest, out);
                }
                self.side(dir).buf.extend(rest);
                self.process(dir, ts, out);
                self.line_weirds(dir, ts, out);
                if let Phase::Body(_, body) = &mut self.side(dir).phase {
                    body.emit_weirds(ts, out);
                }
            }
            Mode::Tunnel(_) | Mode::WebSocket(_) => self.tunnel_data(ts, dir, data, out),
            Mode::Stopped => {}
        }
    }

    fn on_gap(&mut self, ts: Timestamp, dir: Direction, len: u64, out: &mut dyn Emit) {
        if let Some(inner) = self.carried() {
            inner.gap(ts, dir, len, out);
            return;
        }
        let phase = std::mem::replace(&mut self.side(dir).phase, Phase::FirstLine);
        let next = match phase {
            Phase::Body(head, mut body)
                if matches!(body.framing(), Framing::Length(_) | Framing::UntilEof)
                    && body.len() > 0 =>
            {
                match body.gap(len) {
                    Step::Done => {
                        self.message_done(dir, ts, &head, Some(body), out);
                        Phase::FirstLine
                    }
                    _ => Phase::Body(head, body),
                }
            }
            Phase::Headers(head) | Phase::Body(head, _) => {
                self.message_done(dir, ts, &head, None, out);
                self.side(dir).buf.clear();
                Phase::Resync
            }
            Phase::Nothing => Phase::Nothing,
            Phase::FirstLine | Phase::Resync => {
                self.side(dir).buf.clear();
                Phase::Resync
            }
        };
        self.side(dir).phase = next;
        self.process(dir, ts, out);
        self.line_weirds(dir, ts, out);
    }

    /// `ContentLine_Analyzer::DoDeliverOnce`: a byte kept in a line right after a lone CR.
    fn line_weirds(&mut self, dir: Direction, ts: Timestamp, out: &mut dyn Emit) {
        if self.side(dir).buf.ends().take_single_cr() {
            out.weird_from(ts, "line_terminated_with_single_CR", None, "CONTENTLINE");
        }
    }

    fn on_finish(&mut self, ts: Timestamp, out: &mut dyn Emit) {
        if let Some(inner) = self.carried() {
            inner.finish(ts, out);
        }
        self.finish_side(Direction::Resp, ts, out);
        self.finish_side(Direction::Orig, ts, out);
        self.close_range_files(out);
        let pending = std::mem::take(&mut self.pending);
        for (key, info) in pending {
            if key != 0 {
                out.record(Box::new(info));
            }
        }
    }
}

impl HttpAnalyzer {
    /// Runs `f` with the weirds it raises filtered as Zeek's weird framework does.
    fn weird_once(&mut self, out: &mut dyn Emit, f: impl FnOnce(&mut Self, &mut dyn Emit)) {
        let mut logged = std::mem::take(&mut self.weirds_logged);
        let mut once = weird_once::WeirdOnce {
            inner: out,
            logged: &mut logged,
        };
        f(self, &mut once);
        self.weirds_logged = logged;
    }
}

impl Analyzer for HttpAnalyzer {
    fn data(&mut self, ts: Timestamp, dir: Direction, data: &[u8], out: &mut dyn Emit) {
        self.weird_once(out, |a, out| a.on_data(ts, dir, data, out));
    }

    fn gap(&mut self, ts: Timestamp, dir: Direction, len: u64, out: &mut dyn Emit) {
        self.weird_once(out, |a, out| a.on_gap(ts, dir, len, out));
    }

    fn finish(&mut self, ts: Timestamp, out: &mut dyn Emit) {
        self.weird_once(out, |a, out| a.on_finish(ts, out));
    }

    fn tcp_partial(&mut self, partial: bool) {
        self.tcp_partial = partial;
    }
}

mod carried;
mod delivery_size;
mod framing;
mod heads;
mod range_files;
mod violation;
mod weird_once;

#[cfg(test)]
mod connect;
#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod gaps;
#[cfg(test)]
mod line_ends;
#[cfg(test)]
mod multipart_bodies;
#[cfg(test)]
mod request_states;
#[cfg(test)]
mod tests;
