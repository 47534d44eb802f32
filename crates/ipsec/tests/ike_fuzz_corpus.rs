//! Replays every file of fuzz/corpus/ike_engine through the function the
//! fuzz target calls, and checks that the committed `seed-*` files are
//! what [`seeds`] builds (`TSUNAGI_WRITE_SEEDS=1 cargo test -p
//! tsunagi-ipsec --test ike_fuzz_corpus` writes them).

use tsunagi_ipsec::ike::fuzzing::ike_engine;
use tsunagi_testkit::corpus::{check_or_write, replay};

#[test]
fn replay_ike_engine_corpus() {
    replay("ike_engine", ike_engine);
}

#[test]
fn ike_engine_seeds_are_current() {
    check_or_write(
        "ike_engine",
        seeds(),
        "tsunagi-ipsec --test ike_fuzz_corpus",
    );
}

fn record(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![kind];
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// Replays of each message of the real exchange with one octet flipped at
/// a few places (header, payload header, ciphertext), raw garbage on both
/// ports, and nothing at all.
fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = vec![("seed-empty".to_string(), Vec::new())];
    for msg in 0u8..9 {
        let mut v = Vec::new();
        for (offset, xor) in [
            (17u16, 0x01u8),
            (19, 0x01),
            (29, 0x80),
            (60, 0xff),
            (200, 0x10),
        ] {
            let [hi, lo] = offset.to_be_bytes();
            v.extend(record(3, &[msg, hi, lo, xor]));
        }
        seeds.push((format!("seed-replay-flipped-{msg}"), v));
    }
    let mut garbage = record(0, &[0u8; 40]);
    garbage.extend(record(1, &[0, 0, 0, 0, 1, 2, 3, 4]));
    garbage.extend(record(2, &[0xff; 28]));
    seeds.push(("seed-garbage".to_string(), garbage));
    seeds
}
