//! A small deterministic generator for tests that kill at random moments: seeded from the
//! clock, or from `ESTUARY_TEST_SEED`, and printed so a failing run can be repeated.

pub struct Rng(u64);

impl Rng {
    pub fn from_clock() -> Rng {
        let seed = std::env::var("ESTUARY_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64)
                    ^ u64::from(std::process::id())
                    ^ 0x9e37_79b9
            });
        println!("seed {seed} (rerun with ESTUARY_TEST_SEED={seed})");
        Rng(seed.max(1))
    }

    /// A number in `0..n` (xorshift64).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}
