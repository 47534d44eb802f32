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

/// RFC 3078 s7.3 / RFC 3079 s3.3 key change: interim =
/// GetNewKeyFromSHA(start, current); new = RC4(interim, interim), reduced.
/// Keys are held in 16 octets; 40- and 56-bit keys use the first 8.
fn next_key(strength: KeyStrength, start: &[u8; 16], current: &[u8; 16]) -> [u8; 16] {
    let len = strength.key_len();
    let mut digest = sha1(&[&start[..len], &PAD1, &current[..len], &PAD2]);
    let mut next = [0u8; 16];
    next[..len].copy_from_slice(&digest[..len]);
    digest.zeroize();
    let mut interim = cipher_for(strength, &next);
    interim.apply(&mut next[..len]);
    strength.reduce(&mut next);
    next
}

/// RC4 at position 0 with the `strength.key_len()` octets of `key`.
fn cipher_for(strength: KeyStrength, key: &[u8; 16]) -> Rc4 {
    match strength.key_len() {
        8 => {
            let mut k8 = [0u8; 8];
            k8.copy_from_slice(&key[..8]);
            let rc4 = Rc4::with_key(&k8);
            k8.zeroize();
            rc4
        }
        _ => Rc4::with_key(key),
    }
}

/// The initial session key: GetNewKeyFromSHA(start, start), reduced
/// (RFC 3079 s3.1-3.3).
fn initial_key(strength: KeyStrength, start_key: &[u8; 16]) -> ([u8; 16], [u8; 16]) {
    let len = strength.key_len();
    let mut start = [0u8; 16];
    start[..len].copy_from_slice(&start_key[..len]);
    let mut digest = sha1(&[&start[..len], &PAD1, &start[..len], &PAD2]);
    let mut current = [0u8; 16];
    current[..len].copy_from_slice(&digest[..len]);
    digest.zeroize();
    strength.reduce(&mut current);
    (start, current)
}

/// One direction's RC4 session key schedule (RFC 3078 s7, RFC 3079 s3.1-3.3),
/// one cipher continued across packets: what stateful mode uses. For
/// stateless mode see [`StatelessKey`].
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SessionKey {
    #[zeroize(skip)]
    strength: KeyStrength,
    start: [u8; 16],
    current: [u8; 16],
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
        let (start, current) = initial_key(strength, start_key);
        let cipher = cipher_for(strength, &current);
        SessionKey {
            strength,
            start,
            current,
            cipher,
        }
    }

    /// The current session key (for tests against RFC vectors).
    pub fn current(&self) -> &[u8] {
        &self.current[..self.strength.key_len()]
    }

    /// RFC 3078 s7.3 / RFC 3079 s3.3 key change: interim =
    /// GetNewKeyFromSHA(start, current); new = RC4(interim, interim),
    /// reduced; RC4 re-keyed.
    pub fn rekey(&mut self) {
        self.current = next_key(self.strength, &self.start, &self.current);
        self.reset();
    }

    /// Restarts RC4 with the current key (the flushed bit, RFC 3078 s3.1).
    pub fn reset(&mut self) {
        self.cipher = cipher_for(self.strength, &self.current);
    }

    /// Encrypts or decrypts in place, continuing the keystream.
    pub fn apply(&mut self, data: &mut [u8]) {
        self.cipher.apply(data);
    }
}

/// Packets whose keys [`StatelessKey`] schedules together.
const LANES: usize = 4;
/// Keystream octets kept per packet: a 1500-octet PPP payload with its
/// protocol field, rounded up to [`CHUNK`]. Longer packets take the rest
/// from their cipher directly.
const KEEP: usize = 1536;
/// Keystream is made in steps of this many octets, so that a short packet
/// (a TCP ACK) does not pay for a long one's keystream.
const CHUNK: usize = 64;
/// How far [`StatelessKey`]'s lockstep limit rises after a packet that
/// went past it, and falls after one that ended this far short of it.
/// Rising by 2/5 of the steps makes the limit settle where about 3 in 5
/// packets reach it: making keystream for 4 lanes at once costs about as
/// much per octet as 2.4 lanes one at a time (measured,
/// examples/mppe_speed.rs), so lockstep pays up to that length.
const LIMIT_UP: usize = 2 * CHUNK;
const LIMIT_DOWN: usize = 3 * CHUNK;

/// The ciphers of the next [`LANES`] packets and the keystream made so far.
#[derive(Zeroize, ZeroizeOnDrop)]
struct Lanes {
    rc4: [Rc4; LANES],
    keystream: [[u8; KEEP]; LANES],
}

/// One direction's keys in stateless mode (RFC 3078 s7.1, the H bit): a
/// key change before every packet and RC4 started afresh with the new key.
///
/// Key n+1 depends only on key n (RFC 3079 s3.3), never on the data, so
/// the keys of the next 4 packets are derived together, their RC4 key
/// schedules run in lockstep, and their keystreams are made in lockstep
/// in 64-octet steps as packets need them (`Rc4::keystream_many`): the
/// serial chain of one RC4 hides behind the others'. Lockstep stops at a
/// limit that follows the packet lengths: past it a packet's keystream
/// comes from its own cipher alone, so that one long packet among short
/// ones does not make long keystreams for all. The output is exactly that
/// of [`SessionKey::rekey`] then [`SessionKey::apply`] per packet.
///
/// Key material (and the keystream made ahead) is zeroized on drop;
/// `Debug` prints no key.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct StatelessKey {
    #[zeroize(skip)]
    strength: KeyStrength,
    start: [u8; 16],
    /// The newest key derived: the last lane's, or the initial key.
    last: [u8; 16],
    /// Zeroizes itself on drop.
    #[zeroize(skip)]
    lanes: Box<Lanes>,
    /// Octets of keystream made for the lanes from `next - 1` on (the
    /// packet being processed and those after it).
    made: usize,
    /// The lane of the next packet; [`LANES`] when all are used.
    next: usize,
    /// Octets of the current packet so far.
    used: usize,
    /// How far keystream is made in lockstep (a multiple of [`CHUNK`]).
    limit: usize,
}

impl fmt::Debug for StatelessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StatelessKey({}-bit, <redacted>)", self.strength.bits())
    }
}

impl StatelessKey {
    /// From the start key; the first packet is sent with the key after
    /// the initial one (RFC 3078 s7.1: the key changes before each packet).
    pub fn new(start_key: &[u8; 16], strength: KeyStrength) -> StatelessKey {
        let (start, last) = initial_key(strength, start_key);
        let placeholder = cipher_for(strength, &last);
        StatelessKey {
            strength,
            start,
            last,
            lanes: Box::new(Lanes {
                rc4: std::array::from_fn(|_| placeholder.clone()),
                keystream: [[0; KEEP]; LANES],
            }),
            made: 0,
            next: LANES,
            used: 0,
            limit: KEEP,
        }
    }

    /// Changes the key `steps` times (one per coherency count; more than
    /// one when the peer's packets were lost; 0 counts as 1) and returns
    /// the keystream of the packet sent with the new key, from position 0.
    pub fn next_packet(&mut self, steps: usize) -> PacketKeystream<'_> {
        if self.used > self.limit {
            self.limit = (self.limit + LIMIT_UP).min(KEEP);
        } else if self.used + LIMIT_DOWN <= self.limit {
            self.limit = (self.limit - LIMIT_DOWN).max(CHUNK);
        }
        self.used = 0;
        let mut lane = self.next + steps.max(1) - 1;
        while lane >= LANES {
            lane -= LANES;
            if lane >= LANES {
                // A whole batch of packets lost: their keys, no ciphers.
                for _ in 0..LANES {
                    self.last = next_key(self.strength, &self.start, &self.last);
                }
            } else {
                self.refill();
            }
        }
        self.next = lane + 1;
        PacketKeystream {
            key: self,
            lane,
            pos: 0,
            alone: false,
        }
    }

    /// Derives the next [`LANES`] keys and schedules their ciphers.
    fn refill(&mut self) {
        let mut keys = [[0u8; 16]; LANES];
        for key in &mut keys {
            self.last = next_key(self.strength, &self.start, &self.last);
            *key = self.last;
        }
        self.lanes.rc4 = match self.strength.key_len() {
            8 => {
                let mut short = keys.map(|k| {
                    let mut k8 = [0u8; 8];
                    k8.copy_from_slice(&k[..8]);
                    k8
                });
                let rc4 = Rc4::new_many(&short);
                short.zeroize();
                rc4
            }
            _ => Rc4::new_many(&keys),
        };
        keys.zeroize();
        self.made = 0;
    }

    /// Makes keystream up to `to` (at most [`KEEP`]) for lane `first` and
    /// those after it.
    fn make(&mut self, first: usize, to: usize) {
        let lanes = &mut *self.lanes;
        if first + 1 < LANES {
            // Lanes before `first` are used: stepping them too costs less
            // than a narrower lockstep (measured, examples/mppe_speed.rs).
            Rc4::keystream_many(
                &mut lanes.rc4,
                &mut lanes.keystream,
                self.made,
                to - self.made,
            );
        } else if let (Some(rc4), Some(out)) = (
            lanes.rc4.get_mut(first),
            lanes
                .keystream
                .get_mut(first)
                .and_then(|k| k.get_mut(self.made..to)),
        ) {
            rc4.keystream(out);
        }
        self.made = to;
    }
}

/// The keystream of one packet in stateless mode, from
/// [`StatelessKey::next_packet`]; each call continues where the last ended.
pub struct PacketKeystream<'a> {
    key: &'a mut StatelessKey,
    lane: usize,
    pos: usize,
    /// The lane's cipher has gone past the kept keystream: the rest comes
    /// from it directly. (The limit alone already keeps lockstep from
    /// resuming within a packet; this makes it explicit.)
    alone: bool,
}

impl fmt::Debug for PacketKeystream<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PacketKeystream(at {}, <redacted>)", self.pos)
    }
}

impl PacketKeystream<'_> {
    /// Makes keystream for the next `len` octets in lockstep as far as
    /// the limit allows; returns how many of them the kept keystream
    /// covers. The rest come from the lane's cipher directly, which then
    /// is past the others.
    fn prepare(&mut self, len: usize) -> usize {
        let end = self.pos.saturating_add(len);
        let key = &mut *self.key;
        key.used = end;
        if self.alone {
            return 0;
        }
        if end > key.made {
            let to = end
                .div_ceil(CHUNK)
                .saturating_mul(CHUNK)
                .min(key.limit.max(key.made))
                .min(KEEP);
            if to > key.made {
                key.make(self.lane, to);
            }
        }
        let kept = end.min(key.made).saturating_sub(self.pos);
        self.alone = kept < len;
        kept
    }

    /// Encrypts or decrypts `data` in place.
    pub fn apply(&mut self, data: &mut [u8]) {
        let kept = self.prepare(data.len());
        let lanes = &mut *self.key.lanes;
        let (head, tail) = data.split_at_mut(kept);
        let from = self.pos.min(KEEP);
        let ks = &lanes.keystream[self.lane][from..from + kept];
        for (d, k) in head.iter_mut().zip(ks) {
            *d ^= k;
        }
        lanes.rc4[self.lane].apply(tail);
        self.pos += data.len();
    }

    /// Appends `src` encrypted or decrypted to `out`: [`Self::apply`]
    /// without a separate copy.
    pub fn extend(&mut self, src: &[u8], out: &mut Vec<u8>) {
        let kept = self.prepare(src.len());
        let lanes = &mut *self.key.lanes;
        let (head, tail) = src.split_at(kept);
        let from = self.pos.min(KEEP);
        let ks = &lanes.keystream[self.lane][from..from + kept];
        out.extend(head.iter().zip(ks).map(|(s, k)| s ^ k));
        let at = out.len();
        out.extend_from_slice(tail);
        lanes.rc4[self.lane].apply(&mut out[at..]);
        self.pos += src.len();
    }
}
