//! The entry point of the `esp_open` fuzz target, shared with the corpus
//! replay test (crates/ipsec/tests/fuzz_corpus.rs).

use std::sync::Arc;

use tsunagi_crypto::random::RandomSource;

use super::*;

/// A fixed key for every transform: the fuzzer cannot forge ICVs, so the
/// interesting inputs are sealed by [`esp_open`] itself.
const KEY: [u8; 36] = [0x42; 36];
const AUTH: [u8; 32] = [0x24; 32];

/// A predictable "random" source: fuzzing wants determinism.
struct Counter;
impl RandomSource for Counter {
    fn fill(&self, dest: &mut [u8]) {
        for (i, b) in dest.iter_mut().enumerate() {
            *b = i as u8;
        }
    }
}

/// The SA pair a configuration octet picks: bits 0-2 the transform, bit 3
/// tunnel mode, bit 4 ESN, bit 5 a window of 2048.
pub fn sa_pair(config: u8) -> (OutboundSa, InboundSa) {
    let (transform, enc, auth): (Transform, usize, usize) = match config & 7 {
        0 => (Transform::AesGcm16, 20, 0),
        1 => (Transform::AesGcm16, 36, 0),
        2 => (Transform::AesCbc(Integrity::HmacSha1_96), 16, 20),
        3 => (Transform::AesCbc(Integrity::HmacSha256_128), 32, 32),
        4 => (Transform::TripleDesCbc(Integrity::HmacSha1_96), 24, 20),
        5 => (Transform::TripleDesCbc(Integrity::HmacSha256_128), 24, 32),
        6 => (Transform::AesCbc(Integrity::HmacSha1_96), 24, 20),
        _ => (Transform::AesCbc(Integrity::HmacSha256_128), 16, 32),
    };
    let mode = if config & 8 != 0 {
        Mode::Tunnel
    } else {
        Mode::Transport
    };
    let mut c = SaConfig::new(0x1234_abcd, transform, mode);
    c.esn = config & 16 != 0;
    c.replay_window = if config & 32 != 0 { 2048 } else { 1024 };
    let out = OutboundSa::new(c, &KEY[..enc], &AUTH[..auth], Arc::new(Counter)).expect("keys");
    let inb = InboundSa::new(c, &KEY[..enc], &AUTH[..auth]).expect("keys");
    (out, inb)
}

/// `data`: a configuration octet (see [`sa_pair`]), then the rest. The rest
/// is opened as an ESP packet (no panic; if it opens, which only a packet
/// sealed with the fixed keys does, the payload lies inside it); then it is
/// sealed as a payload, opened back to the same payload, and opened again
/// as a replay; a copy with one octet flipped fails.
pub fn esp_open(data: &[u8]) {
    let Some((&config, rest)) = data.split_first() else {
        return;
    };
    let (mut out, mut inb) = sa_pair(config);
    let _ = parse_spi(rest);
    let _ = classify_udp_4500(rest);
    let mut copy = rest.to_vec();
    if let Ok(Opened::Payload { payload, .. }) = inb.open(&mut copy) {
        assert!(payload.start >= HEADER_LEN && payload.end <= copy.len());
    }
    // A fresh SA for the round trip, so the window is empty.
    let (_, mut inb) = sa_pair(config);

    // The payload: in tunnel mode, make it look like IPv4.
    let mut payload = rest.to_vec();
    let nh = if out.config().mode == Mode::Tunnel {
        match payload.first_mut() {
            Some(b) => *b = 0x45,
            None => payload.push(0x45),
        }
        NEXT_HEADER_IPV4
    } else {
        rest.first().copied().unwrap_or(NEXT_HEADER_UDP) & 0x3f
    };
    if let Some(&jump) = rest.get(1) {
        out.set_seq(u64::from(jump) << 24);
    }
    let mut buf = vec![0u8; HEADROOM + payload.len() + TAILROOM];
    buf[HEADROOM..HEADROOM + payload.len()].copy_from_slice(&payload);
    let Ok(packet) = out.seal(&mut buf, HEADROOM..HEADROOM + payload.len(), nh) else {
        return;
    };
    let sealed = buf[packet].to_vec();
    let mut p = sealed.clone();
    match inb.open(&mut p) {
        Ok(Opened::Payload {
            next_header,
            payload: r,
            ..
        }) => {
            assert_eq!(next_header, nh);
            assert_eq!(&p[r], &payload[..]);
        }
        Ok(Opened::Dummy { .. }) => assert_eq!(nh, NEXT_HEADER_DUMMY),
        Err(e) => panic!("own packet refused: {e}"),
    }
    let mut p = sealed.clone();
    assert!(matches!(inb.open(&mut p), Err(EspError::Replayed { .. })));
    let mut p = sealed;
    let i = usize::from(rest.last().copied().unwrap_or(0)) % p.len();
    p[i] ^= 0x80;
    assert!(inb.open(&mut p).is_err(), "tampered octet {i} opened");
}
