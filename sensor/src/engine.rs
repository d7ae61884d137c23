//! One analysis worker: decodes packets, follows tunnels and fragments, and drives the
//! connection tracker. Produces records; the caller decides where they go.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::conn::{PacketMeta, Records, Tracker, TrackerConfig};
use crate::decode::tunnel::{
    self, ayiya_payload, geneve_payload, gtp_u_payload, teredo_payload, vxlan_payload, GeneveError,
    Inner, AYIYA_PORT, GENEVE_PORT, GTP_U_PORT, TEREDO_PORT, VXLAN_PORT,
};
use crate::decode::{
    self, frag::Defragmenter, frag::FragOutcome, ipproto, DecodeError, Linktype, TransportError,
};
use crate::dispatch::Dispatcher;
use crate::flow::Timestamp;
use crate::output::Output;
use crate::tunnel_log::{ActiveTunnels, Encap, TunnelId, TunnelRecord, TunnelType};
use crate::uid::UidGen;
use crate::weird::{Weird, WeirdIgnore};

/// Nesting limit for tunnels (GRE, IP-in-IP).
const MAX_TUNNEL_DEPTH: u8 = 3;
const MAX_TUNNELS: usize = 10_000;
/// Zeek's weird sampling: the first 25 of a name are logged, then every 1000th.
const WEIRD_THRESHOLD: u64 = 25;
const WEIRD_RATE: u64 = 1000;

/// Counters of one worker.
#[derive(Debug, Clone, Copy, Default)]
pub struct EngineStats {
    pub packets: u64,
    pub bytes: u64,
    pub non_ip: u64,
    pub malformed: u64,
}

/// One analysis worker.
pub struct Engine {
    tracker: Tracker,
    defrag: Defragmenter,
    /// IP tunnels by address pair (either order), as first seen.
    tunnels: HashMap<(IpAddr, IpAddr), Encap>,
    active_tunnels: ActiveTunnels,
    ignore_checksums: bool,
    peer: String,
    weird_counts: HashMap<&'static str, u64>,
    weird_ignore: WeirdIgnore,
    now: f64,
    out: Records,
    pub stats: EngineStats,
}

impl Engine {
    pub fn new(config: TrackerConfig, dispatcher: Arc<Dispatcher>) -> Self {
        Self::with_uids(config, dispatcher, UidGen::new())
    }

    pub fn with_uids(config: TrackerConfig, dispatcher: Arc<Dispatcher>, uids: UidGen) -> Self {
        let ignore_checksums = config.ignore_checksums;
        let peer = config.peer.clone();
        Engine {
            tracker: Tracker::new(Arc::new(config), dispatcher, uids),
            defrag: Defragmenter::default(),
            tunnels: HashMap::new(),
            active_tunnels: ActiveTunnels::default(),
            ignore_checksums,
            peer,
            weird_counts: HashMap::new(),
            weird_ignore: WeirdIgnore::default(),
            now: 0.0,
            out: Vec::new(),
            stats: EngineStats::default(),
        }
    }

    /// Records produced so far, with tunnel.log's CLOSE rows for the connections removed that
    /// carried a tunnel.
    pub fn take_records(&mut self) -> Records {
        if !self.active_tunnels.is_empty() {
            let closed: Vec<TunnelRecord> = self
                .out
                .iter()
                .filter_map(|o| match o {
                    Output::Conn(c) => self.active_tunnels.removed(c),
                    _ => None,
                })
                .collect();
            self.out
                .extend(closed.into_iter().map(|r| Output::Log(Box::new(r))));
        }
        std::mem::take(&mut self.out)
    }

    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// End of input: every open connection is logged with its current state.
    pub fn finish(&mut self) {
        self.tracker.drain(self.now, &mut self.out);
    }

    /// Moves packet time forward without a packet (live capture idle), firing timers.
    pub fn advance(&mut self, ts: f64) {
        if ts > self.now {
            self.now = ts;
            self.tracker.advance(ts, &mut self.out);
        }
    }

    /// One captured frame: `wire_len` is its length on the wire, `frame` the captured bytes.
    pub fn packet(&mut self, ts: f64, linktype: Linktype, frame: &[u8], wire_len: usize) {
        self.stats.packets += 1;
        self.stats.bytes += wire_len as u64;
        self.advance(ts);
        let info = match decode::decode_link(linktype, frame) {
            Ok(i) => i,
            Err(e) => {
                self.decode_error(ts, e, None);
                return;
            }
        };
        if info.triple_vlan {
            let addl = Some("inner VLAN tag overwritten".to_string());
            let name = "triple_tagged_vlan_unsupported";
            self.flow_weird_addl(ts, name, None, Some("VLAN"), addl);
        }
        let ip = frame.get(info.ip_offset..).unwrap_or_default();
        let wire = wire_len.saturating_sub(info.ip_offset);
        self.ip(ts, ip, wire, &[], 0, false);
    }

    fn decode_error(&mut self, ts: f64, e: DecodeError, addrs: Option<(IpAddr, IpAddr)>) {
        match e.weird() {
            None => self.stats.non_ip += 1,
            Some(name) => {
                self.stats.malformed += 1;
                self.flow_weird_addl(ts, name, addrs, Some(e.source()), e.addl());
            }
        }
    }

    fn flow_weird(
        &mut self,
        ts: f64,
        name: &'static str,
        addrs: Option<(IpAddr, IpAddr)>,
        source: Option<&'static str>,
    ) {
        self.flow_weird_addl(ts, name, addrs, source, None);
    }

    fn flow_weird_addl(
        &mut self,
        ts: f64,
        name: &'static str,
        addrs: Option<(IpAddr, IpAddr)>,
        source: Option<&'static str>,
        addl: Option<String>,
    ) {
        let n = self.weird_counts.entry(name).or_default();
        *n += 1;
        if *n > WEIRD_THRESHOLD && !n.is_multiple_of(WEIRD_RATE) {
            return;
        }
        if !self.weird_ignore.admit(ts, name, addrs) {
            return;
        }
        self.out.push(Output::Log(Box::new(Weird::flow(
            Timestamp(ts),
            addrs,
            name,
            addl,
            source,
            &self.peer,
        ))));
    }

    fn ip(
        &mut self,
        ts: f64,
        data: &[u8],
        wire: usize,
        tunnels: &[Encap],
        depth: u8,
        reassembled: bool,
    ) {
        let mut option_weirds = Vec::new();
        let decoded = decode::decode_ip(
            data,
            wire,
            self.ignore_checksums || reassembled,
            &mut option_weirds,
        );
        for (name, src) in option_weirds {
            let dst = decode::ip_dst(data).unwrap_or(src);
            self.flow_weird(ts, name, Some((src, dst)), None);
        }
        let h = match decoded {
            Ok(h) => h,
            Err(e) => {
                self.decode_error(ts, e, None);
                return;
            }
        };
        let total = (h.total_len as usize).min(data.len());
        let packet = &data[..total];
        if let Some(frag) = h.frag {
            if data.len() < h.total_len as usize {
                self.flow_weird(
                    ts,
                    "incompletely_captured_fragment",
                    Some((h.src, h.dst)),
                    None,
                );
                if frag.offset != 0 {
                    return;
                }
            } else {
                match self.defrag.add(ts, &h, frag, packet) {
                    FragOutcome::Held => {}
                    FragOutcome::Dropped(w) => self.flow_weird(ts, w, Some((h.src, h.dst)), None),
                    FragOutcome::Complete(buf) => {
                        let len = buf.len();
                        self.ip(ts, &buf, len, tunnels, depth, true);
                    }
                }
                return;
            }
        }
        let l4 = packet.get(h.header_len..).unwrap_or_default();
        let l4_len = (h.total_len as usize).saturating_sub(h.header_len);
        let m = PacketMeta {
            ts,
            src: h.src,
            dst: h.dst,
            ip_proto: h.proto,
            ip_len: u64::from(h.total_len),
            l4,
            l4_len,
            tunnel_parent: tunnels.last().map(|t| t.uid.as_str()),
        };
        match h.proto {
            ipproto::TCP => match decode::decode_tcp(l4, l4_len) {
                Ok(th) => self.tracker.tcp(&m, &th, &mut self.out),
                Err(TransportError::TruncatedOptions(th)) => {
                    self.tracker.tcp_truncated(&m, &th, &mut self.out);
                }
                Err(e) => self.flow_weird(ts, e.weird(), Some((h.src, h.dst)), Some("TCP")),
            },
            ipproto::UDP => {
                if l4_len < 8 {
                    self.flow_weird(ts, "truncated_header", Some((h.src, h.dst)), Some("UDP"));
                } else if l4.len() < 8 {
                    self.flow_weird(
                        ts,
                        "internally_truncated_header",
                        Some((h.src, h.dst)),
                        Some("UDP"),
                    );
                } else if let Some(slot) = self.tracker.udp(&m, &mut self.out) {
                    self.udp_tunnel(ts, &h, slot, l4, l4_len, tunnels, depth);
                }
            }
            ipproto::ICMP | ipproto::ICMPV6 => {
                if l4.len() < 8 {
                    self.flow_weird(ts, "truncated_ICMP", Some((h.src, h.dst)), Some("ICMP"));
                } else if !self.ignore_checksums
                    && !decode::transport_checksum_ok(h.src, h.dst, h.proto, l4, l4_len)
                {
                    self.flow_weird(ts, "bad_ICMP_checksum", Some((h.src, h.dst)), Some("ICMP"));
                } else {
                    self.tracker
                        .icmp(&m, h.proto == ipproto::ICMPV6, &mut self.out);
                }
            }
            ipproto::GRE if depth < MAX_TUNNEL_DEPTH => {
                self.gre(ts, &h, (l4, l4_len), tunnels, depth);
            }
            ipproto::IPIP | ipproto::IPV6 if depth < MAX_TUNNEL_DEPTH => {
                let chain = self.ip_tunnel(tunnels, h.src, h.dst, TunnelType::Ip);
                self.ip(ts, l4, l4_len, &chain, depth + 1, false);
            }
            ipproto::IGMP => {
                // Zeek checks the message checksum and logs no connection.
                if !self.ignore_checksums
                    && !decode::transport_checksum_ok(h.src, h.dst, h.proto, l4, l4_len)
                {
                    self.flow_weird(
                        ts,
                        "igmp_invalid_checksum",
                        Some((h.src, h.dst)),
                        Some("IGMP"),
                    );
                }
            }
            ipproto::NONE => self.flow_weird(ts, "ipv6_no_next", Some((h.src, h.dst)), None),
            _ => self.tracker.other(&m, &mut self.out),
        }
        if !tunnels.is_empty() && self.tracker.take_new_encapsulation() {
            let mut discovered = Vec::new();
            self.active_tunnels.register(ts, tunnels, &mut discovered);
            self.out
                .extend(discovered.into_iter().map(|r| Output::Log(Box::new(r))));
        }
    }

    /// The chain `outer` extended by the IP tunnel between `src` and `dst`: Zeek keeps one
    /// per address pair, named after the direction of its first packet.
    fn ip_tunnel(
        &mut self,
        outer: &[Encap],
        src: IpAddr,
        dst: IpAddr,
        kind: TunnelType,
    ) -> Vec<Encap> {
        let key = if src <= dst { (src, dst) } else { (dst, src) };
        if !self.tunnels.contains_key(&key) {
            if self.tunnels.len() >= MAX_TUNNELS {
                self.tunnels.clear();
            }
            let encap = Encap {
                uid: self.tracker.uids().next('C'),
                id: TunnelId {
                    orig_h: src,
                    orig_p: 0,
                    resp_h: dst,
                    resp_p: 0,
                },
                kind,
            };
            self.tunnels.insert(key, encap);
        }
        let mut chain = outer.to_vec();
        chain.extend(self.tunnels.get(&key).cloned());
        chain
    }

    /// `l4` is the GRE packet as captured, with its length on the wire.
    fn gre(
        &mut self,
        ts: f64,
        h: &decode::IpHeader,
        (l4, l4_wire): (&[u8], usize),
        outer: &[Encap],
        depth: u8,
    ) {
        match tunnel::gre(l4) {
            Ok(Some(inner)) => {
                let chain = self.ip_tunnel(outer, h.src, h.dst, TunnelType::Gre);
                match inner {
                    Inner::Ip(ip) => {
                        let wire = wire_of(ip, l4, l4_wire);
                        self.ip(ts, ip, wire, &chain, depth + 1, false);
                    }
                    Inner::Ether(frame) if frame.len() >= 14 => {
                        self.ether(ts, (frame, wire_of(frame, l4, l4_wire)), &chain, depth);
                    }
                    Inner::Ether(_) => {
                        let weird = tunnel::GreError::Truncated.weird();
                        self.flow_weird(ts, weird, Some((h.src, h.dst)), Some("GRE"));
                    }
                }
            }
            Ok(None) => {}
            Err(e) => self.flow_weird(ts, e.weird(), Some((h.src, h.dst)), Some("GRE")),
        }
    }

    /// The UDP tunnels Zeek decodes by default on their well-known ports (VXLAN, Geneve,
    /// GTP-U, Teredo, AYIYA): the inner packet, with the outer UDP connection as tunnel
    /// (named in the inner connections' `tunnel_parents`, its service confirmed).
    #[allow(clippy::too_many_arguments)]
    fn udp_tunnel(
        &mut self,
        ts: f64,
        h: &decode::IpHeader,
        slot: usize,
        l4: &[u8],
        l4_len: usize,
        outer: &[Encap],
        depth: u8,
    ) {
        let (Some(sp), Some(dp)) = (l4.get(0..2), l4.get(2..4)) else {
            return;
        };
        let ports = [
            u16::from_be_bytes([sp[0], sp[1]]),
            u16::from_be_bytes([dp[0], dp[1]]),
        ];
        let payload = l4.get(8..l4_len.min(l4.len())).unwrap_or_default();
        let payload_wire = l4_len.saturating_sub(8);
        if depth >= MAX_TUNNEL_DEPTH {
            return;
        }
        let (kind, service, inner) = if ports.contains(&TEREDO_PORT) {
            match teredo_payload(payload) {
                // A bubble (no next header, no payload) only keeps the NAT mapping alive.
                Some(ip) if ip[6] == ipproto::NONE && ip.len() == 40 => {
                    self.tracker.tunnel(slot, TunnelType::Teredo, "teredo");
                    return;
                }
                Some(ip) => (TunnelType::Teredo, "teredo", Inner::Ip(ip)),
                None => return,
            }
        } else if ports.contains(&GTP_U_PORT) {
            match gtp_u_payload(payload) {
                Some(ip) => (TunnelType::Gtpv1, "gtpv1", Inner::Ip(ip)),
                None => return,
            }
        } else if ports.contains(&VXLAN_PORT) {
            match vxlan_payload(payload) {
                Some(frame) => (TunnelType::Vxlan, "vxlan", Inner::Ether(frame)),
                None => return,
            }
        } else if ports.contains(&GENEVE_PORT) {
            match geneve_payload(payload) {
                Ok(inner) => (TunnelType::Geneve, "geneve", inner),
                // A violation of the analyzer, not a weird.
                Err(GeneveError::Truncated) => return,
                Err(e) => {
                    let name = e.weird();
                    let addl = e.addl();
                    self.flow_weird_addl(ts, name, Some((h.src, h.dst)), Some("GENEVE"), addl);
                    return;
                }
            }
        } else if ports.contains(&AYIYA_PORT) {
            match ayiya_payload(payload) {
                Some(ip) => (TunnelType::Ayiya, "ayiya", Inner::Ip(ip)),
                None => return,
            }
        } else {
            return;
        };
        let Some(encap) = self.tracker.tunnel(slot, kind, service) else {
            return;
        };
        let mut chain = outer.to_vec();
        chain.push(encap);
        match inner {
            Inner::Ip(ip) => {
                let wire = wire_of(ip, payload, payload_wire);
                self.ip(ts, ip, wire, &chain, depth + 1, false);
            }
            Inner::Ether(frame) => {
                let wire = wire_of(frame, payload, payload_wire);
                self.ether(ts, (frame, wire), &chain, depth);
            }
        }
    }

    /// An encapsulated Ethernet frame as captured, with its length on the wire.
    fn ether(&mut self, ts: f64, (frame, wire): (&[u8], usize), tunnels: &[Encap], depth: u8) {
        match decode::decode_link(Linktype::ETHERNET, frame) {
            Ok(info) => {
                let ip = frame.get(info.ip_offset..).unwrap_or_default();
                let wire = wire.saturating_sub(info.ip_offset);
                self.ip(ts, ip, wire, tunnels, depth + 1, false);
            }
            Err(e) => self.decode_error(ts, e, None),
        }
    }
}

/// The length on the wire of `inner`, a part of `outer` whose length on the wire is
/// `outer_wire`: an encapsulated packet is as truncated as the capture of its outer one.
fn wire_of(inner: &[u8], outer: &[u8], outer_wire: usize) -> usize {
    let offset = (inner.as_ptr() as usize).saturating_sub(outer.as_ptr() as usize);
    outer_wire.saturating_sub(offset).max(inner.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zeeklog::Value;
    use proptest::prelude::*;

    fn engine(max_conns: usize) -> Engine {
        let cfg = TrackerConfig {
            max_conns,
            ..TrackerConfig::default()
        };
        Engine::with_uids(cfg, Arc::new(Dispatcher::all()), UidGen::seeded(7))
    }

    /// An Ethernet/IPv4/UDP frame with a zero (unchecked) UDP checksum.
    fn udp_frame(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        let total = (28 + payload.len()) as u16;
        let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0];
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        let c = !decode::checksum(&ip, 0);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(payload);
        f
    }

    /// An Ethernet/IPv4/TCP frame without a valid checksum (engines here ignore checksums).
    #[allow(clippy::too_many_arguments)]
    fn tcp_frame(
        src: [u8; 4],
        sport: u16,
        dst: [u8; 4],
        dport: u16,
        flags: u8,
        seq: u32,
        ack: u32,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        let total = (40 + payload.len()) as u16;
        let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 64, 6, 0, 0];
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&ack.to_be_bytes());
        f.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        f.extend_from_slice(payload);
        f
    }

    /// The first row whose column `col` equals `value`.
    fn row(rows: &[Vec<Value>], col: usize, value: Value) -> &[Value] {
        rows.iter()
            .find(|r| r[col] == value)
            .expect("a row with that value")
    }

    /// The outer connection carries the tunnel's service; the inner one (to port 6000) names it
    /// in `tunnel_parents`.
    fn assert_tunnelled(outer: &[Value], rows: &[Vec<Value>], service: &str) {
        assert_eq!(outer[7], Value::Str(service.into()));
        let inner = row(rows, 5, Value::Port(6000));
        assert_eq!(inner[20], Value::List(vec![outer[1].clone()]));
    }

    fn conn_rows(e: &mut Engine) -> Vec<Vec<Value>> {
        e.take_records()
            .into_iter()
            .filter(|r| r.record().path() == "conn")
            .map(|r| r.record().values())
            .collect()
    }

    proptest! {
        #[test]
        fn arbitrary_frames_never_panic(frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..120), 1..40), lt in prop_oneof![Just(0), Just(1), Just(101), Just(113), Just(276)]) {
            let mut e = engine(16);
            for (i, f) in frames.iter().enumerate() {
                e.packet(1000.0 + i as f64, Linktype(lt), f, f.len());
            }
            e.finish();
            let _ = e.take_records();
        }

        #[test]
        fn mutated_udp_frames_never_panic(flips in proptest::collection::vec((0usize..60, any::<u8>()), 0..8), cut in 0usize..60) {
            let mut f = udp_frame([10, 0, 0, 1], 1234, [10, 0, 0, 2], 53, b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x00\x00\x01\x00\x01");
            for (at, b) in flips {
                if let Some(x) = f.get_mut(at) { *x = b; }
            }
            f.truncate(cut.max(1));
            let mut e = engine(16);
            e.packet(1.0, Linktype::ETHERNET, &f, f.len() + 3);
            e.finish();
            let _ = e.take_records();
        }
    }

    #[test]
    fn udp_inactivity_splits_flows_in_packet_time() {
        let mut e = engine(100);
        let f = udp_frame([10, 0, 0, 1], 1234, [10, 0, 0, 2], 9999, b"abcd");
        e.packet(100.0, Linktype::ETHERNET, &f, f.len());
        e.packet(130.0, Linktype::ETHERNET, &f, f.len());
        assert!(conn_rows(&mut e).is_empty(), "still active after 30 s");
        // 61 s of silence: the first flow times out (1 min) before the next packet is seen.
        e.packet(191.0, Linktype::ETHERNET, &f, f.len());
        let rows = conn_rows(&mut e);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][0], Value::Time(Timestamp(100.0)));
        assert_eq!(rows[0][8], Value::Interval(30.0));
        assert_eq!(rows[0][16], Value::Count(2));
        e.finish();
        let rows = conn_rows(&mut e);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][0], Value::Time(Timestamp(191.0)));
        assert_eq!(rows[0][11], Value::Str("S0".into()));
    }

    #[test]
    fn unanswered_syn_ends_after_the_attempt_delay() {
        let cfg = TrackerConfig {
            ignore_checksums: true,
            ..TrackerConfig::default()
        };
        let mut e = Engine::with_uids(cfg, Arc::new(Dispatcher::none()), UidGen::seeded(1));
        let syn = tcp_frame([10, 0, 0, 1], 40000, [10, 0, 0, 2], 80, 0x02, 100, 0, b"");
        // Retransmissions at +1 s and +3 s belong to the attempt; the one at +9 s comes after
        // the 5 s attempt timer removed it, so it starts a new connection.
        for t in [0.0, 1.0, 3.0, 9.0] {
            e.packet(1000.0 + t, Linktype::ETHERNET, &syn, syn.len());
        }
        let first = conn_rows(&mut e);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0][11], Value::Str("S0".into()));
        assert_eq!(first[0][15], Value::Str("S".into()));
        assert_eq!(first[0][16], Value::Count(3));
        assert_eq!(first[0][8], Value::Interval(3.0));
        e.finish();
        let second = conn_rows(&mut e);
        assert_eq!(second.len(), 1);
        assert_eq!(second[0][0], Value::Time(Timestamp(1009.0)));
        assert_eq!(second[0][16], Value::Count(1));
    }

    #[test]
    fn established_connection_closes_five_seconds_after_the_fin_exchange() {
        let cfg = TrackerConfig {
            ignore_checksums: true,
            ..TrackerConfig::default()
        };
        let mut e = Engine::with_uids(cfg, Arc::new(Dispatcher::none()), UidGen::seeded(1));
        let (c, s) = ([10, 0, 0, 1], [10, 0, 0, 2]);
        let pkts = [
            (0.0, tcp_frame(c, 40000, s, 9, 0x02, 100, 0, b"")),
            (0.1, tcp_frame(s, 9, c, 40000, 0x12, 500, 101, b"")),
            (0.2, tcp_frame(c, 40000, s, 9, 0x10, 101, 501, b"")),
            (0.3, tcp_frame(c, 40000, s, 9, 0x18, 101, 501, b"hello")),
            (0.4, tcp_frame(s, 9, c, 40000, 0x11, 501, 106, b"")),
            (0.5, tcp_frame(c, 40000, s, 9, 0x11, 106, 502, b"")),
            (0.6, tcp_frame(s, 9, c, 40000, 0x10, 502, 107, b"")),
        ];
        for (t, f) in &pkts {
            e.packet(2000.0 + t, Linktype::ETHERNET, f, f.len());
        }
        assert!(
            conn_rows(&mut e).is_empty(),
            "removed only after tcp_close_delay"
        );
        let later = tcp_frame([10, 9, 9, 9], 1, [10, 9, 9, 8], 2, 0x02, 1, 0, b"");
        e.packet(2005.6, Linktype::ETHERNET, &later, later.len());
        let rows = conn_rows(&mut e);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][11], Value::Str("SF".into()));
        assert_eq!(rows[0][15], Value::Str("ShADfFa".into()));
        // The final ACK after both FINs does not extend the duration.
        assert_eq!(rows[0][8], Value::Interval(2000.5 - 2000.0));
        assert_eq!(
            (rows[0][9].clone(), rows[0][10].clone()),
            (Value::Count(5), Value::Count(0))
        );
    }

    #[test]
    fn vxlan_inner_connections_name_the_outer_one_as_tunnel_parent() {
        let mut e = engine(100);
        let inner = udp_frame([192, 168, 1, 1], 5000, [192, 168, 1, 2], 6000, b"inner");
        let mut vx = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
        vx.extend_from_slice(&inner);
        let outer = udp_frame([10, 0, 0, 1], 40000, [10, 0, 0, 2], VXLAN_PORT, &vx);
        e.packet(1.0, Linktype::ETHERNET, &outer, outer.len());
        e.finish();
        let rows = conn_rows(&mut e);
        assert_eq!(rows.len(), 2);
        assert_tunnelled(row(&rows, 5, Value::Port(VXLAN_PORT)), &rows, "vxlan");
    }

    /// Zeek's `DNS_Interpreter::ParseMessage` flips a connection whose first message is a
    /// reply from the originator: with both ports 53 only the message tells the roles.
    #[test]
    fn dns_reply_seen_first_between_port_53s_makes_its_receiver_the_originator() {
        let mut e = engine(100);
        let reply = b"\x12\x34\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x00\x00\x01\x00\x01";
        let f = udp_frame([10, 0, 0, 1], 53, [10, 0, 0, 2], 53, reply);
        e.packet(1.0, Linktype::ETHERNET, &f, f.len());
        e.finish();
        let rows = conn_rows(&mut e);
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(r[2], Value::Addr([10, 0, 0, 2].into()), "originator");
        assert_eq!(r[4], Value::Addr([10, 0, 0, 1].into()), "responder");
        // The counts stay with the role: the reply counts as the originator's.
        assert_eq!(r[11], Value::Str("S0".into()));
        assert_eq!(r[15], Value::Str("D^".into()));
        assert_eq!((&r[16], &r[18]), (&Value::Count(1), &Value::Count(0)));
    }

    /// Zeek's NTP analyzer (`proc_ntp_message`) flips once on a server message from the
    /// originator; the client's later request then counts as the originator's too.
    #[test]
    fn ntp_server_message_first_flips_the_connection_once() {
        let mut e = engine(100);
        let mut msg = [0u8; 48];
        msg[0] = 0x24; // v4 server
        let reply = udp_frame([10, 0, 0, 1], 123, [10, 0, 0, 2], 123, &msg);
        msg[0] = 0x23; // v4 client
        let request = udp_frame([10, 0, 0, 2], 123, [10, 0, 0, 1], 123, &msg);
        e.packet(1.0, Linktype::ETHERNET, &reply, reply.len());
        e.packet(2.0, Linktype::ETHERNET, &request, request.len());
        e.finish();
        let rows = conn_rows(&mut e);
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(r[2], Value::Addr([10, 0, 0, 2].into()), "originator");
        assert_eq!(
            (&r[11], &r[15]),
            (&Value::Str("S0".into()), &Value::Str("D^".into()))
        );
        assert_eq!((&r[9], &r[16]), (&Value::Count(96), &Value::Count(2)));
    }

    /// Zeek's DHCP scripts add only 67/udp to `likely_server_ports`: a server's reply to a
    /// client's port 68 starts a connection the client originates.
    #[test]
    fn dhcp_reply_is_flipped_to_the_client() {
        let mut e = engine(100);
        let f = udp_frame([10, 0, 0, 1], 67, [10, 0, 0, 9], 68, &[2; 240]);
        e.packet(1.0, Linktype::ETHERNET, &f, f.len());
        e.finish();
        let rows = conn_rows(&mut e);
        let r = &rows[0];
        assert_eq!(
            (&r[2], &r[3]),
            (&Value::Addr([10, 0, 0, 9].into()), &Value::Port(68))
        );
        assert_eq!(
            (&r[11], &r[15]),
            (&Value::Str("SHR".into()), &Value::Str("^d".into()))
        );
    }

    /// Zeek's `DNS_Analyzer::ExpireTimer`: a DNS connection over UDP idle for
    /// `dns_session_timeout` (10 s, less a second) when its timer fires is removed, so a later
    /// query on the same ports is a new connection.
    #[test]
    fn dns_over_udp_ends_after_its_session_timeout() {
        let mut e = engine(100);
        let query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x00\x00\x01\x00\x01";
        let f = udp_frame([10, 0, 0, 1], 40000, [10, 0, 0, 2], 53, query);
        // Timers at +10 (idle 8 s: kept) and +20 (idle 18 s: removed); the query at +25 is new.
        for t in [0.0, 2.0, 25.0] {
            e.packet(100.0 + t, Linktype::ETHERNET, &f, f.len());
        }
        let first = conn_rows(&mut e);
        assert_eq!(first.len(), 1);
        assert_eq!(
            (&first[0][8], &first[0][16]),
            (&Value::Interval(2.0), &Value::Count(2))
        );
        e.finish();
        assert_eq!(conn_rows(&mut e)[0][0], Value::Time(Timestamp(125.0)));
    }

    #[test]
    fn gtp_user_plane_is_decapsulated_and_other_messages_are_not() {
        let mut e = engine(100);
        let inner = udp_frame([172, 16, 0, 1], 5000, [172, 16, 0, 2], 6000, b"inner");
        let inner_ip = &inner[14..];
        let mut gtp = vec![0x30, 0xff];
        gtp.extend_from_slice(&(inner_ip.len() as u16).to_be_bytes());
        gtp.extend_from_slice(&[0, 0, 0, 1]);
        gtp.extend_from_slice(inner_ip);
        let outer = udp_frame([10, 0, 0, 1], GTP_U_PORT, [10, 0, 0, 2], GTP_U_PORT, &gtp);
        e.packet(1.0, Linktype::ETHERNET, &outer, outer.len());
        let echo = udp_frame(
            [10, 0, 0, 3],
            GTP_U_PORT,
            [10, 0, 0, 4],
            GTP_U_PORT,
            &[0x32, 0x01, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0],
        );
        e.packet(2.0, Linktype::ETHERNET, &echo, echo.len());
        e.finish();
        let rows = conn_rows(&mut e);
        assert_eq!(rows.len(), 3);
        let outer = row(&rows, 2, Value::Addr([10, 0, 0, 1].into()));
        assert_tunnelled(outer, &rows, "gtpv1");
        let echo = row(&rows, 2, Value::Addr([10, 0, 0, 3].into()));
        assert_eq!(echo[7], Value::Unset);
    }

    #[test]
    fn reassembly_memory_is_bounded_across_connections() {
        let cfg = TrackerConfig {
            ignore_checksums: true,
            max_reassembly_bytes: 1000,
            ..TrackerConfig::default()
        };
        let mut e = Engine::with_uids(cfg, Arc::new(Dispatcher::all()), UidGen::seeded(1));
        let (c, s) = ([10, 0, 0, 1], [10, 0, 0, 2]);
        for port in 0..4u16 {
            let p = 40000 + port;
            let hs = [
                tcp_frame(c, p, s, 80, 0x02, 100, 0, b""),
                tcp_frame(s, 80, c, p, 0x12, 500, 101, b""),
                tcp_frame(c, p, s, 80, 0x10, 101, 501, b""),
                // 400 bytes above a hole: buffered until the hole fills or an ACK passes it.
                tcp_frame(c, p, s, 80, 0x18, 201, 501, &[b'x'; 400]),
            ];
            for f in &hs {
                e.packet(1.0 + f64::from(port), Linktype::ETHERNET, f, f.len());
            }
        }
        let weirds: Vec<String> = e
            .take_records()
            .iter()
            .filter(|r| r.record().path() == "weird")
            .map(|r| format!("{:?}", r.record().values()[6]))
            .collect();
        assert_eq!(
            weirds
                .iter()
                .filter(|w| w.contains("reassembly_memory_exhausted"))
                .count(),
            2,
            "{weirds:?}"
        );
    }

    #[test]
    fn teredo_carries_ipv6_connections() {
        // The inner UDP checksum is not filled in.
        let cfg = TrackerConfig {
            ignore_checksums: true,
            ..TrackerConfig::default()
        };
        let mut e = Engine::with_uids(cfg, Arc::new(Dispatcher::all()), UidGen::seeded(3));
        // An IPv6/UDP packet with an 8-byte payload.
        let mut v6 = vec![0x60, 0, 0, 0, 0, 16, 17, 64];
        v6.extend_from_slice(&[0x20, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        v6.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        v6.extend_from_slice(&[0x13, 0x88, 0x17, 0x70, 0, 16, 0, 0]);
        v6.extend_from_slice(b"payload!");
        let outer = udp_frame([10, 0, 0, 1], 40000, [10, 0, 0, 2], TEREDO_PORT, &v6);
        e.packet(1.0, Linktype::ETHERNET, &outer, outer.len());
        e.finish();
        let rows = conn_rows(&mut e);
        assert_eq!(rows.len(), 2);
        assert_tunnelled(row(&rows, 5, Value::Port(TEREDO_PORT)), &rows, "teredo");
    }

    #[test]
    fn flow_table_is_bounded_and_evicts_oldest() {
        let mut e = engine(50);
        let flow = |e: &mut Engine, ts: f64, sport: u16| {
            let f = udp_frame([10, 0, 0, 1], sport, [10, 0, 0, 2], 9999, b"x");
            e.packet(ts, Linktype::ETHERNET, &f, f.len());
            assert!(e.tracker().len() <= 50);
        };
        // 50 flows fill the table; the first 25 are active again later than the other 25.
        for i in 0..50u16 {
            flow(&mut e, 1.0 + f64::from(i) * 0.001, 1000 + i);
        }
        for i in 0..25u16 {
            flow(&mut e, 2.0 + f64::from(i) * 0.001, 1000 + i);
        }
        assert!(
            e.take_records().is_empty(),
            "nothing evicted below the limit"
        );
        // 50 new flows: each evicts the flow idle longest (1% of 50 rounds up to one).
        for i in 0..50u16 {
            flow(&mut e, 3.0 + f64::from(i) * 0.001, 2000 + i);
        }
        let records = e.take_records();
        let evicted: Vec<u16> = records
            .iter()
            .filter_map(|r| match r {
                Output::Conn(c) => Some(c.orig_p),
                _ => None,
            })
            .collect();
        let expected: Vec<u16> = (1025..1050).chain(1000..1025).collect();
        assert_eq!(evicted, expected, "the idlest flows go first, in order");
        let weirds = records
            .iter()
            .filter(|r| r.record().path() == "weird")
            .count();
        assert_eq!(weirds, 50, "each eviction is reported");
        assert_eq!(e.tracker().stats.conns_evicted, 50);
        e.finish();
        let mut rest: Vec<u16> = e
            .take_records()
            .iter()
            .filter_map(|r| match r {
                Output::Conn(c) => Some(c.orig_p),
                _ => None,
            })
            .collect();
        rest.sort_unstable();
        assert_eq!(rest, (2000..2050).collect::<Vec<_>>(), "the newest stay");
    }
}
