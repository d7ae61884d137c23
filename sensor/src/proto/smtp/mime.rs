//! A bounded MIME reader for mail messages: the top-level headers (which smtp.log keeps),
//! nested multipart and message/rfc822 entities, and which leaf entities carry data (each
//! such entity is a file, as in Zeek's files framework) with its decoded bytes.

use super::decode::{Decoder, TransferEncoding};
use crate::proto::http::filename::entity_filename;
use crate::proto::http::part::boundary_of;

/// Nesting depth followed; deeper entities are treated as opaque data.
const MAX_DEPTH: usize = 16;
/// Headers kept per entity.
const MAX_HEADERS: usize = 256;
/// Bytes of one header value (with its continuation lines).
const MAX_HEADER_VALUE: usize = 16 * 1024;

/// What the reader reports while it consumes lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MimeEvent {
    /// A header of the top-level entity: upper-cased name and value.
    Header(String, Vec<u8>),
    /// An entity began (the top-level one included).
    BeginEntity,
    /// A leaf entity delivered its first data bytes: a new file, with the file name its
    /// headers gave (`SMTP::Entity$filename`).
    NewFile(Option<Vec<u8>>),
    /// Decoded bytes of the open file.
    Data(Vec<u8>),
    /// The open file's entity ended (`MIME_Mail::EndEntity` ends the file).
    EndFile,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Leaf,
    Multipart(Vec<u8>),
    Message,
}

#[derive(Debug)]
struct Entity {
    in_header: bool,
    header: Option<(String, Vec<u8>)>,
    headers: usize,
    kind: Kind,
    /// Decoded bytes were delivered: the entity is a file (`MIME_Mail::SubmitData` creates it
    /// with the first non-empty data).
    file: bool,
    /// After a gap: a new file starts with the next data.
    split: bool,
    /// A multipart closed by its final boundary; later lines are epilogue.
    closed: bool,
    /// The parent is a multipart (its body's last line end belongs to the boundary).
    in_multipart: bool,
    decoder: Decoder,
    filename: Option<Vec<u8>>,
}

impl Entity {
    fn new(in_multipart: bool) -> Self {
        Entity {
            in_header: true,
            header: None,
            headers: 0,
            kind: Kind::Leaf,
            file: false,
            split: false,
            closed: false,
            in_multipart,
            decoder: Decoder::new(TransferEncoding::Identity, in_multipart),
            filename: None,
        }
    }
}

#[derive(Debug)]
pub struct Mime {
    /// The top-level entity first, then the open child of each level.
    stack: Vec<Entity>,
    /// The last delivery was a piece of a line that goes on.
    continuing: bool,
}

impl Default for Mime {
    fn default() -> Self {
        Self::new()
    }
}

impl Mime {
    pub fn new() -> Self {
        Mime {
            stack: vec![Entity::new(false)],
            continuing: false,
        }
    }

    /// The events for the start of a message (the top-level entity begins).
    pub fn begin(&self) -> Vec<MimeEvent> {
        vec![MimeEvent::BeginEntity]
    }

    /// The file name the innermost open entity's headers gave.
    pub fn filename(&self) -> Option<Vec<u8>> {
        self.stack.last().and_then(|e| e.filename.clone())
    }

    /// Feeds one line (without its CRLF).
    pub fn line(&mut self, line: &[u8], out: &mut Vec<MimeEvent>) {
        self.deliver(0, line, true, out);
        self.continuing = false;
    }

    /// Feeds a piece of a line that goes on: a header value or body continues with the next
    /// delivery, which is no boundary and no new header.
    pub fn part(&mut self, piece: &[u8], out: &mut Vec<MimeEvent>) {
        self.deliver(0, piece, false, out);
        self.continuing = true;
    }

    /// The message ended: a header still waiting for continuation lines is complete.
    pub fn end(&mut self, out: &mut Vec<MimeEvent>) {
        for (level, e) in self.stack.iter_mut().enumerate() {
            if let Some((name, value)) = e.header.take() {
                Self::finish_header(e, level == 0, name, value, out);
            }
        }
        self.pop_to(0, out);
    }

    /// Ends the entities above `len` levels, innermost first: the rest of a base64 group is
    /// decoded (`FinishDecodeBase64`) and an entity's file ends.
    fn pop_to(&mut self, len: usize, out: &mut Vec<MimeEvent>) {
        while self.stack.len() > len {
            let Some(mut e) = self.stack.pop() else {
                return;
            };
            let mut bytes = Vec::new();
            e.decoder.finish(&mut bytes);
            Self::submit(&mut e, bytes, out);
            if e.file {
                out.push(MimeEvent::EndFile);
            }
        }
    }

    /// Decoded bytes of a leaf: the first (or the first after a gap) start a file.
    fn submit(e: &mut Entity, bytes: Vec<u8>, out: &mut Vec<MimeEvent>) {
        if bytes.is_empty() {
            return;
        }
        if !e.file || e.split {
            if e.file {
                out.push(MimeEvent::EndFile);
            }
            e.file = true;
            e.split = false;
            out.push(MimeEvent::NewFile(e.filename.clone()));
        }
        out.push(MimeEvent::Data(bytes));
    }

    /// Data was lost after `partial` (an unterminated line): header parsing of the current
    /// entity stops, the partial line counts as body, and the next data starts a new file.
    pub fn gap(&mut self, partial: &[u8], out: &mut Vec<MimeEvent>) {
        if let Some(e) = self.stack.last_mut() {
            e.in_header = false;
            e.header = None;
        }
        if !partial.is_empty() {
            let level = self.stack.len() - 1;
            self.deliver(level, partial, true, out);
        }
        if let Some(e) = self.stack.last_mut() {
            e.split = true;
        }
    }

    /// `ends`: a line end follows `line` (else it is a piece of a longer line).
    fn deliver(&mut self, level: usize, line: &[u8], ends: bool, out: &mut Vec<MimeEvent>) {
        let continuing = self.continuing;
        let Some(e) = self.stack.get_mut(level) else {
            return;
        };
        if e.in_header {
            match e.header.as_mut() {
                Some((_, v)) if continuing => {
                    if v.len() + line.len() <= MAX_HEADER_VALUE {
                        v.extend_from_slice(line);
                    }
                }
                _ if continuing => {}
                _ => self.header_line(level, line, out),
            }
            return;
        }
        match e.kind.clone() {
            Kind::Multipart(boundary) => {
                if e.closed {
                    return;
                }
                if let Some(rest) = line
                    .strip_prefix(b"--")
                    .and_then(|l| l.strip_prefix(&boundary[..]))
                    .filter(|_| !continuing)
                {
                    let rest = rest.trim_ascii();
                    if rest.is_empty() {
                        self.pop_to(level + 1, out);
                        self.begin_child(out);
                        return;
                    }
                    if rest == b"--" {
                        self.pop_to(level + 1, out);
                        if let Some(e) = self.stack.get_mut(level) {
                            e.closed = true;
                        }
                        return;
                    }
                }
                if self.stack.len() > level + 1 {
                    self.deliver(level + 1, line, ends, out);
                }
            }
            Kind::Message => {
                if self.stack.len() > level + 1 {
                    self.deliver(level + 1, line, ends, out);
                }
            }
            Kind::Leaf => {
                let mut bytes = Vec::new();
                if ends {
                    e.decoder.line(line, &mut bytes);
                } else {
                    e.decoder.part(line, &mut bytes);
                }
                Self::submit(e, bytes, out);
            }
        }
    }

    fn begin_child(&mut self, out: &mut Vec<MimeEvent>) {
        if self.stack.len() < MAX_DEPTH {
            let in_multipart = self
                .stack
                .last()
                .is_some_and(|p| matches!(p.kind, Kind::Multipart(_)));
            self.stack.push(Entity::new(in_multipart));
            out.push(MimeEvent::BeginEntity);
        }
    }

    fn header_line(&mut self, level: usize, line: &[u8], out: &mut Vec<MimeEvent>) {
        let top = level == 0;
        let Some(e) = self.stack.get_mut(level) else {
            return;
        };
        if matches!(line.first(), Some(b' ' | b'\t')) {
            if let Some((_, v)) = e.header.as_mut() {
                if v.len() + line.len() <= MAX_HEADER_VALUE {
                    v.extend_from_slice(line);
                }
                return;
            }
        }
        if let Some((name, value)) = e.header.take() {
            Self::finish_header(e, top, name, value, out);
        }
        if line.is_empty() {
            e.in_header = false;
            if e.kind == Kind::Message {
                self.begin_child(out);
            }
            return;
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            return;
        };
        let name = String::from_utf8_lossy(line[..colon].trim_ascii()).to_ascii_uppercase();
        let value = &line[colon + 1..];
        let start = value
            .iter()
            .position(|b| *b != b' ' && *b != b'\t')
            .unwrap_or(value.len());
        e.header = Some((name, value[start..].to_vec()));
    }

    fn finish_header(
        e: &mut Entity,
        top: bool,
        name: String,
        value: Vec<u8>,
        out: &mut Vec<MimeEvent>,
    ) {
        e.headers += 1;
        if e.headers > MAX_HEADERS {
            return;
        }
        if name == "CONTENT-TYPE" {
            let lower = value.to_ascii_lowercase();
            if lower.starts_with(b"multipart/") {
                if let Some(b) = boundary_of(&value) {
                    e.kind = Kind::Multipart(b);
                }
            } else if lower.starts_with(b"message/") {
                e.kind = Kind::Message;
            }
        }
        if name == "CONTENT-TRANSFER-ENCODING" {
            e.decoder = Decoder::new(TransferEncoding::parse(&value), e.in_multipart);
        }
        if let Some(f) = entity_filename(&name, &value) {
            e.filename = Some(f);
        }
        if top {
            out.push(MimeEvent::Header(name, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Vec<MimeEvent> {
        let mut m = Mime::new();
        let mut out = m.begin();
        for l in text.split("\r\n") {
            m.line(l.as_bytes(), &mut out);
        }
        out
    }

    #[test]
    fn headers_with_continuations() {
        let out = run("Subject: hi\r\nReceived: by x\r\n        for <y>\r\n\r\nbody");
        assert_eq!(
            out,
            vec![
                MimeEvent::BeginEntity,
                MimeEvent::Header("SUBJECT".into(), b"hi".to_vec()),
                MimeEvent::Header("RECEIVED".into(), b"by x        for <y>".to_vec()),
                MimeEvent::NewFile(None),
                MimeEvent::Data(b"body\r\n".to_vec()),
            ]
        );
    }

    #[test]
    fn multipart_files() {
        let out = run("Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\npre\r\n--b\r\n\r\none\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: x\r\n\r\nmsg\r\n--b--\r\nepi");
        let files = out
            .iter()
            .filter(|e| matches!(e, MimeEvent::NewFile(_)))
            .count();
        let entities = out.iter().filter(|e| **e == MimeEvent::BeginEntity).count();
        assert_eq!((files, entities), (2, 4));
    }

    /// MIME_Entity::DecodeBinary holds back a part's line end, which the boundary then takes:
    /// a part of one empty line submits no data and so is no file; at the top level the same
    /// line is two bytes.
    #[test]
    fn a_part_of_one_empty_line_is_no_file() {
        let out = run("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n\r\n--b--\r\n");
        assert!(!out.iter().any(|e| matches!(e, MimeEvent::NewFile(_))));
        let out = run("Subject: x\r\n\r\n");
        assert!(out.contains(&MimeEvent::Data(b"\r\n".to_vec())), "{out:?}");
    }

    /// A line longer than the reader takes at once arrives in pieces: they join into one
    /// header value or one run of body bytes, and a piece that looks like a boundary is none.
    #[test]
    fn pieces_of_long_lines_join() {
        let mut m = Mime::new();
        let mut out = m.begin();
        m.part(b"Subject: a", &mut out);
        m.line(b"b", &mut out);
        m.line(b"Content-Type: multipart/mixed; boundary=b", &mut out);
        m.line(b"", &mut out);
        m.line(b"--b", &mut out);
        m.line(b"", &mut out);
        m.part(b"xx", &mut out);
        m.line(b"--b", &mut out);
        m.line(b"--b--", &mut out);
        let data: Vec<u8> = out
            .iter()
            .filter_map(|e| match e {
                MimeEvent::Data(d) => Some(d.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(data, b"xx--b");
        assert!(out.contains(&MimeEvent::Header("SUBJECT".into(), b"ab".to_vec())));
        assert_eq!(
            out.iter()
                .filter(|e| matches!(e, MimeEvent::NewFile(_)))
                .count(),
            1
        );
    }

    #[test]
    fn headerless_lines_are_not_a_body() {
        let out = run("Subject: x\r\nXXXX\r\nYYYY");
        assert!(!out.iter().any(|e| matches!(e, MimeEvent::NewFile(_))));
    }
}
