//! Tunnel headers the decoder follows, as Zeek's packet analysis does by default: GRE (with
//! ERSPAN and PPTP's enhanced GRE), VXLAN and GTPv1-U. Each function returns the inner
//! packet or why there is none; the engine decides what to do with it.

/// What a tunnel header carries.
pub enum Inner<'a> {
    Ip(&'a [u8]),
    Ether(&'a [u8]),
    /// An IEEE 802.11 frame (Aruba's GRE protocol types).
    Wlan(&'a [u8]),
}

/// GRE's Aruba protocol types (`GREAnalyzer::AnalyzePacket`), which carry 802.11 frames.
fn is_aruba(proto: u16) -> bool {
    (proto & 0x8200 == 0x8200 && proto & 0x0f == 0)
        || (proto & 0x8300 == 0x8300 && proto & 0x0f == 0 && proto <= 0x8370)
        || proto == 0x9000
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|s| u16::from_be_bytes([s[0], s[1]]))
}

/// Zeek's `PacketAnalyzer::VXLAN::vxlan_ports`.
pub const VXLAN_PORT: u16 = 4789;
/// GTPv1 user plane.
pub const GTP_U_PORT: u16 = 2152;
/// Zeek's `PacketAnalyzer::Geneve::geneve_ports`.
pub const GENEVE_PORT: u16 = 6081;
/// Zeek's `PacketAnalyzer::GRE::gre_ports`: GRE over UDP.
pub const GRE_UDP_PORT: u16 = 4754;
/// Zeek's `PacketAnalyzer::AYIYA::ayiya_ports`.
pub const AYIYA_PORT: u16 = 5072;
/// The inner IP packet of a GTPv1-U T-PDU (message type 0xff); other messages carry none.
pub fn gtp_u_payload(b: &[u8]) -> Option<&[u8]> {
    let flags = *b.first()?;
    if flags >> 5 != 1 || flags & 0x10 == 0 || *b.get(1)? != 0xff {
        return None;
    }
    let mut off = 8;
    if flags & 0x07 != 0 {
        let mut next = *b.get(11)?;
        off = 12;
        // Extension headers: a length in 4-byte units, the content, then the next type.
        for _ in 0..8 {
            if next == 0 {
                break;
            }
            let units = usize::from(*b.get(off)?);
            if units == 0 {
                return None;
            }
            off += units * 4;
            next = *b.get(off.checked_sub(1)?)?;
        }
    }
    let inner = b.get(off..)?;
    matches!(inner.first()? >> 4, 4 | 6).then_some(inner)
}

/// Why a GRE packet carries nothing to analyse, named as Zeek's weird.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GreError {
    Truncated,
    UnknownVersion(u16),
    EnhancedProtocolType(u16),
    Routing,
    UnknownFlags,
    NonIpInEncap,
}

impl GreError {
    pub fn weird(self) -> &'static str {
        match self {
            GreError::Truncated => "truncated_GRE",
            GreError::UnknownVersion(_) => "unknown_gre_version",
            GreError::EnhancedProtocolType(_) => "egre_protocol_type",
            GreError::Routing => "gre_routing",
            GreError::UnknownFlags => "unknown_gre_flags",
            GreError::NonIpInEncap => "non_ip_packet_in_encap",
        }
    }

    /// weird.log's `addl`, as `GREAnalyzer::AnalyzePacket` formats it.
    pub fn addl(self) -> Option<String> {
        match self {
            GreError::UnknownVersion(v) => Some(format!("version={v}")),
            GreError::EnhancedProtocolType(p) => Some(format!("proto={p}")),
            _ => None,
        }
    }
}

/// GRE with Zeek's checks: the inner packet, `None` for payloads other than IP, Ethernet
/// (transparent bridging, ERSPAN II/III), 802.11 (Aruba) and PPTP, which Zeek leaves alone
/// without a weird.
pub fn gre(l4: &[u8]) -> Result<Option<Inner<'_>>, GreError> {
    let (Some(flags), Some(proto)) = (be16(l4, 0), be16(l4, 2)) else {
        return Err(GreError::Truncated);
    };
    let len = l4.len();
    let version = flags & 0x7;
    let mut gre_len = 4;
    for bit in [0x8000, 0x2000, 0x1000, 0x0080] {
        if flags & bit != 0 {
            gre_len += 4;
        }
    }
    if version > 1 {
        return Err(GreError::UnknownVersion(version));
    }
    // The bytes the checks below need beyond the GRE header, and the extra header skipped.
    let (mut needed, mut skip) = (0, 0);
    if version == 0 {
        match proto {
            0x6558 if len > gre_len + 14 => needed = 14,
            // ERSPAN type I has no header of its own, type II (the sequence bit) 8 bytes.
            0x88be if len > gre_len + 14 => {
                needed = 14;
                if flags & 0x1000 != 0 {
                    (needed, skip) = (14 + 8, 8);
                    if len < gre_len + needed {
                        return Err(GreError::Truncated);
                    }
                }
            }
            // ERSPAN type III: 12 bytes, 8 more with the optional platform header.
            0x22eb if len > gre_len + 14 + 12 => {
                (needed, skip) = (14 + 12, 12);
                if l4[gre_len + 11] & 1 == 1 {
                    if len <= gre_len + 12 + 8 + 14 {
                        return Err(GreError::Truncated);
                    }
                    (needed, skip) = (14 + 20, 20);
                }
            }
            0x6558 | 0x88be | 0x22eb => return Err(GreError::Truncated),
            p if is_aruba(p) && len <= gre_len => return Err(GreError::Truncated),
            _ => {}
        }
    } else if proto != 0x880b {
        return Err(GreError::EnhancedProtocolType(proto));
    } else {
        (needed, skip) = (4, 4);
    }
    if flags & 0x4000 != 0 {
        return Err(GreError::Routing);
    }
    if flags & 0x0078 != 0 {
        return Err(GreError::UnknownFlags);
    }
    if len < gre_len + needed {
        return Err(GreError::Truncated);
    }
    let rest = &l4[gre_len + skip..];
    let inner = match (version, proto) {
        (0, 0x0800) | (0, 0x86dd) => Inner::Ip(rest),
        (0, 0x6558 | 0x88be | 0x22eb) => Inner::Ether(rest),
        (0, p) if is_aruba(p) => Inner::Wlan(rest),
        (1, _) => match be16(l4, gre_len + 2) {
            Some(0x0021 | 0x0057) => Inner::Ip(rest),
            _ => return Err(GreError::NonIpInEncap),
        },
        _ => return Ok(None),
    };
    Ok(Some(inner))
}

/// The Ethernet frame of a VXLAN datagram's payload (the I flag set), if it holds one.
pub fn vxlan_payload(payload: &[u8]) -> Option<&[u8]> {
    if payload.len() < 8 + 14 || payload[0] & 0x08 == 0 {
        return None;
    }
    Some(&payload[8..])
}

/// Why a Geneve datagram carries nothing to analyse, named as Zeek's weird.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeneveError {
    /// The header (or its options) is cut short: an analyzer violation, no weird.
    Truncated,
    InvalidVersion(u8),
    EmptyPacket,
}

impl GeneveError {
    pub fn weird(self) -> &'static str {
        match self {
            GeneveError::Truncated => "geneve_header_truncation",
            GeneveError::InvalidVersion(_) => "geneve_invalid_version",
            GeneveError::EmptyPacket => "geneve_empty_packet",
        }
    }

    pub fn addl(self) -> Option<String> {
        match self {
            GeneveError::InvalidVersion(v) => Some(v.to_string()),
            _ => None,
        }
    }
}

/// The packet a Geneve header carries, by its protocol type (Ethernet or IP).
pub fn geneve_payload(payload: &[u8]) -> Result<Inner<'_>, GeneveError> {
    let first = *payload.first().ok_or(GeneveError::Truncated)?;
    if payload.len() < 8 {
        return Err(GeneveError::Truncated);
    }
    let version = first >> 6;
    if version != 0 {
        return Err(GeneveError::InvalidVersion(version));
    }
    let hdr = 8 + usize::from(first & 0x3f) * 4;
    let inner = payload.get(hdr..).ok_or(GeneveError::Truncated)?;
    if inner.is_empty() {
        return Err(GeneveError::EmptyPacket);
    }
    match be16(payload, 2) {
        Some(0x6558) => Ok(Inner::Ether(inner)),
        _ => Ok(Inner::Ip(inner)),
    }
}

/// The IP packet of an AYIYA "forward" message (opcode 1); other messages carry none.
pub fn ayiya_payload(payload: &[u8]) -> Option<&[u8]> {
    let head = payload.get(..8)?;
    let identity_len = 1usize << (head[0] >> 4);
    let signature_len = usize::from(head[1] >> 4) * 4;
    if head[2] & 0x0f != 1 {
        return None;
    }
    let inner = payload.get(8 + identity_len + signature_len..)?;
    (!inner.is_empty()).then_some(inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `GREAnalyzer::AnalyzePacket` names the version and the enhanced GRE protocol it rejects.
    #[test]
    fn rejected_versions_and_protocols_carry_their_value() {
        let Err(e) = gre(&[0, 2, 0x08, 0]) else {
            panic!("version 2 is unknown");
        };
        assert_eq!(
            (e.weird(), e.addl()),
            ("unknown_gre_version", Some("version=2".into()))
        );
        let Err(e) = gre(&[0x30, 1, 0x08, 0]) else {
            panic!("enhanced GRE carries PPP only");
        };
        assert_eq!(
            (e.weird(), e.addl()),
            ("egre_protocol_type", Some("proto=2048".into()))
        );
    }

    /// `GREAnalyzer::AnalyzePacket`: Ethernet needs more than its 14-byte header, ERSPAN II
    /// its 8-byte header too, PPTP its 4-byte PPP header.
    #[test]
    fn truncation_is_checked_per_payload_type() {
        let mut teb = vec![0, 0, 0x65, 0x58];
        teb.extend_from_slice(&[0; 14]);
        assert_eq!(gre(&teb).err(), Some(GreError::Truncated));
        teb.push(0);
        assert!(matches!(gre(&teb), Ok(Some(Inner::Ether(f))) if f.len() == 15));
        let mut erspan2 = vec![0x10, 0, 0x88, 0xbe, 0, 0, 0, 1];
        erspan2.extend_from_slice(&[0; 21]);
        assert_eq!(gre(&erspan2).err(), Some(GreError::Truncated));
        erspan2.push(0);
        assert!(matches!(gre(&erspan2), Ok(Some(Inner::Ether(f))) if f.len() == 14));
        let pptp = [0x30, 1, 0x88, 0x0b, 0, 0, 0, 0, 0xff, 3];
        assert_eq!(gre(&pptp).err(), Some(GreError::Truncated));
    }
}
