//! The tracker's timers: inactivity and TCP state timeouts, fired in time order.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TimerAction {
    Inactivity(u64),
    Tcp(TimerKind),
    /// Zeek's `DNS_Analyzer::ExpireTimer` of a DNS connection over UDP.
    DnsExpire,
}

#[derive(Debug)]
pub(super) struct Timer {
    at: f64,
    seq: u64,
    slot: usize,
    conn_gen: u64,
    action: TimerAction,
}

impl PartialEq for Timer {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Timer {}
impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timer {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: the heap pops the earliest timer first.
        other.at.total_cmp(&self.at).then(other.seq.cmp(&self.seq))
    }
}

impl Tracker {
    pub(super) fn add_timer(&mut self, slot: usize, at: f64, action: TimerAction) {
        let Some(Some((_, gen, _))) = self.slots.get(slot) else {
            return;
        };
        self.timer_seq += 1;
        self.timers.push(Timer {
            at,
            seq: self.timer_seq,
            slot,
            conn_gen: *gen,
            action,
        });
    }

    /// Fires every timer due at or before `now`.
    pub fn advance(&mut self, now: f64, out: &mut Records) {
        while let Some(top) = self.timers.peek() {
            if top.at > now {
                break;
            }
            let Some(t) = self.timers.pop() else { break };
            let valid =
                matches!(self.slots.get(t.slot), Some(Some((_, gen, _))) if *gen == t.conn_gen);
            if !valid {
                continue;
            }
            self.fire(t, out);
        }
    }

    fn fire(&mut self, t: Timer, out: &mut Records) {
        let Some(Some((_, _, conn))) = self.slots.get_mut(t.slot) else {
            return;
        };
        match t.action {
            TimerAction::Inactivity(gen) => {
                if gen != conn.inactivity_gen || conn.inactivity_timeout <= 0.0 {
                    return;
                }
                let due = conn.last + conn.inactivity_timeout;
                if due <= t.at {
                    self.remove_slot(t.slot, t.at, out);
                } else {
                    self.add_timer(t.slot, due, TimerAction::Inactivity(gen));
                }
            }
            TimerAction::DnsExpire => {
                if t.at - conn.last >= DNS_SESSION_TIMEOUT - 1.0 {
                    self.remove_slot(t.slot, t.at, out);
                } else {
                    let next = t.at + DNS_SESSION_TIMEOUT;
                    self.add_timer(t.slot, next, TimerAction::DnsExpire);
                }
            }
            TimerAction::Tcp(kind) => {
                let last = conn.last;
                let Kind::Tcp(tcp) = &mut conn.kind else {
                    return;
                };
                match kind {
                    TimerKind::Attempt => {
                        if tcp.attempt_timer() {
                            self.remove_slot(t.slot, t.at, out);
                        }
                    }
                    TimerKind::Expire => {
                        let (remove, next) = tcp.expire_timer(t.at, last);
                        if remove {
                            self.remove_slot(t.slot, t.at, out);
                        } else if let Some(next) = next {
                            self.add_timer(t.slot, next, TimerAction::Tcp(TimerKind::Expire));
                        }
                    }
                    TimerKind::Delete => self.remove_slot(t.slot, t.at, out),
                }
            }
        }
    }

    pub(super) fn set_inactivity(&mut self, slot: usize, timeout: f64) {
        let Some(Some((_, _, conn))) = self.slots.get_mut(slot) else {
            return;
        };
        if conn.inactivity_timeout == timeout {
            return;
        }
        conn.inactivity_timeout = timeout;
        conn.inactivity_gen += 1;
        let (at, gen) = (conn.last + timeout, conn.inactivity_gen);
        self.add_timer(slot, at, TimerAction::Inactivity(gen));
    }
}
