//! The TCP part of a connection, following Zeek's TCP session adapter: one segment's effects
//! (sequence bookkeeping, weirds, timers, the ACKs that reveal content gaps), the timers that end
//! a connection, and reuse of a closed connection's endpoints.

mod conn_state;
mod endpoint;
mod history_letters;
mod state_machine;

use super::history::History;
use crate::decode::{tcpflags, TcpHeader};
use endpoint::{init_endpoint, is_clean, seq_delta, update_window};
pub use endpoint::{Endpoint, State};

const TOO_LARGE_SEQ_DELTA: i32 = 1_048_576;

/// Zeek's `tcp_SYN_timeout`, `tcp_attempt_delay`, `tcp_close_delay`, `tcp_session_timer`,
/// `tcp_connection_linger`, `tcp_partial_close_delay`, `tcp_inactivity_timeout`.
pub const SYN_TIMEOUT: f64 = 5.0;
pub const ATTEMPT_DELAY: f64 = 5.0;
pub const CLOSE_DELAY: f64 = 5.0;
pub const SESSION_TIMER: f64 = 6.0;
pub const CONNECTION_LINGER: f64 = 5.0;
pub const INACTIVITY_TIMEOUT: f64 = 300.0;

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
    /// A window scale option above RFC 7323's maximum of 14 (weird `TCP_scale_range`).
    pub scale_range: Option<u8>,
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

        let is_orig = if self.orig.state == State::SynAckSent
            && self.resp.state == State::Inactive
            && !syn
            && !rst
            && (ack || len > 0)
        {
            // Zeek (since its pull request 2191) flips a connection that began with a SYN-ACK
            // once an ACK or data follows in either direction: a stealth scan elicits RSTs
            // or nothing, never those.
            self.flip();
            // The missing SYN does not make the connection partial (pull request 2552).
            self.first_seen_orig = true;
            history.flip_recorded();
            out.flipped = true;
            !is_orig
        } else {
            is_orig
        };

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
                    // Zeek's init_window clamps the shift to 14 with a `TCP_scale_range` weird.
                    if s > 14 {
                        out.scale_range = Some(s);
                    }
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
}
