//! A body of type `message/*` (MIME's `CONTENT_TYPE_MESSAGE`) as Zeek's HTTP analyzer reads
//! it: as lines (`HTTP_Entity::SubmitAllHeaders` sets a delivery size, never plain delivery),
//! each line's content without its end going through the content decoder
//! (`HTTP_Entity::DeliverBody`) and on to a nested MIME entity of depth 1
//! (`MIME_Entity::BeginBody`), whose headers and data are read as `HTTP_Entity::Deliver` and
//! `MIME_Entity::Deliver` read them; when that entity is itself a container, its body is a
//! [`MimeTree`].

use super::encoding::Encoding;
use super::header_rules::value_token;
use super::mime_tree::MimeTree;
use super::part::Part;
use super::zip::Zip;
use crate::proto::content_line::{Byte, LineEnds};

/// Longest raw line; a longer run is handed on as a line of its own.
const MAX_LINE: usize = 16 * 1024;
/// Longest header kept of the nested entity (its continuation lines are dropped beyond it).
const MAX_HEADER: usize = 16 * 1024;
/// Decoded bytes produced per body before decoding stops (decompression bombs).
const MAX_DECODED: u64 = 256 * 1024 * 1024;

/// A weird, its `addl` and the analyzer that raises it.
type Weird = (&'static str, Option<String>, &'static str);

pub struct Nested {
    /// The raw line being read.
    line: Vec<u8>,
    /// Raw bytes still to hand on as they are (`ContentLine_Analyzer::SetPlainDelivery`, set
    /// by a nested entity with a Content-Length).
    plain: u64,
    /// Zeek's `expect_data_length` for a body with a Content-Length: each line counts its
    /// length plus 2 for its end (`HTTP_Entity::Deliver`), and the entity ends at 0.
    expect: Option<i64>,
    /// The decompressor: each piece of its output reaches the nested entity as a delivery of
    /// its own (`HTTP_Entity::UncompressedOutput`).
    inflate: Option<Box<Zip>>,
    /// Decoding stopped at the decoded size limit.
    full: bool,
    /// The top-level entity's `body_length` (`HTTP_Entity::DeliverBodyClear`).
    body_len: u64,
    child: Child,
    ended: bool,
    weirds: Vec<Weird>,
    limit_reached: bool,
}

impl Nested {
    pub fn new(encoding: Encoding, content_length: Option<u64>) -> Self {
        Nested {
            line: Vec::new(),
            plain: 0,
            expect: content_length.map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
            inflate: (encoding != Encoding::Identity).then(Box::default),
            full: false,
            body_len: 0,
            child: Child::default(),
            ended: false,
            weirds: Vec::new(),
            limit_reached: false,
        }
    }

    pub fn body_len(&self) -> u64 {
        self.body_len
    }

    /// The weirds raised since the last call.
    pub fn take_weirds(&mut self) -> Vec<Weird> {
        std::mem::take(&mut self.weirds)
    }

    /// Reads raw body bytes as `ContentLine_Analyzer::DoDeliver` splits them, through the
    /// direction's `ends`; returns how many of them the entity took, fewer when its count of
    /// lines ended it first.
    pub fn feed(&mut self, data: &[u8], ends: &mut LineEnds) -> usize {
        let mut i = 0;
        while i < data.len() {
            let b = data[i];
            if ends.swallows(b) {
                i += 1;
                continue;
            }
            if self.ended {
                return i;
            }
            if self.plain > 0 {
                let n = data
                    .len()
                    .min(i + usize::try_from(self.plain).unwrap_or(usize::MAX));
                self.plain -= (n - i) as u64;
                ends.plain();
                self.deliver(&data[i..n], false);
                i = n;
                continue;
            }
            match ends.byte(b) {
                Byte::Swallowed => {}
                Byte::End => self.end_line(),
                Byte::Data => {
                    self.line.push(b);
                    if self.line.len() >= MAX_LINE {
                        self.end_line();
                    }
                }
            }
            i += 1;
        }
        data.len()
    }

    /// A line is still open.
    pub fn line_open(&self) -> bool {
        !self.line.is_empty()
    }

    /// Ends the open line as if a line end followed it (`ContentLine_Analyzer::DeliverStream`
    /// at the delivery size, `EndpointEOF` at the end of the stream).
    pub fn end_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        if !self.ended {
            self.deliver(&line, true);
        }
    }

    /// `HTTP_Entity::Deliver` for a line (`crlf`) or plain data of the top-level entity.
    fn deliver(&mut self, line: &[u8], crlf: bool) {
        let end = if crlf { 2 } else { 0 };
        match self.inflate.take() {
            Some(mut z) => {
                if !self.full {
                    if let Some(name) = z.deliver(line, &mut |piece| self.clear_piece(piece)) {
                        self.weirds.push((name, None, "ZIP"));
                    }
                }
                self.inflate = Some(z);
            }
            None => {
                self.body_len += line.len() as u64 + end;
                self.hand_to_child(line, crlf);
            }
        }
        if let Some(e) = self.expect.as_mut() {
            *e -= i64::try_from(line.len() as u64 + end).unwrap_or(i64::MAX);
            if *e <= 0 {
                self.finish();
            }
        }
    }

    /// `HTTP_Entity::DeliverBodyClear` for a piece of the decompressor's output, without a
    /// line end.
    fn clear_piece(&mut self, piece: &[u8]) {
        if self.full || self.body_len + piece.len() as u64 > MAX_DECODED {
            self.full = true;
            return;
        }
        self.body_len += piece.len() as u64;
        self.hand_to_child(piece, false);
    }

    /// `MIME_Entity::NewDataLine` of the top-level entity: on to the nested one, whose end of
    /// headers may switch to plain delivery.
    fn hand_to_child(&mut self, data: &[u8], crlf: bool) {
        if let Some(plain) = self.child.deliver(data, crlf, &mut self.weirds) {
            self.plain = plain;
        }
        if let Some(tree) = self.child.tree.as_mut() {
            for depth in tree.take_refused() {
                // Analyzer::LimitReachedWeird
                let addl = Some(depth.to_string());
                self.weirds.push(("exceeded_mime_max_depth", addl, "HTTP"));
                self.limit_reached = true;
            }
        }
    }

    /// A limit cut the analysis short since the last call (`Analyzer::LimitReachedWeird`).
    pub fn take_limit_reached(&mut self) -> bool {
        std::mem::take(&mut self.limit_reached)
    }

    /// `HTTP_Entity::EndOfData`: the decompressor hands on what it holds, then the nested
    /// entity ends.
    pub fn finish(&mut self) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        // ZIP_Analyzer::Done: what the decompressor still holds is not inflated.
        self.inflate = None;
        self.child.finish(&mut self.weirds);
    }

    /// The nested entity's data, a file of its own (`MIME_Entity::SubmitData`), or the
    /// leaves of its tree.
    pub fn take_parts(&mut self) -> Vec<Part> {
        let mut child = std::mem::take(&mut self.child);
        if let Some(tree) = child.tree.as_mut() {
            return tree.take_parts();
        }
        (child.data_len > 0)
            .then_some(Part {
                filename: None,
                head: child.head,
                len: child.data_len,
                range: None,
            })
            .into_iter()
            .collect()
    }
}

/// The nested entity (depth 1).
#[derive(Default)]
struct Child {
    /// `MIME_Entity::in_header` is false: the headers ended.
    in_body: bool,
    /// The header being read (`current_header_line`).
    header: Option<Vec<u8>>,
    /// Its Content-Length, and the bytes still expected after its headers.
    content_length: Option<u64>,
    expect: Option<u64>,
    /// The type is `message` or `multipart`, which does not take a Content-Length.
    container: bool,
    /// Its `Content-Type`, and the entities in its body when it is a container.
    content_type: Vec<u8>,
    tree: Option<Box<MimeTree>>,
    ended: bool,
    data_len: u64,
    head: Vec<u8>,
}

impl Child {
    /// `HTTP_Entity::Deliver` and `MIME_Entity::Deliver` of the nested entity; returns the
    /// plain delivery it sets, if it sets one.
    fn deliver(&mut self, data: &[u8], crlf: bool, weirds: &mut Vec<Weird>) -> Option<u64> {
        if self.ended {
            return None;
        }
        if let Some(left) = self.expect {
            // A Content-Length body: its data without line ends; at its end plain delivery
            // stops (`SetPlainDelivery(0)`).
            let left = left - (data.len() as u64).min(left);
            self.expect = Some(left);
            self.data(data);
            if left == 0 {
                self.ended = true;
                return Some(0);
            }
            return None;
        }
        if let Some(tree) = self.tree.as_mut() {
            tree.deliver(data, crlf);
            return None;
        }
        if self.in_body {
            // MIME_Entity::DecodeBinary: the line and its implicit CRLF.
            self.data(data);
            if crlf {
                self.data(b"\r\n");
            }
            return None;
        }
        if !crlf {
            weirds.push(("http_no_crlf_in_header_list", None, "HTTP"));
        }
        match data.first() {
            None | Some(0) => {
                self.finish_header(weirds);
                self.in_body = true;
                self.tree = MimeTree::new(1, &self.content_type).map(Box::new);
                // HTTP_Entity::SubmitAllHeaders: a Content-Length body is plain data.
                match self.content_length.filter(|_| !self.container) {
                    Some(0) => self.ended = true,
                    Some(n) => {
                        self.expect = Some(n);
                        return Some(n);
                    }
                    None => {}
                }
            }
            Some(b' ' | b'\t') if self.header.is_some() => {
                if let Some(h) = self.header.as_mut() {
                    let room = MAX_HEADER.saturating_sub(h.len());
                    h.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            Some(_) => {
                self.finish_header(weirds);
                let text = data.trim_ascii_start();
                self.header = Some(text[..text.len().min(MAX_HEADER)].to_vec());
            }
        }
        None
    }

    /// `HTTP_Entity::SubmitHeader`: below the top level a Transfer-Encoding is a weird, not
    /// a framing.
    fn finish_header(&mut self, weirds: &mut Vec<Weird>) {
        let Some(h) = self.header.take() else {
            return;
        };
        let Some(name) = field_name(&h) else {
            return;
        };
        let value = &h[h.iter().position(|&b| b == b':').map_or(h.len(), |i| i + 1)..];
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            weirds.push(("HTTP_nested_transfer_encoding_header", None, "HTTP"));
        } else if name.eq_ignore_ascii_case(b"content-length") {
            // A value that is not a number counts as 0 (`HTTP_bad_content_length`).
            let token = value_token(value).map_or(&b""[..], |(t, _)| t);
            let n = std::str::from_utf8(token).ok().and_then(|t| t.parse().ok());
            self.content_length = Some(n.unwrap_or(0));
        } else if name.eq_ignore_ascii_case(b"content-type") {
            let token = value_token(value).map_or(&b""[..], |(t, _)| t);
            self.container =
                token.eq_ignore_ascii_case(b"message") || token.eq_ignore_ascii_case(b"multipart");
            self.content_type = value.trim_ascii().to_vec();
        }
    }

    /// `MIME_Entity::EndOfData`: a header still open is submitted.
    fn finish(&mut self, weirds: &mut Vec<Weird>) {
        if !self.in_body {
            self.finish_header(weirds);
        }
        if let Some(tree) = self.tree.as_mut() {
            tree.finish();
        }
    }

    fn data(&mut self, data: &[u8]) {
        self.data_len += data.len() as u64;
        crate::file_magic::keep_bof(&mut self.head, data);
    }
}

/// `MIME_get_field_name`: the name before the colon, of printable characters.
fn field_name(header: &[u8]) -> Option<&[u8]> {
    let text = header.trim_ascii_start();
    let end = text
        .iter()
        .position(|&b| !(33..=126).contains(&b) || b == b':')
        .unwrap_or(text.len());
    let (name, rest) = text.split_at(end);
    (!name.is_empty() && rest.trim_ascii_start().first() == Some(&b':')).then_some(name)
}

#[cfg(test)]
mod tests;
