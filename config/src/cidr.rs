//! An IP network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`, or a bare address for one
//! host), used wherever configuration names networks.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:10.1.2.3`) are the IPv4 addresses they carry, both in a
//! network and in an address checked against it: a dual-stack socket reports IPv4 peers in that
//! form, and the same host must match the same network either way.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// A network: an address with the host bits cleared, and a prefix length valid for its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    len: u8,
}

/// Why a text is not a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("invalid address {0:?}")]
    Address(String),
    #[error("invalid prefix length {0:?}")]
    PrefixLength(String),
    #[error("prefix length {len} is longer than {max}")]
    TooLong { len: u8, max: u8 },
}

impl Cidr {
    /// The network of `addr` with a `len`-bit prefix.
    pub fn new(addr: IpAddr, len: u8) -> Result<Cidr, CidrError> {
        let (addr, len) = match addr {
            // ::ffff:a.b.c.d/96+n is a.b.c.d/n.
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) if len >= 96 => (IpAddr::V4(v4), len - 96),
                _ => (addr, len),
            },
            IpAddr::V4(_) => (addr, len),
        };
        let max = max_len(addr);
        if len > max {
            return Err(CidrError::TooLong { len, max });
        }
        Ok(Cidr {
            addr: masked(addr, len),
            len,
        })
    }

    /// The network's first address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether `addr` (canonicalised if IPv4-mapped) lies in this network.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        addr.is_ipv4() == self.addr.is_ipv4() && masked(addr, self.len) == self.addr
    }
}

fn max_len(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

fn masked(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
        }
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Cidr, CidrError> {
        let (addr, len) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text, None),
        };
        let ip: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| CidrError::Address(addr.to_owned()))?;
        let len = match len {
            Some(l) => l
                .trim()
                .parse::<u8>()
                .map_err(|_| CidrError::PrefixLength(l.to_owned()))?,
            None => max_len(ip),
        };
        if len > max_len(ip) {
            return Err(CidrError::TooLong {
                len,
                max: max_len(ip),
            });
        }
        Cidr::new(ip, len)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Cidr {
        s.parse().expect("network")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn parses_networks_and_bare_hosts() {
        assert_eq!(net("10.0.0.0/8").to_string(), "10.0.0.0/8");
        assert_eq!(
            net("10.1.2.3/8").to_string(),
            "10.0.0.0/8",
            "host bits cleared"
        );
        assert_eq!(net("192.0.2.7").to_string(), "192.0.2.7/32");
        assert_eq!(net("2001:db8::1").to_string(), "2001:db8::1/128");
        assert_eq!(net("2001:db8:ff::/32").to_string(), "2001:db8::/32");
        assert_eq!(net("0.0.0.0/0").to_string(), "0.0.0.0/0");
    }

    #[test]
    fn rejects_what_is_not_a_network() {
        assert_eq!(
            "10.0.0.0/33".parse::<Cidr>(),
            Err(CidrError::TooLong { len: 33, max: 32 })
        );
        assert_eq!(
            "::/129".parse::<Cidr>(),
            Err(CidrError::TooLong { len: 129, max: 128 })
        );
        assert!(matches!(
            "10.0.0/8".parse::<Cidr>(),
            Err(CidrError::Address(_))
        ));
        assert!(matches!(
            "10.0.0.0/x".parse::<Cidr>(),
            Err(CidrError::PrefixLength(_))
        ));
        assert!(matches!("".parse::<Cidr>(), Err(CidrError::Address(_))));
    }

    #[test]
    fn contains_by_prefix() {
        let n = net("172.16.0.0/12");
        assert!(n.contains(ip("172.16.0.1")));
        assert!(n.contains(ip("172.31.255.255")));
        assert!(!n.contains(ip("172.32.0.0")));
        assert!(!n.contains(ip("2001:db8::1")), "other family");
        let v6 = net("fe80::/10");
        assert!(v6.contains(ip("fe80::1")));
        assert!(v6.contains(ip("febf::1")));
        assert!(!v6.contains(ip("fec0::1")));
        assert!(net("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(!net("0.0.0.0/0").contains(ip("::1")));
    }

    #[test]
    fn ipv4_mapped_addresses_are_their_ipv4_address() {
        let n = net("10.0.0.0/8");
        assert!(n.contains(ip("::ffff:10.1.2.3")));
        assert!(!n.contains(ip("::ffff:11.1.2.3")));
        let mapped = net("::ffff:10.0.0.0/104");
        assert_eq!(mapped, n);
        assert!(mapped.contains(ip("10.9.9.9")));
        // A mapped prefix shorter than the mapping itself stays an IPv6 network.
        assert_eq!(net("::ffff:0:0/80").to_string(), "::/80");
    }
}
