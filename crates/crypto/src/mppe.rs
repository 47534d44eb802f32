//! MPPE key derivation from MS-CHAPv2 (RFC 3079 section 3) and the RC4
//! session key schedule of RFC 3078 / RFC 3079 s3.1-3.3.
//!
//! Trap (DESIGN.md): RFC 3079 s3.5's "SendStartKey" examples are the
//! *server's* send key, made with Magic3; a client's send key uses Magic2.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::{sha1, Rc4};

/// RFC 3079 s3.4 Magic1 for GetMasterKey.
const MASTER_MAGIC: &[u8; 27] = b"This is the MPPE Master Key";
/// RFC 3079 s3.4 Magic2: the client's send key = the server's receive key.
const MAGIC2: &[u8; 84] =
    b"On the client side, this is the send key; on the server side, it is the receive key.";
/// RFC 3079 s3.4 Magic3: the client's receive key = the server's send key.
const MAGIC3: &[u8; 84] =
    b"On the client side, this is the receive key; on the server side, it is the send key.";
/// SHSpad1 and SHSpad2 (RFC 3079 s3.4).
const PAD1: [u8; 40] = [0; 40];
const PAD2: [u8; 40] = [0xf2; 40];

/// Session key strength (RFC 3078 s2: 40, 56 or 128 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStrength {
    /// 40-bit: 8-octet key whose first 3 octets are D1 26 9E.
    Bits40,
    /// 56-bit: 8-octet key whose first octet is D1.
    Bits56,
    /// 128-bit: 16-octet key.
    Bits128,
}

impl KeyStrength {
    /// Octets of the key (8 for 40/56 bits, 16 for 128).
    pub fn key_len(self) -> usize {
        match self {
            KeyStrength::Bits40 | KeyStrength::Bits56 => 8,
            KeyStrength::Bits128 => 16,
        }
    }

    /// The bit count, for logs ("MPPE 128-bit").
    pub fn bits(self) -> u32 {
        match self {
            KeyStrength::Bits40 => 40,
            KeyStrength::Bits56 => 56,
            KeyStrength::Bits128 => 128,
        }
    }

    /// RFC 3079 s3.1/3.2: the fixed leading octets of reduced keys.
    fn reduce(self, key: &mut [u8]) {
        match self {
            KeyStrength::Bits40 => key[..3].copy_from_slice(&[0xd1, 0x26, 0x9e]),
            KeyStrength::Bits56 => key[0] = 0xd1,
            KeyStrength::Bits128 => {}
        }
    }
}

/// RFC 3079 s3.4 GetMasterKey: SHA1(PasswordHashHash | NT-Response |
/// Magic1), first 16 octets.
pub fn get_master_key(
    password_hash_hash: &[u8; 16],
    nt_response: &[u8; 24],
) -> Zeroizing<[u8; 16]> {
    let digest = Zeroizing::new(sha1(&[password_hash_hash, nt_response, MASTER_MAGIC]));
    let mut key = Zeroizing::new([0u8; 16]);
    key.copy_from_slice(&digest[..16]);
    key
}

/// RFC 3079 s3.4 GetAsymmetricStartKey: `len` octets (8 or 16) for our
/// send (`is_send`) or receive direction, as server or client.
pub fn get_asymmetric_start_key(
    master_key: &[u8; 16],
    len: usize,
    is_send: bool,
    is_server: bool,
) -> Zeroizing<Vec<u8>> {
    let magic: &[u8] = if is_send == is_server { MAGIC3 } else { MAGIC2 };
    let digest = Zeroizing::new(sha1(&[master_key, &PAD1, magic, &PAD2]));
    Zeroizing::new(digest[..len.min(16)].to_vec())
}

/// RFC 3079 s3.3 GetNewKeyFromSHA: SHA1(StartKey | SHSpad1 | SessionKey
/// | SHSpad2), first `len` octets.
pub fn get_new_key_from_sha(
    start_key: &[u8],
    session_key: &[u8],
    len: usize,
) -> Zeroizing<Vec<u8>> {
    let digest = Zeroizing::new(sha1(&[
        &start_key[..len.min(start_key.len())],
        &PAD1,
        &session_key[..len.min(session_key.len())],
        &PAD2,
    ]));
    Zeroizing::new(digest[..len.min(20)].to_vec())
}

/// The MPPE start keys of one side after MS-CHAPv2 (RFC 3079 s3.3).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct StartKeys {
    /// Key for what we send.
    pub send: [u8; 16],
    /// Key for what we receive.
    pub recv: [u8; 16],
}

impl fmt::Debug for StartKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StartKeys(<redacted>)")
    }
}

impl StartKeys {
    /// Derives both directions from the password hash and NT-Response of
    /// a successful MS-CHAPv2 exchange; `is_server` is true on the
    /// authenticator.
    pub fn from_mschapv2(
        password_hash: &[u8; 16],
        nt_response: &[u8; 24],
        is_server: bool,
    ) -> StartKeys {
        let hash_hash = crate::mschapv2::hash_nt_password_hash(password_hash);
        let master = get_master_key(&hash_hash, nt_response);
        let mut keys = StartKeys {
            send: [0; 16],
            recv: [0; 16],
        };
        keys.send
            .copy_from_slice(&get_asymmetric_start_key(&master, 16, true, is_server));
        keys.recv
            .copy_from_slice(&get_asymmetric_start_key(&master, 16, false, is_server));
        keys
    }
}

/// One direction's RC4 session key schedule (RFC 3078 s7, RFC 3079 s3.1-3.3).
pub struct SessionKey {
    strength: KeyStrength,
    start: Zeroizing<Vec<u8>>,
    current: Zeroizing<Vec<u8>>,
    cipher: Rc4,
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionKey({}-bit, <redacted>)", self.strength.bits())
    }
}

impl SessionKey {
    /// The initial session key: GetNewKeyFromSHA(start, start), reduced
    /// (RFC 3079 s3.1-3.3), with RC4 at keystream position 0.
    pub fn new(start_key: &[u8; 16], strength: KeyStrength) -> SessionKey {
        let len = strength.key_len();
        let start = Zeroizing::new(start_key[..len].to_vec());
        let mut current = get_new_key_from_sha(&start, &start, len);
        strength.reduce(&mut current);
        let cipher = Rc4::new(&current).expect("8 or 16 octets");
        SessionKey {
            strength,
            start,
            current,
            cipher,
        }
    }

    /// The current session key (for tests against RFC vectors).
    pub fn current(&self) -> &[u8] {
        &self.current
    }

    /// RFC 3078 s7.3 / RFC 3079 s3.3 key change: interim =
    /// GetNewKeyFromSHA(start, current); new = RC4(interim, interim),
    /// reduced; RC4 re-keyed.
    pub fn rekey(&mut self) {
        let len = self.strength.key_len();
        let interim = get_new_key_from_sha(&self.start, &self.current, len);
        let mut next = Zeroizing::new(interim.to_vec());
        Rc4::new(&interim).expect("8 or 16 octets").apply(&mut next);
        self.strength.reduce(&mut next);
        self.current = next;
        self.reset();
    }

    /// Restarts RC4 with the current key (the flushed bit, RFC 3078 s3.1).
    pub fn reset(&mut self) {
        self.cipher = Rc4::new(&self.current).expect("8 or 16 octets");
    }

    /// Encrypts or decrypts in place, continuing the keystream.
    pub fn apply(&mut self, data: &mut [u8]) {
        self.cipher.apply(data);
    }
}
