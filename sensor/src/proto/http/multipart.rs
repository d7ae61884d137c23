//! Multipart bodies (form uploads, byte ranges): each part with data is a file of its own in
//! Zeek, with the part's file name and sniffed type.

use super::header_rules::{content_range, ContentRange};

/// Parts tracked per body; later ones are not reported.
const MAX_PARTS: usize = 100;
/// Longest line kept while looking for a boundary; longer runs are plain part data.
const MAX_LINE: usize = 8 * 1024;

/// A part that carried data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub filename: Option<Vec<u8>>,
    pub head: Vec<u8>,
    /// The part's length (files.log `seen_bytes`).
    pub len: u64,
    /// The part's Content-Range (the parts of a `multipart/byteranges` reply).
    pub range: Option<ContentRange>,
}

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
    parts: Vec<Part>,
}

/// The `boundary=` parameter of a `multipart/...` Content-Type.
pub fn boundary_of(content_type: &[u8]) -> Option<Vec<u8>> {
    let lower = content_type.to_ascii_lowercase();
    if !lower.starts_with(b"multipart/") {
        return None;
    }
    let at = lower.windows(9).position(|w| w == b"boundary=")?;
    let rest = &content_type[at + 9..];
    let value = match rest.strip_prefix(b"\"") {
        Some(q) => &q[..q.iter().position(|b| *b == b'"').unwrap_or(q.len())],
        None => {
            let end = rest
                .iter()
                .position(|b| matches!(b, b';' | b' ' | b'\t'))
                .unwrap_or(rest.len());
            &rest[..end]
        }
    };
    (!value.is_empty()).then(|| value.to_vec())
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
                } else if let Some(colon) = line.iter().position(|b| *b == b':') {
                    let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
                    let upper = String::from_utf8_lossy(name.trim_ascii()).to_ascii_uppercase();
                    if let Some(f) = super::filename::entity_filename(&upper, value) {
                        self.filename = Some(f);
                    }
                    if name.eq_ignore_ascii_case(b"content-range") {
                        self.range = content_range(value).ok().map(|(r, _)| r);
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
        let room = crate::file_magic::BOF_BUFFER_SIZE.saturating_sub(self.head.len());
        self.head.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn end_part(&mut self) {
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
