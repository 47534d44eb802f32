//! IKEv1 keying (RFC 2409 s5, s5.5, Appendix B).
//!
//! SKELETON: the API the engine is written against; bodies being
//! implemented and checked against values captured from strongSwan.
//!
//! - PRF: the HMAC of the negotiated hash (RFC 2409 s4: "the HMAC version
//!   of the negotiated hash algorithm" when no PRF is negotiated).
//! - SKEYID for pre-shared keys = prf(PSK, Ni_b | Nr_b); SKEYID_d, _a, _e
//!   as s5; the encryption key from SKEYID_e, expanded as Appendix B when
//!   SKEYID_e is too short (3DES with SHA-1, AES-256 with SHA-1).
//! - Phase 1 IV = hash(g^xi | g^xr); Quick Mode and Informational IVs =
//!   hash(last Phase 1 CBC block | M-ID) (Appendix B).
//! - KEYMAT (s5.5), with and without PFS, expanded K1 | K2 | ...
//! - HASH_I / HASH_R (s5), Quick Mode HASH(1), HASH(2), HASH(3) (s5.5),
//!   Informational HASH(1) (s5.7).
//! - Phase 1 CBC encryption and decryption with padding (s5.3 allows any
//!   padding; the last pad octet need not be a length), IV chaining.

use zeroize::Zeroizing;

use crate::isakmp::proposal::{Encryption, Integrity};

/// What went wrong keying or decrypting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// A hash IKEv1 cannot use as its PRF here.
    #[error("hash {0:?} is not supported for IKEv1")]
    UnsupportedHash(Integrity),
    /// A cipher IKEv1 Phase 1 cannot use (AES-GCM).
    #[error("cipher {0:?} is not supported for IKEv1 Phase 1")]
    UnsupportedCipher(Encryption),
    /// Ciphertext that is not a whole number of blocks.
    #[error("encrypted body of {len} octets is not a multiple of the {block}-octet block")]
    NotBlockAligned {
        /// Its length.
        len: usize,
        /// The block size.
        block: usize,
    },
}

/// prf(key, data[0] | data[1] | ...): HMAC with `hash`.
pub fn prf(hash: Integrity, key: &[u8], data: &[&[u8]]) -> Result<Vec<u8>, KeyError> {
    let _ = (hash, key, data);
    unimplemented!()
}

/// hash(data[0] | ...): the plain hash (for IVs).
pub fn hash(hash: Integrity, data: &[&[u8]]) -> Result<Vec<u8>, KeyError> {
    let _ = (hash, data);
    unimplemented!()
}

/// The outputs of Phase 1 (RFC 2409 s5, Appendix B). Zeroized on drop.
pub struct Phase1Keys {
    /// The negotiated hash (the PRF).
    pub hash: Integrity,
    /// The negotiated cipher.
    pub cipher: Encryption,
    /// SKEYID.
    pub skeyid: Zeroizing<Vec<u8>>,
    /// SKEYID_d: keys Quick Mode's KEYMAT.
    pub skeyid_d: Zeroizing<Vec<u8>>,
    /// SKEYID_a: authenticates Phase 2 and Informational messages.
    pub skeyid_a: Zeroizing<Vec<u8>>,
    /// SKEYID_e.
    pub skeyid_e: Zeroizing<Vec<u8>>,
    /// The cipher key, derived from SKEYID_e (expanded per Appendix B).
    pub enc_key: Zeroizing<Vec<u8>>,
    /// The IV of the first encrypted message: hash(g^xi | g^xr), cut to
    /// the block size.
    pub iv: Vec<u8>,
}

impl std::fmt::Debug for Phase1Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Phase1Keys")
            .field("hash", &self.hash)
            .field("cipher", &self.cipher)
            .field("keys", &"<redacted>")
            .finish()
    }
}

/// The inputs of Phase 1 keying with a pre-shared key.
pub struct Phase1Input<'a> {
    /// Negotiated hash.
    pub hash: Integrity,
    /// Negotiated cipher (with its key length).
    pub cipher: Encryption,
    /// The pre-shared key.
    pub psk: &'a [u8],
    /// Ni_b, Nr_b: the nonce payloads' bodies.
    pub ni: &'a [u8],
    /// Nr_b.
    pub nr: &'a [u8],
    /// g^xy.
    pub g_xy: &'a [u8],
    /// g^xi, g^xr: the KE payloads' bodies.
    pub g_xi: &'a [u8],
    /// g^xr.
    pub g_xr: &'a [u8],
    /// CKY-I, CKY-R.
    pub cky_i: [u8; 8],
    /// CKY-R.
    pub cky_r: [u8; 8],
}

/// SKEYID, SKEYID_d/a/e, the cipher key and the first IV.
pub fn phase1_psk(input: &Phase1Input<'_>) -> Result<Phase1Keys, KeyError> {
    let _ = input;
    unimplemented!()
}

/// HASH_I (`initiator`) or HASH_R (RFC 2409 s5):
/// prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b), and for
/// HASH_R g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b. `sa_i_b` is the
/// initiator's SA payload body, `id_b` the sender's ID payload body.
pub fn phase1_hash(
    keys: &Phase1Keys,
    input: &Phase1Input<'_>,
    initiator: bool,
    sa_i_b: &[u8],
    id_b: &[u8],
) -> Result<Vec<u8>, KeyError> {
    let _ = (keys, input, initiator, sa_i_b, id_b);
    unimplemented!()
}

/// The IV of a Quick Mode or Informational exchange: hash(last Phase 1
/// CBC block | M-ID), cut to the block size (Appendix B).
pub fn phase2_iv(
    keys: &Phase1Keys,
    last_phase1_block: &[u8],
    message_id: u32,
) -> Result<Vec<u8>, KeyError> {
    let _ = (keys, last_phase1_block, message_id);
    unimplemented!()
}

/// KEYMAT for one SA (RFC 2409 s5.5): prf(SKEYID_d, [g(qm)^xy |] protocol
/// | SPI | Ni_b | Nr_b), expanded to `len` octets as K1 | K2 | ... with
/// Kn+1 = prf(SKEYID_d, Kn | [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b).
/// `spi` is the SPI of the SA being keyed (the receiver's choice).
pub fn keymat(
    keys: &Phase1Keys,
    g_qm: Option<&[u8]>,
    protocol: u8,
    spi: u32,
    ni_b: &[u8],
    nr_b: &[u8],
    len: usize,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let _ = (keys, g_qm, protocol, spi, ni_b, nr_b, len);
    unimplemented!()
}

/// Quick Mode HASH(1) = prf(SKEYID_a, M-ID | rest), HASH(2) = prf(SKEYID_a,
/// M-ID | Ni_b | rest), and Informational HASH(1) (= HASH(1) form):
/// `rest` is every payload after the HASH payload, with generic headers,
/// as sent. `ni_b` is `Some` for HASH(2).
pub fn qm_hash(
    keys: &Phase1Keys,
    message_id: u32,
    ni_b: Option<&[u8]>,
    rest: &[u8],
) -> Result<Vec<u8>, KeyError> {
    let _ = (keys, message_id, ni_b, rest);
    unimplemented!()
}

/// Quick Mode HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b).
pub fn qm_hash3(
    keys: &Phase1Keys,
    message_id: u32,
    ni_b: &[u8],
    nr_b: &[u8],
) -> Result<Vec<u8>, KeyError> {
    let _ = (keys, message_id, ni_b, nr_b);
    unimplemented!()
}

/// The block size of a Phase 1 cipher (8 for 3DES, 16 for AES).
pub fn block_len(cipher: Encryption) -> Result<usize, KeyError> {
    match cipher {
        Encryption::TripleDes => Ok(8),
        Encryption::AesCbc(_) => Ok(16),
        other => Err(KeyError::UnsupportedCipher(other)),
    }
}

/// Encrypts `plaintext` (padded here with zeros to the block size, the
/// last octet the pad length minus one as strongSwan does) in CBC with
/// `iv`; on return `iv` holds the last ciphertext block, the IV of the
/// next message of this exchange.
pub fn encrypt(keys: &Phase1Keys, iv: &mut Vec<u8>, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
    let _ = (keys, iv, plaintext);
    unimplemented!()
}

/// Decrypts a body in CBC with `iv`; on return `iv` holds the last
/// ciphertext block. The plaintext keeps its padding (the payload chain
/// says where it ends).
pub fn decrypt(
    keys: &Phase1Keys,
    iv: &mut Vec<u8>,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let _ = (keys, iv, ciphertext);
    unimplemented!()
}
