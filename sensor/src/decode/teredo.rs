//! Teredo (IPv6 over UDP), as Zeek's `packet_analysis/protocol/teredo/Teredo.cc` reads it:
//! optional authentication and origin indication headers, then an IPv6 packet; and the
//! content test (`DetectProtocol`) that finds Teredo on any UDP port.

use super::ipproto;

/// Teredo's well-known port.
pub const TEREDO_PORT: u16 = 3544;

/// What a Teredo datagram carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Teredo<'a> {
    /// A whole IPv6 packet.
    Ip(&'a [u8]),
    /// A bubble (an IPv6 header with no next header and no payload) followed by more bytes:
    /// Zeek's `Teredo_bubble_with_payload`, kept as the bubble.
    BubbleWithPayload(&'a [u8]),
}

/// Parses the headers (`TeredoEncapsulation::DoParse`) and checks the inner length as
/// `IP::ParsePacket` does; `None` is an analyzer violation.
pub fn parse(b: &[u8]) -> Option<Teredo<'_>> {
    let ip = inner_ip(b, false, false)?;
    let plen = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
    match (40 + plen).cmp(&ip.len()) {
        std::cmp::Ordering::Equal => Some(Teredo::Ip(ip)),
        std::cmp::Ordering::Greater => None,
        std::cmp::Ordering::Less if ip[6] == ipproto::NONE && plen == 0 => {
            Some(Teredo::BubbleWithPayload(&ip[..40]))
        }
        std::cmp::Ordering::Less => None,
    }
}

fn inner_ip(b: &[u8], found_origin: bool, found_auth: bool) -> Option<&[u8]> {
    let tag = u16::from_be_bytes([*b.first()?, *b.get(1)?]);
    match tag {
        0 if !found_origin => inner_ip(b.get(8..)?, true, found_auth),
        1 if !found_origin && !found_auth => {
            let len = 4 + usize::from(*b.get(2)?) + usize::from(*b.get(3)?) + 8 + 1;
            inner_ip(b.get(len..)?, found_origin, true)
        }
        t if t >> 12 == 6 && b.len() >= 40 => Some(b),
        _ => None,
    }
}

/// `TeredoAnalyzer::DetectProtocol`: whether a UDP payload on another port is Teredo.
pub fn detect(b: &[u8]) -> bool {
    let len = b.len();
    if len < 40 || (b[0] >> 4 != 6 && (b[0] != 0 || (b[1] != 0 && b[1] != 1))) {
        return false;
    }
    // An IPv6 header with a Teredo (2001:0::/32) source or destination.
    let teredo_addr = |at: usize| b.get(at..at + 4) == Some(&[0x20, 0x01, 0, 0][..]);
    if b[0] >> 4 == 6 && (teredo_addr(8) || teredo_addr(24)) {
        return true;
    }
    let mut rest = b;
    let mut val = u16::from(b[1]);
    if val == 1 {
        let skip = 13 + usize::from(b[2]) + usize::from(b[3]);
        rest = match b.get(skip..) {
            Some(r) if r.len() >= 40 => r,
            _ => return false,
        };
        val = u16::from_be_bytes([rest[0], rest[1]]);
    }
    val == 0
        && rest
            .get(8..)
            .is_some_and(|ip| ip.len() >= 40 && ip[0] >> 4 == 6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv6(next: u8, plen: u16, src_teredo: bool) -> Vec<u8> {
        let mut ip = vec![0x60, 0, 0, 0];
        ip.extend_from_slice(&plen.to_be_bytes());
        ip.extend_from_slice(&[next, 64]);
        let mut src = [0u8; 16];
        if src_teredo {
            src[..4].copy_from_slice(&[0x20, 0x01, 0, 0]);
        }
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&[0u8; 16]);
        ip
    }

    #[test]
    fn bubbles_packets_and_violations() {
        let bubble = ipv6(ipproto::NONE, 0, true);
        assert_eq!(parse(&bubble), Some(Teredo::Ip(&bubble)));
        let mut extra = bubble.clone();
        extra.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(parse(&extra), Some(Teredo::BubbleWithPayload(&bubble)));
        let mut udp = ipv6(17, 4, true);
        assert_eq!(parse(&udp), None, "payload shorter than its length");
        udp.extend_from_slice(&[0; 6]);
        assert_eq!(parse(&udp), None, "payload longer than its length");
        let mut origin = vec![0u8; 8];
        origin.extend_from_slice(&bubble);
        assert_eq!(parse(&origin), Some(Teredo::Ip(&bubble)));
    }

    #[test]
    fn detection_on_other_ports() {
        assert!(detect(&ipv6(ipproto::NONE, 0, true)));
        assert!(!detect(&ipv6(ipproto::NONE, 0, false)));
        let mut origin = vec![0u8; 8];
        origin.extend_from_slice(&ipv6(ipproto::NONE, 0, false));
        assert!(detect(&origin));
        assert!(!detect(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n....."));
        // Any length: a TCP segment to a Teredo address.
        let mut to_teredo = ipv6(6, 20, false);
        to_teredo[24..28].copy_from_slice(&[0x20, 0x01, 0, 0]);
        to_teredo.extend_from_slice(&[0; 20]);
        assert!(detect(&to_teredo));
    }
}
