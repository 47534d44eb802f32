//! The block scan behind RFC 1662 section 4.2 transparency, against
//! byte-by-byte references written here: the encoder's output is exactly
//! what escaping one octet at a time gives, under every ACCM and extra
//! escape set; whatever the encoder writes comes back from the decoder
//! however the stream is cut, with noise before the first flag and control
//! characters inserted on the way; and on arbitrary streams the decoder
//! reports the frames, aborts, oversized frames and counters that a
//! one-octet-at-a-time decoder finds. Data runs from empty to 70000 octets
//! (more than one 64-octet block, and the TSO frames between gateways) and
//! is rich in flags, escapes, control characters and their escaped forms.

use proptest::prelude::*;
use tsunagi_ppp::hdlc::{fcs16, Decoder, Encoder, FcsMode, FrameError, ESCAPE, FCS_INIT, FLAG};

/// RFC 1662 section 4.2: an escaped octet is sent XORed with this.
const ESCAPE_XOR: u8 = 0x20;
/// The protocol every test frame carries (IPv4, RFC 1332); not LCP, so
/// the FCS mode set on the encoder applies.
const PROTOCOL: u16 = 0x0021;
/// An information-field limit above the largest test packet.
const MAX_INFO: usize = 70_000;

/// An octet value, biased towards the ones the scan has to find: flag,
/// escape, control characters, and `0x5d`/`0x5e` (what escape and flag
/// become once escaped).
fn octet() -> impl Strategy<Value = u8> {
    prop_oneof![
        6 => any::<u8>(),
        1 => Just(FLAG),
        1 => Just(ESCAPE),
        1 => 0u8..0x20,
        1 => Just(ESCAPE ^ ESCAPE_XOR),
        1 => Just(FLAG ^ ESCAPE_XOR),
        1 => Just(0xff),
    ]
}

fn small_data() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(octet(), 0..300)
}

/// 65000 to 70000 octets from a seed: proptest's per-element generation is
/// too slow for this size. `density` sets how often an octet is drawn from
/// the special values instead of at random.
fn large_data() -> impl Strategy<Value = Vec<u8>> {
    (any::<u64>(), 65_000usize..=70_000, 0u32..4).prop_map(|(seed, len, density)| {
        let mut x = seed | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        const SPECIALS: [u8; 6] = [FLAG, ESCAPE, 0x00, 0x1f, 0x5d, 0x5e];
        (0..len)
            .map(|_| {
                let r = next();
                // density 0: random octets only (about 1 in 128 special).
                if density > 0 && (r >> 32) % (64 >> (2 * density)).max(1) == 0 {
                    SPECIALS[(r >> 40) as usize % SPECIALS.len()]
                } else {
                    r as u8
                }
            })
            .collect()
    })
}

fn accm() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), Just(u32::MAX), any::<u32>()]
}

fn extra_escapes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop_oneof![any::<u8>(), Just(0xffu8), 0u8..0x40], 0..5)
}

fn fcs_mode() -> impl Strategy<Value = FcsMode> {
    prop_oneof![Just(FcsMode::Fcs16), Just(FcsMode::Null)]
}

fn bit(accm: u32, b: u8) -> bool {
    b < 0x20 && accm & (1 << b) != 0
}

/// Whether the encoder must escape `b`, from the rules as documented:
/// flag and escape always (RFC 1662 section 4.2), control characters
/// whose ACCM bit is set (section 7.1), and the extra octets, except
/// `0x5d`/`0x5e` and those whose escaped form is a control character the
/// receiver drops (see `Encoder::set_escape`).
fn must_escape(b: u8, accm: u32, extra: &[u8]) -> bool {
    b == FLAG
        || b == ESCAPE
        || bit(accm, b)
        || (extra.contains(&b)
            && b != ESCAPE ^ ESCAPE_XOR
            && b != FLAG ^ ESCAPE_XOR
            && !bit(accm, b ^ ESCAPE_XOR))
}

/// One octet at a time: what `Encoder::encode` must append to an empty
/// buffer for `info` with `ff 03`, a 2-octet protocol and `mode`.
fn reference_frame(info: &[u8], accm: u32, extra: &[u8], mode: FcsMode) -> Vec<u8> {
    let mut body = vec![0xff, 0x03];
    body.extend_from_slice(&PROTOCOL.to_be_bytes());
    body.extend_from_slice(info);
    if mode == FcsMode::Fcs16 {
        let fcs = !fcs16(FCS_INIT, &body);
        body.extend_from_slice(&fcs.to_le_bytes());
    }
    let mut out = vec![FLAG];
    for &b in &body {
        if must_escape(b, accm, extra) {
            out.push(ESCAPE);
            out.push(b ^ ESCAPE_XOR);
        } else {
            out.push(b);
        }
    }
    out.push(FLAG);
    out
}

fn encoder(accm: u32, extra: &[u8], mode: FcsMode) -> Encoder {
    let mut e = Encoder::new();
    e.set_accm(accm);
    e.set_escape(extra);
    e.set_fcs(mode);
    e
}

fn decoder(rx_accm: u32, mode: FcsMode, max_info: usize) -> Decoder {
    let mut d = Decoder::new(max_info);
    d.set_rx_accm(rx_accm);
    d.set_rx_fcs(mode);
    d
}

/// What the decoder handed out, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Frame { protocol: u16, info: Vec<u8> },
    Error(FrameError),
}

/// Feeds `stream` cut at `cuts` (indexes, in any order, duplicates allowed).
fn push_in_pieces(d: &mut Decoder, stream: &[u8], cuts: &[prop::sample::Index]) -> Vec<Outcome> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
    at.push(0);
    at.push(stream.len());
    at.sort_unstable();
    let mut out = Vec::new();
    for w in at.windows(2) {
        d.push(&stream[w[0]..w[1]], &mut |r| {
            out.push(match r {
                Ok(f) => Outcome::Frame {
                    protocol: f.protocol,
                    info: f.info.to_vec(),
                },
                Err(e) => Outcome::Error(e),
            })
        });
    }
    out
}

fn check_encoder(info: &[u8], accm: u32, extra: &[u8], mode: FcsMode) -> Result<(), TestCaseError> {
    let mut out = Vec::new();
    encoder(accm, extra, mode).encode(PROTOCOL, info, false, &mut out);
    let expected = reference_frame(info, accm, extra, mode);
    prop_assert_eq!(out.len(), expected.len());
    if let Some(i) = out.iter().zip(&expected).position(|(a, b)| a != b) {
        prop_assert!(
            false,
            "first difference at {}: {:#04x} != {:#04x}",
            i,
            out[i],
            expected[i]
        );
    }
    Ok(())
}

/// Encodes `packets`, puts `noise` (flags removed) before the first flag and
/// the control characters of `accm` listed in `inserted` at the given
/// places after it, feeds it cut at `cuts` and checks that the packets come
/// back and the counters say what happened.
fn check_round_trip(
    packets: &[Vec<u8>],
    accm: u32,
    extra: &[u8],
    mode: FcsMode,
    noise: &[u8],
    inserted: &[(prop::sample::Index, u8)],
    cuts: &[prop::sample::Index],
) -> Result<(), TestCaseError> {
    let e = encoder(accm, extra, mode);
    let mut frames = Vec::new();
    for p in packets {
        e.encode(PROTOCOL, p, false, &mut frames);
    }
    let noise: Vec<u8> = noise.iter().copied().filter(|&b| b != FLAG).collect();
    // Equipment on the way inserts control characters the receiver drops
    // (RFC 1662 section 4.2): any place after the opening flag, even
    // between an escape and the octet it escapes.
    let mut places: Vec<(usize, u8)> = inserted
        .iter()
        .filter(|(_, c)| bit(accm, *c))
        .map(|(at, c)| (1 + at.index(frames.len()), *c))
        .collect();
    places.sort_by_key(|&(at, _)| std::cmp::Reverse(at));
    for &(at, c) in &places {
        frames.insert(at, c);
    }
    let mut stream = noise.clone();
    stream.extend_from_slice(&frames);

    let mut d = decoder(accm, mode, MAX_INFO);
    let got = push_in_pieces(&mut d, &stream, cuts);
    let want: Vec<Outcome> = packets
        .iter()
        .map(|p| Outcome::Frame {
            protocol: PROTOCOL,
            info: p.clone(),
        })
        .collect();
    prop_assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        prop_assert!(g == w, "frame {} differs", i);
    }
    let stats = d.stats();
    prop_assert_eq!(stats.frames, packets.len() as u64);
    prop_assert_eq!(stats.errors, 0);
    prop_assert_eq!(stats.dropped_control_chars, places.len() as u64);
    prop_assert_eq!(stats.skipped_before_first_flag, noise.len() as u64);
    Ok(())
}

/// What a one-octet-at-a-time decoder sees between flags.
#[derive(Debug, PartialEq, Eq)]
enum RawEvent {
    /// The unescaped octets of a frame within the length limit.
    Frame(Vec<u8>),
    /// Escape then flag, after `len` octets.
    Aborted(usize),
    /// More than the limit, `len` octets in all.
    TooLong(usize),
}

/// The receive side of RFC 1662 section 4 one octet at a time, without
/// the frame checks: skips to the first flag, drops raw control characters
/// of `rx_accm` (keeping a pending escape), undoes escapes, reports an
/// escape before a flag as an abort, counts instead of keeping a frame
/// longer than `limit`. Returns the events, the dropped control characters
/// and the octets skipped before the first flag.
fn reference_decode(stream: &[u8], rx_accm: u32, limit: usize) -> (Vec<RawEvent>, u64, u64) {
    let mut events = Vec::new();
    let (mut dropped, mut skipped) = (0u64, 0u64);
    let mut hunting = true;
    let mut escaped = false;
    let mut frame = Vec::new();
    let mut len = 0usize;
    for &b in stream {
        if hunting {
            if b == FLAG {
                hunting = false;
            } else {
                skipped += 1;
            }
            continue;
        }
        if b == FLAG {
            if escaped {
                events.push(RawEvent::Aborted(len));
            } else if len > limit {
                events.push(RawEvent::TooLong(len));
            } else if len > 0 {
                events.push(RawEvent::Frame(std::mem::take(&mut frame)));
            }
            frame.clear();
            len = 0;
            escaped = false;
        } else if bit(rx_accm, b) {
            dropped += 1;
        } else if b == ESCAPE && !escaped {
            escaped = true;
        } else {
            let octet = if escaped { b ^ ESCAPE_XOR } else { b };
            escaped = false;
            len += 1;
            if len <= limit {
                frame.push(octet);
            }
        }
    }
    (events, dropped, skipped)
}

/// What the decoder must say about a frame of `raw` octets within its
/// limit: a fresh decoder's verdict on that frame alone, escaped one octet
/// at a time and pushed in one piece.
fn verdict_on_frame(raw: &[u8], rx_accm: u32, mode: FcsMode, max_info: usize) -> Vec<Outcome> {
    let mut stream = vec![FLAG];
    for &b in raw {
        if b == FLAG || b == ESCAPE || bit(rx_accm, b) {
            stream.push(ESCAPE);
            stream.push(b ^ ESCAPE_XOR);
        } else {
            stream.push(b);
        }
    }
    stream.push(FLAG);
    let mut d = decoder(rx_accm, mode, max_info);
    push_in_pieces(&mut d, &stream, &[])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encoder_escapes_like_the_reference(
        info in small_data(),
        accm in accm(),
        extra in extra_escapes(),
        mode in fcs_mode(),
    ) {
        check_encoder(&info, accm, &extra, mode)?;
    }

    #[test]
    fn round_trip_through_the_decoder_in_random_pieces(
        packets in prop::collection::vec(small_data(), 1..4),
        accm in accm(),
        extra in extra_escapes(),
        mode in fcs_mode(),
        noise in prop::collection::vec(octet(), 0..20),
        inserted in prop::collection::vec((any::<prop::sample::Index>(), 0u8..0x20), 0..6),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        check_round_trip(&packets, accm, &extra, mode, &noise, &inserted, &cuts)?;
    }

    #[test]
    fn decoder_matches_the_reference_on_any_stream(
        stream in prop::collection::vec(octet(), 0..600),
        rx_accm in accm(),
        mode in fcs_mode(),
        max_info in prop_oneof![0usize..64, Just(1500usize)],
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let mut d = decoder(rx_accm, mode, max_info);
        let got = push_in_pieces(&mut d, &stream, &cuts);
        let (events, dropped, skipped) = reference_decode(&stream, rx_accm, max_info + 6);
        let mut want = Vec::new();
        for event in events {
            match event {
                RawEvent::Frame(raw) => {
                    let verdict = verdict_on_frame(&raw, rx_accm, mode, max_info);
                    prop_assert_eq!(verdict.len(), 1, "one frame in, one verdict out");
                    want.extend(verdict);
                }
                RawEvent::Aborted(len) => want.push(Outcome::Error(FrameError::Aborted { len })),
                RawEvent::TooLong(len) => {
                    want.push(Outcome::Error(FrameError::TooLong { len, max_info }))
                }
            }
        }
        prop_assert_eq!(&got, &want);
        let stats = d.stats();
        prop_assert_eq!(stats.dropped_control_chars, dropped);
        prop_assert_eq!(stats.skipped_before_first_flag, skipped);
        let errors = want.iter().filter(|o| matches!(o, Outcome::Error(_))).count() as u64;
        prop_assert_eq!(stats.errors, errors);
        prop_assert_eq!(stats.frames, want.len() as u64 - errors);
    }
}

proptest! {
    // 70000-octet packets: fewer cases, each covers a thousand blocks.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn large_packets_escape_like_the_reference(
        info in large_data(),
        accm in accm(),
        extra in extra_escapes(),
        mode in fcs_mode(),
    ) {
        check_encoder(&info, accm, &extra, mode)?;
    }

    #[test]
    fn large_packets_round_trip_in_random_pieces(
        packets in prop::collection::vec(large_data(), 1..3),
        small in small_data(),
        accm in accm(),
        extra in extra_escapes(),
        mode in fcs_mode(),
        noise in prop::collection::vec(octet(), 0..20),
        inserted in prop::collection::vec((any::<prop::sample::Index>(), 0u8..0x20), 0..40),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
    ) {
        let mut packets = packets;
        packets.insert(1, small);
        check_round_trip(&packets, accm, &extra, mode, &noise, &inserted, &cuts)?;
    }
}

/// The gateway case of the benchmark, fixed: ACCM 0, Null FCS, 65000-octet
/// packets in 32 KiB reads.
#[test]
fn gateway_frames_in_32_kib_reads() {
    let packets: Vec<Vec<u8>> = (0..4u32)
        .map(|k| {
            (0..65_000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761).rotate_left(k + 7) >> 24) as u8)
                .collect()
        })
        .collect();
    let e = encoder(0, &[], FcsMode::Null);
    let mut stream = Vec::new();
    for p in &packets {
        e.encode(PROTOCOL, p, false, &mut stream);
    }
    let mut d = decoder(0, FcsMode::Null, usize::from(u16::MAX));
    let mut got = Vec::new();
    for read in stream.chunks(32 * 1024) {
        d.push(read, &mut |r| {
            got.push(r.expect("good frame").info.to_vec())
        });
    }
    assert_eq!(got, packets);
    for p in &packets {
        let mut one = Vec::new();
        e.encode(PROTOCOL, p, false, &mut one);
        assert_eq!(one, reference_frame(p, 0, &[], FcsMode::Null));
    }
    assert_eq!(d.stats().frames, packets.len() as u64);
    assert_eq!(d.stats().errors, 0);
}
