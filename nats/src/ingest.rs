//! An ingest node's side: messages its listeners received from senders that cannot speak NATS
//! (rsyslog, `logger`, a shipper over RELP), cut into stream batches and published.
//!
//! A message that names its origin (a shipper's `origin@32473` element) keeps it: runs of one
//! file's lines become one batch whose id is the same whichever node publishes it, so a sender
//! resending a window after a lost acknowledgement makes a duplicate the servers or the reader's
//! marks drop. A message without one gets a place in a sequence of this process's own (a file
//! id drawn at random per host and tag, [`Numbering::Counted`]): a sender's resend of it cannot
//! be told from a new line, so such senders get at-least-once.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};

use crate::batch::{self, Numbering, Origin};
use crate::publish::Publisher;
use crate::Error;

/// Lines per stream message, and its payload size: large enough for throughput (design §2.3b),
/// far below the servers' 1 MiB default payload limit.
const MAX_LINES: usize = 200;
const MAX_BYTES: usize = 64 * 1024;
/// Hosts, tags and files remembered; past it the memory starts over (the next batch of a file
/// is then taken without waiting for earlier ones, a counted sequence gets a new file id).
const MAX_KEYS: usize = 65_536;
/// The tag of messages that have none (not syslog, or no APP-NAME).
pub const UNTAGGED: &str = "-";

/// One received message.
#[derive(Debug, Clone)]
pub struct Received {
    /// The HOSTNAME it names, else the sender's address.
    pub host: String,
    pub tag: String,
    /// The whole message as received.
    pub text: Bytes,
}

/// Cuts received messages into batches and publishes them.
pub struct Ingest {
    publisher: Publisher,
    cutter: Cutter,
}

impl Ingest {
    pub fn new(publisher: Publisher) -> Self {
        Ingest {
            publisher,
            cutter: Cutter::default(),
        }
    }

    /// Publishes `msgs` and returns once the stream stored every one of them on a quorum.
    pub async fn publish(&mut self, msgs: impl IntoIterator<Item = Received>) -> Result<(), Error> {
        let batches = self.cutter.cut(msgs);
        if batches.is_empty() {
            return Ok(());
        }
        self.publisher.publish_all(&batches).await.map(|_| ())
    }
}

#[derive(Default)]
struct Cutter {
    /// (host, tag) -> this process's file id for that sender's counted lines, and the next
    /// line's number.
    counted: HashMap<(String, String), (u64, u64)>,
    /// (host, tag, file) -> where the last batch published of it ended: the next one's `from`,
    /// so the reader waits for an earlier batch the servers stored late.
    ends: HashMap<(String, String, u64), u64>,
}

/// The batch being filled.
struct Open {
    host: String,
    tag: String,
    /// The file and offset of the last line, for messages that name them.
    last: Option<(u64, u64)>,
    first: u64,
    lines: usize,
    payload: BytesMut,
}

impl Cutter {
    fn cut(&mut self, msgs: impl IntoIterator<Item = Received>) -> Vec<(Origin, Bytes)> {
        if self.counted.len() > MAX_KEYS || self.ends.len() > MAX_KEYS {
            self.counted.clear();
            self.ends.clear();
        }
        let mut out = Vec::new();
        let mut open: Option<Open> = None;
        for msg in msgs {
            let text = one_line(msg.text);
            let tag = if msg.tag.is_empty() {
                UNTAGGED.to_owned()
            } else {
                msg.tag
            };
            let named = batch::line_origin(&text);
            let fits = open.as_ref().is_some_and(|o| {
                o.host == msg.host
                    && o.tag == tag
                    && o.lines < MAX_LINES
                    && o.payload.len() + text.len() < MAX_BYTES
                    && match (o.last, named) {
                        (Some((file, last)), Some((f, offset))) => f == file && offset > last,
                        (None, None) => true,
                        _ => false,
                    }
            });
            if !fits {
                if let Some(o) = open.take() {
                    out.push(self.close(o));
                }
            }
            let o = open.get_or_insert_with(|| Open {
                first: named.map_or(0, |(_, offset)| offset),
                host: msg.host,
                tag,
                last: None,
                lines: 0,
                payload: BytesMut::new(),
            });
            o.last = named;
            o.lines += 1;
            o.payload.extend_from_slice(&text);
            o.payload.extend_from_slice(b"\n");
        }
        if let Some(o) = open {
            out.push(self.close(o));
        }
        out
    }

    fn close(&mut self, o: Open) -> (Origin, Bytes) {
        let (file, offset, end, numbering) = match o.last {
            // Offsets are where lines start: the next line of the file starts past the last.
            Some((file, last)) => (file, o.first, last + 1, Numbering::Element),
            None => {
                let (file, next) = self
                    .counted
                    .entry((o.host.clone(), o.tag.clone()))
                    .or_insert_with(|| (new_file_id(), 0));
                let offset = *next;
                *next += o.lines as u64;
                (*file, offset, *next, Numbering::Counted)
            }
        };
        // The first batch of a file this process publishes waits for nothing: it may follow
        // lines another process published (a sender resending after a restart), whose end
        // this one cannot know.
        let from = self
            .ends
            .insert((o.host.clone(), o.tag.clone(), file), end)
            .unwrap_or(0);
        let origin = Origin {
            host: o.host,
            tag: o.tag,
            file,
            offset,
            from: from.min(offset),
            end,
            numbering,
        };
        (origin, o.payload.freeze())
    }
}

/// A message as one line of a payload: a newline inside it (octet-counted framing allows them)
/// becomes `#012`, as rsyslog escapes control characters on receipt.
fn one_line(text: Bytes) -> Bytes {
    if memchr::memchr(b'\n', &text).is_none() {
        return text;
    }
    let mut out = Vec::with_capacity(text.len() + 8);
    for &b in text.iter() {
        if b == b'\n' {
            out.extend_from_slice(b"#012");
        } else {
            out.push(b);
        }
    }
    Bytes::from(out)
}

/// A file id of this process: random, so that two ingest nodes, or one before and after a
/// restart, never share one.
fn new_file_id() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        nanos ^ (u64::from(std::process::id()) << 32)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(host: &str, tag: &str, text: &str) -> Received {
        Received {
            host: host.into(),
            tag: tag.into(),
            text: Bytes::from(text.to_owned()),
        }
    }

    fn shipped(file: u64, off: u64) -> Received {
        received(
            "s1",
            "bro_conn",
            &format!("<13>1 - s1 bro_conn - - [origin@32473 file=\"{file:016x}\" off=\"{off}\"] x"),
        )
    }

    #[test]
    fn a_shippers_lines_keep_their_origin_and_chain_their_batches() {
        let mut cutter = Cutter::default();
        let first = cutter.cut([shipped(7, 10), shipped(7, 20), shipped(8, 0)]);
        let origins: Vec<_> = first.iter().map(|(o, _)| o.clone()).collect();
        assert_eq!(
            origins
                .iter()
                .map(|o| (o.file, o.from, o.offset, o.end, o.numbering))
                .collect::<Vec<_>>(),
            [
                (7, 0, 10, 21, Numbering::Element),
                (8, 0, 0, 1, Numbering::Element)
            ]
        );
        // Every line is found where the reader looks for it.
        assert_eq!(
            batch::lines(&origins[0], &first[0].1)
                .unwrap()
                .iter()
                .map(|l| l.offset)
                .collect::<Vec<_>>(),
            [10, 20]
        );
        // The next batch of file 7 waits for the first; a resend (offset going back) is cut
        // into a batch of its own that waits for nothing it precedes.
        let next = cutter.cut([shipped(7, 30), shipped(7, 10)]);
        assert_eq!(
            next.iter()
                .map(|(o, _)| (o.from, o.offset, o.end))
                .collect::<Vec<_>>(),
            [(21, 30, 31), (10, 10, 11)]
        );
        // The same lines cut the same way have the same id.
        let mut again = Cutter::default();
        assert_eq!(
            again.cut([shipped(7, 10), shipped(7, 20)])[0]
                .0
                .message_id(),
            origins[0].message_id()
        );
    }

    #[test]
    fn legacy_lines_are_counted_per_host_and_tag_and_stay_one_line() {
        let mut cutter = Cutter::default();
        let out = cutter.cut([
            received("h1", "app", "<13>Dec  7 12:00:00 h1 app: one"),
            received("h1", "app", "<13>Dec  7 12:00:00 h1 app: two\nlines"),
            received("h2", "", "garbage"),
        ]);
        assert_eq!(out.len(), 2);
        let (o, payload) = &out[0];
        assert_eq!((o.offset, o.end, o.numbering), (0, 2, Numbering::Counted));
        assert!(payload.ends_with(b"two#012lines\n"));
        assert_eq!(batch::lines(o, payload).unwrap().len(), 2);
        assert_eq!(out[1].0.tag, UNTAGGED);
        assert_ne!(out[1].0.file, o.file);
        let more = cutter.cut([received("h1", "app", "<13>three")]);
        assert_eq!(
            (
                more[0].0.file,
                more[0].0.from,
                more[0].0.offset,
                more[0].0.end
            ),
            (o.file, 2, 2, 3)
        );
    }

    #[test]
    fn batches_are_bounded() {
        let mut cutter = Cutter::default();
        let out = cutter.cut((0..450).map(|i| shipped(1, i * 100)));
        assert_eq!(
            out.iter()
                .map(|(o, _)| (o.offset, o.end))
                .collect::<Vec<_>>(),
            [(0, 19_901), (20_000, 39_901), (40_000, 44_901)]
        );
        let big = "x".repeat(40_000);
        let out = cutter.cut((0..3).map(|_| received("h", "t", &big)));
        assert_eq!(out.len(), 3);
    }
}
