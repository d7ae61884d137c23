//! Picks application analyzers for a connection, by well-known port and by content (a
//! DPD-like probe of the first payload bytes of each direction).

use crate::flow::{ConnInfo, Direction, Transport};
use crate::proto::{self, Analyzer};

/// Payload bytes per direction that content probes see before giving up.
pub const PROBE_LIMIT: usize = 4096;

/// One application protocol the sensor can analyze.
#[derive(Clone, Copy)]
pub struct AnalyzerSpec {
    /// Zeek's analyzer name, used as weird.log `source` (`"DNS"`, `"HTTP"` ...).
    pub name: &'static str,
    pub ports: &'static [(Transport, u16)],
    pub new: fn(&ConnInfo) -> Box<dyn Analyzer>,
    pub probe: fn(Direction, &[u8]) -> bool,
}

impl std::fmt::Debug for AnalyzerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnalyzerSpec")
            .field("name", &self.name)
            .finish()
    }
}

/// Every analyzer compiled in.
pub fn registry() -> Vec<AnalyzerSpec> {
    use proto::{dce_rpc, dns, ftp, http, modbus, ntp, rdp, smtp, socks, ssh, ssl};
    vec![
        AnalyzerSpec {
            name: "DNS",
            ports: dns::PORTS,
            new: dns::new_analyzer,
            probe: dns::probe,
        },
        AnalyzerSpec {
            name: "HTTP",
            ports: http::PORTS,
            new: http::new_analyzer,
            probe: http::probe,
        },
        AnalyzerSpec {
            name: "SSL",
            ports: ssl::PORTS,
            new: ssl::new_analyzer,
            probe: ssl::probe,
        },
        AnalyzerSpec {
            name: "DTLS",
            ports: ssl::DTLS_PORTS,
            new: ssl::new_dtls_analyzer,
            probe: ssl::probe_dtls,
        },
        AnalyzerSpec {
            name: "POP3",
            ports: ssl::starttls::POP3_PORTS,
            new: ssl::starttls::new_pop3_analyzer,
            probe: ssl::starttls::probe_pop3,
        },
        AnalyzerSpec {
            name: "IMAP",
            ports: ssl::starttls::IMAP_PORTS,
            new: ssl::starttls::new_imap_analyzer,
            probe: ssl::starttls::probe_imap,
        },
        AnalyzerSpec {
            name: "XMPP",
            ports: ssl::starttls::XMPP_PORTS,
            new: ssl::starttls::new_xmpp_analyzer,
            probe: ssl::starttls::probe_xmpp,
        },
        AnalyzerSpec {
            name: "SSH",
            ports: ssh::PORTS,
            new: ssh::new_analyzer,
            probe: ssh::probe,
        },
        AnalyzerSpec {
            name: "FTP",
            ports: ftp::PORTS,
            new: ftp::new_analyzer,
            probe: ftp::probe,
        },
        AnalyzerSpec {
            name: "SMTP",
            ports: smtp::PORTS,
            new: smtp::new_analyzer,
            probe: smtp::probe,
        },
        AnalyzerSpec {
            name: "SOCKS",
            ports: socks::PORTS,
            new: socks::new_analyzer,
            probe: socks::probe,
        },
        AnalyzerSpec {
            name: "NTP",
            ports: ntp::PORTS,
            new: ntp::new_analyzer,
            probe: ntp::probe,
        },
        AnalyzerSpec {
            name: "MODBUS",
            ports: modbus::PORTS,
            new: modbus::new_analyzer,
            probe: modbus::probe,
        },
        AnalyzerSpec {
            name: "DCE_RPC",
            ports: dce_rpc::PORTS,
            new: dce_rpc::new_analyzer,
            probe: dce_rpc::probe,
        },
        AnalyzerSpec {
            name: "RDP",
            ports: rdp::PORTS,
            new: rdp::new_analyzer,
            probe: rdp::probe,
        },
    ]
}

/// Which analyzers to use; `None` disables application analysis (conn.log only).
#[derive(Debug, Clone)]
pub struct Dispatcher {
    specs: Vec<AnalyzerSpec>,
    /// Ports of Zeek's `likely_server_ports` that the direction-flip heuristic uses.
    server_ports: Vec<(Transport, u16)>,
}

/// Zeek's `likely_server_ports` of its default protocol scripts that the sensor has no
/// analyzer for (each protocol's `main.zeek` adds its ports); with the ports of every analyzer
/// in [`registry`], they steer the originator/responder guess of a full run.
const OTHER_SERVER_PORTS: &[(Transport, u16)] = &[
    (Transport::Tcp, 465),
    // DHCP: only the server's port (Zeek's dhcp/main.zeek), so a reply to a client is flipped.
    (Transport::Udp, 67),
    (Transport::Udp, 546),
    (Transport::Udp, 547),
    (Transport::Udp, 161),
    (Transport::Udp, 162),
    (Transport::Udp, 514),
    (Transport::Udp, 1812),
    (Transport::Udp, 3478),
    (Transport::Tcp, 6667),
    (Transport::Tcp, 3306),
    (Transport::Tcp, 1433),
    (Transport::Tcp, 139),
    (Transport::Tcp, 445),
    (Transport::Tcp, 88),
    (Transport::Udp, 88),
    (Transport::Tcp, 389),
    (Transport::Tcp, 1883),
    (Transport::Tcp, 5060),
    (Transport::Udp, 5060),
];

/// The ports packet analyzers register with `PacketAnalyzer::register_for_ports`, which adds
/// them to `likely_server_ports`: `init-bare.zeek` loads `base/packet-protocols`, so they are
/// likely server ports even when no protocol script is loaded (AYIYA, Teredo, GTPv1, VXLAN,
/// Geneve, GRE).
const PACKET_ANALYZER_PORTS: &[(Transport, u16)] = &[
    (Transport::Udp, 5072),
    (Transport::Udp, 3544),
    (Transport::Udp, 2152),
    (Transport::Udp, 2123),
    (Transport::Udp, 4789),
    (Transport::Udp, 6081),
    (Transport::Udp, 4754),
];

impl Dispatcher {
    /// The analyzers `specs` as the only protocol scripts loaded: the likely server ports are
    /// theirs and the packet analyzers'.
    pub fn new(specs: Vec<AnalyzerSpec>) -> Self {
        Self::with_server_ports(specs, &[])
    }

    fn with_server_ports(specs: Vec<AnalyzerSpec>, other: &[(Transport, u16)]) -> Self {
        let mut server_ports: Vec<(Transport, u16)> = PACKET_ANALYZER_PORTS.to_vec();
        server_ports.extend_from_slice(other);
        for s in &specs {
            server_ports.extend_from_slice(s.ports);
        }
        server_ports.sort_by_key(|(t, p)| (*t as u8, *p));
        server_ports.dedup();
        Dispatcher {
            specs,
            server_ports,
        }
    }

    /// Every compiled-in analyzer, with the likely server ports of Zeek's default scripts.
    pub fn all() -> Self {
        Self::with_server_ports(registry(), OTHER_SERVER_PORTS)
    }

    /// No application analyzers (connection tracking only), like Zeek with no protocol
    /// script loaded: only the packet analyzers' ports are likely server ports.
    pub fn none() -> Self {
        Self::new(Vec::new())
    }

    pub fn is_server_port(&self, t: Transport, port: u16) -> bool {
        self.server_ports
            .binary_search_by_key(&(t as u8, port), |(t, p)| (*t as u8, *p))
            .is_ok()
    }

    /// Analyzers registered for the responder port.
    pub fn by_port(&self, t: Transport, resp_p: u16) -> impl Iterator<Item = &AnalyzerSpec> {
        self.specs
            .iter()
            .filter(move |s| s.ports.contains(&(t, resp_p)))
    }

    /// The analyzer of this name, if enabled.
    pub fn by_name(&self, name: &str) -> Option<&AnalyzerSpec> {
        self.specs.iter().find(|s| s.name == name)
    }

    /// Analyzers for the transport whose probe accepts these bytes, excluding `skip`.
    pub fn by_content<'a>(
        &'a self,
        t: Transport,
        dir: Direction,
        data: &'a [u8],
        skip: &'a [&'static str],
    ) -> impl Iterator<Item = &'a AnalyzerSpec> + 'a {
        self.specs.iter().filter(move |s| {
            !skip.contains(&s.name)
                && s.ports.iter().any(|(pt, _)| *pt == t)
                && (s.probe)(dir, data)
        })
    }

    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `likely_server_ports` holds what the loaded scripts add: with no protocol script
    /// (`zeek -b` loading only `base/protocols/conn`) just the packet analyzers' ports, so a
    /// connection seen first from 443/tcp or 67/udp is not flipped; a full run has them all.
    #[test]
    fn likely_server_ports_follow_the_loaded_scripts() {
        let (bare, full) = (Dispatcher::none(), Dispatcher::all());
        for (t, p) in [
            (Transport::Tcp, 443),
            (Transport::Tcp, 80),
            (Transport::Udp, 67),
        ] {
            assert!(!bare.is_server_port(t, p), "{p}");
            assert!(full.is_server_port(t, p), "{p}");
        }
        for &(t, p) in PACKET_ANALYZER_PORTS {
            assert!(
                bare.is_server_port(t, p) && full.is_server_port(t, p),
                "{p}"
            );
        }
        let http = registry()
            .into_iter()
            .filter(|s| s.name == "HTTP")
            .collect();
        let http = Dispatcher::new(http);
        assert!(http.is_server_port(Transport::Tcp, 80));
        assert!(!http.is_server_port(Transport::Tcp, 443));
        assert!(!http.is_server_port(Transport::Udp, 67));
    }
}
