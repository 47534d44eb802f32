//! A LAC and an LNS exchanging datagrams through a simulated link on a
//! virtual clock: tunnels and sessions come up over a lossy, reordering,
//! duplicating link; teardown; keepalive; authentication; data messages.

mod common;

use std::time::Duration;

use common::{Faults, Net, Node};
use tsunagi_l2tp::tunnel::StopCause;
use tsunagi_l2tp::{
    CallParams, CdnResult, DownReason, ErrorCode, Role, SessionEnd, SessionState, StopCcnResult,
    TunnelConfig, TunnelEvent, TunnelState,
};

const LAC: usize = 0;
const LNS: usize = 1;

fn pair(lac: TunnelConfig, lns: TunnelConfig, faults: Faults, seed: u64) -> Net {
    Net::new(
        vec![
            Node::new("192.0.2.1:1701", lac, seed),
            Node::new("198.51.100.1:1701", lns, seed + 1),
        ],
        faults,
        seed + 2,
    )
}

fn lac_config() -> TunnelConfig {
    TunnelConfig {
        host_name: "lac".into(),
        ..TunnelConfig::new(Role::Lac)
    }
}

fn lns_config() -> TunnelConfig {
    TunnelConfig {
        host_name: "lns".into(),
        ..TunnelConfig::new(Role::Lns)
    }
}

fn up(net: &Net, node: usize) -> usize {
    net.nodes[node].count(|e| matches!(e, TunnelEvent::Up { .. }))
}

fn session_ups(net: &Net, node: usize) -> usize {
    net.nodes[node].count(|e| matches!(e, TunnelEvent::SessionUp { .. }))
}

#[test]
fn a_tunnel_and_a_session_come_up_and_carry_frames() {
    let mut net = pair(lac_config(), lns_config(), Faults::default(), 1);
    let lns_addr = net.nodes[LNS].addr;
    let now = net.now;
    let tid = net.nodes[LAC].connect(now, lns_addr);
    net.run(Duration::from_secs(1));
    assert_eq!(up(&net, LAC), 1);
    assert_eq!(up(&net, LNS), 1);
    match &net.nodes[LAC].events[0].1 {
        TunnelEvent::Up {
            peer_host_name,
            authenticated,
            ..
        } => {
            assert_eq!(peer_host_name, "lns");
            assert!(!authenticated);
        }
        e => panic!("{e:?}"),
    }
    let now = net.now;
    let t = net.nodes[LAC].tunnels.get_mut(&tid).unwrap();
    let sid = t.open_session(now, &CallParams::default()).unwrap();
    net.run(Duration::from_secs(1));
    assert_eq!(session_ups(&net, LAC), 1);
    assert_eq!(session_ups(&net, LNS), 1);
    let t = net.nodes[LAC].tunnels.get_mut(&tid).unwrap();
    assert_eq!(t.session_state(sid), Some(SessionState::Established));

    // A PPP frame (ff 03 c0 21 ...) after DATA_HEADROOM octets.
    let frame = [0xff, 0x03, 0xc0, 0x21, 0x01, 0x01, 0x00, 0x04];
    let mut buf = vec![0u8; tsunagi_l2tp::DATA_HEADROOM + frame.len()];
    buf[tsunagi_l2tp::DATA_HEADROOM..].copy_from_slice(&frame);
    let end = buf.len();
    let r = t
        .encapsulate(sid, &mut buf, tsunagi_l2tp::DATA_HEADROOM..end)
        .unwrap();
    let datagram = buf[r].to_vec();
    let (lac_addr, now) = (net.nodes[LAC].addr, net.now);
    net.nodes[LNS].receive(now, lac_addr, &datagram);
    assert_eq!(net.nodes[LNS].frames.len(), 1);
    assert_eq!(net.nodes[LNS].frames[0].2, frame);
}

#[test]
fn hundred_sessions_over_ten_tunnels_with_ten_percent_loss() {
    let faults = Faults {
        loss: 10,
        duplicate: 3,
        jitter_ms: 40,
    };
    let mut net = pair(lac_config(), lns_config(), faults, 7);
    let lns_addr = net.nodes[LNS].addr;
    let mut tids = Vec::new();
    for _ in 0..10 {
        let now = net.now;
        tids.push(net.nodes[LAC].connect(now, lns_addr));
    }
    net.run(Duration::from_secs(60));
    assert_eq!(up(&net, LAC), 10, "every tunnel up at the LAC");
    assert_eq!(up(&net, LNS), 10, "every tunnel up at the LNS");
    for &tid in &tids {
        for _ in 0..10 {
            let now = net.now;
            let t = net.nodes[LAC].tunnels.get_mut(&tid).unwrap();
            t.open_session(now, &CallParams::default()).unwrap();
        }
    }
    net.run(Duration::from_secs(120));
    assert_eq!(session_ups(&net, LAC), 100);
    assert_eq!(session_ups(&net, LNS), 100);
    assert!(net.lost > 0, "the link lost datagrams");
    let retransmitted: u64 = net.nodes[LAC]
        .tunnels
        .values()
        .map(|t| t.reliable_counters().retransmitted)
        .sum();
    assert!(retransmitted > 0);

    // Tear one tunnel down; the others stay with their sessions.
    let now = net.now;
    let gone = tids[3];
    net.nodes[LAC]
        .tunnels
        .get_mut(&gone)
        .unwrap()
        .stop(now, StopCcnResult::GeneralRequest, None);
    net.run(Duration::from_secs(120));
    assert!(
        !net.nodes[LAC].tunnels.contains_key(&gone),
        "closed after the hold"
    );
    assert_eq!(net.nodes[LAC].tunnels.len(), 9);
    assert_eq!(net.nodes[LNS].tunnels.len(), 9);
    let peer_stopped = net.nodes[LNS].count(|e| {
        matches!(
            e,
            TunnelEvent::Down {
                why: DownReason::PeerStopped {
                    result: StopCcnResult::GeneralRequest,
                    ..
                }
            }
        )
    });
    assert_eq!(peer_stopped, 1);
    for t in net.nodes[LAC].tunnels.values() {
        assert_eq!(t.state(), TunnelState::Established);
        assert_eq!(t.sessions().count(), 10);
    }
    for t in net.nodes[LNS].tunnels.values() {
        assert_eq!(
            t.sessions()
                .filter(|s| s.2 == SessionState::Established)
                .count(),
            10
        );
    }
}

#[test]
fn cdn_result_codes_reach_the_peer() {
    let mut net = pair(lac_config(), lns_config(), Faults::default(), 3);
    let lns_addr = net.nodes[LNS].addr;
    let now = net.now;
    let tid = net.nodes[LAC].connect(now, lns_addr);
    net.run(Duration::from_secs(1));
    let now = net.now;
    let sid = net.nodes[LAC]
        .tunnels
        .get_mut(&tid)
        .unwrap()
        .open_session(now, &CallParams::default())
        .unwrap();
    net.run(Duration::from_secs(1));
    let now = net.now;
    net.nodes[LAC]
        .tunnels
        .get_mut(&tid)
        .unwrap()
        .close_session(now, sid, CdnResult::LostCarrier, None)
        .unwrap();
    net.run(Duration::from_secs(1));
    let down: Vec<_> = net.nodes[LNS]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            TunnelEvent::SessionDown { why, .. } => Some(why.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(down.len(), 1);
    match &down[0] {
        SessionEnd::PeerDisconnected { result, .. } => assert_eq!(*result, CdnResult::LostCarrier),
        w => panic!("{w:?}"),
    }
    assert!(
        down[0].to_string().contains("loss of carrier"),
        "{}",
        down[0]
    );
}

#[test]
fn the_lns_refuses_a_session_with_its_result_code() {
    let mut net = pair(lac_config(), lns_config(), Faults::default(), 4);
    net.nodes[LNS].accept_sessions = false;
    let lns_addr = net.nodes[LNS].addr;
    let now = net.now;
    let tid = net.nodes[LAC].connect(now, lns_addr);
    net.run(Duration::from_secs(1));
    let now = net.now;
    let sid = net.nodes[LAC]
        .tunnels
        .get_mut(&tid)
        .unwrap()
        .open_session(now, &CallParams::default())
        .unwrap();
    net.run(Duration::from_millis(200));
    let (ltid, lsid) = net.nodes[LNS]
        .events
        .iter()
        .find_map(|(t, e)| match e {
            TunnelEvent::SessionRequested { session_id, .. } => Some((*t, *session_id)),
            _ => None,
        })
        .unwrap();
    let now = net.now;
    net.nodes[LNS]
        .tunnels
        .get_mut(&ltid)
        .unwrap()
        .refuse_session(
            now,
            lsid,
            CdnResult::NoFacilitiesPermanent,
            Some(ErrorCode::NoResources),
        )
        .unwrap();
    net.run(Duration::from_secs(1));
    let why = net.nodes[LAC]
        .events
        .iter()
        .find_map(|(_, e)| match e {
            TunnelEvent::SessionDown {
                session_id, why, ..
            } if *session_id == sid => Some(why.clone()),
            _ => None,
        })
        .expect("SessionDown at the LAC");
    assert_eq!(
        why,
        SessionEnd::PeerDisconnected {
            result: CdnResult::NoFacilitiesPermanent,
            error: Some(ErrorCode::NoResources),
            message: "refused".into(),
            q931: None,
        }
    );
}

#[test]
fn outgoing_calls_from_the_lns() {
    let mut net = pair(lac_config(), lns_config(), Faults::default(), 5);
    let lac_addr = net.nodes[LAC].addr;
    let now = net.now;
    // The LNS opens the tunnel this time, then places an outgoing call.
    let tid = net.nodes[LNS].connect(now, lac_addr);
    net.run(Duration::from_secs(1));
    assert_eq!(up(&net, LNS), 1);
    let now = net.now;
    let call = CallParams {
        called_number: "5551234".into(),
        ..CallParams::default()
    };
    net.nodes[LNS]
        .tunnels
        .get_mut(&tid)
        .unwrap()
        .open_session(now, &call)
        .unwrap();
    net.run(Duration::from_secs(1));
    assert_eq!(session_ups(&net, LAC), 1);
    assert_eq!(session_ups(&net, LNS), 1);
    let called = net.nodes[LAC].events.iter().find_map(|(_, e)| match e {
        TunnelEvent::SessionRequested { call, .. } => Some(call.called_number.clone()),
        _ => None,
    });
    assert_eq!(called.as_deref(), Some("5551234"));
}

#[test]
fn tunnel_authentication_with_a_shared_secret() {
    let secret = tsunagi_crypto::Secret::from("s3cret");
    let lac = TunnelConfig {
        secret: Some(secret.clone()),
        hide_avps: true,
        ..lac_config()
    };
    let lns = TunnelConfig {
        secret: Some(secret),
        hide_avps: true,
        ..lns_config()
    };
    let mut net = pair(lac, lns, Faults::default(), 6);
    let lns_addr = net.nodes[LNS].addr;
    let now = net.now;
    let tid = net.nodes[LAC].connect(now, lns_addr);
    net.run(Duration::from_secs(1));
    for node in [LAC, LNS] {
        let auth = net.nodes[node].events.iter().find_map(|(_, e)| match e {
            TunnelEvent::Up { authenticated, .. } => Some(*authenticated),
            _ => None,
        });
        assert_eq!(auth, Some(true), "node {node}");
    }
    let now = net.now;
    net.nodes[LAC]
        .tunnels
        .get_mut(&tid)
        .unwrap()
        .open_session(now, &CallParams::default())
        .unwrap();
    net.run(Duration::from_secs(1));
    assert_eq!(session_ups(&net, LNS), 1, "hidden AVPs revealed");
}

#[test]
fn a_wrong_secret_stops_the_tunnel_as_not_authorized() {
    let lac = TunnelConfig {
        secret: Some("one".into()),
        ..lac_config()
    };
    let lns = TunnelConfig {
        secret: Some("two".into()),
        ..lns_config()
    };
    let mut net = pair(lac, lns, Faults::default(), 8);
    let lns_addr = net.nodes[LNS].addr;
    let now = net.now;
    net.nodes[LAC].connect(now, lns_addr);
    net.run(Duration::from_secs(60));
    assert_eq!(up(&net, LAC), 0);
    assert_eq!(up(&net, LNS), 0);
    let lac_down = net.nodes[LAC].events.iter().find_map(|(_, e)| match e {
        TunnelEvent::Down { why } => Some(why.clone()),
        _ => None,
    });
    match lac_down {
        Some(DownReason::WeStopped {
            cause: StopCause::AuthenticationFailed { .. },
            result: StopCcnResult::NotAuthorized,
            ..
        }) => {}
        w => panic!("{w:?}"),
    }
    let lns_down = net.nodes[LNS].events.iter().find_map(|(_, e)| match e {
        TunnelEvent::Down { why } => Some(why.clone()),
        _ => None,
    });
    match lns_down {
        Some(DownReason::PeerStopped {
            result: StopCcnResult::NotAuthorized,
            ..
        }) => {}
        w => panic!("{w:?}"),
    }
    assert!(net.nodes[LAC].tunnels.is_empty() && net.nodes[LNS].tunnels.is_empty());
}

#[test]
fn hello_keeps_an_idle_tunnel_and_declares_a_dead_one() {
    let lac = TunnelConfig {
        hello_interval: Duration::from_secs(60),
        ..lac_config()
    };
    let mut net = pair(lac, lns_config(), Faults::default(), 9);
    let lns_addr = net.nodes[LNS].addr;
    let now = net.now;
    let tid = net.nodes[LAC].connect(now, lns_addr);
    net.run(Duration::from_secs(300));
    // Both ends send HELLO after 60 s of silence; each one heard resets
    // the other's timer.
    let hellos: u64 = [LAC, LNS]
        .iter()
        .map(|&n| {
            net.nodes[n]
                .tunnels
                .values()
                .map(|t| t.counters().hellos_sent)
                .sum::<u64>()
        })
        .sum();
    assert!((4..=5).contains(&hellos), "{hellos} HELLOs in 300 s");
    assert_eq!(
        net.nodes[LAC].tunnels[&tid].state(),
        TunnelState::Established
    );

    // The LNS vanishes: the next HELLO goes unanswered.
    net.faults.loss = 100;
    let start = net.now;
    net.run(Duration::from_secs(200));
    let down = net.nodes[LAC]
        .events
        .iter()
        .find_map(|(_, e)| match e {
            TunnelEvent::Down { why } => Some(why.clone()),
            _ => None,
        })
        .expect("declared dead");
    assert_eq!(down, DownReason::KeepaliveTimeout);
    assert!(net.nodes[LAC].tunnels.is_empty());
    let _ = start;
}

#[test]
fn set_link_info_and_wan_error_notify() {
    let mut net = pair(lac_config(), lns_config(), Faults::default(), 10);
    let lns_addr = net.nodes[LNS].addr;
    let now = net.now;
    let tid = net.nodes[LAC].connect(now, lns_addr);
    net.run(Duration::from_secs(1));
    let now = net.now;
    let sid = net.nodes[LAC]
        .tunnels
        .get_mut(&tid)
        .unwrap()
        .open_session(now, &CallParams::default())
        .unwrap();
    net.run(Duration::from_secs(1));
    let (ltid, lsid) = net.nodes[LNS]
        .events
        .iter()
        .find_map(|(t, e)| match e {
            TunnelEvent::SessionUp { session_id, .. } => Some((*t, *session_id)),
            _ => None,
        })
        .unwrap();
    let now = net.now;
    net.nodes[LNS]
        .tunnels
        .get_mut(&ltid)
        .unwrap()
        .set_link_info(now, lsid, 0, 0xffff_ffff)
        .unwrap();
    let errors = tsunagi_l2tp::avp::CallErrors {
        crc_errors: 1,
        framing_errors: 2,
        hardware_overruns: 3,
        buffer_overruns: 4,
        timeout_errors: 5,
        alignment_errors: 6,
    };
    net.nodes[LAC]
        .tunnels
        .get_mut(&tid)
        .unwrap()
        .wan_error_notify(now, sid, errors)
        .unwrap();
    net.run(Duration::from_secs(1));
    assert!(net.nodes[LAC].events.iter().any(|(_, e)| *e
        == TunnelEvent::SetLinkInfo {
            session_id: sid,
            send_accm: 0,
            receive_accm: 0xffff_ffff
        }));
    assert!(net.nodes[LNS].events.iter().any(|(_, e)| *e
        == TunnelEvent::WanErrorNotify {
            session_id: lsid,
            errors
        }));
}

#[test]
fn data_sequencing_when_the_lac_requires_it() {
    let lac = TunnelConfig {
        data_sequencing: true,
        ..lac_config()
    };
    let mut net = pair(lac, lns_config(), Faults::default(), 11);
    let lns_addr = net.nodes[LNS].addr;
    let now = net.now;
    let tid = net.nodes[LAC].connect(now, lns_addr);
    net.run(Duration::from_secs(1));
    let now = net.now;
    net.nodes[LAC]
        .tunnels
        .get_mut(&tid)
        .unwrap()
        .open_session(now, &CallParams::default())
        .unwrap();
    net.run(Duration::from_secs(1));
    let (ltid, lsid, seq) = net.nodes[LNS]
        .events
        .iter()
        .find_map(|(t, e)| match e {
            TunnelEvent::SessionUp {
                session_id,
                sequencing,
                ..
            } => Some((*t, *session_id, *sequencing)),
            _ => None,
        })
        .unwrap();
    assert!(seq, "Sequencing Required reached the LNS");
    let t = net.nodes[LNS].tunnels.get_mut(&ltid).unwrap();
    let mut datagrams = Vec::new();
    for i in 0..3u8 {
        let mut buf = vec![0u8; 12 + 4];
        buf[12..].copy_from_slice(&[0xff, 0x03, 0x00, i]);
        let r = t.encapsulate(lsid, &mut buf, 12..16).unwrap();
        let (h, _) = tsunagi_l2tp::Header::parse(&buf[r.clone()]).unwrap();
        assert_eq!(h.sequence.unwrap().ns, u16::from(i));
        datagrams.push(buf[r].to_vec());
    }
    // Delivered out of order: the late one is dropped.
    let (addr, now) = (net.nodes[LNS].addr, net.now);
    net.nodes[LAC].receive(now, addr, &datagrams[0]);
    net.nodes[LAC].receive(now, addr, &datagrams[2]);
    net.nodes[LAC].receive(now, addr, &datagrams[1]);
    let got: Vec<u8> = net.nodes[LAC].frames.iter().map(|f| f.2[3]).collect();
    assert_eq!(got, vec![0, 2]);
}

#[test]
fn simultaneous_sccrqs_with_tie_breakers_leave_one_tunnel() {
    for seed in 20..30 {
        let lac = TunnelConfig {
            tie_breaker: true,
            ..lac_config()
        };
        let lns = TunnelConfig {
            tie_breaker: true,
            ..lns_config()
        };
        let mut net = pair(lac, lns, Faults::default(), seed);
        let (lac_addr, lns_addr, now) = (net.nodes[LAC].addr, net.nodes[LNS].addr, net.now);
        net.nodes[LAC].connect(now, lns_addr);
        net.nodes[LNS].connect(now, lac_addr);
        net.run(Duration::from_secs(5));
        assert_eq!(up(&net, LAC), 1, "seed {seed}");
        assert_eq!(up(&net, LNS), 1, "seed {seed}");
        assert_eq!(net.nodes[LAC].tunnels.len(), 1);
        assert_eq!(net.nodes[LNS].tunnels.len(), 1);
        assert_eq!(
            net.nodes[LAC].dispatch.counters().tie_breaks
                + net.nodes[LNS].dispatch.counters().tie_breaks,
            2
        );
    }
}
