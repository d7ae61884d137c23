//! What the shipper and the aggregator share on the wire: syslog message formats, TCP framing, RELP.
//!
//! - [`encode`]: messages byte for byte as rsyslog's forwarding templates write them.
//! - [`parse()`]: header fields and the exact body bytes of a received message.
//! - [`origin`]: the `origin@32473` structured data that makes delivery exactly-once.
//! - [`framing`]: RFC 6587 decoder (octet counting and LF, told apart per message).
//! - [`relp`]: librelp's frames, offers and responses, and sans-I/O client and server sessions.
//! - [`tls`]: rustls configurations from PEM files and certificate names for peer rules.
//!
//! Formats and codecs only: sockets and tasks live in the shipper and the aggregator.
#![forbid(unsafe_code)]

mod digits;
pub mod encode;
pub mod framing;
pub mod origin;
pub mod parse;
pub mod pri;
pub mod relp;
#[cfg(test)]
mod test_util;
pub mod tls;

pub use encode::Header;
pub use origin::Origin;
pub use parse::{parse, Message, ParseError};
pub use pri::{Facility, Pri, Severity};

/// Which syslog header a message is written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// RFC 3164, exactly as rsyslog's `RSYSLOG_TraditionalForwardFormat` writes it.
    Rfc3164,
    /// RFC 5424, as rsyslog's `RSYSLOG_SyslogProtocol23Format` writes it.
    Rfc5424,
}

/// How messages are delimited on a stream transport (RFC 6587).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framing {
    /// `<length> <message>`.
    OctetCounting,
    /// Each message followed by `\n` (rsyslog omfwd's default, "traditional" framing).
    NewLine,
}
