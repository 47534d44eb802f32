//! Seal and open speed of 1400-octet packets with AES-128-GCM (RFC 4106),
//! in place, one buffer reused: ns per packet and Gbit/s of payload, the
//! median of 5 repetitions; then the same for AES-128-CBC with
//! HMAC-SHA1-96, the suite of older L2TP/IPsec clients, for comparison.
//!
//! `cargo run --release -p tsunagi-ipsec --example esp_speed`

use std::time::Instant;

use tsunagi_crypto::random::OsRandom;
use tsunagi_ipsec::esp::*;

const LEN: usize = 1400;
const PACKETS: usize = 200_000;
const REPETITIONS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    run("AES-128-GCM", Transform::AesGcm16, &[0x42; 20], &[]);
    run(
        "AES-128-CBC/HMAC-SHA1-96",
        Transform::AesCbc(Integrity::HmacSha1_96),
        &[0x42; 16],
        &[0x24; 20],
    );
}

fn run(name: &str, transform: Transform, key: &[u8], auth: &[u8]) {
    let c = SaConfig::new(0x1234_abcd, transform, Mode::Tunnel);
    let mut buf = vec![0u8; HEADROOM + LEN + TAILROOM];
    buf[HEADROOM] = 0x45;
    let payload = HEADROOM..HEADROOM + LEN;
    let mut seal_ns = Vec::new();
    let mut open_ns = Vec::new();
    for _ in 0..REPETITIONS {
        let mut out = OutboundSa::new(c, key, auth, OsRandom::handle()).expect("key");
        let t = Instant::now();
        let mut packet = 0..0;
        for _ in 0..PACKETS {
            buf[HEADROOM] = 0x45;
            packet = out
                .seal(&mut buf, payload.clone(), NEXT_HEADER_IPV4)
                .expect("seal");
        }
        seal_ns.push(t.elapsed().as_nanos() as f64 / PACKETS as f64);

        // Open needs a fresh packet each time (replay): seal them first
        // into one arena, then time only the opens.
        let mut out = OutboundSa::new(c, key, auth, OsRandom::handle()).expect("key");
        let mut inb = InboundSa::new(c, key, auth).expect("key");
        let n = PACKETS / 10;
        let stride = packet.len();
        let mut arena = vec![0u8; n * stride];
        for chunk in arena.chunks_exact_mut(stride) {
            buf[HEADROOM] = 0x45;
            let r = out
                .seal(&mut buf, payload.clone(), NEXT_HEADER_IPV4)
                .expect("seal");
            chunk.copy_from_slice(&buf[r]);
        }
        let t = Instant::now();
        for chunk in arena.chunks_exact_mut(stride) {
            let opened = inb.open(chunk).expect("open");
            let _ = std::hint::black_box(opened);
        }
        open_ns.push(t.elapsed().as_nanos() as f64 / n as f64);
    }
    for (what, ns) in [("seal", median(seal_ns)), ("open", median(open_ns))] {
        let gbits = (LEN * 8) as f64 / ns;
        println!("{name} {what} {LEN} octets: {ns:.0} ns/packet, {gbits:.2} Gbit/s (median of {REPETITIONS})");
    }
}
