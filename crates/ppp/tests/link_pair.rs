//! Two links on a virtual clock, with a seeded lossy pipe between them.

mod util;

use std::net::Ipv4Addr;
use std::time::Duration;

use tsunagi_ppp::fsm::State;
use tsunagi_ppp::{DownReason, EchoConfig, Event, IpVersion, Ipv6cpConfig, Phase};
use util::{config, Pair};

fn ipv4_up(side: &util::Side) -> Option<(Ipv4Addr, Ipv4Addr)> {
    side.events.iter().find_map(|e| match e {
        Event::Ipv4Up { local, peer, .. } => Some((*local, *peer)),
        _ => None,
    })
}

fn both_up(p: &Pair) -> bool {
    ipv4_up(&p.a).is_some() && ipv4_up(&p.b).is_some()
}

/// An IPv4 header-ish packet of `len` bytes, distinct per `tag`.
fn packet(tag: u8, len: usize) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, len as u8];
    p.extend((0..len - 4).map(|i| (i as u8).wrapping_mul(7) ^ tag));
    // Include bytes that need escaping.
    p[5] = 0x7e;
    p[6] = 0x7d;
    p[7] = 0x03;
    p
}

fn up_with_loss(per_mille: u64, seed: u64) {
    let mut pair = Pair::new(
        config("home", [10, 224, 1, 1], [10, 224, 1, 2]),
        config("labs", [10, 224, 1, 2], [10, 224, 1, 1]),
        1,
        2,
    );
    pair.set_loss(per_mille, seed);
    pair.start_both();
    assert!(
        pair.drive_until(Duration::from_secs(120), both_up),
        "not up after 120 s with loss {per_mille}/1000 seed {seed}: a={:?} b={:?}",
        pair.a.link,
        pair.b.link
    );
    // A late retransmission can restart IPCP once more (RFC 1661: RCR in
    // Opened); wait until both automata rest in Opened.
    let opened = |p: &Pair| {
        [&p.a, &p.b]
            .iter()
            .all(|s| s.link.status().lcp == State::Opened && s.link.status().ipcp == State::Opened)
    };
    assert!(pair.drive_until(Duration::from_secs(120), opened));
    assert_eq!(
        ipv4_up(&pair.a),
        Some(([10, 224, 1, 1].into(), [10, 224, 1, 2].into()))
    );
    assert_eq!(
        ipv4_up(&pair.b),
        Some(([10, 224, 1, 2].into(), [10, 224, 1, 1].into()))
    );
    assert_eq!(pair.a.link.phase(), Phase::Network);
    // IP both ways; with loss some are lost but none corrupted.
    let mut sent_ab = Vec::new();
    let mut sent_ba = Vec::new();
    for i in 0..50u8 {
        let p = packet(i, 40 + i as usize);
        assert!(pair.send_ip(true, IpVersion::V4, &p));
        sent_ab.push(p);
        let p = packet(i ^ 0x80, 60 + i as usize);
        assert!(pair.send_ip(false, IpVersion::V4, &p));
        sent_ba.push(p);
    }
    let got_b: Vec<_> = pair.b.received.iter().map(|(_, p)| p.clone()).collect();
    let got_a: Vec<_> = pair.a.received.iter().map(|(_, p)| p.clone()).collect();
    for p in &got_b {
        assert!(sent_ab.contains(p), "corrupted packet at b");
    }
    for p in &got_a {
        assert!(sent_ba.contains(p), "corrupted packet at a");
    }
    if per_mille == 0 {
        assert_eq!(got_b, sent_ab);
        assert_eq!(got_a, sent_ba);
    } else {
        assert!(
            got_b.len() >= 25 && got_a.len() >= 25,
            "too much lost: {} {}",
            got_a.len(),
            got_b.len()
        );
        assert!(pair.dropped > 0);
    }
    assert_eq!(pair.b.link.stats().rx_packets, got_b.len() as u64);
    assert_eq!(pair.a.link.stats().tx_packets, 50);
}

#[test]
fn up_without_loss() {
    up_with_loss(0, 0);
}

#[test]
fn up_with_5_percent_loss() {
    for seed in [1, 2, 3] {
        up_with_loss(50, seed);
    }
}

#[test]
fn up_with_20_percent_loss() {
    for seed in [11, 12, 13] {
        up_with_loss(200, seed);
    }
}

#[test]
fn negotiated_values_and_framing() {
    let mut a = config("home", [10, 0, 0, 1], [10, 0, 0, 2]);
    a.lcp.mru = 1410;
    a.lcp.ident = Some("HOME Network".into());
    let b = config("labs", [10, 0, 0, 2], [10, 0, 0, 1]);
    let mut pair = Pair::new(a, b, 7, 8);
    pair.start_both();
    assert!(pair.drive_until(Duration::from_secs(10), both_up));
    let sa = pair.a.link.status();
    let sb = pair.b.link.status();
    assert_eq!(sa.mru, 1410);
    assert_eq!(sb.peer_mru, 1410);
    assert_eq!(sa.peer_magic, Some(sb.magic));
    assert_eq!(sb.peer_magic, Some(sa.magic));
    assert!(sa.tx_pfc && sa.tx_acfc && sa.tx_accm == 0);
    assert_eq!(sb.peer_ident.as_deref(), Some("HOME Network"));
    assert!(pair
        .b
        .has_event(|e| *e == Event::PeerIdent("HOME Network".into())));
    // A data frame uses ACFC and PFC: 7e 21 ... (no ff 03, 1-byte protocol).
    let mut out = Vec::new();
    assert!(pair
        .a
        .link
        .encapsulate(IpVersion::V4, &[0x45, 0, 0, 4], &mut out));
    assert_eq!(&out[..2], &[0x7e, 0x21]);
    // Phases in order.
    let phases: Vec<_> = pair
        .a
        .events
        .iter()
        .filter_map(|e| {
            if let Event::Phase(p) = e {
                Some(*p)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(phases, vec![Phase::Establish, Phase::Network]);
}

#[test]
fn ipv6cp_both_sides() {
    let mut a = config("home", [10, 0, 0, 1], [10, 0, 0, 2]);
    let mut b = config("labs", [10, 0, 0, 2], [10, 0, 0, 1]);
    a.ipv6cp = Some(Ipv6cpConfig::default());
    b.ipv6cp = Some(Ipv6cpConfig {
        local_id: Some([0, 0, 0, 0, 0, 0, 0, 2]),
    });
    let mut pair = Pair::new(a, b, 3, 4);
    pair.start_both();
    let v6 = |s: &util::Side| s.has_event(|e| matches!(e, Event::Ipv6Up { .. }));
    assert!(pair.drive_until(Duration::from_secs(10), |p| v6(&p.a)
        && v6(&p.b)
        && both_up(p)));
    let ids = pair.a.link.status().ipv6_ids.unwrap();
    assert_eq!(ids.1, [0, 0, 0, 0, 0, 0, 0, 2]);
    assert!(pair.send_ip(true, IpVersion::V6, &[0x60, 0, 0, 0, 1, 2, 3]));
    assert_eq!(
        pair.b.received.last().unwrap(),
        &(IpVersion::V6, vec![0x60, 0, 0, 0, 1, 2, 3])
    );
}

#[test]
fn ipv6cp_disabled_is_protocol_rejected() {
    let mut a = config("home", [10, 0, 0, 1], [10, 0, 0, 2]);
    a.ipv6cp = Some(Ipv6cpConfig::default());
    let b = config("labs", [10, 0, 0, 2], [10, 0, 0, 1]);
    let mut pair = Pair::new(a, b, 5, 6);
    pair.start_both();
    assert!(pair.drive_until(Duration::from_secs(10), both_up));
    pair.drive_until(Duration::from_secs(5), |_| false);
    // B rejected A's IPV6CP; A's IPV6CP stopped, IPv4 stays up.
    assert!(pair.b.link.stats().tx_protocol_rejects >= 1);
    assert_eq!(pair.a.link.status().ipv6cp, Some(State::Stopped));
    assert_eq!(pair.a.link.phase(), Phase::Network);
    assert!(!pair.a.has_event(|e| matches!(e, Event::Down(_))));
}

#[test]
fn echo_timeout_when_peer_goes_silent() {
    let interval = Duration::from_secs(2);
    let failures = 3;
    let mut a = config("home", [10, 0, 0, 1], [10, 0, 0, 2]);
    a.lcp.echo = Some(EchoConfig { interval, failures });
    let b = config("labs", [10, 0, 0, 2], [10, 0, 0, 1]);
    let mut pair = Pair::new(a, b, 9, 10);
    pair.start_both();
    assert!(pair.drive_until(Duration::from_secs(10), both_up));
    // Echoes work while the peer talks.
    pair.drive_until(Duration::from_secs(10), |_| false);
    assert!(pair.a.link.stats().rx_echo_replies >= 4);
    assert_eq!(pair.a.link.phase(), Phase::Network);
    // Silence.
    pair.b.transmit = false;
    let silent_at = pair.now;
    let down = |s: &util::Side| s.has_event(|e| *e == Event::Down(DownReason::EchoTimeout));
    assert!(pair.drive_until(Duration::from_secs(60), |p| down(&p.a)));
    let took = pair.now - silent_at;
    assert!(
        took <= interval * (failures + 1) + Duration::from_millis(100),
        "echo timeout took {took:?}"
    );
    assert!(
        took >= interval * failures,
        "echo timeout too early: {took:?}"
    );
    assert_eq!(pair.a.link.phase(), Phase::Dead);
    assert!(pair.a.has_event(|e| *e == Event::Ipv4Down));
}

#[test]
fn terminate_from_either_side() {
    for closer_is_a in [true, false] {
        let mut pair = Pair::new(
            config("home", [10, 0, 0, 1], [10, 0, 0, 2]),
            config("labs", [10, 0, 0, 2], [10, 0, 0, 1]),
            11,
            12,
        );
        pair.start_both();
        assert!(pair.drive_until(Duration::from_secs(10), both_up));
        let now = pair.now;
        let (closer, other) = if closer_is_a {
            (&mut pair.a, &mut pair.b)
        } else {
            (&mut pair.b, &mut pair.a)
        };
        closer.link.close(now, "User request");
        assert_eq!(closer.link.phase(), Phase::Terminate);
        let _ = other;
        let closed_at = pair.now;
        let downs = |p: &Pair| {
            p.a.has_event(|e| matches!(e, Event::Down(_)))
                && p.b.has_event(|e| matches!(e, Event::Down(_)))
        };
        assert!(pair.drive_until(Duration::from_secs(10), downs));
        let (closer, other) = if closer_is_a {
            (&pair.a, &pair.b)
        } else {
            (&pair.b, &pair.a)
        };
        assert!(closer.has_event(|e| *e == Event::Down(DownReason::AdminClose)));
        assert!(other
            .has_event(|e| *e == Event::Down(DownReason::PeerTerminated("User request".into()))));
        assert!(closer.has_event(|e| *e == Event::Ipv4Down));
        assert!(other.has_event(|e| *e == Event::Ipv4Down));
        // The closer is done at once (Terminate-Ack); the other waits one
        // restart period in Stopping (RFC 1661 s3.7 zrc).
        assert!(pair.now - closed_at <= Duration::from_secs(4));
        assert_eq!(pair.a.link.phase(), Phase::Dead);
        assert_eq!(pair.b.link.phase(), Phase::Dead);
        assert_eq!(pair.a.link.poll_timeout(), None);
    }
}

#[test]
fn lower_down_reports_down() {
    let mut pair = Pair::new(
        config("home", [10, 0, 0, 1], [10, 0, 0, 2]),
        config("labs", [10, 0, 0, 2], [10, 0, 0, 1]),
        1,
        2,
    );
    pair.start_both();
    assert!(pair.drive_until(Duration::from_secs(10), both_up));
    let now = pair.now;
    pair.a.link.lower_down(now);
    pair.a.drain_events();
    assert!(pair
        .a
        .has_event(|e| *e == Event::Down(DownReason::LowerDown)));
    assert!(pair.a.has_event(|e| *e == Event::Ipv4Down));
    assert_eq!(pair.a.link.phase(), Phase::Dead);
    assert_eq!(pair.a.link.poll_timeout(), None);
}

#[test]
fn silent_peer_fails_negotiation_after_max_configure() {
    let mut pair = Pair::new(
        config("home", [10, 0, 0, 1], [10, 0, 0, 2]),
        config("labs", [10, 0, 0, 2], [10, 0, 0, 1]),
        1,
        2,
    );
    pair.b.transmit = false;
    pair.start_both();
    let down = |p: &Pair| {
        p.a.has_event(|e| *e == Event::Down(DownReason::NegotiationFailed("LCP")))
    };
    assert!(pair.drive_until(Duration::from_secs(60), down));
    // 10 Configure-Requests, 3 s apart: the 10th times out at 30 s.
    assert_eq!(pair.elapsed(), Duration::from_secs(30));
    let reqs = pair
        .a
        .sent_frames
        .iter()
        .filter(|(p, i)| *p == 0xc021 && i[0] == 1)
        .count();
    assert_eq!(reqs, 10);
}

#[test]
fn a_link_can_be_started_again_after_down() {
    let mut pair = Pair::new(
        config("home", [10, 0, 0, 1], [10, 0, 0, 2]),
        config("labs", [10, 0, 0, 2], [10, 0, 0, 1]),
        21,
        22,
    );
    pair.start_both();
    assert!(pair.drive_until(Duration::from_secs(10), both_up));
    // Peer terminates; A ends in Stopped after the restart period.
    let now = pair.now;
    pair.b.link.close(now, "bye");
    let down = |s: &util::Side| s.has_event(|e| matches!(e, Event::Down(_)));
    assert!(pair.drive_until(Duration::from_secs(10), |p| down(&p.a) && down(&p.b)));
    // Redial: both start again on the same Link values.
    pair.a.events.clear();
    pair.b.events.clear();
    pair.start_both();
    assert!(pair.drive_until(Duration::from_secs(10), both_up));
    assert_eq!(pair.a.link.phase(), Phase::Network);
}

#[test]
fn a_reject_of_an_option_we_did_not_send_is_discarded() {
    use tsunagi_ppp::wire::ControlRepr;
    let mut link = tsunagi_ppp::stream::StreamLink::new(tsunagi_ppp::Link::new(
        config("a", [10, 0, 0, 1], [10, 0, 0, 2]),
        3,
        tsunagi_crypto::OsRandom::handle(),
    ));
    let now = std::time::Instant::now();
    link.start(now);
    let mut bytes = Vec::new();
    link.poll_transmit(&mut bytes);
    let (_, info) = util::frames(&bytes).pop().unwrap();
    let request = ControlRepr::parse_bytes(&info).unwrap();
    // Reject of MRU, which we did not ask for (we ask for 1500 = default).
    let frame = util::control_frame(0xc021, 4, request.identifier, &[1, 4, 5, 0xdc]);
    link.handle_input(now, &frame, &mut |_, _| {});
    assert_eq!(link.stats().rx_discarded_control, 1);
    assert_eq!(link.status().lcp, State::ReqSent);
    // A Nak with a malformed option is discarded whole.
    let frame = util::control_frame(0xc021, 3, request.identifier, &[5, 4, 1, 2]);
    link.handle_input(now, &frame, &mut |_, _| {});
    assert_eq!(link.stats().rx_bad_control, 1);
    bytes.clear();
    link.poll_transmit(&mut bytes);
    assert!(bytes.is_empty(), "nothing answered to invalid replies");
}
