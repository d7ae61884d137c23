//! Per-connection DNS state: pairs queries with replies by transaction id, as Zeek does.

use std::collections::VecDeque;
use std::net::IpAddr;

use super::log::DnsInfo;
use super::parser::{self, Message, OPCODE_UPDATE};
use crate::flow::{ConnInfo, Direction, Timestamp, Transport};
use crate::proto::{Analyzer, Emit};

/// Zeek's `DNS::max_pending_query_ids`: more distinct unpaired ids (per side) than this and
/// all of that side's unpaired messages are written out.
const MAX_PENDING_IDS: usize = 50;
/// Zeek's `DNS::max_pending_msgs`: unpaired messages kept per transaction id and side.
const MAX_PENDING_PER_ID: usize = 50;
/// NetBIOS name service: Zeek decodes its query names.
const NETBIOS_PORT: u16 = 137;
/// Largest DNS-over-TCP message (a 16-bit length) plus its prefix.
const MAX_TCP_BUFFER: usize = 65_537;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Query,
    Reply,
}

/// Whether a message completes an entry that waited for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Paired {
    Yes,
    No,
}

struct Pending {
    /// Which message the entry is waiting for a partner of.
    seen: Side,
    info: DnsInfo,
}

/// A direction's TCP byte stream, split at the 2-byte length prefixes.
#[derive(Default)]
struct TcpFramer {
    buf: Vec<u8>,
    /// After a gap the message boundaries are unknown; the direction is ignored from then on.
    lost: bool,
}

pub struct DnsAnalyzer {
    conn: ConnInfo,
    /// Multicast DNS (mDNS, LLMNR): every message is its own row, nothing is paired.
    multicast: bool,
    pending: VecDeque<Pending>,
    framers: [TcpFramer; 2],
    confirmed: bool,
    /// No message with a whole header seen yet (Zeek's `first_message`).
    first_message: bool,
}

fn is_multicast(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => a.is_multicast(),
        IpAddr::V6(a) => a.is_multicast(),
    }
}

impl DnsAnalyzer {
    pub fn new(conn: ConnInfo) -> Self {
        DnsAnalyzer {
            multicast: is_multicast(conn.id.resp_h),
            conn,
            pending: VecDeque::new(),
            framers: Default::default(),
            confirmed: false,
            first_message: true,
        }
    }

    /// Zeek's `DNS_Interpreter::ParseMessage`: a reply as the first message, sent by the
    /// originator, means the roles were guessed wrong (both ports 53, the query not captured),
    /// so the connection flips unless its responder is a multicast address.
    fn check_roles(&mut self, dir: Direction, bytes: &[u8], out: &mut dyn Emit) {
        if !self.first_message || bytes.len() < parser::HEADER_LEN {
            return;
        }
        self.first_message = false;
        let reply = bytes[2] & 0x80 != 0;
        let id = &mut self.conn.id;
        if reply && dir == Direction::Orig && !is_multicast(id.resp_h) {
            std::mem::swap(&mut id.orig_h, &mut id.resp_h);
            std::mem::swap(&mut id.orig_p, &mut id.resp_p);
            self.multicast = is_multicast(id.resp_h);
            out.flip_roles();
        }
    }

    fn message(&mut self, ts: Timestamp, bytes: &[u8], out: &mut dyn Emit) {
        let msg = match parser::parse_message(bytes) {
            Ok(m) => m,
            Err(e) => {
                out.weird(ts, e.weird_name(), None);
                return;
            }
        };
        if let Some(e) = msg.error {
            out.weird(ts, e.weird_name(), None);
        }
        if !matches!(msg.header.opcode, 0 | 4 | OPCODE_UPDATE) {
            return;
        }
        if !self.confirmed && msg.error.is_none() {
            self.confirmed = true;
            out.confirm_service("dns");
        }
        let side = if msg.header.qr {
            Side::Reply
        } else {
            Side::Query
        };
        let fresh = || DnsInfo::new(ts, self.conn.clone(), msg.header.id, msg.header.opcode);
        if self.multicast {
            let mut info = fresh();
            apply(&mut info, side, &msg, ts, Paired::No);
            out.record(Box::new(info));
            return;
        }
        let partner = self
            .pending
            .iter()
            .position(|p| p.seen != side && p.info.trans_id == msg.header.id);
        match partner {
            Some(i) => {
                let Some(mut p) = self.pending.remove(i) else {
                    return;
                };
                apply(&mut p.info, side, &msg, ts, Paired::Yes);
                out.record(Box::new(p.info));
            }
            None => {
                let mut info = fresh();
                apply(&mut info, side, &msg, ts, Paired::No);
                self.make_room(side, msg.header.id, out);
                self.pending.push_back(Pending { seen: side, info });
            }
        }
    }

    /// Zeek's `enqueue_new_msg` limits: writes out unpaired messages of `side` before one more
    /// is kept.
    fn make_room(&mut self, side: Side, id: u16, out: &mut dyn Emit) {
        let same_id = self
            .pending
            .iter()
            .filter(|p| p.seen == side && p.info.trans_id == id)
            .count();
        let flush_all = same_id == 0 && {
            let mut ids: Vec<u16> = self
                .pending
                .iter()
                .filter(|p| p.seen == side)
                .map(|p| p.info.trans_id)
                .collect();
            ids.sort_unstable();
            ids.dedup();
            ids.len() > MAX_PENDING_IDS
        };
        let flush_id = same_id > MAX_PENDING_PER_ID;
        if !flush_all && !flush_id {
            return;
        }
        let (gone, kept): (VecDeque<Pending>, VecDeque<Pending>) =
            std::mem::take(&mut self.pending)
                .into_iter()
                .partition(|p| p.seen == side && (flush_all || p.info.trans_id == id));
        self.pending = kept;
        for p in gone {
            out.record(Box::new(p.info));
        }
    }

    fn tcp_data(&mut self, ts: Timestamp, dir: Direction, data: &[u8], out: &mut dyn Emit) {
        let framer = &mut self.framers[dir_index(dir)];
        if framer.lost {
            return;
        }
        framer.buf.extend_from_slice(data);
        let mut messages = Vec::new();
        loop {
            let buf = &framer.buf;
            let [hi, lo, ..] = buf[..] else { break };
            let len = usize::from(u16::from_be_bytes([hi, lo]));
            if buf.len() < 2 + len {
                break;
            }
            messages.push(buf[2..2 + len].to_vec());
            framer.buf.drain(..2 + len);
        }
        if framer.buf.len() > MAX_TCP_BUFFER {
            framer.buf.clear();
            framer.lost = true;
        }
        for m in messages {
            self.message(ts, &m, out);
        }
    }
}

fn dir_index(dir: Direction) -> usize {
    match dir {
        Direction::Orig => 0,
        Direction::Resp => 1,
    }
}

/// Folds one message into the row, as Zeek's `DNS::set_session` and reply hooks do.
fn apply(info: &mut DnsInfo, side: Side, msg: &Message, ts: Timestamp, paired: Paired) {
    let h = &msg.header;
    match side {
        // Zeek's dns_request: only queries set RD, TC, Z and the question.
        Side::Query => {
            info.rd = h.rd;
            info.tc = h.tc;
            info.z = h.z;
            if h.opcode != OPCODE_UPDATE {
                if let Some(q) = msg.questions.first() {
                    let netbios = match info.conn.id.resp_p {
                        NETBIOS_PORT => parser::decode_netbios_name(&q.name),
                        _ => Vec::new(),
                    };
                    info.query = Some(if netbios.is_empty() {
                        q.name.clone()
                    } else {
                        netbios
                    });
                    info.qclass = Some(q.qclass);
                    info.qtype = Some(q.qtype);
                }
            }
        }
        Side::Reply => {
            info.rcode = Some(h.rcode);
            if h.rcode != 0 && h.qdcount == 0 {
                info.rejected = true;
            }
            // Zeek's DNS::do_reply, once per answer its scripts handle.
            for a in &msg.answers {
                let Some(rendered) = &a.rendered else {
                    continue;
                };
                if info.query.is_none() {
                    info.query = Some(a.name.clone());
                }
                info.aa = h.aa;
                info.ra = h.ra;
                if paired == Paired::Yes && info.rtt.is_none() {
                    info.rtt = Some(ts.0 - info.ts.0);
                }
                if !rendered.is_empty() {
                    let answers = info.answers.get_or_insert_with(Vec::new);
                    answers.push((rendered.clone(), a.ttl));
                }
            }
        }
    }
}

impl Analyzer for DnsAnalyzer {
    fn data(&mut self, ts: Timestamp, dir: Direction, data: &[u8], out: &mut dyn Emit) {
        match self.conn.id.proto {
            Transport::Tcp => self.tcp_data(ts, dir, data, out),
            // Over TCP the handshake orients the connection; only datagrams are flipped.
            Transport::Udp | Transport::Icmp => {
                self.check_roles(dir, data, out);
                self.message(ts, data, out);
            }
        }
    }

    fn gap(&mut self, _ts: Timestamp, dir: Direction, _len: u64, _out: &mut dyn Emit) {
        let framer = &mut self.framers[dir_index(dir)];
        framer.buf.clear();
        framer.lost = true;
    }

    fn finish(&mut self, _ts: Timestamp, out: &mut dyn Emit) {
        for p in self.pending.drain(..) {
            out.record(Box::new(p.info));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testkit::{conn, Collect};

    fn msg(id: u16, flags: u16, name: &str, answers: &[[u8; 4]]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&id.to_be_bytes());
        m.extend_from_slice(&flags.to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, answers.len() as u8, 0, 0, 0, 0]);
        for label in name.split('.') {
            m.push(label.len() as u8);
            m.extend_from_slice(label.as_bytes());
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        for a in answers {
            m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4]);
            m.extend_from_slice(a);
        }
        m
    }

    #[test]
    fn pairs_query_and_reply() {
        let mut a = DnsAnalyzer::new(conn(Transport::Udp, 53));
        let mut out = Collect::default();
        a.data(
            Timestamp(1.0),
            Direction::Orig,
            &msg(5, 0x0110, "Example.com", &[]),
            &mut out,
        );
        a.data(
            Timestamp(1.5),
            Direction::Resp,
            &msg(5, 0x8180, "example.com", &[[1, 2, 3, 4], [5, 6, 7, 8]]),
            &mut out,
        );
        a.finish(Timestamp(2.0), &mut out);
        assert_eq!(
            out.rows(),
            vec!["udp\t5\t0.500000\texample.com\t1\tC_INTERNET\t1\tA\t0\tNOERROR\tF\tF\tT\tT\t1\t1.2.3.4,5.6.7.8\t3600.000000,3600.000000\tF\t0\tquery"]
        );
        assert_eq!(out.services, vec!["dns"]);
    }

    #[test]
    fn retransmitted_query_pairs_with_first_and_leaves_second() {
        let mut a = DnsAnalyzer::new(conn(Transport::Udp, 53));
        let mut out = Collect::default();
        let q = msg(9, 0x0100, "a.b", &[]);
        a.data(Timestamp(1.0), Direction::Orig, &q, &mut out);
        a.data(Timestamp(6.0), Direction::Orig, &q, &mut out);
        a.data(
            Timestamp(6.5),
            Direction::Resp,
            &msg(9, 0x8180, "a.b", &[[9, 9, 9, 9]]),
            &mut out,
        );
        assert_eq!(out.records.len(), 1);
        a.finish(Timestamp(7.0), &mut out);
        let rows = out.rows();
        assert_eq!(rows.len(), 2);
        assert!(rows[0].starts_with("udp\t9\t5.500000\ta.b"));
        assert!(rows[1].starts_with("udp\t9\t-\ta.b\t1\tC_INTERNET\t1\tA\t-\t-"));
    }

    #[test]
    fn tcp_messages_split_across_segments() {
        let mut a = DnsAnalyzer::new(conn(Transport::Tcp, 53));
        let mut out = Collect::default();
        let q = msg(3, 0x0100, "x.y", &[]);
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&q);
        let (head, tail) = framed.split_at(5);
        a.data(Timestamp(1.0), Direction::Orig, head, &mut out);
        a.data(Timestamp(1.1), Direction::Orig, tail, &mut out);
        let r = msg(3, 0x8180, "x.y", &[[1, 1, 1, 1]]);
        let mut framed = (r.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&r);
        a.data(Timestamp(1.2), Direction::Resp, &framed, &mut out);
        assert_eq!(out.rows().len(), 1);
        assert!(out.rows()[0].starts_with("tcp\t3\t0.100000\tx.y"));
    }

    #[test]
    fn multicast_logs_each_message() {
        let mut c = conn(Transport::Udp, 5353);
        c.id.resp_h = "224.0.0.251".parse().expect("literal");
        let mut a = DnsAnalyzer::new(c);
        let mut out = Collect::default();
        a.data(
            Timestamp(1.0),
            Direction::Orig,
            &msg(0, 0, "q.local", &[]),
            &mut out,
        );
        a.data(
            Timestamp(1.1),
            Direction::Orig,
            &msg(0, 0x8400, "r.local", &[[1, 2, 3, 4]]),
            &mut out,
        );
        assert_eq!(out.records.len(), 2);
        assert!(out.rows()[1].contains("\t-\tr.local\t-\t-\t-\t-\t0\tNOERROR\tT\t"));
    }

    #[test]
    fn pending_table_is_bounded() {
        let mut a = DnsAnalyzer::new(conn(Transport::Udp, 53));
        let mut out = Collect::default();
        // 51 distinct unanswered ids are kept; the 52nd writes them out first.
        for id in 0..52u16 {
            a.data(
                Timestamp(1.0),
                Direction::Orig,
                &msg(id, 0x0100, "a.b", &[]),
                &mut out,
            );
        }
        assert_eq!(out.records.len(), 51);
        // Retransmissions of one id: 51 kept, the 52nd writes them out.
        for _ in 0..52 {
            a.data(
                Timestamp(1.0),
                Direction::Orig,
                &msg(7, 0x0100, "a.b", &[]),
                &mut out,
            );
        }
        assert_eq!(out.records.len(), 51 + 51);
        a.finish(Timestamp(2.0), &mut out);
        assert_eq!(out.records.len(), 52 + 52);
        assert!(out.weirds.is_empty());
    }

    #[test]
    fn garbage_is_a_weird_not_a_panic() {
        let mut a = DnsAnalyzer::new(conn(Transport::Udp, 53));
        let mut out = Collect::default();
        a.data(Timestamp(1.0), Direction::Orig, &[1, 2, 3], &mut out);
        assert_eq!(out.weirds, vec!["DNS_truncated_len_lt_hdr_len"]);
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::proto::testkit::{conn, Collect};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_messages_never_panic(
            msgs in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..300)), 0..12),
            tcp in any::<bool>(),
        ) {
            let proto = if tcp { Transport::Tcp } else { Transport::Udp };
            let mut a = DnsAnalyzer::new(conn(proto, 53));
            let mut out = Collect::default();
            for (orig, mut m) in msgs {
                if m.len() > 2 { m[2] &= 0x87; } // keep opcodes 0 often, to reach the pairing
                let dir = if orig { Direction::Orig } else { Direction::Resp };
                a.data(Timestamp(1.0), dir, &m, &mut out);
            }
            a.finish(Timestamp(2.0), &mut out);
        }
    }
}
