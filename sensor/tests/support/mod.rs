//! A minimal packet path for the protocol-analyzer tests: reads a capture and feeds each
//! connection's payload to the analyzers, collecting their records rendered as TSV cells.
//!
//! The packet side here is deliberately minimal (Ethernet/VLAN/loopback, IPv4/IPv6 without
//! fragments, in-order TCP payload by sequence number) so the analyzers can be checked on real
//! traffic on their own; the sensor's real capture, reassembly and dispatch are tested elsewhere.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;

use estuary_sensor::flow::{ConnId, ConnInfo, Direction, Timestamp, Transport};
use estuary_sensor::proto::{Analyzer, Emit};
use estuary_sensor::zeeklog::format::tsv_value;
use estuary_sensor::zeeklog::Record;

pub type Probe = fn(Direction, &[u8]) -> bool;
pub type Factory = fn(&ConnInfo) -> Box<dyn Analyzer>;

pub type Ports = &'static [(Transport, u16)];

/// Every analyzer the sensor has, from its own registry.
pub fn analyzers() -> Vec<(Ports, Factory, Probe)> {
    estuary_sensor::dispatch::registry()
        .into_iter()
        .map(|s| (s.ports, s.new, s.probe))
        .collect()
}

#[derive(Default)]
pub struct Logs {
    /// path -> rows (everything after `uid`, as Zeek's TSV writer renders it).
    pub rows: HashMap<&'static str, Vec<String>>,
    /// path -> the column names of those rows.
    pub columns: HashMap<&'static str, Vec<&'static str>>,
    /// `orig_h orig_p resp_h resp_p name addl` per weird.
    pub weirds: Vec<String>,
}

impl Logs {
    /// The values of `column` in every row of `path`.
    pub fn column(&self, path: &str, column: &str) -> Vec<String> {
        let Some(i) = self
            .columns
            .get(path)
            .and_then(|c| c.iter().position(|n| *n == column))
        else {
            return Vec::new();
        };
        self.rows
            .get(path)
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| r.split('\t').nth(i).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

struct ConnEmit<'a> {
    logs: &'a mut Logs,
    id: ConnId,
}

impl Emit for ConnEmit<'_> {
    fn record(&mut self, record: Box<dyn Record + Send>) {
        let values = record.values();
        let fields = record.fields();
        let row: Vec<String> = values
            .iter()
            .zip(fields)
            .skip(2)
            .map(|(v, f)| {
                let mut text = String::new();
                tsv_value(&mut text, f.ty, v);
                if f.ty.zeek_name().starts_with("set[") {
                    let mut elems: Vec<&str> = text.split(',').collect();
                    elems.sort_unstable();
                    elems.join(",")
                } else {
                    text
                }
            })
            .collect();
        self.logs
            .columns
            .entry(record.path())
            .or_insert_with(|| fields.iter().skip(2).map(|f| f.name).collect());
        self.logs
            .rows
            .entry(record.path())
            .or_default()
            .push(row.join("\t"));
    }
    fn weird(&mut self, _ts: Timestamp, name: &str, addl: Option<String>) {
        let id = self.id;
        self.logs.weirds.push(format!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            id.orig_h,
            id.orig_p,
            id.resp_h,
            id.resp_p,
            name,
            addl.unwrap_or_else(|| "-".into())
        ));
    }
    fn confirm_service(&mut self, _service: &'static str) {}
}

struct Stream {
    next_seq: Option<u32>,
    /// The sequence number a FIN took (it carries no data).
    fin_seq: Option<u32>,
    pending: BTreeMap<u32, Vec<u8>>,
}

struct Conn {
    info: ConnInfo,
    analyzer: Option<Box<dyn Analyzer>>,
    probed: bool,
    streams: [Stream; 2],
}

struct Packet<'a> {
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    transport: Transport,
    syn: bool,
    ack: bool,
    seq: u32,
    ack_no: u32,
    fin: bool,
    payload: &'a [u8],
}

fn decode(linktype: i32, data: &[u8]) -> Option<Packet<'_>> {
    let rest = match linktype {
        1 => {
            let mut ethertype = u16::from_be_bytes([*data.get(12)?, *data.get(13)?]);
            let mut off = 14;
            loop {
                match ethertype {
                    0x8100 | 0x88a8 => {
                        ethertype = u16::from_be_bytes([*data.get(off + 2)?, *data.get(off + 3)?]);
                        off += 4;
                    }
                    0x8847 => {
                        // MPLS: skip labels to the bottom of stack, then assume IP.
                        loop {
                            let bos = data.get(off + 2)? & 1;
                            off += 4;
                            if bos == 1 {
                                break;
                            }
                        }
                        ethertype = if data.get(off)? >> 4 == 6 {
                            0x86dd
                        } else {
                            0x0800
                        };
                    }
                    _ => break,
                }
            }
            if ethertype != 0x0800 && ethertype != 0x86dd {
                return None;
            }
            data.get(off..)?
        }
        0 => data.get(4..)?,
        _ => return None,
    };
    decode_ip(rest, 0)
}

/// An IPv4/IPv6 packet; GRE payloads are unwrapped (at most a few levels).
fn decode_ip(mut rest: &[u8], depth: u8) -> Option<Packet<'_>> {
    let (src, dst, proto, l4) = match rest.first()? >> 4 {
        4 => {
            let ihl = usize::from(rest.first()? & 0xf) * 4;
            let total = usize::from(u16::from_be_bytes([*rest.get(2)?, *rest.get(3)?]));
            let frag = u16::from_be_bytes([*rest.get(6)?, *rest.get(7)?]);
            if frag & 0x3fff != 0 {
                return None;
            }
            let src: [u8; 4] = rest.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = rest.get(16..20)?.try_into().ok()?;
            let end = total.min(rest.len());
            (
                IpAddr::from(src),
                IpAddr::from(dst),
                *rest.get(9)?,
                rest.get(ihl..end)?,
            )
        }
        6 => {
            let plen = usize::from(u16::from_be_bytes([*rest.get(4)?, *rest.get(5)?]));
            let src: [u8; 16] = rest.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = rest.get(24..40)?.try_into().ok()?;
            let mut next = *rest.get(6)?;
            rest = rest.get(40..(40 + plen).min(rest.len()))?;
            while matches!(next, 0 | 43 | 60) {
                next = *rest.first()?;
                rest = rest.get((usize::from(*rest.get(1)?) + 1) * 8..)?;
            }
            (IpAddr::from(src), IpAddr::from(dst), next, rest)
        }
        _ => return None,
    };
    if proto == 47 && depth < 3 {
        let flags = u16::from_be_bytes([*l4.first()?, *l4.get(1)?]);
        let ptype = u16::from_be_bytes([*l4.get(2)?, *l4.get(3)?]);
        let options = [0x8000, 0x2000, 0x1000]
            .iter()
            .filter(|bit| flags & *bit != 0)
            .count();
        if ptype != 0x0800 && ptype != 0x86dd {
            return None;
        }
        return decode_ip(l4.get(4 + 4 * options..)?, depth + 1);
    }
    let port = |i: usize| Some(u16::from_be_bytes([*l4.get(i)?, *l4.get(i + 1)?]));
    match proto {
        17 => Some(Packet {
            src,
            dst,
            sport: port(0)?,
            dport: port(2)?,
            transport: Transport::Udp,
            syn: false,
            ack: false,
            seq: 0,
            ack_no: 0,
            fin: false,
            payload: l4.get(8..)?,
        }),
        6 => {
            let off = usize::from(l4.get(12)? >> 4) * 4;
            let flags = *l4.get(13)?;
            Some(Packet {
                src,
                dst,
                sport: port(0)?,
                dport: port(2)?,
                transport: Transport::Tcp,
                syn: flags & 0x02 != 0,
                ack: flags & 0x10 != 0,
                seq: u32::from_be_bytes(l4.get(4..8)?.try_into().ok()?),
                ack_no: u32::from_be_bytes(l4.get(8..12)?.try_into().ok()?),
                fin: flags & 0x01 != 0,
                payload: l4.get(off..)?,
            })
        }
        _ => None,
    }
}

/// Delivers the in-order data of `stream`; with `acked`, holes below it count as gaps.
fn flush(
    stream: &mut Stream,
    analyzer: &mut dyn Analyzer,
    ts: Timestamp,
    dir: Direction,
    acked: Option<u32>,
    emit: &mut dyn Emit,
) {
    let Some(mut next) = stream.next_seq else {
        return;
    };
    loop {
        while let Some(data) = stream.pending.remove(&next) {
            analyzer.data(ts, dir, &data, emit);
            next = next.wrapping_add(data.len() as u32);
        }
        if stream.fin_seq == Some(next) {
            next = next.wrapping_add(1);
        }
        let Some(ack) = acked else { break };
        if (ack.wrapping_sub(next) as i32) <= 0 {
            break;
        }
        let target = match stream.pending.keys().next() {
            Some(&s) if (ack.wrapping_sub(s) as i32) > 0 => s,
            _ => ack,
        };
        analyzer.gap(ts, dir, u64::from(target.wrapping_sub(next)), emit);
        next = target;
    }
    stream.next_seq = Some(next);
}

pub fn run_trace(path: &Path) -> Logs {
    let mut cap = pcap::Capture::from_file(path).expect("open trace");
    let linktype = cap.get_datalink().0;
    let mut conns: HashMap<(IpAddr, u16, IpAddr, u16, bool), Conn> = HashMap::new();
    let mut order = Vec::new();
    let mut logs = Logs::default();
    let mut last_ts = Timestamp(0.0);
    while let Ok(pkt) = cap.next_packet() {
        let ts = Timestamp(pkt.header.ts.tv_sec as f64 + pkt.header.ts.tv_usec as f64 / 1e6);
        last_ts = ts;
        let Some(p) = decode(linktype, pkt.data) else {
            continue;
        };
        let tcp = p.transport == Transport::Tcp;
        let fwd = (p.src, p.sport, p.dst, p.dport, tcp);
        let rev = (p.dst, p.dport, p.src, p.sport, tcp);
        let (key, dir) = if conns.contains_key(&fwd) {
            (fwd, Direction::Orig)
        } else if conns.contains_key(&rev) || (tcp && p.syn && p.ack) {
            (rev, Direction::Resp)
        } else {
            (fwd, Direction::Orig)
        };
        let conn = conns.entry(key).or_insert_with(|| {
            order.push(key);
            let id = ConnId {
                orig_h: key.0,
                orig_p: key.1,
                resp_h: key.2,
                resp_p: key.3,
                proto: p.transport,
            };
            let info = ConnInfo {
                uid: format!("C{}", order.len()),
                id,
            };
            let analyzer = analyzers()
                .into_iter()
                .find(|(ports, _, _)| ports.contains(&(p.transport, key.3)))
                .map(|(_, f, _)| f(&info));
            Conn {
                probed: analyzer.is_some(),
                info,
                analyzer,
                streams: [
                    Stream {
                        next_seq: None,
                        fin_seq: None,
                        pending: BTreeMap::new(),
                    },
                    Stream {
                        next_seq: None,
                        fin_seq: None,
                        pending: BTreeMap::new(),
                    },
                ],
            }
        });
        let mut emit = ConnEmit {
            logs: &mut logs,
            id: conn.info.id,
        };
        if !conn.probed && !p.payload.is_empty() {
            conn.probed = true;
            conn.analyzer = analyzers()
                .into_iter()
                .filter(|(ports, _, _)| ports.iter().any(|(t, _)| *t == p.transport))
                .find(|(_, _, probe)| probe(dir, p.payload))
                .map(|(_, f, _)| f(&conn.info));
        }
        let Some(analyzer) = conn.analyzer.as_mut() else {
            continue;
        };
        if !tcp {
            analyzer.data(ts, dir, p.payload, &mut emit);
            continue;
        }
        let (mine, peer) = match dir {
            Direction::Orig => (0, 1),
            Direction::Resp => (1, 0),
        };
        let peer_dir = match dir {
            Direction::Orig => Direction::Resp,
            Direction::Resp => Direction::Orig,
        };
        // An ACK past a hole in the peer's stream means the hole will never be filled (as
        // Zeek's reassembler decides): report the gap and deliver what follows it.
        if p.ack {
            flush(
                &mut conn.streams[peer],
                analyzer.as_mut(),
                ts,
                peer_dir,
                Some(p.ack_no),
                &mut emit,
            );
        }
        let stream = &mut conn.streams[mine];
        let seq = if p.syn { p.seq.wrapping_add(1) } else { p.seq };
        let next = *stream.next_seq.get_or_insert(seq);
        if p.fin {
            stream.fin_seq = Some(seq.wrapping_add(p.payload.len() as u32));
        }
        if p.payload.is_empty() {
            continue;
        }
        let delta = seq.wrapping_sub(next) as i32;
        if delta < 0 {
            let skip = delta.unsigned_abs() as usize;
            if skip < p.payload.len() {
                stream.pending.insert(next, p.payload[skip..].to_vec());
            }
        } else {
            stream.pending.insert(seq, p.payload.to_vec());
        }
        flush(stream, analyzer.as_mut(), ts, dir, None, &mut emit);
    }
    for key in order {
        if let Some(conn) = conns.get_mut(&key) {
            if let Some(a) = conn.analyzer.as_mut() {
                let mut emit = ConnEmit {
                    logs: &mut logs,
                    id: conn.info.id,
                };
                a.finish(last_ts, &mut emit);
            }
        }
    }
    logs
}
