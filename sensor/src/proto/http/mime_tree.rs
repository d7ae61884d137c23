//! The entities inside a `message/*` or `multipart/*` entity, nested to any depth up to Zeek's
//! `MIME::max_depth`, as `MIME_Entity` reads them: each leaf with data is a file of its own.

use super::part::{boundary_of, Part};

/// Zeek's `MIME::max_depth`.
pub const MAX_DEPTH: u64 = 100;
/// Files kept per body; later leaves are not reported.
const MAX_PARTS: usize = 100;
/// Longest header kept (its continuation lines are dropped beyond it).
const MAX_HEADER: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Leaf,
    /// `CONTENT_TYPE_MESSAGE`: the body is one child entity.
    Message,
    /// `CONTENT_TYPE_MULTIPART` with its boundary: each part is a child entity.
    Multipart(Vec<u8>),
}

#[derive(Debug, Clone)]
struct Entity {
    depth: u64,
    kind: Kind,
    in_header: bool,
    header: Option<Vec<u8>>,
    /// A closing boundary ended it (`EndOfData`); it stays its parent's child until the
    /// parent's next boundary.
    ended: bool,
    /// The parent is multipart: a line's CRLF is data only if more data follows.
    parent_multipart: bool,
    delay_crlf: bool,
    filename: Option<Vec<u8>>,
    head: Vec<u8>,
    len: u64,
}

impl Entity {
    fn new(depth: u64, kind: Kind, in_header: bool, parent_multipart: bool) -> Self {
        Entity {
            depth,
            kind,
            in_header,
            header: None,
            ended: false,
            parent_multipart,
            delay_crlf: false,
            filename: None,
            head: Vec::new(),
            len: 0,
        }
    }

    /// `MIME_Entity::FinishHeader`: Content-Type sets the kind, Content-Disposition the name.
    fn finish_header(&mut self) {
        let Some(h) = self.header.take() else {
            return;
        };
        let Some(colon) = h.iter().position(|&b| b == b':') else {
            return;
        };
        let (name, value) = (h[..colon].trim_ascii(), h[colon + 1..].trim_ascii());
        let upper = String::from_utf8_lossy(name).to_ascii_uppercase();
        if let Some(f) = super::filename::entity_filename(&upper, value) {
            self.filename = Some(f);
        }
        if upper == "CONTENT-TYPE" {
            let lower = value.to_ascii_lowercase();
            self.kind = if lower.starts_with(b"message/") {
                Kind::Message
            } else {
                // A multipart type without a boundary is read as other data.
                boundary_of(value).map_or(Kind::Leaf, Kind::Multipart)
            };
        }
    }

    /// `MIME_Entity::DecodeBinary`.
    fn data(&mut self, line: &[u8], crlf: bool) {
        if std::mem::take(&mut self.delay_crlf) {
            self.push(b"\r\n");
        }
        self.push(line);
        if crlf {
            if self.parent_multipart {
                self.delay_crlf = true;
            } else {
                self.push(b"\r\n");
            }
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.len += bytes.len() as u64;
        crate::file_magic::keep_bof(&mut self.head, bytes);
    }
}

/// The open entities from a container down to the one reading now: each is the current child
/// of the one before it (`MIME_Entity::current_child_entity`).
#[derive(Debug, Clone)]
pub struct MimeTree {
    stack: Vec<Entity>,
    parts: Vec<Part>,
    /// The depths at which a child was refused, one per refusal.
    refused: Vec<u64>,
}

impl MimeTree {
    /// The body of a container entity at `depth` whose `Content-Type` is `content_type`; `None`
    /// if it is not a container. A message's child begins at once (`MIME_Entity::BeginBody`).
    pub fn new(depth: u64, content_type: &[u8]) -> Option<Self> {
        let mut root = Entity::new(depth, Kind::Leaf, false, false);
        root.header = Some([b"Content-Type:", content_type].concat());
        root.finish_header();
        if root.kind == Kind::Leaf {
            return None;
        }
        let mut tree = MimeTree {
            stack: vec![root],
            parts: Vec::new(),
            refused: Vec::new(),
        };
        if tree.stack[0].kind == Kind::Message {
            tree.begin_child();
        }
        Some(tree)
    }

    /// `MIME_Entity::BeginChildEntity` of the deepest open entity: past `MIME::max_depth` no
    /// child is made (the weird `exceeded_mime_max_depth`).
    fn begin_child(&mut self) {
        let Some(parent) = self.stack.last() else {
            return;
        };
        if parent.depth >= MAX_DEPTH {
            self.refused.push(parent.depth);
            return;
        }
        let multipart = matches!(parent.kind, Kind::Multipart(_));
        let child = Entity::new(parent.depth + 1, Kind::Leaf, true, multipart);
        self.stack.push(child);
    }

    /// `MIME_Entity::EndChildEntity` for every entity from index `keep` on, the deepest first.
    fn end_below(&mut self, keep: usize) {
        while self.stack.len() > keep {
            if let Some(e) = self.stack.pop() {
                self.end(e);
            }
        }
    }

    /// `MIME_Entity::EndOfData`: a leaf that got data is a file.
    fn end(&mut self, e: Entity) {
        if e.kind == Kind::Leaf && e.len > 0 && self.parts.len() < MAX_PARTS {
            self.parts.push(Part {
                filename: e.filename,
                head: e.head,
                len: e.len,
                range: None,
            });
        }
    }

    /// `MIME_Entity::Deliver` of the container: a line (`crlf`: a CRLF followed it) goes down
    /// the open entities until one takes it as a boundary, a header or data.
    pub fn deliver(&mut self, line: &[u8], crlf: bool) {
        let mut i = 0;
        while let Some(e) = self.stack.get_mut(i) {
            if e.in_header {
                header_line(e, line);
                if !e.in_header && e.kind == Kind::Message {
                    self.begin_child();
                }
                return;
            }
            let hit = match &e.kind {
                Kind::Multipart(b) => boundary(b, line),
                Kind::Leaf | Kind::Message => None,
            };
            if let Some(closing) = hit {
                let ended = e.ended;
                e.ended |= closing;
                self.end_below(i + 1);
                if !closing && !ended {
                    self.begin_child();
                }
                return;
            }
            if e.kind == Kind::Leaf {
                e.data(line, crlf);
                return;
            }
            i += 1;
        }
    }

    /// The end of the container's data: every open entity ends.
    pub fn finish(&mut self) {
        self.end_below(1);
    }

    /// The depths at which `MIME::max_depth` refused a child since the last call.
    pub fn take_refused(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.refused)
    }

    /// The leaves with data, in the order they ended.
    pub fn take_parts(&mut self) -> Vec<Part> {
        std::mem::take(&mut self.parts)
    }
}

/// `MIME_Entity::Deliver` in the headers: an empty line (or one starting with NUL) ends them,
/// linear whitespace continues one.
fn header_line(e: &mut Entity, line: &[u8]) {
    match line.first() {
        None | Some(0) => {
            e.finish_header();
            e.in_header = false;
        }
        Some(b' ' | b'\t') => {
            if let Some(h) = e.header.as_mut() {
                let room = MAX_HEADER.saturating_sub(h.len());
                h.extend_from_slice(&line[..line.len().min(room)]);
            }
        }
        Some(_) => {
            e.finish_header();
            e.header = Some(line[..line.len().min(MAX_HEADER)].to_vec());
        }
    }
}

/// `MIME_Entity::CheckBoundaryDelimiter`: `Some(true)` for a closing delimiter.
fn boundary(b: &[u8], line: &[u8]) -> Option<bool> {
    let after = line.strip_prefix(b"--")?.strip_prefix(b)?;
    Some(after.starts_with(b"--"))
}

#[cfg(test)]
mod tests;
