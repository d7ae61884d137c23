//! One analysis worker: decodes packets, follows tunnels and fragments, and drives the
//! connection tracker. Produces records; the caller decides where they go.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::conn::{bad_opt_offset, PacketMeta, Records, Tracker, TrackerConfig};
use crate::decode::teredo::{self, Teredo, TEREDO_PORT};
use crate::decode::tunnel::{
    self, ayiya_payload, geneve_payload, gtp_u_payload, vxlan_payload, GeneveError, Inner,
    AYIYA_PORT, GENEVE_PORT, GRE_UDP_PORT, GTP_U_PORT, VXLAN_PORT,
};
use crate::decode::{
    self, frag::Defragmenter, frag::FragOutcome, ipproto, DecodeError, Linktype, TransportError,
};
use crate::dispatch::Dispatcher;
use crate::flow::{Encap, Timestamp, TunnelId, TunnelType};
use crate::output::Output;
use crate::tunnel_log::ActiveTunnels;
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
    /// carried a tunnel, and the DISCOVER rows of proxies only for tunnels not active yet.
    pub fn take_records(&mut self) -> Records {
        let mut out = std::mem::take(&mut self.out);
        let mut closed = Vec::new();
        out.retain(|o| match o {
            Output::Tunnel(t) => self.active_tunnels.discover(t),
            Output::Conn(c) => {
                if !self.active_tunnels.is_empty() {
                    closed.extend(self.active_tunnels.removed(c));
                }
                true
            }
            _ => true,
        });
        out.extend(closed.into_iter().map(|r| Output::Log(Box::new(r))));
        out
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
            Err(DecodeError::Amsdu(at)) => {
                self.amsdu(ts, frame.get(at..).unwrap_or_default(), &[], 0);
                return;
            }
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
                // A reassembled packet's header is the packet's by now, so its weirds name
                // its addresses.
                let addrs = reassembled.then(|| decode::ip_addrs(data)).flatten();
                self.decode_error(ts, e, addrs);
                return;
            }
        };
        if h.len_zero {
            self.flow_weird(ts, "ip_hdr_len_zero", None, Some("IP"));
        }
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
                let mut weirds = Vec::new();
                let outcome = self.defrag.add(ts, &h, frag, packet, &mut weirds);
                for w in weirds {
                    self.flow_weird(ts, w, Some((h.src, h.dst)), None);
                }
                match outcome {
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
            tunnels,
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
                    let v6 = h.proto == ipproto::ICMPV6;
                    self.tracker.icmp(&m, v6, &mut self.out);
                    if let Some((name, addl)) = v6.then(|| bad_opt_offset(l4, l4_len)).flatten() {
                        self.flow_weird_addl(ts, name, None, Some("ICMP"), Some(addl));
                    }
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
                    Inner::Ether(frame) => {
                        let wire = wire_of(frame, l4, l4_wire);
                        self.link(ts, Linktype::ETHERNET, (frame, wire), &chain, depth);
                    }
                    Inner::Wlan(frame) => {
                        let wire = wire_of(frame, l4, l4_wire);
                        self.link(ts, Linktype::IEEE802_11, (frame, wire), &chain, depth);
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                let addrs = Some((h.src, h.dst));
                self.flow_weird_addl(ts, e.weird(), addrs, Some("GRE"), e.addl());
            }
        }
    }

    /// The UDP tunnels Zeek decodes by default on their well-known ports (VXLAN, Geneve,
    /// GTP-U, GRE, Teredo, AYIYA): the inner packet, with the outer UDP connection as tunnel
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
        // `UDPAnalyzer::DeliverPacket` forwards by the connection's responder port only: the
        // roles already follow `likely_server_ports`.
        let Some(resp_p) = self.tracker.resp_port(slot) else {
            return;
        };
        let payload = l4.get(8..l4_len.min(l4.len())).unwrap_or_default();
        let payload_wire = l4_len.saturating_sub(8);
        if depth >= MAX_TUNNEL_DEPTH {
            return;
        }
        let (kind, service, inner) = if resp_p == GTP_U_PORT {
            match gtp_u_payload(payload) {
                Some(ip) => (TunnelType::Gtpv1, "gtpv1", Inner::Ip(ip)),
                None => return,
            }
        } else if resp_p == VXLAN_PORT {
            match vxlan_payload(payload) {
                Some(frame) => (TunnelType::Vxlan, "vxlan", Inner::Ether(frame)),
                None => return,
            }
        } else if resp_p == GENEVE_PORT {
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
        } else if resp_p == GRE_UDP_PORT {
            // A packet analyzer under UDP: the tunnel is GRE's between the outer addresses,
            // and the UDP connection gets no service.
            self.gre(ts, h, (payload, payload_wire), outer, depth);
            return;
        } else if resp_p == AYIYA_PORT {
            match ayiya_payload(payload) {
                Some(ip) => (TunnelType::Ayiya, "ayiya", Inner::Ip(ip)),
                None => return,
            }
        } else if resp_p == TEREDO_PORT || teredo::detect(payload) {
            // Zeek finds Teredo on its port and, by content, on any other UDP port.
            match teredo::parse(payload) {
                Some(Teredo::BubbleWithPayload(_)) => {
                    let name = "Teredo_bubble_with_payload";
                    self.tracker.weird(slot, ts, name, "TEREDO", &mut self.out);
                    self.tracker.tunnel(slot, TunnelType::Teredo, "teredo");
                    return;
                }
                // A bubble (no next header, no payload) only keeps the NAT mapping alive.
                Some(Teredo::Ip(ip)) if ip[6] == ipproto::NONE && ip.len() == 40 => {
                    self.tracker.tunnel(slot, TunnelType::Teredo, "teredo");
                    return;
                }
                Some(Teredo::Ip(ip)) => (TunnelType::Teredo, "teredo", Inner::Ip(ip)),
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
                self.link(ts, Linktype::ETHERNET, (frame, wire), &chain, depth);
            }
            Inner::Wlan(frame) => {
                let wire = wire_of(frame, payload, payload_wire);
                self.link(ts, Linktype::IEEE802_11, (frame, wire), &chain, depth);
            }
        }
    }

    /// An encapsulated link-layer frame as captured, with its length on the wire.
    fn link(
        &mut self,
        ts: f64,
        linktype: Linktype,
        (frame, wire): (&[u8], usize),
        tunnels: &[Encap],
        depth: u8,
    ) {
        match decode::decode_link(linktype, frame) {
            Ok(info) => {
                let ip = frame.get(info.ip_offset..).unwrap_or_default();
                let wire = wire.saturating_sub(info.ip_offset);
                self.ip(ts, ip, wire, tunnels, depth + 1, false);
            }
            Err(DecodeError::Amsdu(at)) => {
                self.amsdu(ts, frame.get(at..).unwrap_or_default(), tunnels, depth + 1);
            }
            Err(e) => self.decode_error(ts, e, None),
        }
    }

    /// An 802.11 A-MSDU: each subframe's packet under the same tunnels, then the weirds of
    /// the first bad subframe. A subframe is as long as captured: its length bounds it.
    fn amsdu(&mut self, ts: f64, body: &[u8], tunnels: &[Encap], depth: u8) {
        let (subframes, weirds) = decode::amsdu::subframes(body);
        for sub in subframes {
            match decode::decode_ethertype(sub.ethertype, sub.payload) {
                Ok(info) => {
                    let ip = sub.payload.get(info.ip_offset..).unwrap_or_default();
                    self.ip(ts, ip, ip.len(), tunnels, depth, false);
                }
                Err(e) => self.decode_error(ts, e, None),
            }
        }
        for name in weirds {
            self.flow_weird(ts, name, None, Some("IEEE802_11"));
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
mod tests;
