//! The TCP endpoint state machine, following Zeek's TCP session adapter: endpoint states,
//! relative sequence numbers with wraps, sizes from sequence numbers, history letters, the
//! timers that end a connection, and the ACKs that reveal content gaps.

use super::history::{bits, History, Scaled};
use crate::decode::{tcpflags, TcpHeader};

const TOO_LARGE_SEQ_DELTA: i32 = 1_048_576;

/// Zeek's `tcp_SYN_timeout`, `tcp_attempt_delay`, `tcp_close_delay`, `tcp_session_timer`,
/// `tcp_connection_linger`, `tcp_partial_close_delay`, `tcp_inactivity_timeout`.
pub const SYN_TIMEOUT: f64 = 5.0;
pub const ATTEMPT_DELAY: f64 = 5.0;
pub const CLOSE_DELAY: f64 = 5.0;
pub const SESSION_TIMER: f64 = 6.0;
pub const CONNECTION_LINGER: f64 = 5.0;
pub const INACTIVITY_TIMEOUT: f64 = 300.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Inactive,
    SynSent,
    SynAckSent,
    Partial,
    Established,
    Closed,
    Reset,
}

fn is_handshake(s: State) -> bool {
    matches!(s, State::Inactive | State::SynSent | State::SynAckSent)
}

fn seq_delta(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

/// One side of a TCP connection.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub state: State,
    pub prev_state: State,
    start_seq: u32,
    last_seq: u32,
    ack_seq: u32,
    seq_wraps: u32,
    ack_wraps: u32,
    pub did_close: bool,
    pub fin_cnt: u32,
    /// Relative sequence number just past the FIN.
    pub fin_seq: u64,
    hist_last_syn: u64,
    hist_last_fin: u64,
    hist_last_rst: u64,
    pub checksum_errors: Scaled,
    rxmit: Scaled,
    win0: Scaled,
    pub gaps: Scaled,
    window_scale: u32,
    window: u32,
    window_seq: u32,
    window_ack_seq: u32,
}

impl Default for Endpoint {
    fn default() -> Self {
        Endpoint {
            state: State::Inactive,
            prev_state: State::Inactive,
            start_seq: 0,
            last_seq: 0,
            ack_seq: 0,
            seq_wraps: 0,
            ack_wraps: 0,
            did_close: false,
            fin_cnt: 0,
            fin_seq: 0,
            hist_last_syn: 0,
            hist_last_fin: 0,
            hist_last_rst: 0,
            checksum_errors: Scaled::default(),
            rxmit: Scaled::default(),
            win0: Scaled::default(),
            gaps: Scaled::default(),
            window_scale: 0,
            window: 0,
            window_seq: 0,
            window_ack_seq: 0,
        }
    }
}

fn full(seq: u32, wraps: u32) -> u64 {
    (u64::from(wraps) << 32) | u64::from(seq)
}

impl Endpoint {
    fn update_last_seq_raw(&mut self, seq: u32) {
        if seq < self.last_seq {
            self.seq_wraps += 1;
        }
        self.last_seq = seq;
    }

    fn update_ack_seq_raw(&mut self, seq: u32) {
        if seq < self.ack_seq {
            self.ack_wraps += 1;
        }
        self.ack_seq = seq;
    }

    fn init(&mut self, seq: u32) {
        self.start_seq = seq;
        self.ack_seq = seq;
    }

    fn no_data_acked(&self) -> bool {
        let ack = full(self.ack_seq, self.ack_wraps);
        let start = u64::from(self.start_seq);
        ack == start || ack == start + 1
    }

    fn relative(&self, cur: u32, last: u32, wraps: u32) -> (u64, bool) {
        let delta = seq_delta(cur, last);
        let mut wraps = wraps;
        if delta < 0 {
            if wraps > 0 && cur > last {
                wraps -= 1;
            }
        } else if delta > 0 && cur < last {
            wraps += 1;
        }
        if wraps == 0 {
            let d = seq_delta(cur, self.start_seq);
            return (d as i64 as u64, d < 0);
        }
        (
            full(cur, wraps).wrapping_sub(u64::from(self.start_seq)),
            false,
        )
    }

    /// Payload bytes sent, from sequence numbers (Zeek's `TCP_Endpoint::Size`).
    pub fn size(&self, peer: &Endpoint) -> u64 {
        if self.prev_state == State::SynSent
            && self.state == State::Reset
            && peer.state == State::Inactive
            && !self.no_data_acked()
        {
            return 0;
        }
        let last = full(self.last_seq, self.seq_wraps);
        let ack = full(self.ack_seq, self.ack_wraps);
        let start = u64::from(self.start_seq);
        let mut size = if last > ack {
            last.wrapping_sub(start)
        } else {
            ack.wrapping_sub(start)
        };
        // A bogus initialization (e.g. from a RST) can put `start` above both; Zeek's unsigned
        // arithmetic would print a huge number, a clamped zero is more useful.
        if size > (1u64 << 48) {
            size = 0;
        }
        // The SYN and FIN octets are not payload.
        size = size.saturating_sub(1);
        if self.fin_cnt > 0 {
            size = size.saturating_sub(1);
        }
        size
    }
}

/// Timers a TCP connection asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerKind {
    Expire,
    Attempt,
    /// Remove the connection (scheduled after a full close).
    Delete,
}

/// When a timer fires.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum When {
    At(f64),
    /// This long after the connection's last activity.
    AfterLast(f64),
}

/// Effects of one segment that the connection applies.
#[derive(Debug, Default)]
pub struct Outcome {
    pub weirds: Vec<&'static str>,
    pub timers: Vec<(When, TimerKind)>,
    /// A new inactivity timeout (the handshake finished).
    pub inactivity_timeout: Option<f64>,
    /// Relative ACK for the peer's reassembler, if gaps may be reported.
    pub ack_for_peer: Option<u64>,
    /// Whether a gap revealed by that ACK counts (history `g`, missed_bytes).
    pub gap_counts: bool,
    /// Relative sequence of this segment's payload, if it should be reassembled.
    pub deliver_at: Option<u64>,
    /// Zeek swapped the roles (SYN/SYN-ACK reversal).
    pub flipped: bool,
    pub update_last_time: bool,
}

/// The TCP part of a connection.
#[derive(Debug, Clone, Default)]
pub struct Tcp {
    pub orig: Endpoint,
    pub resp: Endpoint,
    is_partial: bool,
    first_seen_orig: bool,
    first_seen_resp: bool,
    pub is_active: bool,
}

fn has(flags: u8, f: u8) -> bool {
    flags & f != 0
}

impl Tcp {
    pub fn new() -> Self {
        Tcp {
            is_active: true,
            ..Default::default()
        }
    }

    pub fn is_partial(&self) -> bool {
        self.is_partial
    }

    fn eps(&mut self, is_orig: bool) -> (&mut Endpoint, &mut Endpoint) {
        if is_orig {
            (&mut self.orig, &mut self.resp)
        } else {
            (&mut self.resp, &mut self.orig)
        }
    }

    pub fn both_closed(&self) -> bool {
        self.orig.did_close && self.resp.did_close
    }

    fn is_closed(&self) -> bool {
        self.orig.did_close || self.resp.did_close
    }

    /// Swaps the endpoints (the connection's roles were flipped).
    pub fn flip(&mut self) {
        std::mem::swap(&mut self.orig, &mut self.resp);
        std::mem::swap(&mut self.first_seen_orig, &mut self.first_seen_resp);
        self.is_partial = false;
    }

    /// Whether a SYN on an existing connection starts a new one (Zeek's `IsReuse`).
    pub fn is_reuse(&self, h: &TcpHeader, weirds: &mut Vec<&'static str>) -> bool {
        if !has(h.flags, tcpflags::SYN) {
            return false;
        }
        let conn_orig = if has(h.flags, tcpflags::ACK) {
            if self.orig.state != State::Inactive {
                return false;
            }
            &self.resp
        } else {
            &self.orig
        };
        if !self.is_closed() {
            if h.seq == conn_orig.start_seq {
                return false;
            }
            if !has(h.flags, tcpflags::ACK)
                && conn_orig.state == State::SynAckSent
                && self.resp.state == State::Inactive
                && h.seq == self.resp.start_seq
            {
                return false;
            }
            weirds.push(if conn_orig.state == State::SynSent {
                "SYN_seq_jump"
            } else {
                "active_connection_reuse"
            });
        }
        true
    }

    /// Processes one segment with valid checksum; `len` is the payload length on the wire.
    pub fn segment(
        &mut self,
        t: f64,
        is_orig: bool,
        h: &TcpHeader,
        len: usize,
        history: &mut History,
    ) -> Outcome {
        let mut out = Outcome::default();
        let flags = h.flags;
        let syn = has(flags, tcpflags::SYN);
        let fin = has(flags, tcpflags::FIN);
        let rst = has(flags, tcpflags::RST);
        let ack = has(flags, tcpflags::ACK);
        let len_i = len as i64;

        // Partial status: set by the first packet seen from each side.
        if is_orig {
            if !self.first_seen_orig {
                self.is_partial = !syn || ack;
            }
        } else if !self.first_seen_resp && !self.is_partial {
            self.is_partial = !syn;
        }

        let mut seg_len = len as u32;
        if syn {
            seg_len = seg_len.wrapping_add(1);
        }
        if fin {
            seg_len = seg_len.wrapping_add(1);
        }
        if rst {
            seg_len = seg_len.wrapping_sub(len as u32);
        }
        let base_seq = h.seq;
        let ack_seq = h.ack;
        let seq_one_past = base_seq.wrapping_add(seg_len);

        {
            let (ep, _) = self.eps(is_orig);
            init_endpoint(ep, syn, base_seq, seq_one_past, &mut out.weirds);
        }

        let (rel_seq, underflow) = {
            let (ep, _) = self.eps(is_orig);
            ep.relative(base_seq, ep.last_seq, ep.seq_wraps)
        };
        if underflow && !rst {
            out.weirds.push("TCP_seq_underflow_or_misorder");
        }

        self.update_history(is_orig, flags, rel_seq, len_i, history);
        {
            let (ep, peer) = self.eps(is_orig);
            update_window(
                ep,
                peer,
                h.window,
                base_seq,
                ack_seq,
                flags,
                is_orig,
                history,
                &mut out.weirds,
            );
        }

        if !self.orig.did_close || !self.resp.did_close {
            out.update_last_time = true;
        }

        if syn {
            if rst {
                out.weirds.push("TCP_christmas");
            }
            if has(flags, tcpflags::URG) {
                out.weirds.push("baroque_SYN");
            }
            if len > 0 {
                out.weirds.push("SYN_with_data");
            }
            let (ep, peer) = self.eps(is_orig);
            match h.wscale {
                None => {
                    ep.window_scale = 0;
                    if ack {
                        peer.window_scale = 0;
                    }
                }
                Some(s) => {
                    ep.window_scale = u32::from(s.min(14));
                    ep.window_seq = base_seq;
                    ep.window_ack_seq = ack_seq;
                    peer.window_seq = ack_seq;
                    peer.window_ack_seq = base_seq;
                }
            }
        }
        if fin {
            let (ep, _) = self.eps(is_orig);
            ep.fin_cnt += 1;
            ep.fin_seq = rel_seq.wrapping_add(u64::from(seg_len));
        }

        let mut rel_ack = None;
        if ack {
            let (ep, peer) = self.eps(is_orig);
            if peer.state == State::Inactive {
                rel_ack = Some(1);
                if !syn
                    && !fin
                    && !rst
                    && matches!(
                        ep.state,
                        State::SynSent | State::SynAckSent | State::Established
                    )
                {
                    out.weirds.push("possible_split_routing");
                }
                let s = ack_seq.wrapping_sub(1);
                peer.start_seq = s;
                peer.ack_seq = s;
                peer.last_seq = s;
            } else {
                let (r, under) = peer.relative(ack_seq, peer.ack_seq, peer.ack_wraps);
                if under {
                    out.weirds.push("TCP_ack_underflow_or_misorder");
                    rel_ack = Some(0);
                } else {
                    rel_ack = Some(r);
                    if !rst {
                        let delta = seq_delta(ack_seq, peer.ack_seq);
                        if !(ack_seq == 0 && delta > TOO_LARGE_SEQ_DELTA) && delta > 0 {
                            peer.update_ack_seq_raw(ack_seq);
                        }
                    }
                }
            }
        }

        let delta_last = {
            let (ep, _) = self.eps(is_orig);
            let delta = seq_delta(seq_one_past, ep.last_seq);
            if (syn || rst) && !(-TOO_LARGE_SEQ_DELTA..=TOO_LARGE_SEQ_DELTA).contains(&delta) {
            } else if fin && ep.last_seq == ep.start_seq.wrapping_add(1) {
                ep.update_last_seq_raw(seq_one_past);
            } else if ep.state == State::Reset {
            } else if delta > 0 {
                ep.update_last_seq_raw(seq_one_past);
            } else if len > 0 {
                history.scaled(is_orig, 'T', &mut ep.rxmit);
            }
            delta
        };

        let (do_close, gen_event) = self.update_state(
            t, is_orig, base_seq, len, delta_last, flags, &mut out, history,
        );
        let _ = gen_event;

        if let Some(a) = rel_ack {
            let (_, peer) = self.eps(is_orig);
            let peer_clean = is_clean(peer);
            let (ep, _) = self.eps(is_orig);
            out.gap_counts = is_clean(ep) && peer_clean;
            out.ack_for_peer = Some(a);
        }

        if len > 0 && !rst && !underflow {
            out.deliver_at = Some(if syn {
                rel_seq.wrapping_add(1)
            } else {
                rel_seq
            });
        }

        if is_orig {
            self.first_seen_orig = true;
        } else {
            self.first_seen_resp = true;
        }

        if do_close {
            self.connection_closed(is_orig, &mut out);
        }
        out
    }

    fn update_history(
        &mut self,
        is_orig: bool,
        flags: u8,
        rel_seq: u64,
        len: i64,
        history: &mut History,
    ) {
        let syn = has(flags, tcpflags::SYN);
        let fin = has(flags, tcpflags::FIN);
        let rst = has(flags, tcpflags::RST);
        let n = u8::from(syn) + u8::from(fin) + u8::from(rst);
        let (ep, _) = self.eps(is_orig);
        if n > 1 {
            if fin && rst {
                history.check(is_orig, bits::FIN_RST, 'I');
            } else {
                history.check(is_orig, bits::MULTI_FLAG, 'Q');
            }
        } else if n == 1 {
            if syn {
                let code = if has(flags, tcpflags::ACK) { 'H' } else { 'S' };
                if history.check(is_orig, bits::SYN, code) && rel_seq != ep.hist_last_syn {
                    history.add_dir(is_orig, code);
                }
                ep.hist_last_syn = rel_seq;
            }
            if fin {
                let end = rel_seq.wrapping_add(len as u64);
                if history.check(is_orig, bits::FIN, 'F') && end != ep.hist_last_fin {
                    history.add_dir(is_orig, 'F');
                }
                ep.hist_last_fin = end;
            }
            if rst {
                if history.check(is_orig, bits::RST, 'R') && rel_seq != ep.hist_last_rst {
                    history.add_dir(is_orig, 'R');
                }
                ep.hist_last_rst = rel_seq;
            }
        } else if len > 0 {
            history.check(is_orig, bits::DATA, 'D');
        } else if has(flags, tcpflags::ACK) {
            history.check(is_orig, bits::ACK, 'A');
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn update_state(
        &mut self,
        t: f64,
        is_orig: bool,
        base_seq: u32,
        len: usize,
        delta_last: i32,
        flags: u8,
        out: &mut Outcome,
        history: &mut History,
    ) -> (bool, bool) {
        let syn = has(flags, tcpflags::SYN);
        let fin = has(flags, tcpflags::FIN);
        let rst = has(flags, tcpflags::RST);
        let ack = has(flags, tcpflags::ACK);
        let mut do_close = false;
        let mut gen_event = false;
        let state = if is_orig {
            self.orig.state
        } else {
            self.resp.state
        };
        match state {
            State::Inactive => {
                if syn {
                    if is_orig {
                        if ack {
                            out.weirds.push("connection_originator_SYN_ack");
                            self.set_state(is_orig, State::SynAckSent, out);
                        } else {
                            self.set_state(is_orig, State::SynSent, out);
                        }
                        out.timers
                            .push((When::At(t + ATTEMPT_DELAY), TimerKind::Attempt));
                    } else {
                        let peer_state = self.orig.state;
                        if ack {
                            // bad_SYN_ack check omitted: it needs the peer's window of
                            // sequence numbers and rarely fires.
                        } else if peer_state == State::SynAckSent && base_seq == self.resp.start_seq
                        {
                            // SYN/SYN-ACK reversal: flip the roles and establish.
                            self.is_partial = false;
                            history.flip();
                            self.flip();
                            out.flipped = true;
                            self.set_state(false, State::Established, out);
                            self.set_state(true, State::Established, out);
                            self.first_seen_orig = true;
                            return (do_close, gen_event);
                        } else {
                            out.weirds.push("simultaneous_open");
                        }
                        if self.orig.state == State::SynSent {
                            self.set_state(true, State::Established, out);
                        }
                        self.set_state(false, State::Established, out);
                    }
                }
                if fin {
                    self.set_state(is_orig, State::Closed, out);
                    do_close = true;
                    gen_event = true;
                }
                if rst {
                    self.set_state(is_orig, State::Reset, out);
                    let peer_state = if is_orig {
                        self.resp.state
                    } else {
                        self.orig.state
                    };
                    let is_reject = if is_orig {
                        peer_state == State::Established
                    } else {
                        matches!(peer_state, State::SynSent | State::SynAckSent)
                    };
                    do_close = true;
                    gen_event = !is_reject;
                }
                let (ep_state, peer_state) = if is_orig {
                    (self.orig.state, self.resp.state)
                } else {
                    (self.resp.state, self.orig.state)
                };
                if ep_state == State::Inactive {
                    if !is_orig && len == 0 && self.orig.state == State::SynSent {
                        // An ACK of the SYN before the SYN-ACK: not a partial connection.
                    } else if ack && peer_state == State::Established {
                        self.set_state(is_orig, State::Established, out);
                        self.is_partial = false;
                        if is_orig {
                            self.first_seen_orig = true;
                        } else {
                            self.first_seen_resp = true;
                        }
                    } else {
                        self.set_state(is_orig, State::Partial, out);
                    }
                }
            }
            State::SynSent | State::SynAckSent => {
                let peer_state = if is_orig {
                    self.resp.state
                } else {
                    self.orig.state
                };
                if syn {
                    if is_orig {
                        if ack && !fin && !rst && state != State::SynAckSent {
                            out.weirds.push("repeated_SYN_with_ack");
                        }
                    } else if !ack && state != State::SynSent {
                        out.weirds.push("repeated_SYN_reply_wo_ack");
                    }
                }
                if fin {
                    if matches!(peer_state, State::Inactive | State::SynSent) {
                        out.weirds.push("inappropriate_FIN");
                    }
                    self.set_state(is_orig, State::Closed, out);
                    do_close = true;
                    gen_event = true;
                }
                if rst {
                    self.set_state(is_orig, State::Reset, out);
                    self.is_active = false;
                    do_close = true;
                } else if len > 0 {
                    out.weirds.push("data_before_established");
                }
            }
            State::Established | State::Partial => {
                let peer_state = if is_orig {
                    self.resp.state
                } else {
                    self.orig.state
                };
                if syn && state == State::Partial && peer_state == State::Inactive && !ack {
                    out.weirds.push("SYN_after_partial");
                    self.set_state(is_orig, State::SynSent, out);
                }
                if fin && !rst {
                    self.set_state(is_orig, State::Closed, out);
                    let (_, peer) = self.eps(is_orig);
                    if peer.state == State::Reset && peer.prev_state == State::Closed {
                        peer.prev_state = peer.state;
                        peer.state = State::Closed;
                    }
                    do_close = true;
                    gen_event = true;
                }
                if rst {
                    self.set_state(is_orig, State::Reset, out);
                    do_close = true;
                    let (_, peer) = self.eps(is_orig);
                    if peer.state != State::Reset || peer.prev_state != State::Established {
                        self.is_active = false;
                    }
                }
            }
            State::Closed => {
                if syn {
                    out.weirds.push("SYN_after_close");
                }
                if fin && delta_last > 0 {
                    out.weirds.push("FIN_advanced_last_seq");
                }
                let peer_state = if is_orig {
                    self.resp.state
                } else {
                    self.orig.state
                };
                if rst && peer_state != State::Closed {
                    self.set_state(is_orig, State::Reset, out);
                    let did_close = if is_orig {
                        self.orig.did_close
                    } else {
                        self.resp.did_close
                    };
                    if !did_close {
                        do_close = true;
                    }
                }
            }
            State::Reset => {
                if syn {
                    out.weirds.push("SYN_after_reset");
                }
                if fin {
                    out.weirds.push("FIN_after_reset");
                }
                if len > 0 && !rst {
                    out.weirds.push("data_after_reset");
                }
            }
        }
        (do_close, gen_event)
    }

    fn set_state(&mut self, is_orig: bool, new: State, out: &mut Outcome) {
        let (ep, peer) = self.eps(is_orig);
        if new != ep.state {
            if !is_handshake(new) && is_handshake(ep.state) && is_handshake(peer.state) {
                out.inactivity_timeout = Some(INACTIVITY_TIMEOUT);
            }
            ep.prev_state = ep.state;
            ep.state = new;
        }
    }

    fn connection_closed(&mut self, is_orig: bool, out: &mut Outcome) {
        let (ep, peer) = self.eps(is_orig);
        if ep.did_close {
            return;
        }
        ep.did_close = true;
        let complete = ep.state == State::Reset || peer.did_close || peer.state == State::Inactive;
        if complete {
            if ep.state != State::Reset {
                self.is_active = false;
            }
            out.timers
                .push((When::AfterLast(CLOSE_DELAY), TimerKind::Delete));
        } else if ep.prev_state != State::Inactive {
            out.timers
                .push((When::AfterLast(SESSION_TIMER), TimerKind::Expire));
        }
    }

    /// The attempt timer fired: true if the connection should be removed.
    pub fn attempt_timer(&mut self) -> bool {
        if !self.is_active {
            return false;
        }
        if matches!(self.orig.state, State::SynSent | State::SynAckSent)
            && self.resp.state == State::Inactive
        {
            self.is_active = false;
            return true;
        }
        false
    }

    /// The expire timer fired at `t` with the connection's last activity `last`: remove, or
    /// reschedule (Some(next)), or stop (None with false).
    pub fn expire_timer(&mut self, t: f64, last: f64) -> (bool, Option<f64>) {
        if !self.is_active {
            return (false, None);
        }
        if last + CONNECTION_LINGER < t {
            if self.orig.did_close || self.resp.did_close {
                let (o, r) = (&self.orig, &self.resp);
                if (o.did_close && r.did_close)
                    || o.state == State::Reset
                    || r.state == State::Reset
                    || o.state == State::Inactive
                    || r.state == State::Inactive
                {
                    self.is_active = false;
                    return (true, None);
                }
            }
            if self.resp.state == State::Inactive && self.orig.state == State::Inactive {
                return (true, None);
            }
        }
        (false, Some(t + SESSION_TIMER))
    }

    /// A segment with a bad checksum.
    pub fn checksum_error(&mut self, is_orig: bool, history: &mut History) {
        let (ep, _) = self.eps(is_orig);
        history.scaled(is_orig, 'C', &mut ep.checksum_errors);
    }

    pub fn gap(&mut self, is_orig: bool, history: &mut History) {
        let (ep, _) = self.eps(is_orig);
        history.scaled(is_orig, 'G', &mut ep.gaps);
    }

    /// The relative sequence number of `dir`'s FIN, if it sent one.
    pub fn fin_seq(&self, is_orig: bool) -> Option<u64> {
        let ep = if is_orig { &self.orig } else { &self.resp };
        (ep.fin_cnt > 0).then_some(ep.fin_seq)
    }

    pub fn sizes(&self) -> (u64, u64) {
        (self.orig.size(&self.resp), self.resp.size(&self.orig))
    }

    /// conn.log `conn_state` from the endpoint states (Zeek's `conn_state()` for TCP).
    pub fn conn_state(&self, history: &str) -> &'static str {
        let os = self.orig.state;
        let rs = self.resp.state;
        let o_inactive = matches!(os, State::Inactive | State::Partial);
        let r_inactive = matches!(rs, State::Inactive | State::Partial);
        let (osize, rsize) = self.sizes();
        if rs == State::Reset {
            if matches!(os, State::SynSent | State::SynAckSent)
                || (os == State::Reset && osize == 0 && rsize == 0)
            {
                "REJ"
            } else if o_inactive {
                "RSTRH"
            } else {
                "RSTR"
            }
        } else if os == State::Reset {
            if r_inactive {
                if rstos0_history(history) {
                    "RSTOS0"
                } else {
                    "OTH"
                }
            } else {
                "RSTO"
            }
        } else if rs == State::Closed && os == State::Closed {
            "SF"
        } else if os == State::Closed {
            if r_inactive {
                "SH"
            } else {
                "S2"
            }
        } else if rs == State::Closed {
            if o_inactive {
                "SHR"
            } else {
                "S3"
            }
        } else if os == State::SynSent && rs == State::Inactive {
            "S0"
        } else if os == State::Established && rs == State::Established {
            "S1"
        } else {
            "OTH"
        }
    }
}

/// `/\^?S[^HAFGIQ]*R.*/` as a full match.
fn rstos0_history(h: &str) -> bool {
    let h = h.strip_prefix('^').unwrap_or(h);
    let Some(rest) = h.strip_prefix('S') else {
        return false;
    };
    for c in rest.chars() {
        if c == 'R' {
            return true;
        }
        if "HAFGIQ".contains(c) {
            return false;
        }
    }
    false
}

fn is_clean(e: &Endpoint) -> bool {
    e.state == State::Established
        || (e.state == State::Closed && e.prev_state == State::Established)
}

fn init_endpoint(
    ep: &mut Endpoint,
    syn: bool,
    first_seq: u32,
    last_seq: u32,
    weirds: &mut Vec<&'static str>,
) {
    match ep.state {
        State::Inactive => {
            if syn {
                ep.init(first_seq);
                ep.last_seq = last_seq;
            } else {
                ep.init(first_seq.wrapping_sub(1));
                ep.last_seq = first_seq;
            }
        }
        State::SynSent | State::SynAckSent => {
            if syn && first_seq != ep.start_seq {
                weirds.push("SYN_seq_jump");
                ep.init(first_seq);
                ep.last_seq = last_seq;
            }
        }
        State::Established | State::Partial => {
            if syn {
                if first_seq != ep.start_seq {
                    weirds.push("SYN_seq_jump");
                }
                ep.init(first_seq);
                ep.last_seq = last_seq;
            }
        }
        State::Reset => {
            if syn && ep.prev_state == State::Inactive {
                ep.init(first_seq);
                ep.last_seq = last_seq;
            }
        }
        State::Closed => {}
    }
}

#[allow(clippy::too_many_arguments)]
fn update_window(
    ep: &mut Endpoint,
    peer: &Endpoint,
    window: u16,
    base_seq: u32,
    ack_seq: u32,
    flags: u8,
    is_orig: bool,
    history: &mut History,
    weirds: &mut Vec<&'static str>,
) {
    let scale = ep.window_scale;
    let window = u32::from(window) << scale;
    let rst = has(flags, tcpflags::RST);
    if window == 0 && !rst && peer.state != State::Closed && ep.state != State::Reset {
        history.scaled(is_orig, 'W', &mut ep.win0);
    }
    if !has(flags, tcpflags::SYN)
        && !has(flags, tcpflags::FIN)
        && !rst
        && ep.state != State::Closed
        && ep.state != State::Reset
        && seq_delta(base_seq, ep.window_seq) >= 0
        && seq_delta(ack_seq, ep.window_ack_seq) >= 0
    {
        let new_edge = ack_seq.wrapping_add(window);
        let old_edge = ep.window_ack_seq.wrapping_add(ep.window);
        let advance = seq_delta(new_edge, old_edge);
        if advance < 0 && i64::from(-advance) >= (1i64 << scale) {
            weirds.push("window_recision");
        }
        ep.window = window;
        ep.window_ack_seq = ack_seq;
        ep.window_seq = base_seq;
    }
}
