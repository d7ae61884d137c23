//! Budgets per sender (connections per address or per certificate name, TLS handshakes in
//! progress per address), so that one sender cannot take the capacity every other needs.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

pub struct Slots<K: Hash + Eq> {
    each: usize,
    held: Mutex<HashMap<K, usize>>,
}

/// One slot of one sender, given back when dropped.
pub struct Slot<K: Hash + Eq> {
    slots: Arc<Slots<K>>,
    key: K,
}

pub type AddressSlots = Slots<IpAddr>;
/// Keyed by certificate name in lower case, as peer rules compare names.
pub type NameSlots = Slots<String>;

impl<K: Hash + Eq + Clone> Slots<K> {
    /// Slots for each sender, `each` at most.
    pub fn new(each: usize) -> Arc<Self> {
        Arc::new(Slots {
            each,
            held: Mutex::default(),
        })
    }

    pub fn each(&self) -> usize {
        self.each
    }

    /// A slot for `key`, unless it holds all it may.
    pub fn take(self: &Arc<Self>, key: K) -> Option<Slot<K>> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let n = held.entry(key.clone()).or_insert(0);
        if *n >= self.each {
            return None;
        }
        *n += 1;
        Some(Slot {
            slots: self.clone(),
            key,
        })
    }

    /// A slot for each of `keys`, or none at all if one of them holds all it may.
    pub fn take_each(self: &Arc<Self>, keys: impl IntoIterator<Item = K>) -> Option<Vec<Slot<K>>> {
        keys.into_iter().map(|k| self.take(k)).collect()
    }
}

impl<K: Hash + Eq> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_own_budget() {
        let slots = AddressSlots::new(2);
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.2".parse().unwrap(), "::1".parse().unwrap());
        let held: Vec<_> = (0..3).filter_map(|_| slots.take(a)).collect();
        assert_eq!(held.len(), 2);
        assert!(slots.take(b).is_some());
        drop(held);
        assert!(slots.take(a).is_some());
        assert!(slots.held.lock().unwrap().len() <= 1);
    }

    #[test]
    fn a_certificate_takes_a_slot_of_each_name_or_none() {
        let slots = NameSlots::new(1);
        let names = || ["a".to_string(), "b".to_string()];
        let first = slots.take_each(names()).expect("both free");
        assert!(slots.take_each(names()).is_none());
        assert!(slots.take("a".into()).is_none() && slots.take("b".into()).is_none());
        let c = slots.take_each(["c".to_string()]).expect("another name");
        drop(first);
        let again = slots.take_each(names());
        assert!(again.is_some(), "given back when the connection ends");
        drop((c, again));
        assert!(slots.held.lock().unwrap().is_empty());
    }
}
