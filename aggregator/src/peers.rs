//! Who may send, and which tags: the listening side of the seed's `Remote::destinations`.

use std::net::IpAddr;

use estuary_config::aggregator::{PeerMatch, PeerRule};
use regex::Regex;

/// What an admitted peer may send.
#[derive(Debug, Clone)]
pub enum Admission {
    All,
    /// Only tags matching one of these.
    Tags(Vec<Regex>),
}

impl Admission {
    pub fn allows(&self, tag: &[u8]) -> bool {
        match self {
            Admission::All => true,
            Admission::Tags(res) => {
                let Ok(tag) = std::str::from_utf8(tag) else {
                    return false;
                };
                res.iter().any(|re| re.is_match(tag))
            }
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct PeerPolicy {
    rules: Vec<PeerRule>,
}

impl PeerPolicy {
    pub fn new(rules: Vec<PeerRule>) -> Self {
        Self { rules }
    }

    /// `None`: the peer matches no rule and is refused.
    pub fn admit(&self, addr: IpAddr, cert_names: &[String]) -> Option<Admission> {
        if self.rules.is_empty() {
            return Some(Admission::All);
        }
        let mut tags = Vec::new();
        let mut matched = false;
        for rule in &self.rules {
            let hit = match &rule.matcher {
                PeerMatch::Network(net) => net.contains(addr),
                PeerMatch::CertName(name) => {
                    cert_names.iter().any(|n| n.eq_ignore_ascii_case(name))
                }
            };
            if !hit {
                continue;
            }
            matched = true;
            match &rule.tags {
                None => return Some(Admission::All),
                Some(re) => tags.push(re.clone()),
            }
        }
        matched.then_some(Admission::Tags(tags))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use estuary_config::cidr::Cidr;

    fn net(s: &str, len: u8, tags: Option<&str>) -> PeerRule {
        PeerRule {
            matcher: PeerMatch::Network(Cidr::new(s.parse().unwrap(), len).unwrap()),
            tags: tags.map(|t| Regex::new(t).unwrap()),
        }
    }

    #[test]
    fn rules() {
        let p = PeerPolicy::new(vec![
            net("10.0.0.0", 8, Some("^bro_(conn|dns)$")),
            net("127.0.0.1", 32, None),
            PeerRule {
                matcher: PeerMatch::CertName("sensor1.example".into()),
                tags: Some(Regex::new("^bro_").unwrap()),
            },
        ]);
        let a = p.admit("10.1.2.3".parse().unwrap(), &[]).unwrap();
        assert!(a.allows(b"bro_conn") && !a.allows(b"bro_ssl"));
        assert!(p
            .admit("127.0.0.1".parse().unwrap(), &[])
            .unwrap()
            .allows(b"x"));
        assert!(p.admit("192.168.0.1".parse().unwrap(), &[]).is_none());
        assert!(p.admit("::ffff:10.0.0.1".parse().unwrap(), &[]).is_some());
        let c = p
            .admit("192.168.0.1".parse().unwrap(), &["SENSOR1.example".into()])
            .unwrap();
        assert!(c.allows(b"bro_ssl") && !c.allows(b"sshd"));
        // A network written IPv4-mapped is the IPv4 network, for peers in either form.
        let mapped = PeerPolicy::new(vec![net("::ffff:10.0.0.0", 104, None)]);
        assert!(mapped.admit("10.9.9.9".parse().unwrap(), &[]).is_some());
        assert!(mapped
            .admit("::ffff:10.9.9.9".parse().unwrap(), &[])
            .is_some());
        assert!(mapped.admit("11.0.0.1".parse().unwrap(), &[]).is_none());
        assert!(PeerPolicy::default()
            .admit("1.2.3.4".parse().unwrap(), &[])
            .is_some());
    }
}
