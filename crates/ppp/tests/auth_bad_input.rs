//! Bad PAP/CHAP input is rejected cleanly and counted: bad lengths, empty
//! names, 255-octet names, Responses for identifiers we never sent,
//! Change-Password; and no secret ever shows in the logs.

mod util;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tsunagi_crypto::Secret;
use tsunagi_ppp::auth::{
    build, chap_code, pap_code, AuthConfig, AuthMethod, AuthOutcome, AuthOutput, AuthPeer,
    Authenticator, SecretsHandle,
};
use tsunagi_ppp::hdlc::Encoder;
use tsunagi_ppp::secrets::ChapSecrets;
use tsunagi_ppp::wire::Protocol;
use tsunagi_ppp::Event;
use util::{config, Pair};

fn long_name() -> String {
    "n".repeat(255)
}

fn server_config() -> AuthConfig {
    let text = format!("alice * wonderland *\n{} * longpass *\n", long_name());
    AuthConfig {
        name: "vpn".into(),
        secrets: Some(SecretsHandle(Arc::new(ChapSecrets::parse(&text).unwrap()))),
        ..AuthConfig::default()
    }
}

fn start(method: AuthMethod) -> (Authenticator, Vec<u8>) {
    let mut out = AuthOutput::default();
    let a = Authenticator::start(
        method,
        server_config(),
        tsunagi_crypto::OsRandom::handle(),
        Instant::now(),
        &mut out,
    );
    let challenge = out.packets.first().map(|p| p.1.clone()).unwrap_or_default();
    (a, challenge)
}

fn response(id: u8, value: &[u8], name: &[u8]) -> Vec<u8> {
    build(
        chap_code::RESPONSE,
        id,
        &[&[value.len() as u8], value, name],
    )
}

#[test]
fn chap_responses_with_bad_lengths_are_counted_not_answered() {
    let now = Instant::now();
    let (mut a, challenge) = start(AuthMethod::ChapMd5);
    let id = challenge[1];
    let good_len = response(id, &[0; 16], b"alice");
    let mut bad: Vec<Vec<u8>> = vec![
        vec![],
        vec![2, id, 0],
        // Length 3 < 4.
        vec![2, id, 0, 3],
        // Length beyond the frame.
        vec![2, id, 0, 40, 16, 1, 2],
        // Value-Size runs past the data.
        build(chap_code::RESPONSE, id, &[&[16], &[0; 10]]),
        // Value-Size 0.
        build(chap_code::RESPONSE, id, &[&[0], b"alice"]),
        // MD5 value of 15 octets.
        response(id, &[0; 15], b"alice"),
        // Empty name.
        response(id, &[0; 16], b""),
        // Name longer than 255 octets.
        response(id, &[0; 16], &[b'x'; 300]),
    ];
    // A Length field shorter than the frame cuts the name away: empty name.
    let mut cut = good_len.clone();
    cut[3] = 4 + 17;
    bad.push(cut);
    for (i, packet) in bad.iter().enumerate() {
        let mut out = AuthOutput::default();
        a.handle_packet(now, Protocol::Chap, packet, &mut out);
        assert!(out.packets.is_empty(), "bad packet {i} answered");
        assert_eq!(a.outcome(), &AuthOutcome::Pending, "bad packet {i}");
        assert_eq!(
            a.stats.rx_malformed,
            i as u64 + 1,
            "bad packet {i} not counted"
        );
    }
    // A Response for an identifier we never sent: discarded, counted.
    let mut out = AuthOutput::default();
    a.handle_packet(
        now,
        Protocol::Chap,
        &response(id.wrapping_add(1), &[0; 16], b"alice"),
        &mut out,
    );
    assert!(out.packets.is_empty());
    assert_eq!(a.stats.rx_discarded, 1);
    assert_eq!(a.outcome(), &AuthOutcome::Pending);
    // A Success/Challenge sent to the authenticator: discarded.
    a.handle_packet(
        now,
        Protocol::Chap,
        &build(chap_code::SUCCESS, id, &[]),
        &mut out,
    );
    assert_eq!(a.stats.rx_discarded, 2);
    // The right answer still works after all that.
    let value = tsunagi_crypto::md5(&[&[id], b"wonderland", &challenge[5..21]]);
    a.handle_packet(
        now,
        Protocol::Chap,
        &response(id, &value, b"alice"),
        &mut out,
    );
    assert!(matches!(a.outcome(), AuthOutcome::Success { user, .. } if user == "alice"));
}

#[test]
fn a_255_octet_name_is_handled() {
    let now = Instant::now();
    let (mut a, challenge) = start(AuthMethod::ChapMd5);
    let id = challenge[1];
    let value = tsunagi_crypto::md5(&[&[id], b"longpass", &challenge[5..21]]);
    let mut out = AuthOutput::default();
    a.handle_packet(
        now,
        Protocol::Chap,
        &response(id, &value, long_name().as_bytes()),
        &mut out,
    );
    assert!(matches!(a.outcome(), AuthOutcome::Success { user, .. } if *user == long_name()));
    // And as PAP Peer-ID.
    let mut out = AuthOutput::default();
    let mut a = Authenticator::start(
        AuthMethod::Pap,
        server_config(),
        tsunagi_crypto::OsRandom::handle(),
        now,
        &mut out,
    );
    let name = long_name();
    let req = build(
        pap_code::REQUEST,
        7,
        &[&[255], name.as_bytes(), &[8], b"longpass"],
    );
    a.handle_packet(now, Protocol::Pap, &req, &mut out);
    assert!(matches!(a.outcome(), AuthOutcome::Success { .. }));
    assert_eq!(out.packets[0].1[0], pap_code::ACK);
}

#[test]
fn pap_requests_with_bad_lengths_and_empty_names() {
    let now = Instant::now();
    let mut out = AuthOutput::default();
    let mut a = Authenticator::start(
        AuthMethod::Pap,
        server_config(),
        tsunagi_crypto::OsRandom::handle(),
        now,
        &mut out,
    );
    let bad = [
        build(pap_code::REQUEST, 1, &[&[10], b"alice"]),
        build(pap_code::REQUEST, 1, &[&[5], b"alice"]),
        build(pap_code::REQUEST, 1, &[&[5], b"alice", &[20], b"short"]),
        build(pap_code::REQUEST, 1, &[&[0], &[10], b"wonderland"]),
        build(pap_code::REQUEST, 1, &[]),
    ];
    for (i, p) in bad.iter().enumerate() {
        a.handle_packet(now, Protocol::Pap, p, &mut out);
        assert!(out.packets.is_empty(), "bad PAP {i} answered");
        assert_eq!(a.stats.rx_malformed, i as u64 + 1);
    }
    // An Ack sent to the authenticator is not for it.
    a.handle_packet(
        now,
        Protocol::Pap,
        &build(pap_code::ACK, 1, &[&[0]]),
        &mut out,
    );
    assert_eq!(a.stats.rx_discarded, 1);
    assert_eq!(a.outcome(), &AuthOutcome::Pending);
}

#[test]
fn mschapv2_bad_values_and_change_password_are_refused() {
    let now = Instant::now();
    let (mut a, challenge) = start(AuthMethod::MsChapV2);
    let id = challenge[1];
    let mut out = AuthOutput::default();
    a.handle_packet(
        now,
        Protocol::Chap,
        &response(id, &[0; 48], b"alice"),
        &mut out,
    );
    assert_eq!(a.stats.rx_malformed, 1);
    assert!(out.packets.is_empty());
    // Change-Password (RFC 2759 s7, code 7): never accepted.
    a.handle_packet(
        now,
        Protocol::Chap,
        &build(chap_code::CHANGE_PASSWORD, id, &[&[0; 582]]),
        &mut out,
    );
    assert!(
        matches!(a.outcome(), AuthOutcome::Failure { reason, .. } if reason.contains("Change-Password"))
    );
    // A wrong NT-Response gets E=691 R=0 (no retry).
    let (mut a, challenge) = start(AuthMethod::MsChapV2);
    let id = challenge[1];
    let mut out = AuthOutput::default();
    a.handle_packet(
        now,
        Protocol::Chap,
        &response(id, &[1; 49], b"alice"),
        &mut out,
    );
    let failure = &out.packets[0].1;
    assert_eq!(failure[0], chap_code::FAILURE);
    let text = String::from_utf8_lossy(&failure[4..]).into_owned();
    assert!(
        text.starts_with("E=691 R=0 C=") && text.contains(" V=3 M="),
        "{text}"
    );
}

#[test]
fn peer_side_discards_foreign_and_malformed_packets() {
    let now = Instant::now();
    let config = AuthConfig {
        user: Some("alice".into()),
        password: Some(Secret::from("wonderland")),
        accept: vec![AuthMethod::MsChapV2],
        ..AuthConfig::default()
    };
    let mut out = AuthOutput::default();
    let mut p = AuthPeer::start(
        AuthMethod::MsChapV2,
        config,
        tsunagi_crypto::OsRandom::handle(),
        now,
        &mut out,
    );
    // Challenge of 8 octets (MS-CHAPv2 needs 16), and one with no value.
    p.handle_packet(
        now,
        Protocol::Chap,
        &build(chap_code::CHALLENGE, 1, &[&[8], &[0; 8], b"vpn"]),
        &mut out,
    );
    p.handle_packet(
        now,
        Protocol::Chap,
        &build(chap_code::CHALLENGE, 1, &[&[0], b"vpn"]),
        &mut out,
    );
    assert_eq!(p.stats.rx_malformed, 2);
    assert!(out.packets.is_empty());
    // A Success before any Response: discarded.
    p.handle_packet(
        now,
        Protocol::Chap,
        &build(chap_code::SUCCESS, 1, &[b"S=00"]),
        &mut out,
    );
    assert_eq!(p.stats.rx_discarded, 1);
    // A proper challenge, then a Success for another identifier.
    p.handle_packet(
        now,
        Protocol::Chap,
        &build(chap_code::CHALLENGE, 9, &[&[16], &[7; 16], b"vpn"]),
        &mut out,
    );
    assert_eq!(out.packets.len(), 1);
    p.handle_packet(
        now,
        Protocol::Chap,
        &build(chap_code::SUCCESS, 10, &[b"S=00"]),
        &mut out,
    );
    assert_eq!(p.stats.rx_discarded, 2);
    assert_eq!(p.outcome(), &AuthOutcome::Pending);
    // A forged Success (wrong authenticator response) fails the link.
    p.handle_packet(
        now,
        Protocol::Chap,
        &build(
            chap_code::SUCCESS,
            9,
            &[b"S=0000000000000000000000000000000000000000 M=ok"],
        ),
        &mut out,
    );
    assert!(matches!(p.outcome(), AuthOutcome::Failure { .. }));
}

/// A writer into a shared buffer, for capturing logs.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn link_counts_bad_auth_frames_and_never_logs_a_secret() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        for method in [AuthMethod::Pap, AuthMethod::ChapMd5, AuthMethod::MsChapV2] {
            let mut s = config("server", [10, 1, 0, 1], [10, 1, 0, 2]);
            s.auth = AuthConfig {
                require: vec![method],
                ..server_config()
            };
            let mut c = config("client", [10, 1, 0, 2], [10, 1, 0, 1]);
            c.auth = AuthConfig {
                user: Some("alice".into()),
                password: Some(Secret::from("wonderland")),
                accept: vec![method],
                ..AuthConfig::default()
            };
            let mut pair = Pair::new(s, c, 1, 2);
            pair.start_both();
            let up = |p: &Pair| {
                p.a.events.iter().any(|e| matches!(e, Event::Ipv4Up { .. }))
                    && p.b.events.iter().any(|e| matches!(e, Event::Ipv4Up { .. }))
            };
            assert!(pair.drive_until(Duration::from_secs(30), up));
            // Inject a CHAP Response for an identifier no Challenge had
            // (they are random) and a truncated PAP request at the server.
            let used: Vec<u8> = pair
                .a
                .sent_frames
                .iter()
                .filter(|(p, info)| *p == 0xc223 && info[0] == 1)
                .map(|(_, info)| info[1])
                .collect();
            let unknown = (0..=255u8).find(|id| !used.contains(id)).unwrap();
            let mut bytes = Vec::new();
            let enc = Encoder::new();
            enc.encode(
                0xc223,
                &response(unknown, &[0; 16], b"alice"),
                false,
                &mut bytes,
            );
            enc.encode(0xc023, &[1, 1, 0, 9, 5], false, &mut bytes);
            pair.deliver_bytes(false, &bytes);
            let stats = pair.a.link.stats();
            assert_eq!(
                stats.rx_bad_auth + stats.rx_discarded_auth,
                2,
                "{method:?}: {stats:?}"
            );
            assert!(!pair.a.events.iter().any(|e| matches!(e, Event::Down(_))));
            // Wrong password too, so failure paths log.
            let mut c2 = config("client", [10, 1, 0, 2], [10, 1, 0, 1]);
            c2.auth = AuthConfig {
                user: Some("alice".into()),
                password: Some(Secret::from("wonderlanX")),
                accept: vec![method],
                ..AuthConfig::default()
            };
            let mut s2 = config("server", [10, 1, 0, 1], [10, 1, 0, 2]);
            s2.auth = AuthConfig {
                require: vec![method],
                ..server_config()
            };
            let mut pair = Pair::new(s2, c2, 3, 4);
            pair.start_both();
            pair.drive_until(Duration::from_secs(30), |_| false);
            let _ = format!("{:?} {:?}", pair.a.link, pair.a.link.status());
        }
    });
    let logs = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
    assert!(logs.contains("CHAP Response"), "logs were captured");
    assert!(logs.contains("PAP AuthReq"), "PAP requests are logged");
    for method in ["PAP", "CHAP", "MS-CHAP-v2"] {
        let ok = format!("server: {method} peer authentication succeeded for alice");
        assert!(logs.contains(&ok), "no `{ok}` in the log");
        let bad = format!("server: Peer alice failed {method} authentication");
        assert!(logs.contains(&bad), "no `{bad}` in the log");
        let ours = format!("client: {method} authentication failed");
        assert!(logs.contains(&ours), "no `{ours}` in the log");
    }
    for secret in ["wonderland", "wonderlanX", "longpass"] {
        assert!(!logs.contains(secret), "secret {secret} in logs");
    }
}
