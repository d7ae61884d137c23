//! The tunnels a connection is seen in: its `tunnel_parents`, and Zeek's count of encapsulation
//! changes that marks a connection swapping tunnels too often with the history letter 'X'.

use std::hash::{DefaultHasher, Hash, Hasher};

use super::history::History;
use super::{PacketMeta, Tracker, MAX_TUNNEL_PARENTS};
use crate::flow::Encap;

/// Zeek's `Tunnel::max_changes_per_connection`: encapsulation changes reported per connection.
const MAX_CHANGES: u32 = 5;

/// Zeek's `Connection::encapsulation` and `tunnel_changes` (Conn.cc).
#[derive(Debug, Clone, Copy, Default)]
pub struct Encapsulation {
    /// The stack the last packet came in (hashed); `None` outside any tunnel.
    current: Option<u64>,
    changes: u32,
}

impl Encapsulation {
    /// The encapsulation of the connection's first packet.
    pub fn new(tunnels: &[Encap]) -> Self {
        Encapsulation {
            current: stack_id(tunnels),
            changes: 0,
        }
    }

    /// Zeek's `Connection::CheckEncapsulation`: any change of the stack (into a tunnel, out of
    /// one, or to another) counts; the change past `Tunnel::max_changes_per_connection` adds
    /// 'X', once, upper case when the originator's packet made it.
    fn check(&mut self, tunnels: &[Encap], is_orig: bool, history: &mut History) {
        let id = stack_id(tunnels);
        if id == self.current {
            return;
        }
        self.current = id;
        if self.changes < MAX_CHANGES {
            self.changes += 1;
        } else if self.changes == MAX_CHANGES {
            self.changes += 1;
            history.add_dir(is_orig, 'X');
        }
    }
}

fn stack_id(tunnels: &[Encap]) -> Option<u64> {
    if tunnels.is_empty() {
        return None;
    }
    let mut h = DefaultHasher::new();
    tunnels.hash(&mut h);
    Some(h.finish())
}

impl Tracker {
    /// Checks the packet's encapsulation against the connection's and adds its innermost
    /// tunnel to `tunnel_parents`; a new one is Zeek's `tunnel_changed` (or a new connection
    /// inside a tunnel).
    pub(super) fn encapsulation(&mut self, slot: usize, m: &PacketMeta<'_>, sport: u16) {
        let Some(conn) = self.conn_mut(slot) else {
            return;
        };
        let is_orig = conn.is_orig(m.src, sport);
        conn.encap.check(m.tunnels, is_orig, &mut conn.history);
        let Some(parent) = m.tunnels.last() else {
            return;
        };
        if conn.tunnel_parents.len() < MAX_TUNNEL_PARENTS
            && !conn.tunnel_parents.contains(&parent.uid)
        {
            conn.tunnel_parents.push(parent.uid.clone());
            self.new_encapsulation = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{TunnelId, TunnelType};

    fn vxlan(uid: &str, sport: u16) -> Encap {
        Encap {
            uid: uid.into(),
            id: TunnelId {
                orig_h: [10, 0, 0, 1].into(),
                orig_p: sport,
                resp_h: [10, 0, 0, 2].into(),
                resp_p: 4789,
            },
            kind: TunnelType::Vxlan,
        }
    }

    /// Requests in one tunnel, replies in another: the sixth change, made by a request, is
    /// the one past the limit; later changes add nothing.
    #[test]
    fn the_change_past_the_limit_adds_x_once() {
        let (a, b) = ([vxlan("CA", 1000)], [vxlan("CB", 2000)]);
        let mut e = Encapsulation::new(&a);
        let mut h = History::default();
        for i in 0..20 {
            let orig = i % 2 == 0;
            e.check(if orig { &a } else { &b }, orig, &mut h);
            if i < 6 {
                assert_eq!(h.as_str(), "", "packet {i}");
            }
        }
        assert_eq!(h.as_str(), "X");
    }

    #[test]
    fn a_responder_packet_past_the_limit_adds_lower_case_x() {
        let (a, b) = ([vxlan("CA", 1000)], [vxlan("CB", 2000)]);
        let mut e = Encapsulation::new(&a);
        let mut h = History::default();
        for i in 0..6 {
            e.check(if i % 2 == 0 { &b } else { &a }, false, &mut h);
        }
        assert_eq!(h.as_str(), "x");
    }

    /// Leaving a tunnel and entering one are changes too; the same stack again is none.
    #[test]
    fn entering_and_leaving_a_tunnel_count_as_changes() {
        let a = [vxlan("CA", 1000)];
        let mut e = Encapsulation::new(&[]);
        let mut h = History::default();
        for _ in 0..3 {
            e.check(&a, true, &mut h);
            e.check(&a, true, &mut h);
            e.check(&[], true, &mut h);
        }
        assert_eq!(h.as_str(), "X");
        let mut same = Encapsulation::new(&a);
        for _ in 0..10 {
            same.check(&a, true, &mut h);
        }
        assert_eq!(h.as_str(), "X");
    }
}
