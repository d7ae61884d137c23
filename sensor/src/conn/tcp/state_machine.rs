//! Endpoint state transitions of one segment (Zeek's `TCPSessionAdapter::UpdateStateMachine`
//! and its helpers), and what a close schedules.

use super::endpoint::{is_handshake, State};
use super::{has, Outcome, Tcp, TimerKind, When};
use super::{ATTEMPT_DELAY, CLOSE_DELAY, INACTIVITY_TIMEOUT, SESSION_TIMER};
use crate::conn::history::History;
use crate::decode::tcpflags;

impl Tcp {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn update_state(
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

    pub(super) fn set_state(&mut self, is_orig: bool, new: State, out: &mut Outcome) {
        let (ep, peer) = self.eps(is_orig);
        if new != ep.state {
            if !is_handshake(new) && is_handshake(ep.state) && is_handshake(peer.state) {
                out.inactivity_timeout = Some(INACTIVITY_TIMEOUT);
            }
            ep.prev_state = ep.state;
            ep.state = new;
        }
    }

    pub(super) fn connection_closed(&mut self, is_orig: bool, out: &mut Outcome) {
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
}
