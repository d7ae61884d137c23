//! The networks whose addresses count as local: Zeek's private address space by default, and
//! the sensor configuration's `local_nets`.

use std::net::IpAddr;

use estuary_config::cidr::Cidr;

/// Networks whose addresses count as local (conn.log `local_orig`/`local_resp`).
#[derive(Debug, Clone, Default)]
pub struct LocalNets {
    nets: Vec<Cidr>,
}

impl LocalNets {
    pub fn new(nets: Vec<Cidr>) -> Self {
        LocalNets { nets }
    }

    /// Zeek's `Site::private_address_space` (local by default since Zeek 6.0), with the 6to4
    /// form (2002:V4ADDR::/(16 + len)) of each IPv4 block.
    pub fn zeek_private() -> Self {
        const V4: &[([u8; 4], u8)] = &[
            ([0, 0, 0, 0], 8),
            ([10, 0, 0, 0], 8),
            ([100, 64, 0, 0], 10),
            ([127, 0, 0, 0], 8),
            ([169, 254, 0, 0], 16),
            ([172, 16, 0, 0], 12),
            ([192, 0, 0, 0], 24),
            ([192, 0, 2, 0], 24),
            ([192, 168, 0, 0], 16),
            ([198, 18, 0, 0], 15),
            ([198, 51, 100, 0], 24),
            ([203, 0, 113, 0], 24),
            ([224, 0, 0, 0], 24),
            ([239, 0, 0, 0], 8),
            ([240, 0, 0, 0], 4),
            ([255, 255, 255, 255], 32),
        ];
        const V6: &[(u128, u8)] = &[
            (0, 128),
            (1, 128),
            (0x0064_ff9b_0001 << 80, 48),
            (0x0100 << 112, 64),
            (0x2001 << 112, 23),
            (0x2001_0002 << 96, 48),
            (0x2001_0db8 << 96, 32),
            (0xfc00 << 112, 7),
            (0xfe80 << 112, 10),
            (0xfec0 << 112, 10),
        ];
        let mut nets = Vec::new();
        for &(o, len) in V4 {
            let six = (0x2002u128 << 112) | (u128::from(u32::from_be_bytes(o)) << 80);
            nets.extend(Cidr::new(IpAddr::from(o), len));
            nets.extend(Cidr::new(
                IpAddr::from(std::net::Ipv6Addr::from(six)),
                16 + len,
            ));
        }
        for &(a, len) in V6 {
            nets.extend(Cidr::new(IpAddr::from(std::net::Ipv6Addr::from(a)), len));
        }
        LocalNets { nets }
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    pub fn nets(&self) -> &[Cidr] {
        &self.nets
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        self.nets.iter().any(|net| net.contains(addr))
    }
}
