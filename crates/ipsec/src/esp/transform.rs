//! The keyed ciphers and integrity functions of an ESP SA.
//!
//! - AES-GCM with a 16-octet ICV (RFC 4106) on ring: the key material is the
//!   AES key followed by a 4-octet salt (RFC 4106 s8.1); the nonce is the
//!   salt and the 8-octet explicit IV (s4).
//! - AES-CBC (RFC 3602) and 3DES-CBC (RFC 2451) on RustCrypto, with
//!   HMAC-SHA1-96 (RFC 2404) or HMAC-SHA-256-128 (RFC 4868).
//!
//! Key schedules are zeroized on drop where the crate allows it (`aes`,
//! `des` with their `zeroize` feature); ring's AES-GCM key schedule is not
//! (ring offers no way), and the keyed HMAC state (the hashed inner and
//! outer pads) lives in RustCrypto's `Hmac`, which does not zeroize either.
//! The raw keys handed in are never stored.

use aes::{Aes128, Aes192, Aes256};
use cipher::{BlockDecryptMut, BlockEncryptMut, InnerIvInit, KeyInit};
use des::TdesEde3;
use hmac::{Hmac, Mac};
use ring::aead;
use sha1::Sha1;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{EspError, Integrity, Transform};

/// The block cipher of a CBC suite, keyed.
#[derive(Clone)]
pub(crate) enum BlockCipher {
    Aes128(Aes128),
    Aes192(Aes192),
    Aes256(Aes256),
    TripleDes(TdesEde3),
}

/// The keyed integrity function of a CBC suite.
#[derive(Clone)]
pub(crate) enum Mac96 {
    Sha1(Hmac<Sha1>),
    Sha256(Hmac<Sha256>),
}

/// An SA's keyed transform. One per SA, made once and never moved on the
/// data path, so the size difference of the variants does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Keyed {
    Gcm {
        key: aead::LessSafeKey,
        salt: Zeroizing<[u8; 4]>,
    },
    Cbc {
        cipher: BlockCipher,
        mac: Mac96,
    },
}

/// The wrong key length, named.
fn key_len(what: &'static str, got: usize, expected: &'static str) -> EspError {
    EspError::KeyLength {
        what,
        got,
        expected,
    }
}

impl Keyed {
    /// Keys `transform` with `encryption` (for AES-GCM: key and salt) and
    /// `integrity` (empty for AES-GCM).
    pub(crate) fn new(
        transform: Transform,
        encryption: &[u8],
        integrity: &[u8],
    ) -> Result<Keyed, EspError> {
        match transform {
            Transform::AesGcm16 => {
                if !integrity.is_empty() {
                    return Err(key_len(
                        "AES-GCM integrity key",
                        integrity.len(),
                        "0 (the AEAD has its own ICV)",
                    ));
                }
                let alg = match encryption.len() {
                    20 => &aead::AES_128_GCM,
                    36 => &aead::AES_256_GCM,
                    n => {
                        return Err(key_len(
                            "AES-GCM key material",
                            n,
                            "20 or 36 (16 or 32 key + 4 salt, RFC 4106 s8.1)",
                        ))
                    }
                };
                let (k, s) = encryption.split_at(encryption.len() - 4);
                let key = aead::UnboundKey::new(alg, k)
                    .map_err(|_| key_len("AES-GCM key", k.len(), "16 or 32 (ring refused it)"))?;
                let mut salt = Zeroizing::new([0u8; 4]);
                salt.copy_from_slice(s);
                Ok(Keyed::Gcm {
                    key: aead::LessSafeKey::new(key),
                    salt,
                })
            }
            Transform::AesCbc(integ) | Transform::TripleDesCbc(integ) => {
                let cipher = if let Transform::AesCbc(_) = transform {
                    match encryption.len() {
                        16 => BlockCipher::Aes128(Aes128::new_from_slice(encryption).expect("16")),
                        24 => BlockCipher::Aes192(Aes192::new_from_slice(encryption).expect("24")),
                        32 => BlockCipher::Aes256(Aes256::new_from_slice(encryption).expect("32")),
                        n => return Err(key_len("AES-CBC key", n, "16, 24 or 32 (RFC 3602 s5)")),
                    }
                } else {
                    match encryption.len() {
                        24 => BlockCipher::TripleDes(
                            TdesEde3::new_from_slice(encryption).expect("24"),
                        ),
                        n => return Err(key_len("3DES-CBC key", n, "24 (RFC 2451 s2.3)")),
                    }
                };
                let mac = match integ {
                    Integrity::HmacSha1_96 => {
                        if integrity.len() != 20 {
                            return Err(key_len(
                                "HMAC-SHA1-96 key",
                                integrity.len(),
                                "20 (RFC 2404 s3)",
                            ));
                        }
                        Mac96::Sha1(
                            <Hmac<_> as Mac>::new_from_slice(integrity).expect("any length"),
                        )
                    }
                    Integrity::HmacSha256_128 => {
                        if integrity.len() != 32 {
                            return Err(key_len(
                                "HMAC-SHA-256-128 key",
                                integrity.len(),
                                "32 (RFC 4868 s2.1.1)",
                            ));
                        }
                        Mac96::Sha256(
                            <Hmac<_> as Mac>::new_from_slice(integrity).expect("any length"),
                        )
                    }
                };
                Ok(Keyed::Cbc { cipher, mac })
            }
        }
    }
}

impl BlockCipher {
    /// CBC-encrypts `data` (a whole number of blocks) in place with `iv`.
    pub(crate) fn encrypt(&self, iv: &[u8], data: &mut [u8]) {
        fn run<C>(c: &C, iv: &[u8], data: &mut [u8])
        where
            C: cipher::BlockEncrypt + cipher::BlockCipher + Clone,
        {
            let mut e = cbc::Encryptor::<C>::inner_iv_slice_init(c.clone(), iv).expect("iv length");
            for block in data.chunks_exact_mut(C::block_size()) {
                e.encrypt_block_mut(block.into());
            }
        }
        match self {
            BlockCipher::Aes128(c) => run(c, iv, data),
            BlockCipher::Aes192(c) => run(c, iv, data),
            BlockCipher::Aes256(c) => run(c, iv, data),
            BlockCipher::TripleDes(c) => run(c, iv, data),
        }
    }

    /// CBC-decrypts `data` (a whole number of blocks) in place with `iv`.
    pub(crate) fn decrypt(&self, iv: &[u8], data: &mut [u8]) {
        fn run<C>(c: &C, iv: &[u8], data: &mut [u8])
        where
            C: cipher::BlockDecrypt + cipher::BlockCipher + Clone,
        {
            let mut d = cbc::Decryptor::<C>::inner_iv_slice_init(c.clone(), iv).expect("iv length");
            for block in data.chunks_exact_mut(C::block_size()) {
                d.decrypt_block_mut(block.into());
            }
        }
        match self {
            BlockCipher::Aes128(c) => run(c, iv, data),
            BlockCipher::Aes192(c) => run(c, iv, data),
            BlockCipher::Aes256(c) => run(c, iv, data),
            BlockCipher::TripleDes(c) => run(c, iv, data),
        }
    }
}

impl Mac96 {
    /// The truncated HMAC of `parts` concatenated, into `out` (`icv_len`).
    pub(crate) fn compute(&self, parts: &[&[u8]], out: &mut [u8]) {
        match self {
            Mac96::Sha1(m) => {
                let mut m = m.clone();
                for p in parts {
                    m.update(p);
                }
                out.copy_from_slice(&m.finalize().into_bytes()[..12]);
            }
            Mac96::Sha256(m) => {
                let mut m = m.clone();
                for p in parts {
                    m.update(p);
                }
                out.copy_from_slice(&m.finalize().into_bytes()[..16]);
            }
        }
    }

    /// Whether `icv` is the truncated HMAC of `parts`, compared in constant
    /// time.
    pub(crate) fn verify(&self, parts: &[&[u8]], icv: &[u8]) -> bool {
        match self {
            Mac96::Sha1(m) => {
                let mut m = m.clone();
                for p in parts {
                    m.update(p);
                }
                m.verify_truncated_left(icv).is_ok()
            }
            Mac96::Sha256(m) => {
                let mut m = m.clone();
                for p in parts {
                    m.update(p);
                }
                m.verify_truncated_left(icv).is_ok()
            }
        }
    }
}

/// The RFC 4106 s4 nonce: salt, then the explicit IV.
pub(crate) fn gcm_nonce(salt: &[u8; 4], iv: &[u8; 8]) -> aead::Nonce {
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(salt);
    n[4..].copy_from_slice(iv);
    aead::Nonce::assume_unique_for_key(n)
}

#[cfg(test)]
mod tests {
    //! The primitives against the vectors of their specifications.
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// "The Galois/Counter Mode of Operation" (McGrew, Viega), Appendix B
    /// test cases 3 and 4 (AES-128) and 15 and 16 (AES-256): the IV
    /// cafebabefacedbaddecaf888 is the RFC 4106 nonce with salt cafebabe
    /// and explicit IV facedbaddecaf888.
    #[test]
    fn gcm_spec_test_cases_3_4_15_16() {
        let p = hex(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72
             1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
        );
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let k128 = "feffe9928665731c6d6a8f9467308308";
        let c3 = "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e
                  21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985";
        let c15 = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa
                   8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad";
        let cases: [(&str, String, usize, bool, &str, &str); 4] = [
            (
                "3",
                k128.into(),
                64,
                false,
                c3,
                "4d5c2af327cd64a62cf35abd2ba6fab4",
            ),
            (
                "4",
                k128.into(),
                60,
                true,
                c3,
                "5bc94fbc3221a5db94fae95ae7121a47",
            ),
            (
                "15",
                format!("{k128}{k128}"),
                64,
                false,
                c15,
                "b094dac5d93471bdec1a502270e3cc6c",
            ),
            (
                "16",
                format!("{k128}{k128}"),
                60,
                true,
                c15,
                "76fc6ece0f4e1768cddf8853bb2d551b",
            ),
        ];
        for (name, key, len, with_aad, c, t) in cases {
            let mut material = hex(&key);
            material.extend(hex("cafebabe"));
            let keyed = Keyed::new(Transform::AesGcm16, &material, &[]).unwrap();
            let Keyed::Gcm { key, salt } = &keyed else {
                panic!("not GCM")
            };
            let iv: [u8; 8] = hex("facedbaddecaf888").try_into().unwrap();
            let a: &[u8] = if with_aad { &aad } else { &[] };
            let mut buf = p[..len].to_vec();
            let tag = key
                .seal_in_place_separate_tag(gcm_nonce(salt, &iv), aead::Aad::from(a), &mut buf)
                .unwrap();
            assert_eq!(buf, hex(c)[..len], "test case {name} ciphertext");
            assert_eq!(tag.as_ref(), hex(t), "test case {name} tag");
        }
    }

    /// RFC 3602 s4, cases 1 to 4 (AES-128-CBC).
    #[test]
    fn aes_cbc_rfc3602_cases_1_to_4() {
        let cases = [
            (
                "06a9214036b8a15b512e03d534120006",
                "3dafba429d9eb430b422da802c9fac41",
                b"Single block msg".to_vec(),
                "e353779c1079aeb82708942dbe77181a",
            ),
            (
                "c286696d887c9aa0611bbb3e2025a45a",
                "562e17996d093d28ddb3ba695a2e6f58",
                hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"),
                "d296cd94c2cccf8a3a863028b5e1dc0a7586602d253cfff91b8266bea6d61ab1",
            ),
            (
                "6c3ea0477630ce21a2ce334aa746c2cd",
                "c782dc4c098c66cbd9cd27d825682c81",
                b"This is a 48-byte message (exactly 3 AES blocks)".to_vec(),
                "d0a02b3836451753d493665d33f0e8862dea54cdb293abc7506939276772f8d5
                 021c19216bad525c8579695d83ba2684",
            ),
        ];
        for (k, iv, p, c) in cases {
            let cipher = BlockCipher::Aes128(Aes128::new_from_slice(&hex(k)).unwrap());
            let mut buf = p.clone();
            cipher.encrypt(&hex(iv), &mut buf);
            assert_eq!(buf, hex(c));
            cipher.decrypt(&hex(iv), &mut buf);
            assert_eq!(buf, p);
        }
    }

    /// FIPS 81 Appendix C's CBC example ("Now is the time for all ", key
    /// 0123456789abcdef, IV 1234567890abcdef) through 3DES-EDE3 with three
    /// equal keys, which is single DES (RFC 2451 s2.3 keying note).
    #[test]
    fn triple_des_cbc_with_equal_keys_is_fips81_des_cbc() {
        let k = hex("0123456789abcdef0123456789abcdef0123456789abcdef");
        let cipher = BlockCipher::TripleDes(TdesEde3::new_from_slice(&k).unwrap());
        let mut buf = b"Now is the time for all ".to_vec();
        cipher.encrypt(&hex("1234567890abcdef"), &mut buf);
        assert_eq!(buf, hex("e5c7cdde872bf27c43e934008c389c0f683788499a7c05f6"));
        cipher.decrypt(&hex("1234567890abcdef"), &mut buf);
        assert_eq!(buf, b"Now is the time for all ");
    }

    fn mac(integ: Integrity, key: &[u8]) -> Mac96 {
        let enc = [0u8; 16];
        match Keyed::new(Transform::AesCbc(integ), &enc, key) {
            Ok(Keyed::Cbc { mac, .. }) => mac.clone(),
            _ => panic!("key refused"),
        }
    }

    /// RFC 2202 s3 test cases 1, 2 and 3 (keys of 20 octets, as RFC 2404
    /// requires), truncated to 96 bits as RFC 2404 s2 says.
    #[test]
    fn hmac_sha1_96_rfc2202() {
        let cases = [
            ([0x0b; 20], b"Hi There".to_vec(), "b617318655057264e28bc0b6"),
            ([0xaa; 20], vec![0xdd; 50], "125d7342b9ac11cd91a39af4"),
        ];
        for (key, data, icv) in cases {
            let m = mac(Integrity::HmacSha1_96, &key);
            let mut out = [0u8; 12];
            m.compute(&[&data], &mut out);
            assert_eq!(out.to_vec(), hex(icv));
            assert!(m.verify(&[&data[..3], &data[3..]], &out));
            out[11] ^= 1;
            assert!(!m.verify(&[&data], &out));
        }
    }

    /// RFC 4868 s2.7.2.1 (AUTH256 test cases 1 and 2: RFC 4231's data with
    /// the 32-octet keys RFC 4868 s2.1.1 requires), truncated to 128 bits.
    #[test]
    fn hmac_sha256_128_rfc4868() {
        let m = mac(Integrity::HmacSha256_128, &[0x0b; 32]);
        let mut out = [0u8; 16];
        m.compute(&[b"Hi There"], &mut out);
        assert_eq!(out.to_vec(), hex("198a607eb44bfbc69903a0f1cf2bbdc5"));
        let m = mac(
            Integrity::HmacSha256_128,
            b"JefeJefeJefeJefeJefeJefeJefeJefe",
        );
        m.compute(&[b"what do ya want for nothing?"], &mut out);
        assert_eq!(out.to_vec(), hex("167f928588c5cc2eef8e3093caa0e87c"));
    }
}
