//! Multipart bodies (form uploads, byte ranges): each part with data is a file of its own in
//! Zeek, with the part's file name and sniffed type; a part that is itself a `message/*` or
//! `multipart/*` entity is a [`MimeTree`] whose leaves are the files.

use super::header_rules::{content_range, ContentRange};
use super::mime_tree::MimeTree;
use super::part::Part;

/// Parts tracked per body; later ones are not reported.
const MAX_PARTS: usize = 100;
/// Longest line kept while looking for a boundary; longer runs are plain part data.
const MAX_LINE: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Preamble,
    Headers,
    Body,
    Epilogue,
}

#[derive(Debug, Clone)]
pub struct Multipart {
    boundary: Vec<u8>,
    state: State,
    line: Vec<u8>,
    filename: Option<Vec<u8>>,
    range: Option<ContentRange>,
    /// The current part's data so far (up to [`crate::file_magic::BOF_BUFFER_SIZE`]) and whether it has any.
    head: Vec<u8>,
    len: u64,
    has_data: bool,
    /// A line break seen in the part that belongs to it only if more data follows.
    pending_break: bool,
    /// The current part's `Content-Type`, and its entities when it is a container.
    content_type: Vec<u8>,
    tree: Option<Box<MimeTree>>,
    /// The depths at which `MIME::max_depth` refused a child, not yet reported.
    refused: Vec<u64>,
    parts: Vec<Part>,
}

impl Multipart {
    pub fn new(boundary: Vec<u8>) -> Self {
        Multipart {
            boundary,
            state: State::Preamble,
            line: Vec::new(),
            filename: None,
            range: None,
            head: Vec::new(),
            len: 0,
            has_data: false,
            pending_break: false,
            content_type: Vec::new(),
            tree: None,
            refused: Vec::new(),
            parts: Vec::new(),
        }
    }

    /// Zeek reads a multipart body with only CRLF ending a line (`SetCRLFAsEOL(0)` in
    /// `HTTP_Entity::SubmitAllHeaders`): a lone CR or LF is data.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match data.iter().position(|b| *b == b'\n') {
                Some(nl) => {
                    self.line.extend_from_slice(&data[..nl]);
                    data = &data[nl + 1..];
                    if self.line.last() != Some(&b'\r') {
                        self.line.push(b'\n');
                        self.spill_long_line();
                        continue;
                    }
                    let mut line = std::mem::take(&mut self.line);
                    line.pop();
                    self.complete_line(&line);
                }
                None => {
                    self.line.extend_from_slice(data);
                    self.spill_long_line();
                    return;
                }
            }
        }
    }

    /// A line too long for a boundary is part data; a CR at its end may still start a CRLF.
    fn spill_long_line(&mut self) {
        if self.line.len() <= MAX_LINE {
            return;
        }
        let keep = usize::from(self.line.last() == Some(&b'\r'));
        let mut chunk = std::mem::take(&mut self.line);
        self.line = chunk.split_off(chunk.len() - keep);
        self.data(&chunk, false);
    }

    fn complete_line(&mut self, line: &[u8]) {
        let after = line
            .strip_prefix(b"--")
            .and_then(|l| l.strip_prefix(&self.boundary[..]));
        if let Some(after) = after {
            self.end_part();
            self.state = if after.starts_with(b"--") {
                State::Epilogue
            } else {
                State::Headers
            };
            return;
        }
        match self.state {
            State::Preamble | State::Epilogue => {}
            State::Headers => {
                if line.is_empty() {
                    self.state = State::Body;
                    self.tree = MimeTree::new(1, &self.content_type).map(Box::new);
                } else if let Some(colon) = line.iter().position(|b| *b == b':') {
                    let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
                    let upper = String::from_utf8_lossy(name.trim_ascii()).to_ascii_uppercase();
                    if let Some(f) = super::filename::entity_filename(&upper, value) {
                        self.filename = Some(f);
                    }
                    if name.eq_ignore_ascii_case(b"content-range") {
                        self.range = content_range(value).ok().map(|(r, _)| r);
                    }
                    if name.eq_ignore_ascii_case(b"content-type") {
                        self.content_type = value[..value.len().min(MAX_LINE)].to_vec();
                    }
                }
            }
            State::Body => self.data(line, true),
        }
    }

    /// Part data; a line's break is kept back until more data shows it belongs to the part.
    fn data(&mut self, bytes: &[u8], line_end: bool) {
        if self.state != State::Body {
            return;
        }
        if let Some(tree) = self.tree.as_mut() {
            tree.deliver(bytes, line_end);
            self.refused.extend(tree.take_refused());
            return;
        }
        if self.pending_break {
            self.push(b"\r\n");
        }
        self.push(bytes);
        self.pending_break = line_end;
        if line_end {
            // An empty line is data once the next line arrives.
            self.has_data |= !bytes.is_empty();
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.has_data = true;
        self.len += bytes.len() as u64;
        crate::file_magic::keep_bof(&mut self.head, bytes);
    }

    fn end_part(&mut self) {
        if let Some(mut tree) = self.tree.take() {
            tree.finish();
            let room = MAX_PARTS.saturating_sub(self.parts.len());
            self.parts.extend(tree.take_parts().into_iter().take(room));
        }
        self.content_type.clear();
        if self.state == State::Body && self.has_data && self.parts.len() < MAX_PARTS {
            self.parts.push(Part {
                filename: self.filename.take(),
                head: std::mem::take(&mut self.head),
                len: self.len,
                range: self.range,
            });
        }
        self.filename = None;
        self.range = None;
        self.head.clear();
        self.len = 0;
        self.has_data = false;
        self.pending_break = false;
    }

    /// The depths at which `MIME::max_depth` refused a child since the last call.
    pub fn take_refused(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.refused)
    }

    /// The parts with data, the unfinished last one included.
    pub fn finish(mut self) -> Vec<Part> {
        let rest = std::mem::take(&mut self.line);
        if !rest.is_empty() {
            self.data(&rest, false);
        }
        self.end_part();
        self.parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::http::part::boundary_of;
    use proptest::prelude::*;

    #[test]
    fn form_upload_parts() {
        let ct = b"multipart/form-data; boundary=----X";
        let mut m = Multipart::new(boundary_of(ct).unwrap());
        let body = b"------X\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue\r\n------X\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.html\"\r\nContent-Type: text/html\r\n\r\n<html>hi</html>\r\n------X\r\nContent-Disposition: form-data; name=\"e\"\r\n\r\n\r\n------X--\r\n";
        for chunk in body.chunks(7) {
            m.feed(chunk);
        }
        let parts = m.finish();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            parts[0],
            Part {
                filename: None,
                head: b"value".to_vec(),
                len: 5,
                range: None,
            }
        );
        assert_eq!(parts[1].filename.as_deref(), Some(&b"x.html"[..]));
        assert_eq!(parts[1].head, b"<html>hi</html>");
    }

    /// Only CRLF ends a line: a bare LF or CR in part data stays as it is.
    #[test]
    fn bare_line_feeds_are_data() {
        let mut m = Multipart::new(b"b".to_vec());
        m.feed(b"--b\r\n\r\na\nb\rc\r\nd\r");
        m.feed(b"\n--b--\r\n");
        let parts = m.finish();
        assert_eq!(parts[0].head, b"a\nb\rc\r\nd");
        assert_eq!(parts[0].len, 8);
    }

    #[test]
    fn not_multipart() {
        assert_eq!(boundary_of(b"text/html"), None);
        assert_eq!(
            boundary_of(b"multipart/byteranges; boundary=\"b c\""),
            Some(b"b c".to_vec())
        );
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..500)) {
            let mut m = Multipart::new(b"b".to_vec());
            m.feed(&data);
            m.feed(b"\r\n--b\r\n\r\nx\r\n--b--");
            let _ = m.finish();
        }
    }
}
