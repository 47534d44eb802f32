//! Property tests for RFC 1662 framing: what the encoder writes under any
//! ACCM, extra escape set, ACFC and PFC, the decoder reads back, however the
//! byte stream is cut into reads; random input never panics.

use proptest::prelude::*;
use tsunagi_ppp::hdlc::{fcs16, Decoder, Encoder, FrameError, FLAG};

/// Bit-at-a-time CRC-16 with the RFC 1662 polynomial, as a reference.
fn fcs16_bitwise(mut fcs: u16, data: &[u8]) -> u16 {
    for &b in data {
        fcs ^= u16::from(b);
        for _ in 0..8 {
            fcs = if fcs & 1 != 0 {
                (fcs >> 1) ^ 0x8408
            } else {
                fcs >> 1
            };
        }
    }
    fcs
}

/// A protocol number that RFC 1661 section 2 allows: high octet even, low
/// octet odd.
fn protocol() -> impl Strategy<Value = u16> {
    prop_oneof![
        any::<u16>().prop_map(|p| (p & 0xfeff) | 1),
        // Small protocols, the ones PFC compresses.
        any::<u8>().prop_map(|p| u16::from(p) | 1),
        Just(0xc021u16),
    ]
}

#[derive(Debug, Clone)]
struct LinkOptions {
    accm: u32,
    escape: Vec<u8>,
    acfc: bool,
    pfc: bool,
}

fn options() -> impl Strategy<Value = LinkOptions> {
    (
        prop_oneof![Just(0u32), Just(0xffff_ffffu32), any::<u32>()],
        prop::collection::vec(any::<u8>(), 0..6),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(accm, escape, acfc, pfc)| LinkOptions {
            accm,
            escape,
            acfc,
            pfc,
        })
}

fn encoder(o: &LinkOptions) -> Encoder {
    let mut e = Encoder::new();
    e.set_accm(o.accm);
    e.set_escape(&o.escape);
    e.set_acfc(o.acfc);
    e.set_pfc(o.pfc);
    e
}

#[derive(Debug, Clone, PartialEq)]
struct Got {
    protocol: u16,
    info: Vec<u8>,
    acfc: bool,
    pfc: bool,
}

fn decode_chunks(decoder: &mut Decoder, chunks: &[&[u8]]) -> Vec<Result<Got, FrameError>> {
    let mut out = Vec::new();
    for chunk in chunks {
        decoder.push(chunk, &mut |r| {
            out.push(r.map(|f| Got {
                protocol: f.protocol,
                info: f.info.to_vec(),
                acfc: f.address_control_omitted(),
                pfc: f.protocol_compressed(),
            }))
        });
    }
    out
}

/// Checks the transparency promise of RFC 1662 section 4.2 on one encoded
/// frame: flags only at both ends, and no raw octet that must be escaped.
fn assert_transparent(encoded: &[u8], must_escape: impl Fn(u8) -> bool) {
    assert_eq!(encoded.first(), Some(&FLAG));
    assert_eq!(encoded.last(), Some(&FLAG));
    let inner = &encoded[1..encoded.len() - 1];
    let mut i = 0;
    while i < inner.len() {
        let b = inner[i];
        assert_ne!(b, FLAG, "raw flag inside the frame at {i}: {encoded:02x?}");
        if b == 0x7d {
            let next = *inner.get(i + 1).expect("escape at the end of the frame");
            assert!(
                must_escape(next ^ 0x20),
                "needless escape of {:#04x}",
                next ^ 0x20
            );
            i += 2;
        } else {
            assert!(!must_escape(b), "raw {b:#04x} in {encoded:02x?}");
            i += 1;
        }
    }
}

#[test]
fn every_octet_value_under_full_accm_and_escape_0xff() {
    let info: Vec<u8> = (0..=255u8).collect();
    let mut e = Encoder::new();
    e.set_escape(&[0xff]);
    for lcp_defaults in [false, true] {
        let mut out = Vec::new();
        e.encode(0x0021, &info, lcp_defaults, &mut out);
        assert_transparent(&out, |b| b < 0x20 || b == 0x7d || b == 0x7e || b == 0xff);
        // Flag, header 7d df 7d 23 7d 20 21, the 256 info octets of which 35
        // escaped (32 control characters, 0x7d, 0x7e, 0xff), FCS, flag.
        let min_len = 1 + 7 + 256 + 35 + 2 + 1;
        assert!(out.len() >= min_len, "{} octets", out.len());
        assert_eq!(&out[..8], &[0x7e, 0x7d, 0xdf, 0x7d, 0x23, 0x7d, 0x20, 0x21]);
        let mut d = Decoder::new(256);
        let got = decode_chunks(&mut d, &[&out]);
        assert_eq!(got.len(), 1);
        let got = got[0].as_ref().expect("good frame");
        assert_eq!(got.protocol, 0x0021);
        assert_eq!(got.info, info);
        assert!(!got.acfc && !got.pfc);
    }
}

#[test]
fn lcp_defaults_override_negotiated_options() {
    let mut e = Encoder::new();
    e.set_accm(0);
    e.set_acfc(true);
    e.set_pfc(true);
    let info = [0x01, 0x01, 0x00, 0x08, 0x02, 0x06, 0x00, 0x00];
    let mut plain = Vec::new();
    e.encode(0x0021, &info, false, &mut plain);
    // ACCM 0: control characters go out raw; ACFC + PFC: one header octet.
    assert_eq!(&plain[..4], &[0x7e, 0x21, 0x01, 0x01]);
    let mut lcp = Vec::new();
    e.encode(0xc021, &info, true, &mut lcp);
    assert_eq!(&lcp[..7], &[0x7e, 0xff, 0x7d, 0x23, 0xc0, 0x21, 0x7d]);
    assert_transparent(&lcp, |b| b < 0x20 || b == 0x7d || b == 0x7e);
}

#[test]
fn back_to_back_frames_share_a_flag() {
    let e = Encoder::new();
    let mut out = Vec::new();
    e.encode(0xc021, &[9, 0, 0, 4], false, &mut out);
    let first = out.len();
    e.encode(0xc021, &[9, 1, 0, 4], false, &mut out);
    assert_eq!(out.len(), 2 * first - 1);
    assert_eq!(out.iter().filter(|&&b| b == FLAG).count(), 3);
    let got = decode_chunks(&mut Decoder::new(10), &[&out]);
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(Result::is_ok));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn fcs_slicing_by_8_matches_bitwise(init: u16, data in prop::collection::vec(any::<u8>(), 0..200), cut in 0usize..200) {
        prop_assert_eq!(fcs16(init, &data), fcs16_bitwise(init, &data));
        let cut = cut.min(data.len());
        prop_assert_eq!(fcs16(fcs16(init, &data[..cut]), &data[cut..]), fcs16(init, &data));
    }

    #[test]
    fn encode_decode_round_trip(
        o in options(),
        frames in prop::collection::vec(
            (protocol(), prop::collection::vec(any::<u8>(), 0..300), any::<bool>()), 1..5),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let e = encoder(&o);
        let mut stream = Vec::new();
        for (protocol, info, lcp_defaults) in &frames {
            let start = stream.len();
            e.encode(*protocol, info, *lcp_defaults, &mut stream);
            // Each frame on its own obeys the ACCM it was sent with.
            let accm = if *lcp_defaults { 0xffff_ffff } else { o.accm };
            let in_accm = |b: u8| b < 0x20 && accm & (1 << b) != 0;
            // Extra escapes except those that cannot be sent escaped (see
            // Encoder::set_escape).
            let extra: Vec<u8> = o
                .escape
                .iter()
                .copied()
                .filter(|&b| b != 0x5d && b != 0x5e && !in_accm(b ^ 0x20))
                .collect();
            let frame = if start == 0 { &stream[..] } else { &stream[start - 1..] };
            assert_transparent(frame, |b| b == 0x7d || b == 0x7e || in_accm(b) || extra.contains(&b));
        }
        // Cut the stream into reads at random points.
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        let chunks: Vec<&[u8]> = points.windows(2).map(|w| &stream[w[0]..w[1]]).collect();
        let mut d = Decoder::new(300);
        d.set_rx_accm(o.accm);
        let got = decode_chunks(&mut d, &chunks);
        prop_assert_eq!(got.len(), frames.len());
        for (got, (protocol, info, lcp_defaults)) in got.into_iter().zip(&frames) {
            let got = got.expect("good frame");
            prop_assert_eq!(got.protocol, *protocol);
            prop_assert_eq!(&got.info, info);
            prop_assert_eq!(got.acfc, o.acfc && !lcp_defaults);
            // An empty frame keeps 4 octets (RFC 1662 section 4.3), and
            // protocol 0x00ff is not confused with an address field.
            let ambiguous = o.acfc && (info.is_empty() || *protocol == 0x00ff);
            prop_assert_eq!(got.pfc, o.pfc && !lcp_defaults && *protocol < 0x100 && !ambiguous);
        }
        prop_assert_eq!(d.stats().frames as usize, frames.len());
        prop_assert_eq!(d.stats().errors, 0);
    }

    #[test]
    fn random_input_never_panics_and_every_frame_is_accounted(
        bytes in prop::collection::vec(
            prop_oneof![3 => any::<u8>(), 1 => Just(0x7eu8), 1 => Just(0x7du8), 1 => Just(0xffu8)], 0..2000),
        max_info in 0usize..100,
        rx_accm: u32,
        cut in 0usize..2000,
    ) {
        let cut = cut.min(bytes.len());
        let mut d = Decoder::new(max_info);
        d.set_rx_accm(rx_accm);
        let got = decode_chunks(&mut d, &[&bytes[..cut], &bytes[cut..]]);
        let ok = got.iter().filter(|r| r.is_ok()).count();
        prop_assert_eq!(d.stats().frames as usize, ok);
        prop_assert_eq!(d.stats().errors as usize, got.len() - ok);
        for r in &got {
            match r {
                Ok(f) => {
                    prop_assert!(f.info.len() <= max_info);
                    prop_assert!(f.protocol & 0x0100 == 0 && f.protocol & 1 == 1);
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }
        // A good frame after any garbage is still found: the decoder
        // resynchronises at the flag that opens it.
        let mut tail = vec![FLAG];
        Encoder::new().encode(0xc021, &[9, 7, 0, 4], false, &mut tail);
        let after = decode_chunks(&mut d, &[&tail]);
        match after.last().expect("a result") {
            Ok(last) => {
                prop_assert_eq!(last.protocol, 0xc021);
                prop_assert_eq!(&last.info, &vec![9, 7, 0, 4]);
            }
            Err(FrameError::TooLong { .. }) => prop_assert!(max_info < 4),
            Err(e) => prop_assert!(false, "good frame after garbage lost: {e}"),
        }
    }
}

#[test]
fn compression_never_makes_an_unreadable_frame() {
    let mut e = Encoder::new();
    e.set_accm(0);
    e.set_acfc(true);
    e.set_pfc(true);
    // Empty information (would be 3 octets) and protocol 0x00ff (would look
    // like an address field) keep the 2-octet protocol.
    for (protocol, info) in [(0x0021u16, &[][..]), (0x00ff, &[1, 2, 3][..])] {
        let mut out = Vec::new();
        e.encode(protocol, info, false, &mut out);
        assert_eq!(&out[1..3], &protocol.to_be_bytes());
        let mut d = Decoder::new(10);
        d.set_rx_accm(0);
        let got = decode_chunks(&mut d, &[&out]);
        let got = got[0].as_ref().expect("good frame");
        assert_eq!((got.protocol, &got.info[..]), (protocol, info));
    }
}
