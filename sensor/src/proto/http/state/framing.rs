//! Whether and how a body follows a message head (RFC 9112 section 6.3).

use super::*;

impl HttpAnalyzer {
    /// The body that follows a complete head, or `None` when the message has none.
    pub(super) fn framing(dir: Direction, head: &Head) -> Option<Framing> {
        if dir == Direction::Resp {
            let code = head.status.unwrap_or(0);
            let method = head.request.as_ref().map(|r| r.method.as_str());
            if (100..200).contains(&code)
                || code == 204
                || code == 304
                || method == Some("HEAD")
                || (method == Some("CONNECT") && (200..300).contains(&code))
            {
                return None;
            }
        }
        if head.chunked {
            return Some(Framing::Chunked);
        }
        match (head.content_length, dir) {
            (Some(0), _) => None,
            (Some(n), _) => Some(Framing::Length(n)),
            (None, Direction::Orig) => None,
            (None, Direction::Resp) => Some(Framing::UntilEof),
        }
    }
}
