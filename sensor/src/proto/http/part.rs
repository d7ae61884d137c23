//! A part of a multipart or nested MIME body that carried data: a file of its own in Zeek.

use super::header_rules::ContentRange;

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
