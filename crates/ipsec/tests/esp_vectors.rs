//! ESP packets from the specifications through the public API.
//!
//! - RFC 3602 s4 cases 5 to 8 are ESP packets (AES-128-CBC, no ICV): an
//!   outbound SA whose random source hands out the RFC's IV seals the RFC's
//!   payload to the RFC's packet (the RFC pads minimally with 1, 2, 3, ...
//!   as this implementation does), followed by the HMAC-SHA1-96 of it; and
//!   an inbound SA opens the RFC packet with that ICV appended.
//! - AES-GCM (RFC 4106): a sealed packet is opened by ring directly with
//!   the nonce (salt, explicit IV) and AAD (SPI, sequence number) RFC 4106
//!   s4 and s5 prescribe, and the explicit IV is the sequence number.

use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use ring::aead;
use sha1::Sha1;
use tsunagi_crypto::random::RandomSource;
use tsunagi_ipsec::esp::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Hands out the IVs it was given.
struct FixedIv(Mutex<Vec<u8>>);
impl RandomSource for FixedIv {
    fn fill(&self, dest: &mut [u8]) {
        dest.copy_from_slice(&self.0.lock().unwrap());
    }
}

const AUTH: [u8; 20] = [0x5a; 20];

struct Case {
    name: &'static str,
    key: &'static str,
    spi: u32,
    seq: u32,
    iv: &'static str,
    payload: &'static str,
    next_header: u8,
    packet: &'static str,
}

/// RFC 3602 s4, cases 5 to 8: key, SPI, sequence number, IV, the payload
/// (an ICMP message in transport mode, an IPv4 packet in tunnel mode) and
/// the whole ESP packet.
const RFC3602: [Case; 4] = [
    Case {
        name: "case 5 (transport, ICMP, 64 octets)",
        key: "90d382b410eeba7ad938c46cec1a82bf",
        spi: 0x4321,
        seq: 1,
        iv: "e96e8c08ab465763fd098d45dd3ff893",
        payload: "08000ebda70a00008e9c083db95b070008090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
                  202122232425262728292a2b2c2d2e2f3031323334353637",
        next_header: 1,
        packet: "0000432100000001e96e8c08ab465763fd098d45dd3ff893f663c25d325c18c6a9453e194e120849
                 a4870b66cc6b9965330013b4898dc856a4699e523a55db080b59ec3a8e4b7e52775b07d1db34ed9c
                 538ab50c551b874aa269add047ad2d5913ac19b7cfbad4a6",
    },
    Case {
        name: "case 6 (transport, ICMP, 28 octets)",
        key: "90d382b410eeba7ad938c46cec1a82bf",
        spi: 0x4321,
        seq: 8,
        iv: "69d08df7d203329db093fc4924e5bd80",
        payload: "0800b5e8a80a0500a69c083d0b660e00777777777777777777777777",
        next_header: 1,
        packet: "000043210000000869d08df7d203329db093fc4924e5bd80f51995881ec4e0c4488987ce742e8109
                 689bb379d2d750c0d915dca346a89f75",
    },
    Case {
        name: "case 7 (tunnel, IPv4, 84 octets)",
        key: "0123456789abcdef0123456789abcdef",
        spi: 0x8765,
        seq: 2,
        iv: "f4e765244f6407adf13dc1380f673f37",
        payload: "45000054090400004001f988c0a87b03c0a87bc808009f76a90a0100b49c083d02a2040008090a0b
                  0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f30313233
                  34353637",
        next_header: 4,
        packet: "0000876500000002f4e765244f6407adf13dc1380f673f37773b5241a4c449225e4f3ce5ed611b0c
                 237ca96cf74a93013c1b0ea1a0cf70f8e4ecaec78ac53aad7a0f022b859243c647752e94a859352b
                 8a4d4d2decd136e5c177f132ad3fbfb2201ac9904c74ee0a109e0ca1e4dfe9d5a100b842f1c22f0d",
    },
    Case {
        name: "case 8 (tunnel, IPv4, 68 octets)",
        key: "0123456789abcdef0123456789abcdef",
        spi: 0x8765,
        seq: 5,
        iv: "85d47224b5f3dd5d2101d4ea8dffab22",
        payload: "45000044090c00004001f990c0a87b03c0a87bc80800d63caa0a0200c69c083da3de0300ffffffff
                  ffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        next_header: 4,
        packet: "000087650000000585d47224b5f3dd5d2101d4ea8dffab2215b92683819596a8047232cc00f7048f
                 e45318e11f8a0f62ede3c3fc61203bb50f980a08c9843fd3a1b06d5c07ff9639b7eb7dfb3512e5de
                 435e7207ed971ef3d2726d9b5ef6affc6d17a0decbb13892",
    },
];

fn hmac_sha1_96(data: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha1> as Mac>::new_from_slice(&AUTH).unwrap();
    m.update(data);
    m.finalize().into_bytes()[..12].to_vec()
}

fn config(c: &Case) -> SaConfig {
    let mode = if c.next_header == 4 {
        Mode::Tunnel
    } else {
        Mode::Transport
    };
    SaConfig::new(c.spi, Transform::AesCbc(Integrity::HmacSha1_96), mode)
}

#[test]
fn rfc3602_esp_cases_5_to_8_seal() {
    for c in &RFC3602 {
        let random = Arc::new(FixedIv(Mutex::new(hex(c.iv))));
        let mut sa = OutboundSa::new(config(c), &hex(c.key), &AUTH, random).unwrap();
        sa.set_seq(u64::from(c.seq) - 1);
        let payload = hex(c.payload);
        let mut buf = vec![0u8; HEADROOM + payload.len() + TAILROOM];
        buf[HEADROOM..HEADROOM + payload.len()].copy_from_slice(&payload);
        let r = sa
            .seal(&mut buf, HEADROOM..HEADROOM + payload.len(), c.next_header)
            .unwrap();
        let mut expected = hex(c.packet);
        expected.extend(hmac_sha1_96(&expected));
        assert_eq!(buf[r].to_vec(), expected, "{}", c.name);
    }
}

#[test]
fn rfc3602_esp_cases_5_to_8_open() {
    for c in &RFC3602 {
        let mut sa = InboundSa::new(config(c), &hex(c.key), &AUTH).unwrap();
        let mut packet = hex(c.packet);
        packet.extend(hmac_sha1_96(&packet));
        match sa.open(&mut packet).unwrap() {
            Opened::Payload {
                next_header,
                payload,
                seq,
            } => {
                assert_eq!(next_header, c.next_header, "{}", c.name);
                assert_eq!(seq, u64::from(c.seq));
                assert_eq!(packet[payload].to_vec(), hex(c.payload), "{}", c.name);
            }
            other => panic!("{}: {other:?}", c.name),
        }
    }
}

/// RFC 4106 s3.1, s4, s5 and s8.1 checked with ring directly, for both key
/// sizes and with and without ESN.
#[test]
fn aes_gcm_framing_is_rfc4106() {
    for (key_len, esn) in [(16, false), (32, false), (16, true), (32, true)] {
        let material: Vec<u8> = (0..key_len as u8 + 4).collect();
        let mut c = SaConfig::new(0x1234_abcd, Transform::AesGcm16, Mode::Transport);
        c.esn = esn;
        let mut sa =
            OutboundSa::new(c, &material, &[], Arc::new(FixedIv(Mutex::new(vec![])))).unwrap();
        sa.set_seq(0x1_0000_0006);
        let payload = b"an L2TP packet in UDP".to_vec();
        let mut buf = vec![0u8; HEADROOM + payload.len() + TAILROOM];
        buf[HEADROOM..HEADROOM + payload.len()].copy_from_slice(&payload);
        let r = if esn {
            sa.seal(&mut buf, HEADROOM..HEADROOM + payload.len(), 17)
                .unwrap()
        } else {
            match sa.seal(&mut buf, HEADROOM..HEADROOM + payload.len(), 17) {
                Err(EspError::SequenceExhausted { .. }) => continue,
                other => panic!("32-bit SA sealed past 2^32: {other:?}"),
            }
        };
        let p = &buf[r];
        let seq: u64 = 0x1_0000_0007;
        assert_eq!(&p[..4], &0x1234_abcdu32.to_be_bytes());
        assert_eq!(&p[4..8], &(seq as u32).to_be_bytes());
        assert_eq!(
            &p[8..16],
            &seq.to_be_bytes(),
            "explicit IV = sequence number"
        );
        let alg = if key_len == 16 {
            &aead::AES_128_GCM
        } else {
            &aead::AES_256_GCM
        };
        let key = aead::LessSafeKey::new(aead::UnboundKey::new(alg, &material[..key_len]).unwrap());
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(&material[key_len..]);
        nonce[4..].copy_from_slice(&p[8..16]);
        let mut aad = 0x1234_abcdu32.to_be_bytes().to_vec();
        aad.extend(&((seq >> 32) as u32).to_be_bytes());
        aad.extend(&(seq as u32).to_be_bytes());
        let mut ct = p[16..].to_vec();
        let pt = key
            .open_in_place(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(&aad),
                &mut ct,
            )
            .unwrap();
        // payload (21) + padding to 4 with the trailer: 1 octet, 1, 17.
        assert_eq!(&pt[..payload.len()], &payload[..]);
        assert_eq!(&pt[payload.len()..], &[1, 1, 17]);
    }
}
