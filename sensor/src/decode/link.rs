//! The link layer, as Zeek's packet analysis dispatches it by default: the capture's link type
//! picks the first analyzer (Ethernet, FDDI, 802.11 with or without radiotap, NFLOG, PPP, Linux
//! cooked, BSD loopback, raw IP), and each layer hands the rest of the frame to the next by its
//! protocol field (EtherType, PPP protocol, address family) until IP. Frames that end in another
//! protocol (ARP, LLC without SNAP, IPX ...) are not IP and carry nothing for the sensor; a layer
//! that is cut short is a weird under Zeek's name, raised by the analyzer Zeek names.

use super::{DecodeError, Linktype};

/// What the link layer found: where the IP header starts, and the VLAN ids seen on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkInfo {
    pub vlan: Option<u16>,
    pub inner_vlan: Option<u16>,
    /// Offset of the IP header in the frame.
    pub ip_offset: usize,
    /// A third VLAN tag overwrote the inner one (Zeek's `triple_tagged_vlan_unsupported`).
    pub triple_vlan: bool,
}

/// A link-layer weird: Zeek's name, the analyzer that raises it, and for a few the two lengths
/// Zeek prints as `(a > b)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkWeird {
    pub name: &'static str,
    pub source: &'static str,
    pub lengths: Option<(usize, usize)>,
}

fn weird(name: &'static str, source: &'static str) -> DecodeError {
    DecodeError::Link(LinkWeird {
        name,
        source,
        lengths: None,
    })
}

mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const IPV6: u16 = 0x86dd;
    pub const VLAN: u16 = 0x8100;
    pub const QINQ: u16 = 0x88a8;
    pub const QINQ_OLD: u16 = 0x9100;
    pub const MPLS: u16 = 0x8847;
    pub const PPPOE: u16 = 0x8864;
    pub const VNTAG: u16 = 0x8926;
    pub const PBB: u16 = 0x88e7;
    pub const FABRICPATH: u16 = 0x8903;
}

/// FDDI's 13-byte header and an 8-byte LLC/SNAP header.
const FDDI_HEADER_LEN: usize = 13 + 8;

/// Nested layers per frame before Zeek gives up (`max_packet_analyzer_depth_exceeded`).
const MAX_DEPTH: usize = 24;

/// The next layer to decode and where it starts.
#[derive(Debug, Clone, Copy)]
enum Next {
    Ethernet,
    EtherType(u16),
    /// An 802.3 frame's payload of this length: SNAP, Novell or plain LLC.
    Llc(usize),
    Ppp,
    Ieee802_11,
    Ip,
    NotIp,
}

/// Finds the IP header inside a captured frame.
pub fn decode_link(linktype: Linktype, frame: &[u8]) -> Result<LinkInfo, DecodeError> {
    let info = LinkInfo::default();
    let (at, next) = match linktype {
        Linktype::ETHERNET => (0, Next::Ethernet),
        Linktype::NULL | Linktype::LOOP => (4, null_family(linktype, frame)?),
        Linktype::LINUX_SLL => {
            let t = be16(frame, 14).ok_or(DecodeError::TruncatedLink)?;
            (16, Next::EtherType(t))
        }
        Linktype::LINUX_SLL2 => {
            let t = be16(frame, 0).ok_or(DecodeError::TruncatedLink)?;
            if frame.len() < 20 {
                return Err(DecodeError::TruncatedLink);
            }
            (20, Next::EtherType(t))
        }
        Linktype::RAW
        | Linktype::RAW_OLD
        | Linktype::RAW_OLD2
        | Linktype::IPV4
        | Linktype::IPV6 => (0, Next::Ip),
        Linktype::PPP => (0, Next::Ppp),
        Linktype::IEEE802_11 => (0, Next::Ieee802_11),
        Linktype::RADIOTAP => {
            let len = frame.len();
            let hdr = match (frame.get(2), frame.get(3)) {
                (Some(&lo), Some(&hi)) if len > 4 => usize::from(u16::from_le_bytes([lo, hi])),
                _ => return Err(weird("truncated_radiotap_header", "IEEE802_11_RADIO")),
            };
            if hdr >= len {
                return Err(weird("truncated_radiotap_header", "IEEE802_11_RADIO"));
            }
            (hdr, Next::Ieee802_11)
        }
        Linktype::NFLOG => nflog(frame)?,
        // Zeek's FDDI analyzer skips the FDDI and LLC headers without reading them.
        Linktype::FDDI => {
            if frame.len() <= FDDI_HEADER_LEN {
                return Err(weird("FDDI_analyzer_failed", "FDDI"));
            }
            (FDDI_HEADER_LEN, Next::Ip)
        }
        _ => return Err(DecodeError::UnsupportedLinktype),
    };
    walk(frame, at, next, info)
}

/// Finds the IP header in a packet of the given EtherType (an A-MSDU subframe's).
pub fn decode_ethertype(ethertype: u16, packet: &[u8]) -> Result<LinkInfo, DecodeError> {
    walk(packet, 0, Next::EtherType(ethertype), LinkInfo::default())
}

fn walk(
    frame: &[u8],
    mut at: usize,
    mut next: Next,
    mut info: LinkInfo,
) -> Result<LinkInfo, DecodeError> {
    for _ in 0..MAX_DEPTH {
        let rest = frame.get(at..).unwrap_or_default();
        (at, next) = match next {
            Next::Ip => return ip_by_version(rest, at, info),
            Next::NotIp => return Err(DecodeError::NotIp),
            Next::Ethernet => ethernet(rest, at)?,
            Next::EtherType(t) => ethertype(t, rest, at, &mut info)?,
            Next::Llc(len) => llc(rest.get(..len).unwrap_or(rest), at)?,
            Next::Ppp => ppp(rest, at)?,
            Next::Ieee802_11 => ieee802_11(rest, at)?,
        };
    }
    Err(weird("max_packet_analyzer_depth_exceeded", "ETHERNET"))
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|s| u16::from_be_bytes([s[0], s[1]]))
}

/// BSD loopback: the address family, in the capturing host's byte order for DLT_NULL.
fn null_family(linktype: Linktype, frame: &[u8]) -> Result<Next, DecodeError> {
    let b: [u8; 4] = frame
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or(DecodeError::TruncatedLink)?;
    let fam = if linktype == Linktype::LOOP {
        u32::from_be_bytes(b)
    } else {
        let le = u32::from_le_bytes(b);
        if le < 256 {
            le
        } else {
            u32::from_be_bytes(b)
        }
    };
    Ok(match fam {
        2 | 24 | 28 | 30 => Next::Ip,
        _ => Next::NotIp,
    })
}

fn ip_by_version(rest: &[u8], at: usize, mut info: LinkInfo) -> Result<LinkInfo, DecodeError> {
    match rest.first().map(|b| b >> 4) {
        Some(4 | 6) => {
            info.ip_offset = at;
            Ok(info)
        }
        Some(_) => Err(DecodeError::UnknownIpVersion),
        None => Err(DecodeError::TruncatedIp),
    }
}

/// Ethernet II by EtherType, 802.3 frames by their length, Cisco FabricPath skipped.
fn ethernet(rest: &[u8], at: usize) -> Result<(usize, Next), DecodeError> {
    if rest.len() <= 16 {
        return Err(weird("truncated_ethernet_frame", "ETHERNET"));
    }
    let (rest, at) = if be16(rest, 12) == Some(ethertype::FABRICPATH) {
        if rest.len() <= 16 + 14 {
            return Err(weird("truncated_link_header_cfp", "ETHERNET"));
        }
        (&rest[16..], at + 16)
    } else {
        (rest, at)
    };
    let t = usize::from(be16(rest, 12).unwrap_or_default());
    match t {
        1536.. => Ok((at + 14, Next::EtherType(t as u16))),
        ..=1500 => {
            if rest.len() - 14 < t {
                return Err(weird("truncated_ethernet_frame", "ETHERNET"));
            }
            Ok((at + 14, Next::Llc(rest.len() - 14)))
        }
        _ => Err(weird("undefined_ether_type", "ETHERNET")),
    }
}

fn ethertype(
    t: u16,
    rest: &[u8],
    at: usize,
    info: &mut LinkInfo,
) -> Result<(usize, Next), DecodeError> {
    use ethertype::*;
    match t {
        IPV4 | IPV6 => Ok((at, Next::Ip)),
        VLAN | QINQ | QINQ_OLD => vlan(rest, at, info),
        MPLS => mpls(rest, at),
        PPPOE => {
            if rest.len() <= 8 {
                return Err(weird("truncated_pppoe_header", "PPPOE"));
            }
            Ok((at + 6, Next::Ppp))
        }
        VNTAG => {
            if rest.len() <= 6 {
                return Err(weird("truncated_vntag_header", "VNTAG"));
            }
            Ok((at + 6, Next::EtherType(be16(rest, 4).unwrap_or_default())))
        }
        PBB => {
            if rest.len() <= 18 {
                return Err(weird("truncated_PBB_header", "PBB"));
            }
            // The customer frame starts at its destination address, after the I-TAG.
            Ok((at + 4, Next::Ethernet))
        }
        _ => Ok((at, Next::NotIp)),
    }
}

fn vlan(rest: &[u8], at: usize, info: &mut LinkInfo) -> Result<(usize, Next), DecodeError> {
    if rest.len() <= 4 {
        return Err(weird("truncated_VLAN_header", "VLAN"));
    }
    let id = be16(rest, 0).unwrap_or_default() & 0x0fff;
    if info.vlan.is_none() {
        info.vlan = Some(id);
    } else {
        info.triple_vlan |= info.inner_vlan.is_some();
        info.inner_vlan = Some(id);
    }
    let t = usize::from(be16(rest, 2).unwrap_or_default());
    match t {
        1536.. => Ok((at + 4, Next::EtherType(t as u16))),
        ..=1500 => {
            let len = rest.len() - 4;
            if len < 2 {
                return Err(weird("truncated_VLAN_header", "VLAN"));
            }
            Ok((at + 4, Next::Llc(len.min(t))))
        }
        _ => Err(weird("undefined_vlan_protocol", "VLAN")),
    }
}

/// MPLS labels up to the bottom of the stack, then IP by its version nibble.
fn mpls(rest: &[u8], at: usize) -> Result<(usize, Next), DecodeError> {
    let mut off = 0;
    loop {
        let label = rest.get(off..off + 4).ok_or(DecodeError::TruncatedMpls)?;
        off += 4;
        if label[2] & 0x01 != 0 {
            return Ok((at + off, Next::Ip));
        }
    }
}

/// 802.2 LLC: only SNAP with a zero OUI carries an EtherType; Novell raw 802.3 and other LLC
/// frames end here.
fn llc(rest: &[u8], at: usize) -> Result<(usize, Next), DecodeError> {
    if rest.get(..2) != Some(&[0xaa, 0xaa]) {
        return Ok((at, Next::NotIp));
    }
    let control = *rest
        .get(2)
        .ok_or_else(|| weird("truncated_snap_llc_header", "SNAP"))?;
    let llc_len = if control & 0x03 == 0x03 { 3 } else { 4 };
    let snap = rest
        .get(llc_len..llc_len + 5)
        .ok_or_else(|| weird("truncated_snap_header", "SNAP"))?;
    if snap[..3] != [0, 0, 0] {
        return Ok((at, Next::NotIp));
    }
    let t = u16::from_be_bytes([snap[3], snap[4]]);
    Ok((at + llc_len + 5, Next::EtherType(t)))
}

/// PPP (DLT_PPP, and inside PPPoE): with or without HDLC framing; IPv4 and IPv6 only.
fn ppp(rest: &[u8], at: usize) -> Result<(usize, Next), DecodeError> {
    if rest.len() <= 2 {
        return Err(weird("truncated_ppp_header", "PPP"));
    }
    let (hdr, proto) = if rest[..2] == [0xff, 0x03] {
        if rest.len() <= 4 {
            return Err(weird("truncated_ppp_hdlc_header", "PPP"));
        }
        (4, be16(rest, 2).unwrap_or_default())
    } else if rest[0] & 1 == 1 {
        // A protocol field compressed to one (odd) byte.
        (1, u16::from(rest[0]))
    } else {
        (2, be16(rest, 0).unwrap_or_default())
    };
    let next = match proto {
        0x0021 | 0x0057 => Next::Ip,
        _ => Next::NotIp,
    };
    Ok((at + hdr, next))
}

/// An 802.11 data frame's payload: LLC/SNAP carrying an EtherType. Management and control
/// frames, frames without data and protected QoS frames carry nothing to analyse.
fn ieee802_11(rest: &[u8], at: usize) -> Result<(usize, Next), DecodeError> {
    const SOURCE: &str = "IEEE802_11";
    let mut hdr = 24;
    if rest.len() <= hdr {
        return Err(weird("truncated_802_11_header", SOURCE));
    }
    let fc = rest[0];
    if (fc >> 2) & 0x02 == 0 || (fc >> 4) & 0x04 != 0 {
        return Ok((at, Next::NotIp));
    }
    if rest[1] & 0x03 == 0x03 {
        hdr += 6;
    }
    if rest.len() <= hdr {
        return Err(weird("truncated_802_11_header", SOURCE));
    }
    let mut amsdu = false;
    if (fc >> 4) & 0x08 != 0 {
        amsdu = rest[hdr] & 0x80 != 0;
        if rest[1] & 0x40 != 0 {
            return Ok((at, Next::NotIp));
        }
        hdr += 2;
    }
    if rest.len() <= hdr {
        return Err(weird("truncated_802_11_header", SOURCE));
    }
    if amsdu {
        return Err(DecodeError::Amsdu(at + hdr));
    }
    let llc = &rest[hdr..];
    if llc.len() < 8 {
        return Err(weird("truncated_802_11_llc_header", SOURCE));
    }
    if llc[..6] != [0xaa, 0xaa, 0x03, 0, 0, 0] {
        return Ok((at, Next::NotIp));
    }
    Ok((
        at + hdr + 8,
        Next::EtherType(u16::from_be_bytes([llc[6], llc[7]])),
    ))
}

/// NFLOG: the packet is the payload TLV; the address family says IPv4 or IPv6.
fn nflog(frame: &[u8]) -> Result<(usize, Next), DecodeError> {
    const SOURCE: &str = "NFLOG";
    if frame.len() <= 4 {
        return Err(weird("truncated_nflog_header", SOURCE));
    }
    if frame[1] != 0 {
        return Err(weird("unknown_nflog_version", SOURCE));
    }
    let family = frame[0];
    let mut at = 4;
    loop {
        let len = frame.len() - at;
        if len <= 4 {
            return Err(weird("nflog_no_pcap_payload", SOURCE));
        }
        // Type and length are in the capturing host's byte order; libpcap writes them so.
        let tlv_len = usize::from(u16::from_le_bytes([frame[at], frame[at + 1]]));
        let tlv_type = u16::from_le_bytes([frame[at + 2], frame[at + 3]]);
        if tlv_type == 9 {
            at += 4;
            break;
        }
        if tlv_len < 4 {
            return Err(weird("nflog_bad_tlv_len", SOURCE));
        }
        let padded = tlv_len.next_multiple_of(4);
        if padded > len {
            return Err(DecodeError::Link(LinkWeird {
                name: "nflog_bad_tlv_len",
                source: SOURCE,
                lengths: Some((padded, len)),
            }));
        }
        at += padded;
    }
    let next = match family {
        2 | 10 => Next::Ip,
        _ => Next::NotIp,
    };
    Ok((at, next))
}
