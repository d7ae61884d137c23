//! TCP stream delivery: ACKs and segments through the reassemblers (gaps counted as missed
//! bytes), then the in-order chunks (or datagrams) to the analyzers, probing for new ones first.

use std::sync::Arc;

use super::emit::ConnEmit;
use super::reassembly::Chunk;
use super::{dir_index, Kind, Records, Tracker};
use crate::dispatch::PROBE_LIMIT;
use crate::flow::{Direction, Timestamp};

impl Tracker {
    pub(super) fn stream_ack(
        &mut self,
        slot: usize,
        ts: f64,
        dir_orig: bool,
        ack: u64,
        counts: bool,
        out: &mut Records,
    ) {
        let Some(conn) = self.conn_mut(slot) else {
            return;
        };
        let Some(reasm) = conn.app.reasm.as_mut() else {
            return;
        };
        let mut chunks = Vec::new();
        let r = &mut reasm[dir_index(dir_orig)];
        let before = r.buffered();
        r.ack(ack, &mut chunks);
        let after = r.buffered();
        for c in &chunks {
            if let Chunk::Gap { len, .. } = c {
                if counts {
                    conn.missed_bytes += len;
                    if let Kind::Tcp(tcp) = &mut conn.kind {
                        tcp.gap(dir_orig, &mut conn.history);
                    }
                }
            }
        }
        self.buffered = (self.buffered + after).saturating_sub(before);
        self.deliver(slot, ts, dir_orig, chunks, out);
    }

    pub(super) fn stream_data(
        &mut self,
        slot: usize,
        ts: f64,
        dir_orig: bool,
        seq: u64,
        data: &[u8],
        out: &mut Records,
    ) {
        let (total, limit) = (self.buffered, self.config.max_reassembly_bytes);
        let Some(conn) = self.conn_mut(slot) else {
            return;
        };
        let Some(reasm) = conn.app.reasm.as_mut() else {
            return;
        };
        let mut chunks = Vec::new();
        let r = &mut reasm[dir_index(dir_orig)];
        let before = r.buffered();
        let full = r.add(seq, data, &mut chunks).is_err();
        let mut after = r.buffered();
        let over_budget = total + after > limit + before && after > before;
        if over_budget {
            r.give_up();
            after = 0;
        }
        self.buffered = (self.buffered + after).saturating_sub(before);
        if full {
            self.conn_weird(slot, ts, "above_hole_data_without_any_acks", "TCP", out);
        }
        if over_budget {
            self.conn_weird(slot, ts, "reassembly_memory_exhausted", "TCP", out);
        }
        self.deliver(slot, ts, dir_orig, chunks, out);
    }

    /// Hands stream chunks (or a datagram) to the analyzers, probing for new ones first.
    pub(super) fn deliver(
        &mut self,
        slot: usize,
        ts: f64,
        dir_orig: bool,
        chunks: Vec<Chunk>,
        out: &mut Records,
    ) {
        if chunks.is_empty() {
            return;
        }
        let peer = self.config.peer.clone();
        let dispatcher = Arc::clone(&self.dispatcher);
        let ftp_data = &mut self.ftp_data;
        let Some((_, _, conn)) = self.slots.get_mut(slot).and_then(|s| s.as_mut()) else {
            return;
        };
        let dir = if dir_orig {
            Direction::Orig
        } else {
            Direction::Resp
        };
        let info = conn.info();
        let t = conn.transport();
        let partial = matches!(&conn.kind, Kind::Tcp(tcp) if tcp.is_partial());
        let conn_size = conn.payload_size();
        for chunk in chunks {
            match chunk {
                Chunk::Data(data) => {
                    let d = dir_index(dir_orig);
                    // Like Zeek's DPD, probing stops once a protocol is confirmed (an
                    // analyzer that hands over, e.g. STARTTLS to TLS, does so itself).
                    if conn.app.probed[d] < PROBE_LIMIT && conn.services.is_empty() {
                        conn.app.probed[d] += data.len();
                        let new: Vec<_> = dispatcher
                            .by_content(t, dir, &data, &conn.app.tried)
                            .copied()
                            .collect();
                        for spec in new {
                            conn.app.tried.push(spec.name);
                            conn.app.analyzers.push((spec.name, (spec.new)(&info)));
                        }
                    }
                    let mut flip = false;
                    for (source, a) in conn.app.analyzers.iter_mut() {
                        if t == crate::flow::Transport::Tcp {
                            a.tcp_partial(partial);
                        }
                        let mut emit = ConnEmit {
                            info: &info,
                            source,
                            peer: &peer,
                            out,
                            services: &mut conn.services,
                            flip: false,
                            history: &mut conn.history,
                            conn_size,
                            ftp_data: &mut *ftp_data,
                        };
                        a.data(Timestamp(ts), dir, &data, &mut emit);
                        flip |= emit.flip;
                    }
                    if flip {
                        conn.flip_endpoints();
                    }
                }
                Chunk::Gap { len, .. } => {
                    for (source, a) in conn.app.analyzers.iter_mut() {
                        let mut emit = ConnEmit {
                            info: &info,
                            source,
                            peer: &peer,
                            out,
                            services: &mut conn.services,
                            flip: false,
                            history: &mut conn.history,
                            conn_size,
                            ftp_data: &mut *ftp_data,
                        };
                        a.gap(Timestamp(ts), dir, len, &mut emit);
                    }
                }
            }
        }
    }

    /// The TCP roles flipped during the handshake, before any payload: the analyzers start
    /// over on the flipped connection (Zeek's analyzers read the connection's id as it is now).
    pub(super) fn renew_analyzers(&mut self, slot: usize) {
        let dispatcher = Arc::clone(&self.dispatcher);
        let Some(conn) = self.conn_mut(slot) else {
            return;
        };
        let info = conn.info();
        for (name, analyzer) in conn.app.analyzers.iter_mut() {
            if let Some(spec) = dispatcher.by_name(name) {
                *analyzer = (spec.new)(&info);
            }
        }
    }
}
