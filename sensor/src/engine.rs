//! One analysis worker: decodes packets, follows tunnels and fragments, and drives the
//! connection tracker. Produces records; the caller decides where they go.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::conn::{PacketMeta, Records, Tracker, TrackerConfig};
use crate::decode::{self, frag::Defragmenter, frag::FragOutcome, ipproto, DecodeError, Linktype};
use crate::dispatch::Dispatcher;
use crate::flow::Timestamp;
use crate::output::Output;
use crate::uid::UidGen;
use crate::weird::Weird;

/// Nesting limit for tunnels (GRE, IP-in-IP).
const MAX_TUNNEL_DEPTH: u8 = 3;
const MAX_TUNNELS: usize = 10_000;
/// What a tunnel header carries.
enum Inner<'a> {
    Ip(&'a [u8]),
    Ether(&'a [u8]),
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|s| u16::from_be_bytes([s[0], s[1]]))
}

/// Zeek's `PacketAnalyzer::VXLAN::vxlan_ports`.
const VXLAN_PORT: u16 = 4789;
/// GTPv1 user plane.
const GTP_U_PORT: u16 = 2152;
/// Teredo (IPv6 over UDP over IPv4).
const TEREDO_PORT: u16 = 3544;

/// The IPv6 packet of a Teredo datagram, after the optional authentication and origin
/// indication headers; `None` unless it is a complete IPv6 packet, as Zeek requires.
fn teredo_payload(b: &[u8]) -> Option<&[u8]> {
    let mut off = 0;
    if b.get(0..2)? == [0, 1] {
        let id_len = usize::from(*b.get(2)?);
        let auth_len = usize::from(*b.get(3)?);
        off = 4 + id_len + auth_len + 8 + 1;
    }
    if b.get(off..off + 2)? == [0, 0] {
        off += 8;
    }
    let ip = b.get(off..)?;
    if ip.len() < 40 || ip[0] >> 4 != 6 {
        return None;
    }
    let plen = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
    (40 + plen == ip.len()).then_some(ip)
}

/// The inner IP packet of a GTPv1-U T-PDU (message type 0xff); other messages carry none.
fn gtp_u_payload(b: &[u8]) -> Option<&[u8]> {
    let flags = *b.first()?;
    if flags >> 5 != 1 || flags & 0x10 == 0 || *b.get(1)? != 0xff {
        return None;
    }
    let mut off = 8;
    if flags & 0x07 != 0 {
        let mut next = *b.get(11)?;
        off = 12;
        // Extension headers: a length in 4-byte units, the content, then the next type.
        for _ in 0..8 {
            if next == 0 {
                break;
            }
            let units = usize::from(*b.get(off)?);
            if units == 0 {
                return None;
            }
            off += units * 4;
            next = *b.get(off.checked_sub(1)?)?;
        }
    }
    let inner = b.get(off..)?;
    matches!(inner.first()? >> 4, 4 | 6).then_some(inner)
}
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
    tunnels: HashMap<(IpAddr, IpAddr), String>,
    ignore_checksums: bool,
    peer: String,
    weird_counts: HashMap<&'static str, u64>,
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
            ignore_checksums,
            peer,
            weird_counts: HashMap::new(),
            now: 0.0,
            out: Vec::new(),
            stats: EngineStats::default(),
        }
    }

    /// Records produced so far.
    pub fn take_records(&mut self) -> Records {
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
        let ip = frame.get(info.ip_offset..).unwrap_or_default();
        let wire = wire_len.saturating_sub(info.ip_offset);
        self.ip(ts, ip, wire, None, 0, false);
    }

    fn decode_error(&mut self, ts: f64, e: DecodeError, addrs: Option<(IpAddr, IpAddr)>) {
        match e.weird() {
            None => self.stats.non_ip += 1,
            Some(name) => {
                self.stats.malformed += 1;
                self.flow_weird(ts, name, addrs, Some("IP"));
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
        let n = self.weird_counts.entry(name).or_default();
        *n += 1;
        if *n > WEIRD_THRESHOLD && !n.is_multiple_of(WEIRD_RATE) {
            return;
        }
        self.out.push(Output::Log(Box::new(Weird::flow(
            Timestamp(ts),
            addrs,
            name,
            None,
            source,
            &self.peer,
        ))));
    }

    fn ip(
        &mut self,
        ts: f64,
        data: &[u8],
        wire: usize,
        tunnel: Option<&str>,
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
                        let tunnel = tunnel.map(str::to_string);
                        self.ip(ts, &buf, len, tunnel.as_deref(), depth, true);
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
            tunnel_parent: tunnel,
        };
        match h.proto {
            ipproto::TCP => match decode::decode_tcp(l4, l4_len) {
                Ok(th) => self.tracker.tcp(&m, &th, &mut self.out),
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
                    self.udp_tunnel(ts, slot, l4, l4_len, depth);
                }
            }
            ipproto::ICMP | ipproto::ICMPV6 => {
                if l4.len() < 8 {
                    self.flow_weird(ts, "truncated_ICMP", Some((h.src, h.dst)), Some("ICMP"));
                } else if !self.icmp_checksum_ok(&h, l4, l4_len) {
                    self.flow_weird(ts, "bad_ICMP_checksum", Some((h.src, h.dst)), Some("ICMP"));
                } else {
                    self.tracker
                        .icmp(&m, h.proto == ipproto::ICMPV6, &mut self.out);
                }
            }
            ipproto::GRE if depth < MAX_TUNNEL_DEPTH => self.gre(ts, &h, l4, depth),
            ipproto::IPIP | ipproto::IPV6 if depth < MAX_TUNNEL_DEPTH => {
                let uid = self.tunnel_uid(h.src, h.dst);
                self.ip(ts, l4, l4.len(), Some(&uid), depth + 1, false);
            }
            2 => {
                // IGMP: Zeek checks the message checksum and logs no connection.
                if !self.ignore_checksums
                    && l4.len() >= l4_len
                    && decode::checksum(&l4[..l4_len], 0) != 0xffff
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
    }

    fn icmp_checksum_ok(&self, h: &decode::IpHeader, l4: &[u8], l4_len: usize) -> bool {
        if self.ignore_checksums || l4.len() < l4_len {
            return true;
        }
        let initial = if h.proto == ipproto::ICMPV6 {
            decode::pseudo_header_sum(h.src, h.dst, ipproto::ICMPV6, l4_len)
        } else {
            0
        };
        decode::checksum(&l4[..l4_len], initial) == 0xffff
    }

    fn tunnel_uid(&mut self, a: IpAddr, b: IpAddr) -> String {
        let key = if a <= b { (a, b) } else { (b, a) };
        if let Some(u) = self.tunnels.get(&key) {
            return u.clone();
        }
        if self.tunnels.len() >= MAX_TUNNELS {
            self.tunnels.clear();
        }
        let uid = self.tracker.uids().next('C');
        self.tunnels.insert(key, uid.clone());
        uid
    }

    /// GRE with Zeek's checks and weird names; payloads other than IP, Ethernet (transparent
    /// bridging, ERSPAN II/III) and PPTP are left alone, as Zeek does without a weird.
    fn gre(&mut self, ts: f64, h: &decode::IpHeader, l4: &[u8], depth: u8) {
        let addrs = Some((h.src, h.dst));
        let (Some(flags), Some(proto)) = (be16(l4, 0), be16(l4, 2)) else {
            self.flow_weird(ts, "truncated_GRE", addrs, Some("GRE"));
            return;
        };
        let version = flags & 0x7;
        let mut gre_len = 4;
        for bit in [0x8000, 0x2000, 0x1000, 0x0080] {
            if flags & bit != 0 {
                gre_len += 4;
            }
        }
        if version > 1 {
            self.flow_weird(ts, "unknown_gre_version", addrs, Some("GRE"));
            return;
        }
        if version == 1 && proto != 0x880b {
            self.flow_weird(ts, "egre_protocol_type", addrs, Some("GRE"));
            return;
        }
        if flags & 0x4000 != 0 {
            self.flow_weird(ts, "gre_routing", addrs, Some("GRE"));
            return;
        }
        if flags & 0x0078 != 0 {
            self.flow_weird(ts, "unknown_gre_flags", addrs, Some("GRE"));
            return;
        }
        let Some(rest) = l4.get(gre_len..) else {
            self.flow_weird(ts, "truncated_GRE", addrs, Some("GRE"));
            return;
        };
        let inner = match (version, proto) {
            (0, 0x0800) | (0, 0x86dd) => Inner::Ip(rest),
            (0, 0x6558) => Inner::Ether(rest),
            // ERSPAN type II carries an 8-byte header when the sequence bit is set (type I none).
            (0, 0x88be) => Inner::Ether(
                rest.get(if flags & 0x1000 != 0 { 8 } else { 0 }..)
                    .unwrap_or_default(),
            ),
            (0, 0x22eb) => {
                let opt = rest.get(11).is_some_and(|b| b & 1 == 1);
                Inner::Ether(rest.get(if opt { 20 } else { 12 }..).unwrap_or_default())
            }
            (1, _) => match (be16(rest, 2), rest.get(4..)) {
                (Some(0x0021 | 0x0057), Some(ip)) => Inner::Ip(ip),
                _ => {
                    self.flow_weird(ts, "non_ip_packet_in_encap", addrs, Some("GRE"));
                    return;
                }
            },
            _ => return,
        };
        let uid = self.tunnel_uid(h.src, h.dst);
        match inner {
            Inner::Ip(ip) => self.ip(ts, ip, ip.len(), Some(&uid), depth + 1, false),
            Inner::Ether(frame) if frame.len() >= 14 => self.ether(ts, frame, &uid, depth),
            Inner::Ether(_) => self.flow_weird(ts, "truncated_GRE", addrs, Some("GRE")),
        }
    }

    /// VXLAN and GTP-U on their well-known ports: the inner packet, with the outer UDP
    /// connection as tunnel parent (service `vxlan`/`gtpv1`), as Zeek decodes them by default.
    fn udp_tunnel(&mut self, ts: f64, slot: usize, l4: &[u8], l4_len: usize, depth: u8) {
        let (Some(sp), Some(dp)) = (l4.get(0..2), l4.get(2..4)) else {
            return;
        };
        let ports = [
            u16::from_be_bytes([sp[0], sp[1]]),
            u16::from_be_bytes([dp[0], dp[1]]),
        ];
        let payload = l4.get(8..l4_len.min(l4.len())).unwrap_or_default();
        if depth >= MAX_TUNNEL_DEPTH {
            return;
        }
        if ports.contains(&TEREDO_PORT) {
            if let Some(inner) = teredo_payload(payload) {
                if let Some(uid) = self.tracker.tunnel(slot, "teredo") {
                    // A bubble (no next header, no payload) only keeps the NAT mapping alive.
                    if !(inner[6] == ipproto::NONE && inner.len() == 40) {
                        self.ip(ts, inner, inner.len(), Some(&uid), depth + 1, false);
                    }
                }
            }
            return;
        }
        if ports.contains(&GTP_U_PORT) {
            if let Some(inner) = gtp_u_payload(payload) {
                if let Some(uid) = self.tracker.tunnel(slot, "gtpv1") {
                    self.ip(ts, inner, inner.len(), Some(&uid), depth + 1, false);
                }
            }
            return;
        }
        if !ports.contains(&VXLAN_PORT) || payload.len() < 8 + 14 || payload[0] & 0x08 == 0 {
            return;
        }
        if let Some(uid) = self.tracker.tunnel(slot, "vxlan") {
            self.ether(ts, &payload[8..], &uid, depth);
        }
    }

    fn ether(&mut self, ts: f64, frame: &[u8], uid: &str, depth: u8) {
        match decode::decode_link(Linktype::ETHERNET, frame) {
            Ok(info) => {
                let ip = frame.get(info.ip_offset..).unwrap_or_default();
                self.ip(ts, ip, ip.len(), Some(uid), depth + 1, false);
            }
            Err(e) => self.decode_error(ts, e, None),
        }
    }
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
        for i in 0..200u16 {
            let f = udp_frame([10, 0, 0, 1], 1000 + i, [10, 0, 0, 2], 9999, b"x");
            e.packet(1.0 + f64::from(i) * 0.001, Linktype::ETHERNET, &f, f.len());
            assert!(e.tracker().len() <= 50);
        }
        let records = e.take_records();
        let weirds = records
            .iter()
            .filter(|r| r.record().path() == "weird")
            .count();
        let conns = records
            .iter()
            .filter(|r| r.record().path() == "conn")
            .count();
        assert!(weirds > 0, "eviction is reported");
        assert_eq!(conns as u64, e.tracker().stats.conns_evicted);
        e.finish();
        assert_eq!(
            conn_rows(&mut e).len() + conns,
            200,
            "every flow logged exactly once"
        );
    }
}
