//! IPv4 and IPv6 fragment reassembly, bounded in datagrams, bytes and time.

use std::collections::HashMap;
use std::net::IpAddr;

use super::{FragInfo, IpHeader};

/// Largest reassembled IP payload: the highest fragment offset plus the longest fragment.
const MAX_DATAGRAM: usize = 65_528 + 65_535;
/// Zeek's `MIN_ACCEPTABLE_FRAG_SIZE` and `MAX_ACCEPTABLE_FRAG_SIZE` (Frag.cc).
const MIN_ACCEPTABLE_FRAG_SIZE: usize = 64;
const MAX_ACCEPTABLE_FRAG_SIZE: usize = 64_000;
/// Seconds (packet time) a partial datagram is kept.
const FRAG_TIMEOUT: f64 = 60.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    proto: u8,
}

#[derive(Debug)]
struct Pending {
    first_seen: f64,
    /// Header bytes to put in front of the reassembled payload (from the first fragment).
    header: Option<Vec<u8>>,
    data: Vec<u8>,
    ranges: Vec<(usize, usize)>,
    total: Option<usize>,
}

/// What a fragment did.
#[derive(Debug, PartialEq, Eq)]
pub enum FragOutcome {
    /// Held; the datagram is not complete yet.
    Held,
    /// The datagram is complete: a full IP packet (header + payload) to decode again.
    Complete(Vec<u8>),
    /// Dropped (too large, or the table is full); the weird name.
    Dropped(&'static str),
}

/// Fragment reassembly state.
#[derive(Debug)]
pub struct Defragmenter {
    pending: HashMap<Key, Pending>,
    max_pending: usize,
    /// Datagrams given up on (timeout or table full).
    pub evicted: u64,
}

impl Default for Defragmenter {
    fn default() -> Self {
        Self::new(4096)
    }
}

impl Defragmenter {
    pub fn new(max_pending: usize) -> Self {
        Defragmenter {
            pending: HashMap::new(),
            max_pending,
            evicted: 0,
        }
    }

    /// Adds one fragment. `packet` is the whole IP packet (captured bytes, trimmed to the IP
    /// total length), `h` its decoded header.
    /// Adds a fragment; `weirds` gets the names `FragReassembler::AddFragment` raises for it.
    pub fn add(
        &mut self,
        ts: f64,
        h: &IpHeader,
        frag: FragInfo,
        packet: &[u8],
        weirds: &mut Vec<&'static str>,
    ) -> FragOutcome {
        self.expire(ts);
        let key = Key {
            src: h.src,
            dst: h.dst,
            id: frag.id,
            proto: if h.is_v6() { 0 } else { h.proto },
        };
        let payload = packet.get(h.header_len..).unwrap_or_default();
        let start = frag.offset as usize;
        let end = start + payload.len();
        if frag.dont_fragment {
            weirds.push("fragment_with_DF");
        }
        if frag.more && packet.len() < MIN_ACCEPTABLE_FRAG_SIZE {
            weirds.push("excessively_small_fragment");
        }
        if end > MAX_ACCEPTABLE_FRAG_SIZE {
            weirds.push("excessively_large_fragment");
        }
        if end > MAX_DATAGRAM {
            // Only an IPv6 jumbo fragment reaches this far; its weird is raised above.
            self.pending.remove(&key);
            return FragOutcome::Held;
        }
        if !self.pending.contains_key(&key) && self.pending.len() >= self.max_pending {
            self.evicted += 1;
            return FragOutcome::Dropped("fragment_table_full");
        }
        let p = self.pending.entry(key).or_insert_with(|| Pending {
            first_seen: ts,
            header: None,
            data: Vec::new(),
            ranges: Vec::new(),
            total: None,
        });
        if start == 0 {
            p.header = Some(if h.is_v6() {
                // Zeek's `proto_hdr`: the headers before the fragment header, the last of
                // which now names the reassembled payload's protocol.
                let end = h.header_len.saturating_sub(8).max(40);
                let mut hdr = packet.get(..end).unwrap_or_default().to_vec();
                if let Some(at) = last_next_header(&hdr) {
                    hdr[at] = h.proto;
                }
                hdr
            } else {
                packet.get(..h.header_len).unwrap_or_default().to_vec()
            });
        }
        if !frag.more {
            p.total = Some(end);
        }
        if p.data.len() < end {
            p.data.resize(end, 0);
        }
        p.data[start..end].copy_from_slice(payload);
        p.ranges.push((start, end));
        let Some(total) = p.total else {
            return FragOutcome::Held;
        };
        if p.header.is_none() || !covers(&mut p.ranges, total) {
            return FragOutcome::Held;
        }
        let Some(p) = self.pending.remove(&key) else {
            return FragOutcome::Held;
        };
        let Some(mut out) = p.header else {
            return FragOutcome::Held;
        };
        let payload = &p.data[..total];
        if h.is_v6() {
            // 16 bits, wrapping as in `BlockInserted`.
            let plen = (out.len() + payload.len()).saturating_sub(40) as u16;
            out[4..6].copy_from_slice(&plen.to_be_bytes());
        } else {
            // The length field wraps as in Zeek's `BlockInserted`.
            let tl = (out.len() + payload.len()) as u16;
            out[2..4].copy_from_slice(&tl.to_be_bytes());
            out[6] = 0;
            out[7] = 0;
        }
        out.extend_from_slice(payload);
        FragOutcome::Complete(out)
    }

    fn expire(&mut self, now: f64) {
        let before = self.pending.len();
        self.pending
            .retain(|_, p| now - p.first_seen < FRAG_TIMEOUT);
        self.evicted += (before - self.pending.len()) as u64;
    }
}

/// Where the next-header field of the last header in an IPv6 header chain is.
fn last_next_header(hdr: &[u8]) -> Option<usize> {
    let mut next = *hdr.get(6)?;
    let (mut at, mut off) = (6, 40);
    while off < hdr.len() {
        let h = hdr.get(off..off + 2)?;
        let len = match next {
            51 => (usize::from(h[1]) + 2) * 4,
            _ => (usize::from(h[1]) + 1) * 8,
        };
        (at, next, off) = (off, h[0], off + len);
    }
    Some(at)
}

/// Whether the ranges cover `[0, total)` without holes.
fn covers(ranges: &mut [(usize, usize)], total: usize) -> bool {
    ranges.sort_unstable();
    let mut reach = 0;
    for &(s, e) in ranges.iter() {
        if s > reach {
            return false;
        }
        reach = reach.max(e);
    }
    reach >= total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(offset: u32, more: bool, dont_fragment: bool) -> (IpHeader, FragInfo) {
        let h = IpHeader {
            src: "10.0.0.1".parse().expect("literal"),
            dst: "10.0.0.2".parse().expect("literal"),
            proto: 17,
            total_len: 0,
            header_len: 20,
            frag: None,
            len_zero: false,
        };
        let f = FragInfo {
            id: 7,
            offset,
            more,
            dont_fragment,
        };
        (h, f)
    }

    /// `FragReassembler::AddFragment`: the weirds of one fragment, raised without dropping it.
    #[test]
    fn fragment_weirds_follow_zeeks_add_fragment() {
        let mut d = Defragmenter::default();
        let mut weirds = Vec::new();
        let (h, f) = v4(0, true, true);
        let small = [0u8; 40];
        assert_eq!(d.add(1.0, &h, f, &small, &mut weirds), FragOutcome::Held);
        assert_eq!(
            weirds,
            vec!["fragment_with_DF", "excessively_small_fragment"]
        );
        weirds.clear();
        let (h, f) = v4(63_992, false, false);
        let big = [0u8; 120];
        d.add(1.1, &h, f, &big, &mut weirds);
        assert_eq!(weirds, vec!["excessively_large_fragment"]);
    }

    /// `FragReassembler::BlockInserted`: the headers before the fragment header stay, the
    /// last one naming the payload's protocol, and the payload length wraps at 16 bits.
    #[test]
    fn ipv6_reassembly_keeps_the_headers_before_the_fragment_header() {
        let mut d = Defragmenter::default();
        let mut packet = vec![0x60, 0, 0, 0, 0, 0, 0, 64];
        packet.extend_from_slice(&[0; 32]);
        packet.extend_from_slice(&[44, 0, 1, 4, 0, 0, 0, 0]);
        packet.extend_from_slice(&[17, 0, 0, 0, 0, 0, 0, 9]);
        let h = IpHeader {
            src: "2001:db8::1".parse().expect("literal"),
            dst: "2001:db8::2".parse().expect("literal"),
            proto: 17,
            total_len: 0,
            header_len: 56,
            frag: None,
            len_zero: false,
        };
        let frag = |offset, more| FragInfo {
            id: 9,
            offset,
            more,
            dont_fragment: false,
        };
        let mut first = packet.clone();
        first.extend_from_slice(&[7; 32]);
        assert_eq!(
            d.add(1.0, &h, frag(0, true), &first, &mut Vec::new()),
            FragOutcome::Held
        );
        let mut last = packet.clone();
        last.extend_from_slice(&[8; 65_496]);
        let FragOutcome::Complete(out) = d.add(1.1, &h, frag(32, false), &last, &mut Vec::new())
        else {
            panic!("reassembled");
        };
        assert_eq!(out.len(), 48 + 65_528);
        assert_eq!(out[40], 17, "the hop-by-hop header names UDP");
        assert_eq!(&out[4..6], &[0, 0], "65,536 wraps to 0");
    }
}
