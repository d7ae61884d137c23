//! One stream message: contiguous lines of one file incarnation, and where they came from.
//!
//! The payload is the shipper's RFC 5424 messages, one per line (newline framing), each with
//! the `origin@32473` element naming its file and offset, exactly as RELP would carry them; so
//! an aggregator parses them as it parses a syslog connection, and the reader can drop, line
//! by line, what is already committed. Headers name the batch's range of the file; the
//! payload travels compressed ([`crate::payload`]).
//!
//! Lines an ingest node received from a sender that names no origin (rsyslog, `logger`) carry
//! no such element: the node numbers them itself ([`Numbering::Counted`]), under a file id of
//! its own, and the n-th line of the batch is at `offset + n`.

use async_nats::HeaderMap;
use bytes::Bytes;

use crate::names;
use crate::Error;

const HOST: &str = "Estuary-Host";
const TAG: &str = "Estuary-Tag";
const FILE: &str = "Estuary-File";
const OFFSET: &str = "Estuary-Offset";
const FROM: &str = "Estuary-From";
const END: &str = "Estuary-End";
const NUMBERING: &str = "Estuary-Numbering";

/// How a batch's lines are placed in their file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Numbering {
    /// Each message's `origin@32473` element names its offset (the shipper's lines).
    #[default]
    Element,
    /// The lines carry no offset: the n-th is at the batch's offset + n (an ingest node's
    /// numbering of a legacy sender's lines).
    Counted,
}

/// Where a batch's first line was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub host: String,
    pub tag: String,
    /// The shipper's id of the file incarnation.
    pub file: u64,
    /// Byte offset of the first line in that file (`from` when the batch has none).
    pub offset: u64,
    /// Where the shipper's state stood when it read this batch: the end of the file's previous
    /// batch (below `offset` when empty lines were skipped in between).
    pub from: u64,
    /// Offset just past the batch's last line: where the next batch of the file starts.
    pub end: u64,
    pub numbering: Numbering,
}

impl Origin {
    pub fn subject(&self) -> String {
        names::subject(&self.tag, &self.host)
    }

    pub fn message_id(&self) -> String {
        names::message_id(&self.host, &self.tag, self.file, self.offset, self.end)
    }

    pub fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HOST, self.host.as_str());
        h.insert(TAG, self.tag.as_str());
        h.insert(FILE, format!("{:016x}", self.file).as_str());
        h.insert(OFFSET, self.offset.to_string().as_str());
        h.insert(FROM, self.from.to_string().as_str());
        h.insert(END, self.end.to_string().as_str());
        if self.numbering == Numbering::Counted {
            h.insert(NUMBERING, "counted");
        }
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
        let end = get(END)?;
        let numbering = match h.and_then(|h| h.get(NUMBERING)).map(|v| v.as_str()) {
            None => Numbering::Element,
            Some("counted") => Numbering::Counted,
            Some(other) => return Err(Error::Malformed(format!("{NUMBERING}: {other:?}"))),
        };
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
            end: end
                .parse()
                .map_err(|_| Error::Malformed(format!("{END}: {end:?}")))?,
            numbering,
        })
    }
}

/// A message of a delivered batch with the offset of its line in the origin file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub offset: u64,
    /// The whole syslog message, without the `\n`.
    pub text: Bytes,
}

/// The origin element of one message, as the reader finds it: (file id, offset).
pub fn line_origin(text: &[u8]) -> Option<(u64, u64)> {
    memchr::memmem::find(text, b"[origin@32473 ")
        .and_then(|at| estuary_wire::Origin::parse_encoded(&text[at..]))
        .map(|(o, _)| (o.file, o.offset))
}

/// Splits a payload into its messages, each with its offset: the one its origin element names
/// (every message must carry an origin of the batch's file), or its place after the batch's
/// offset when the batch is counted.
pub fn lines(origin: &Origin, payload: &Bytes) -> Result<Vec<Line>, Error> {
    if !payload.is_empty() && !payload.ends_with(b"\n") {
        return Err(Error::Malformed("payload does not end in a newline".into()));
    }
    let mut out = Vec::new();
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', payload) {
        let text = payload.slice(start..end);
        let offset = match origin.numbering {
            Numbering::Counted => origin.offset + out.len() as u64,
            Numbering::Element => line_origin(&text)
                .filter(|(file, _)| *file == origin.file)
                .map(|(_, offset)| offset)
                .ok_or_else(|| {
                    Error::Malformed(format!(
                        "message without the batch's origin at byte {start}"
                    ))
                })?,
        };
        out.push(Line { offset, text });
        start = end + 1;
    }
    if origin.numbering == Numbering::Counted && origin.offset + out.len() as u64 != origin.end {
        return Err(Error::Malformed(format!(
            "{} counted lines from {} do not end at {}",
            out.len(),
            origin.offset,
            origin.end
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn element(file: u64) -> Origin {
        Origin {
            host: "s1".into(),
            tag: "conn".into(),
            file,
            offset: 0,
            from: 0,
            end: 0,
            numbering: Numbering::Element,
        }
    }

    fn msg(file: u64, off: u64, body: &str) -> String {
        format!("<13>1 - s1 conn - - [origin@32473 file=\"{file:016x}\" off=\"{off}\"] {body}\n")
    }

    #[test]
    fn each_message_carries_its_offset() {
        let payload = Bytes::from(format!("{}{}", msg(7, 100, "ab"), msg(7, 103, "cde")));
        let got = lines(&element(7), &payload).unwrap();
        assert_eq!(got.iter().map(|l| l.offset).collect::<Vec<_>>(), [100, 103]);
        assert!(got[1].text.ends_with(b"] cde"));
    }

    #[test]
    fn cut_foreign_or_originless_payloads_are_errors() {
        assert!(lines(
            &element(7),
            &Bytes::from(msg(7, 0, "a").trim_end().to_owned())
        )
        .is_err());
        assert!(lines(&element(8), &Bytes::from(msg(7, 0, "a"))).is_err());
        assert!(lines(
            &element(7),
            &Bytes::from_static(b"<13>1 - s1 conn - - - a\n")
        )
        .is_err());
    }

    #[test]
    fn counted_lines_are_numbered_from_the_batch_offset() {
        let origin = Origin {
            offset: 40,
            end: 42,
            numbering: Numbering::Counted,
            ..element(9)
        };
        let payload = Bytes::from_static(b"<13>1 - s1 conn - - - a\n<13>x\n");
        let got = lines(&origin, &payload).unwrap();
        assert_eq!(got.iter().map(|l| l.offset).collect::<Vec<_>>(), [40, 41]);
        let short = Origin { end: 43, ..origin };
        assert!(lines(&short, &payload).is_err());
    }

    #[test]
    fn origin_round_trips_through_headers() {
        let o = Origin {
            host: "s1.example.org".into(),
            tag: "conn".into(),
            file: 0xab,
            offset: 77,
            from: 70,
            end: 90,
            numbering: Numbering::Element,
        };
        assert_eq!(Origin::from_headers(Some(&o.headers())).unwrap(), o);
        let counted = Origin {
            numbering: Numbering::Counted,
            ..o
        };
        assert_eq!(
            Origin::from_headers(Some(&counted.headers())).unwrap(),
            counted
        );
        assert!(Origin::from_headers(None).is_err());
    }
}
