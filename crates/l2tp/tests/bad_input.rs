//! What a hostile or broken peer can send: unknown M-bit AVPs in tunnel and
//! session messages (section 4.2), unknown message types, hidden AVPs
//! without a secret, truncated and malformed datagrams, SCCRQ floods, the
//! Tie Breaker (section 4.4.3), several LACs behind one NAT.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::seeded;
use tsunagi_l2tp::avp::{hide, write_avp, Avp};
use tsunagi_l2tp::dispatch::{tie_break, Dispatch, DispatchConfig, Drop, Route, TieBreak};
use tsunagi_l2tp::header::Header;
use tsunagi_l2tp::message::{Message, MessageType};
use tsunagi_l2tp::reliable::write_control;
use tsunagi_l2tp::tunnel::{SessionCause, StopCause};
use tsunagi_l2tp::{
    CallParams, CdnResult, DownReason, ErrorCode, Input, Role, SessionEnd, StopCcnResult, Tunnel,
    TunnelConfig, TunnelEvent, TunnelState,
};

fn all(t: &mut Tunnel) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    let mut out = Vec::new();
    while t.poll_transmit(&mut out) {
        v.push(out.clone());
    }
    v
}

fn events(t: &mut Tunnel) -> Vec<TunnelEvent> {
    std::iter::from_fn(|| t.poll_event()).collect()
}

fn parse(d: &[u8]) -> Option<Message> {
    let (_, r) = Header::parse(d).unwrap();
    (!r.is_empty()).then(|| Message::parse(&d[r], None).unwrap())
}

/// An LNS (responder, tunnel 22) established with a scripted LAC whose
/// tunnel is 11; returns the LNS and the LAC's next Ns.
fn established_lns(t0: Instant) -> (Tunnel, u16) {
    let mut lns = Tunnel::accept(TunnelConfig::new(Role::Lns), 22, t0, seeded(2));
    let sccrq = Message::new(MessageType::Sccrq)
        .with(Avp::ProtocolVersion {
            version: 1,
            revision: 0,
        })
        .with(Avp::HostName(b"lac".to_vec()))
        .with(Avp::FramingCapabilities(3))
        .with(Avp::AssignedTunnelId(11));
    send(&mut lns, t0, 0, 0, 0, &sccrq);
    all(&mut lns);
    send(&mut lns, t0, 22, 0, 1, &Message::new(MessageType::Scccn));
    assert_eq!(lns.state(), TunnelState::Established);
    events(&mut lns);
    (lns, 2)
}

fn send(t: &mut Tunnel, now: Instant, tunnel: u16, session: u16, ns: u16, m: &Message) -> Input {
    let mut body = Vec::new();
    m.emit(&mut body, None);
    send_body(t, now, tunnel, session, ns, &body)
}

fn send_body(
    t: &mut Tunnel,
    now: Instant,
    tunnel: u16,
    session: u16,
    ns: u16,
    body: &[u8],
) -> Input {
    let mut d = Vec::new();
    write_control(&mut d, tunnel, session, ns, 1, body);
    t.handle_input(now, &d)
}

#[test]
fn unknown_mandatory_avp_in_a_tunnel_message_stops_the_tunnel() {
    let t0 = Instant::now();
    let (mut lns, ns) = established_lns(t0);
    let mut body = Vec::new();
    Message::new(MessageType::Hello).emit(&mut body, None);
    write_avp(&mut body, true, false, 9, 42, b"?");
    send_body(&mut lns, t0, 22, 0, ns, &body);
    let sent = all(&mut lns);
    let stop = sent
        .iter()
        .filter_map(|d| parse(d))
        .find(|m| m.kind() == MessageType::StopCcn)
        .unwrap();
    let rc = stop.result_code().unwrap();
    assert_eq!((rc.result, rc.error), (2, Some(8)));
    match &events(&mut lns)[..] {
        [TunnelEvent::Down {
            why:
                DownReason::WeStopped {
                    cause: StopCause::UnknownMandatoryAvp { message, avp },
                    result: StopCcnResult::GeneralError,
                    error: Some(ErrorCode::UnknownMandatoryAvp),
                },
        }] => {
            assert_eq!(*message, MessageType::Hello);
            assert_eq!((avp.vendor_id, avp.attribute_type), (9, 42));
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(lns.state(), TunnelState::Closing);
}

#[test]
fn unknown_mandatory_avp_in_a_session_message_ends_only_that_session() {
    let t0 = Instant::now();
    let (mut lns, mut ns) = established_lns(t0);
    // Two ICRQs; the second carries an unknown M-bit AVP.
    let icrq = |sid: u16| {
        Message::new(MessageType::Icrq)
            .with(Avp::AssignedSessionId(sid))
            .with(Avp::CallSerialNumber(u32::from(sid)))
    };
    send(&mut lns, t0, 22, 0, ns, &icrq(100));
    ns += 1;
    let ours = match events(&mut lns)[..] {
        [TunnelEvent::SessionRequested { session_id, .. }] => session_id,
        ref e => panic!("{e:?}"),
    };
    lns.accept_session(t0, ours).unwrap();
    all(&mut lns);
    let mut body = Vec::new();
    icrq(200).emit(&mut body, None);
    write_avp(&mut body, true, false, 0, 20, b"");
    send_body(&mut lns, t0, 22, 0, ns, &body);
    ns += 1;
    let cdn = all(&mut lns)
        .iter()
        .filter_map(|d| parse(d))
        .find(|m| m.kind() == MessageType::Cdn)
        .unwrap();
    assert_eq!(cdn.result_code().unwrap().error, Some(8));
    assert!(
        events(&mut lns).is_empty(),
        "never requested, so no SessionDown"
    );
    // An ICCN for the first session with an unknown M-bit AVP ends it.
    let mut body = Vec::new();
    Message::new(MessageType::Iccn)
        .with(Avp::TxConnectSpeed(1))
        .with(Avp::FramingType(1))
        .emit(&mut body, None);
    write_avp(&mut body, true, false, 4491, 7, b"x");
    send_body(&mut lns, t0, 22, ours, ns, &body);
    match &events(&mut lns)[..] {
        [TunnelEvent::SessionDown {
            session_id,
            peer_session_id: 100,
            why:
                SessionEnd::WeDisconnected {
                    cause: SessionCause::UnknownMandatoryAvp { .. },
                    result: CdnResult::GeneralError,
                    error: Some(ErrorCode::UnknownMandatoryAvp),
                },
        }] => assert_eq!(*session_id, ours),
        e => panic!("{e:?}"),
    }
    assert_eq!(lns.state(), TunnelState::Established, "the tunnel stays");
}

#[test]
fn unknown_avps_without_the_m_bit_and_unknown_message_types_are_ignored() {
    let t0 = Instant::now();
    let (mut lns, ns) = established_lns(t0);
    let mut body = Vec::new();
    Message::new(MessageType::Hello).emit(&mut body, None);
    write_avp(&mut body, false, false, 9, 42, b"?");
    write_avp(&mut body, false, false, 0, 77, b"?");
    send_body(&mut lns, t0, 22, 0, ns, &body);
    let mut body = Vec::new();
    write_avp(&mut body, false, false, 0, 0, &200u16.to_be_bytes());
    send_body(&mut lns, t0, 22, 0, ns + 1, &body);
    assert_eq!(lns.counters().unknown_avps_ignored, 2);
    assert_eq!(lns.counters().unknown_messages_ignored, 1);
    assert_eq!(lns.state(), TunnelState::Established);
    // An unknown Message Type with the M bit clears the tunnel.
    let mut body = Vec::new();
    write_avp(&mut body, true, false, 0, 0, &200u16.to_be_bytes());
    send_body(&mut lns, t0, 22, 0, ns + 2, &body);
    assert_eq!(lns.state(), TunnelState::Closing);
}

#[test]
fn a_hidden_avp_without_a_secret_is_refused_clearly() {
    let t0 = Instant::now();
    let mut lns = Tunnel::accept(TunnelConfig::new(Role::Lns), 22, t0, seeded(2));
    let mut body = Vec::new();
    Message::new(MessageType::Sccrq)
        .with(Avp::ProtocolVersion {
            version: 1,
            revision: 0,
        })
        .with(Avp::HostName(b"lac".to_vec()))
        .with(Avp::FramingCapabilities(3))
        .emit(&mut body, None);
    write_avp(&mut body, true, false, 0, 36, &[1; 16]);
    write_avp(
        &mut body,
        true,
        true,
        0,
        9,
        &hide(9, &11u16.to_be_bytes(), b"k", &[1; 16], &[]),
    );
    send_body(&mut lns, t0, 0, 0, 0, &body);
    match &events(&mut lns)[..] {
        [TunnelEvent::Down {
            why: DownReason::WeStopped { cause, .. },
        }] => assert_eq!(
            cause.to_string(),
            "bad control message: Assigned Tunnel ID (9) AVP is hidden (H bit) and no shared secret is configured to reveal it"
        ),
        e => panic!("{e:?}"),
    }
    assert_eq!(lns.counters().bad_messages, 1);
}

#[test]
fn truncated_and_malformed_datagrams_never_panic() {
    let t0 = Instant::now();
    let (mut lns, ns) = established_lns(t0);
    let mut good = Vec::new();
    let mut body = Vec::new();
    Message::new(MessageType::Hello).emit(&mut body, None);
    write_control(&mut good, 22, 0, ns, 1, &body);
    for n in 0..good.len() {
        let _ = lns.handle_input(t0, &good[..n]);
    }
    assert!(lns.counters().malformed >= 11);
    // AVP Length 0 inside a message.
    let mut bad = body.clone();
    bad.extend_from_slice(&[0x80, 0x00, 0, 0, 0, 7]);
    send_body(&mut lns, t0, 22, 0, ns, &bad);
    assert_eq!(lns.counters().bad_messages, 1);
    assert_eq!(
        lns.state(),
        TunnelState::Closing,
        "a malformed tunnel message stops the tunnel"
    );
    // Another tunnel id: dropped and counted.
    let (mut lns, _) = established_lns(t0);
    let mut d = Vec::new();
    write_control(&mut d, 99, 0, 0, 0, &body);
    assert!(matches!(lns.handle_input(t0, &d), Input::Dropped(_)));
    assert_eq!(lns.counters().wrong_tunnel, 1);
}

#[test]
fn too_many_sessions_are_refused_with_a_result_code() {
    let t0 = Instant::now();
    let mut lns = Tunnel::accept(
        TunnelConfig {
            max_sessions: 2,
            ..TunnelConfig::new(Role::Lns)
        },
        22,
        t0,
        seeded(2),
    );
    let sccrq = Message::new(MessageType::Sccrq)
        .with(Avp::ProtocolVersion {
            version: 1,
            revision: 0,
        })
        .with(Avp::HostName(b"lac".to_vec()))
        .with(Avp::FramingCapabilities(3))
        .with(Avp::AssignedTunnelId(11));
    send(&mut lns, t0, 0, 0, 0, &sccrq);
    send(&mut lns, t0, 22, 0, 1, &Message::new(MessageType::Scccn));
    all(&mut lns);
    let mut ids = Vec::new();
    for i in 0..3u16 {
        let m = Message::new(MessageType::Icrq)
            .with(Avp::AssignedSessionId(100 + i))
            .with(Avp::CallSerialNumber(1));
        send(&mut lns, t0, 22, 0, 2 + i, &m);
        for e in events(&mut lns) {
            if let TunnelEvent::SessionRequested { session_id, .. } = e {
                ids.push(session_id);
            }
        }
    }
    assert_eq!(ids.len(), 2);
    assert!(ids.iter().all(|&i| i != 0) && ids[0] != ids[1]);
    assert_eq!(lns.counters().sessions_refused_limit, 1);
    // The refusal goes out once the window lets it (the scripted LAC never
    // acknowledges; the window starts at 1).
    let mut out = Vec::new();
    for _ in 0..10 {
        let t = lns.poll_timeout().unwrap();
        lns.handle_timeout(t);
        while lns.poll_transmit(&mut out) {
            if let Some(m) = parse(&out) {
                if m.kind() == MessageType::Cdn {
                    let rc = m.result_code().unwrap();
                    assert_eq!((rc.result, rc.error), (4, Some(4)));
                    return;
                }
            }
        }
        let _ = send(&mut lns, t, 22, 0, 5, &Message::new(MessageType::Hello));
    }
    panic!("no CDN");
}

fn sccrq(tid: u16, tb: Option<[u8; 8]>) -> Vec<u8> {
    let mut m = Message::new(MessageType::Sccrq)
        .with(Avp::ProtocolVersion {
            version: 1,
            revision: 0,
        })
        .with(Avp::HostName(b"lac".to_vec()))
        .with(Avp::FramingCapabilities(3))
        .with(Avp::AssignedTunnelId(tid));
    if let Some(tb) = tb {
        m = m.with(Avp::TieBreaker(tb));
    }
    let mut body = Vec::new();
    m.emit(&mut body, None);
    let mut d = Vec::new();
    write_control(&mut d, 0, 0, 0, 0, &body);
    d
}

#[test]
fn lacs_behind_one_nat_with_equal_tunnel_ids_are_kept_apart() {
    let mut d = Dispatch::new(DispatchConfig::default(), seeded(5));
    let a: SocketAddr = "203.0.113.9:1701".parse().unwrap();
    let b: SocketAddr = "203.0.113.9:40001".parse().unwrap();
    let (ra, rb) = (d.route(a, &sccrq(1, None)), d.route(b, &sccrq(1, None)));
    let (Route::New { local_id: la, .. }, Route::New { local_id: lb, .. }) = (ra, rb) else {
        panic!("two new tunnels");
    };
    assert_ne!(la, lb);
    // A retransmitted SCCRQ finds its tunnel.
    assert_eq!(d.route(a, &sccrq(1, None)), Route::Tunnel(la));
    assert_eq!(d.counters().sccrq_retransmissions, 1);
    // Our tunnel id from the other LAC's address: dropped.
    let mut zlb = Vec::new();
    write_control(&mut zlb, la, 0, 0, 0, &[]);
    assert_eq!(
        d.route(b, &zlb),
        Route::Dropped(Drop::WrongPeer { tunnel_id: la })
    );
    assert_eq!(d.route(a, &zlb), Route::Tunnel(la));
}

#[test]
fn a_thousand_sccrqs_from_one_source_make_a_bounded_number_of_tunnels() {
    let mut d = Dispatch::new(
        DispatchConfig {
            max_tunnels_per_address: 16,
            max_tunnels: 100,
            secret: None,
        },
        seeded(6),
    );
    let src: SocketAddr = "192.0.2.66:1701".parse().unwrap();
    let mut made = 0;
    for i in 1..=1000u16 {
        if let Route::New { .. } = d.route(src, &sccrq(i, None)) {
            made += 1;
        }
    }
    assert_eq!(made, 16);
    assert_eq!(d.counters().refused_per_address, 984);
    assert_eq!(d.len(), 16);
    // Junk with tunnel id 0 is counted, not a tunnel.
    assert!(matches!(
        d.route(src, &[0xc8, 0x02, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0]),
        Route::Dropped(Drop::NotSccrq { .. })
    ));
    // The total limit.
    for i in 0..200u16 {
        let peer = SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 1701));
        d.route(peer, &sccrq(1, None));
    }
    assert_eq!(d.len(), 100);
    assert_eq!(d.counters().refused_total, 116);
}

#[test]
fn tie_breaker_lower_value_wins() {
    assert_eq!(tie_break(None, None), TieBreak::NoTie);
    assert_eq!(tie_break(Some([1; 8]), None), TieBreak::WeWin);
    assert_eq!(tie_break(None, Some([1; 8])), TieBreak::TheyWin);
    assert_eq!(tie_break(Some([1; 8]), Some([2; 8])), TieBreak::WeWin);
    assert_eq!(tie_break(Some([2; 8]), Some([1; 8])), TieBreak::TheyWin);
    assert_eq!(tie_break(Some([2; 8]), Some([2; 8])), TieBreak::BothLose);

    let peer: SocketAddr = "198.51.100.7:1701".parse().unwrap();
    // We win: their SCCRQ is dropped, our tunnel stays.
    let mut d = Dispatch::new(DispatchConfig::default(), seeded(7));
    let ours = d.connect(peer).unwrap();
    d.set_tie_breaker(ours, Some([1; 8]));
    assert_eq!(
        d.route(peer, &sccrq(5, Some([9; 8]))),
        Route::Dropped(Drop::LostTieBreak { our_tunnel: ours })
    );
    // They win: our tunnel is discarded and theirs made.
    let mut d = Dispatch::new(DispatchConfig::default(), seeded(7));
    let ours = d.connect(peer).unwrap();
    d.set_tie_breaker(ours, Some([9; 8]));
    match d.route(peer, &sccrq(5, Some([1; 8]))) {
        Route::New { discard, .. } => assert_eq!(discard, Some(ours)),
        r => panic!("{r:?}"),
    }
    assert!(d.peer(ours).is_none());
    // Equal: both lose.
    let mut d = Dispatch::new(DispatchConfig::default(), seeded(7));
    let ours = d.connect(peer).unwrap();
    d.set_tie_breaker(ours, Some([4; 8]));
    assert_eq!(
        d.route(peer, &sccrq(5, Some([4; 8]))),
        Route::Discard { local_id: ours }
    );
    // Once established, no collision.
    let mut d = Dispatch::new(DispatchConfig::default(), seeded(7));
    let ours = d.connect(peer).unwrap();
    d.set_tie_breaker(ours, Some([1; 8]));
    d.established(ours);
    assert!(matches!(
        d.route(peer, &sccrq(5, Some([9; 8]))),
        Route::New { discard: None, .. }
    ));
    // The engine sends the Tie Breaker it was configured to.
    let t = Tunnel::connect(
        TunnelConfig {
            tie_breaker: true,
            ..TunnelConfig::new(Role::Lac)
        },
        3,
        Instant::now(),
        seeded(8),
    );
    assert!(t.tie_breaker().is_some());
}

#[test]
fn a_stopped_tunnel_holds_its_state_to_acknowledge_a_retransmitted_stopccn() {
    let t0 = Instant::now();
    let (mut lns, ns) = established_lns(t0);
    let stop = Message::new(MessageType::StopCcn)
        .with(Avp::AssignedTunnelId(11))
        .with(Avp::ResultCode(tsunagi_l2tp::avp::ResultCode {
            result: 6,
            error: None,
            message: vec![],
        }));
    send(&mut lns, t0, 22, 0, ns, &stop);
    let zlb = all(&mut lns);
    assert_eq!(zlb.len(), 1, "acknowledged at once");
    assert!(matches!(
        &events(&mut lns)[..],
        [TunnelEvent::Down {
            why: DownReason::PeerStopped {
                result: StopCcnResult::ShuttingDown,
                ..
            }
        }]
    ));
    // The ZLB was lost: the retransmission is acknowledged again.
    send(&mut lns, t0 + Duration::from_secs(1), 22, 0, ns, &stop);
    assert_eq!(all(&mut lns).len(), 1);
    assert!(events(&mut lns).is_empty());
    assert_eq!(lns.poll_timeout(), Some(t0 + Duration::from_secs(31)));
    lns.handle_timeout(t0 + Duration::from_secs(31));
    assert!(lns.is_closed());
    // Commands on a closed tunnel are refused.
    assert!(lns.open_session(t0, &CallParams::default()).is_err());
}
