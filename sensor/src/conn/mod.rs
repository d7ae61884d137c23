//! Connection tracking: the flow table, Zeek's timers in packet time, per-transport state,
//! TCP reassembly feeding the application analyzers, and conn.log rows at removal.

mod datagram;
mod emit;
mod encap;
mod history;
mod icmp_nd;
mod local_nets;
pub mod reassembly;
mod record;
mod scheduled;
mod stream;
pub mod tcp;
mod timers;

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use crate::conn_log::ConnProto;
use crate::decode::{ipproto, transport_checksum_ok, TcpHeader};
use crate::dispatch::Dispatcher;
use crate::flow::{ConnId, ConnInfo, Encap, Timestamp, Transport};
use crate::output::Output;
use crate::proto::{ftp, Analyzer};
use crate::uid::UidGen;
use crate::weird::Weird;
use emit::ConnEmit;
use encap::Encapsulation;
use history::History;
pub use icmp_nd::bad_opt_offset;
pub use local_nets::LocalNets;
use reassembly::Reassembler;
use tcp::{Tcp, TimerKind, When};
use timers::{Timer, TimerAction};

/// Zeek's `udp_inactivity_timeout`, `icmp_inactivity_timeout`, `unknown_ip_inactivity_timeout`;
/// also the TCP timeout until the handshake completes.
pub const SHORT_INACTIVITY: f64 = 60.0;
/// Zeek's `dns_session_timeout`: a DNS connection over UDP is removed once it has been idle
/// this long (less a second of slack) when its timer fires.
const DNS_SESSION_TIMEOUT: f64 = 10.0;
/// Tunnels named in one connection's `tunnel_parents` at most.
const MAX_TUNNEL_PARENTS: usize = 16;
/// Out-of-order bytes buffered per direction before reassembly gives up on a stream.
const MAX_REASSEMBLY_BUFFER: usize = 2 * 1024 * 1024;

pub use crate::output::Records;

/// Flow key: both endpoints in a canonical order, plus the IP protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    lo: (IpAddr, u16),
    hi: (IpAddr, u16),
    proto: u8,
}

impl FlowKey {
    pub fn new(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, proto: u8) -> Self {
        let a = (src, sport);
        let b = (dst, dport);
        if a <= b {
            FlowKey {
                lo: a,
                hi: b,
                proto,
            }
        } else {
            FlowKey {
                lo: b,
                hi: a,
                proto,
            }
        }
    }
}

/// Settings of the connection tracker.
#[derive(Debug, Clone)]
pub struct TrackerConfig {
    pub ignore_checksums: bool,
    pub local_nets: LocalNets,
    pub max_conns: usize,
    /// Out-of-order bytes buffered over all connections; beyond it, the stream that grows is
    /// skipped (weird `reassembly_memory_exhausted`).
    pub max_reassembly_bytes: usize,
    /// Name written in weird.log `peer`.
    pub peer: String,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            ignore_checksums: false,
            local_nets: LocalNets::zeek_private(),
            max_conns: 1_000_000,
            max_reassembly_bytes: 256 * 1024 * 1024,
            peer: "zeek".to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct DirStats {
    pkts: u64,
    ip_bytes: u64,
    /// Payload bytes for UDP/ICMP (TCP uses sequence numbers).
    size: u64,
    active: bool,
}

enum Kind {
    Tcp(Box<Tcp>),
    Udp,
    Icmp,
    Other,
}

struct App {
    analyzers: Vec<(&'static str, Box<dyn Analyzer>)>,
    tried: Vec<&'static str>,
    probed: [usize; 2],
    reasm: Option<Box<[Reassembler; 2]>>,
}

/// One tracked connection.
pub struct Conn {
    uid: String,
    orig_h: IpAddr,
    orig_p: u16,
    resp_h: IpAddr,
    resp_p: u16,
    proto: ConnProto,
    ip_proto: u8,
    start: f64,
    last: f64,
    history: History,
    stats: [DirStats; 2],
    kind: Kind,
    inactivity_timeout: f64,
    inactivity_gen: u64,
    services: Vec<&'static str>,
    missed_bytes: u64,
    /// The innermost tunnel of each encapsulation the connection was seen in.
    tunnel_parents: Vec<String>,
    encap: Encapsulation,
    app: App,
    weirds_seen: Vec<&'static str>,
    udp_checksum_errors: [history::Scaled; 2],
}

fn dir_index(is_orig: bool) -> usize {
    if is_orig {
        0
    } else {
        1
    }
}

impl Conn {
    /// Payload bytes both endpoints sent so far, as conn.log will count them.
    fn payload_size(&self) -> u64 {
        match &self.kind {
            Kind::Tcp(tcp) => {
                let (o, r) = tcp.sizes();
                o + r
            }
            _ => self.stats[0].size + self.stats[1].size,
        }
    }

    fn transport(&self) -> Transport {
        match self.proto {
            ConnProto::Tcp => Transport::Tcp,
            ConnProto::Udp => Transport::Udp,
            // Unknown IP protocols never get analyzers; ICMP stands in for the id.
            ConnProto::Icmp | ConnProto::Unknown => Transport::Icmp,
        }
    }

    pub fn id(&self) -> ConnId {
        ConnId {
            orig_h: self.orig_h,
            orig_p: self.orig_p,
            resp_h: self.resp_h,
            resp_p: self.resp_p,
            proto: self.transport(),
        }
    }

    fn info(&self) -> ConnInfo {
        ConnInfo {
            uid: self.uid.clone(),
            id: self.id(),
        }
    }

    fn flip(&mut self) {
        std::mem::swap(&mut self.orig_h, &mut self.resp_h);
        std::mem::swap(&mut self.orig_p, &mut self.resp_p);
        self.stats.swap(0, 1);
    }

    /// An analyzer's flip (Zeek's `Connection::FlipRoles` from DNS or NTP): the endpoints
    /// trade roles, while the counts, sizes and history letters stay with the roles.
    fn flip_endpoints(&mut self) {
        std::mem::swap(&mut self.orig_h, &mut self.resp_h);
        std::mem::swap(&mut self.orig_p, &mut self.resp_p);
        self.history.mark_flip();
    }

    fn is_orig(&self, src: IpAddr, sport: u16) -> bool {
        src == self.orig_h && sport == self.orig_p
    }
}

/// Counters of the tracker.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrackerStats {
    pub conns_created: u64,
    pub conns_evicted: u64,
    pub weirds: u64,
}

/// A decoded transport packet handed to the tracker.
#[derive(Debug, Clone, Copy)]
pub struct PacketMeta<'a> {
    pub ts: f64,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ip_proto: u8,
    /// IP total length (conn.log ip_bytes).
    pub ip_len: u64,
    /// Transport header + payload as captured (may be shorter than on the wire).
    pub l4: &'a [u8],
    /// Transport header + payload length on the wire (from the IP header).
    pub l4_len: usize,
    /// The tunnels the packet came in, outermost first.
    pub tunnels: &'a [Encap],
}

/// The flow table.
pub struct Tracker {
    config: Arc<TrackerConfig>,
    dispatcher: Arc<Dispatcher>,
    map: HashMap<FlowKey, usize>,
    slots: Vec<Option<(FlowKey, u64, Conn)>>,
    free: Vec<usize>,
    timers: BinaryHeap<Timer>,
    timer_seq: u64,
    conn_gen: u64,
    uids: UidGen,
    /// Out-of-order bytes held by all reassemblers.
    buffered: usize,
    pub stats: TrackerStats,
    new_encapsulation: bool,
    /// The data connections FTP sessions announced.
    ftp_data: ftp::Expectations,
}

impl Tracker {
    pub fn new(config: Arc<TrackerConfig>, dispatcher: Arc<Dispatcher>, uids: UidGen) -> Self {
        Tracker {
            config,
            dispatcher,
            map: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            conn_gen: 0,
            uids,
            buffered: 0,
            stats: TrackerStats::default(),
            new_encapsulation: false,
            ftp_data: ftp::Expectations::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn uids(&mut self) -> &mut UidGen {
        &mut self.uids
    }

    /// Removes every connection (end of input), logging each.
    pub fn drain(&mut self, now: f64, out: &mut Records) {
        let slots: Vec<usize> = self.map.values().copied().collect();
        for slot in slots {
            self.remove_slot(slot, now, out);
        }
        self.timers.clear();
    }

    fn remove_slot(&mut self, slot: usize, now: f64, out: &mut Records) {
        let Some(entry) = self.slots.get_mut(slot).and_then(Option::take) else {
            return;
        };
        let (key, _, mut conn) = entry;
        if let Some(r) = &conn.app.reasm {
            self.buffered = self
                .buffered
                .saturating_sub(r[0].buffered() + r[1].buffered());
        }
        if self.map.get(&key) == Some(&slot) {
            self.map.remove(&key);
        }
        self.free.push(slot);
        self.finish_conn(&mut conn, now, out);
        self.scheduled_removed(&conn);
    }

    fn finish_conn(&mut self, conn: &mut Conn, now: f64, out: &mut Records) {
        let info = conn.info();
        // Flush buffered stream data up to what was seen, then end the analyzers.
        let analyzers = std::mem::take(&mut conn.app.analyzers);
        let conn_size = conn.payload_size();
        for (source, mut a) in analyzers {
            let mut emit = ConnEmit {
                info: &info,
                source,
                peer: &self.config.peer,
                out,
                services: &mut conn.services,
                flip: false,
                history: &mut conn.history,
                conn_size,
                ftp_data: &mut self.ftp_data,
            };
            a.finish(Timestamp(now), &mut emit);
        }
        out.push(Output::Conn(conn.record(&self.config.local_nets)));
    }

    /// Removes the 1% of flows idle longest. A selection, not a full sort: the oldest `n` are
    /// partitioned to the front in linear time, and only those `n` are put in order.
    fn evict_oldest(&mut self, now: f64, out: &mut Records) {
        let mut ages: Vec<(f64, usize)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|(_, _, c)| (c.last, i)))
            .collect();
        let n = (ages.len() / 100).max(1).min(ages.len());
        if n < ages.len() {
            ages.select_nth_unstable_by(n, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        }
        ages[..n].sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for &(_, slot) in &ages[..n] {
            self.remove_slot(slot, now, out);
            self.stats.conns_evicted += 1;
        }
        out.push(Output::Log(Box::new(Weird::flow(
            Timestamp(now),
            None,
            "conn_table_full_evicted",
            Some(format!("{n}")),
            None,
            &self.config.peer,
        ))));
    }

    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        key: FlowKey,
        m: &PacketMeta<'_>,
        sport: u16,
        dport: u16,
        proto: ConnProto,
        flip: bool,
        out: &mut Records,
    ) -> usize {
        if self.map.len() >= self.config.max_conns {
            self.evict_oldest(m.ts, out);
        }
        let kind = match proto {
            ConnProto::Tcp => Kind::Tcp(Box::new(Tcp::new())),
            ConnProto::Udp => Kind::Udp,
            ConnProto::Icmp => Kind::Icmp,
            ConnProto::Unknown => Kind::Other,
        };
        let mut conn = Conn {
            uid: self.uids.next('C'),
            orig_h: m.src,
            orig_p: sport,
            resp_h: m.dst,
            resp_p: dport,
            proto,
            ip_proto: m.ip_proto,
            start: m.ts,
            last: m.ts,
            history: History::default(),
            stats: [DirStats::default(); 2],
            kind,
            inactivity_timeout: 0.0,
            inactivity_gen: 0,
            services: Vec::new(),
            missed_bytes: 0,
            tunnel_parents: Vec::new(),
            encap: Encapsulation::new(m.tunnels),
            app: App {
                analyzers: Vec::new(),
                tried: Vec::new(),
                probed: [0; 2],
                reasm: None,
            },
            weirds_seen: Vec::new(),
            udp_checksum_errors: Default::default(),
        };
        if flip && !is_broadcast(m.dst) {
            conn.flip();
            conn.history.flip();
        }
        let mut dns_over_udp = false;
        if matches!(proto, ConnProto::Tcp | ConnProto::Udp) && !self.dispatcher.is_empty() {
            let info = conn.info();
            let by_port = proto != ConnProto::Tcp || !self.apply_scheduled(&mut conn, m.ts);
            if by_port {
                for spec in self.dispatcher.by_port(conn.transport(), conn.resp_p) {
                    conn.app.analyzers.push((spec.name, (spec.new)(&info)));
                    conn.app.tried.push(spec.name);
                    dns_over_udp |= spec.name == "DNS" && proto == ConnProto::Udp;
                }
            }
            if proto == ConnProto::Tcp {
                conn.app.reasm = Some(Box::new([
                    Reassembler::new(MAX_REASSEMBLY_BUFFER),
                    Reassembler::new(MAX_REASSEMBLY_BUFFER),
                ]));
            }
        }
        self.conn_gen += 1;
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s] = Some((key, self.conn_gen, conn));
                s
            }
            None => {
                self.slots.push(Some((key, self.conn_gen, conn)));
                self.slots.len() - 1
            }
        };
        self.map.insert(key, slot);
        self.stats.conns_created += 1;
        let timeout = SHORT_INACTIVITY;
        self.set_inactivity(slot, timeout);
        if dns_over_udp {
            let at = m.ts + DNS_SESSION_TIMEOUT;
            self.add_timer(slot, at, TimerAction::DnsExpire);
        }
        if proto == ConnProto::Tcp {
            self.add_timer(
                slot,
                m.ts + tcp::SYN_TIMEOUT,
                TimerAction::Tcp(TimerKind::Expire),
            );
        }
        slot
    }

    fn conn_mut(&mut self, slot: usize) -> Option<&mut Conn> {
        self.slots
            .get_mut(slot)
            .and_then(|s| s.as_mut())
            .map(|(_, _, c)| c)
    }

    fn conn_weird(
        &mut self,
        slot: usize,
        ts: f64,
        name: &'static str,
        source: &'static str,
        out: &mut Records,
    ) {
        self.conn_weird_addl(slot, ts, name, None, source, out);
    }

    /// A weird of the connection, once per name, with its `addl` text.
    fn conn_weird_addl(
        &mut self,
        slot: usize,
        ts: f64,
        name: &'static str,
        addl: Option<String>,
        source: &'static str,
        out: &mut Records,
    ) {
        let peer = self.config.peer.clone();
        let Some(conn) = self.conn_mut(slot) else {
            return;
        };
        if conn.weirds_seen.contains(&name) {
            return;
        }
        conn.weirds_seen.push(name);
        let weird = Weird::conn(
            Timestamp(ts),
            &conn.uid,
            conn.id(),
            name,
            addl,
            Some(source),
            &peer,
        );
        self.stats.weirds += 1;
        out.push(Output::Log(Box::new(weird)));
    }

    /// A TCP segment.
    pub fn tcp(&mut self, m: &PacketMeta<'_>, h: &TcpHeader, out: &mut Records) {
        let slot = self.tcp_slot(m, h, out);
        self.tcp_segment(slot, m, h, out);
    }

    /// A TCP segment whose header (its options) was not captured whole: Zeek finds or makes
    /// the connection from the fixed header, then its TCP analyzer rejects the segment with a
    /// `truncated_header` weird, counting nothing.
    pub fn tcp_truncated(&mut self, m: &PacketMeta<'_>, h: &TcpHeader, out: &mut Records) {
        let slot = self.tcp_slot(m, h, out);
        self.conn_weird(slot, m.ts, "truncated_header", "TCP", out);
    }

    /// The connection of a segment: the existing one, unless the segment starts a new one over
    /// it, or a new one, oriented by Zeek's likely-server-port guess when it does not start
    /// with a plain SYN.
    fn tcp_slot(&mut self, m: &PacketMeta<'_>, h: &TcpHeader, out: &mut Records) -> usize {
        let key = FlowKey::new(m.src, h.src_port, m.dst, h.dst_port, m.ip_proto);
        let mut slot = self.map.get(&key).copied();
        if let Some(s) = slot {
            let mut weirds = Vec::new();
            let reuse = match self.conn_mut(s).map(|c| &c.kind) {
                Some(Kind::Tcp(tcp)) => tcp.is_reuse(h, &mut weirds),
                _ => false,
            };
            for w in weirds {
                self.conn_weird(s, m.ts, w, "TCP", out);
            }
            if reuse {
                self.remove_slot(s, m.ts, out);
                slot = None;
            }
        }
        let slot = match slot {
            Some(s) => s,
            None => {
                let syn = h.flags & crate::decode::tcpflags::SYN != 0;
                let ack = h.flags & crate::decode::tcpflags::ACK != 0;
                let mut flip = false;
                if !syn || ack {
                    let d = &self.dispatcher;
                    if d.is_server_port(Transport::Tcp, h.src_port) {
                        flip = if d.is_server_port(Transport::Tcp, h.dst_port) {
                            !syn && h.src_port < h.dst_port
                        } else {
                            true
                        };
                    }
                }
                self.create(key, m, h.src_port, h.dst_port, ConnProto::Tcp, flip, out)
            }
        };
        self.encapsulation(slot, m, h.src_port);
        slot
    }

    /// Whether a packet since the last call was the first of its connection in its tunnel.
    pub fn take_new_encapsulation(&mut self) -> bool {
        std::mem::take(&mut self.new_encapsulation)
    }

    fn tcp_segment(&mut self, slot: usize, m: &PacketMeta<'_>, h: &TcpHeader, out: &mut Records) {
        let ignore = self.config.ignore_checksums;
        let payload_len = m.l4_len.saturating_sub(h.header_len);
        let captured = m.l4.get(h.header_len..).unwrap_or_default();
        let Some(conn) = self.conn_mut(slot) else {
            return;
        };
        let is_orig = conn.is_orig(m.src, h.src_port);
        if !ignore && !transport_checksum_ok(m.src, m.dst, ipproto::TCP, m.l4, m.l4_len) {
            if let Kind::Tcp(tcp) = &mut conn.kind {
                tcp.checksum_error(is_orig, &mut conn.history);
            }
            self.conn_weird(slot, m.ts, "bad_TCP_checksum", "TCP", out);
            return;
        }
        let d = dir_index(is_orig);
        conn.stats[d].pkts += 1;
        conn.stats[d].ip_bytes += m.ip_len;
        let Kind::Tcp(tcp) = &mut conn.kind else {
            return;
        };
        let o = tcp.segment(m.ts, is_orig, h, payload_len, &mut conn.history);
        let partial = tcp.is_partial();
        let peer_fin = tcp.fin_seq(!is_orig);
        if o.flipped {
            conn.flip();
        }
        if o.update_last_time {
            conn.last = m.ts;
        }
        let last = conn.last;
        // After a flip the sender is the other endpoint.
        let is_orig = if o.flipped { !is_orig } else { is_orig };
        if o.flipped {
            self.renew_analyzers(slot);
        }
        for w in &o.weirds {
            self.conn_weird(slot, m.ts, w, "TCP", out);
        }
        if let Some(scale) = o.scale_range {
            let addl = Some(scale.to_string());
            self.conn_weird_addl(slot, m.ts, "TCP_scale_range", addl, "TCP", out);
        }
        if let Some(t) = o.inactivity_timeout {
            self.set_inactivity(slot, t);
        }
        for (when, kind) in &o.timers {
            let at = match when {
                When::At(t) => *t,
                When::AfterLast(d) => last + d,
            };
            self.add_timer(slot, at, TimerAction::Tcp(*kind));
        }
        if let Some(mut ack) = o.ack_for_peer {
            if let Some(fin) = peer_fin {
                if ack >= fin {
                    ack = fin.saturating_sub(1);
                }
            }
            if !(ack <= 2 && partial) {
                self.stream_ack(slot, m.ts, !is_orig, ack, o.gap_counts, out);
            }
        }
        if let Some(seq) = o.deliver_at {
            if captured.len() >= payload_len {
                self.stream_data(slot, m.ts, is_orig, seq, &captured[..payload_len], out);
            } else {
                self.conn_weird(slot, m.ts, "truncated_tcp_payload", "TCP", out);
            }
        }
    }
}

fn is_broadcast(a: IpAddr) -> bool {
    matches!(a, IpAddr::V4(v4) if v4.is_broadcast())
}
