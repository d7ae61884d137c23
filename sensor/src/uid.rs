//! Zeek-style unique ids: a prefix letter and 96 random bits in base62, as two words encoded
//! separately without padding (the top 32 bits, then 64 bits).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

const DIGITS: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Generates uids from a per-process random seed (splitmix64), so several sensors never
/// need to coordinate.
#[derive(Debug, Clone)]
pub struct UidGen {
    state: u64,
}

impl Default for UidGen {
    fn default() -> Self {
        Self::new()
    }
}

impl UidGen {
    pub fn new() -> Self {
        let mut h = RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        h.write_u128(nanos);
        UidGen { state: h.finish() }
    }

    /// A deterministic generator, for tests.
    pub fn seeded(seed: u64) -> Self {
        UidGen { state: seed }
    }

    /// The file ids of one analyzer of a connection: derived from the connection's uid, and
    /// from `analyzer` so that two analyzers of one connection differ.
    pub fn for_connection(uid: &str, analyzer: u64) -> Self {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(uid, &mut h);
        Self::seeded(h.finish() ^ analyzer)
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A new id with the given prefix (`'C'` for connections, `'F'` for files).
    pub fn next(&mut self, prefix: char) -> String {
        let hi = self.next_u64() >> 32;
        let lo = self.next_u64();
        let mut s = String::with_capacity(18);
        s.push(prefix);
        push_base62(&mut s, hi);
        push_base62(&mut s, lo);
        s
    }
}

fn push_base62(out: &mut String, mut v: u64) {
    let mut buf = [0u8; 11];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = DIGITS[(v % 62) as usize];
        v /= 62;
        if v == 0 {
            break;
        }
    }
    out.extend(buf[i..].iter().map(|&b| b as char));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_like_zeek() {
        let mut g = UidGen::seeded(1);
        for _ in 0..1000 {
            let u = g.next('C');
            assert!(u.starts_with('C'));
            assert!(u.len() <= 18 && u.len() >= 3, "{u}");
            assert!(u[1..].bytes().all(|b| b.is_ascii_alphanumeric()));
        }
    }
}
