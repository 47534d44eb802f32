//! MPPE's data path against a plain reference: RFC 3079 s3.3 key changes
//! and RC4 written out here as the RFCs state them, byte for byte, in
//! stateless mode (a fresh key and RC4 per packet, RFC 3078 s7.1) and
//! stateful mode (s7.2), both directions, with lost, late and malformed
//! packets on receive.

use tsunagi_crypto::mppe::{KeyStrength, StartKeys};
use tsunagi_crypto::sha1;
use tsunagi_ppp::ccp::{CcpError, MppeRx, MppeTx};

/// RC4 (the textbook loops), continued across calls.
struct PlainRc4 {
    s: Vec<u8>,
    i: usize,
    j: usize,
}

impl PlainRc4 {
    fn new(key: &[u8]) -> PlainRc4 {
        let mut s: Vec<u8> = (0..=255).collect();
        let mut j = 0usize;
        for i in 0..256 {
            j = (j + usize::from(s[i]) + usize::from(key[i % key.len()])) % 256;
            s.swap(i, j);
        }
        PlainRc4 { s, i: 0, j: 0 }
    }

    fn apply(&mut self, data: &mut [u8]) {
        for b in data {
            self.i = (self.i + 1) % 256;
            self.j = (self.j + usize::from(self.s[self.i])) % 256;
            self.s.swap(self.i, self.j);
            *b ^= self.s[(usize::from(self.s[self.i]) + usize::from(self.s[self.j])) % 256];
        }
    }
}

/// RFC 3079 s3.1-3.3 session keys, step by step.
struct PlainKeys {
    strength: KeyStrength,
    start: Vec<u8>,
    key: Vec<u8>,
}

impl PlainKeys {
    fn get_new_key_from_sha(&self, session: &[u8]) -> Vec<u8> {
        let d = sha1(&[&self.start, &[0u8; 40], session, &[0xf2u8; 40]]);
        d[..self.start.len()].to_vec()
    }

    fn reduce(&self, key: &mut [u8]) {
        match self.strength {
            KeyStrength::Bits40 => key[..3].copy_from_slice(&[0xd1, 0x26, 0x9e]),
            KeyStrength::Bits56 => key[0] = 0xd1,
            KeyStrength::Bits128 => {}
        }
    }

    fn new(start: &[u8; 16], strength: KeyStrength) -> PlainKeys {
        let len = if strength == KeyStrength::Bits128 {
            16
        } else {
            8
        };
        let mut keys = PlainKeys {
            strength,
            start: start[..len].to_vec(),
            key: Vec::new(),
        };
        let mut key = keys.get_new_key_from_sha(&keys.start);
        keys.reduce(&mut key);
        keys.key = key;
        keys
    }

    fn rekey(&mut self) {
        let interim = self.get_new_key_from_sha(&self.key);
        let mut key = interim.clone();
        PlainRc4::new(&interim).apply(&mut key);
        self.reduce(&mut key);
        self.key = key;
    }
}

/// Stateless sender: header, then RC4 with the packet's own key.
struct PlainStateless {
    keys: PlainKeys,
    count: u16,
}

impl PlainStateless {
    fn encrypt(&mut self, protocol: u16, packet: &[u8]) -> Vec<u8> {
        self.keys.rekey();
        let mut body = protocol.to_be_bytes().to_vec();
        body.extend_from_slice(packet);
        PlainRc4::new(&self.keys.key).apply(&mut body);
        let mut out = (0x9000 | self.count).to_be_bytes().to_vec();
        out.extend(body);
        self.count = (self.count + 1) % 4096;
        out
    }
}

/// Stateful sender: one RC4, re-keyed on flag packets, restarted after a
/// Reset-Request.
struct PlainStateful {
    keys: PlainKeys,
    rc4: PlainRc4,
    count: u16,
    reset: bool,
}

impl PlainStateful {
    fn encrypt(&mut self, protocol: u16, packet: &[u8]) -> Vec<u8> {
        let mut h = 0x1000 | self.count;
        if self.count & 0xff == 0xff {
            self.keys.rekey();
            self.rc4 = PlainRc4::new(&self.keys.key);
            h |= 0x8000;
        } else if self.reset {
            self.rc4 = PlainRc4::new(&self.keys.key);
            h |= 0x8000;
        }
        self.reset = false;
        let mut body = protocol.to_be_bytes().to_vec();
        body.extend_from_slice(packet);
        self.rc4.apply(&mut body);
        let mut out = h.to_be_bytes().to_vec();
        out.extend(body);
        self.count = (self.count + 1) % 4096;
        out
    }
}

/// xorshift64*, for lengths and contents.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> usize {
        (self.next() % n) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// Mostly short or full-size packets, as on a real link, and any
    /// length in 0..1600 (past what the stateless path keeps ahead).
    fn packet(&mut self) -> Vec<u8> {
        let len = match self.below(4) {
            0 => 40 + self.below(24),
            1 => 1380 + self.below(120),
            _ => self.below(1600),
        };
        self.bytes(len)
    }
}

fn start_keys() -> (StartKeys, StartKeys) {
    let hash = [0x44u8; 16];
    let nt = [0x21u8; 24];
    (
        StartKeys::from_mschapv2(&hash, &nt, true),
        StartKeys::from_mschapv2(&hash, &nt, false),
    )
}

const STRENGTHS: [KeyStrength; 3] = [
    KeyStrength::Bits40,
    KeyStrength::Bits56,
    KeyStrength::Bits128,
];

#[test]
fn stateless_tx_matches_the_plain_reference() {
    let (server, _) = start_keys();
    for (n, strength) in STRENGTHS.into_iter().enumerate() {
        let mut rng = Rng(0x1234_5678 + n as u64);
        let mut tx = MppeTx::new(&server, strength, true);
        let mut plain = PlainStateless {
            keys: PlainKeys::new(&server.send, strength),
            count: 0,
        };
        let mut out = Vec::new();
        for i in 0..2000 {
            let protocol = if rng.below(2) == 0 { 0x21 } else { 0x57 };
            let packet = rng.packet();
            out.clear();
            // A reset (stateful only) must change nothing here.
            if i % 97 == 0 {
                tx.reset();
            }
            tx.encrypt_into(protocol, &packet, &mut out);
            assert_eq!(
                out,
                plain.encrypt(protocol, &packet),
                "{strength:?} packet {i}, {} octets",
                packet.len()
            );
        }
    }
}

#[test]
fn stateless_rx_matches_the_plain_reference_with_loss_and_late_packets() {
    let (server, client) = start_keys();
    for (n, strength) in STRENGTHS.into_iter().enumerate() {
        let mut rng = Rng(0x9876_5432 + n as u64);
        let mut plain = PlainStateless {
            keys: PlainKeys::new(&server.send, strength),
            count: 0,
        };
        let mut rx = MppeRx::new(&client, strength, true);
        let mut out = Vec::new();
        let mut delivered = 0;
        let mut previous: Option<Vec<u8>> = None;
        for i in 0..2000 {
            // Lose packets now and then: one, a few, more than a batch,
            // and (rarely) hundreds.
            let lose = match rng.below(40) {
                0 => 1,
                1 => 2 + rng.below(6),
                2 => 9 + rng.below(30),
                3 if i % 500 == 0 => 300 + rng.below(700),
                _ => 0,
            };
            for _ in 0..lose {
                let packet = rng.packet();
                plain.encrypt(0x21, &packet);
            }
            let protocol = if rng.below(2) == 0 { 0x21 } else { 0x57 };
            let packet = rng.packet();
            let wire = plain.encrypt(protocol, &packet);
            let got = rx.decrypt_into(&wire, &mut out);
            assert_eq!(got, Ok(protocol), "{strength:?} packet {i}");
            assert_eq!(
                out,
                packet,
                "{strength:?} packet {i}, {} octets",
                packet.len()
            );
            delivered += 1;
            // A late (or replayed) packet is refused and changes nothing.
            if rng.below(25) == 0 {
                if let Some(old) = &previous {
                    assert!(matches!(
                        rx.decrypt_into(old, &mut out),
                        Err(CcpError::Late { .. })
                    ));
                    assert!(out.is_empty());
                }
                assert!(matches!(
                    rx.decrypt_into(&wire, &mut out),
                    Err(CcpError::Late { .. })
                ));
            }
            // A malformed packet (no room for the protocol) uses up its
            // count and key, like any other.
            if rng.below(100) == 0 {
                let mut short = plain.encrypt(0x21, &[]);
                short.truncate(3);
                assert_eq!(rx.decrypt_into(&short, &mut out), Err(CcpError::NoProtocol));
            }
            previous = Some(wire);
        }
        assert_eq!(delivered, 2000);
    }
}

#[test]
fn stateless_round_trip_of_every_length() {
    // Each length around the kept keystream's chunks and its end, in
    // batches that start at every lane.
    let (server, client) = start_keys();
    let mut tx = MppeTx::new(&server, KeyStrength::Bits128, true);
    let mut rx = MppeRx::new(&client, KeyStrength::Bits128, true);
    let mut rng = Rng(77);
    for len in (0..200).chain(1400..1700).chain([4000, 65_535]) {
        let packet = rng.bytes(len);
        let wire = tx.encrypt(0x21, &packet);
        assert_eq!(rx.decrypt(&wire).unwrap(), (0x21, packet), "{len} octets");
    }
}

#[test]
fn stateful_matches_the_plain_reference() {
    let (server, client) = start_keys();
    for (n, strength) in STRENGTHS.into_iter().enumerate() {
        let mut rng = Rng(0x5555 + n as u64);
        let mut tx = MppeTx::new(&server, strength, false);
        let mut rx = MppeRx::new(&client, strength, false);
        let keys = PlainKeys::new(&server.send, strength);
        let rc4 = PlainRc4::new(&keys.key);
        let mut plain = PlainStateful {
            keys,
            rc4,
            count: 0,
            reset: false,
        };
        for i in 0..2000 {
            if i % 333 == 100 {
                tx.reset();
                plain.reset = true;
            }
            let protocol = if rng.below(2) == 0 { 0x21 } else { 0x57 };
            let packet = rng.packet();
            let wire = tx.encrypt(protocol, &packet);
            assert_eq!(
                wire,
                plain.encrypt(protocol, &packet),
                "{strength:?} packet {i}"
            );
            assert_eq!(
                rx.decrypt(&wire).unwrap(),
                (protocol, packet),
                "{strength:?} packet {i}"
            );
        }
    }
}
