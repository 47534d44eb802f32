//! Replays every file of fuzz/corpus/esp_open through the function the
//! fuzz target calls, and checks that the committed `seed-*` files are what
//! [`esp_seeds`] builds (`TSUNAGI_WRITE_SEEDS=1` writes them:
//! `TSUNAGI_WRITE_SEEDS=1 cargo test -p tsunagi-ipsec --test fuzz_corpus`).

use tsunagi_ipsec::esp::fuzzing::{esp_open, sa_pair};
use tsunagi_ipsec::esp::{HEADROOM, NEXT_HEADER_DUMMY, NEXT_HEADER_IPV4, TAILROOM};
use tsunagi_testkit::corpus::{check_or_write, replay};

#[test]
fn replay_esp_open_corpus() {
    replay("esp_open", esp_open);
}

#[test]
fn esp_seeds_are_current() {
    check_or_write("esp_open", esp_seeds(), "tsunagi-ipsec");
}

/// An IPv4-looking payload of `len` octets.
fn inner(len: usize) -> Vec<u8> {
    let mut p: Vec<u8> = (0..len).map(|i| i as u8).collect();
    if let Some(b) = p.first_mut() {
        *b = 0x45;
    }
    p
}

/// `count` packets sealed by the SA of `config`, the first one at
/// `seq_after + 1`.
fn sealed(config: u8, len: usize, nh: u8, seq_after: u64) -> Vec<u8> {
    let (mut out, _) = sa_pair(config);
    out.set_seq(seq_after);
    let p = inner(len);
    let mut buf = vec![0u8; HEADROOM + len + TAILROOM];
    buf[HEADROOM..HEADROOM + len].copy_from_slice(&p);
    let r = out
        .seal(&mut buf, HEADROOM..HEADROOM + len, nh)
        .expect("seal");
    let mut v = vec![config];
    v.extend(&buf[r]);
    v
}

/// The seeds of fuzz/corpus/esp_open (name, bytes): for each transform
/// (configuration bits 0-2) a packet its SA opens, in transport and tunnel
/// mode, with ESN, with a 2048 window; a dummy; short and truncated
/// packets; the port-4500 forms.
fn esp_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    let mut add = |name: &str, v: Vec<u8>| seeds.push((format!("seed-{name}"), v));
    for t in 0..8u8 {
        add(&format!("t{t}-transport-100"), sealed(t, 100, 17, 0));
        add(
            &format!("t{t}-tunnel-60"),
            sealed(t | 8, 60, NEXT_HEADER_IPV4, 0),
        );
        add(
            &format!("t{t}-esn-across-2-32"),
            sealed(t | 16, 33, 17, u64::from(u32::MAX)),
        );
        add(&format!("t{t}-window-2048-empty"), sealed(t | 32, 0, 17, 5));
        add(&format!("t{t}-dummy"), sealed(t, 16, NEXT_HEADER_DUMMY, 0));
        let mut cut = sealed(t, 40, 17, 0);
        cut.truncate(cut.len() - 3);
        add(&format!("t{t}-truncated"), cut);
    }
    add("short-header", vec![0, 0x12, 0x34, 0xab]);
    add("only-config", vec![3]);
    add("keepalive", vec![0, 0xff]);
    add("ike-marker", vec![8, 0, 0, 0, 0, 0x11, 0x22, 0x33, 0x44]);
    add("spi-right-garbage", {
        let mut v = vec![2, 0x12, 0x34, 0xab, 0xcd, 0, 0, 0, 1];
        v.extend([0x41; 60]);
        v
    });
    seeds
}
