//! Keying rules on their own: the Appendix B expansion, KEYMAT's, CBC
//! round trips with IV chaining and padding, refused inputs. The values
//! strongSwan computed are checked in tests/ike_keys_strongswan.rs.

use super::*;

fn keys_for(cipher: Encryption, hash: Integrity) -> Phase1Keys {
    let g_xi = [0x11u8; 128];
    let g_xr = [0x22u8; 128];
    let g_xy = [0x33u8; 128];
    let input = Phase1Input {
        hash,
        cipher,
        psk: b"lab-psk",
        ni: &[0x44; 32],
        nr: &[0x55; 32],
        g_xy: &g_xy,
        g_xi: &g_xi,
        g_xr: &g_xr,
        cky_i: [1, 2, 3, 4, 5, 6, 7, 8],
        cky_r: [9, 10, 11, 12, 13, 14, 15, 16],
    };
    phase1_psk(&input).unwrap()
}

const CIPHERS: [Encryption; 4] = [
    Encryption::TripleDes,
    Encryption::AesCbc(128),
    Encryption::AesCbc(192),
    Encryption::AesCbc(256),
];

#[test]
fn key_lengths_follow_the_cipher() {
    for (cipher, len) in CIPHERS.into_iter().zip([24, 16, 24, 32]) {
        for hash in [
            Integrity::Md5,
            Integrity::Sha1,
            Integrity::Sha256,
            Integrity::Sha384,
            Integrity::Sha512,
        ] {
            let k = keys_for(cipher, hash);
            assert_eq!(k.enc_key.len(), len, "{cipher:?} {hash:?}");
            assert_eq!(k.iv.len(), block_len(cipher).unwrap());
            assert_eq!(k.skeyid.len(), prf(hash, b"", &[]).unwrap().len());
        }
    }
}

/// Appendix B by hand: K1 = prf(SKEYID_e, 0), K2 = prf(SKEYID_e, K1),
/// K3 = prf(SKEYID_e, K2); the key is their concatenation cut to length.
#[test]
fn expansion_rule() {
    let k = keys_for(Encryption::AesCbc(256), Integrity::Md5);
    let e = &k.skeyid_e[..];
    assert_eq!(e.len(), 16);
    let k1 = prf(Integrity::Md5, e, &[&[0]]).unwrap();
    let k2 = prf(Integrity::Md5, e, &[&k1]).unwrap();
    assert_eq!(k.enc_key.as_slice(), [k1.clone(), k2.clone()].concat());
    // 3DES with MD5: 24 of K1 | K2.
    let ka = expand_enc_key(Integrity::Md5, e, 24).unwrap();
    assert_eq!(ka.as_slice(), &[k1.clone(), k2.clone()].concat()[..24]);
    let k3 = prf(Integrity::Md5, e, &[&k2]).unwrap();
    let ka = expand_enc_key(Integrity::Md5, e, 40).unwrap();
    assert_eq!(ka.as_slice(), &[k1, k2, k3].concat()[..40]);
    // Long enough: SKEYID_e's first octets, no expansion.
    let k = keys_for(Encryption::AesCbc(256), Integrity::Sha256);
    assert_eq!(k.enc_key.as_slice(), &k.skeyid_e[..32]);
    let k = keys_for(Encryption::TripleDes, Integrity::Sha256);
    assert_eq!(k.enc_key.as_slice(), &k.skeyid_e[..24]);
}

#[test]
fn keymat_expansion_rule() {
    let k = keys_for(Encryption::AesCbc(128), Integrity::Sha1);
    let (ni, nr) = ([7u8; 16], [8u8; 16]);
    let spi = 0x0102_0304u32.to_be_bytes();
    let k1 = prf(Integrity::Sha1, &k.skeyid_d, &[&[3], &spi, &ni, &nr]).unwrap();
    let k2 = prf(Integrity::Sha1, &k.skeyid_d, &[&k1, &[3], &spi, &ni, &nr]).unwrap();
    let keymat = keymat(&k, None, 3, 0x0102_0304, &ni, &nr, 36).unwrap();
    assert_eq!(keymat.as_slice(), &[k1, k2].concat()[..36]);
    // With PFS g(qm)^xy comes first, in K1 and after Kn in the others.
    let g = [9u8; 128];
    let k1 = prf(Integrity::Sha1, &k.skeyid_d, &[&g, &[3], &spi, &ni, &nr]).unwrap();
    let k2 = prf(
        Integrity::Sha1,
        &k.skeyid_d,
        &[&k1, &g, &[3], &spi, &ni, &nr],
    )
    .unwrap();
    let pfs = super::keymat(&k, Some(&g), 3, 0x0102_0304, &ni, &nr, 40).unwrap();
    assert_eq!(pfs.as_slice(), [k1, k2].concat());
}

#[test]
fn encrypt_decrypt_round_trip_with_iv_chaining() {
    for cipher in CIPHERS {
        let k = keys_for(cipher, Integrity::Sha256);
        let block = block_len(cipher).unwrap();
        for len in [0, 1, block - 1, block, block + 1, 3 * block, 100] {
            let plain: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x5a).collect();
            let mut iv_out = k.iv.clone();
            let sealed = encrypt(&k, &mut iv_out, &plain).unwrap();
            // Zero padding up to the next boundary: a whole block when
            // already aligned (strongSwan's rule).
            assert_eq!(sealed.len(), (len / block + 1) * block, "{cipher:?} {len}");
            assert_eq!(iv_out, sealed[sealed.len() - block..]);
            let mut iv_in = k.iv.clone();
            let opened = decrypt(&k, &mut iv_in, &sealed).unwrap();
            assert_eq!(&opened[..len], plain.as_slice());
            assert!(opened[len..].iter().all(|&b| b == 0));
            assert_eq!(iv_in, iv_out);
            // The next message chains from there: the same plaintext
            // encrypts differently.
            let again = encrypt(&k, &mut iv_out, &plain).unwrap();
            assert_ne!(again, sealed);
            let opened = decrypt(&k, &mut iv_in, &again).unwrap();
            assert_eq!(&opened[..len], plain.as_slice());
        }
    }
}

#[test]
fn decrypt_with_the_wrong_iv_garbles_only_the_first_block() {
    let k = keys_for(Encryption::AesCbc(128), Integrity::Sha1);
    let plain = [0x42u8; 48];
    let sealed = encrypt(&k, &mut k.iv.clone(), &plain).unwrap();
    let mut wrong = vec![0u8; 16];
    let opened = decrypt(&k, &mut wrong, &sealed).unwrap();
    assert_ne!(&opened[..16], &plain[..16]);
    assert_eq!(&opened[16..48], &plain[16..]);
}

#[test]
fn refused_inputs() {
    let k = keys_for(Encryption::TripleDes, Integrity::Sha1);
    let mut iv = k.iv.clone();
    assert_eq!(
        decrypt(&k, &mut iv, &[0; 12]).unwrap_err(),
        KeyError::NotBlockAligned { len: 12, block: 8 }
    );
    assert_eq!(
        decrypt(&k, &mut iv, &[]).unwrap_err(),
        KeyError::NotBlockAligned { len: 0, block: 8 }
    );
    assert_eq!(iv, k.iv, "a refused body leaves the IV alone");
    let mut short = vec![0u8; 7];
    assert_eq!(
        encrypt(&k, &mut short, b"x").unwrap_err(),
        KeyError::IvLength { len: 7, block: 8 }
    );
    for cipher in [Encryption::AesGcm(128, 16), Encryption::AesCbc(100)] {
        let input = Phase1Input {
            hash: Integrity::Sha1,
            cipher,
            psk: b"x",
            ni: b"n",
            nr: b"n",
            g_xy: b"g",
            g_xi: b"g",
            g_xr: b"g",
            cky_i: [0; 8],
            cky_r: [0; 8],
        };
        assert_eq!(
            phase1_psk(&input).unwrap_err(),
            KeyError::UnsupportedCipher(cipher)
        );
    }
}

#[test]
fn hashes_and_ivs_take_their_inputs_in_order() {
    let k = keys_for(Encryption::AesCbc(128), Integrity::Sha1);
    let iv = phase2_iv(&k, &[1; 16], 0x0a0b_0c0d).unwrap();
    let mut data = vec![1u8; 16];
    data.extend_from_slice(&[0x0a, 0x0b, 0x0c, 0x0d]);
    assert_eq!(iv, hash(Integrity::Sha1, &[&data]).unwrap()[..16]);
    let h3 = qm_hash3(&k, 5, b"ni", b"nr").unwrap();
    assert_eq!(
        h3,
        prf(Integrity::Sha1, &k.skeyid_a, &[&[0, 0, 0, 0, 5], b"ninr"]).unwrap()
    );
    let h2 = qm_hash(&k, 5, Some(b"ni"), b"rest").unwrap();
    assert_eq!(
        h2,
        prf(Integrity::Sha1, &k.skeyid_a, &[&[0, 0, 0, 5], b"nirest"]).unwrap()
    );
    assert_ne!(h2, qm_hash(&k, 5, None, b"rest").unwrap());
}

#[test]
fn debug_redacts_keys() {
    let k = keys_for(Encryption::AesCbc(128), Integrity::Sha1);
    let shown = format!("{k:?}");
    assert!(shown.contains("<redacted>"));
    assert!(!shown.contains("skeyid"));
}
