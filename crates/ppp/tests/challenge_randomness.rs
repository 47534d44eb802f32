//! Regression test for a review finding: the LCP magic number, the IPV6CP
//! interface identifier and the CHAP challenges of a link all came from one
//! SplitMix64 generator. SplitMix64 is invertible, so the interface
//! identifier a peer sees in clear during IPV6CP gave away the generator's
//! state, and with it every challenge the link would send: a recorded
//! response could then be replayed.
//!
//! The attack is played here as a reviewer would: from what the wire
//! shows, recover the generator (checked by predicting the magic number),
//! then derive the challenges the old code would have sent. None of them
//! may match, and challenges must be fresh draws from the injected
//! [`RandomSource`] (DESIGN.md, "Randomness").

mod util;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tsunagi_crypto::{sha1, OsRandom, RandomSource};
use tsunagi_ppp::auth::{AuthConfig, AuthMethod, SecretsHandle};
use tsunagi_ppp::link::{Ipv6cpConfig, Link};
use tsunagi_ppp::secrets::ChapSecrets;
use tsunagi_ppp::wire::Protocol;
use tsunagi_ppp::{Event, LinkConfig};
use util::{config, Pair};

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's output function.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The inverse of `z ^= z >> shift`.
fn unxorshift(z: u64, shift: u32) -> u64 {
    let mut x = z;
    let mut i = shift;
    while i < 64 {
        x = z ^ (x >> shift);
        i += shift;
    }
    x
}

/// The multiplicative inverse of an odd `a` modulo 2^64 (Newton).
fn inverse(a: u64) -> u64 {
    let mut x = a;
    for _ in 0..6 {
        x = x.wrapping_mul(2u64.wrapping_sub(a.wrapping_mul(x)));
    }
    x
}

/// The attacker's step: SplitMix64's output function undone.
fn unmix(z: u64) -> u64 {
    let z = unxorshift(z, 31).wrapping_mul(inverse(0x94d0_49bb_1331_11eb));
    let z = unxorshift(z, 27).wrapping_mul(inverse(0xbf58_476d_1ce4_e5b9));
    unxorshift(z, 30)
}

/// A generator output from the state it leaves behind.
fn output_at(state: u64) -> u64 {
    mix(state)
}

/// The challenge the old code derived from an authentication seed:
/// SHA-1("tsunagi challenge" || seed || counter)[..16].
fn old_challenge(seed: u64, counter: u64) -> [u8; 16] {
    let d = sha1(&[
        b"tsunagi challenge",
        &seed.to_le_bytes(),
        &counter.to_le_bytes(),
    ]);
    let mut out = [0; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// What the attacker learns from the interface identifier: the state of
/// the link's seed generator after its second output, from which it
/// predicts the magic number (first output) and every challenge the old
/// derivation would send (third output onwards).
struct Recovered {
    /// The first outputs of the LCP generator (each negotiation draws one).
    magics: Vec<u32>,
    candidates: Vec<[u8; 16]>,
}

fn attack(interface_id: [u8; 8]) -> Recovered {
    // The IPV6CP negotiator's generator was seeded with the link
    // generator's second output; its first output is the identifier.
    let ipv6_state = unmix(u64::from_be_bytes(interface_id));
    let ipv6_seed = ipv6_state.wrapping_sub(GOLDEN);
    let link_state_2 = unmix(ipv6_seed);
    let lcp_seed = output_at(link_state_2.wrapping_sub(GOLDEN));
    let magics = (1..=8u64)
        .map(|i| output_at(lcp_seed.wrapping_add(GOLDEN.wrapping_mul(i))) as u32)
        .collect();
    // Old code: auth_seed = third output; each authentication re-seeded
    // with the next output of a generator started at the previous seed,
    // and the authenticator (seed) and the peer side (seed ^ 0x5a..)
    // counted challenges from 1.
    let mut candidates = Vec::new();
    let mut auth_seed = output_at(link_state_2.wrapping_add(GOLDEN));
    for _redial in 0..4 {
        auth_seed = output_at(auth_seed.wrapping_add(GOLDEN));
        for seed in [auth_seed, auth_seed ^ 0x5a5a_5a5a_5a5a_5a5a] {
            for counter in 1..=16 {
                candidates.push(old_challenge(seed, counter));
            }
        }
    }
    Recovered { magics, candidates }
}

/// A server that requires CHAP and rechallenges every 10 s, with IPV6CP
/// on and a random interface identifier.
fn server() -> LinkConfig {
    let mut c = config("server", [10, 224, 1, 1], [10, 224, 1, 2]);
    c.auth = AuthConfig {
        require: vec![AuthMethod::ChapMd5],
        name: "vpn".into(),
        secrets: Some(SecretsHandle(Arc::new(
            ChapSecrets::parse("alice * wonderland *\n").unwrap(),
        ))),
        rechallenge: Some(Duration::from_secs(10)),
        ..AuthConfig::default()
    };
    c.ipv6cp = Some(Ipv6cpConfig::default());
    c
}

fn client() -> LinkConfig {
    let mut c = config("client", [0, 0, 0, 0], [10, 224, 1, 1]);
    c.ipcp.local = None;
    c.ipcp.remote = None;
    c.auth = AuthConfig {
        user: Some("alice".into()),
        password: Some(tsunagi_crypto::Secret::from("wonderland")),
        accept: vec![AuthMethod::ChapMd5],
        ..AuthConfig::default()
    };
    c.ipv6cp = Some(Ipv6cpConfig::default());
    c
}

/// The 16-octet values of the CHAP Challenges (code 1) in `frames`.
fn challenges(frames: &[(u16, Vec<u8>)]) -> Vec<[u8; 16]> {
    frames
        .iter()
        .filter(|(p, info)| *p == u16::from(Protocol::Chap) && info.first() == Some(&1))
        .map(|(_, info)| {
            assert_eq!(info[4], 16, "challenge value size");
            info[5..21].try_into().unwrap()
        })
        .collect()
}

/// The interface identifier of the first IPV6CP Configure-Request (code 1,
/// option 1 of length 10) in `frames`.
fn interface_id(frames: &[(u16, Vec<u8>)]) -> [u8; 8] {
    frames
        .iter()
        .find(|(p, info)| *p == u16::from(Protocol::Ipv6cp) && info.first() == Some(&1))
        .map(|(_, info)| {
            assert_eq!(&info[4..6], &[1, 10], "interface-identifier option");
            info[6..14].try_into().unwrap()
        })
        .expect("an IPV6CP Configure-Request")
}

/// The magic number of the first LCP Configure-Request in `frames`.
fn magic(frames: &[(u16, Vec<u8>)]) -> u32 {
    let (_, info) = frames
        .iter()
        .find(|(p, info)| *p == u16::from(Protocol::Lcp) && info.first() == Some(&1))
        .expect("an LCP Configure-Request");
    let mut options = &info[4..];
    while let [kind, len, ..] = *options {
        if kind == 5 {
            return u32::from_be_bytes(options[2..6].try_into().unwrap());
        }
        options = &options[usize::from(len)..];
    }
    panic!("no magic number")
}

/// Runs a server (seed `seed`, challenges from `random`) against a client
/// to IPV6CP, two rechallenges, then a hangup and a redial with one more
/// authentication. Returns the server's frames.
fn session(seed: u64, random: tsunagi_crypto::Random) -> Vec<(u16, Vec<u8>)> {
    let mut p = Pair::new(server(), client(), seed, 99);
    p.a.link = tsunagi_ppp::stream::StreamLink::new(Link::new(server(), seed, random));
    p.start_both();
    let ipv6_up = |p: &Pair| p.a.has_event(|e| matches!(e, Event::Ipv6Up { .. }));
    assert!(p.drive_until(Duration::from_secs(30), ipv6_up));
    // Rechallenges.
    let start = p.now;
    p.drive_until(Duration::from_secs(25), |p| {
        p.now >= start + Duration::from_secs(21)
    });
    // A redial: the same engine started again.
    p.a.link.close(p.now, "hangup");
    assert!(p.drive_until(Duration::from_secs(10), |p| p
        .a
        .has_event(|e| matches!(e, Event::Down(_)))));
    p.a.events.clear();
    p.b.events.clear();
    p.b.link.lower_down(p.now);
    p.b.link = tsunagi_ppp::stream::StreamLink::new(Link::new(client(), 7, OsRandom::handle()));
    p.start_both();
    assert!(p.drive_until(Duration::from_secs(30), |p| p
        .a
        .has_event(|e| matches!(e, Event::Ipv4Up { .. }))));
    p.a.sent_frames.clone()
}

#[test]
fn interface_identifier_does_not_predict_challenges() {
    let frames = session(0x1234_5678_9abc_def0, OsRandom::handle());
    let seen = challenges(&frames);
    // The first authentication, two rechallenges and the redial's.
    assert!(seen.len() >= 4, "only {} challenges", seen.len());
    let recovered = attack(interface_id(&frames));
    // The attack on the cheap generator works: the magic number is
    // predicted (magic numbers may stay cheap)...
    assert!(recovered.magics.contains(&magic(&frames)));
    // ...but no challenge is among what the old derivation would give.
    for c in &seen {
        assert!(
            !recovered.candidates.contains(c),
            "challenge {c:02x?} predicted from the interface identifier"
        );
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "a challenge repeated");
}

#[test]
fn same_seed_same_identifiers_different_challenges() {
    // Two links whose cheap generator is identical show the peer the same
    // magic number and interface identifier, yet their challenges differ:
    // challenges share no state with that generator.
    let a = session(42, OsRandom::handle());
    let b = session(42, OsRandom::handle());
    assert_eq!(magic(&a), magic(&b));
    assert_eq!(interface_id(&a), interface_id(&b));
    let (ca, cb) = (challenges(&a), challenges(&b));
    for c in &ca {
        assert!(!cb.contains(c), "challenge {c:02x?} shared by two links");
    }
}

/// Records every draw, handing out the kernel's randomness.
#[derive(Default)]
struct Recording(Mutex<Vec<Vec<u8>>>);

impl RandomSource for Recording {
    fn fill(&self, dest: &mut [u8]) {
        OsRandom.fill(dest);
        self.0.lock().unwrap().push(dest.to_vec());
    }
}

#[test]
fn every_challenge_is_one_draw_of_128_bits() {
    let recording = Arc::new(Recording::default());
    let frames = session(5, recording.clone());
    let draws = recording.0.lock().unwrap().clone();
    let seen = challenges(&frames);
    assert!(!seen.is_empty());
    for c in &seen {
        assert!(
            draws.iter().any(|d| d.len() == 16 && d[..] == c[..]),
            "challenge {c:02x?} is not a 16-octet draw of the injected source"
        );
    }
}
