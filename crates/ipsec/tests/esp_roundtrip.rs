//! Seal → open for every transform, both modes, with and without ESN;
//! tampering; padding, dummy packets, buffers; replay window behaviour
//! (RFC 4303 s3.4.3); open never panics on arbitrary bytes.

use proptest::prelude::*;
use ring::aead;
use tsunagi_crypto::random::OsRandom;
use tsunagi_ipsec::esp::*;

/// Every transform with key lengths: (transform, encryption, integrity).
fn transforms() -> Vec<(Transform, usize, usize)> {
    use Integrity::*;
    vec![
        (Transform::AesGcm16, 20, 0),
        (Transform::AesGcm16, 36, 0),
        (Transform::AesCbc(HmacSha1_96), 16, 20),
        (Transform::AesCbc(HmacSha1_96), 32, 20),
        (Transform::AesCbc(HmacSha256_128), 16, 32),
        (Transform::AesCbc(HmacSha256_128), 24, 32),
        (Transform::TripleDesCbc(HmacSha1_96), 24, 20),
        (Transform::TripleDesCbc(HmacSha256_128), 24, 32),
    ]
}

fn pair(t: Transform, enc: usize, auth: usize, mode: Mode, esn: bool) -> (OutboundSa, InboundSa) {
    let mut c = SaConfig::new(0xc0ff_ee01, t, mode);
    c.esn = esn;
    let ek: Vec<u8> = (0..enc as u8).map(|i| i.wrapping_mul(7)).collect();
    let ak: Vec<u8> = (0..auth as u8).map(|i| i ^ 0x5c).collect();
    (
        OutboundSa::new(c, &ek, &ak, OsRandom::handle()).unwrap(),
        InboundSa::new(c, &ek, &ak).unwrap(),
    )
}

/// A payload of `len` octets; in tunnel mode it starts like IPv4.
fn payload(len: usize, mode: Mode, salt: u8) -> (Vec<u8>, u8) {
    let mut p: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_add(salt)).collect();
    match mode {
        Mode::Tunnel => {
            if let Some(b) = p.first_mut() {
                *b = 0x45;
            } else {
                p.push(0x45);
            }
            (p, NEXT_HEADER_IPV4)
        }
        Mode::Transport => (p, NEXT_HEADER_UDP),
    }
}

fn seal(sa: &mut OutboundSa, p: &[u8], nh: u8) -> Vec<u8> {
    let mut buf = vec![0xeeu8; HEADROOM + p.len() + TAILROOM];
    buf[HEADROOM..HEADROOM + p.len()].copy_from_slice(p);
    let r = sa.seal(&mut buf, HEADROOM..HEADROOM + p.len(), nh).unwrap();
    buf[r].to_vec()
}

fn open_payload(sa: &mut InboundSa, mut packet: Vec<u8>) -> Result<(u8, Vec<u8>, u64), EspError> {
    match sa.open(&mut packet)? {
        Opened::Payload {
            next_header,
            payload,
            seq,
        } => Ok((next_header, packet[payload].to_vec(), seq)),
        Opened::Dummy { seq } => Ok((NEXT_HEADER_DUMMY, vec![], seq)),
    }
}

#[test]
fn round_trip_every_transform_mode_and_esn() {
    let mut lens: Vec<usize> = (0..40).collect();
    lens.extend([255, 256, 257, 1279, 1400, 1499, 1500]);
    for (t, enc, auth) in transforms() {
        for mode in [Mode::Transport, Mode::Tunnel] {
            for esn in [false, true] {
                let (mut out, mut inb) = pair(t, enc, auth, mode, esn);
                for (i, &len) in lens.iter().enumerate() {
                    let (p, nh) = payload(len, mode, i as u8);
                    let packet = seal(&mut out, &p, nh);
                    // RFC 4303 s2.4: the ciphertext is aligned.
                    assert_eq!(packet.len() % 4, 0, "{t:?} {len}");
                    let (got_nh, got, seq) = open_payload(&mut inb, packet).unwrap();
                    assert_eq!((got_nh, seq), (nh, i as u64 + 1), "{t:?} {mode:?}");
                    assert_eq!(got, p, "{t:?} {mode:?} esn {esn} len {len}");
                }
                assert_eq!(out.counters().packets_out, lens.len() as u64);
                assert_eq!(inb.counters().packets_in, lens.len() as u64);
                assert_eq!(inb.counters().bytes_in, out.counters().bytes_out);
            }
        }
    }
}

#[test]
fn tampering_any_octet_fails_the_icv() {
    for (t, enc, auth) in transforms() {
        let (mut out, mut inb) = pair(t, enc, auth, Mode::Transport, false);
        let (p, nh) = payload(61, Mode::Transport, 3);
        let packet = seal(&mut out, &p, nh);
        for i in 0..packet.len() {
            let mut bad = packet.clone();
            bad[i] ^= 0x01;
            let e = open_payload(&mut inb, bad).unwrap_err();
            match (i, &e) {
                (0..=3, EspError::WrongSpi { .. }) => {}
                // A changed sequence number is another packet, whose ICV
                // does not verify either.
                (_, EspError::IcvMismatch { .. }) => {}
                // Sequence number 0 is never sent (RFC 4303 s3.3.3).
                (4..=7, EspError::TooOld { seq: 0, .. }) => {}
                _ => panic!("{t:?}: flipping octet {i} gave {e}"),
            }
        }
        let c = inb.counters();
        assert_eq!(c.bad_icv + c.too_old, packet.len() as u64 - 4);
        assert_eq!(inb.counters().packets_in, 0);
        // The window did not move: the real packet still opens.
        assert_eq!(open_payload(&mut inb, packet).unwrap().1, p);
    }
}

#[test]
fn errors_name_the_field() {
    let (mut out, mut inb) = pair(
        Transform::AesCbc(Integrity::HmacSha1_96),
        16,
        20,
        Mode::Transport,
        false,
    );
    let e = inb.open(&mut [0u8; 12]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "ESP packet of 12 octets is shorter than header + IV + ICV (52)"
    );
    let packet = seal(&mut out, b"abc", 17);
    let mut again = packet.clone();
    open_payload(&mut inb, packet).unwrap();
    assert_eq!(
        inb.open(&mut again).unwrap_err().to_string(),
        "replayed: seq 1 already received"
    );
    let mut wrong = again.clone();
    wrong[3] ^= 0xff;
    assert_eq!(
        inb.open(&mut wrong).unwrap_err().to_string(),
        "SPI 0xc0ffeefe is not this SA's (0xc0ffee01)"
    );
    let mut bad = again.clone();
    bad[7] = 7;
    assert_eq!(
        inb.open(&mut bad).unwrap_err().to_string(),
        "ICV mismatch on SPI 0xc0ffee01 seq 7"
    );
    let mut buf = [0u8; 40];
    assert_eq!(
        out.seal(&mut buf, 10..20, 17).unwrap_err().to_string(),
        "seal needs 24 octets of headroom before the payload, found 10"
    );
    assert_eq!(
        out.seal(&mut buf, 24..40, 17).unwrap_err().to_string(),
        "seal needs 28 octets of tailroom after the payload, found 0"
    );
    let e = InboundSa::new(
        SaConfig::new(1, Transform::AesGcm16, Mode::Tunnel),
        &[0; 16],
        &[],
    )
    .unwrap_err();
    assert!(e
        .to_string()
        .starts_with("AES-GCM key material of 16 octets"));
    let (_, mut tun) = pair(Transform::AesGcm16, 20, 0, Mode::Tunnel, false);
    let (mut tout, _) = pair(Transform::AesGcm16, 20, 0, Mode::Transport, false);
    let e = open_payload(&mut tun, seal(&mut tout, &[0x45; 20], 17)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Tunnel-mode SA got next header 17, not IPv4 (4) or IPv6 (41)"
    );
    let e = open_payload(&mut tun, seal(&mut tout, &[0x45; 20], 41)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "next header 41 but the inner packet's version nibble is 4"
    );
}

/// A GCM packet with a valid tag around whatever plaintext the test wants,
/// sealed with ring directly (the SA itself only pads correctly).
fn gcm_packet(material: &[u8], spi: u32, seq: u32, plaintext: &[u8]) -> Vec<u8> {
    let key =
        aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, &material[..16]).unwrap());
    let iv = u64::from(seq).to_be_bytes();
    let mut nonce = [0u8; 12];
    nonce[..4].copy_from_slice(&material[16..]);
    nonce[4..].copy_from_slice(&iv);
    let mut aad = spi.to_be_bytes().to_vec();
    aad.extend(seq.to_be_bytes());
    let mut body = plaintext.to_vec();
    key.seal_in_place_append_tag(
        aead::Nonce::assume_unique_for_key(nonce),
        aead::Aad::from(&aad),
        &mut body,
    )
    .unwrap();
    let mut p = aad;
    p.extend(iv);
    p.extend(body);
    p
}

#[test]
fn padding_is_checked_after_the_icv() {
    let material = [9u8; 20];
    let c = SaConfig::new(0x1234_abcd, Transform::AesGcm16, Mode::Transport);
    let mut inb = InboundSa::new(c, &material, &[]).unwrap();
    // RFC 4303 s2.4: 1, 2, 3 ... is the default padding; refuse others.
    let p = gcm_packet(&material, 0x1234_abcd, 1, &[0xaa, 0xbb, 1, 3, 3, 4, 4, 17]);
    assert_eq!(
        open_payload(&mut inb, p).unwrap_err().to_string(),
        "padding octet 1 is 3, not 2 (RFC 4303 s2.4)"
    );
    let p = gcm_packet(&material, 0x1234_abcd, 2, &[1, 2, 200, 17]);
    assert_eq!(
        open_payload(&mut inb, p).unwrap_err().to_string(),
        "pad length 200 exceeds the 2 octets of padding room"
    );
    assert_eq!(inb.counters().bad_padding, 2);
    // The ICV verified, so the window moved (s3.4.3): these are replays now.
    let p = gcm_packet(&material, 0x1234_abcd, 2, &[1, 2, 2, 17]);
    assert!(matches!(
        open_payload(&mut inb, p),
        Err(EspError::Replayed { seq: 2 })
    ));
    let p = gcm_packet(&material, 0x1234_abcd, 3, &[1, 2, 2, 17]);
    assert_eq!(open_payload(&mut inb, p).unwrap(), (17, vec![], 3));
}

#[test]
fn dummy_packets_are_dropped_and_counted() {
    for mode in [Mode::Transport, Mode::Tunnel] {
        let (mut out, mut inb) = pair(Transform::AesGcm16, 20, 0, mode, false);
        let mut packet = seal(&mut out, &[0; 30], NEXT_HEADER_DUMMY);
        assert_eq!(inb.open(&mut packet).unwrap(), Opened::Dummy { seq: 1 });
        assert_eq!(inb.counters().dummy, 1);
        assert_eq!(inb.counters().packets_in, 0);
    }
}

fn window_pair(size: usize) -> (OutboundSa, InboundSa, Vec<Vec<u8>>) {
    let mut c = SaConfig::new(7, Transform::AesGcm16, Mode::Transport);
    c.replay_window = size;
    let key = [3u8; 20];
    let mut out = OutboundSa::new(c, &key, &[], OsRandom::handle()).unwrap();
    let inb = InboundSa::new(c, &key, &[]).unwrap();
    let packets = (0..5000).map(|_| seal(&mut out, b"x", 17)).collect();
    (out, inb, packets)
}

#[test]
fn replay_window_in_order_reordered_duplicates_too_old_jumps() {
    for size in [1024usize, 2048] {
        let (_, mut inb, p) = window_pair(size);
        // p[i] has sequence number i + 1.
        let open = |inb: &mut InboundSa, seq: usize| open_payload(inb, p[seq - 1].clone());
        for s in 1..=10 {
            assert_eq!(open(&mut inb, s).unwrap().2, s as u64);
        }
        // Reordered within the window.
        for s in [20, 15, 11, 19, 12] {
            open(&mut inb, s).unwrap();
        }
        assert!(matches!(
            open(&mut inb, 15),
            Err(EspError::Replayed { seq: 15 })
        ));
        // A large jump, then the left edge of the window.
        open(&mut inb, 4000).unwrap();
        let left = 4000 - size + 1;
        open(&mut inb, left).unwrap();
        let e = open(&mut inb, left - 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "too old: seq {} is left of the window (last 4000)",
                left - 1
            )
        );
        assert!(matches!(open(&mut inb, 3), Err(EspError::TooOld { .. })));
        assert!(matches!(
            open(&mut inb, left),
            Err(EspError::Replayed { .. })
        ));
        // Unreceived numbers inside the window are still welcome.
        open(&mut inb, 3999).unwrap();
        open(&mut inb, left + 1).unwrap();
        let c = inb.counters();
        assert_eq!((c.replayed, c.too_old), (2, 2));
        assert_eq!(c.packets_in, 10 + 5 + 4);
    }
}

#[test]
fn esn_crosses_2_to_the_32_and_32_bit_sas_stop() {
    let key = [1u8; 20];
    let mut c = SaConfig::new(9, Transform::AesGcm16, Mode::Transport);
    c.esn = true;
    let mut out = OutboundSa::new(c, &key, &[], OsRandom::handle()).unwrap();
    let mut inb = InboundSa::new(c, &key, &[]).unwrap();
    out.set_seq(0xffff_fff0);
    let packets: Vec<_> = (0..40).map(|_| seal(&mut out, b"esn", 17)).collect();
    // Deliver with some reordering across the boundary.
    let mut order: Vec<usize> = (0..40).collect();
    order.swap(14, 17);
    order.swap(15, 30);
    for i in order {
        let (_, _, seq) = open_payload(&mut inb, packets[i].clone()).unwrap();
        assert_eq!(seq, 0xffff_fff0 + 1 + i as u64);
    }
    assert!(matches!(
        open_payload(&mut inb, packets[3].clone()),
        Err(EspError::Replayed { .. })
    ));

    // Without ESN: the last number is 2^32 - 1, rekey is asked for first.
    let c = SaConfig::new(9, Transform::AesGcm16, Mode::Transport);
    let mut out = OutboundSa::new(c, &key, &[], OsRandom::handle()).unwrap();
    assert!(!out.needs_rekey());
    out.set_seq((1 << 32) - (1 << 24));
    assert!(out.needs_rekey());
    out.set_seq(u64::from(u32::MAX) - 1);
    seal(&mut out, b"last", 17);
    let mut buf = [0u8; 64];
    assert_eq!(
        out.seal(&mut buf, HEADROOM..HEADROOM + 4, 17)
            .unwrap_err()
            .to_string(),
        "sequence number space of SPI 0x00000009 exhausted at 4294967295: rekey"
    );
    let mut c = SaConfig::new(9, Transform::AesGcm16, Mode::Transport);
    c.rekey_after = Some(3);
    let mut out = OutboundSa::new(c, &key, &[], OsRandom::handle()).unwrap();
    for _ in 0..3 {
        assert!(!out.needs_rekey());
        seal(&mut out, b"", 17);
    }
    assert!(out.needs_rekey());
}

#[test]
fn udp_4500_marker_keepalive_and_esp() {
    assert_eq!(
        classify_udp_4500(&[0xff]),
        Ok(UdpEncapPayload::NatKeepalive)
    );
    assert_eq!(
        classify_udp_4500(&[0, 0, 0, 0, 0x11, 0x22]),
        Ok(UdpEncapPayload::Ike { offset: 4 })
    );
    assert_eq!(
        classify_udp_4500(&[0, 0, 0, 7, 0, 0, 0, 1, 9]),
        Ok(UdpEncapPayload::Esp)
    );
    assert!(classify_udp_4500(&[1, 2]).is_err());
    assert!(classify_udp_4500(&[]).is_err());
    let mut buf = [9u8; 10];
    assert_eq!(prepend_non_esp_marker(&mut buf, 4..10), Some(0..10));
    assert_eq!(buf[..4], NON_ESP_MARKER);
    assert_eq!(prepend_non_esp_marker(&mut buf, 3..10), None);
    assert_eq!(
        parse_spi(&[0x12, 0x34, 0xab, 0xcd, 0, 0, 0, 1]),
        Ok(0x1234_abcd)
    );
    assert!(parse_spi(&[1, 2, 3]).is_err());
}

#[test]
fn debug_does_not_show_keys() {
    let (out, inb) = pair(
        Transform::AesCbc(Integrity::HmacSha1_96),
        16,
        20,
        Mode::Tunnel,
        false,
    );
    for s in [format!("{out:?}"), format!("{inb:?}")] {
        assert!(s.contains("<redacted>"));
        assert!(!s.contains("key: ["));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn open_never_panics_on_arbitrary_bytes(config in 0u8..64, bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let (_, mut inb) = tsunagi_ipsec::esp::fuzzing::sa_pair(config);
        let mut b = bytes.clone();
        prop_assert!(inb.open(&mut b).is_err());
        let mut b = bytes;
        if b.len() >= 4 {
            b[..4].copy_from_slice(&0x1234_abcdu32.to_be_bytes());
        }
        prop_assert!(inb.open(&mut b).is_err());
    }

    #[test]
    fn random_lengths_round_trip(t in 0usize..8, len in 0usize..1500, tunnel: bool, salt: u8) {
        let (t, enc, auth) = transforms()[t];
        let mode = if tunnel { Mode::Tunnel } else { Mode::Transport };
        let (mut out, mut inb) = pair(t, enc, auth, mode, false);
        let (p, nh) = payload(len, mode, salt);
        let (got_nh, got, _) = open_payload(&mut inb, seal(&mut out, &p, nh)).unwrap();
        prop_assert_eq!(got_nh, nh);
        prop_assert_eq!(got, p);
    }
}

#[test]
fn fuzz_entry_point_holds_for_a_few_inputs() {
    for config in 0..64u8 {
        tsunagi_ipsec::esp::fuzzing::esp_open(&[config, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        tsunagi_ipsec::esp::fuzzing::esp_open(&[config]);
    }
}
