//! The Content-Encoding of an HTTP body.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Deflate,
}

impl Encoding {
    /// `HTTP_Entity::SubmitHeader`: the first token of a Content-Encoding value, `gzip` or
    /// `x-gzip` or `deflate` (any case); other values leave the encoding as it was.
    pub fn from_header(value: &[u8]) -> Option<Self> {
        let (token, _) = super::header_rules::value_token(value)?;
        if token.eq_ignore_ascii_case(b"gzip") || token.eq_ignore_ascii_case(b"x-gzip") {
            Some(Encoding::Gzip)
        } else if token.eq_ignore_ascii_case(b"deflate") {
            Some(Encoding::Deflate)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_encodings_by_first_token() {
        assert_eq!(Encoding::from_header(b"GZIP"), Some(Encoding::Gzip));
        assert_eq!(Encoding::from_header(b"x-gzip"), Some(Encoding::Gzip));
        assert_eq!(
            Encoding::from_header(b" deflate, br"),
            Some(Encoding::Deflate)
        );
        assert_eq!(Encoding::from_header(b"br, gzip"), None);
        assert_eq!(Encoding::from_header(b"identity"), None);
    }
}
