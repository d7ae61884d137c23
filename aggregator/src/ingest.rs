//! From a received frame to what the writer needs: parsed once on the connection's task (so
//! parsing runs beside the writer), kept as ranges into the frame's bytes (no copies).

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::peers::Admission;
use crate::writer::Prepare;

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub raw: Bytes,
    /// HOSTNAME; `None` = use the peer's address.
    pub host: Option<Range<u32>>,
    pub tag: Range<u32>,
    pub body: Range<u32>,
    pub origin: Option<(u64, u64)>,
    /// False for a message that is not syslog: no host, no tag, the whole frame as body, so it
    /// goes whole to the catch-all log.
    pub syslog: bool,
}

impl Parsed {
    pub fn slice(&self, r: &Range<u32>) -> &[u8] {
        self.raw
            .get(r.start as usize..r.end as usize)
            .unwrap_or_default()
    }
}

/// Messages from one connection, handed to the writer together.
#[derive(Debug)]
pub struct Batch {
    /// The peer's address (or certificate name), for stats and as host of last resort.
    pub peer: Arc<str>,
    pub msgs: Vec<Parsed>,
    /// Fired once the batch is committed (RELP acknowledges then).
    pub ack: Option<oneshot::Sender<()>>,
    /// Read from the cluster: committed alone, then kept or cut once the tag's compare-and-set
    /// is known.
    pub prepare: Option<Prepare>,
}

impl Batch {
    /// Bytes received in it.
    pub fn bytes(&self) -> u64 {
        self.msgs.iter().map(|p| p.raw.len() as u64).sum()
    }
}

/// Why a frame was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    Malformed,
    Refused,
}

fn range_of(raw: &[u8], part: &[u8]) -> Range<u32> {
    let start = (part.as_ptr() as usize).saturating_sub(raw.as_ptr() as usize);
    let start = start.min(raw.len());
    let end = (start + part.len()).min(raw.len());
    start as u32..end as u32
}

/// Parses one frame. A frame that is not syslog is taken whole, tagless, if the peer may send
/// any tag.
pub fn parse(raw: Bytes, admission: &Admission) -> Result<Parsed, Rejected> {
    if raw.len() > u32::MAX as usize {
        return Err(Rejected::Malformed);
    }
    let Ok(msg) = estuary_wire::parse(&raw) else {
        if !admission.allows(b"") {
            return Err(Rejected::Refused);
        }
        return Ok(Parsed {
            host: None,
            tag: 0..0,
            body: 0..raw.len() as u32,
            origin: None,
            syslog: false,
            raw,
        });
    };
    let tag = msg.app_name.unwrap_or_default().as_bytes();
    if !admission.allows(tag) {
        return Err(Rejected::Refused);
    }
    let host = msg.hostname.map(|h| range_of(&raw, h.as_bytes()));
    let tag = range_of(&raw, tag);
    let body = range_of(&raw, msg.body);
    let origin = msg.origin.map(|o| (o.file, o.offset));
    Ok(Parsed {
        raw: raw.clone(),
        host,
        tag,
        body,
        origin,
        syslog: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_point_into_the_frame() {
        let raw = Bytes::from_static(
            b"<190>1 2026-11-22T11:00:00Z sensor1 bro_conn - - [origin@32473 file=\"000000000000000a\" off=\"42\"] a\tb\t",
        );
        let p = parse(raw, &Admission::All).unwrap();
        assert_eq!(p.slice(p.host.as_ref().unwrap()), b"sensor1");
        assert_eq!(p.slice(&p.tag), b"bro_conn");
        assert_eq!(p.slice(&p.body), b"a\tb\t");
        assert_eq!(p.origin, Some((10, 42)));
        let garbage = parse(Bytes::from_static(b"garbage"), &Admission::All).unwrap();
        assert!(!garbage.syslog);
        assert_eq!(
            (garbage.slice(&garbage.tag), garbage.slice(&garbage.body)),
            (&b""[..], &b"garbage"[..])
        );
        let only_conn = Admission::Tags(vec![regex::Regex::new("^bro_conn$").unwrap()]);
        assert_eq!(
            parse(Bytes::from_static(b"garbage"), &only_conn).unwrap_err(),
            Rejected::Refused
        );
    }

    /// Arbitrary bytes through the stream decoder and the parser: never a panic, every range
    /// inside its frame, and every frame counted.
    fn decode_stream(input: &[u8]) -> (Vec<Parsed>, u64) {
        use estuary_wire::framing::SyslogDecoder;
        use tokio_util::codec::Decoder;
        let mut decoder = SyslogDecoder::new(512);
        let mut buf = bytes::BytesMut::from(input);
        let mut frames = 0;
        let mut out = Vec::new();
        while let Ok(Some(item)) = decoder.decode_eof(&mut buf) {
            frames += 1;
            if let Ok(p) = item
                .map_err(|_| Rejected::Malformed)
                .and_then(|f| parse(f, &Admission::All))
            {
                out.push(p);
            }
        }
        (out, frames)
    }

    proptest::proptest! {
        #[test]
        fn fuzz_frames(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let (msgs, frames) = decode_stream(&input);
            proptest::prop_assert!(frames >= msgs.len() as u64);
            for p in &msgs {
                for r in [Some(&p.tag), Some(&p.body), p.host.as_ref()].into_iter().flatten() {
                    proptest::prop_assert!(r.start <= r.end && (r.end as usize) <= p.raw.len());
                }
            }
        }

        #[test]
        fn fuzz_syslog_shaped(
            tag in "[ -~]{0,20}",
            host in "[ -~]{0,20}",
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        ) {
            let mut msg = format!("<190>1 2026-11-22T12:00:00Z {host} {tag} - - - ").into_bytes();
            msg.extend_from_slice(&body);
            let mut framed = format!("{} ", msg.len()).into_bytes();
            framed.extend_from_slice(&msg);
            let (msgs, _) = decode_stream(&framed);
            for p in &msgs {
                proptest::prop_assert!((p.body.end as usize) <= p.raw.len());
            }
        }
    }
}
