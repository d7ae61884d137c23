//! Per-address budgets (connections, TLS handshakes in progress), so that one peer cannot take
//! the capacity every other peer needs.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

pub struct Slots {
    per_address: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

/// One slot of one address, given back when dropped.
pub struct Slot {
    slots: Arc<Slots>,
    addr: IpAddr,
}

impl Slots {
    pub fn new(per_address: usize) -> Arc<Self> {
        Arc::new(Slots {
            per_address,
            held: Mutex::default(),
        })
    }

    /// A slot for `addr`, unless it holds all it may.
    pub fn take(self: &Arc<Self>, addr: IpAddr) -> Option<Slot> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let n = held.entry(addr).or_insert(0);
        if *n >= self.per_address {
            return None;
        }
        *n += 1;
        Some(Slot {
            slots: self.clone(),
            addr,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(&self.addr) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.addr);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_own_budget() {
        let slots = Slots::new(2);
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.2".parse().unwrap(), "::1".parse().unwrap());
        let held: Vec<_> = (0..3).filter_map(|_| slots.take(a)).collect();
        assert_eq!(held.len(), 2);
        assert!(slots.take(b).is_some());
        drop(held);
        assert!(slots.take(a).is_some());
        assert!(slots.held.lock().unwrap().len() <= 1);
    }
}
