//! Two links on a virtual clock with authentication and CCP: each method
//! succeeds with the right secret and fails (Failure + Terminate on both
//! sides) with a wrong one; traffic flows Deflate-compressed and
//! MPPE-encrypted, also with frame loss between the engines.

mod util;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use tsunagi_crypto::Secret;
use tsunagi_ppp::auth::{AuthConfig, AuthMethod, SecretsHandle};
use tsunagi_ppp::ccp::{CcpConfig, CcpMethod, DeflateConfig, MppeConfig};
use tsunagi_ppp::fsm::State;
use tsunagi_ppp::link::AuthEvent;
use tsunagi_ppp::secrets::ChapSecrets;
use tsunagi_ppp::{Event, IpVersion, LinkConfig};
use util::{config, frames, Pair};

const SECRETS: &str = "alice * wonderland *\nbob * \"builder pass\" 10.224.1.77\n";

fn server(require: AuthMethod) -> LinkConfig {
    let mut c = config("server", [10, 224, 1, 1], [10, 224, 1, 2]);
    c.auth = AuthConfig {
        require: vec![require],
        name: "vpn".into(),
        secrets: Some(SecretsHandle(Arc::new(
            ChapSecrets::parse(SECRETS).unwrap(),
        ))),
        ..AuthConfig::default()
    };
    c
}

fn client(user: &str, password: &str, method: AuthMethod) -> LinkConfig {
    let mut c = config("client", [0, 0, 0, 0], [10, 224, 1, 1]);
    c.ipcp.local = None;
    c.ipcp.remote = None;
    c.auth = AuthConfig {
        user: Some(user.into()),
        password: Some(Secret::from(password)),
        accept: vec![method],
        ..AuthConfig::default()
    };
    c
}

fn auth_events(side: &mut util::Side) -> Vec<AuthEvent> {
    std::iter::from_fn(|| side.link.poll_auth_event()).collect()
}

fn ipv4_up(side: &util::Side) -> Option<(Ipv4Addr, Ipv4Addr)> {
    side.events.iter().find_map(|e| match e {
        Event::Ipv4Up { local, peer, .. } => Some((*local, *peer)),
        _ => None,
    })
}

fn both_up(p: &Pair) -> bool {
    ipv4_up(&p.a).is_some() && ipv4_up(&p.b).is_some()
}

fn both_down(p: &Pair) -> bool {
    [&p.a, &p.b]
        .iter()
        .all(|s| s.events.iter().any(|e| matches!(e, Event::Down(_))))
}

/// An IPv4-looking packet that compresses well.
fn packet(tag: u8, len: usize) -> Vec<u8> {
    let mut p = vec![0x45, 0, (len >> 8) as u8, len as u8];
    p.extend((4..len).map(|i| if i % 16 == 0 { tag } else { b'a' }));
    p
}

/// Sends `n` packets each way and checks what arrived and on which
/// protocol they went.
fn traffic(pair: &mut Pair, n: u8, expect_fd: bool) -> (usize, usize) {
    let (a0, b0) = (pair.a.received.len(), pair.b.received.len());
    for i in 0..n {
        for from_a in [true, false] {
            let p = packet(i, 300);
            let side = if from_a { &mut pair.a } else { &mut pair.b };
            let mut bytes = Vec::new();
            assert!(side.link.encapsulate(IpVersion::V4, &p, &mut bytes));
            let protocols: Vec<u16> = frames(&bytes).iter().map(|f| f.0).collect();
            if expect_fd {
                assert_eq!(protocols, vec![0xfd], "packet {i} not compressed/encrypted");
            }
            pair.deliver_bytes(from_a, &bytes);
        }
        pair.step();
    }
    (pair.a.received.len() - a0, pair.b.received.len() - b0)
}

#[test]
fn each_method_succeeds_with_the_right_secret() {
    for method in [AuthMethod::Pap, AuthMethod::ChapMd5, AuthMethod::MsChapV2] {
        let mut pair = Pair::new(server(method), client("alice", "wonderland", method), 1, 2);
        pair.start_both();
        assert!(
            pair.drive_until(Duration::from_secs(30), both_up),
            "{method:?} not up"
        );
        let a = auth_events(&mut pair.a);
        assert!(
            a.contains(&AuthEvent::Authenticated {
                user: "alice".into(),
                method,
                address: None
            }),
            "{method:?}: {a:?}"
        );
        let b = auth_events(&mut pair.b);
        assert!(
            b.contains(&AuthEvent::AuthenticatedToPeer {
                user: "alice".into(),
                method
            }),
            "{method:?}: {b:?}"
        );
        assert_eq!(
            pair.a.link.status().peer_auth,
            Some(("alice".to_string(), method))
        );
        assert!(pair
            .a
            .events
            .contains(&Event::Phase(tsunagi_ppp::Phase::Authenticate)));
        let (to_a, to_b) = traffic(&mut pair, 3, false);
        assert_eq!((to_a, to_b), (3, 3), "{method:?}");
    }
}

#[test]
fn each_method_fails_with_a_wrong_secret_on_both_sides() {
    for method in [AuthMethod::Pap, AuthMethod::ChapMd5, AuthMethod::MsChapV2] {
        let mut pair = Pair::new(server(method), client("alice", "wrongpass", method), 3, 4);
        pair.start_both();
        assert!(
            pair.drive_until(Duration::from_secs(30), both_down),
            "{method:?} not down"
        );
        assert!(ipv4_up(&pair.a).is_none() && ipv4_up(&pair.b).is_none());
        let a = auth_events(&mut pair.a);
        assert!(
            a.iter().any(
                |e| matches!(e, AuthEvent::AuthFailed { user, ours: false, .. } if user == "alice")
            ),
            "{method:?}: {a:?}"
        );
        let b = auth_events(&mut pair.b);
        assert!(
            b.iter()
                .any(|e| matches!(e, AuthEvent::AuthFailed { ours: true, .. })),
            "{method:?}: {b:?}"
        );
        // The peer got a Failure/Nak, then a Terminate-Request.
        let sent: Vec<u16> = pair.a.sent_frames.iter().map(|f| f.0).collect();
        let auth_proto = if method == AuthMethod::Pap {
            0xc023
        } else {
            0xc223
        };
        let failure_code = if method == AuthMethod::Pap { 3 } else { 4 };
        assert!(pair
            .a
            .sent_frames
            .iter()
            .any(|(p, info)| *p == auth_proto && info[0] == failure_code));
        assert!(sent.contains(&0xc021));
        assert!(pair.a.sent_frames.iter().any(|(p, info)| *p == 0xc021
            && info[0] == 5
            && info.ends_with(b"Authentication failed")));
        // Nothing is left running.
        assert!(
            matches!(pair.a.link.status().lcp, State::Stopped | State::Closed),
            "{method:?}"
        );
    }
}

#[test]
fn unknown_user_fails_and_fixed_address_is_used() {
    let method = AuthMethod::ChapMd5;
    let mut pair = Pair::new(
        server(method),
        client("mallory", "wonderland", method),
        5,
        6,
    );
    pair.start_both();
    assert!(pair.drive_until(Duration::from_secs(30), both_down));
    // bob's secret has a space and a fixed address.
    let mut pair = Pair::new(server(method), client("bob", "builder pass", method), 5, 6);
    pair.start_both();
    assert!(pair.drive_until(Duration::from_secs(30), both_up));
    assert_eq!(ipv4_up(&pair.a).unwrap().1, Ipv4Addr::new(10, 224, 1, 77));
    assert_eq!(ipv4_up(&pair.b).unwrap().0, Ipv4Addr::new(10, 224, 1, 77));
    let a = auth_events(&mut pair.a);
    assert!(a.contains(&AuthEvent::Authenticated {
        user: "bob".into(),
        method,
        address: Some(Ipv4Addr::new(10, 224, 1, 77))
    }));
}

#[test]
fn peer_without_credentials_refuses_and_link_ends() {
    let mut c = client("alice", "x", AuthMethod::Pap);
    c.auth = AuthConfig::default();
    let mut pair = Pair::new(server(AuthMethod::ChapMd5), c, 7, 8);
    pair.start_both();
    assert!(pair.drive_until(Duration::from_secs(60), both_down));
    assert!(auth_events(&mut pair.a).contains(&AuthEvent::PeerRefusedAuth));
}

#[test]
fn chap_rechallenge_keeps_the_link_up() {
    let mut s = server(AuthMethod::ChapMd5);
    s.auth.rechallenge = Some(Duration::from_secs(10));
    s.lcp.echo = None;
    let mut c = client("alice", "wonderland", AuthMethod::ChapMd5);
    c.lcp.echo = None;
    let mut pair = Pair::new(s, c, 9, 10);
    pair.start_both();
    assert!(pair.drive_until(Duration::from_secs(30), both_up));
    let t = pair.elapsed();
    pair.drive_until(Duration::from_secs(45), |p| {
        p.elapsed() >= t + Duration::from_secs(45)
    });
    let challenges = pair
        .a
        .sent_frames
        .iter()
        .filter(|(p, info)| *p == 0xc223 && info[0] == 1)
        .count();
    assert!(challenges >= 4, "{challenges} challenges");
    assert!(!both_down(&pair));
    assert_eq!(traffic(&mut pair, 2, false), (2, 2));
}

fn with_deflate(mut c: LinkConfig) -> LinkConfig {
    c.ccp = CcpConfig {
        deflate: Some(DeflateConfig { window: 15 }),
        mppe: None,
    };
    c
}

#[test]
fn deflate_traffic_is_compressed_and_survives_loss() {
    let mut pair = Pair::new(
        with_deflate(config("a", [10, 0, 0, 1], [10, 0, 0, 2])),
        with_deflate(config("b", [10, 0, 0, 2], [10, 0, 0, 1])),
        11,
        12,
    );
    pair.start_both();
    let ccp_up =
        |p: &Pair| p.a.link.status().ccp_tx.is_some() && p.b.link.status().ccp_tx.is_some();
    assert!(pair.drive_until(Duration::from_secs(30), |p| both_up(p) && ccp_up(p)));
    assert_eq!(
        pair.a.link.status().ccp_tx,
        Some(CcpMethod::Deflate { window: 15 })
    );
    assert_eq!(traffic(&mut pair, 20, true), (20, 20));
    for (v, p) in &pair.b.received {
        assert_eq!(*v, IpVersion::V4);
        assert_eq!(p.len(), 300);
    }
    // Lose frames: Reset-Request/Ack resynchronise the history.
    pair.set_loss(100, 77);
    traffic(&mut pair, 100, true);
    pair.set_loss(0, 0);
    pair.drive_until(Duration::from_secs(10), |_| false);
    assert!(pair.a.link.stats().tx_ccp_resets + pair.b.link.stats().tx_ccp_resets > 0);
    assert_eq!(traffic(&mut pair, 5, true), (5, 5), "traffic after loss");
}

fn mppe(mut c: LinkConfig, stateful: bool, bits40: bool) -> LinkConfig {
    c.ccp = CcpConfig {
        deflate: Some(DeflateConfig::default()),
        mppe: Some(MppeConfig {
            bits40,
            bits128: !bits40,
            stateful,
            required: true,
        }),
    };
    c
}

#[test]
fn mppe_stateless_and_stateful_traffic_with_loss() {
    for (stateful, bits40) in [(false, false), (true, false), (false, true), (true, true)] {
        let method = AuthMethod::MsChapV2;
        let mut pair = Pair::new(
            mppe(server(method), stateful, bits40),
            mppe(client("alice", "wonderland", method), stateful, bits40),
            13,
            14,
        );
        pair.start_both();
        assert!(
            pair.drive_until(Duration::from_secs(30), both_up),
            "{stateful} {bits40}"
        );
        let want = CcpMethod::Mppe {
            strength: if bits40 {
                tsunagi_crypto::mppe::KeyStrength::Bits40
            } else {
                tsunagi_crypto::mppe::KeyStrength::Bits128
            },
            stateless: !stateful,
        };
        assert_eq!(pair.a.link.status().ccp_tx, Some(want));
        assert_eq!(pair.b.link.status().ccp_rx, Some(want));
        assert_eq!(traffic(&mut pair, 10, true), (10, 10));
        pair.set_loss(150, 99);
        traffic(&mut pair, 100, true);
        pair.set_loss(0, 0);
        pair.drive_until(Duration::from_secs(10), |_| false);
        assert_eq!(
            traffic(&mut pair, 5, true),
            (5, 5),
            "after loss {stateful} {bits40}"
        );
    }
}

#[test]
fn mppe_required_without_mschapv2_ends_the_link() {
    let method = AuthMethod::ChapMd5;
    let mut pair = Pair::new(
        mppe(server(method), false, false),
        mppe(client("alice", "wonderland", method), false, false),
        15,
        16,
    );
    pair.start_both();
    assert!(pair.drive_until(Duration::from_secs(60), both_down));
    assert!(ipv4_up(&pair.a).is_none());
}

#[test]
fn weak_algorithms_are_named_for_the_startup_warning() {
    assert!(LinkConfig::default().weak_algorithms().is_empty());
    assert!(server(AuthMethod::ChapMd5).weak_algorithms().is_empty());
    assert_eq!(
        server(AuthMethod::MsChapV2).weak_algorithms(),
        vec!["MS-CHAPv2"]
    );
    assert_eq!(
        mppe(server(AuthMethod::MsChapV2), false, true).weak_algorithms(),
        vec!["MS-CHAPv2", "MPPE", "MPPE 40-bit"]
    );
    // MS-CHAPv2 is never used unless named: a default client refuses it.
    let mut c = client("alice", "wonderland", AuthMethod::ChapMd5);
    c.auth.accept = AuthConfig::default().accept;
    let mut pair = Pair::new(server(AuthMethod::MsChapV2), c, 17, 18);
    pair.start_both();
    assert!(pair.drive_until(Duration::from_secs(60), both_down));
    assert!(ipv4_up(&pair.a).is_none());
}

#[test]
fn redial_forgets_the_previous_users_fixed_address_and_challenges() {
    let method = AuthMethod::ChapMd5;
    let mut pair = Pair::new(
        server(method),
        client("bob", "builder pass", method),
        19,
        20,
    );
    pair.start_both();
    assert!(pair.drive_until(Duration::from_secs(30), both_up));
    assert_eq!(ipv4_up(&pair.a).unwrap().1, Ipv4Addr::new(10, 224, 1, 77));
    let first_challenge = pair
        .a
        .sent_frames
        .iter()
        .find(|(p, info)| *p == 0xc223 && info[0] == 1)
        .unwrap()
        .1
        .clone();
    // The stream ends; the same server link takes the next caller.
    let now = pair.now;
    pair.a.link.lower_down(now);
    pair.b.link.lower_down(now);
    pair.b.link = tsunagi_ppp::stream::StreamLink::new(tsunagi_ppp::Link::new(
        client("alice", "wonderland", method),
        21,
        tsunagi_crypto::OsRandom::handle(),
    ));
    pair.a.events.clear();
    pair.b.events.clear();
    pair.a.sent_frames.clear();
    pair.start_both();
    assert!(pair.drive_until(Duration::from_secs(30), both_up));
    assert_eq!(ipv4_up(&pair.a).unwrap().1, Ipv4Addr::new(10, 224, 1, 2));
    let second_challenge = pair
        .a
        .sent_frames
        .iter()
        .find(|(p, info)| *p == 0xc223 && info[0] == 1)
        .unwrap()
        .1
        .clone();
    assert_ne!(
        first_challenge[5..21],
        second_challenge[5..21],
        "challenge repeated"
    );
}

#[test]
fn ccp_protocol_rejected_by_a_peer_without_ccp() {
    // Deflate asked, peer has no CCP: it Protocol-Rejects, our CCP stops,
    // IP flows uncompressed.
    let mut pair = Pair::new(
        with_deflate(config("a", [10, 0, 0, 1], [10, 0, 0, 2])),
        config("b", [10, 0, 0, 2], [10, 0, 0, 1]),
        23,
        24,
    );
    pair.start_both();
    assert!(pair.drive_until(Duration::from_secs(30), both_up));
    pair.drive_until(Duration::from_secs(5), |_| false);
    assert!(matches!(
        pair.a.link.status().ccp,
        Some(State::Stopped | State::Closed)
    ));
    let ccp_requests = pair
        .a
        .sent_frames
        .iter()
        .filter(|(p, info)| *p == 0x80fd && info[0] == 1)
        .count();
    assert_eq!(ccp_requests, 1, "CCP kept asking after Protocol-Reject");
    assert_eq!(traffic(&mut pair, 3, false), (3, 3));
}

#[test]
fn mppe_stateless_reordered_frames_late_ones_dropped_no_desync() {
    let method = AuthMethod::MsChapV2;
    let mut pair = Pair::new(
        mppe(server(method), false, false),
        mppe(client("alice", "wonderland", method), false, false),
        25,
        26,
    );
    pair.start_both();
    assert!(pair.drive_until(Duration::from_secs(30), both_up));
    let before = pair.b.received.len();
    // Twenty frames from A, delivered with each pair swapped: 1 0 3 2 ...
    let frames: Vec<Vec<u8>> = (0..20u8)
        .map(|i| {
            let mut bytes = Vec::new();
            assert!(pair
                .a
                .link
                .encapsulate(IpVersion::V4, &packet(i, 100), &mut bytes));
            bytes
        })
        .collect();
    for pair_of in frames.chunks(2) {
        pair.deliver_bytes(true, &pair_of[1]);
        pair.deliver_bytes(true, &pair_of[0]);
    }
    let got: Vec<u8> = pair.b.received[before..]
        .iter()
        .map(|(_, p)| p[16])
        .collect();
    // Every second frame arrives after its successor: it is late and
    // dropped, the others decrypt (no garbage, no desync).
    assert_eq!(got, (0..20u8).filter(|i| i % 2 == 1).collect::<Vec<_>>());
    assert_eq!(pair.b.link.stats().rx_ccp_dropped, 10);
    for (_, p) in &pair.b.received[before..] {
        assert_eq!(p.len(), 100);
        assert_eq!(&p[..4], &[0x45, 0, 0, 100]);
    }
    // And in-order traffic goes on.
    assert_eq!(traffic(&mut pair, 3, true), (3, 3));
}

#[test]
fn mschapv2_domain_user_hashes_without_the_domain() {
    // RFC 2759 s8.2: the peer presents CORP\alice, the hash uses alice;
    // the secrets file names the full CORP\alice.
    let method = AuthMethod::MsChapV2;
    let mut s = server(method);
    s.auth.secrets = Some(SecretsHandle(Arc::new(
        ChapSecrets::parse(r"CORP\\alice * wonderland *").unwrap(),
    )));
    let mut pair = Pair::new(s, client("CORP\\alice", "wonderland", method), 27, 28);
    pair.start_both();
    assert!(pair.drive_until(Duration::from_secs(30), both_up));
    // The NT-Response on the wire is the one for "alice".
    let challenge = pair
        .a
        .sent_frames
        .iter()
        .find(|(p, i)| *p == 0xc223 && i[0] == 1)
        .unwrap()
        .1
        .clone();
    let response = pair
        .b
        .sent_frames
        .iter()
        .find(|(p, i)| *p == 0xc223 && i[0] == 2)
        .unwrap()
        .1
        .clone();
    assert!(response.ends_with(b"CORP\\alice"));
    let auth_challenge: [u8; 16] = challenge[5..21].try_into().unwrap();
    let peer_challenge: [u8; 16] = response[5..21].try_into().unwrap();
    let nt = tsunagi_crypto::mschapv2::generate_nt_response(
        &auth_challenge,
        &peer_challenge,
        b"alice",
        &Secret::from("wonderland"),
    );
    assert_eq!(&response[29..53], &nt);
}
