//! Two engines on a packet transport, as PPTP and L2TP will carry them:
//! whole frames in datagrams (no HDLC), through a seeded network that
//! loses, duplicates and reorders them, on a virtual clock (smoltcp's
//! netsim, quinn-proto's `Pair`). LCP still opens, authentication succeeds,
//! and IPCP opens with the address the server's "driver" hands out when the
//! engine asks for it (a pool's job in the daemon).

mod util;

use std::collections::BinaryHeap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tsunagi_crypto::{OsRandom, Secret};
use tsunagi_ppp::auth::{AuthConfig, AuthMethod, SecretsHandle};
use tsunagi_ppp::frame;
use tsunagi_ppp::fsm::State;
use tsunagi_ppp::link::{DownReason, Framing, IpVersion, Link};
use tsunagi_ppp::rng::Rng;
use tsunagi_ppp::secrets::ChapSecrets;
use tsunagi_ppp::wire::Protocol;
use tsunagi_ppp::{Event, LinkConfig};

/// What a transport puts in front of each frame (a GRE header's worth);
/// the engine must write after it and leave it alone.
const HEADROOM: [u8; 16] = [0xee; 16];
/// The address the server's pool hands out.
const POOL_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 10);

/// A datagram in flight.
#[derive(PartialEq, Eq)]
struct InFlight {
    at: Instant,
    /// Tie-break, so equal times keep a deterministic order.
    seq: u64,
    to_server: bool,
    frame: Vec<u8>,
}

impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // BinaryHeap is a max-heap: the earliest first.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// How the network misbehaves, per mille of datagrams.
#[derive(Clone, Copy, Debug)]
struct Faults {
    loss: u64,
    duplicate: u64,
    /// Each datagram is delayed 1..=`jitter_ms` ms: datagrams overtake
    /// each other.
    jitter_ms: u64,
}

struct Net {
    server: Link,
    client: Link,
    now: Instant,
    rng: Rng,
    faults: Faults,
    flight: BinaryHeap<InFlight>,
    seq: u64,
    server_events: Vec<Event>,
    client_events: Vec<Event>,
    delivered_to_server: Vec<Vec<u8>>,
    delivered_to_client: Vec<Vec<u8>>,
    sent: u64,
    lost: u64,
    duplicated: u64,
    /// Answer the server's PeerAddressNeeded (else leave it waiting).
    pool: Option<Ipv4Addr>,
    asked_for_address: Vec<(Option<String>, Option<Ipv4Addr>)>,
}

impl Net {
    fn new(server: LinkConfig, client: LinkConfig, seed: u64, faults: Faults) -> Net {
        util::init_logs();
        Net {
            server: Link::new(server, seed, OsRandom::handle()),
            client: Link::new(client, seed ^ 0xff, OsRandom::handle()),
            now: Instant::now(),
            rng: Rng::new(seed),
            faults,
            flight: BinaryHeap::new(),
            seq: 0,
            server_events: Vec::new(),
            client_events: Vec::new(),
            delivered_to_server: Vec::new(),
            delivered_to_client: Vec::new(),
            sent: 0,
            lost: 0,
            duplicated: 0,
            pool: Some(POOL_ADDRESS),
            asked_for_address: Vec::new(),
        }
    }

    fn chance(&mut self, per_mille: u64) -> bool {
        self.rng.next_u64() % 1000 < per_mille
    }

    /// Puts one datagram (headroom + frame) on the network.
    fn send(&mut self, to_server: bool, datagram: &[u8]) {
        assert_eq!(
            &datagram[..HEADROOM.len()],
            HEADROOM,
            "headroom overwritten"
        );
        let frame = datagram[HEADROOM.len()..].to_vec();
        // Every frame the engine gives is a well-formed PPP frame.
        frame::parse(&frame, 65535).expect("the engine sends well-formed frames");
        self.sent += 1;
        if self.chance(self.faults.loss) {
            self.lost += 1;
            return;
        }
        let copies = if self.chance(self.faults.duplicate) {
            self.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = 1 + self.rng.next_u64() % self.faults.jitter_ms.max(1);
            self.seq += 1;
            self.flight.push(InFlight {
                at: self.now + Duration::from_millis(delay),
                seq: self.seq,
                to_server,
                frame: frame.clone(),
            });
        }
    }

    /// Takes what both engines want to send, and their events, acting on
    /// the server's request for an address as its driver would.
    fn drain(&mut self) {
        for to_server in [true, false] {
            loop {
                let mut datagram = HEADROOM.to_vec();
                let link = if to_server {
                    &mut self.client
                } else {
                    &mut self.server
                };
                let Some(t) = link.poll_transmit(&mut datagram) else {
                    break;
                };
                assert_eq!(t.len, datagram.len() - HEADROOM.len());
                self.send(to_server, &datagram);
            }
        }
        while let Some(e) = self.client.poll_event() {
            self.client_events.push(e);
        }
        while let Some(e) = self.server.poll_event() {
            if let Event::PeerAddressNeeded { user, fixed } = &e {
                self.asked_for_address.push((user.clone(), *fixed));
                if let Some(addr) = self.pool {
                    self.server.set_peer_address(self.now, addr);
                }
            }
            self.server_events.push(e);
        }
        while self.server.poll_auth_event().is_some() {}
        while self.client.poll_auth_event().is_some() {}
    }

    /// Runs the clock to the next delivery or timer, at most to `end`.
    fn step(&mut self, end: Instant) {
        self.drain();
        let next_timer = [self.server.poll_timeout(), self.client.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let next_delivery = self.flight.peek().map(|f| f.at);
        let Some(next) = [next_timer, next_delivery].into_iter().flatten().min() else {
            self.now = end;
            return;
        };
        self.now = self.now.max(next.min(end));
        let now = self.now;
        while self.flight.peek().is_some_and(|f| f.at <= now) {
            let f = self.flight.pop().unwrap();
            let (link, delivered) = if f.to_server {
                (&mut self.server, &mut self.delivered_to_server)
            } else {
                (&mut self.client, &mut self.delivered_to_client)
            };
            link.handle_frame(now, &f.frame, &mut |_, packet| {
                delivered.push(packet.to_vec())
            });
            self.drain();
        }
        for link in [&mut self.server, &mut self.client] {
            if link.poll_timeout().is_some_and(|d| d <= now) {
                link.handle_timeout(now);
            }
        }
        self.drain();
    }

    fn run_until(&mut self, limit: Duration, done: impl Fn(&Net) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.step(end);
        }
        done(self)
    }

    fn ipv4_up(events: &[Event]) -> Option<(Ipv4Addr, Ipv4Addr)> {
        events.iter().rev().find_map(|e| match e {
            Event::Ipv4Up { local, peer, .. } => Some((*local, *peer)),
            _ => None,
        })
    }

    fn both_up(&self) -> bool {
        Net::ipv4_up(&self.server_events).is_some() && Net::ipv4_up(&self.client_events).is_some()
    }
}

const SECRETS: &str = "alice * wonderland *\nbob * builder 10.77.0.99\n";

/// A server profile's engine: packet framing, auth required, the peer's
/// address from the driver.
fn server(method: AuthMethod) -> LinkConfig {
    let mut c = util::config("server", [10, 77, 0, 1], [0, 0, 0, 0]);
    c.lcp.framing = Framing::Packet;
    c.ipcp.remote = None;
    c.ipcp.remote_from_driver = true;
    c.auth = AuthConfig {
        require: vec![method],
        name: "vpn".into(),
        secrets: Some(SecretsHandle(Arc::new(
            ChapSecrets::parse(SECRETS).unwrap(),
        ))),
        ..AuthConfig::default()
    };
    c
}

fn client(user: &str, password: &str, method: AuthMethod) -> LinkConfig {
    let mut c = util::config("client", [0, 0, 0, 0], [0, 0, 0, 0]);
    c.lcp.framing = Framing::Packet;
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

/// Seeds `0..n`, or just `NETSIM_SEED` to replay one failure (with
/// RUST_LOG=debug for the engines' logs).
fn seeds(n: u64) -> std::ops::Range<u64> {
    match std::env::var("NETSIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(seed) => seed..seed + 1,
        None => 0..n,
    }
}

/// An IPv4-looking datagram.
fn datagram(tag: u8) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 64];
    p.extend((4..64).map(|i| tag.wrapping_add(i as u8)));
    p
}

#[test]
fn lossy_reordering_duplicating_network_still_opens_ipcp() {
    // 15% lost, 10% duplicated, up to 400 ms of jitter: datagrams
    // overtake each other and Configure-Requests arrive twice, late.
    let faults = Faults {
        loss: 150,
        duplicate: 100,
        jitter_ms: 400,
    };
    let methods = [AuthMethod::Pap, AuthMethod::ChapMd5, AuthMethod::MsChapV2];
    let (mut lost, mut duplicated) = (0, 0);
    for seed in seeds(100) {
        let method = methods[seed as usize % methods.len()];
        // (No MPPE here: a lost CCP Ack renegotiates CCP, and an MPPE
        // link then ends, as pppd's does, rather than restart RC4 from the
        // same start keys.)
        let (s, c) = (server(method), client("alice", "wonderland", method));
        let mut net = Net::new(s, c, seed, faults);
        let now = net.now;
        net.server.start(now);
        net.client.start(now);
        assert!(
            net.run_until(Duration::from_secs(120), Net::both_up),
            "seed {seed} ({method:?}): not up after 120 s; server {:?} {:?}, client {:?} {:?}",
            net.server.status(),
            net.server_events,
            net.client.status(),
            net.client_events
        );
        assert_eq!(
            Net::ipv4_up(&net.server_events),
            Some((Ipv4Addr::new(10, 77, 0, 1), POOL_ADDRESS)),
            "seed {seed}"
        );
        assert_eq!(
            Net::ipv4_up(&net.client_events),
            Some((POOL_ADDRESS, Ipv4Addr::new(10, 77, 0, 1))),
            "seed {seed}"
        );
        // The engine asked with the authenticated name (once per LCP
        // session: a late duplicate may have renegotiated LCP).
        assert!(!net.asked_for_address.is_empty(), "seed {seed}");
        for asked in &net.asked_for_address {
            assert_eq!(*asked, (Some("alice".to_string()), None), "seed {seed}");
        }
        assert_eq!(
            net.server.status().peer_auth,
            Some(("alice".to_string(), method))
        );
        // Late duplicates of Configure-Requests may still be in flight and
        // renegotiate an open NCP (RFC 1661: Opened + RCR), whose new
        // requests may be duplicated in turn; let them land and the NCPs
        // settle. (PPTP's and L2TP's sequence numbers keep duplicates from
        // PPP in practice; this network does not.)
        let drained = |n: &Net| {
            n.flight.is_empty()
                && n.server.status().ipcp == State::Opened
                && n.client.status().ipcp == State::Opened
        };
        assert!(
            net.run_until(Duration::from_secs(300), drained),
            "seed {seed}: IPCP did not settle: {:?} {:?} / {:?} {:?}",
            net.server.status(),
            net.server_events,
            net.client.status(),
            net.client_events
        );
        // Data flows both ways through the same network (some is lost).
        for i in 0..20u8 {
            let mut d = HEADROOM.to_vec();
            assert!(
                net.client.encapsulate(IpVersion::V4, &datagram(i), &mut d),
                "seed {seed}: {:?} {:?}",
                net.client.status(),
                net.client_events
            );
            net.send(true, &d);
            let mut d = HEADROOM.to_vec();
            assert!(net.server.encapsulate(IpVersion::V4, &datagram(i), &mut d));
            net.send(false, &d);
        }
        let end = net.now + Duration::from_secs(2);
        while net.now < end {
            net.step(end);
        }
        assert!(!net.delivered_to_server.is_empty() && !net.delivered_to_client.is_empty());
        for p in net
            .delivered_to_server
            .iter()
            .chain(&net.delivered_to_client)
        {
            assert!(
                (0..20u8).any(|i| *p == datagram(i)),
                "seed {seed}: garbled datagram"
            );
        }
        lost += net.lost;
        duplicated += net.duplicated;
    }
    // The faults happened.
    assert!(
        lost > 100 && duplicated > 50,
        "lost {lost}, duplicated {duplicated}"
    );
}

#[test]
fn packet_framing_asks_no_accm_and_rejects_fcs_alternatives() {
    let mut net = Net::new(
        server(AuthMethod::ChapMd5),
        client("alice", "wonderland", AuthMethod::ChapMd5),
        1,
        Faults {
            loss: 0,
            duplicate: 0,
            jitter_ms: 1,
        },
    );
    let now = net.now;
    net.client.start(now);
    let mut frame = Vec::new();
    net.client.poll_transmit(&mut frame).unwrap();
    let f = frame::parse(&frame, 1500).unwrap();
    assert_eq!(f.protocol, u16::from(Protocol::Lcp));
    assert_eq!(f.info[0], 1, "Configure-Request");
    let options = tsunagi_ppp::lcp::parse_options(&f.info[4..]).unwrap();
    assert!(
        !options
            .iter()
            .any(|o| matches!(o, tsunagi_ppp::lcp::LcpOption::Accm(_))),
        "{options:?}"
    );
    // A peer asking for an ACCM and the Null FCS: the ACCM is acked (and
    // not applied), FCS-Alternatives rejected.
    net.server.start(now);
    while net.server.poll_transmit(&mut Vec::new()).is_some() {}
    let request = [
        0xff, 0x03, 0xc0, 0x21, 1, 7, 0, 19, 2, 6, 0, 0, 0, 0, 5, 6, 1, 2, 3, 4, 9, 3, 1,
    ];
    net.server.handle_frame(now, &request, &mut |_, _| {});
    let mut answers = Vec::new();
    let mut reply = Vec::new();
    while net.server.poll_transmit(&mut reply).is_some() {
        answers.push(frame::parse(&reply, 1500).unwrap().info.to_vec());
        reply.clear();
    }
    let reject = answers
        .iter()
        .find(|a| a[0] == 4)
        .expect("a Configure-Reject");
    assert_eq!(&reject[4..], &[9, 3, 1], "only FCS-Alternatives rejected");
}

#[test]
fn ipcp_waits_for_the_address_and_a_refusal_ends_the_link() {
    let faults = Faults {
        loss: 0,
        duplicate: 0,
        jitter_ms: 5,
    };
    // bob has a fixed address in the secrets: the engine hands it to the
    // driver instead of using it.
    let mut net = Net::new(
        server(AuthMethod::ChapMd5),
        client("bob", "builder", AuthMethod::ChapMd5),
        9,
        faults,
    );
    net.pool = None;
    let now = net.now;
    net.server.start(now);
    net.client.start(now);
    assert!(net.run_until(Duration::from_secs(10), |n| !n.asked_for_address.is_empty()));
    assert_eq!(
        net.asked_for_address,
        vec![(Some("bob".to_string()), Some(Ipv4Addr::new(10, 77, 0, 99)))]
    );
    // Held: IPCP does not open however long the peer retries.
    assert!(!net.run_until(Duration::from_secs(9), Net::both_up));
    // The driver answers late: the held Configure-Request is answered at
    // once and IPCP opens with the fixed address.
    let at = net.now;
    net.server
        .set_peer_address(at, Ipv4Addr::new(10, 77, 0, 99));
    assert!(net.run_until(Duration::from_secs(5), Net::both_up));
    assert_eq!(
        Net::ipv4_up(&net.client_events).map(|(local, _)| local),
        Some(Ipv4Addr::new(10, 77, 0, 99))
    );

    // A pool with nothing left: the link ends, saying why, on both sides.
    let mut net = Net::new(
        server(AuthMethod::ChapMd5),
        client("alice", "wonderland", AuthMethod::ChapMd5),
        10,
        faults,
    );
    net.pool = None;
    let now = net.now;
    net.server.start(now);
    net.client.start(now);
    assert!(net.run_until(Duration::from_secs(10), |n| !n.asked_for_address.is_empty()));
    let at = net.now;
    net.server
        .refuse_peer_address(at, "pool \"vpn\" exhausted: all 50 addresses in use");
    let down = |events: &[Event]| events.iter().find(|e| matches!(e, Event::Down(_))).cloned();
    assert!(
        net.run_until(Duration::from_secs(10), |n| down(&n.server_events)
            .is_some()
            && down(&n.client_events).is_some())
    );
    assert_eq!(
        down(&net.server_events),
        Some(Event::Down(DownReason::NoPeerAddress(
            "pool \"vpn\" exhausted: all 50 addresses in use".into()
        )))
    );
    assert_eq!(
        down(&net.client_events),
        Some(Event::Down(DownReason::PeerTerminated(
            "pool \"vpn\" exhausted: all 50 addresses in use".into()
        )))
    );
}

/// The control frames `link` wants to send.
fn frames_of(link: &mut Link) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    loop {
        let mut f = Vec::new();
        if link.poll_transmit(&mut f).is_none() {
            return frames;
        }
        frames.push(f);
    }
}

/// The LCP code of a frame (0 for other protocols).
fn lcp_code(f: &[u8]) -> u8 {
    let f = frame::parse(f, 1500).unwrap();
    if f.protocol == u16::from(Protocol::Lcp) {
        f.info[0]
    } else {
        0
    }
}

/// RFC 1661 s4.1, Opened + RCR: This-Layer-Down, then our request and the
/// Ack of the peer's. What we acked is how we then send and whom we
/// authenticate to: a late duplicate of the peer's Configure-Request
/// renegotiates LCP, and when the peer's own new request is lost and only
/// its Ack of ours arrives, the link must still authenticate (and compress
/// headers) as the acked request said, not open on the defaults straight
/// into the Network phase.
#[test]
fn renegotiation_keeps_what_was_acked_of_the_peer() {
    let method = AuthMethod::Pap;
    let mut net = Net::new(
        server(method),
        client("alice", "wonderland", method),
        5,
        Faults {
            loss: 0,
            duplicate: 0,
            jitter_ms: 1,
        },
    );
    let now = net.now;
    net.server.start(now);
    net.client.start(now);
    assert!(net.run_until(Duration::from_secs(10), Net::both_up));
    let now = net.now;
    let mut phases = Vec::new();
    // The server's first Configure-Request, once more, to the client.
    let mut server_request = None;
    let mut replay = Link::new(server(method), 5, OsRandom::handle());
    replay.start(now);
    for f in frames_of(&mut replay) {
        if lcp_code(&f) == 1 {
            server_request = Some(f);
        }
    }
    let request = server_request.unwrap();
    net.client.handle_frame(now, &request, &mut |_, _| {});
    let from_client = frames_of(&mut net.client);
    // To the server: the client's new request (and its Ack of the
    // duplicate, which the server ignores).
    for f in &from_client {
        net.server.handle_frame(now, f, &mut |_, _| {});
    }
    // Back: the server's Ack only; its new Configure-Request is lost.
    for f in frames_of(&mut net.server) {
        if lcp_code(&f) == 2 {
            net.client.handle_frame(now, &f, &mut |_, _| {});
        }
    }
    while let Some(e) = net.client.poll_event() {
        if let Event::Phase(p) = e {
            phases.push(p);
        }
    }
    assert_eq!(
        phases,
        [
            tsunagi_ppp::Phase::Establish,
            tsunagi_ppp::Phase::Authenticate
        ],
        "the client authenticates again"
    );
    let status = net.client.status();
    assert!(status.tx_pfc && status.tx_acfc, "{status:?}");
}
