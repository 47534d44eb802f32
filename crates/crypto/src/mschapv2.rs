//! MS-CHAPv2 (RFC 2759 section 8).
//!
//! The peer computes [`generate_nt_response`]; the authenticator checks it
//! with [`check_nt_response`] and proves it knew the password with
//! [`generate_authenticator_response`], which the peer checks with
//! [`check_authenticator_response`].

use zeroize::{Zeroize, Zeroizing};

use crate::{ct_eq, des_encrypt_block, hex_upper, md4, sha1, Secret};

/// RFC 2759 s8.7 Magic1.
const AUTH_MAGIC1: &[u8; 39] = b"Magic server to client signing constant";
/// RFC 2759 s8.7 Magic2.
const AUTH_MAGIC2: &[u8; 41] = b"Pad to make it do more than one iteration";

/// RFC 2759 s8.2 ChallengeHash: SHA1(PeerChallenge | AuthenticatorChallenge
/// | UserName), first 8 octets. `user` is the name without any domain
/// the peer sent it with stripped by the caller if wanted (s4: the
/// user name is used as sent).
pub fn challenge_hash(
    peer_challenge: &[u8; 16],
    auth_challenge: &[u8; 16],
    user: &[u8],
) -> [u8; 8] {
    let digest = sha1(&[peer_challenge, auth_challenge, user]);
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

/// RFC 2759 s8.3 NtPasswordHash: MD4 of the password in UTF-16LE (the
/// password is taken as UTF-8; bytes that are not are taken one per unit).
pub fn nt_password_hash(password: &Secret) -> Zeroizing<[u8; 16]> {
    let mut unicode: Zeroizing<Vec<u8>> =
        Zeroizing::new(Vec::with_capacity(password.expose().len() * 2));
    match std::str::from_utf8(password.expose()) {
        Ok(text) => {
            for unit in text.encode_utf16() {
                unicode.extend_from_slice(&unit.to_le_bytes());
            }
        }
        Err(_) => {
            for &b in password.expose() {
                unicode.extend_from_slice(&[b, 0]);
            }
        }
    }
    Zeroizing::new(md4(&unicode))
}

/// RFC 2759 s8.4 HashNtPasswordHash: MD4 of the hash.
pub fn hash_nt_password_hash(hash: &[u8; 16]) -> Zeroizing<[u8; 16]> {
    Zeroizing::new(md4(hash))
}

/// RFC 2759 s8.5 ChallengeResponse: three DES blocks keyed by the
/// password hash padded to 21 octets.
pub fn challenge_response(challenge: &[u8; 8], password_hash: &[u8; 16]) -> [u8; 24] {
    let mut z = [0u8; 21];
    z[..16].copy_from_slice(password_hash);
    let mut out = [0u8; 24];
    for i in 0..3 {
        let mut key = [0u8; 7];
        key.copy_from_slice(&z[7 * i..7 * i + 7]);
        out[8 * i..8 * i + 8].copy_from_slice(&des_encrypt_block(&key, challenge));
        key.zeroize();
    }
    z.zeroize();
    out
}

/// RFC 2759 s8.1 GenerateNTResponse.
pub fn generate_nt_response(
    auth_challenge: &[u8; 16],
    peer_challenge: &[u8; 16],
    user: &[u8],
    password: &Secret,
) -> [u8; 24] {
    let challenge = challenge_hash(peer_challenge, auth_challenge, user);
    challenge_response(&challenge, &nt_password_hash(password))
}

/// The authenticator's check of a peer's NT-Response, in constant time.
pub fn check_nt_response(
    auth_challenge: &[u8; 16],
    peer_challenge: &[u8; 16],
    user: &[u8],
    password: &Secret,
    nt_response: &[u8; 24],
) -> bool {
    let expected = generate_nt_response(auth_challenge, peer_challenge, user, password);
    ct_eq(&expected, nt_response)
}

/// RFC 2759 s8.7 GenerateAuthenticatorResponse: the 42-octet text
/// "S=" followed by 40 uppercase hex digits.
pub fn generate_authenticator_response(
    password: &Secret,
    nt_response: &[u8; 24],
    peer_challenge: &[u8; 16],
    auth_challenge: &[u8; 16],
    user: &[u8],
) -> String {
    let hash = nt_password_hash(password);
    let hash_hash = hash_nt_password_hash(&hash);
    let digest = sha1(&[&hash_hash[..], nt_response, AUTH_MAGIC1]);
    let challenge = challenge_hash(peer_challenge, auth_challenge, user);
    let digest = sha1(&[&digest, &challenge, AUTH_MAGIC2]);
    format!("S={}", hex_upper(&digest))
}

/// RFC 2759 s8.8 CheckAuthenticatorResponse: compares the "S=..." text
/// the authenticator sent (case-insensitively, in constant time) with the
/// one we compute.
pub fn check_authenticator_response(
    password: &Secret,
    nt_response: &[u8; 24],
    peer_challenge: &[u8; 16],
    auth_challenge: &[u8; 16],
    user: &[u8],
    received: &[u8],
) -> bool {
    let expected = generate_authenticator_response(
        password,
        nt_response,
        peer_challenge,
        auth_challenge,
        user,
    );
    let received: Vec<u8> = received.iter().map(|b| b.to_ascii_uppercase()).collect();
    ct_eq(expected.as_bytes(), &received)
}
