//! Internet checksums: the IPv4 header's, and the transport checksums over the pseudo-header.

use std::net::{IpAddr, Ipv6Addr};

use super::ipproto;

/// One's-complement sum (folded, not inverted) over `data`, starting from `initial`.
pub fn checksum(data: &[u8], initial: u32) -> u16 {
    let mut sum = u64::from(initial);
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u64::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Pseudo-header sum for TCP/UDP/ICMPv6 checksums.
pub fn pseudo_header_sum(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> u32 {
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            sum = sum.wrapping_add(u32::from(u16::from_be_bytes([
                c[0],
                *c.get(1).unwrap_or(&0),
            ])));
        }
    };
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            add(&s.octets());
            add(&d.octets());
        }
        (s, d) => {
            add(&to_v6(s).octets());
            add(&to_v6(d).octets());
        }
    }
    sum = sum.wrapping_add(u32::from(proto));
    sum = sum
        .wrapping_add((len & 0xffff) as u32)
        .wrapping_add((len >> 16) as u32);
    sum
}

fn to_v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// Verifies a transport checksum: TCP, UDP and ICMPv6 over the pseudo-header, ICMP and IGMP
/// over the message alone.
/// A segment captured shorter than its length on the wire cannot be verified and passes.
pub fn transport_checksum_ok(
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    l4: &[u8],
    l4_len: usize,
) -> bool {
    let Some(segment) = l4.get(..l4_len) else {
        return true;
    };
    let initial = if matches!(proto, ipproto::ICMP | ipproto::IGMP) {
        0
    } else {
        pseudo_header_sum(src, dst, proto, l4_len)
    };
    checksum(segment, initial) == 0xffff
}
