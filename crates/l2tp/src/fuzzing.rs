//! Entry points shared by the fuzz targets in `fuzz/` (`l2tp_control`,
//! `l2tp_avp`) and the corpus replay test (`tests/fuzz_corpus.rs`), so that
//! every corpus file is also a plain regression test. Built only with the
//! `fuzzing` feature.
//!
//! They panic when an invariant breaks; that is how a fuzzer notices.
//! Nothing here is meant for production use: [`SeededRandom`] is a
//! predictable generator, for reproducible runs only.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tsunagi_crypto::{Random, RandomSource, Secret};

use crate::avp::{hide, unhide, AvpReader};
use crate::header::{Header, Kind};
use crate::message::{CdnResult, Hiding, Message, StopCcnResult};
use crate::text::DatagramText;
use crate::tunnel::{CallParams, Role, Tunnel, TunnelConfig, TunnelEvent, TunnelState};

/// xorshift64: the harness's choices from the input, reproducibly.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// A predictable [`RandomSource`] (fuzzing and seeds only: never for a
/// running gateway, whose ids and challenges come from the OS CSPRNG).
#[derive(Debug)]
pub struct SeededRandom(Mutex<Rng>);

impl RandomSource for SeededRandom {
    fn fill(&self, dest: &mut [u8]) {
        let mut r = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for b in dest {
            *b = r.next() as u8;
        }
    }
}

/// A [`SeededRandom`] handle starting from `seed`.
pub fn seeded_random(seed: u64) -> Random {
    Arc::new(SeededRandom(Mutex::new(Rng::new(seed))))
}

/// The secret of configurations with bit 2 set.
pub const SECRET: &[u8] = b"fuzz-secret";
/// Our Tunnel ID in the harness.
pub const LOCAL_TUNNEL_ID: u16 = 0x4242;
/// The seed of the target's random source.
pub const TARGET_SEED: u64 = 1;

/// One `l2tp_avp` input: any datagram.
///
/// Checks: [`Header::parse`] never panics, its payload lies in the input,
/// and a parsed header emits to octets that parse back to it; every AVP the
/// reader yields lies in the body; a control body that parses as a
/// [`Message`] (with the secret [`SECRET`]) emits back, plain and hidden,
/// to a body that parses to the same AVPs; the log text never panics;
/// [`unhide`] of [`hide`] is the identity.
pub fn l2tp_avp(data: &[u8]) {
    let _ = DatagramText {
        datagram: data,
        secret: Some(SECRET),
    }
    .to_string();
    let (header, range) = match Header::parse(data) {
        Ok(x) => x,
        Err(e) => {
            let _ = e.to_string();
            // Still walk the bytes as AVPs.
            walk(data);
            return;
        }
    };
    assert!(range.start <= range.end && range.end <= data.len());
    assert_eq!(header.len(), range.start);
    // The header emitted again, with the same payload, parses to the same
    // header and payload (reserved bits and pad octets aside).
    let mut out = vec![0u8; header.len()];
    header.emit(&mut out);
    out.extend_from_slice(&data[range.clone()]);
    assert_eq!(Header::parse(&out), Ok((header, range.clone())));
    let body = &data[range];
    walk(body);
    if header.kind != Kind::Control || body.is_empty() {
        return;
    }
    let Ok(m) = Message::parse(body, Some(SECRET)) else {
        return;
    };
    let _ = m.to_string();
    let mut plain = Vec::new();
    m.emit(&mut plain, None);
    let back = Message::parse(&plain, None).expect("an emitted message parses");
    assert_eq!(back.avps, m.avps);
    assert_eq!(back.message_type, m.message_type);
    let mut hidden = Vec::new();
    let rv = [0x5a; 16];
    m.emit(
        &mut hidden,
        Some(Hiding {
            secret: SECRET,
            random_vector: &rv,
        }),
    );
    let back = Message::parse(&hidden, Some(SECRET)).expect("a hidden message parses");
    assert_eq!(back.avps, m.avps);
    let v: Vec<u8> = body.iter().copied().take(1000).collect();
    let h = hide(7, &v, SECRET, &rv, &[1, 2, 3]);
    assert_eq!(unhide(7, &h, SECRET, &rv).expect("unhide(hide(v))"), v);
}

fn walk(body: &[u8]) {
    let mut end = 0;
    for r in AvpReader::new(body) {
        match r {
            Ok(a) => {
                assert!(a.offset >= end);
                end = a.offset + 6 + a.value.len();
                assert!(end <= body.len());
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
}

/// The engine under test and what it did.
pub struct ControlHarness {
    tunnel: Tunnel,
    now: Instant,
    down: bool,
    up: bool,
    accept: bool,
    open: bool,
    max_sessions: usize,
    secret: Option<Vec<u8>>,
}

/// The target's configuration from the configuration octet:
/// - bit 0: LAC (clear) or LNS (set);
/// - bit 1: we open the tunnel (SCCRQ) or answer one;
/// - bit 2: a secret ([`SECRET`]) and hidden AVPs;
/// - bit 3: short timers (HELLO after 2 s, replies within 5 s, 3 s hold);
/// - bit 4: the driver accepts session requests (else refuses them);
/// - bit 5: the driver opens a session once the tunnel is up;
/// - bit 6: data sequencing; bit 7: Tie Breaker.
pub fn target_config(config: u8) -> (TunnelConfig, bool) {
    let role = if config & 1 == 0 {
        Role::Lac
    } else {
        Role::Lns
    };
    let mut c = TunnelConfig::new(role);
    c.max_sessions = 4;
    c.reliable.max_queue = 32;
    if config & 4 != 0 {
        c.secret = Some(Secret::new(SECRET));
        c.hide_avps = true;
    }
    if config & 8 != 0 {
        c.hello_interval = Duration::from_secs(2);
        c.reply_timeout = Duration::from_secs(5);
        c.stop_hold = Duration::from_secs(3);
    }
    c.data_sequencing = config & 64 != 0;
    c.tie_breaker = config & 128 != 0;
    (c, config & 2 != 0)
}

impl ControlHarness {
    /// A target per `config` (see [`target_config`]) at time `now`.
    pub fn new(config: u8, now: Instant) -> ControlHarness {
        let (c, initiator) = target_config(config);
        let secret = c.secret.as_ref().map(|s| s.expose().to_vec());
        let max_sessions = usize::from(c.max_sessions);
        let random = seeded_random(TARGET_SEED);
        let tunnel = if initiator {
            Tunnel::connect(c, LOCAL_TUNNEL_ID, now, random)
        } else {
            Tunnel::accept(c, LOCAL_TUNNEL_ID, now, random)
        };
        ControlHarness {
            tunnel,
            now,
            down: false,
            up: false,
            accept: config & 16 != 0,
            open: config & 32 != 0,
            max_sessions,
            secret,
        }
    }

    /// The current time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The engine.
    pub fn tunnel(&self) -> &Tunnel {
        &self.tunnel
    }

    /// Moves the clock by `by`, firing what is due; returns what was sent.
    pub fn advance(&mut self, by: Duration) -> Vec<Vec<u8>> {
        let target = self.now + by;
        let mut sent = Vec::new();
        for _ in 0..10_000 {
            match self.tunnel.poll_timeout() {
                Some(t) if t <= target => {
                    self.now = self.now.max(t);
                    self.tunnel.handle_timeout(self.now);
                    self.drain(&mut sent);
                    if let Some(next) = self.tunnel.poll_timeout() {
                        assert!(next > self.now, "a fired timer re-arms in the future");
                    }
                }
                _ => break,
            }
        }
        self.now = target;
        sent
    }

    /// A datagram from the peer after `delay`; returns what was sent.
    pub fn step(&mut self, delay: Duration, datagram: &[u8]) -> Vec<Vec<u8>> {
        let mut sent = self.advance(delay);
        let _ = self.tunnel.handle_input(self.now, datagram);
        self.drain(&mut sent);
        sent
    }

    /// What the constructor queued.
    pub fn initial(&mut self) -> Vec<Vec<u8>> {
        let mut sent = Vec::new();
        self.drain(&mut sent);
        sent
    }

    fn drain(&mut self, sent: &mut Vec<Vec<u8>>) {
        loop {
            let mut out = Vec::new();
            while self.tunnel.poll_transmit(&mut out) {
                let (h, r) = Header::parse(&out).expect("we send headers that parse");
                assert_eq!(h.kind, Kind::Control);
                let body = &out[r];
                if !body.is_empty() {
                    if let Err(e) = Message::parse(body, self.secret.as_deref()) {
                        panic!("we sent a message that does not parse: {e}");
                    }
                }
                sent.push(out.clone());
            }
            let Some(e) = self.tunnel.poll_event() else {
                break;
            };
            assert!(!self.down, "an event after Down: {e:?}");
            self.on_event(e);
        }
        assert!(
            self.tunnel.sessions().count() <= self.max_sessions,
            "max_sessions"
        );
    }

    fn on_event(&mut self, e: TunnelEvent) {
        let now = self.now;
        match e {
            TunnelEvent::Down { why } => {
                let _ = why.to_string();
                self.down = true;
            }
            TunnelEvent::Up { .. } => {
                assert!(!self.up, "Up twice");
                self.up = true;
                if self.open && self.tunnel.state() == TunnelState::Established {
                    let _ = self.tunnel.open_session(now, &CallParams::default());
                }
            }
            TunnelEvent::SessionRequested { session_id, .. } => {
                assert!(self.up);
                if self.accept {
                    let _ = self.tunnel.accept_session(now, session_id);
                } else {
                    let _ = self.tunnel.refuse_session(
                        now,
                        session_id,
                        CdnResult::NoFacilitiesTemporary,
                        None,
                    );
                }
            }
            TunnelEvent::SessionUp { session_id, .. } => {
                assert!(self.up);
                let _ = self.tunnel.set_link_info(now, session_id, 0, 0);
                let _ = self
                    .tunnel
                    .wan_error_notify(now, session_id, Default::default());
                let mut buf = [0u8; 16];
                let _ = self.tunnel.encapsulate(session_id, &mut buf, 12..16);
            }
            TunnelEvent::SessionDown { why, .. } => {
                let _ = why.to_string();
            }
            TunnelEvent::SetLinkInfo { .. } | TunnelEvent::WanErrorNotify { .. } => {}
        }
    }

    /// Lets every timer run out: the tunnel must end closed, with one Down
    /// if it ever started.
    pub fn finish(mut self) {
        let mut sent = Vec::new();
        for _ in 0..100_000 {
            match self.tunnel.poll_timeout() {
                Some(t) => {
                    self.now = self.now.max(t);
                    self.tunnel.handle_timeout(self.now);
                    self.drain(&mut sent);
                    sent.clear();
                }
                None => break,
            }
        }
        assert!(
            self.tunnel.is_closed(),
            "every timer ran out and the tunnel is {}",
            self.tunnel.state()
        );
        assert!(self.down, "a closed tunnel said Down");
        // After Closed, nothing.
        self.tunnel
            .stop(self.now, StopCcnResult::GeneralRequest, None);
        let mut out = Vec::new();
        assert!(!self.tunnel.poll_transmit(&mut out));
        assert_eq!(self.tunnel.poll_event(), None);
    }
}

/// Milliseconds per delay unit of a record.
pub const DELAY_UNIT_MS: u64 = 50;

/// One `l2tp_control` input: a configuration octet ([`target_config`]),
/// then records of a delay octet (in 50 ms units), a big-endian 16-bit
/// length and that many octets: the peer's datagrams (a short last record
/// is taken as it is; an empty one only lets time pass).
///
/// Checks: no panic; everything the engine sends parses (with its
/// secret); no event after Down; Up once; at most `max_sessions` sessions;
/// a fired timer re-arms in the future; with every timer run out the
/// tunnel is closed and said Down.
pub fn l2tp_control(data: &[u8]) {
    let Some((&config, mut rest)) = data.split_first() else {
        return;
    };
    let mut h = ControlHarness::new(config, Instant::now());
    let _ = h.initial();
    while !rest.is_empty() {
        let delay = Duration::from_millis(u64::from(rest[0]) * DELAY_UNIT_MS);
        rest = &rest[1..];
        let n = if rest.len() >= 2 {
            let n = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            rest = &rest[2..];
            n.min(rest.len())
        } else {
            rest.len()
        };
        let (datagram, after) = rest.split_at(n);
        rest = after;
        let _ = h.step(delay, datagram);
    }
    h.finish();
}

/// A seed for `l2tp_control`: the target (configuration `config`) talks to
/// a real peer engine (the other role and the other end, the same secret
/// when `config` has one), which opens a session when it is the LAC, and
/// stops the tunnel after `rounds` rounds; the peer's datagrams are the
/// records. Replaying the seed replays the conversation.
pub fn control_seed(config: u8, rounds: usize) -> Vec<u8> {
    let t0 = Instant::now();
    let mut h = ControlHarness::new(config, t0);
    let (target, initiator) = target_config(config);
    let role = match target.role {
        Role::Lac => Role::Lns,
        Role::Lns => Role::Lac,
    };
    let mut pc = TunnelConfig::new(role);
    pc.secret = target.secret.clone();
    pc.hide_avps = target.hide_avps;
    pc.host_name = "peer".into();
    let random = seeded_random(99);
    let mut peer = if initiator {
        Tunnel::accept(pc, 0x0707, t0, random)
    } else {
        Tunnel::connect(pc, 0x0707, t0, random)
    };
    let mut now = t0;
    let mut seed = vec![config];
    let mut to_peer = h.initial();
    let delay_units = 4u8;
    for round in 0..rounds {
        now += Duration::from_millis(u64::from(delay_units) * DELAY_UNIT_MS);
        for d in to_peer.drain(..) {
            let _ = peer.handle_input(now, &d);
        }
        if peer.poll_timeout().is_some_and(|t| t <= now) {
            peer.handle_timeout(now);
        }
        while let Some(e) = peer.poll_event() {
            match e {
                TunnelEvent::Up { .. } if role == Role::Lac => {
                    let _ = peer.open_session(now, &CallParams::default());
                }
                TunnelEvent::SessionRequested { session_id, .. } => {
                    let _ = peer.accept_session(now, session_id);
                }
                _ => {}
            }
        }
        if round + 1 == rounds {
            peer.stop(now, StopCcnResult::GeneralRequest, None);
        }
        let mut out = Vec::new();
        let mut any = false;
        while peer.poll_transmit(&mut out) {
            any = true;
            seed.push(delay_units);
            seed.extend_from_slice(&(out.len() as u16).to_be_bytes());
            seed.extend_from_slice(&out);
            to_peer.extend(h.step(
                Duration::from_millis(u64::from(delay_units) * DELAY_UNIT_MS),
                &out,
            ));
        }
        if !any {
            seed.push(delay_units);
            seed.extend_from_slice(&[0, 0]);
            to_peer.extend(h.step(
                Duration::from_millis(u64::from(delay_units) * DELAY_UNIT_MS),
                &[],
            ));
        }
    }
    h.finish();
    seed
}
