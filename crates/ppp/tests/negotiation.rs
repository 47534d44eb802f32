//! Ack, Nak and Reject between two links; Naks that converge; Max-Failure;
//! loopback detection (RFC 1661 s6.4).

mod util;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use tsunagi_ppp::wire::ControlRepr;
use tsunagi_ppp::{describe, DownReason, Event, Link, LinkConfig};
use util::{config, Pair};

fn ipv4_up(side: &util::Side) -> Option<(Ipv4Addr, Ipv4Addr, [Option<Ipv4Addr>; 2])> {
    side.events.iter().find_map(|e| match e {
        Event::Ipv4Up { local, peer, dns } => Some((*local, *peer, *dns)),
        _ => None,
    })
}

fn both_up(p: &Pair) -> bool {
    ipv4_up(&p.a).is_some() && ipv4_up(&p.b).is_some()
}

/// pppd-style text of what a side sent, one protocol.
fn sent(side: &util::Side, prefix: &str) -> Vec<String> {
    side.sent_frames
        .iter()
        .map(|(p, i)| describe(*p, i).to_string())
        .filter(|t| t.starts_with(prefix))
        .collect()
}

#[test]
fn both_sides_ask_for_addresses_and_converge() {
    // Neither knows its own address; each knows what to give the other.
    let mut a = LinkConfig {
        name: "a".into(),
        ..LinkConfig::default()
    };
    a.ipcp.remote = Some([192, 168, 7, 2].into());
    let mut b = LinkConfig {
        name: "b".into(),
        ..LinkConfig::default()
    };
    b.ipcp.remote = Some([192, 168, 7, 1].into());
    let mut pair = Pair::new(a, b, 1, 2);
    pair.start_both();
    assert!(pair.drive_until(Duration::from_secs(10), both_up));
    assert_eq!(
        ipv4_up(&pair.a).unwrap().0..=ipv4_up(&pair.a).unwrap().1,
        Ipv4Addr::from([192, 168, 7, 1])..=Ipv4Addr::from([192, 168, 7, 2])
    );
    assert_eq!(
        ipv4_up(&pair.b).unwrap().0,
        Ipv4Addr::from([192, 168, 7, 2])
    );
    assert_eq!(
        ipv4_up(&pair.b).unwrap().1,
        Ipv4Addr::from([192, 168, 7, 1])
    );
    let a_ipcp = sent(&pair.a, "IPCP");
    assert_eq!(a_ipcp[0], "IPCP ConfReq id=0x1 <addr 0.0.0.0>");
    assert!(
        a_ipcp.contains(&"IPCP ConfNak id=0x1 <addr 192.168.7.2>".to_string()),
        "{a_ipcp:#?}"
    );
    assert!(
        a_ipcp.contains(&"IPCP ConfReq id=0x2 <addr 192.168.7.1>".to_string()),
        "{a_ipcp:#?}"
    );
    let b_ipcp = sent(&pair.b, "IPCP");
    assert!(
        b_ipcp.contains(&"IPCP ConfNak id=0x1 <addr 192.168.7.1>".to_string()),
        "{b_ipcp:#?}"
    );
}

#[test]
fn small_mru_is_naked_up_to_128_and_taken() {
    let mut a = config("a", [10, 0, 0, 1], [10, 0, 0, 2]);
    a.lcp.mru = 64;
    let b = config("b", [10, 0, 0, 2], [10, 0, 0, 1]);
    let mut pair = Pair::new(a, b, 3, 4);
    pair.start_both();
    assert!(pair.drive_until(Duration::from_secs(10), both_up));
    let b_lcp = sent(&pair.b, "LCP ConfNak");
    assert_eq!(b_lcp, vec!["LCP ConfNak id=0x1 <mru 128>".to_string()]);
    assert_eq!(pair.a.link.status().mru, 128);
    assert_eq!(pair.b.link.status().peer_mru, 128);
}

#[test]
fn unwanted_options_are_rejected_and_dropped() {
    // B does not do PFC/ACFC: it rejects them, A stops asking, LCP opens
    // and A sends with the full header.
    let a = config("a", [10, 0, 0, 1], [10, 0, 0, 2]);
    let mut b = config("b", [10, 0, 0, 2], [10, 0, 0, 1]);
    b.lcp.pfc = false;
    b.lcp.acfc = false;
    let mut pair = Pair::new(a, b, 5, 6);
    pair.start_both();
    assert!(pair.drive_until(Duration::from_secs(10), both_up));
    assert_eq!(
        sent(&pair.b, "LCP ConfRej"),
        vec!["LCP ConfRej id=0x1 <pcomp> <accomp>".to_string()]
    );
    let a_req = sent(&pair.a, "LCP ConfReq");
    assert!(
        a_req[1].starts_with("LCP ConfReq id=0x2 <asyncmap 0x0> <magic "),
        "{a_req:#?}"
    );
    assert!(
        !a_req[1].contains("pcomp") && !a_req[1].contains("accomp"),
        "{a_req:#?}"
    );
    let s = pair.a.link.status();
    assert!(!s.tx_pfc && !s.tx_acfc);
    let mut out = Vec::new();
    assert!(pair
        .a
        .link
        .encapsulate(tsunagi_ppp::IpVersion::V4, &[0x45, 0, 0, 4], &mut out));
    // ff 03 and a two-byte protocol (ACCM 0: 0x03 is not escaped).
    assert_eq!(&out[..5], &[0x7e, 0xff, 0x03, 0x00, 0x21]);
}

#[test]
fn dns_given_and_dns_refused() {
    let mut a = config("a", [10, 0, 0, 1], [10, 0, 0, 2]);
    a.ipcp.dns = [Some([10, 0, 0, 53].into()), Some([10, 0, 0, 54].into())];
    a.ipcp.request_dns = true;
    let mut b = config("b", [10, 0, 0, 2], [10, 0, 0, 1]);
    b.ipcp.request_dns = true;
    let mut pair = Pair::new(a, b, 7, 8);
    pair.start_both();
    assert!(pair.drive_until(Duration::from_secs(10), both_up));
    // B asked and got both.
    assert_eq!(
        ipv4_up(&pair.b).unwrap().2,
        [Some([10, 0, 0, 53].into()), Some([10, 0, 0, 54].into())]
    );
    // A asked, B has none to give: rejected, A is up without DNS.
    assert!(sent(&pair.b, "IPCP ConfRej")[0].contains("<ms-dns1 0.0.0.0> <ms-dns2 0.0.0.0>"));
    assert_eq!(ipv4_up(&pair.a).unwrap().2, [None, None]);
}

#[test]
fn naks_turn_into_a_reject_after_max_failure() {
    // A insists on 10.0.0.9 (configured, so Naks are not taken); B wants
    // A to be 10.0.0.1. After Max-Failure (5) Naks, B rejects the option
    // (RFC 1661 s4.6) and IPCP converges.
    let a = config("a", [10, 0, 0, 9], [10, 0, 0, 2]);
    let b = config("b", [10, 0, 0, 2], [10, 0, 0, 1]);
    let mut pair = Pair::new(a, b, 9, 10);
    pair.start_both();
    assert!(pair.drive_until(Duration::from_secs(30), both_up));
    let b_replies: Vec<_> = sent(&pair.b, "IPCP Conf")
        .into_iter()
        .filter(|t| t.contains("ConfNak") || t.contains("ConfRej"))
        .collect();
    assert_eq!(b_replies.len(), 6, "{b_replies:#?}");
    assert!(b_replies[..5]
        .iter()
        .all(|t| t.ends_with("<addr 10.0.0.1>") && t.contains("ConfNak")));
    assert!(b_replies[5].contains("ConfRej") && b_replies[5].ends_with("<addr 10.0.0.9>"));
    assert_eq!(ipv4_up(&pair.a).unwrap().0, Ipv4Addr::from([10, 0, 0, 9]));
}

#[test]
fn equal_magic_numbers_are_detected_as_loopback() {
    // Same seed on both sides: the same "random" magic numbers every
    // time, as on a looped-back line.
    let mut pair = Pair::new(
        config("a", [10, 0, 0, 1], [10, 0, 0, 2]),
        config("b", [10, 0, 0, 1], [10, 0, 0, 2]),
        42,
        42,
    );
    pair.start_both();
    let looped = |s: &util::Side| s.has_event(|e| *e == Event::Down(DownReason::LoopbackDetected));
    assert!(pair.drive_until(Duration::from_secs(60), |p| looped(&p.a) && looped(&p.b)));
    // Each time, a Nak with a different magic number.
    let naks = sent(&pair.a, "LCP ConfNak");
    assert!(naks.len() >= 4, "{naks:#?}");
    assert!(naks.iter().all(|t| t.contains("<magic 0x")));
}

#[test]
fn a_link_fed_its_own_frames_detects_loopback() {
    let mut link = tsunagi_ppp::stream::StreamLink::new(Link::new(
        config("loop", [10, 0, 0, 1], [10, 0, 0, 2]),
        7,
        tsunagi_crypto::OsRandom::handle(),
    ));
    let mut now = Instant::now();
    link.start(now);
    let mut events = Vec::new();
    for _ in 0..200 {
        let mut bytes = Vec::new();
        link.poll_transmit(&mut bytes);
        if bytes.is_empty() {
            match link.poll_timeout() {
                Some(t) => {
                    now = now.max(t);
                    link.handle_timeout(now);
                }
                None => break,
            }
        }
        link.handle_input(now, &bytes, &mut |_, _| {});
        while let Some(e) = link.poll_event() {
            events.push(e);
        }
        if events.iter().any(|e| matches!(e, Event::Down(_))) {
            break;
        }
    }
    assert!(
        events.contains(&Event::Down(DownReason::LoopbackDetected)),
        "{events:?}"
    );
}

#[test]
fn configure_request_id_and_contents_in_ack_must_match() {
    // Our first request from a fresh link; an Ack with another id or other
    // options is discarded and counted (RFC 1661 s5.2).
    let mut link = tsunagi_ppp::stream::StreamLink::new(Link::new(
        config("a", [10, 0, 0, 1], [10, 0, 0, 2]),
        3,
        tsunagi_crypto::OsRandom::handle(),
    ));
    let now = Instant::now();
    link.start(now);
    let mut bytes = Vec::new();
    link.poll_transmit(&mut bytes);
    let (_, info) = util::frames(&bytes).pop().unwrap();
    let request = ControlRepr::parse_bytes(&info).unwrap();
    let id = request.identifier;
    link.handle_input(
        now,
        &util::control_frame(0xc021, 2, id.wrapping_add(1), request.data),
        &mut |_, _| {},
    );
    let mut other = request.data.to_vec();
    let last = other.len() - 1;
    other[last] ^= 1;
    link.handle_input(
        now,
        &util::control_frame(0xc021, 2, id, &other),
        &mut |_, _| {},
    );
    assert_eq!(link.stats().rx_discarded_control, 2);
    assert_eq!(link.status().lcp, tsunagi_ppp::fsm::State::ReqSent);
    link.handle_input(
        now,
        &util::control_frame(0xc021, 2, id, request.data),
        &mut |_, _| {},
    );
    assert_eq!(link.status().lcp, tsunagi_ppp::fsm::State::AckRcvd);
}

/// A link with IPV6CP, opened with a peer; returns the pair.
fn opened_with_ipv6cp(a_id: Option<[u8; 8]>) -> Pair {
    let mut a = config("a", [10, 0, 0, 1], [10, 0, 0, 2]);
    a.ipv6cp = Some(tsunagi_ppp::Ipv6cpConfig { local_id: a_id });
    let mut b = config("b", [10, 0, 0, 2], [10, 0, 0, 1]);
    b.ipv6cp = Some(tsunagi_ppp::Ipv6cpConfig::default());
    let mut pair = Pair::new(a, b, 31, 32);
    pair.start_both();
    let v6 = |s: &util::Side| s.has_event(|e| matches!(e, Event::Ipv6Up { .. }));
    assert!(pair.drive_until(Duration::from_secs(10), |p| v6(&p.a) && v6(&p.b)));
    pair
}

#[test]
fn ipv6cp_zero_or_equal_interface_id_is_naked_with_a_new_one() {
    let own = [0x02, 0, 0, 0, 0, 0, 0, 0x01];
    let mut pair = opened_with_ipv6cp(Some(own));
    for (i, asked) in [[0u8; 8], own].into_iter().enumerate() {
        let mut option = vec![1, 10];
        option.extend_from_slice(&asked);
        let now = pair.now;
        pair.a.link.handle_input(
            now,
            &util::control_frame(0x8057, 1, 0x40 + i as u8, &option),
            &mut |_, _| {},
        );
        let mut out = Vec::new();
        pair.a.link.poll_transmit(&mut out);
        let nak = util::frames(&out)
            .into_iter()
            .filter(|(p, _)| *p == 0x8057)
            .find_map(|(_, info)| {
                let packet = ControlRepr::parse_bytes(&info).ok()?;
                (u8::from(packet.code) == 3).then(|| packet.data.to_vec())
            })
            .expect("a ConfNak");
        assert_eq!(&nak[..2], &[1, 10]);
        let suggested: [u8; 8] = nak[2..].try_into().unwrap();
        assert_ne!(suggested, [0; 8]);
        assert_ne!(suggested, own);
    }
}

#[test]
fn ipv6cp_takes_a_naked_interface_id_when_not_configured() {
    // Two links with random ids; when A's IPV6CP request goes out, A is
    // fed a Nak suggesting another id instead, and must ask for that one
    // (RFC 5072 s4.1).
    let mut link = tsunagi_ppp::stream::StreamLink::new(Link::new(
        {
            let mut c = config("a", [10, 0, 0, 1], [10, 0, 0, 2]);
            c.ipv6cp = Some(tsunagi_ppp::Ipv6cpConfig::default());
            c
        },
        5,
        tsunagi_crypto::OsRandom::handle(),
    ));
    let mut peer = tsunagi_ppp::stream::StreamLink::new(Link::new(
        {
            let mut c = config("b", [10, 0, 0, 2], [10, 0, 0, 1]);
            c.ipv6cp = Some(tsunagi_ppp::Ipv6cpConfig::default());
            c
        },
        6,
        tsunagi_crypto::OsRandom::handle(),
    ));
    let now = Instant::now();
    link.start(now);
    peer.start(now);
    // Bring LCP up between the two.
    for _ in 0..10 {
        let mut ab = Vec::new();
        link.poll_transmit(&mut ab);
        let ipv6cp_req = util::frames(&ab).into_iter().find_map(|(p, info)| {
            let packet = ControlRepr::parse_bytes(&info).ok()?;
            (p == 0x8057 && u8::from(packet.code) == 1).then_some(packet.identifier)
        });
        if let Some(id) = ipv6cp_req {
            // Nak it with a suggestion before the peer sees it.
            let suggestion = [0x0a, 0, 0, 0, 0, 0, 0, 0x0b];
            let mut option = vec![1, 10];
            option.extend_from_slice(&suggestion);
            link.handle_input(
                now,
                &util::control_frame(0x8057, 3, id, &option),
                &mut |_, _| {},
            );
            let mut again = Vec::new();
            link.poll_transmit(&mut again);
            let text: Vec<String> = util::frames(&again)
                .iter()
                .map(|(p, i)| describe(*p, i).to_string())
                .collect();
            assert!(
                text.iter().any(|t| t.starts_with("IPV6CP ConfReq")
                    && t.ends_with("<addr fe80::0a00:0000:0000:000b>")),
                "{text:#?}"
            );
            return;
        }
        peer.handle_input(now, &ab, &mut |_, _| {});
        let mut ba = Vec::new();
        peer.poll_transmit(&mut ba);
        link.handle_input(now, &ba, &mut |_, _| {});
    }
    panic!("IPV6CP never started");
}

#[test]
fn protocol_reject_of_ipcp_ends_the_link_without_other_ncps() {
    let mut pair = Pair::new(
        config("a", [10, 0, 0, 1], [10, 0, 0, 2]),
        config("b", [10, 0, 0, 2], [10, 0, 0, 1]),
        1,
        2,
    );
    pair.start_both();
    assert!(pair.drive_until(Duration::from_secs(10), both_up));
    let now = pair.now;
    // B "does not speak IPCP": A gets a Protocol-Reject of 0x8021.
    pair.a.link.handle_input(
        now,
        &util::control_frame(0xc021, 8, 0x50, &[0x80, 0x21, 1, 1, 0, 4]),
        &mut |_, _| {},
    );
    pair.a.drain_events();
    assert!(pair.a.has_event(|e| *e == Event::Ipv4Down));
    let down = |p: &Pair| p.a.has_event(|e| matches!(e, Event::Down(_)));
    assert!(pair.drive_until(Duration::from_secs(30), down));
    assert!(pair
        .a
        .has_event(|e| *e == Event::Down(DownReason::NegotiationFailed("IPCP"))));
}

#[test]
fn deprecated_and_compression_options_are_rejected_politely() {
    let mut pair = opened_with_ipv6cp(None);
    let now = pair.now;
    // IPCP: IP-Addresses (1, deprecated), VJ (2) and NBNS (130) rejected;
    // the acceptable IP-Address is not mentioned in the reject.
    let options = [
        1, 10, 10, 0, 0, 2, 10, 0, 0, 1, 2, 6, 0, 0x2d, 0x0f, 1, 3, 6, 10, 0, 0, 2, 130, 6, 1, 2,
        3, 4,
    ];
    pair.a.link.handle_input(
        now,
        &util::control_frame(0x8021, 1, 0x61, &options),
        &mut |_, _| {},
    );
    // IPV6CP: IPv6-Compression-Protocol (2) rejected.
    let v6 = [2, 4, 0, 0x4f, 1, 10, 0, 0, 0, 0, 0, 0, 0, 9];
    pair.a.link.handle_input(
        now,
        &util::control_frame(0x8057, 1, 0x62, &v6),
        &mut |_, _| {},
    );
    let mut out = Vec::new();
    pair.a.link.poll_transmit(&mut out);
    let text: Vec<String> = util::frames(&out)
        .iter()
        .map(|(p, i)| describe(*p, i).to_string())
        .collect();
    assert!(
        text.contains(
            &"IPCP ConfRej id=0x61 <addrs 10.0.0.2 10.0.0.1> <compress VJ 0f 01> <ms-wins 1.2.3.4>"
                .to_string()
        ),
        "{text:#?}"
    );
    assert!(
        text.contains(&"IPV6CP ConfRej id=0x62 <compress 0x004f>".to_string()),
        "{text:#?}"
    );
}

/// Without `remote` the peer chooses its address, but not one in the
/// networks the driver reserved, not ours and not a non-unicast one: each
/// is Nak'd with 0.0.0.0 (nothing to offer instead); a peer that insists
/// ends up without an address, and IPCP then closes (as pppd: "Could not
/// determine remote IP address") instead of opening towards 0.0.0.0.
#[test]
fn a_peer_may_not_choose_a_reserved_address() {
    use tsunagi_ppp::ipcp::Ipv4Prefix;
    for asked in [
        [192, 168, 1, 7],
        [10, 0, 0, 1],
        [224, 0, 0, 5],
        [127, 0, 0, 1],
    ] {
        let mut server = config("server", [10, 0, 0, 1], [0, 0, 0, 0]);
        server.ipcp.remote = None;
        server.ipcp.refused_remote = vec![Ipv4Prefix {
            addr: Ipv4Addr::new(192, 168, 1, 0),
            len: 24,
        }];
        let client = config("client", asked, [10, 0, 0, 1]);
        let mut p = Pair::new(server, client, 1, 2);
        p.start_both();
        p.drive_until(Duration::from_secs(60), |p| {
            p.a.has_event(|e| matches!(e, Event::Down(_)))
        });
        let naks = sent(&p.a, "IPCP ConfNak");
        assert!(
            naks.iter().all(|n| n.ends_with("<addr 0.0.0.0>")) && !naks.is_empty(),
            "{asked:?}: {naks:?}"
        );
        assert!(
            !p.a.has_event(|e| matches!(e, Event::Ipv4Up { .. })),
            "{asked:?}: IPCP opened"
        );
    }
    // An address outside them is taken.
    let mut server = config("server", [10, 0, 0, 1], [0, 0, 0, 0]);
    server.ipcp.remote = None;
    let client = config("client", [10, 0, 0, 9], [10, 0, 0, 1]);
    let mut p = Pair::new(server, client, 1, 2);
    p.start_both();
    assert!(p.drive_until(Duration::from_secs(10), both_up));
    assert_eq!(
        ipv4_up(&p.a).map(|(_, peer, _)| peer),
        Some(Ipv4Addr::new(10, 0, 0, 9))
    );
}
