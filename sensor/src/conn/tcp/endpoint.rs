//! One endpoint of a TCP connection as Zeek's `TCP_Endpoint` keeps it: its state, relative
//! sequence numbers with wraps, payload size from sequence numbers, and its advertised window.

use super::has;
use crate::conn::history::{History, Scaled};
use crate::decode::tcpflags;

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

pub(super) fn is_handshake(s: State) -> bool {
    matches!(s, State::Inactive | State::SynSent | State::SynAckSent)
}

pub(super) fn seq_delta(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

/// One side of a TCP connection.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub state: State,
    pub prev_state: State,
    pub(super) start_seq: u32,
    pub(super) last_seq: u32,
    pub(super) ack_seq: u32,
    pub(super) seq_wraps: u32,
    pub(super) ack_wraps: u32,
    pub did_close: bool,
    pub fin_cnt: u32,
    /// Relative sequence number just past the FIN.
    pub fin_seq: u64,
    pub(super) hist_last_syn: u64,
    pub(super) hist_last_fin: u64,
    pub(super) hist_last_rst: u64,
    pub checksum_errors: Scaled,
    pub(super) rxmit: Scaled,
    pub(super) win0: Scaled,
    pub gaps: Scaled,
    pub(super) window_scale: u32,
    pub(super) window: u32,
    pub(super) window_seq: u32,
    pub(super) window_ack_seq: u32,
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

pub(super) fn full(seq: u32, wraps: u32) -> u64 {
    (u64::from(wraps) << 32) | u64::from(seq)
}

impl Endpoint {
    pub(super) fn update_last_seq_raw(&mut self, seq: u32) {
        if seq < self.last_seq {
            self.seq_wraps += 1;
        }
        self.last_seq = seq;
    }

    pub(super) fn update_ack_seq_raw(&mut self, seq: u32) {
        if seq < self.ack_seq {
            self.ack_wraps += 1;
        }
        self.ack_seq = seq;
    }

    pub(super) fn init(&mut self, seq: u32) {
        self.start_seq = seq;
        self.ack_seq = seq;
    }

    pub(super) fn no_data_acked(&self) -> bool {
        let ack = full(self.ack_seq, self.ack_wraps);
        let start = u64::from(self.start_seq);
        ack == start || ack == start + 1
    }

    pub(super) fn relative(&self, cur: u32, last: u32, wraps: u32) -> (u64, bool) {
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

pub(super) fn is_clean(e: &Endpoint) -> bool {
    e.state == State::Established
        || (e.state == State::Closed && e.prev_state == State::Established)
}

pub(super) fn init_endpoint(
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
pub(super) fn update_window(
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
