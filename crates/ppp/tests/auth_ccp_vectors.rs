//! Real pppd 2.4.9 streams with authentication, MPPE and Deflate
//! (../../../shared/vectors/pppd-2.4.9/04..07): our PAP/CHAP engines
//! answer byte for byte as pppd did, MS-CHAPv2 values check out with the
//! password "wonderland", and the MPPE-encrypted and Deflate-compressed
//! pings decode with our data paths.

mod util;

use std::sync::Arc;
use std::time::Instant;

use tsunagi_crypto::mppe::{KeyStrength, StartKeys};
use tsunagi_crypto::{mschapv2, Secret};
use tsunagi_ppp::auth::{
    AuthConfig, AuthMethod, AuthOutcome, AuthOutput, AuthPacket, AuthPeer, Authenticator,
    ChapValue, MsChapV2Response, SecretsHandle,
};
use tsunagi_ppp::ccp::{DeflateRx, MppeRx};
use tsunagi_ppp::describe;
use tsunagi_ppp::secrets::ChapSecrets;
use tsunagi_ppp::wire::Protocol;
use util::{frames, pppd_log_packets, read_stream};

const PAP: u16 = 0xc023;
const CHAP: u16 = 0xc223;
const CCP: u16 = 0x80fd;

fn of(scenario: &str, file: &str, protocol: u16) -> Vec<Vec<u8>> {
    frames(&read_stream(scenario, file))
        .into_iter()
        .filter(|(p, _)| *p == protocol)
        .map(|(_, info)| info)
        .collect()
}

fn peer_config(password: &str) -> AuthConfig {
    AuthConfig {
        user: Some("alice".into()),
        password: Some(Secret::from(password)),
        accept: vec![AuthMethod::Pap, AuthMethod::ChapMd5, AuthMethod::MsChapV2],
        ..AuthConfig::default()
    }
}

fn authenticator_config() -> AuthConfig {
    let secrets = ChapSecrets::parse("alice\t*\twonderland\t*\n").unwrap();
    AuthConfig {
        name: "interop-lab".into(),
        secrets: Some(SecretsHandle(Arc::new(secrets))),
        ..AuthConfig::default()
    }
}

#[test]
fn auth_and_ccp_packets_print_as_pppd_logged_them() {
    for scenario in [
        "04-pap",
        "05-chap-md5",
        "05-chap-md5-wrong-password",
        "06-mschapv2-mppe128",
        "07-deflate",
    ] {
        for (stream, log) in [
            ("stream-a-to-b.hex", "pppd-a.log"),
            ("stream-b-to-a.hex", "pppd-b.log"),
        ] {
            let logged = pppd_log_packets(scenario, log, "sent ");
            for (p, info) in frames(&read_stream(scenario, stream)) {
                if ![PAP, CHAP, CCP].contains(&p) {
                    continue;
                }
                let ours = describe(p, &info).to_string();
                // The vectors ran with show-password; we never print it.
                let ours_shown = ours.replace("password=<hidden>", "password=\"wonderland\"");
                assert!(
                    logged.contains(&ours) || logged.contains(&ours_shown),
                    "{scenario}/{stream}: `{ours}` not in {log}: {logged:#?}"
                );
            }
        }
    }
}

#[test]
fn pap_peer_and_authenticator_answer_as_pppd() {
    let now = Instant::now();
    for (scenario, password, ok) in [
        ("04-pap", "wonderland", true),
        ("04-pap-wrong-password", "wrongpass", false),
    ] {
        let request = &of(scenario, "stream-b-to-a.hex", PAP)[0];
        let reply = &of(scenario, "stream-a-to-b.hex", PAP)[0];
        // Our peer sends the same request (identifier aside).
        let mut out = AuthOutput::default();
        let mut peer = AuthPeer::start(
            AuthMethod::Pap,
            peer_config(password),
            tsunagi_crypto::OsRandom::handle(),
            now,
            &mut out,
        );
        let (_, ours) = &out.packets[0];
        assert_eq!(ours[2..], request[2..], "{scenario}: PAP request");
        // Our authenticator answers pppd B's request as pppd A did.
        let mut out = AuthOutput::default();
        let mut auth = Authenticator::start(
            AuthMethod::Pap,
            authenticator_config(),
            tsunagi_crypto::OsRandom::handle(),
            now,
            &mut out,
        );
        auth.handle_packet(now, Protocol::Pap, request, &mut out);
        assert_eq!(&out.packets[0].1, reply, "{scenario}: PAP reply");
        assert_eq!(matches!(auth.outcome(), AuthOutcome::Success { .. }), ok);
        // And our peer takes pppd A's answer (with our identifier).
        let mut answer = reply.clone();
        answer[1] = ours[1];
        let mut out = AuthOutput::default();
        peer.handle_packet(now, Protocol::Pap, &answer, &mut out);
        match peer.outcome() {
            AuthOutcome::Success { user, .. } => assert!(ok && user == "alice"),
            AuthOutcome::Failure { reason, .. } => {
                assert!(!ok && reason.contains("Login incorrect"), "{reason}")
            }
            AuthOutcome::Pending => panic!("{scenario}: still pending"),
        }
    }
}

#[test]
fn chap_md5_peer_answers_as_pppd() {
    let now = Instant::now();
    for (scenario, password, ok) in [
        ("05-chap-md5", "wonderland", true),
        ("05-chap-md5-wrong-password", "wrongpass", false),
    ] {
        let a = of(scenario, "stream-a-to-b.hex", CHAP);
        let b = of(scenario, "stream-b-to-a.hex", CHAP);
        let (challenge, verdict, response) = (&a[0], &a[1], &b[0]);
        let mut out = AuthOutput::default();
        let mut peer = AuthPeer::start(
            AuthMethod::ChapMd5,
            peer_config(password),
            tsunagi_crypto::OsRandom::handle(),
            now,
            &mut out,
        );
        assert!(out.packets.is_empty());
        peer.handle_packet(now, Protocol::Chap, challenge, &mut out);
        assert_eq!(&out.packets[0].1, response, "{scenario}: CHAP Response");
        peer.handle_packet(now, Protocol::Chap, verdict, &mut out);
        assert_eq!(
            matches!(peer.outcome(), AuthOutcome::Success { .. }),
            ok,
            "{scenario}"
        );
        // The authenticator's check, on pppd's own values.
        let c = ChapValue::parse(AuthPacket::parse(challenge).unwrap().data).unwrap();
        let r = ChapValue::parse(AuthPacket::parse(response).unwrap().data).unwrap();
        let expected = tsunagi_crypto::md5(&[&[challenge[1]], b"wonderland", c.value]);
        assert_eq!(expected == r.value, ok, "{scenario}");
    }
}

struct MsChapRun {
    keys_server: StartKeys,
    keys_client: StartKeys,
}

fn mschapv2_run() -> MsChapRun {
    let scenario = "06-mschapv2-mppe128";
    let a = of(scenario, "stream-a-to-b.hex", CHAP);
    let b = of(scenario, "stream-b-to-a.hex", CHAP);
    let challenge = ChapValue::parse(AuthPacket::parse(&a[0]).unwrap().data).unwrap();
    let success = AuthPacket::parse(&a[1]).unwrap();
    let response = ChapValue::parse(AuthPacket::parse(&b[0]).unwrap().data).unwrap();
    assert_eq!(response.name, b"alice");
    let auth_challenge: [u8; 16] = challenge.value.try_into().unwrap();
    let r = MsChapV2Response::parse(response.value).unwrap();
    let password = Secret::from("wonderland");
    assert_eq!(
        mschapv2::generate_nt_response(&auth_challenge, &r.peer_challenge, b"alice", &password),
        r.nt_response
    );
    let s = mschapv2::generate_authenticator_response(
        &password,
        &r.nt_response,
        &r.peer_challenge,
        &auth_challenge,
        b"alice",
    );
    assert_eq!(format!("{s} M=Access granted").as_bytes(), success.data);
    let hash = mschapv2::nt_password_hash(&password);
    MsChapRun {
        keys_server: StartKeys::from_mschapv2(&hash, &r.nt_response, true),
        keys_client: StartKeys::from_mschapv2(&hash, &r.nt_response, false),
    }
}

#[test]
fn mschapv2_values_check_and_our_peer_refuses_a_success_for_another_response() {
    let run = mschapv2_run();
    assert_eq!(run.keys_server.send, run.keys_client.recv);
    // Our peer answers pppd A's Challenge with its own (random) peer
    // challenge, so pppd's recorded Success (which proves B's response)
    // must not satisfy it: the authenticator-response check is real.
    let scenario = "06-mschapv2-mppe128";
    let a = of(scenario, "stream-a-to-b.hex", CHAP);
    let now = Instant::now();
    let mut out = AuthOutput::default();
    let mut peer = AuthPeer::start(
        AuthMethod::MsChapV2,
        peer_config("wonderland"),
        tsunagi_crypto::OsRandom::handle(),
        now,
        &mut out,
    );
    peer.handle_packet(now, Protocol::Chap, &a[0], &mut out);
    let ours = AuthPacket::parse(&out.packets[0].1).unwrap();
    let r = MsChapV2Response::parse(ChapValue::parse(ours.data).unwrap().value).unwrap();
    // pppd's Success proves pppd's peer challenge, not ours: we must
    // refuse it (the check is real).
    peer.handle_packet(now, Protocol::Chap, &a[1], &mut out);
    assert!(
        matches!(peer.outcome(), AuthOutcome::Failure { .. }),
        "{:?}",
        peer.outcome()
    );
    assert_eq!(r.flags, 0);
}

fn ipv4_icmp(packet: &[u8]) -> Option<(u8, &[u8])> {
    // IPv4, protocol 1: (ICMP type, ICMP payload after the 8-byte header).
    if packet.len() < 28 || packet[0] >> 4 != 4 || packet[9] != 1 {
        return None;
    }
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    Some((packet[ihl], &packet[ihl + 8..]))
}

#[test]
fn mppe128_stateless_pppd_traffic_decrypts_to_the_ping() {
    let run = mschapv2_run();
    let scenario = "06-mschapv2-mppe128";
    // A (authenticator = server) -> B: decrypt as the client does.
    let mut rx_b = MppeRx::new(&run.keys_client, KeyStrength::Bits128, true);
    let a_data = of(scenario, "stream-a-to-b.hex", 0xfd);
    assert_eq!(a_data.len(), 2);
    let (p0, rs) = rx_b.decrypt(&a_data[0]).unwrap();
    assert_eq!(
        (p0, rs.len(), rs[0] >> 4, rs[6]),
        (0x57, 48, 6, 58),
        "IPv6 ICMPv6 Router Solicitation"
    );
    let (p1, echo) = rx_b.decrypt(&a_data[1]).unwrap();
    assert_eq!((p1, echo.len()), (0x21, 84));
    let (kind, _) = ipv4_icmp(&echo).expect("ICMP");
    assert_eq!(kind, 8, "echo request from A");
    assert_eq!(&echo[12..20], &[10, 98, 0, 1, 10, 98, 0, 2]);
    // B -> A: decrypt as the server does.
    let mut rx_a = MppeRx::new(&run.keys_server, KeyStrength::Bits128, true);
    let b_data = of(scenario, "stream-b-to-a.hex", 0xfd);
    let _ = rx_a.decrypt(&b_data[0]).unwrap();
    let (p, reply) = rx_a.decrypt(&b_data[1]).unwrap();
    assert_eq!(p, 0x21);
    assert_eq!(ipv4_icmp(&reply).unwrap().0, 0, "echo reply from B");
    // A replayed packet is late and dropped, not decrypted with a wrong key.
    assert!(rx_a.decrypt(&b_data[1]).is_err());
}

#[test]
fn deflate15_pppd_traffic_decompresses_to_the_ping() {
    let scenario = "07-deflate";
    for (stream, icmp_type) in [("stream-a-to-b.hex", 8u8), ("stream-b-to-a.hex", 0)] {
        let mut rx = DeflateRx::new();
        let data = of(scenario, stream, 0xfd);
        assert_eq!(data.len(), 2, "{stream}");
        let (p, _rs) = rx.decompress(&data[0]).unwrap();
        assert_eq!(p, 0x57);
        let (p, ping) = rx.decompress(&data[1]).unwrap();
        assert_eq!((p, ping.len()), (0x21, 228), "{stream}");
        let (kind, payload) = ipv4_icmp(&ping).unwrap();
        assert_eq!(kind, icmp_type);
        assert_eq!(payload.len(), 200);
        // ping -p 61 -s 200: a 16-octet timestamp, then the 0x61 pattern.
        assert!(
            payload[16..].iter().all(|&b| b == 0x61),
            "{stream}: payload {payload:?}"
        );
    }
}

/// Our CCP automaton answers pppd's Configure-Requests: Deflate 15 (and
/// the old number) acked once BSD-Compress is rejected; MPPE-128
/// stateless acked byte for byte as pppd B did.
#[test]
fn ccp_answers_pppds_requests() {
    use tsunagi_ppp::ccp::{CcpConfig, CcpMethod, CcpNegotiator, DeflateConfig, MppeConfig};
    use tsunagi_ppp::fsm::{Fsm, Output, State};
    use tsunagi_ppp::wire::{ControlRepr, OptionIter};
    use tsunagi_ppp::FsmTimers;

    let now = Instant::now();
    // 07-deflate: A's request is <deflate 15> <deflate(old#) 15> <bsd v1 15>.
    let request = of("07-deflate", "stream-a-to-b.hex", CCP)[0].clone();
    let mut fsm = Fsm::new(
        CcpNegotiator::new(CcpConfig {
            deflate: Some(DeflateConfig::default()),
            mppe: None,
        }),
        FsmTimers::default(),
    );
    let mut out = Output::default();
    fsm.open(now, &mut out);
    fsm.up(now, &mut out);
    let ours = out.packets.remove(0);
    assert_eq!(
        describe(CCP, &ours).to_string(),
        "CCP ConfReq id=0x1 <deflate 15>"
    );
    fsm.receive(
        now,
        ControlRepr::parse_bytes(&request).unwrap(),
        &request,
        &mut out,
    )
    .unwrap();
    let reply = out.packets.remove(0);
    assert_eq!(
        describe(CCP, &reply).to_string(),
        "CCP ConfRej id=0x1 <bsd v1 15>"
    );
    // pppd then asks without BSD: both Deflate options are acked.
    let data = ControlRepr::parse_bytes(&request).unwrap().data;
    let mut without_bsd = vec![1, 2, 0, 0];
    for o in OptionIter::new("CCP", data) {
        let o = o.unwrap();
        if o.kind != 21 {
            o.emit(&mut without_bsd);
        }
    }
    let len = without_bsd.len() as u16;
    without_bsd[2..4].copy_from_slice(&len.to_be_bytes());
    fsm.receive(
        now,
        ControlRepr::parse_bytes(&without_bsd).unwrap(),
        &without_bsd,
        &mut out,
    )
    .unwrap();
    let reply = out.packets.remove(0);
    assert_eq!(
        describe(CCP, &reply).to_string(),
        "CCP ConfAck id=0x2 <deflate 15> <deflate(old#) 15>"
    );
    assert_eq!(fsm.negotiator.tx, Some(CcpMethod::Deflate { window: 15 }));

    // 06-mschapv2-mppe128: A's <mppe +H -M +S -L -D -C> is acked as B did.
    let request = of("06-mschapv2-mppe128", "stream-a-to-b.hex", CCP)[0].clone();
    let b_ack = of("06-mschapv2-mppe128", "stream-b-to-a.hex", CCP)
        .into_iter()
        .find(|p| p[0] == 2)
        .unwrap();
    let b_request = of("06-mschapv2-mppe128", "stream-b-to-a.hex", CCP)[0].clone();
    let mut n = CcpNegotiator::new(CcpConfig {
        deflate: Some(DeflateConfig::default()),
        mppe: Some(MppeConfig::default()),
    });
    n.set_mppe_available(true);
    let mut fsm = Fsm::new(n, FsmTimers::default());
    let mut out = Output::default();
    fsm.open(now, &mut out);
    fsm.up(now, &mut out);
    // Our request is pppd B's, byte for byte (no Deflate offer with MPPE).
    assert_eq!(out.packets.remove(0), b_request);
    fsm.receive(
        now,
        ControlRepr::parse_bytes(&request).unwrap(),
        &request,
        &mut out,
    )
    .unwrap();
    assert_eq!(out.packets.remove(0), b_ack);
    assert_eq!(fsm.state(), State::AckSent);
}

/// Our MS-CHAPv2 authenticator, given pppd A's challenge, accepts pppd B's
/// Response and answers with exactly pppd A's Success; its MPPE keys
/// decrypt B's traffic.
#[test]
fn mschapv2_authenticator_answers_as_pppd() {
    let scenario = "06-mschapv2-mppe128";
    let a = of(scenario, "stream-a-to-b.hex", CHAP);
    let b = of(scenario, "stream-b-to-a.hex", CHAP);
    let challenge = AuthPacket::parse(&a[0]).unwrap();
    let value: [u8; 16] = ChapValue::parse(challenge.data)
        .unwrap()
        .value
        .try_into()
        .unwrap();
    let now = Instant::now();
    let mut out = AuthOutput::default();
    let mut config = authenticator_config();
    config.require = vec![AuthMethod::MsChapV2];
    let mut auth = Authenticator::start(
        AuthMethod::MsChapV2,
        config,
        tsunagi_crypto::OsRandom::handle(),
        now,
        &mut out,
    );
    auth.pin_challenge(challenge.identifier, value);
    let mut out = AuthOutput::default();
    auth.handle_packet(now, Protocol::Chap, &b[0], &mut out);
    assert_eq!(out.packets[0].1, a[1], "Success differs from pppd's");
    assert!(matches!(auth.outcome(), AuthOutcome::Success { user, .. } if user == "alice"));
    let keys = auth.mppe_keys.as_ref().expect("MPPE keys");
    let mut rx = MppeRx::new(keys, KeyStrength::Bits128, true);
    let data = of(scenario, "stream-b-to-a.hex", 0xfd);
    let _ = rx.decrypt(&data[0]).unwrap();
    let (_, reply) = rx.decrypt(&data[1]).unwrap();
    assert_eq!(ipv4_icmp(&reply).unwrap().0, 0);
    // The same Response with a wrong secret on file: E=691 Failure.
    let mut config = authenticator_config();
    config.secrets = Some(SecretsHandle(Arc::new(
        ChapSecrets::parse("alice * other *").unwrap(),
    )));
    let mut out = AuthOutput::default();
    let mut auth = Authenticator::start(
        AuthMethod::MsChapV2,
        config,
        tsunagi_crypto::OsRandom::handle(),
        now,
        &mut out,
    );
    auth.pin_challenge(challenge.identifier, value);
    let mut out = AuthOutput::default();
    auth.handle_packet(now, Protocol::Chap, &b[0], &mut out);
    assert_eq!(out.packets[0].1[0], 4);
    assert!(matches!(auth.outcome(), AuthOutcome::Failure { .. }));
}
