//! Splitting traffic across nodes and worker threads.
//!
//! The sensor's own split hashes the two IP addresses symmetrically after decoding VLAN,
//! QinQ, MPLS and IPv6, so both directions of a flow, and all fragments of a datagram, land
//! on the same node and worker. The BPF split is the seed's filter: it sees only untagged
//! IPv4 and silently drops VLAN, QinQ and IPv6 traffic on every node.

use std::net::IpAddr;

use crate::decode::{decode_link, Linktype};

/// How nodes divide the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SplitMode {
    /// The sensor's symmetric address hash (default).
    #[default]
    Hash,
    /// The seed's BPF filter, applied in libpcap.
    Bpf,
}

/// Which slice of the traffic this node analyzes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeSplit {
    pub count: u32,
    pub index: u32,
    pub mode: SplitMode,
    /// VLAN id the BPF filter is prefixed with (`vlan <id> &&`), as the seed advises for
    /// tagged links.
    pub vlan: Option<u16>,
}

impl NodeSplit {
    pub fn single() -> Self {
        NodeSplit {
            count: 1,
            index: 0,
            mode: SplitMode::Hash,
            vlan: None,
        }
    }

    /// Whether this node keeps a packet with the given flow hash (hash mode only).
    pub fn keeps(&self, hash: u64) -> bool {
        self.count <= 1
            || self.mode == SplitMode::Bpf
            || hash % u64::from(self.count) == u64::from(self.index)
    }

    /// The BPF split filter for this node, if in BPF mode.
    pub fn bpf(&self) -> Option<String> {
        (self.mode == SplitMode::Bpf && self.count > 1)
            .then(|| bpf_split_filter(self.count, self.index, self.vlan))
    }
}

/// The seed's per-node filter.
pub fn bpf_split_filter(n: u32, k: u32, vlan: Option<u16>) -> String {
    let expr = format!("(ip[14:2]+ip[18:2]) - ({n}*((ip[14:2]+ip[18:2])/{n})) == {k}");
    match vlan {
        Some(v) => format!("vlan {v} && {expr}"),
        None => expr,
    }
}

/// Combines the user's filter with the split filter, parenthesised like Zeek's
/// `combine_filters` (pcap-filter `and`/`or` have equal precedence).
pub fn combine_filters(user: Option<&str>, split: Option<&str>) -> Option<String> {
    match (user.filter(|u| !u.trim().is_empty()), split) {
        (Some(u), Some(s)) => Some(format!("({u}) and ({s})")),
        (Some(u), None) => Some(u.to_string()),
        (None, Some(s)) => Some(s.to_string()),
        (None, None) => None,
    }
}

/// Symmetric hash of the outermost IP address pair; 0 for frames without IP.
pub fn flow_hash(linktype: Linktype, frame: &[u8]) -> u64 {
    let Ok(info) = decode_link(linktype, frame) else {
        return 0;
    };
    let Some(ip) = frame.get(info.ip_offset..) else {
        return 0;
    };
    let Some((a, b)) = addresses(ip) else {
        return 0;
    };
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut h = Fnv::default();
    h.addr(lo);
    h.addr(hi);
    h.finish()
}

fn addresses(ip: &[u8]) -> Option<(IpAddr, IpAddr)> {
    match ip.first()? >> 4 {
        4 => {
            let s: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            let d: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            Some((IpAddr::from(s), IpAddr::from(d)))
        }
        6 => {
            let s: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            let d: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            Some((IpAddr::from(s), IpAddr::from(d)))
        }
        _ => None,
    }
}

/// FNV-1a with a final avalanche, so `hash % n` is balanced for small n.
#[derive(Debug)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn addr(&mut self, a: IpAddr) {
        let bytes: Vec<u8> = match a {
            IpAddr::V4(v) => v.octets().to_vec(),
            IpAddr::V6(v) => v.octets().to_vec(),
        };
        for b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
        z ^ (z >> 33)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_text_matches_the_seed() {
        assert_eq!(
            bpf_split_filter(4, 0, None),
            "(ip[14:2]+ip[18:2]) - (4*((ip[14:2]+ip[18:2])/4)) == 0"
        );
        assert_eq!(
            combine_filters(Some("tcp"), Some("x == 1")).as_deref(),
            Some("(tcp) and (x == 1)")
        );
    }

    #[test]
    fn hash_is_symmetric() {
        let mut a = vec![0u8; 12];
        a.extend_from_slice(&[
            0x08, 0x00, 0x45, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ]);
        let mut b = a.clone();
        b[26..30].copy_from_slice(&[10, 0, 0, 2]);
        b[30..34].copy_from_slice(&[10, 0, 0, 1]);
        assert_eq!(
            flow_hash(Linktype::ETHERNET, &a),
            flow_hash(Linktype::ETHERNET, &b)
        );
        assert_ne!(flow_hash(Linktype::ETHERNET, &a), 0);
    }
}
