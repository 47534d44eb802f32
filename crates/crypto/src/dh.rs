//! Diffie-Hellman for IKE (RFC 2409 s6, RFC 3526, RFC 5903).
//!
//! SKELETON: the API the IKE engine is written against; the bodies are
//! being implemented (MODP on crypto-bigint in constant time, ECP-256 on
//! p256). Nothing calls this yet.

use crate::random::RandomSource;
use zeroize::Zeroizing;

/// A Diffie-Hellman group tsunagi implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DhGroup {
    /// 1024-bit MODP, Oakley group 2 (RFC 2409 s6.2). Weak: only when named.
    Modp1024,
    /// 1536-bit MODP, group 5 (RFC 3526 s2).
    Modp1536,
    /// 2048-bit MODP, group 14 (RFC 3526 s3).
    Modp2048,
    /// 256-bit random ECP, group 19 (RFC 5903).
    Ecp256,
}

impl DhGroup {
    /// The length of a public value (the KE payload's data) and of the
    /// shared secret: the prime's length for MODP (left-padded with zeros,
    /// RFC 2409 s5 / RFC 2412 Appendix E); x || y (64 octets) for ECP-256
    /// public values and x (32 octets) for its shared secret (RFC 5903 s7,
    /// s9).
    pub fn public_len(self) -> usize {
        match self {
            DhGroup::Modp1024 => 128,
            DhGroup::Modp1536 => 192,
            DhGroup::Modp2048 => 256,
            DhGroup::Ecp256 => 64,
        }
    }
}

/// Why a peer's public value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DhError {
    /// Not the group's length.
    #[error("{group:?} public value: {len} octets, expected {expected}")]
    Length {
        /// The group.
        group: DhGroup,
        /// What arrived.
        len: usize,
        /// What the group needs.
        expected: usize,
    },
    /// MODP: not in 2..=p-2 (RFC 2631 s2.1.5 style check); ECP: not a
    /// point on the curve.
    #[error("{group:?} public value is not a valid group element")]
    Invalid {
        /// The group.
        group: DhGroup,
    },
}

/// Our half of an exchange: the private value, zeroized on drop.
pub struct DhPrivate {
    group: DhGroup,
    #[allow(dead_code)]
    secret: Zeroizing<Vec<u8>>,
    public: Vec<u8>,
}

impl std::fmt::Debug for DhPrivate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DhPrivate")
            .field("group", &self.group)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl DhPrivate {
    /// Draws a private value from `random` (the OS CSPRNG) and computes the
    /// public value.
    pub fn generate(group: DhGroup, random: &dyn RandomSource) -> DhPrivate {
        let _ = random;
        unimplemented!("DhPrivate::generate({group:?})")
    }

    /// The group.
    pub fn group(&self) -> DhGroup {
        self.group
    }

    /// The public value, [`DhGroup::public_len`] octets.
    pub fn public_value(&self) -> &[u8] {
        &self.public
    }

    /// g^xy: the shared secret with the peer's public value, after checking
    /// that value.
    pub fn shared_secret(&self, peer_public: &[u8]) -> Result<Zeroizing<Vec<u8>>, DhError> {
        let _ = peer_public;
        unimplemented!()
    }
}
