//! The vocabulary of a flow shared by the decoder, the connection tracker, the analyzers and the
//! logs: which side sent a packet, the transport, the connection's endpoints and packet time.

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
