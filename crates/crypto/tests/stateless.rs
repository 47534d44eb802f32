//! `StatelessKey` (keys scheduled ahead, keystreams made in lockstep)
//! against `SessionKey::rekey` and `SessionKey::apply`, one packet at a
//! time: the same keystream for every packet, however a packet's octets
//! are split across calls and however many keys are skipped.

use tsunagi_crypto::mppe::{KeyStrength, SessionKey, StatelessKey};

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

#[test]
fn same_keystream_as_one_packet_at_a_time() {
    let start = [0x3cu8; 16];
    for (n, strength) in [
        KeyStrength::Bits40,
        KeyStrength::Bits56,
        KeyStrength::Bits128,
    ]
    .into_iter()
    .enumerate()
    {
        let mut rng = Rng(n as u64 + 11);
        let mut reference = SessionKey::new(&start, strength);
        let mut key = StatelessKey::new(&start, strength);
        for packet in 0..3000 {
            // Phases of long, short and mixed packets move the lockstep
            // limit up and down.
            let len = match (packet / 300) % 3 {
                0 => 1300 + rng.below(1000),
                1 => rng.below(80),
                _ => rng.below(2000),
            };
            let steps = match rng.below(20) {
                0 => 2 + rng.below(10),
                1 if packet % 7 == 0 => 20 + rng.below(40),
                _ => 1,
            };
            for _ in 0..steps {
                reference.rekey();
            }
            let mut want = vec![0u8; len];
            reference.apply(&mut want);

            let mut got = vec![0u8; len];
            let mut keystream = key.next_packet(steps);
            let mut at = 0;
            while at < len {
                let piece = (1 + rng.below(700)).min(len - at);
                if rng.below(2) == 0 {
                    keystream.apply(&mut got[at..at + piece]);
                } else {
                    let mut out = vec![0xaa];
                    keystream.extend(&[0u8; 700][..piece], &mut out);
                    assert_eq!(out[0], 0xaa);
                    got[at..at + piece].copy_from_slice(&out[1..]);
                }
                at += piece;
            }
            assert_eq!(got, want, "{strength:?} packet {packet}, {len} octets");
        }
    }
}

#[test]
fn debug_prints_no_key() {
    let key = StatelessKey::new(&[1; 16], KeyStrength::Bits128);
    assert_eq!(format!("{key:?}"), "StatelessKey(128-bit, <redacted>)");
}
