//! IKEv1 keying (RFC 2409 s5, s5.5, Appendix B).
//!
//! Checked against values captured from strongSwan 5.9.8
//! (tests/ike_keys_strongswan.rs).
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
//!
//! Leaves out: signature and public key encryption authentication (only
//! SKEYID for pre-shared keys), negotiated PRFs other than the hash's HMAC.

use cipher::{BlockCipher, BlockDecryptMut, BlockEncryptMut, KeyInit, KeyIvInit};
use hmac::{Hmac, Mac};
use sha2::Digest;
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
    /// An IV that is not one block long (the caller's bug: IVs are made
    /// here).
    #[error("IV of {len} octets for a {block}-octet block")]
    IvLength {
        /// Its length.
        len: usize,
        /// The block size.
        block: usize,
    },
    /// A key in [`Phase1Keys`] that is not the cipher's length.
    #[error("{cipher:?} key of {len} octets")]
    KeyLength {
        /// The cipher.
        cipher: Encryption,
        /// The key's length.
        len: usize,
    },
}

/// prf(key, data[0] | data[1] | ...): HMAC with `hash`.
pub fn prf(hash: Integrity, key: &[u8], data: &[&[u8]]) -> Result<Vec<u8>, KeyError> {
    macro_rules! hmac {
        ($digest:ty) => {{
            let mut mac =
                <Hmac<$digest> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
            for part in data {
                mac.update(part);
            }
            mac.finalize().into_bytes().to_vec()
        }};
    }
    Ok(match hash {
        Integrity::Md5 => hmac!(md5::Md5),
        Integrity::Sha1 => hmac!(sha1::Sha1),
        Integrity::Sha256 => hmac!(sha2::Sha256),
        Integrity::Sha384 => hmac!(sha2::Sha384),
        Integrity::Sha512 => hmac!(sha2::Sha512),
    })
}

/// hash(data[0] | ...): the plain hash (for IVs).
pub fn hash(hash: Integrity, data: &[&[u8]]) -> Result<Vec<u8>, KeyError> {
    fn digest<D: Digest>(data: &[&[u8]]) -> Vec<u8> {
        let mut h = D::new();
        for part in data {
            h.update(part);
        }
        h.finalize().to_vec()
    }
    Ok(match hash {
        Integrity::Md5 => digest::<md5::Md5>(data),
        Integrity::Sha1 => digest::<sha1::Sha1>(data),
        Integrity::Sha256 => digest::<sha2::Sha256>(data),
        Integrity::Sha384 => digest::<sha2::Sha384>(data),
        Integrity::Sha512 => digest::<sha2::Sha512>(data),
    })
}

// `hash` is also the name of parameters and fields below.
use self::hash as hash_fn;

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

/// The key length of a Phase 1 cipher in octets: 24 for 3DES (RFC 2451),
/// the negotiated Key Length attribute for AES-CBC (RFC 3602: 128, 192 or
/// 256 bits).
pub fn key_len(cipher: Encryption) -> Result<usize, KeyError> {
    match cipher {
        Encryption::TripleDes => Ok(24),
        Encryption::AesCbc(bits @ (128 | 192 | 256)) => Ok(usize::from(bits / 8)),
        other => Err(KeyError::UnsupportedCipher(other)),
    }
}

/// SKEYID, SKEYID_d/a/e, the cipher key and the first IV.
///
/// RFC 2409 s5: SKEYID = prf(pre-shared-key, Ni_b | Nr_b);
/// SKEYID_d = prf(SKEYID, g^xy | CKY-I | CKY-R | 0);
/// SKEYID_a = prf(SKEYID, SKEYID_d | g^xy | CKY-I | CKY-R | 1);
/// SKEYID_e = prf(SKEYID, SKEYID_a | g^xy | CKY-I | CKY-R | 2).
/// Appendix B: the key is SKEYID_e's first octets, or those of
/// [`expand_enc_key`] when SKEYID_e is shorter than the key.
pub fn phase1_psk(input: &Phase1Input<'_>) -> Result<Phase1Keys, KeyError> {
    let hash = input.hash;
    let block = block_len(input.cipher)?;
    let key_len = key_len(input.cipher)?;
    let (cky_i, cky_r) = (&input.cky_i[..], &input.cky_r[..]);
    let skeyid = Zeroizing::new(prf(hash, input.psk, &[input.ni, input.nr])?);
    let skeyid_d = Zeroizing::new(prf(hash, &skeyid, &[input.g_xy, cky_i, cky_r, &[0]])?);
    let skeyid_a = Zeroizing::new(prf(
        hash,
        &skeyid,
        &[&skeyid_d, input.g_xy, cky_i, cky_r, &[1]],
    )?);
    let skeyid_e = Zeroizing::new(prf(
        hash,
        &skeyid,
        &[&skeyid_a, input.g_xy, cky_i, cky_r, &[2]],
    )?);
    let enc_key = if skeyid_e.len() >= key_len {
        Zeroizing::new(skeyid_e[..key_len].to_vec())
    } else {
        expand_enc_key(hash, &skeyid_e, key_len)?
    };
    let mut iv = hash_fn(hash, &[input.g_xi, input.g_xr])?;
    iv.truncate(block);
    Ok(Phase1Keys {
        hash,
        cipher: input.cipher,
        skeyid,
        skeyid_d,
        skeyid_a,
        skeyid_e,
        enc_key,
        iv,
    })
}

/// RFC 2409 Appendix B: Ka = K1 | K2 | K3 ... cut to `len`, with
/// K1 = prf(SKEYID_e, 0) (one zero octet) and Kn = prf(SKEYID_e, Kn-1).
pub fn expand_enc_key(
    hash: Integrity,
    skeyid_e: &[u8],
    len: usize,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let mut out = Zeroizing::new(Vec::with_capacity(len + 64));
    let mut k = Zeroizing::new(prf(hash, skeyid_e, &[&[0]])?);
    loop {
        out.extend_from_slice(&k);
        if out.len() >= len {
            break;
        }
        k = Zeroizing::new(prf(hash, skeyid_e, &[&k])?);
    }
    out.truncate(len);
    Ok(out)
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
    let (g_first, g_second, cky_first, cky_second) = if initiator {
        (input.g_xi, input.g_xr, &input.cky_i, &input.cky_r)
    } else {
        (input.g_xr, input.g_xi, &input.cky_r, &input.cky_i)
    };
    prf(
        keys.hash,
        &keys.skeyid,
        &[g_first, g_second, cky_first, cky_second, sa_i_b, id_b],
    )
}

/// The IV of a Quick Mode or Informational exchange: hash(last Phase 1
/// CBC block | M-ID), cut to the block size (Appendix B).
pub fn phase2_iv(
    keys: &Phase1Keys,
    last_phase1_block: &[u8],
    message_id: u32,
) -> Result<Vec<u8>, KeyError> {
    let block = block_len(keys.cipher)?;
    let mut iv = hash_fn(keys.hash, &[last_phase1_block, &message_id.to_be_bytes()])?;
    iv.truncate(block);
    Ok(iv)
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
    let spi = spi.to_be_bytes();
    let seed: [&[u8]; 5] = [g_qm.unwrap_or(&[]), &[protocol], &spi, ni_b, nr_b];
    let mut out = Zeroizing::new(Vec::with_capacity(len + 64));
    let mut k = Zeroizing::new(prf(keys.hash, &keys.skeyid_d, &seed)?);
    loop {
        out.extend_from_slice(&k);
        if out.len() >= len {
            break;
        }
        let mut next: [&[u8]; 6] = [&[]; 6];
        next[0] = &k;
        next[1..].copy_from_slice(&seed);
        k = Zeroizing::new(prf(keys.hash, &keys.skeyid_d, &next)?);
    }
    out.truncate(len);
    Ok(out)
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
    prf(
        keys.hash,
        &keys.skeyid_a,
        &[&message_id.to_be_bytes(), ni_b.unwrap_or(&[]), rest],
    )
}

/// Quick Mode HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b).
pub fn qm_hash3(
    keys: &Phase1Keys,
    message_id: u32,
    ni_b: &[u8],
    nr_b: &[u8],
) -> Result<Vec<u8>, KeyError> {
    prf(
        keys.hash,
        &keys.skeyid_a,
        &[&[0], &message_id.to_be_bytes(), ni_b, nr_b],
    )
}

/// The block size of a Phase 1 cipher (8 for 3DES, 16 for AES).
pub fn block_len(cipher: Encryption) -> Result<usize, KeyError> {
    match cipher {
        Encryption::TripleDes => Ok(8),
        Encryption::AesCbc(_) => Ok(16),
        other => Err(KeyError::UnsupportedCipher(other)),
    }
}

/// Encrypts `plaintext` in CBC with `iv` after padding it with zero octets
/// to the next block boundary (a whole block of them when it is already
/// aligned), as strongSwan 5.9 does: its encrypted_payload.c logs the
/// "padding" as all zeros, the last octet no length. RFC 2409 s5.3 lets
/// the receiver ignore padding. On return `iv` holds the last ciphertext
/// block, the IV of the next message of this exchange.
pub fn encrypt(keys: &Phase1Keys, iv: &mut Vec<u8>, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
    let block = block_len(keys.cipher)?;
    let pad = block - plaintext.len() % block;
    let mut data = Vec::with_capacity(plaintext.len() + pad);
    data.extend_from_slice(plaintext);
    data.resize(plaintext.len() + pad, 0);
    cbc(keys, iv, &mut data, Direction::Encrypt)?;
    *iv = data[data.len() - block..].to_vec();
    Ok(data)
}

/// Decrypts a body in CBC with `iv`; on return `iv` holds the last
/// ciphertext block. The plaintext keeps its padding (the payload chain
/// says where it ends).
pub fn decrypt(
    keys: &Phase1Keys,
    iv: &mut Vec<u8>,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let block = block_len(keys.cipher)?;
    if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(block) {
        return Err(KeyError::NotBlockAligned {
            len: ciphertext.len(),
            block,
        });
    }
    let mut data = Zeroizing::new(ciphertext.to_vec());
    cbc(keys, iv, &mut data, Direction::Decrypt)?;
    *iv = ciphertext[ciphertext.len() - block..].to_vec();
    Ok(data)
}

#[derive(Clone, Copy)]
enum Direction {
    Encrypt,
    Decrypt,
}

/// CBC over whole blocks in place, with the cipher and key of `keys`.
fn cbc(
    keys: &Phase1Keys,
    iv: &[u8],
    data: &mut [u8],
    direction: Direction,
) -> Result<(), KeyError> {
    fn run<C>(key: &[u8], iv: &[u8], data: &mut [u8], direction: Direction)
    where
        C: BlockCipher + cipher::BlockEncrypt + cipher::BlockDecrypt + KeyInit,
    {
        let block = C::block_size();
        match direction {
            Direction::Encrypt => {
                let mut e = cbc::Encryptor::<C>::new_from_slices(key, iv)
                    .expect("key and IV lengths checked before");
                for chunk in data.chunks_exact_mut(block) {
                    e.encrypt_block_mut(chunk.into());
                }
            }
            Direction::Decrypt => {
                let mut d = cbc::Decryptor::<C>::new_from_slices(key, iv)
                    .expect("key and IV lengths checked before");
                for chunk in data.chunks_exact_mut(block) {
                    d.decrypt_block_mut(chunk.into());
                }
            }
        }
    }
    let key: &[u8] = &keys.enc_key;
    let block = block_len(keys.cipher)?;
    if key.len() != key_len(keys.cipher)? {
        return Err(KeyError::KeyLength {
            cipher: keys.cipher,
            len: key.len(),
        });
    }
    if iv.len() != block {
        return Err(KeyError::IvLength {
            len: iv.len(),
            block,
        });
    }
    match keys.cipher {
        Encryption::TripleDes => run::<des::TdesEde3>(key, iv, data, direction),
        Encryption::AesCbc(128) => run::<aes::Aes128>(key, iv, data, direction),
        Encryption::AesCbc(192) => run::<aes::Aes192>(key, iv, data, direction),
        Encryption::AesCbc(256) => run::<aes::Aes256>(key, iv, data, direction),
        other => return Err(KeyError::UnsupportedCipher(other)),
    }
    Ok(())
}

#[cfg(test)]
mod tests;
