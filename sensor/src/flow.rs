//! The vocabulary of a flow shared by the decoder, the connection tracker, the analyzers and the
//! logs: which side sent a packet, the transport, the connection's endpoints, packet time, and the
//! tunnels a packet came through.

use std::net::IpAddr;

/// Which side sent the bytes: the originator (the side that opened the connection) or the responder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Orig,
    Resp,
}

/// Transport protocol of the connection an analyzer runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Tcp,
    Udp,
    Icmp,
}

/// Zeek's `conn_id`: the originator and responder endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId {
    pub orig_h: IpAddr,
    pub orig_p: u16,
    pub resp_h: IpAddr,
    pub resp_p: u16,
    pub proto: Transport,
}

/// Packet time, seconds since the epoch with microsecond precision, as Zeek's `time` type.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Timestamp(pub f64);

/// What an analyzer knows of the connection it runs on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// Zeek-style connection uid (`C` + base62).
    pub uid: String,
    pub id: ConnId,
}

/// Zeek's `Tunnel::Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TunnelType {
    Ip,
    Gre,
    Vxlan,
    Geneve,
    Teredo,
    Gtpv1,
    Ayiya,
    /// A SOCKS proxy connection (`scripts/base/protocols/socks/main.zeek`).
    Socks,
    /// An HTTP CONNECT proxy connection (`scripts/base/protocols/http/main.zeek`).
    Http,
}

impl TunnelType {
    pub fn zeek_name(self) -> &'static str {
        match self {
            TunnelType::Ip => "Tunnel::IP",
            TunnelType::Gre => "Tunnel::GRE",
            TunnelType::Vxlan => "Tunnel::VXLAN",
            TunnelType::Geneve => "Tunnel::GENEVE",
            TunnelType::Teredo => "Tunnel::TEREDO",
            TunnelType::Gtpv1 => "Tunnel::GTPv1",
            TunnelType::Ayiya => "Tunnel::AYIYA",
            TunnelType::Socks => "Tunnel::SOCKS",
            TunnelType::Http => "Tunnel::HTTP",
        }
    }
}

/// The endpoints of a tunnel; ports are 0 for IP tunnels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TunnelId {
    pub orig_h: IpAddr,
    pub orig_p: u16,
    pub resp_h: IpAddr,
    pub resp_p: u16,
}

/// One level of encapsulation (Zeek's `EncapsulatingConn`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Encap {
    pub uid: String,
    pub id: TunnelId,
    pub kind: TunnelType,
}
