//! A small deterministic generator for magic numbers and interface
//! identifiers. The engine takes randomness as a seed (sans-IO); the
//! driver seeds it from the OS. Not for cryptography.

/// SplitMix64 (Steele, Lea, Flood 2014): good spread from any seed,
/// including consecutive ones.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A non-zero u32 (RFC 1661 s6.4: a Magic-Number of zero is not used).
    pub fn nonzero_u32(&mut self) -> u32 {
        loop {
            let v = self.next_u64() as u32;
            if v != 0 {
                return v;
            }
        }
    }

    /// A non-zero 64-bit interface identifier (RFC 5072 s4.1).
    pub fn nonzero_id(&mut self) -> [u8; 8] {
        loop {
            let v = self.next_u64();
            if v != 0 {
                return v.to_be_bytes();
            }
        }
    }
}
