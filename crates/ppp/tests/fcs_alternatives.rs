//! RFC 1570 section 2.1 FCS-Alternatives: two tsunagi links agree on the
//! Null FCS and carry IP without it; a side on the default keeps the 16-bit
//! FCS; a peer that rejects the option (pppd) falls back cleanly; bad values
//! are answered without panics; the framing round-trips in Null mode.

mod util;

use std::time::Duration;

use proptest::prelude::*;
use tsunagi_ppp::fsm::{Negotiator, OptionVerdict, State};
use tsunagi_ppp::hdlc::{Decoder, Encoder, FcsMode, FrameError};
use tsunagi_ppp::lcp::{kind, LcpNegotiator};
use tsunagi_ppp::wire::{OptionIter, RawOption};
use tsunagi_ppp::{describe, Event, IpVersion, LcpConfig, Link, LinkConfig};
use util::{config, control_frame, Pair};

const LCP: u16 = 0xc021;

fn with_fcs(mut c: LinkConfig, fcs: FcsMode) -> LinkConfig {
    c.lcp.fcs = fcs;
    c
}

fn pair(a: FcsMode, b: FcsMode) -> Pair {
    Pair::new(
        with_fcs(config("home", [10, 224, 1, 1], [10, 224, 1, 2]), a),
        with_fcs(config("labs", [10, 224, 1, 2], [10, 224, 1, 1]), b),
        1,
        2,
    )
}

fn ipv4_opened(p: &Pair) -> bool {
    [&p.a, &p.b].iter().all(|s| {
        s.link.status().ipcp == State::Opened && s.has_event(|e| matches!(e, Event::Ipv4Up { .. }))
    })
}

/// An IPv4-looking packet with octets that need escaping.
fn packet(tag: u8, len: usize) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, len as u8];
    p.extend((0..len - 4).map(|i| (i as u8).wrapping_mul(13) ^ tag));
    p[5] = 0x7e;
    p[6] = 0x7d;
    p
}

/// Every frame of `bytes` unescaped, flags removed, FCS (if any) kept.
fn raw_frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut frame = Vec::new();
    let mut escaped = false;
    for &b in bytes {
        match b {
            0x7e => {
                if !frame.is_empty() {
                    out.push(std::mem::take(&mut frame));
                }
            }
            0x7d => escaped = true,
            _ => {
                frame.push(if escaped { b ^ 0x20 } else { b });
                escaped = false;
            }
        }
    }
    out
}

fn up(p: &mut Pair) {
    p.start_both();
    assert!(
        p.drive_until(Duration::from_secs(60), ipv4_opened),
        "not up: a={:?} b={:?}",
        p.a.link.status(),
        p.b.link.status()
    );
}

#[test]
fn both_null_frames_cross_without_fcs_both_ways() {
    let mut p = pair(FcsMode::Null, FcsMode::Null);
    up(&mut p);
    for side in [&p.a, &p.b] {
        let st = side.link.status();
        assert_eq!((st.tx_fcs, st.rx_fcs), (FcsMode::Null, FcsMode::Null));
    }
    for (from_a, tag) in [(true, 1u8), (false, 2u8)] {
        let pkt = packet(tag, 300);
        // The frame on the wire is header + packet, nothing after it.
        let from = if from_a { &mut p.a } else { &mut p.b };
        let mut bytes = Vec::new();
        assert!(from.link.encapsulate(IpVersion::V4, &pkt, &mut bytes));
        let frames = raw_frames(&bytes);
        assert_eq!(frames.len(), 1);
        // ACFC and PFC are on by default: 1-octet protocol 0x21.
        assert_eq!(frames[0][0], 0x21);
        assert_eq!(&frames[0][1..], &pkt[..], "no FCS after the packet");

        let to = if from_a { &mut p.b } else { &mut p.a };
        let before = to.received.len();
        p.deliver_bytes(from_a, &bytes);
        let to = if from_a { &p.b } else { &p.a };
        assert_eq!(to.received.len(), before + 1);
        assert_eq!(to.received[before], (IpVersion::V4, pkt));
        assert_eq!(to.link.stats().rx_bad_fcs, 0);
    }
    // Keepalives (LCP Echo, code 9) also go without FCS and are answered.
    assert!(p.drive_until(Duration::from_secs(95), |p| {
        p.a.link.stats().rx_bad_fcs == 0 && p.elapsed() > Duration::from_secs(90)
    }));
    assert_eq!(p.a.link.status().lcp, State::Opened);
    assert_eq!(p.b.link.status().lcp, State::Opened);
    assert_eq!(p.b.link.stats().rx_bad_fcs, 0);
}

#[test]
fn one_side_default_keeps_16_bit_fcs_both_ways() {
    for (a, b) in [
        (FcsMode::Null, FcsMode::Fcs16),
        (FcsMode::Fcs16, FcsMode::Null),
        (FcsMode::Fcs16, FcsMode::Fcs16),
    ] {
        let mut p = pair(a, b);
        up(&mut p);
        for side in [&p.a, &p.b] {
            let st = side.link.status();
            assert_eq!((st.tx_fcs, st.rx_fcs), (FcsMode::Fcs16, FcsMode::Fcs16));
        }
        let pkt = packet(7, 200);
        let mut bytes = Vec::new();
        assert!(p.a.link.encapsulate(IpVersion::V4, &pkt, &mut bytes));
        let frames = raw_frames(&bytes);
        assert_eq!(frames[0].len(), 1 + pkt.len() + 2, "16-bit FCS present");
        p.deliver_bytes(true, &bytes);
        assert_eq!(p.b.received.last(), Some(&(IpVersion::V4, pkt)));
    }
}

/// The LCP Configure-Request in the bytes a link sent: (id, options).
fn lcp_request(bytes: &[u8]) -> (u8, Vec<u8>) {
    let mut decoder = util::lax_decoder();
    let mut found = None;
    decoder.push(bytes, &mut |f| {
        if let Ok(f) = f {
            if f.protocol == LCP && f.info.first() == Some(&1) && found.is_none() {
                found = Some((f.info[1], f.info[4..].to_vec()));
            }
        }
    });
    found.expect("an LCP Configure-Request")
}

fn has_option(options: &[u8], wanted: u8) -> Option<Vec<u8>> {
    OptionIter::new("LCP", options)
        .filter_map(Result::ok)
        .find(|o| o.kind == wanted)
        .map(|o| o.data.to_vec())
}

#[test]
fn peer_rejecting_option_9_falls_back_to_16_bit_fcs() {
    // Our link asks for the Null FCS; the "peer" is scripted as pppd would
    // answer: Configure-Reject of option 9, then Ack, plus its own request
    // without option 9.
    let mut link = tsunagi_ppp::stream::StreamLink::new(Link::new(
        with_fcs(config("home", [10, 0, 0, 1], [10, 0, 0, 2]), FcsMode::Null),
        3,
        tsunagi_crypto::OsRandom::handle(),
    ));
    let now = std::time::Instant::now();
    link.start(now);
    let mut out = Vec::new();
    link.poll_transmit(&mut out);
    let (id, options) = lcp_request(&out);
    assert_eq!(
        has_option(&options, kind::FCS_ALTERNATIVES),
        Some(vec![0x01])
    );

    let mut deliver = |_: IpVersion, _: &[u8]| {};
    link.handle_input(now, &control_frame(LCP, 4, id, &[9, 3, 0x01]), &mut deliver);
    out.clear();
    link.poll_transmit(&mut out);
    let (id2, options2) = lcp_request(&out);
    assert_ne!(id2, id);
    assert_eq!(has_option(&options2, kind::FCS_ALTERNATIVES), None);

    // pppd's own request (from the 01-basic vector: magic, pcomp, accomp).
    link.handle_input(
        now,
        &control_frame(LCP, 1, 1, &[5, 6, 0x80, 0x40, 0x44, 0xb9, 7, 2, 8, 2]),
        &mut deliver,
    );
    link.handle_input(now, &control_frame(LCP, 2, id2, &options2), &mut deliver);
    let st = link.status();
    assert_eq!(st.lcp, State::Opened);
    assert_eq!((st.tx_fcs, st.rx_fcs), (FcsMode::Fcs16, FcsMode::Fcs16));
}

#[test]
fn peer_nak_of_option_9_stops_asking() {
    let mut n = LcpNegotiator::new(
        LcpConfig {
            fcs: FcsMode::Null,
            ..LcpConfig::default()
        },
        9,
    );
    let mut req = Vec::new();
    n.build_request(&mut req);
    assert_eq!(has_option(&req, kind::FCS_ALTERNATIVES), Some(vec![1]));
    n.handle_nak(&RawOption {
        kind: kind::FCS_ALTERNATIVES,
        data: &[0x02],
    })
    .unwrap();
    req.clear();
    n.build_request(&mut req);
    assert_eq!(has_option(&req, kind::FCS_ALTERNATIVES), None);
    n.handle_ack();
    assert_eq!(n.ours.fcs, FcsMode::Fcs16);
}

/// The verdict and Nak list our negotiator gives one option 9 `data`.
fn verdict(fcs: FcsMode, data: &[u8]) -> (OptionVerdict, Vec<u8>, FcsMode) {
    let mut n = LcpNegotiator::new(
        LcpConfig {
            fcs,
            ..LcpConfig::default()
        },
        5,
    );
    n.begin_request();
    let mut nak = Vec::new();
    let v = n
        .check_option(
            &RawOption {
                kind: kind::FCS_ALTERNATIVES,
                data,
            },
            &mut nak,
        )
        .unwrap();
    (v, nak, n.peer.fcs)
}

#[test]
fn option_9_values_are_acked_naked_or_rejected() {
    use FcsMode::{Fcs16, Null};
    use OptionVerdict::{Ack, Nak, Reject};
    // Null asked, allowed: Ack, we send without FCS.
    assert_eq!(verdict(Null, &[0x01]), (Ack, vec![], Null));
    // Null asked, our config keeps the FCS: Nak with the 16-bit FCS.
    assert_eq!(verdict(Fcs16, &[0x01]), (Nak, vec![9, 3, 0x02], Fcs16));
    // 16-bit asked: always fine.
    assert_eq!(verdict(Fcs16, &[0x02]), (Ack, vec![], Fcs16));
    assert_eq!(verdict(Null, &[0x02]), (Ack, vec![], Fcs16));
    // 32-bit only: we cannot, Nak with what we can.
    assert_eq!(verdict(Null, &[0x04]), (Nak, vec![9, 3, 0x02], Fcs16));
    assert_eq!(verdict(Fcs16, &[0x04]), (Nak, vec![9, 3, 0x02], Fcs16));
    // Several bits: Nak with a single one we can do.
    assert_eq!(verdict(Null, &[0x07]), (Nak, vec![9, 3, 0x01], Fcs16));
    assert_eq!(verdict(Fcs16, &[0x03]), (Nak, vec![9, 3, 0x02], Fcs16));
    assert_eq!(verdict(Null, &[0xff]), (Nak, vec![9, 3, 0x01], Fcs16));
    // Zero asks for no FCS at all, not even the Null one: Reject.
    assert_eq!(verdict(Null, &[0x00]), (Reject, vec![], Fcs16));
    // Wrong lengths are rejected, not a panic or a dropped request.
    assert_eq!(verdict(Null, &[]).0, Reject);
    assert_eq!(verdict(Null, &[1, 2]).0, Reject);
}

#[test]
fn a_link_answers_bad_option_9_values_in_a_real_request() {
    let mut link = tsunagi_ppp::stream::StreamLink::new(Link::new(
        with_fcs(config("labs", [10, 0, 0, 2], [10, 0, 0, 1]), FcsMode::Null),
        4,
        tsunagi_crypto::OsRandom::handle(),
    ));
    let now = std::time::Instant::now();
    link.start(now);
    let mut out = Vec::new();
    link.poll_transmit(&mut out);
    let mut deliver = |_: IpVersion, _: &[u8]| {};
    for data in [
        vec![9, 3, 0x04],
        vec![9, 3, 0x00],
        vec![9, 2],
        vec![9, 4, 1, 1],
    ] {
        link.handle_input(now, &control_frame(LCP, 1, 7, &data), &mut deliver);
        out.clear();
        link.poll_transmit(&mut out);
        let frames = util::frames(&out);
        let reply = frames
            .iter()
            .find(|(p, info)| *p == LCP && matches!(info.first(), Some(3 | 4)))
            .unwrap_or_else(|| panic!("no Nak/Reject for {data:x?}"));
        if data == [9, 3, 0x04] {
            assert_eq!(reply.1[0], 3, "Nak");
            assert_eq!(&reply.1[4..], &[9, 3, 0x02]);
        } else {
            assert_eq!(reply.1[0], 4, "Reject for {data:x?}");
        }
    }
}

#[test]
fn option_9_is_printed_like_user_ppp() {
    let info = [1, 1, 0, 7, 9, 3, 1];
    assert_eq!(
        describe(LCP, &info).to_string(),
        "LCP ConfReq id=0x1 <fcs-alternatives 0x1>"
    );
}

#[test]
fn null_fcs_decoder_still_checks_lcp_configure_frames() {
    let mut d = Decoder::new(1500);
    d.set_rx_fcs(FcsMode::Null);
    let mut got = Vec::new();
    // A Configure-Request with its 16-bit FCS (the LCP defaults).
    let good = control_frame(LCP, 1, 1, &[5, 6, 1, 2, 3, 4]);
    d.push(&good, &mut |f| {
        got.push(f.map(|f| (f.protocol, f.info.to_vec())))
    });
    assert_eq!(got, vec![Ok((LCP, vec![1, 1, 0, 10, 5, 6, 1, 2, 3, 4]))]);
    // The same with a corrupted FCS octet is dropped as a bad FCS.
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 2] ^= 0x01;
    let mut errors = Vec::new();
    d.push(&bad, &mut |f| errors.push(f.map(|_| ())));
    assert!(
        matches!(errors[..], [Err(FrameError::BadFcs { .. })]),
        "{errors:?}"
    );
    // An Echo-Request (code 9) in Null mode has no FCS.
    let mut e = Encoder::new();
    e.set_fcs(FcsMode::Null);
    let mut echo = Vec::new();
    e.encode(LCP, &[9, 1, 0, 8, 0, 0, 0, 0], false, &mut echo);
    assert_eq!(raw_frames(&echo)[0].len(), 4 + 8);
    let mut infos = Vec::new();
    d.push(&echo, &mut |f| infos.push(f.map(|f| f.info.to_vec())));
    assert_eq!(infos, vec![Ok(vec![9, 1, 0, 8, 0, 0, 0, 0])]);
    // Even if a caller forgets the LCP defaults, codes 1..7 keep the FCS.
    let mut req = Vec::new();
    e.encode(LCP, &[1, 2, 0, 4], false, &mut req);
    assert_eq!(raw_frames(&req)[0].len(), 4 + 4 + 2);
}

#[test]
fn null_fcs_short_and_garbage_frames_do_not_panic() {
    let mut d = Decoder::new(64);
    d.set_rx_fcs(FcsMode::Null);
    let inputs: [&[u8]; 6] = [
        &[0x7e, 0x21, 0x7e],
        &[0x7e, 0xff, 0x7e],
        &[0x7e, 0xff, 0x03, 0xc0, 0x21, 0x01, 0x7e],
        &[0x7e, 0xc0, 0x21, 0x05, 0x7e],
        &[0x7e, 0x00, 0x7e],
        &[0x7e, 0x7d, 0x7e],
    ];
    for input in inputs {
        d.push(input, &mut |_| {});
    }
    let long = [0x21u8; 200];
    let mut errs = 0;
    d.push(&[0x7e], &mut |_| {});
    d.push(&long, &mut |_| {});
    d.push(&[0x7e], &mut |f| errs += usize::from(f.is_err()));
    assert_eq!(errs, 1, "longer than max_info");
}

#[derive(Debug, Clone)]
struct Opts {
    accm: u32,
    acfc: bool,
    pfc: bool,
    null: bool,
}

fn opts() -> impl Strategy<Value = Opts> {
    (any::<u32>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(accm, acfc, pfc, null)| Opts {
            accm,
            acfc,
            pfc,
            null,
        },
    )
}

fn protocol() -> impl Strategy<Value = u16> {
    prop_oneof![
        any::<u16>().prop_map(|p| (p & 0xfeff) | 1),
        any::<u8>().prop_map(|p| u16::from(p) | 1),
        Just(LCP),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// What the encoder writes in either FCS mode, the decoder in the same
    /// mode reads back, however the stream is cut.
    #[test]
    fn round_trip_in_both_fcs_modes(
        o in opts(),
        packets in proptest::collection::vec(
            (protocol(), proptest::collection::vec(any::<u8>(), 0..200), any::<bool>()),
            1..6,
        ),
        cut in 1usize..64,
    ) {
        let mode = if o.null { FcsMode::Null } else { FcsMode::Fcs16 };
        let mut e = Encoder::new();
        e.set_accm(o.accm);
        e.set_acfc(o.acfc);
        e.set_pfc(o.pfc);
        e.set_fcs(mode);
        let mut stream = Vec::new();
        for (protocol, info, lcp_defaults) in &packets {
            e.encode(*protocol, info, *lcp_defaults, &mut stream);
        }
        let mut d = Decoder::new(256);
        d.set_rx_accm(o.accm);
        d.set_rx_fcs(mode);
        let mut got = Vec::new();
        for chunk in stream.chunks(cut) {
            d.push(chunk, &mut |f| got.push(f.map(|f| (f.protocol, f.info.to_vec()))));
        }
        let want: Vec<_> = packets.iter().map(|(p, i, _)| Ok((*p, i.clone()))).collect();
        prop_assert_eq!(got, want);
    }

    /// Random bytes into a Null-mode decoder never panic.
    #[test]
    fn null_mode_decoder_takes_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut d = Decoder::new(128);
        d.set_rx_fcs(FcsMode::Null);
        d.push(&bytes, &mut |_| {});
    }
}
