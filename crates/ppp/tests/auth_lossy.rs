//! Authentication over a transport that loses, duplicates and reorders
//! frames (PPTP's GRE, L2TP data), each case found by the lossy datagram
//! simulation (tests/datagram_pair.rs) and pinned down here:
//! - a lost Success: the peer repeats its Response, the authenticator
//!   repeats its Success (RFC 1994 s4.2);
//! - a late duplicate Challenge after Success: the same Response again,
//!   not a new one (a new MS-CHAPv2 peer challenge would not match the
//!   Success already sent);
//! - a stale Challenge crossing the current one: the Success for either
//!   is taken;
//! - PAP identifiers continue across LCP sessions, so a late Ack of the
//!   previous session's request does not authenticate this one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tsunagi_crypto::{OsRandom, Secret};
use tsunagi_ppp::auth::{
    chap_code, pap_code, AuthConfig, AuthMethod, AuthOutcome, AuthOutput, AuthPeer, Authenticator,
    SecretsHandle,
};
use tsunagi_ppp::secrets::ChapSecrets;
use tsunagi_ppp::wire::Protocol;

fn server() -> AuthConfig {
    AuthConfig {
        name: "vpn".into(),
        secrets: Some(SecretsHandle(Arc::new(
            ChapSecrets::parse("alice * wonderland *\n").unwrap(),
        ))),
        ..AuthConfig::default()
    }
}

fn client() -> AuthConfig {
    AuthConfig {
        user: Some("alice".into()),
        password: Some(Secret::from("wonderland")),
        ..AuthConfig::default()
    }
}

/// The packets in `out`, emptied.
fn take(out: &mut AuthOutput) -> Vec<Vec<u8>> {
    out.packets.drain(..).map(|(_, p)| p).collect()
}

fn succeeded(outcome: &AuthOutcome) -> bool {
    matches!(outcome, AuthOutcome::Success { .. })
}

#[test]
fn a_lost_success_is_recovered_by_repeating_the_response() {
    for method in [AuthMethod::ChapMd5, AuthMethod::MsChapV2] {
        let now = Instant::now();
        let mut out = AuthOutput::default();
        let mut auth = Authenticator::start(method, server(), OsRandom::handle(), now, &mut out);
        let challenge = take(&mut out).remove(0);
        let mut peer = AuthPeer::start(method, client(), OsRandom::handle(), now, &mut out);
        peer.handle_packet(now, Protocol::Chap, &challenge, &mut out);
        let response = take(&mut out).remove(0);
        auth.handle_packet(now, Protocol::Chap, &response, &mut out);
        assert!(succeeded(auth.outcome()), "{method:?}");
        let _lost_success = take(&mut out);
        // The peer's restart timer: the same Response again.
        let later = peer.deadline().expect("a retransmission timer");
        assert!(later <= now + Duration::from_secs(3));
        peer.handle_timeout(later, &mut out);
        let again = take(&mut out);
        assert_eq!(again, vec![response.clone()], "{method:?}");
        // The authenticator answers it with the same Success.
        auth.handle_packet(later, Protocol::Chap, &again[0], &mut out);
        let success = take(&mut out).remove(0);
        assert_eq!(success[0], chap_code::SUCCESS);
        peer.handle_packet(later, Protocol::Chap, &success, &mut out);
        assert!(
            succeeded(peer.outcome()),
            "{method:?}: {:?}",
            peer.outcome()
        );
    }
}

#[test]
fn a_late_duplicate_challenge_gets_the_same_response() {
    let method = AuthMethod::MsChapV2;
    let now = Instant::now();
    let mut out = AuthOutput::default();
    let mut auth = Authenticator::start(method, server(), OsRandom::handle(), now, &mut out);
    let challenge = take(&mut out).remove(0);
    let mut peer = AuthPeer::start(method, client(), OsRandom::handle(), now, &mut out);
    peer.handle_packet(now, Protocol::Chap, &challenge, &mut out);
    let response = take(&mut out).remove(0);
    auth.handle_packet(now, Protocol::Chap, &response, &mut out);
    let success = take(&mut out).remove(0);
    peer.handle_packet(now, Protocol::Chap, &success, &mut out);
    assert!(succeeded(peer.outcome()));
    // The Challenge's retransmission arrives late.
    peer.handle_packet(now, Protocol::Chap, &challenge, &mut out);
    assert_eq!(take(&mut out), vec![response.clone()]);
    assert!(succeeded(peer.outcome()));
    // And the authenticator's repeated Success is no reason to fail.
    auth.handle_packet(now, Protocol::Chap, &response, &mut out);
    let success = take(&mut out).remove(0);
    peer.handle_packet(now, Protocol::Chap, &success, &mut out);
    assert!(succeeded(peer.outcome()), "{:?}", peer.outcome());
}

#[test]
fn a_stale_challenge_crossing_the_current_one_does_not_lose_the_success() {
    let method = AuthMethod::MsChapV2;
    let now = Instant::now();
    let mut out = AuthOutput::default();
    // The authenticator of the previous LCP session, and of this one.
    let _old = Authenticator::start(method, server(), OsRandom::handle(), now, &mut out);
    let stale = take(&mut out).remove(0);
    let mut auth = Authenticator::start(method, server(), OsRandom::handle(), now, &mut out);
    let current = take(&mut out).remove(0);
    assert_ne!(stale[1], current[1], "different identifiers");
    let mut peer = AuthPeer::start(method, client(), OsRandom::handle(), now, &mut out);
    peer.handle_packet(now, Protocol::Chap, &current, &mut out);
    let response = take(&mut out).remove(0);
    // The stale Challenge arrives after ours was answered.
    peer.handle_packet(now, Protocol::Chap, &stale, &mut out);
    let _stale_response = take(&mut out);
    // The Success for the current one is lost; the peer's timer repeats
    // both Responses, and the authenticator answers the one it knows.
    auth.handle_packet(now, Protocol::Chap, &response, &mut out);
    let _lost = take(&mut out);
    let later = peer.deadline().unwrap();
    peer.handle_timeout(later, &mut out);
    let repeated = take(&mut out);
    assert!(repeated.contains(&response), "{} repeated", repeated.len());
    for r in &repeated {
        auth.handle_packet(later, Protocol::Chap, r, &mut out);
    }
    let answers = take(&mut out);
    assert_eq!(answers.len(), 1, "only the current Response is answered");
    peer.handle_packet(later, Protocol::Chap, &answers[0], &mut out);
    assert!(succeeded(peer.outcome()), "{:?}", peer.outcome());
}

#[test]
fn pap_identifiers_continue_across_sessions() {
    let now = Instant::now();
    let mut out = AuthOutput::default();
    let first = AuthPeer::start(AuthMethod::Pap, client(), OsRandom::handle(), now, &mut out);
    let request = take(&mut out).remove(0);
    assert_eq!(request[1], 1, "as pppd, the first request is 1");
    // The next LCP session's peer starts after it.
    let mut second = AuthPeer::start_after(
        AuthMethod::Pap,
        client(),
        OsRandom::handle(),
        first.last_pap_id(),
        now,
        &mut out,
    );
    let request = take(&mut out).remove(0);
    assert_eq!(request[1], 2);
    // A late Ack of the first session's request does not match.
    let late_ack = tsunagi_ppp::auth::build(pap_code::ACK, 1, &[&[0]]);
    second.handle_packet(now, Protocol::Pap, &late_ack, &mut out);
    assert!(matches!(second.outcome(), AuthOutcome::Pending));
}
