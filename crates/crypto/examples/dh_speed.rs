//! Diffie-Hellman cost per IKE exchange: one `generate` (a private value
//! from the OS CSPRNG and g^x) plus one `shared_secret` (the peer check
//! and g^xy), for each group tsunagi offers.
//!
//! `cargo run --release -p tsunagi-crypto --example dh_speed`
//!
//! Prints the median of 5 rounds in µs per generate + shared. The figures
//! move with machine load.

use std::hint::black_box;
use std::time::Instant;

use tsunagi_crypto::dh::{DhGroup, DhPrivate};
use tsunagi_crypto::OsRandom;

const ROUNDS: usize = 5;

fn main() {
    let random = OsRandom;
    for (group, per_round) in [
        (DhGroup::Modp1024, 40),
        (DhGroup::Modp1536, 20),
        (DhGroup::Modp2048, 10),
        (DhGroup::Ecp256, 200),
    ] {
        let peer = DhPrivate::generate(group, &random);
        let mut rounds = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let start = Instant::now();
            for _ in 0..per_round {
                let ours = DhPrivate::generate(group, &random);
                let shared = ours
                    .shared_secret(peer.public_value())
                    .expect("a valid peer");
                black_box((ours.public_value().len(), shared.len()));
            }
            rounds.push(start.elapsed().as_secs_f64() * 1e6 / per_round as f64);
        }
        rounds.sort_by(f64::total_cmp);
        println!(
            "{:<10} {:>10.0} µs per generate + shared",
            format!("{group:?}"),
            rounds[ROUNDS / 2]
        );
    }
}
