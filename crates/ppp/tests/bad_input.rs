//! Bad input never panics, is counted, and never takes a healthy link down
//! where RFC 1661 says to discard (s5): truncated packets, bad option
//! lengths, unknown codes and protocols, random bytes.

mod util;

use std::time::Duration;

use proptest::prelude::*;
use tsunagi_ppp::fsm::State;
use tsunagi_ppp::{describe, Event, IpVersion, Link, Phase};
use util::{config, control_frame, frames, raw_frame, Pair};

/// Two links brought up; returns the pair (A is the one we poke).
fn opened() -> Pair {
    let mut pair = Pair::new(
        config("a", [10, 0, 0, 1], [10, 0, 0, 2]),
        config("b", [10, 0, 0, 2], [10, 0, 0, 1]),
        1,
        2,
    );
    pair.start_both();
    assert!(pair.drive_until(Duration::from_secs(10), |p| {
        [&p.a, &p.b]
            .iter()
            .all(|s| s.link.status().ipcp == State::Opened)
    }));
    pair
}

/// Feeds bytes to A and returns what A sent back (pppd text).
fn poke(pair: &mut Pair, bytes: &[u8]) -> Vec<String> {
    let now = pair.now;
    pair.a.link.handle_input(now, bytes, &mut |_, _| {});
    let mut out = Vec::new();
    pair.a.link.poll_transmit(&mut out);
    pair.a.drain_events();
    let mut decoder = util::lax_decoder();
    let mut text = Vec::new();
    decoder.push(&out, &mut |f| {
        let f = f.expect("our own frames are well formed");
        text.push(describe(f.protocol, f.info).to_string());
    });
    text
}

fn assert_healthy(pair: &Pair) {
    let s = pair.a.link.status();
    assert_eq!((s.lcp, s.ipcp), (State::Opened, State::Opened));
    assert_eq!(pair.a.link.phase(), Phase::Network);
    assert!(!pair
        .a
        .has_event(|e| matches!(e, Event::Down(_) | Event::Ipv4Down)));
}

#[test]
fn truncated_and_malformed_control_packets_are_discarded_and_counted() {
    let mut pair = opened();
    let before = pair.a.link.stats().rx_bad_control;
    // Length 40 > received 12.
    let mut pkt = vec![1, 9, 0, 40];
    pkt.extend_from_slice(&[5, 6, 1, 2, 3, 4, 7, 2]);
    assert!(poke(&mut pair, &raw_frame(0xc021, &pkt)).is_empty());
    // Shorter than the header.
    assert!(poke(&mut pair, &raw_frame(0xc021, &[1, 9])).is_empty());
    // Length field < 4.
    assert!(poke(&mut pair, &raw_frame(0x8021, &[1, 9, 0, 2])).is_empty());
    // Option lengths 0, 1, and running past the end, in LCP and IPCP
    // Configure-Requests: the whole request is discarded, no renegotiation.
    for options in [&[5u8, 0, 0, 0][..], &[1, 1, 5, 6], &[3, 6, 10, 0]] {
        assert!(poke(&mut pair, &control_frame(0xc021, 1, 0x33, options)).is_empty());
        assert!(poke(&mut pair, &control_frame(0x8021, 1, 0x33, options)).is_empty());
    }
    // Echo-Request without a magic number.
    assert!(poke(&mut pair, &control_frame(0xc021, 9, 1, &[0, 0])).is_empty());
    // Protocol-Reject without a protocol.
    assert!(poke(&mut pair, &control_frame(0xc021, 8, 1, &[0])).is_empty());
    assert_eq!(pair.a.link.stats().rx_bad_control, before + 11);
    assert_healthy(&pair);
}

#[test]
fn bad_fcs_and_garbage_frames_are_counted() {
    let mut pair = opened();
    let mut frame = control_frame(0xc021, 9, 1, &[0, 0, 0, 0]);
    let n = frame.len();
    frame[n - 2] ^= 0x55; // corrupt the FCS
    assert!(poke(&mut pair, &frame).is_empty());
    assert_eq!(pair.a.link.stats().rx_bad_fcs, 1);
    // A frame with an even protocol low byte and a too-short one.
    poke(&mut pair, &[0x7e, 0x12, 0x7e, 0x7e, 0x01, 0x02, 0x03, 0x7e]);
    assert!(pair.a.link.stats().rx_malformed + pair.a.link.stats().rx_bad_fcs >= 2);
    assert_healthy(&pair);
}

#[test]
fn unknown_code_gets_code_reject_and_counts() {
    let mut pair = opened();
    let sent = poke(&mut pair, &control_frame(0xc021, 0x42, 7, &[1, 2, 3]));
    assert_eq!(sent.len(), 1);
    assert!(sent[0].starts_with("LCP CodeRej id="), "{sent:?}");
    assert!(sent[0].ends_with("42 07 00 07 01 02 03"), "{sent:?}");
    // IPCP knows only codes 1..7: Echo-Request there is unknown.
    let sent = poke(&mut pair, &control_frame(0x8021, 9, 8, &[0, 0, 0, 0]));
    assert!(sent[0].starts_with("IPCP CodeRej id="), "{sent:?}");
    assert_eq!(pair.a.link.stats().tx_code_rejects, 2);
    assert_healthy(&pair);
}

#[test]
fn unknown_protocol_gets_protocol_reject_and_counts() {
    let mut pair = opened();
    let sent = poke(&mut pair, &raw_frame(0x4021, &[0xde, 0xad, 0xbe, 0xef]));
    assert_eq!(sent.len(), 1);
    assert!(sent[0].starts_with("LCP ProtRej id="), "{sent:?}");
    assert!(sent[0].ends_with("proto=0x4021 de ad be ef"), "{sent:?}");
    // CCP too (we do not compress).
    let sent = poke(&mut pair, &control_frame(0x80fd, 1, 1, &[26, 4, 0x78, 0]));
    assert!(sent[0].contains("proto=0x80fd"), "{sent:?}");
    assert_eq!(pair.a.link.stats().rx_unknown_protocol, 2);
    assert_eq!(pair.a.link.stats().tx_protocol_rejects, 2);
    assert_healthy(&pair);
}

#[test]
fn protocol_reject_only_while_lcp_opened() {
    let mut link = tsunagi_ppp::stream::StreamLink::new(Link::new(
        config("a", [10, 0, 0, 1], [10, 0, 0, 2]),
        1,
        tsunagi_crypto::OsRandom::handle(),
    ));
    let now = std::time::Instant::now();
    link.start(now);
    let mut out = Vec::new();
    link.poll_transmit(&mut out);
    out.clear();
    link.handle_input(now, &raw_frame(0x4021, &[1, 2, 3]), &mut |_, _| {});
    link.poll_transmit(&mut out);
    assert!(out.is_empty());
    assert_eq!(link.stats().rx_unknown_protocol, 1);
    assert_eq!(link.stats().tx_protocol_rejects, 0);
    // IP and NCP packets before LCP is open are discarded and counted.
    let mut delivered = 0;
    link.handle_input(now, &raw_frame(0x0021, &[0x45, 0, 0, 4]), &mut |_, _| {
        delivered += 1
    });
    link.handle_input(
        now,
        &control_frame(0x8021, 1, 1, &[3, 6, 10, 0, 0, 2]),
        &mut |_, _| {},
    );
    assert_eq!(delivered, 0);
    assert_eq!(link.stats().rx_not_open, 2);
}

#[test]
fn configure_request_with_100_options_parses_and_is_rejected_whole() {
    // 100 unknown options: one Configure-Reject listing all 100.
    let mut options = Vec::new();
    for i in 0..100u8 {
        options.extend_from_slice(&[0x40 + (i % 50), 3, i]);
    }
    assert_eq!(
        tsunagi_ppp::lcp::parse_options(&options).unwrap().len(),
        100
    );
    let mut link = tsunagi_ppp::stream::StreamLink::new(Link::new(
        config("a", [10, 0, 0, 1], [10, 0, 0, 2]),
        1,
        tsunagi_crypto::OsRandom::handle(),
    ));
    let now = std::time::Instant::now();
    link.start(now);
    let mut out = Vec::new();
    link.poll_transmit(&mut out);
    out.clear();
    link.handle_input(
        now,
        &control_frame(0xc021, 1, 0x21, &options),
        &mut |_, _| {},
    );
    link.poll_transmit(&mut out);
    let sent = frames(&out);
    assert_eq!(sent.len(), 1);
    let reply = tsunagi_ppp::wire::ControlRepr::parse_bytes(&sent[0].1).unwrap();
    assert_eq!(u8::from(reply.code), 4);
    assert_eq!(reply.identifier, 0x21);
    assert_eq!(reply.data, &options[..]);
    // 100 acceptable options (MRU repeated): one Configure-Ack.
    let mut mrus = Vec::new();
    for _ in 0..100 {
        mrus.extend_from_slice(&[1, 4, 0x05, 0xdc]);
    }
    link.handle_input(now, &control_frame(0xc021, 1, 0x22, &mrus), &mut |_, _| {});
    out.clear();
    link.poll_transmit(&mut out);
    let sent = frames(&out);
    assert_eq!(sent[0].1[0], 2, "Configure-Ack");
    assert_eq!(&sent[0].1[4..], &mrus[..]);
}

#[test]
fn auth_and_unknown_options_from_peer_are_rejected() {
    let mut link = tsunagi_ppp::stream::StreamLink::new(Link::new(
        config("a", [10, 0, 0, 1], [10, 0, 0, 2]),
        1,
        tsunagi_crypto::OsRandom::handle(),
    ));
    let now = std::time::Instant::now();
    link.start(now);
    let mut out = Vec::new();
    link.poll_transmit(&mut out);
    out.clear();
    // <mru 1500> <auth chap MD5> <option 0x13>
    let options = [1, 4, 5, 0xdc, 3, 5, 0xc2, 0x23, 5, 0x13, 2];
    link.handle_input(now, &control_frame(0xc021, 1, 5, &options), &mut |_, _| {});
    link.poll_transmit(&mut out);
    let sent = frames(&out);
    assert_eq!(
        describe(sent[0].0, &sent[0].1).to_string(),
        "LCP ConfRej id=0x5 <auth chap MD5> <option 0x13>"
    );
}

#[test]
fn ip_before_ipcp_open_is_counted() {
    let mut pair = opened();
    // Ask IPCP to renegotiate: while it is not open, IP is dropped.
    let now = pair.now;
    pair.a
        .link
        .handle_input(now, &control_frame(0x8021, 5, 9, b"bye"), &mut |_, _| {});
    assert_ne!(pair.a.link.status().ipcp, State::Opened);
    let mut delivered = 0;
    pair.a
        .link
        .handle_input(now, &raw_frame(0x0021, &[0x45, 0, 0, 4]), &mut |_, _| {
            delivered += 1
        });
    assert_eq!(delivered, 0);
    assert_eq!(pair.a.link.stats().rx_not_open, 1);
    let mut out = Vec::new();
    assert!(!pair
        .a
        .link
        .encapsulate(IpVersion::V4, &[0x45, 0, 0, 4], &mut out));
    assert!(out.is_empty());
}

fn proptest_config() -> ProptestConfig {
    ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(proptest_config())]

    /// Random bytes (with and without flags) never panic and leave an
    /// Opened link Opened.
    #[test]
    fn random_bytes_keep_an_opened_link_opened(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..8)) {
        let mut pair = opened();
        for chunk in &chunks {
            poke(&mut pair, chunk);
        }
        assert_healthy(&pair);
    }

    /// Well-framed packets of any protocol and content never panic; LCP
    /// packets with codes that RFC 1661 says cannot close the link
    /// (Echo, Discard, Ident, Time-Remaining, unknown) leave it Opened.
    #[test]
    fn random_frames_never_panic(
        frames in prop::collection::vec(
            (prop_oneof![Just(0xc021u16), Just(0x8021), Just(0x8057), Just(0x80fd), Just(0x0021), Just(0x0057), any::<u16>().prop_map(|p| p | 1)],
             prop::collection::vec(any::<u8>(), 0..200)),
            1..10)
    ) {
        let mut pair = opened();
        for (protocol, info) in &frames {
            poke(&mut pair, &raw_frame(*protocol, info));
        }
        let now = pair.now + Duration::from_secs(5);
        pair.a.link.handle_timeout(now);
        let mut out = Vec::new();
        pair.a.link.poll_transmit(&mut out);
        prop_assert!(out.len() < 64 * 1024);
    }

    #[test]
    fn harmless_lcp_codes_keep_the_link(
        packets in prop::collection::vec((9u8..=255, any::<u8>(), prop::collection::vec(any::<u8>(), 4..100)), 1..10)
    ) {
        let mut pair = opened();
        for (code, id, data) in &packets {
            poke(&mut pair, &control_frame(0xc021, *code, *id, data));
        }
        assert_healthy(&pair);
    }
}

proptest! {
    #![proptest_config(proptest_config())]

    /// Any frames while negotiating (every automaton state is reachable
    /// from here) never panic, keep deadlines in the future and keep the
    /// output bounded; time still ends a stuck negotiation.
    #[test]
    fn random_frames_while_negotiating(
        steps in prop::collection::vec(
            (prop_oneof![Just(0xc021u16), Just(0x8021), Just(0x8057), any::<u16>().prop_map(|p| p | 1)],
             0u8..16, any::<u8>(), prop::collection::vec(any::<u8>(), 0..40), 0u64..4000),
            1..30)
    ) {
        let mut link = tsunagi_ppp::stream::StreamLink::new(Link::new(config("a", [10, 0, 0, 1], [10, 0, 0, 2]), 5, tsunagi_crypto::OsRandom::handle()));
        let start = std::time::Instant::now();
        let mut now = start;
        link.start(now);
        let mut out = Vec::new();
        for (protocol, code, id, data, wait_ms) in &steps {
            link.handle_input(now, &control_frame(*protocol, *code, *id, data), &mut |_, _| {});
            now += Duration::from_millis(*wait_ms);
            if link.poll_timeout().is_some_and(|t| t <= now) {
                link.handle_timeout(now);
            }
            if let Some(t) = link.poll_timeout() {
                prop_assert!(t > now, "deadline {:?} not after now", t - start);
            }
            out.clear();
            link.poll_transmit(&mut out);
            prop_assert!(out.len() < 16 * 1024);
            while link.poll_event().is_some() {}
        }
        // Without a real peer, the link ends within Max-Configure restarts.
        let mut ended = false;
        for _ in 0..100 {
            match link.poll_timeout() {
                Some(t) => {
                    now = now.max(t);
                    link.handle_timeout(now);
                }
                None => break,
            }
            while let Some(e) = link.poll_event() {
                ended |= matches!(e, Event::Down(_));
            }
            if ended {
                break;
            }
        }
        prop_assert!(ended || link.poll_timeout().is_none() || link.phase() == Phase::Network);
    }
}
