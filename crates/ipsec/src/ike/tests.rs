//! Two engines on a virtual clock, joined by a simulated network that can
//! drop, translate (a NAT) and inspect messages; ESP through the SAs they
//! agree on proves the keys match.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use tsunagi_crypto::{OsRandom, Secret};

use super::engine;
use super::*;
use crate::esp::{self, Opened, HEADROOM, NEXT_HEADER_IPV4};
use crate::isakmp::attr::Group;
use crate::isakmp::proposal::{Encryption, Integrity, Kind, Proposals};

const A_IP: Ipv4Addr = Ipv4Addr::new(10, 201, 1, 1);
const B_IP: Ipv4Addr = Ipv4Addr::new(10, 201, 1, 2);
const NAT_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

fn config(ike: &str, esp: &str, psk: &str) -> Config {
    Config {
        name: "test".into(),
        local_id: None,
        remote_id: None,
        psk: Secret::new(psk.as_bytes()),
        ike: Proposals::parse(ike, Kind::Ike).unwrap(),
        esp: Proposals::parse(esp, Kind::Esp).unwrap(),
        mode: Mode::Tunnel,
        local_ts: None,
        remote_ts: None,
        ike_lifetime: Duration::from_secs(3 * 3600),
        lifetime: Duration::from_secs(3600),
        rekey_margin: Duration::from_secs(540),
        keying_tries: 0,
        dpd: None,
        nat_keepalive: Duration::from_secs(20),
        force_encap: false,
    }
}

fn subnet(a: [u8; 4], prefix: u8) -> TrafficSelector {
    TrafficSelector {
        addr: IpAddr::V4(Ipv4Addr::from(a)),
        prefix,
        protocol: 0,
        port: 0,
    }
}

/// Which way a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    AtoB,
    BtoA,
}

/// Seed 002's transport mode for L2TP: UDP 1701 both sides.
fn l2tp_transport(c: &mut Config) {
    c.mode = Mode::Transport;
    c.local_ts = Some(TrafficSelector {
        addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        prefix: 32,
        protocol: 17,
        port: 1701,
    });
    c.remote_ts = c.local_ts;
}

/// An ISAKMP message's exchange type, if it is one.
fn exchange_of(data: &[u8]) -> Option<u8> {
    (data.len() >= 28).then(|| data[18])
}

struct Side {
    engine: Engine,
    ip: Ipv4Addr,
    events: Vec<String>,
    children: BTreeMap<ChildId, ChildSa>,
    ike_up: u32,
    failures: Vec<Reason>,
    downs: Vec<Reason>,
    dropped: Vec<String>,
}

impl Side {
    fn new(config: Config, ip: Ipv4Addr) -> Side {
        Side {
            engine: Engine::new(config, OsRandom::handle()),
            ip,
            events: Vec::new(),
            children: BTreeMap::new(),
            ike_up: 0,
            failures: Vec::new(),
            downs: Vec::new(),
            dropped: Vec::new(),
        }
    }

    fn drain_events(&mut self) {
        while let Some(e) = self.engine.poll_event() {
            self.events
                .push(format!("{e:?}").chars().take(200).collect());
            match e {
                Event::IkeUp { .. } => self.ike_up += 1,
                Event::ChildUp(c) => {
                    self.children.insert(c.id, *c);
                }
                Event::ChildDown { id, reason } => {
                    self.children.remove(&id);
                    self.downs.push(reason);
                }
                Event::IkeDown { reason, .. } => self.downs.push(reason),
                Event::Failed { reason, .. } => self.failures.push(reason),
                Event::Dropped { what, .. } => self.dropped.push(what),
            }
        }
    }

    /// The newest child (the one outbound traffic uses).
    fn current(&mut self) -> Option<&mut ChildSa> {
        self.children.values_mut().next_back()
    }
}

struct Net {
    a: Side,
    b: Side,
    now: Instant,
    /// A sits behind a NAT (source addresses rewritten to NAT_IP, ports
    /// remapped).
    nat: bool,
    /// Returns true to drop a message.
    #[allow(clippy::type_complexity)]
    drop: Box<dyn FnMut(Dir, &[u8]) -> bool>,
    /// Every datagram seen (for inspection).
    seen: Vec<(Dir, SocketAddr, SocketAddr, Vec<u8>)>,
}

impl Net {
    fn new(a: Config, b: Config) -> Net {
        Net {
            a: Side::new(a, A_IP),
            b: Side::new(b, B_IP),
            now: Instant::now(),
            nat: false,
            drop: Box::new(|_, _| false),
            seen: Vec::new(),
        }
    }

    fn nat_port(port: u16) -> u16 {
        port + 30000
    }

    /// Starts A as initiator towards B.
    fn start(&mut self) {
        let local = SocketAddr::new(IpAddr::V4(self.a.ip), IKE_PORT);
        let remote = SocketAddr::new(IpAddr::V4(self.b.ip), IKE_PORT);
        self.a.engine.initiate(self.now, local, remote);
        self.pump();
    }

    /// Delivers every queued message, both ways, until none is left.
    fn pump(&mut self) {
        for _ in 0..1000 {
            let mut moved = false;
            while let Some(t) = self.a.engine.poll_transmit() {
                moved = true;
                self.deliver(Dir::AtoB, t);
            }
            while let Some(t) = self.b.engine.poll_transmit() {
                moved = true;
                self.deliver(Dir::BtoA, t);
            }
            self.a.drain_events();
            self.b.drain_events();
            if !moved {
                return;
            }
        }
        panic!("messages kept flowing for 1000 rounds");
    }

    fn deliver(&mut self, dir: Dir, t: Transmit) {
        if t.data == esp::NAT_KEEPALIVE {
            return;
        }
        if (self.drop)(dir, &t.data) {
            return;
        }
        let (from, to) = match dir {
            Dir::AtoB => {
                let from = if self.nat {
                    SocketAddr::new(IpAddr::V4(NAT_IP), Net::nat_port(t.local.port()))
                } else {
                    t.local
                };
                (from, t.remote)
            }
            Dir::BtoA => {
                let to = if self.nat {
                    assert_eq!(t.remote.ip(), IpAddr::V4(NAT_IP), "B answers the NAT");
                    SocketAddr::new(IpAddr::V4(A_IP), t.remote.port() - 30000)
                } else {
                    t.remote
                };
                (t.local, to)
            }
        };
        self.seen.push((dir, from, to, t.data.clone()));
        let d = Datagram {
            local: to,
            remote: from,
            data: &t.data,
        };
        match dir {
            Dir::AtoB => self.b.engine.handle(self.now, d),
            Dir::BtoA => self.a.engine.handle(self.now, d),
        }
    }

    /// Runs the clock forward by `d`, firing timers as they come.
    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next = [self.a.engine.poll_timeout(), self.b.engine.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = t.max(self.now);
                    self.a.engine.handle_timeout(self.now);
                    self.b.engine.handle_timeout(self.now);
                    self.pump();
                }
                _ => break,
            }
        }
        self.now = end;
        self.a.engine.handle_timeout(self.now);
        self.b.engine.handle_timeout(self.now);
        self.pump();
    }

    /// One packet each way through the current child SAs; true when both
    /// arrive intact. The receiver tells its engine (DPD, rekey).
    fn traffic(&mut self) -> bool {
        let ab = Net::one_packet(&mut self.a, &mut self.b, self.now, b"\x45 from a to b");
        let ba = Net::one_packet(&mut self.b, &mut self.a, self.now, b"\x45 from b to a");
        self.pump();
        ab && ba
    }

    fn one_packet(tx: &mut Side, rx: &mut Side, now: Instant, text: &[u8]) -> bool {
        let Some(child) = tx.current() else {
            return false;
        };
        let mut buf = vec![0u8; HEADROOM + text.len() + esp::TAILROOM];
        buf[HEADROOM..HEADROOM + text.len()].copy_from_slice(text);
        let Ok(range) =
            child
                .outbound
                .seal(&mut buf, HEADROOM..HEADROOM + text.len(), NEXT_HEADER_IPV4)
        else {
            return false;
        };
        let mut packet = buf[range].to_vec();
        let spi = esp::parse_spi(&packet).unwrap();
        let Some(rchild) = rx
            .children
            .values_mut()
            .find(|c| c.inbound.config().spi == spi)
        else {
            eprintln!("no inbound SA for SPI {spi:08x}");
            return false;
        };
        let id = rchild.id;
        let remote = rchild.remote;
        match rchild.inbound.open(&mut packet) {
            Ok(Opened::Payload { payload, .. }) if &packet[payload.clone()] == text => {
                rx.engine.esp_received(now, id, remote);
                true
            }
            other => {
                eprintln!("open: {other:?}");
                false
            }
        }
    }

    fn up(&self) -> bool {
        !self.a.children.is_empty() && !self.b.children.is_empty()
    }
}

fn assert_clean(net: &Net) {
    assert!(
        net.a.failures.is_empty(),
        "A failed: {:?}\n{:#?}",
        net.a.failures,
        net.a.events
    );
    assert!(
        net.b.failures.is_empty(),
        "B failed: {:?}\n{:#?}",
        net.b.failures,
        net.b.events
    );
    assert!(net.a.dropped.is_empty(), "A dropped: {:?}", net.a.dropped);
    assert!(net.b.dropped.is_empty(), "B dropped: {:?}", net.b.dropped);
}

/// Both phases complete for each proposal the issue lists (seed 002's
/// `3des-sha1-modp1024`, AES-CBC with SHA-1/SHA-2, MODP-2048, ECP-256,
/// ESP AES-GCM-16, with and without PFS), and ESP passes both ways.
#[test]
fn both_phases_complete_for_every_listed_proposal() {
    for (ike, esp) in [
        ("3des-sha1-modp1024!", "3des-sha1!"),
        ("aes128-sha1-modp2048!", "aes128-sha1!"),
        ("aes256-sha256-modp2048!", "aes256-sha256!"),
        ("aes128-sha384-ecp256!", "aes128gcm16!"),
        ("aes256-sha256-ecp256!", "aes128gcm16-ecp256!"),
        ("aes128-sha256-modp2048!", "aes128-sha256-modp2048!"),
        ("aes128-sha1-modp1536!", "aes256gcm16!"),
    ] {
        let mut a = config(ike, esp, "secret-psk");
        a.local_ts = Some(subnet([10, 201, 10, 0], 24));
        a.remote_ts = Some(subnet([10, 201, 20, 0], 24));
        let mut b = config(ike, esp, "secret-psk");
        b.local_ts = Some(subnet([10, 201, 20, 0], 24));
        b.remote_ts = Some(subnet([10, 201, 10, 0], 24));
        let mut net = Net::new(a, b);
        net.start();
        assert_clean(&net);
        assert!(
            net.up(),
            "{ike} / {esp}: no child SA\nA: {:#?}\nB: {:#?}",
            net.a.events,
            net.b.events
        );
        assert!(net.traffic(), "{ike} / {esp}: ESP does not pass");
        let ca = net.a.current().unwrap();
        assert_eq!(ca.remote_ts, subnet([10, 201, 20, 0], 24));
        assert!(!ca.udp_encap, "no NAT: raw ESP");
        assert_eq!(net.a.ike_up, 1);
        assert_eq!(net.b.ike_up, 1);
    }
}

/// A behind a NAT (RFC 3947): both detect it, float to 4500, and the child
/// SA is UDP-encapsulated.
#[test]
fn nat_is_detected_and_ike_floats_to_4500() {
    let mut net = Net::new(
        config("aes128-sha256-modp2048!", "aes128gcm16!", "k"),
        config("aes128-sha256-modp2048!", "aes128gcm16!", "k"),
    );
    net.nat = true;
    net.start();
    assert_clean(&net);
    assert!(net.up());
    let a = net.a.current().unwrap();
    assert!(a.udp_encap);
    assert_eq!(a.remote.port(), NAT_T_PORT);
    let b = net.b.current().unwrap();
    assert!(b.udp_encap);
    assert_eq!(
        b.remote,
        SocketAddr::new(IpAddr::V4(NAT_IP), Net::nat_port(NAT_T_PORT))
    );
    // Message 5 on went to 4500.
    let encrypted: Vec<_> = net
        .seen
        .iter()
        .filter(|s| s.3.len() > 19 && s.3[19] & 1 == 1)
        .collect();
    assert!(encrypted
        .iter()
        .all(|s| s.2.port() == NAT_T_PORT || s.1.port() == NAT_T_PORT));
    assert!(net.traffic());
    // Keepalives from the side behind the NAT only.
    assert!(net
        .a
        .engine
        .sas
        .values()
        .all(|sa| sa.keepalive_at.is_some()));
    assert!(net
        .b
        .engine
        .sas
        .values()
        .all(|sa| sa.keepalive_at.is_none()));
}

/// `forceencaps`: no NAT, but ESP in UDP anyway (what strongSwan's
/// kernel-libipsec does).
#[test]
fn forced_encapsulation_without_nat() {
    let mut a = config("aes128-sha256-modp2048!", "aes128gcm16!", "k");
    a.force_encap = true;
    let mut net = Net::new(a, config("aes128-sha256-modp2048!", "aes128gcm16!", "k"));
    net.start();
    assert_clean(&net);
    assert!(net.a.current().unwrap().udp_encap);
    assert!(net.b.current().unwrap().udp_encap);
    assert!(net.traffic());
}

/// A wrong PSK fails on both sides, and each says why.
#[test]
fn a_wrong_psk_fails_on_both_sides() {
    let mut a = config("3des-sha1-modp1024!", "3des-sha1!", "right-key");
    a.keying_tries = 1;
    let mut net = Net::new(a, config("3des-sha1-modp1024!", "3des-sha1!", "wrong-key"));
    net.start();
    net.advance(Duration::from_secs(120));
    assert!(!net.up());
    assert!(
        net.b.failures.contains(&Reason::AuthenticationFailed),
        "B: {:?}",
        net.b.failures
    );
    assert!(
        net.a.failures.contains(&Reason::AuthenticationFailed),
        "A: {:?}",
        net.a.failures
    );
    assert!(
        net.a
            .failures
            .iter()
            .any(|r| matches!(r, Reason::Refused(s) if s.contains("keyingtries=1"))),
        "A gives up after keyingtries: {:?}",
        net.a.failures
    );
    let line = Reason::AuthenticationFailed.to_string();
    assert!(line.contains("pre-shared key"), "{line}");
}

/// A key changed under a running engine (ipsec.secrets read again): the
/// SA up keeps its keys and carries traffic; the next Phase 1 uses the new
/// key, so both sides must have it.
#[test]
fn a_new_psk_counts_from_the_next_phase_1() {
    let ike = "aes128-sha256-modp2048!";
    let mut net = Net::new(
        config(ike, "aes128gcm16!", "old-key"),
        config(ike, "aes128gcm16!", "old-key"),
    );
    net.start();
    assert!(net.up());
    net.b.engine.set_psk(Secret::new(&b"new-key"[..]));
    assert!(net.traffic(), "the SA up runs on");
    // A starts over (a fresh engine, as after its restart) with the old
    // key: refused.
    let mut old = config(ike, "aes128gcm16!", "old-key");
    old.keying_tries = 1;
    net.a = Side::new(old, A_IP);
    net.start();
    net.advance(Duration::from_secs(120));
    assert!(
        net.b.failures.contains(&Reason::AuthenticationFailed),
        "B: {:?}",
        net.b.failures
    );
    assert!(net.a.children.is_empty());
    // A gets the new key too: its next Phase 1 comes up.
    net.a.engine.set_psk(Secret::new(&b"new-key"[..]));
    net.start();
    assert_eq!(net.a.ike_up, 1);
    assert!(net.up() && net.traffic());
}

/// No proposal in common: the responder says NO-PROPOSAL-CHOSEN and logs
/// what was offered.
#[test]
fn no_common_proposal_is_refused_with_what_was_offered() {
    let mut a = config("3des-sha1-modp1024!", "3des-sha1!", "k");
    a.keying_tries = 1;
    let mut net = Net::new(a, config("aes256-sha256-ecp256!", "aes128gcm16!", "k"));
    net.start();
    assert!(!net.up());
    assert!(
        net.b.failures.iter().any(
            |r| matches!(r, Reason::NoProposalChosen(s) if s.contains("3DES_CBC/SHA1/MODP_1024"))
        ),
        "{:?}",
        net.b.failures
    );
    assert!(
        net.a
            .failures
            .iter()
            .any(|r| matches!(r, Reason::NoProposalChosen(_))),
        "{:?}",
        net.a.failures
    );
}

/// A lost Quick Mode reply is retransmitted, and the child comes up.
#[test]
fn a_lost_quick_mode_reply_is_retried() {
    let mut net = Net::new(
        config("aes128-sha256-modp2048!", "aes128gcm16!", "k"),
        config("aes128-sha256-modp2048!", "aes128gcm16!", "k"),
    );
    let mut dropped = 0;
    net.drop = Box::new(move |dir, data| {
        if dir == Dir::BtoA && exchange_of(data) == Some(32) && dropped < 2 {
            dropped += 1;
            return true;
        }
        false
    });
    net.start();
    assert!(!net.up() || net.a.children.is_empty());
    net.advance(Duration::from_secs(10));
    assert!(net.up(), "A: {:#?}", net.a.events);
    assert!(net.traffic());
    assert_eq!(net.a.children.len(), 1);
    assert_eq!(
        net.b.children.len(),
        1,
        "one child, not one per retransmission"
    );
}

/// A peer that drops every Quick Mode: the initiator never rests with an
/// IKE SA and no IPsec SA; it deletes the IKE SA and renegotiates Phase 1.
#[test]
fn a_peer_that_drops_every_quick_mode_gets_phase_1_renegotiated() {
    let mut net = Net::new(
        config("aes128-sha256-modp2048!", "aes128gcm16!", "k"),
        config("aes128-sha256-modp2048!", "aes128gcm16!", "k"),
    );
    net.drop = Box::new(|dir, data| dir == Dir::AtoB && exchange_of(data) == Some(32));
    net.start();
    net.advance(Duration::from_secs(600));
    assert!(
        net.a.ike_up >= 2,
        "Phase 1 renegotiated: {} times up",
        net.a.ike_up
    );
    assert!(
        net.a.downs.contains(&Reason::NoChildSa),
        "{:?}",
        net.a.downs
    );
    // At no instant sampled is there an established IKE SA with neither a
    // child nor a Quick Mode in flight for longer than the retries take.
    let sa_states = net.a.engine.status();
    for s in sa_states {
        if s.state == "ESTABLISHED" {
            let sa = &net.a.engine.sas[&s.id];
            assert!(
                !sa.quick.is_empty() || net.now.duration_since(s.since) < Duration::from_secs(200),
                "IKE SA resting without Quick Mode"
            );
        }
    }
}

/// DPD: a peer that goes silent is declared dead within
/// dpddelay + dpdtimeout, and with `dpdaction=restart` the initiator
/// negotiates again.
#[test]
fn dpd_detects_a_dead_peer_and_restarts() {
    let dpd = DpdConfig {
        delay: Duration::from_secs(10),
        timeout: Duration::from_secs(30),
        action: DpdAction::Restart,
    };
    let mut a = config("aes128-sha256-modp2048!", "aes128gcm16!", "k");
    a.dpd = Some(dpd);
    let mut b = config("aes128-sha256-modp2048!", "aes128gcm16!", "k");
    b.dpd = Some(dpd);
    let mut net = Net::new(a, b);
    net.start();
    assert!(net.up());
    // Alive: R-U-THERE answered, nothing goes down.
    net.advance(Duration::from_secs(60));
    assert!(net.a.downs.is_empty(), "{:?}", net.a.downs);
    let dpd_sent = net
        .seen
        .iter()
        .filter(|s| s.0 == Dir::AtoB && exchange_of(&s.3) == Some(5))
        .count();
    assert!(dpd_sent >= 2, "R-U-THERE sent while idle: {dpd_sent}");
    // B dies.
    net.drop = Box::new(|dir, _| dir == Dir::BtoA);
    let died = net.now;
    net.advance(Duration::from_secs(45));
    assert!(net.a.downs.contains(&Reason::DeadPeer), "{:?}", net.a.downs);
    assert!(net.a.children.is_empty());
    let _ = died;
    // Restart: Main Mode message 1 goes out again.
    let before = net.seen.len();
    net.advance(Duration::from_secs(5));
    assert!(net.seen[before..]
        .iter()
        .any(|s| s.0 == Dir::AtoB && exchange_of(&s.3) == Some(2)));
}

/// Rekeying a child while traffic flows loses no packet: each second one
/// packet each way, across two rekeys; the old SA goes once the new one
/// carries traffic.
#[test]
fn child_rekey_while_traffic_flows_loses_nothing() {
    let mut a = config("aes128-sha256-modp2048!", "aes128gcm16!", "k");
    a.lifetime = Duration::from_secs(120);
    a.rekey_margin = Duration::from_secs(30);
    let b = a.clone();
    let mut net = Net::new(a, b);
    net.start();
    let first = *net.a.children.keys().next().unwrap();
    for s in 0..250 {
        assert!(
            net.traffic(),
            "packet lost at second {s}\nA: {:#?}",
            net.a.events
        );
        net.advance(Duration::from_secs(1));
    }
    assert_clean(&net);
    assert!(
        !net.a.children.contains_key(&first),
        "the first child was replaced and deleted"
    );
    assert!(net.a.children.len() <= 2);
    assert!(
        net.a.downs.iter().all(|r| *r == Reason::Deleted),
        "{:?}",
        net.a.downs
    );
}

/// Rekeying Phase 1 while traffic flows: a new IKE SA, the old one
/// deleted, the children kept, and the next child rekey runs on the new
/// IKE SA.
#[test]
fn phase_1_rekey_keeps_the_children() {
    let mut a = config("aes128-sha256-modp2048!", "aes128gcm16!", "k");
    a.ike_lifetime = Duration::from_secs(100);
    a.lifetime = Duration::from_secs(150);
    a.rekey_margin = Duration::from_secs(20);
    let b = a.clone();
    let mut net = Net::new(a, b);
    net.start();
    for s in 0..200 {
        assert!(
            net.traffic(),
            "packet lost at second {s}\nA: {:#?}",
            net.a.events
        );
        net.advance(Duration::from_secs(1));
    }
    assert_clean(&net);
    assert!(net.a.ike_up >= 2, "Phase 1 rekeyed");
    assert!(net.a.engine.status().len() <= 2);
    assert!(
        net.a.downs.iter().all(|r| *r == Reason::Deleted),
        "{:?}",
        net.a.downs
    );
}

/// Bad input to an established responder: truncated, over-long, a
/// 10,000-payload message, garbage under known cookies, Aggressive Mode.
/// Each is dropped and reported; the SAs keep working.
#[test]
fn bad_input_is_dropped_and_the_sas_keep_working() {
    let mut net = Net::new(
        config("aes128-sha256-modp2048!", "aes128gcm16!", "k"),
        config("aes128-sha256-modp2048!", "aes128gcm16!", "k"),
    );
    net.start();
    assert!(net.up());
    let sa = net.b.engine.status()[0].clone();
    let mut hdr = Vec::new();
    hdr.extend_from_slice(&sa.cookies.0);
    hdr.extend_from_slice(&sa.cookies.1);
    let from = SocketAddr::new(IpAddr::V4(A_IP), IKE_PORT);
    let to = SocketAddr::new(IpAddr::V4(B_IP), IKE_PORT);
    let mut bad: Vec<Vec<u8>> = vec![vec![], vec![0; 10], hdr.clone()];
    // Header claiming more than arrived.
    let mut over = hdr.clone();
    over.extend_from_slice(&[1, 0x10, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
    bad.push(over);
    // 10,000 empty vendor IDs in the clear under a fresh cookie.
    let mut many = vec![7u8; 8];
    many.extend_from_slice(&[0; 8]);
    many.extend_from_slice(&[13, 0x10, 2, 0, 0, 0, 0, 0]);
    let len = 28 + 10_000 * 4;
    many.extend_from_slice(&(len as u32).to_be_bytes());
    for i in 0..10_000 {
        many.extend_from_slice(&[if i + 1 < 10_000 { 13 } else { 0 }, 0, 0, 4]);
    }
    bad.push(many);
    // Encrypted garbage as a Quick Mode and as an Informational.
    for exchange in [32u8, 5] {
        let mut g = hdr.clone();
        g.extend_from_slice(&[8, 0x10, exchange, 1, 0, 0, 0, 9]);
        g.extend_from_slice(&(28u32 + 64).to_be_bytes());
        g.extend_from_slice(&[0xa5; 64]);
        bad.push(g);
    }
    // Aggressive Mode.
    let mut ag = vec![9u8; 8];
    ag.extend_from_slice(&[0; 8]);
    ag.extend_from_slice(&[1, 0x10, 4, 0, 0, 0, 0, 0]);
    ag.extend_from_slice(&28u32.to_be_bytes());
    bad.push(ag);
    for b in &bad {
        net.b.engine.handle(
            net.now,
            Datagram {
                local: to,
                remote: from,
                data: b,
            },
        );
    }
    net.pump();
    assert_eq!(
        net.b.dropped.len(),
        bad.len(),
        "each one reported: {:#?}",
        net.b.dropped
    );
    assert!(net.b.dropped.iter().any(|d| d.contains("Aggressive")));
    assert!(net.traffic());
    assert_eq!(net.b.engine.status().len(), 1);
    assert!(net.b.downs.is_empty());
}

/// Deleting on one side removes the SAs on the other (Informational
/// Delete, RFC 2408 s3.15).
#[test]
fn delete_all_removes_the_peer_sas() {
    let mut net = Net::new(
        config("aes128-sha256-modp2048!", "aes128gcm16!", "k"),
        config("aes128-sha256-modp2048!", "aes128gcm16!", "k"),
    );
    net.start();
    assert!(net.up());
    net.a.engine.delete_all(net.now);
    net.pump();
    assert!(net.a.children.is_empty());
    assert!(net.b.children.is_empty(), "{:#?}", net.b.events);
    assert!(net.b.downs.contains(&Reason::DeletedByPeer));
    assert!(net.b.engine.status().is_empty());
}

/// Transport mode with selectors for udp/1701 (seed 002's
/// `leftprotoport=17/1701`), through a NAT: UDP-encapsulated transport,
/// NAT-OA carries the original address.
#[test]
fn transport_mode_for_l2tp_behind_nat() {
    let mut a = config("3des-sha1-modp1024!", "3des-sha1!", "k");
    l2tp_transport(&mut a);
    let mut b = config("3des-sha1-modp1024!", "3des-sha1!", "k");
    l2tp_transport(&mut b);
    let mut net = Net::new(a, b);
    net.nat = true;
    net.start();
    assert_clean(&net);
    assert!(net.up());
    let bc = net.b.current().unwrap();
    assert!(bc.udp_encap);
    assert_eq!(bc.inbound.config().mode, Mode::Transport);
    assert_eq!(bc.remote_ts.protocol, 17);
    assert_eq!(bc.remote_ts.port, 1701);
    assert_eq!(bc.peer_original_addr, Some(IpAddr::V4(A_IP)));
}

/// Two L2TP clients behind one NAT, both with the same private address
/// (so the same transport selectors), differ only in the NAT's port: the
/// responder keeps an IKE SA and an IPsec SA for each, and the second
/// client's SA replaces nothing of the first's (libreswan #322).
#[test]
fn two_clients_of_one_nat_with_the_same_address_each_keep_their_sas() {
    let side = |ip| {
        let mut c = config("aes128-sha1-modp2048!", "aes128-sha1!", "k");
        l2tp_transport(&mut c);
        Side::new(c, ip)
    };
    let mut clients = [side(A_IP), side(A_IP)];
    let mut server = side(B_IP);
    // Client i's ports appear as port + 10000 * (i + 2) on the NAT.
    let shift = |i: usize| 10000 * (i as u16 + 2);
    let mut now = Instant::now();
    let server_addr = SocketAddr::new(IpAddr::V4(B_IP), IKE_PORT);
    let pump = |clients: &mut [Side; 2], server: &mut Side, now: Instant| {
        for _ in 0..200 {
            let mut moved = false;
            for (i, c) in clients.iter_mut().enumerate() {
                while let Some(t) = c.engine.poll_transmit() {
                    moved = true;
                    if t.data == esp::NAT_KEEPALIVE {
                        continue;
                    }
                    let from = SocketAddr::new(IpAddr::V4(NAT_IP), t.local.port() + shift(i));
                    let d = Datagram {
                        local: t.remote,
                        remote: from,
                        data: &t.data,
                    };
                    server.engine.handle(now, d);
                }
            }
            while let Some(t) = server.engine.poll_transmit() {
                moved = true;
                if t.data == esp::NAT_KEEPALIVE {
                    continue;
                }
                let i = if t.remote.port() >= shift(1) { 1 } else { 0 };
                let to = SocketAddr::new(IpAddr::V4(A_IP), t.remote.port() - shift(i));
                let d = Datagram {
                    local: to,
                    remote: t.local,
                    data: &t.data,
                };
                clients[i].engine.handle(now, d);
            }
            for c in clients.iter_mut() {
                c.drain_events();
            }
            server.drain_events();
            if !moved {
                return;
            }
        }
        panic!("messages kept flowing");
    };
    for i in 0..clients.len() {
        let local = SocketAddr::new(IpAddr::V4(A_IP), IKE_PORT);
        clients[i].engine.initiate(now, local, server_addr);
        pump(&mut clients, &mut server, now);
    }
    for _ in 0..10 {
        now += Duration::from_secs(1);
        for c in clients.iter_mut() {
            c.engine.handle_timeout(now);
        }
        server.engine.handle_timeout(now);
        pump(&mut clients, &mut server, now);
    }
    assert_eq!(server.ike_up, 2);
    assert_eq!(server.children.len(), 2, "{:?}", server.events);
    assert!(server.downs.is_empty(), "{:?}", server.downs);
    let remotes: Vec<SocketAddr> = server.children.values().map(|c| c.remote).collect();
    assert_ne!(remotes[0], remotes[1]);
    assert!(server.children.values().all(|c| c.replaces.is_none()));
    for c in &clients {
        assert_eq!(c.children.len(), 1);
        assert!(c.downs.is_empty(), "{:?}", c.downs);
    }
}

/// The README's L2TP/IPsec server answers what the built-in clients offer
/// for L2TP (Windows: AES-256/AES-128/3DES with SHA1 and MODP-1024 or
/// 2048, ESP without PFS; Apple: also SHA2-256; seed 002's client with
/// PFS) behind a NAT, each getting the proposal it listed first that the
/// server has, in transport mode with ESP in UDP.
#[test]
fn the_l2tp_server_answers_the_built_in_clients_offers() {
    let server_ike = "aes256-sha256-modp2048,aes256-sha1-modp2048,aes128-sha1-modp2048,aes256-sha1-modp1024,aes128-sha1-modp1024,3des-sha1-modp1024";
    let server_esp = "aes256-sha1,aes128-sha1,3des-sha1,aes128-sha1-modp2048,3des-sha1-modp1024";
    for (client, ike, esp, want) in [
        (
            "Windows",
            "aes256-sha1-modp1024,aes128-sha1-modp1024,3des-sha1-modp1024,aes256-sha1-modp2048!",
            "aes256-sha1,aes128-sha1,3des-sha1!",
            (Encryption::AesCbc(256), None),
        ),
        (
            "macOS/iOS",
            "aes256-sha256-modp2048,aes256-sha1-modp2048,aes128-sha1-modp2048,3des-sha1-modp1024!",
            "aes256-sha1,aes128-sha1,3des-sha1!",
            (Encryption::AesCbc(256), None),
        ),
        (
            "seed 002",
            "3des-sha1-modp1024!",
            "3des-sha1-modp1024!",
            (Encryption::TripleDes, Some(Group::Modp1024)),
        ),
    ] {
        let mut a = config(ike, esp, "k");
        l2tp_transport(&mut a);
        let mut b = config(server_ike, server_esp, "k");
        l2tp_transport(&mut b);
        let mut net = Net::new(a, b);
        net.nat = true;
        net.start();
        assert_clean(&net);
        assert!(
            net.up(),
            "{client}: no child SA\nA: {:#?}\nB: {:#?}",
            net.a.events,
            net.b.events
        );
        let bc = net.b.current().unwrap();
        assert!(bc.udp_encap, "{client}");
        assert_eq!(bc.inbound.config().mode, Mode::Transport, "{client}");
        let a = &bc.algorithms;
        assert_eq!((a.encryption, a.group), want, "{client}: {a:?}");
        assert_eq!(a.integrity, Some(Integrity::Sha1), "{client}: {a:?}");
    }
}

/// strongSwan as a responder with another PSK cannot decrypt message 5 and
/// answers with an Informational encrypted under its own keys: the
/// initiator reads that as the PSK mismatch it is.
#[test]
fn an_unreadable_answer_to_message_5_is_a_psk_mismatch() {
    let mut a = config("3des-sha1-modp1024!", "3des-sha1!", "ours");
    a.keying_tries = 1;
    let mut net = Net::new(a, config("3des-sha1-modp1024!", "3des-sha1!", "theirs"));
    // B's own (unencrypted) AUTHENTICATION-FAILED does not reach A.
    net.drop = Box::new(|dir, data| dir == Dir::BtoA && exchange_of(data) == Some(5));
    net.start();
    let sa = net.a.engine.status()[0].clone();
    assert_eq!(sa.state, "CONNECTING");
    let mut m = Vec::new();
    m.extend_from_slice(&sa.cookies.0);
    m.extend_from_slice(&sa.cookies.1);
    m.extend_from_slice(&[8, 0x10, 5, 1, 0x60, 0x3d, 0x2f, 0x5b]);
    m.extend_from_slice(&(28u32 + 40).to_be_bytes());
    m.extend_from_slice(&[0x3c; 40]);
    let (local, remote) = (sa.local, sa.remote);
    net.a.engine.handle(
        net.now,
        Datagram {
            local,
            remote,
            data: &m,
        },
    );
    net.pump();
    assert!(
        net.a.failures.contains(&Reason::AuthenticationFailed),
        "{:?}",
        net.a.failures
    );
}

/// A flood of message 1s (spoofed sources, fresh cookies) holds at most
/// MAX_HALF_OPEN slots, each only for HALF_OPEN_TIMEOUT; then a real
/// initiator gets through.
#[test]
fn a_flood_of_message_1s_is_bounded_and_forgotten() {
    let cfg = || config("aes128-sha256-modp2048!", "aes128gcm16!", "k");
    let mut net = Net::new(cfg(), cfg());
    let mut probe = Engine::new(cfg(), OsRandom::handle());
    let (l, r) = (
        SocketAddr::new(IpAddr::V4(A_IP), IKE_PORT),
        SocketAddr::new(IpAddr::V4(B_IP), IKE_PORT),
    );
    probe.initiate(net.now, l, r);
    let mm1 = probe.poll_transmit().unwrap().data;
    for i in 0..(engine::MAX_HALF_OPEN as u32 + 100) {
        let mut m = mm1.clone();
        m[..4].copy_from_slice(&i.to_be_bytes());
        let from = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a63_0000 + i)), IKE_PORT);
        net.b.engine.handle(
            net.now,
            Datagram {
                local: r,
                remote: from,
                data: &m,
            },
        );
    }
    while net.b.engine.poll_transmit().is_some() {}
    net.b.drain_events();
    assert_eq!(net.b.engine.status().len(), engine::MAX_HALF_OPEN);
    assert_eq!(net.b.dropped.len(), 100, "the rest dropped and reported");
    net.advance(engine::HALF_OPEN_TIMEOUT + Duration::from_secs(1));
    assert!(net.b.engine.status().is_empty(), "half-open SAs forgotten");
    net.start();
    assert!(net.up());
}
