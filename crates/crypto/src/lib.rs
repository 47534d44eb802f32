//! Legacy cryptography for PPP authentication and encryption.
//!
//! Implements:
//! - thin wrappers over RustCrypto's MD5, MD4, SHA-1 and DES ([`md5()`],
//!   [`sha1()`], [`md4()`], [`des_encrypt_block`]);
//! - RC4 of our own ([`Rc4`]), tuned for MPPE's key schedule per packet;
//! - RFC 2759 MS-CHAPv2 (section 8): ChallengeHash, NtPasswordHash,
//!   ChallengeResponse, GenerateNTResponse, GenerateAuthenticatorResponse,
//!   CheckAuthenticatorResponse ([`mschapv2`]);
//! - RFC 3079 MPPE key derivation (section 3): GetMasterKey,
//!   GetAsymmetricStartKey (Magic2/Magic3), GetNewKeyFromSHA and the 40/56
//!   bit reductions, and stateless mode's key per packet scheduled a few
//!   packets ahead ([`mppe`]);
//! - the kernel's CSPRNG behind [`RandomSource`] ([`random`]), the only
//!   source of anything an attacker must not predict;
//! - Diffie-Hellman for IKE ([`dh`]): MODP groups 2, 5 and 14 (RFC 2409
//!   s6.2, RFC 3526) in constant time, ECP-256 (RFC 5903).
//!
//! The hashes and ciphers are weak (DESIGN.md, "Weak algorithms"): they exist because
//! deployed PPTP/L2TP clients need them. Secrets ([`Secret`], keys) are
//! zeroized on drop and print as `<redacted>` in `Debug`; secret-derived
//! values are compared in constant time ([`ct_eq`]).
//!
//! Leaves out: MS-CHAPv1 (RFC 2433), LM hashes, password change (RFC 2759
//! s8.8-8.12: we never accept Change-Password).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod arcfour;
pub mod dh;
pub mod mppe;
pub mod mschapv2;
pub mod random;

pub use arcfour::Rc4;
pub use random::{OsRandom, Random, RandomSource};

use std::fmt;

use des::cipher::{BlockEncrypt, KeyInit};
use md4::Md4;
use md5::{Digest, Md5};
use sha1::Sha1;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A password or shared secret: zeroized on drop, never printed.
#[derive(Clone, Default, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps secret bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Secret {
        Secret(bytes.into())
    }

    /// The secret bytes, for hashing. Do not log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Whether the secret is empty (pppd treats an empty secret as none).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Constant-time comparison with `other` (PAP passwords).
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        ct_eq(&self.0, other)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret::new(s.as_bytes())
    }
}

/// Constant-time equality of two byte strings (the length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// MD5 (RFC 1321) over the concatenation of `parts`.
pub fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// MD4 (RFC 1320) of `data`.
pub fn md4(data: &[u8]) -> [u8; 16] {
    let mut h = Md4::new();
    h.update(data);
    h.finalize().into()
}

/// SHA-1 (FIPS 180) over the concatenation of `parts`.
pub fn sha1(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// DES-encrypts one block with a 7-octet key, spread to 8 octets with
/// parity bits as RFC 2759 s8.6 (DesEncrypt) describes.
pub fn des_encrypt_block(key7: &[u8; 7], block: &[u8; 8]) -> [u8; 8] {
    let mut key = expand_des_key(key7);
    // A 8-byte key always has the right length for DES.
    let cipher = des::Des::new(&key.into());
    let mut out = (*block).into();
    cipher.encrypt_block(&mut out);
    key.zeroize();
    out.into()
}

/// 56 key bits to a DES key: 7 bits per octet, low bit = odd parity.
fn expand_des_key(k: &[u8; 7]) -> [u8; 8] {
    let bits = k.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    let mut out = [0u8; 8];
    for (i, o) in out.iter_mut().enumerate() {
        let seven = ((bits >> (49 - 7 * i)) & 0x7f) as u8;
        let byte = seven << 1;
        // Odd parity in the low bit (DES ignores it, but be correct).
        *o = byte | u8::from(byte.count_ones().is_multiple_of(2));
    }
    out
}

/// Uppercase hex, as MS-CHAPv2's "S=" text uses.
pub fn hex_upper(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn des_key_expansion_sets_odd_parity() {
        let k = expand_des_key(&[0xff; 7]);
        // 7 one bits already have odd parity: the parity bit stays 0.
        assert_eq!(k, [0xfe; 8]);
        for b in expand_des_key(&[0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde]) {
            assert_eq!(b.count_ones() % 2, 1);
        }
    }

    #[test]
    fn secret_is_redacted() {
        let s = Secret::from("wonderland");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert!(s.ct_eq(b"wonderland"));
        assert!(!s.ct_eq(b"wonderlanD"));
        assert!(!s.ct_eq(b"wonder"));
    }

    #[test]
    fn rc4_key_lengths() {
        assert!(Rc4::new(&[1; 8]).is_some());
        assert!(Rc4::new(&[1; 16]).is_some());
        assert!(Rc4::new(&[1; 5]).is_some());
        assert!(Rc4::new(&[]).is_none());
        assert!(Rc4::new(&[1; 257]).is_none());
    }
}
