//! Connections without a stream: UDP datagrams (and the tunnels they carry), ICMP messages
//! paired by Zeek's counterpart types, and other IP protocols.

use super::icmp_nd::options_weird;
use super::reassembly::Chunk;
use super::{dir_index, FlowKey, PacketMeta, Records, Tracker};
use crate::conn_log::ConnProto;
use crate::decode::{ipproto, transport_checksum_ok};
use crate::flow::{Encap, Transport, TunnelId, TunnelType};

impl Tracker {
    /// A UDP datagram (`m.l4` starts at the UDP header).
    /// Returns the connection's slot if the datagram was accepted (for tunnel decoding).
    pub fn udp(&mut self, m: &PacketMeta<'_>, out: &mut Records) -> Option<usize> {
        let (Some(sp), Some(dp), Some(ulen), Some(sum)) =
            (be16(m.l4, 0), be16(m.l4, 2), be16(m.l4, 4), be16(m.l4, 6))
        else {
            return None;
        };
        let key = FlowKey::new(m.src, sp, m.dst, dp, m.ip_proto);
        let slot = match self.map.get(&key) {
            Some(&s) => s,
            None => {
                let d = &self.dispatcher;
                let flip =
                    d.is_server_port(Transport::Udp, sp) && !d.is_server_port(Transport::Udp, dp);
                self.create(key, m, sp, dp, ConnProto::Udp, flip, out)
            }
        };
        self.encapsulation(slot, m, sp);
        let ignore = self.config.ignore_checksums;
        let conn = self.conn_mut(slot)?;
        let is_orig = conn.is_orig(m.src, sp);
        let d = dir_index(is_orig);
        let len = m.l4_len;
        // An IPv4 UDP checksum of zero means the sender did not compute one.
        if !ignore
            && (m.src.is_ipv6() || sum != 0)
            && !transport_checksum_ok(m.src, m.dst, ipproto::UDP, m.l4, m.l4_len)
        {
            conn.history
                .scaled(is_orig, 'C', &mut conn.udp_checksum_errors[d]);
            self.conn_weird(slot, m.ts, "bad_UDP_checksum", "UDP", out);
            return None;
        }
        let ulen = usize::from(ulen);
        if ulen != len {
            let addl = Some(format!("{ulen} != {len}"));
            let name = "UDP_datagram_length_mismatch";
            self.conn_weird_addl(slot, m.ts, name, addl, "UDP", out);
        }
        // Zeek's UDP analyzer returns on a bad checksum before its children (conn size among
        // them) see the packet, so only accepted datagrams count.
        let conn = self.conn_mut(slot)?;
        conn.stats[d].pkts += 1;
        conn.stats[d].ip_bytes += m.ip_len;
        conn.last = m.ts;
        conn.history.check(is_orig, 0x1, 'D');
        conn.stats[d].size += ulen.saturating_sub(8) as u64;
        conn.stats[d].active = true;
        let end = len.min(m.l4.len());
        if end > 8 && (conn.app.reasm.is_some() || !self.dispatcher.is_empty()) {
            let payload = m.l4[8..end].to_vec();
            self.deliver(slot, m.ts, is_orig, vec![Chunk::Data(payload)], out);
        }
        Some(slot)
    }

    /// The connection in `slot` carries a tunnel: confirm its service and return the tunnel
    /// (its uid is the inner connections' `tunnel_parents`).
    pub fn tunnel(
        &mut self,
        slot: usize,
        kind: TunnelType,
        service: &'static str,
    ) -> Option<Encap> {
        let conn = self.conn_mut(slot)?;
        if !conn.services.contains(&service) {
            conn.services.push(service);
        }
        Some(Encap {
            uid: conn.uid.clone(),
            id: TunnelId {
                orig_h: conn.orig_h,
                orig_p: conn.orig_p,
                resp_h: conn.resp_h,
                resp_p: conn.resp_p,
            },
            kind,
        })
    }

    /// The responder's port of the connection in `slot`.
    pub fn resp_port(&mut self, slot: usize) -> Option<u16> {
        self.conn_mut(slot).map(|c| c.resp_p)
    }

    /// A weird of a connection raised by a packet analyzer decoding its payload (`source`).
    pub fn weird(
        &mut self,
        slot: usize,
        ts: f64,
        name: &'static str,
        source: &'static str,
        out: &mut Records,
    ) {
        self.conn_weird(slot, ts, name, source, out);
    }

    /// An ICMP or ICMPv6 message.
    pub fn icmp(&mut self, m: &PacketMeta<'_>, v6: bool, out: &mut Records) {
        let (Some(&ty), Some(&code)) = (m.l4.first(), m.l4.get(1)) else {
            return;
        };
        let counterpart = if v6 {
            icmp6_counterpart(ty)
        } else {
            icmp4_counterpart(ty)
        };
        let (sport, dport) = (u16::from(ty), u16::from(counterpart.unwrap_or(code)));
        let key = FlowKey::new(m.src, sport, m.dst, dport, m.ip_proto);
        let slot = match self.map.get(&key) {
            Some(&s) => s,
            None => self.create(key, m, sport, dport, ConnProto::Icmp, false, out),
        };
        self.encapsulation(slot, m, sport);
        let Some(conn) = self.conn_mut(slot) else {
            return;
        };
        let is_orig = conn.is_orig(m.src, sport);
        let d = dir_index(is_orig);
        conn.stats[d].pkts += 1;
        conn.stats[d].ip_bytes += m.ip_len;
        conn.stats[d].size += m.l4_len.saturating_sub(8) as u64;
        conn.stats[d].active = true;
        conn.last = m.ts;
        let weird = v6.then(|| mld_weird(m.l4).or_else(|| options_weird(m.l4, m.l4_len)));
        if let Some(name) = weird.flatten() {
            self.conn_weird(slot, m.ts, name, "ICMP", out);
        }
    }

    /// Any other IP protocol: an `unknown_transport` connection.
    pub fn other(&mut self, m: &PacketMeta<'_>, out: &mut Records) {
        let key = FlowKey::new(m.src, 0, m.dst, 0, m.ip_proto);
        let slot = match self.map.get(&key) {
            Some(&s) => s,
            None => self.create(key, m, 0, 0, ConnProto::Unknown, false, out),
        };
        self.encapsulation(slot, m, 0);
        let Some(conn) = self.conn_mut(slot) else {
            return;
        };
        let d = dir_index(conn.orig_h == m.src);
        conn.stats[d].pkts += 1;
        conn.stats[d].ip_bytes += m.ip_len;
        conn.stats[d].active = true;
        conn.last = m.ts;
    }
}

/// Zeek's `ICMPAnalyzer::MLDReport` and `MLDReportV2` (icmp/ICMP.cc): the length checks of
/// MLD listener reports and dones, made whether or not a script handles the event.
fn mld_weird(icmp: &[u8]) -> Option<&'static str> {
    let ty = *icmp.first()?;
    let body = icmp.get(8..).unwrap_or_default();
    match ty {
        131 | 132 if body.len() < 16 => Some("truncated_ICMPv6_MLDv1"),
        143 => mld_v2_weird(usize::from(be16(icmp, 6)?), body),
        _ => None,
    }
}

fn mld_v2_weird(records: usize, body: &[u8]) -> Option<&'static str> {
    if body.len() < records * 20 {
        return Some("truncated_ICMPv6_MLDv2");
    }
    let mut rest = body;
    for _ in 0..records {
        if rest.is_empty() {
            break;
        }
        let Some(head) = rest.get(..4) else {
            return Some("truncated_ICMPv6_MLDv2_record");
        };
        let aux = usize::from(head[1]) * 4;
        let sources = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let len = 16 + sources * 16 + aux;
        match rest.get(4 + len..) {
            Some(r) => rest = r,
            None => return Some("truncated_ICMPv6_MLDv2_record"),
        }
    }
    None
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|s| u16::from_be_bytes([s[0], s[1]]))
}

/// Zeek's `ICMP4_counterpart`: the matching type of request/reply pairs.
fn icmp4_counterpart(ty: u8) -> Option<u8> {
    Some(match ty {
        8 => 0,
        0 => 8,
        13 => 14,
        14 => 13,
        15 => 16,
        16 => 15,
        10 => 9,
        9 => 10,
        17 => 18,
        18 => 17,
        _ => return None,
    })
}

/// Zeek's `ICMP6_counterpart`.
fn icmp6_counterpart(ty: u8) -> Option<u8> {
    Some(match ty {
        128 => 129,
        129 => 128,
        133 => 134,
        134 => 133,
        135 => 136,
        136 => 135,
        130 => 131,
        131 => 130,
        139 => 140,
        140 => 139,
        144 => 145,
        145 => 144,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::mld_weird;

    fn mld_v2(records: u16, body: &[u8]) -> Vec<u8> {
        let mut m = vec![143, 0, 0, 0, 0, 0];
        m.extend_from_slice(&records.to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    /// ICMP.cc `MLDReportV2`: a record whose sources or aux data run past the message.
    #[test]
    fn mldv2_record_longer_than_the_message_is_truncated() {
        let mut record = vec![4, 0, 0, 1];
        record.extend_from_slice(&[0; 16]);
        assert_eq!(
            mld_weird(&mld_v2(1, &record)),
            Some("truncated_ICMPv6_MLDv2_record")
        );
        record[3] = 0;
        assert_eq!(mld_weird(&mld_v2(1, &record)), None);
        assert_eq!(
            mld_weird(&mld_v2(2, &record)),
            Some("truncated_ICMPv6_MLDv2")
        );
    }

    /// ICMP.cc `MLDReport`: a v1 report or done without its 16-byte multicast address.
    #[test]
    fn mldv1_without_its_address_is_truncated() {
        assert_eq!(
            mld_weird(&[131, 0, 0, 0, 0, 0, 0, 0, 1]),
            Some("truncated_ICMPv6_MLDv1")
        );
        assert_eq!(mld_weird(&[128, 0, 0, 0, 0, 0, 0, 0]), None);
    }
}
