//! Randomness an attacker must not predict (DESIGN.md, "Randomness").
//!
//! Engines are sans-IO, so they do not call the operating system for
//! randomness themselves: they hold a [`RandomSource`] handed in by their
//! driver. In a running gateway that is always [`OsRandom`], the kernel's
//! CSPRNG through getrandom(2); every draw goes to the kernel, so nothing
//! the engine sends (a magic number, an interface identifier, an earlier
//! challenge) says anything about the next draw.
//!
//! What must come from here: CHAP and MS-CHAPv2 challenges (both the
//! authenticator's and the peer's), and later IKE nonces and cookies, SPIs,
//! L2TP challenges and the tunnel and call ids that guard against spoofing.
//! Magic numbers and IPV6CP interface identifiers may come from a cheap
//! generator, as long as it is seeded by its own draw from here and shares
//! no state with these values.

use std::sync::Arc;

/// A source of unpredictable octets.
pub trait RandomSource: Send + Sync {
    /// Fills `dest` with random octets.
    fn fill(&self, dest: &mut [u8]);
}

/// A shared handle on a [`RandomSource`], cheap to clone into every engine.
pub type Random = Arc<dyn RandomSource>;

/// The kernel's CSPRNG (getrandom(2), which blocks only until the pool is
/// initialised at boot).
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

impl OsRandom {
    /// A shared handle on the kernel's CSPRNG.
    pub fn handle() -> Random {
        Arc::new(OsRandom)
    }

    /// Draws once, to learn at start-up rather than at the first challenge
    /// whether the kernel gives randomness (a seccomp filter or a very old
    /// kernel could refuse getrandom).
    pub fn check() -> Result<(), String> {
        let mut probe = [0u8; 16];
        getrandom::fill(&mut probe).map_err(|e| format!("getrandom(2) failed: {e}"))
    }
}

impl RandomSource for OsRandom {
    /// # Panics
    ///
    /// When the kernel refuses to give randomness, which Linux does not do
    /// once booted (see [`OsRandom::check`]). There is no safe fallback: a
    /// predictable challenge would let a recorded response be replayed, so
    /// the engine asking for it stops instead.
    fn fill(&self, dest: &mut [u8]) {
        if let Err(e) = getrandom::fill(dest) {
            panic!("the kernel's CSPRNG failed ({e}): refusing to go on with predictable values");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_differ_and_are_not_all_zero() {
        let r = OsRandom::handle();
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        r.fill(&mut a);
        r.fill(&mut b);
        assert_ne!(a, b);
        assert_ne!(a, [0; 16]);
        assert!(OsRandom::check().is_ok());
    }
}
