//! One stream message: contiguous lines of one file incarnation, and where they came from.
//!
//! The payload is the lines as they were in the file, each ending in `\n`; headers name the
//! origin of the first line. A line's offset is the first line's plus the bytes before it, so
//! the reader can drop, line by line, what is already committed.

use async_nats::HeaderMap;
use bytes::Bytes;

use crate::names;
use crate::Error;

const HOST: &str = "Estuary-Host";
const TAG: &str = "Estuary-Tag";
const FILE: &str = "Estuary-File";
const OFFSET: &str = "Estuary-Offset";
const FROM: &str = "Estuary-From";

/// Where a batch's first line was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub host: String,
    pub tag: String,
    /// The shipper's id of the file incarnation.
    pub file: u64,
    /// Byte offset of the first line in that file.
    pub offset: u64,
    /// Where the shipper's state stood when it read this batch: the end of the file's previous
    /// batch (below `offset` when empty lines were skipped in between).
    pub from: u64,
}

impl Origin {
    pub fn subject(&self) -> String {
        names::subject(&self.tag, &self.host)
    }

    pub fn message_id(&self) -> String {
        names::message_id(&self.host, &self.tag, self.file, self.offset)
    }

    pub fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HOST, self.host.as_str());
        h.insert(TAG, self.tag.as_str());
        h.insert(FILE, format!("{:016x}", self.file).as_str());
        h.insert(OFFSET, self.offset.to_string().as_str());
        h.insert(FROM, self.from.to_string().as_str());
        h
    }

    /// The origin of a delivered message; a message without it did not come from estuary.
    pub fn from_headers(h: Option<&HeaderMap>) -> Result<Origin, Error> {
        let get = |name: &str| {
            h.and_then(|h| h.get(name))
                .map(|v| v.as_str().to_owned())
                .ok_or_else(|| Error::Malformed(format!("no {name} header")))
        };
        let file = get(FILE)?;
        let offset = get(OFFSET)?;
        let from = get(FROM)?;
        Ok(Origin {
            host: get(HOST)?,
            tag: get(TAG)?,
            file: u64::from_str_radix(&file, 16)
                .map_err(|_| Error::Malformed(format!("{FILE}: {file:?}")))?,
            offset: offset
                .parse()
                .map_err(|_| Error::Malformed(format!("{OFFSET}: {offset:?}")))?,
            from: from
                .parse()
                .map_err(|_| Error::Malformed(format!("{FROM}: {from:?}")))?,
        })
    }
}

/// A line of a delivered batch with its offset in the origin file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub offset: u64,
    /// Without the `\n`.
    pub text: Bytes,
}

impl Line {
    /// Offset just past this line and its `\n`.
    pub fn end(&self) -> u64 {
        self.offset + self.text.len() as u64 + 1
    }
}

/// Splits a payload into lines with offsets. A payload must end in `\n`.
pub fn lines(first_offset: u64, payload: &Bytes) -> Result<Vec<Line>, Error> {
    if !payload.is_empty() && !payload.ends_with(b"\n") {
        return Err(Error::Malformed("payload does not end in a newline".into()));
    }
    let mut out = Vec::new();
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', payload) {
        out.push(Line {
            offset: first_offset + start as u64,
            text: payload.slice(start..end),
        });
        start = end + 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_follow_the_bytes_of_the_file() {
        let got = lines(100, &Bytes::from_static(b"ab\n\ncde\n")).unwrap();
        let offs: Vec<(u64, &[u8])> = got.iter().map(|l| (l.offset, &l.text[..])).collect();
        assert_eq!(offs, [(100, &b"ab"[..]), (103, b""), (104, b"cde")]);
        assert_eq!(got[2].end(), 108);
    }

    #[test]
    fn a_cut_payload_is_an_error() {
        assert!(lines(0, &Bytes::from_static(b"ab\ncd")).is_err());
    }

    #[test]
    fn origin_round_trips_through_headers() {
        let o = Origin {
            host: "s1.example.org".into(),
            tag: "conn".into(),
            file: 0xab,
            offset: 77,
            from: 70,
        };
        assert_eq!(Origin::from_headers(Some(&o.headers())).unwrap(), o);
        assert!(Origin::from_headers(None).is_err());
    }
}
