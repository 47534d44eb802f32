//! Diffie-Hellman for IKE (RFC 2409 s6, RFC 3526, RFC 5903).
//!
//! - MODP groups 2 (1024 bits, RFC 2409 s6.2), 5 (1536 bits, RFC 3526 s2)
//!   and 14 (2048 bits, RFC 3526 s3), generator 2: modular exponentiation
//!   in Montgomery form on crypto-bigint, whose `pow` runs in time that
//!   depends on the exponent's width, not its value. The private exponent
//!   is as wide as the prime less its top bit (strongSwan's default, ANSI
//!   X9.42-style full-length exponents).
//! - ECP group 19 (256-bit random ECP, RFC 5903) on the `p256` crate: the
//!   public value is x | y (RFC 5903 s7), the shared secret x alone (s9).
//!
//! Peer values are checked before use: MODP 1 < y < p-1 (RFC 2631 s2.1.5
//! style, which also refuses the order-2 element p-1), ECP a point on the
//! curve that is not the identity. Private values come only from the
//! [`RandomSource`] handed in (the OS CSPRNG in a running gateway) and are
//! zeroized on drop; so are shared secrets.
//!
//! Leaves out: MODP 768 (group 1), the RFC 5114 groups with subgroups, and
//! the other ECP and Curve25519 groups.

use std::sync::OnceLock;

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, Odd};
use p256::elliptic_curve::sec1::ToSec1Point;
use zeroize::Zeroizing;

use crate::random::RandomSource;

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

    /// The length of the shared secret g^xy: the prime's length for MODP,
    /// the x coordinate (32 octets) for ECP-256 (RFC 5903 s9).
    pub fn shared_len(self) -> usize {
        match self {
            DhGroup::Ecp256 => 32,
            modp => modp.public_len(),
        }
    }

    /// The prime of a MODP group, big-endian, `public_len` octets.
    fn modp_prime(self) -> Option<&'static [u8]> {
        match self {
            DhGroup::Modp1024 => Some(&MODP_1024),
            DhGroup::Modp1536 => Some(&MODP_1536),
            DhGroup::Modp2048 => Some(&MODP_2048),
            DhGroup::Ecp256 => None,
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
    /// MODP: the exponent, big-endian, `public_len` octets; ECP-256: the
    /// scalar, 32 octets big-endian.
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
        let mut secret = Zeroizing::new(vec![0u8; secret_len(group)]);
        loop {
            random.fill(&mut secret);
            if group != DhGroup::Ecp256 {
                // Below 2^(bits-1) < p. Zero and one would make the public
                // value 1 or g: drawn again (a chance of 2^-1023 or less).
                secret[0] &= 0x7f;
            }
            if let Some(private) = DhPrivate::from_secret(group, &secret) {
                return private;
            }
        }
    }

    /// Our half from a fixed private value (big-endian): `None` when it is
    /// not usable (MODP: below 2 or not below 2^(bits-1); ECP: zero or not
    /// below the group order). For the known-answer tests; a gateway draws
    /// with [`DhPrivate::generate`].
    pub(crate) fn from_secret(group: DhGroup, secret: &[u8]) -> Option<DhPrivate> {
        if secret.len() != secret_len(group) {
            return None;
        }
        let public = match group {
            DhGroup::Ecp256 => {
                let key = p256::SecretKey::from_slice(secret).ok()?;
                let point = key.public_key().as_affine().to_sec1_point(false);
                // 0x04 | x | y (SEC1 uncompressed); IKE sends x | y.
                point.as_bytes()[1..].to_vec()
            }
            modp => {
                let first_nonzero = secret.iter().position(|&b| b != 0);
                let usable = secret[0] & 0x80 == 0
                    && match first_nonzero {
                        None => false,
                        Some(i) => i < secret.len() - 1 || secret[i] > 1,
                    };
                if !usable {
                    return None;
                }
                modp_pow(modp, &[2], secret)
            }
        };
        Some(DhPrivate {
            group,
            secret: Zeroizing::new(secret.to_vec()),
            public,
        })
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
    /// that value. [`DhGroup::shared_len`] octets, left-padded with zeros.
    pub fn shared_secret(&self, peer_public: &[u8]) -> Result<Zeroizing<Vec<u8>>, DhError> {
        let group = self.group;
        let expected = group.public_len();
        if peer_public.len() != expected {
            return Err(DhError::Length {
                group,
                len: peer_public.len(),
                expected,
            });
        }
        match group {
            DhGroup::Ecp256 => {
                let mut sec1 = [0u8; 65];
                sec1[0] = 0x04;
                sec1[1..].copy_from_slice(peer_public);
                // Refuses points off the curve and the identity (which
                // has no uncompressed encoding anyway).
                let peer = p256::PublicKey::from_sec1_bytes(&sec1)
                    .map_err(|_| DhError::Invalid { group })?;
                let key = p256::SecretKey::from_slice(&self.secret)
                    .expect("an ECP-256 secret is checked when it is made");
                let shared = key.diffie_hellman(&peer);
                Ok(Zeroizing::new(shared.raw_secret_bytes().to_vec()))
            }
            modp => {
                let prime = modp.modp_prime().expect("a MODP group has a prime");
                if !modp_peer_value_valid(prime, peer_public) {
                    return Err(DhError::Invalid { group });
                }
                Ok(Zeroizing::new(modp_pow(modp, peer_public, &self.secret)))
            }
        }
    }
}

/// The private value's length: a MODP exponent as wide as the prime, an
/// ECP-256 scalar of 32 octets.
fn secret_len(group: DhGroup) -> usize {
    match group {
        DhGroup::Ecp256 => 32,
        modp => modp.public_len(),
    }
}

/// 1 < y < p-1, on big-endian values of the prime's length (public values:
/// no need for constant time).
fn modp_peer_value_valid(prime: &[u8], y: &[u8]) -> bool {
    let mut p_minus_1 = prime.to_vec();
    // p is odd: p-1 only clears the low bit.
    let last = p_minus_1.len() - 1;
    p_minus_1[last] &= 0xfe;
    let mut one = vec![0u8; prime.len()];
    one[last] = 1;
    y > one.as_slice() && y < p_minus_1.as_slice()
}

/// base^exponent mod p, big-endian in and out (`public_len` octets out).
/// The time depends on the exponent's length, never on its value.
fn modp_pow(group: DhGroup, base: &[u8], exponent: &[u8]) -> Vec<u8> {
    let params = modp_params(group);
    let bits = params.bits_precision();
    let base = BoxedUint::from_be_slice(base, bits).expect("the base fits the prime's width");
    let exponent = Zeroizing::new(
        BoxedUint::from_be_slice(exponent, bits).expect("the exponent fits the prime's width"),
    );
    // The power in Montgomery form and out of it are secrets too (g^xy).
    let montgomery = Zeroizing::new(BoxedMontyForm::new(base, params).pow(&exponent));
    let power = Zeroizing::new(montgomery.retrieve());
    let out = power.to_be_bytes().into_vec();
    debug_assert_eq!(out.len(), group.public_len());
    out
}

/// The Montgomery parameters of a MODP prime, computed once per group.
fn modp_params(group: DhGroup) -> &'static BoxedMontyParams {
    static PARAMS: [OnceLock<BoxedMontyParams>; 3] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let index = match group {
        DhGroup::Modp1024 => 0,
        DhGroup::Modp1536 => 1,
        DhGroup::Modp2048 => 2,
        DhGroup::Ecp256 => unreachable!("ECP-256 has no MODP parameters"),
    };
    PARAMS[index].get_or_init(|| {
        let prime = group.modp_prime().expect("a MODP group has a prime");
        let bits = u32::try_from(prime.len() * 8).expect("a prime of a few thousand bits");
        let p = BoxedUint::from_be_slice(prime, bits).expect("the prime fits its own width");
        BoxedMontyParams::new(Odd::new(p).expect("MODP primes are odd"))
    })
}

/// Group 2: 2^1024 - 2^960 - 1 + 2^64 * { [2^894 pi] + 129093 } (RFC 2409
/// s6.2).
const MODP_1024: [u8; 128] = hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF",
));

/// Group 5: 2^1536 - 2^1472 - 1 + 2^64 * { [2^1406 pi] + 741804 } (RFC
/// 3526 s2).
const MODP_1536: [u8; 192] = hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA237327FFFFFFFFFFFFFFFF",
));

/// Group 14: 2^2048 - 2^1984 - 1 + 2^64 * { [2^1918 pi] + 124476 } (RFC
/// 3526 s3).
const MODP_2048: [u8; 256] = hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
));

/// Hex digits to octets at compile time (the RFCs' primes as printed).
const fn hex<const N: usize>(digits: &str) -> [u8; N] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("not a hex digit"),
        }
    }
    let digits = digits.as_bytes();
    assert!(digits.len() == 2 * N, "wrong number of hex digits");
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = (nibble(digits[2 * i]) << 4) | nibble(digits[2 * i + 1]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests;
