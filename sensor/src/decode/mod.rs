//! Packet decoding: link layer (Ethernet, 802.1Q/QinQ, MPLS, PPPoE, Linux cooked v1/v2,
//! DLT_NULL/LOOP, raw IP), IPv4 and IPv6 (extension headers, fragments) and the transport
//! headers. Every read is bounds-checked; a malformed packet becomes a [`DecodeError`] that
//! carries Zeek's weird name.

pub mod amsdu;
mod checksum;
pub mod frag;
mod link;
mod reader;
pub mod teredo;
pub mod tunnel;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use checksum::{checksum, pseudo_header_sum, transport_checksum_ok};
pub use link::{decode_ethertype, decode_link, LinkInfo, LinkWeird};
pub use reader::Reader;

/// A pcap link-layer type (DLT). Unknown values are representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Linktype(pub i32);

impl Linktype {
    pub const NULL: Linktype = Linktype(0);
    pub const FDDI: Linktype = Linktype(10);
    pub const ETHERNET: Linktype = Linktype(1);
    pub const RAW: Linktype = Linktype(101);
    pub const RAW_OLD: Linktype = Linktype(12);
    pub const RAW_OLD2: Linktype = Linktype(14);
    pub const LOOP: Linktype = Linktype(108);
    pub const LINUX_SLL: Linktype = Linktype(113);
    pub const IPV4: Linktype = Linktype(228);
    pub const IPV6: Linktype = Linktype(229);
    pub const LINUX_SLL2: Linktype = Linktype(276);
    pub const PPP: Linktype = Linktype(9);
    pub const IEEE802_11: Linktype = Linktype(105);
    pub const RADIOTAP: Linktype = Linktype(127);
    pub const NFLOG: Linktype = Linktype(239);
}

/// Why a packet could not be decoded; `weird()` is the name Zeek logs for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    TruncatedLink,
    UnsupportedLinktype,
    /// Not IP (ARP, LLDP ...): not an error, just nothing for the sensor.
    NotIp,
    TruncatedIp,
    UnknownIpVersion,
    IpLenZero,
    TruncatedIpLen,
    InvalidIpHeaderSize,
    InternallyTruncatedHeader,
    Ipv4MinHeaderSize,
    BadIpChecksum,
    TruncatedIpv6ExtHeader,
    Ipv6NoNext,
    IncompletelyCapturedFragment,
    TruncatedMpls,
    TruncatedGre,
    /// A link layer Zeek names a weird for.
    Link(LinkWeird),
    /// Not one packet but an 802.11 A-MSDU, whose subframes start at this offset.
    Amsdu(usize),
}

impl DecodeError {
    pub fn weird(self) -> Option<&'static str> {
        Some(match self {
            DecodeError::TruncatedLink => "truncated_link_header",
            DecodeError::UnsupportedLinktype => "unknown_packet_analyzer",
            DecodeError::NotIp | DecodeError::Amsdu(_) => return None,
            DecodeError::TruncatedIp => "truncated_IP",
            DecodeError::UnknownIpVersion => "unknown_ip_version",
            DecodeError::IpLenZero => "ip_hdr_len_zero",
            DecodeError::TruncatedIpLen => "truncated_IP_len",
            DecodeError::InvalidIpHeaderSize => "invalid_IP_header_size",
            DecodeError::InternallyTruncatedHeader => "internally_truncated_header",
            DecodeError::Ipv4MinHeaderSize => "IPv4_min_header_size",
            DecodeError::BadIpChecksum => "bad_IP_checksum",
            DecodeError::TruncatedIpv6ExtHeader => "truncated_IPv6_ext_header",
            DecodeError::Ipv6NoNext => "ipv6_no_next",
            DecodeError::IncompletelyCapturedFragment => "incompletely_captured_fragment",
            DecodeError::TruncatedMpls => "truncated_link_header",
            DecodeError::TruncatedGre => "truncated_GRE",
            DecodeError::Link(w) => w.name,
        })
    }

    /// The analyzer Zeek names in weird.log's `source`.
    pub fn source(self) -> &'static str {
        match self {
            DecodeError::Link(w) => w.source,
            _ => "IP",
        }
    }

    /// weird.log's `addl`.
    pub fn addl(self) -> Option<String> {
        match self {
            DecodeError::Link(LinkWeird {
                lengths: Some((a, b)),
                ..
            }) => Some(format!("({a} > {b})")),
            _ => None,
        }
    }
}

/// IP protocol numbers the sensor handles specially.
pub mod ipproto {
    pub const ICMP: u8 = 1;
    pub const IGMP: u8 = 2;
    pub const IPIP: u8 = 4;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const IPV6: u8 = 41;
    pub const GRE: u8 = 47;
    pub const ICMPV6: u8 = 58;
    pub const NONE: u8 = 59;
}

/// Fragment fields of an IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragInfo {
    pub id: u32,
    /// Offset of this fragment's payload in bytes.
    pub offset: u32,
    pub more: bool,
    /// IPv4's don't-fragment flag (never set for IPv6).
    pub dont_fragment: bool,
}

/// A decoded IP header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpHeader {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Transport protocol after any IPv6 extension headers.
    pub proto: u8,
    /// The IP total length as Zeek counts it for `ip_bytes` (IPv6: 40 + payload length).
    pub total_len: u32,
    /// Header length including IPv6 extension headers up to the transport header.
    pub header_len: usize,
    pub frag: Option<FragInfo>,
    /// IPv4 total length was 0 and the captured length stood in for it (Zeek's IP analyzer
    /// still logs `ip_hdr_len_zero` then, see `IPAnalyzer::AnalyzePacket`).
    pub len_zero: bool,
}

impl IpHeader {
    pub fn is_v6(&self) -> bool {
        self.src.is_ipv6()
    }
}

/// Decodes the IP header at the start of `data` (captured bytes), given the frame's wire
/// length beyond the link header (`wire_len`). Checks Zeek's length rules and, unless
/// `ignore_checksums`, the IPv4 header checksum. Problems in IPv6 destination options are
/// added to `option_weirds` (with the source address Zeek reports), even if decoding fails.
pub fn decode_ip(
    data: &[u8],
    wire_len: usize,
    ignore_checksums: bool,
    option_weirds: &mut Vec<(&'static str, IpAddr)>,
) -> Result<IpHeader, DecodeError> {
    if data.len() < 20 {
        return Err(DecodeError::TruncatedIp);
    }
    match data[0] >> 4 {
        4 => decode_ipv4(data, wire_len, ignore_checksums),
        6 => decode_ipv6(data, wire_len, option_weirds),
        _ => Err(DecodeError::UnknownIpVersion),
    }
}

fn decode_ipv4(
    data: &[u8],
    wire_len: usize,
    ignore_checksums: bool,
) -> Result<IpHeader, DecodeError> {
    let hlen = usize::from(data[0] & 0x0f) * 4;
    let mut total = usize::from(u16::from_be_bytes([data[2], data[3]]));
    let len_zero = total == 0;
    if len_zero {
        if !ignore_checksums {
            return Err(DecodeError::IpLenZero);
        }
        total = data.len();
    }
    if wire_len < total {
        return Err(DecodeError::TruncatedIpLen);
    }
    if hlen > total {
        return Err(DecodeError::InvalidIpHeaderSize);
    }
    if hlen > data.len() {
        return Err(DecodeError::InternallyTruncatedHeader);
    }
    if hlen < 20 {
        return Err(DecodeError::Ipv4MinHeaderSize);
    }
    if !ignore_checksums && checksum(&data[..hlen], 0) != 0xffff {
        return Err(DecodeError::BadIpChecksum);
    }
    let flags_off = u16::from_be_bytes([data[6], data[7]]);
    let more = flags_off & 0x2000 != 0;
    let offset = u32::from(flags_off & 0x1fff) * 8;
    let frag = (more || offset != 0).then(|| FragInfo {
        id: u32::from(u16::from_be_bytes([data[4], data[5]])),
        offset,
        more,
        dont_fragment: flags_off & 0x4000 != 0,
    });
    Ok(IpHeader {
        src: IpAddr::V4(Ipv4Addr::new(data[12], data[13], data[14], data[15])),
        dst: IpAddr::V4(Ipv4Addr::new(data[16], data[17], data[18], data[19])),
        proto: data[9],
        total_len: total as u32,
        header_len: hlen,
        frag,
        len_zero,
    })
}

fn decode_ipv6(
    data: &[u8],
    wire_len: usize,
    option_weirds: &mut Vec<(&'static str, IpAddr)>,
) -> Result<IpHeader, DecodeError> {
    if data.len() < 40 {
        return Err(DecodeError::TruncatedIp);
    }
    let payload_len = usize::from(u16::from_be_bytes([data[4], data[5]]));
    let total = payload_len + 40;
    if wire_len < total {
        return Err(DecodeError::TruncatedIpLen);
    }
    let mut src = [0u8; 16];
    src.copy_from_slice(&data[8..24]);
    let mut dst = [0u8; 16];
    dst.copy_from_slice(&data[24..40]);
    let mut next = data[6];
    let mut off = 40usize;
    let mut frag = None;
    let mut home_addr = None;
    // Walk extension headers; a bound on the count keeps hostile chains cheap.
    for _ in 0..16 {
        match next {
            60 => {
                let h = data
                    .get(off..off + 2)
                    .ok_or(DecodeError::TruncatedIpv6ExtHeader)?;
                let len = (usize::from(h[1]) + 1) * 8;
                if off + len > data.len() {
                    return Err(DecodeError::TruncatedIpv6ExtHeader);
                }
                let src_now = home_addr.unwrap_or(IpAddr::V6(Ipv6Addr::from(src)));
                dst_options(
                    &data[off + 2..off + len],
                    src_now,
                    &mut home_addr,
                    option_weirds,
                );
                next = h[0];
                off += len;
            }
            0 | 43 | 135 | 139 | 140 => {
                let h = data
                    .get(off..off + 2)
                    .ok_or(DecodeError::TruncatedIpv6ExtHeader)?;
                let len = (usize::from(h[1]) + 1) * 8;
                if off + len > data.len() {
                    return Err(DecodeError::TruncatedIpv6ExtHeader);
                }
                next = h[0];
                off += len;
            }
            44 => {
                let h = data
                    .get(off..off + 8)
                    .ok_or(DecodeError::TruncatedIpv6ExtHeader)?;
                let fo = u16::from_be_bytes([h[2], h[3]]);
                let offset = u32::from(fo & 0xfff8);
                let more = fo & 1 != 0;
                let id = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
                next = h[0];
                off += 8;
                if more || offset != 0 {
                    frag = Some(FragInfo {
                        id,
                        offset,
                        more,
                        dont_fragment: false,
                    });
                    break;
                }
            }
            51 => {
                let h = data
                    .get(off..off + 2)
                    .ok_or(DecodeError::TruncatedIpv6ExtHeader)?;
                let len = (usize::from(h[1]) + 2) * 4;
                if off + len > data.len() {
                    return Err(DecodeError::TruncatedIpv6ExtHeader);
                }
                next = h[0];
                off += len;
            }
            _ => break,
        }
    }
    if off > total {
        return Err(DecodeError::InvalidIpHeaderSize);
    }
    Ok(IpHeader {
        src: IpAddr::V6(Ipv6Addr::from(src)),
        dst: IpAddr::V6(Ipv6Addr::from(dst)),
        proto: next,
        total_len: total as u32,
        header_len: off,
        frag,
        len_zero: false,
    })
}

/// Destination options: Mobile IPv6 Home Address checks, as Zeek reports them (the weird's
/// source address is the home address once one was seen).
fn dst_options(
    opts: &[u8],
    src: IpAddr,
    home: &mut Option<IpAddr>,
    weirds: &mut Vec<(&'static str, IpAddr)>,
) {
    let mut i = 0;
    while i < opts.len() {
        let ty = opts[i];
        if ty == 0 {
            i += 1;
            continue;
        }
        let Some(&olen) = opts.get(i + 1) else {
            weirds.push(("bad_ipv6_dest_opt_len", home.unwrap_or(src)));
            return;
        };
        let olen = usize::from(olen);
        if ty == 201 {
            match opts.get(i + 2..i + 2 + olen) {
                Some(a) if olen == 16 => {
                    if home.is_some() {
                        weirds.push(("multiple_home_addr_opts", home.unwrap_or(src)));
                    } else {
                        let mut b = [0u8; 16];
                        b.copy_from_slice(a);
                        *home = Some(IpAddr::V6(Ipv6Addr::from(b)));
                    }
                }
                _ => {
                    weirds.push(("bad_home_addr_len", home.unwrap_or(src)));
                    return;
                }
            }
        }
        if i + 2 + olen > opts.len() {
            weirds.push(("bad_ipv6_dest_opt_len", home.unwrap_or(src)));
            return;
        }
        i += 2 + olen;
    }
}

/// The source and destination addresses of an IPv4 or IPv6 header, if present.
pub fn ip_addrs(data: &[u8]) -> Option<(IpAddr, IpAddr)> {
    match data.first()? >> 4 {
        4 => {
            let s: [u8; 4] = data.get(12..16)?.try_into().ok()?;
            let d: [u8; 4] = data.get(16..20)?.try_into().ok()?;
            Some((Ipv4Addr::from(s).into(), Ipv4Addr::from(d).into()))
        }
        6 => {
            let s: [u8; 16] = data.get(8..24)?.try_into().ok()?;
            Some((Ipv6Addr::from(s).into(), ip_dst(data)?))
        }
        _ => None,
    }
}

/// The destination address of an IPv6 header, if present.
pub fn ip_dst(data: &[u8]) -> Option<IpAddr> {
    let d: [u8; 16] = data.get(24..40)?.try_into().ok()?;
    Some(IpAddr::V6(Ipv6Addr::from(d)))
}

/// A decoded TCP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpHeader {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub header_len: usize,
    /// Window-scale option, if present.
    pub wscale: Option<u8>,
}

pub mod tcpflags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
}

/// TCP header errors, with Zeek's weird names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportError {
    TruncatedHeader,
    InternallyTruncatedHeader,
    BadTcpHeaderLen,
    /// The header's options were not captured: only the fixed 20 bytes are there.
    TruncatedOptions(TcpHeader),
}

impl TransportError {
    pub fn weird(self) -> &'static str {
        match self {
            TransportError::TruncatedHeader | TransportError::TruncatedOptions(_) => {
                "truncated_header"
            }
            TransportError::InternallyTruncatedHeader => "internally_truncated_header",
            TransportError::BadTcpHeaderLen => "bad_TCP_header_len",
        }
    }
}

/// Decodes a TCP header from captured `data`, whose length on the wire is `len`.
pub fn decode_tcp(data: &[u8], len: usize) -> Result<TcpHeader, TransportError> {
    if len < 20 {
        return Err(TransportError::TruncatedHeader);
    }
    if data.len() < 20 {
        return Err(TransportError::InternallyTruncatedHeader);
    }
    let header_len = usize::from(data[12] >> 4) * 4;
    if header_len < 20 {
        return Err(TransportError::BadTcpHeaderLen);
    }
    let fixed = |header_len| TcpHeader {
        src_port: u16::from_be_bytes([data[0], data[1]]),
        dst_port: u16::from_be_bytes([data[2], data[3]]),
        seq: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
        ack: u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
        flags: data[13],
        window: u16::from_be_bytes([data[14], data[15]]),
        header_len,
        wscale: None,
    };
    if header_len > len || header_len > data.len() {
        return Err(TransportError::TruncatedOptions(fixed(header_len)));
    }
    let mut wscale = None;
    let mut opts = Reader::new(&data[20..header_len]);
    while let Some(kind) = opts.u8() {
        match kind {
            0 => break,
            1 => continue,
            _ => {
                let Some(l) = opts.u8() else { break };
                if l < 2 {
                    break;
                }
                let Some(body) = opts.take(usize::from(l) - 2) else {
                    break;
                };
                if kind == 3 && !body.is_empty() {
                    wscale = Some(body[0]);
                }
            }
        }
    }
    Ok(TcpHeader {
        wscale,
        ..fixed(header_len)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_frames(lt in 0i32..300, frame in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(info) = decode_link(Linktype(lt), &frame) {
                let ip = &frame[info.ip_offset.min(frame.len())..];
                if let Ok(h) = decode_ip(ip, ip.len(), false, &mut Vec::new()) {
                    let payload = ip.get(h.header_len..).unwrap_or_default();
                    let _ = decode_tcp(payload, payload.len());
                }
                let _ = decode_ip(ip, ip.len(), true, &mut Vec::new());
            }
        }
    }

    /// Zeek's `IPAnalyzer::AnalyzePacket` (ip/IP.cc): an IPv4 total length of 0 (TCP
    /// segmentation offload) is `ip_hdr_len_zero`; without checksum validation the packet is
    /// still analysed with the captured length, otherwise it is dropped.
    #[test]
    fn zero_ipv4_total_length_uses_the_captured_length_when_checksums_are_ignored() {
        let mut p = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        p.extend_from_slice(&[0; 12]);
        let h = decode_ip(&p, p.len(), true, &mut Vec::new()).unwrap();
        assert!(h.len_zero);
        assert_eq!(h.total_len, 32);
        let e = decode_ip(&p, p.len(), false, &mut Vec::new()).unwrap_err();
        assert_eq!(e.weird(), Some("ip_hdr_len_zero"));
    }

    /// Zeek's `FDDIAnalyzer::AnalyzePacket`: 21 header bytes skipped, then IP; a frame no
    /// longer than that is `FDDI_analyzer_failed`.
    #[test]
    fn fddi_frames_carry_ip_after_21_bytes() {
        let mut f = vec![0u8; 21];
        f.extend_from_slice(&[0x45, 0, 0, 20]);
        assert_eq!(decode_link(Linktype::FDDI, &f).unwrap().ip_offset, 21);
        let short = decode_link(Linktype::FDDI, &f[..21]).unwrap_err();
        assert_eq!(short.weird(), Some("FDDI_analyzer_failed"));
        assert_eq!(short.source(), "FDDI");
    }

    #[test]
    fn vlan_qinq_and_mpls() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[
            0x88, 0xa8, 0x00, 0x0a, 0x81, 0x00, 0x00, 0x14, 0x08, 0x00, 0x45,
        ]);
        let info = decode_link(Linktype::ETHERNET, &f).unwrap();
        assert_eq!(
            (info.vlan, info.inner_vlan, info.ip_offset),
            (Some(10), Some(20), 22)
        );
        let mut m = vec![0u8; 12];
        m.extend_from_slice(&[0x88, 0x47, 0, 0, 0, 64, 0, 0, 1, 64, 0x45]);
        assert_eq!(decode_link(Linktype::ETHERNET, &m).unwrap().ip_offset, 22);
    }
}
