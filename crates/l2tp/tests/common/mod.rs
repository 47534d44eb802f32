//! Test helpers: a seeded random source (tests only; the engines get the
//! OS CSPRNG in the daemon), and a simulated network of L2TP nodes on a
//! virtual clock with a lossy, reordering, duplicating link.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tsunagi_crypto::{Random, RandomSource};
use tsunagi_l2tp::dispatch::{Dispatch, DispatchConfig, Route};
use tsunagi_l2tp::{Input, Tunnel, TunnelConfig, TunnelEvent};

/// xorshift64*: deterministic, for tests only.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // Spread the seed first: `| 1` alone would make seeds 2n and 2n+1
        // the same stream.
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) ^ 0x2545_f491_4f6c_dd1d | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

pub struct SeededRandom(Mutex<Rng>);

impl RandomSource for SeededRandom {
    fn fill(&self, dest: &mut [u8]) {
        let mut r = self.0.lock().unwrap();
        for b in dest {
            *b = r.next() as u8;
        }
    }
}

pub fn seeded(seed: u64) -> Random {
    Arc::new(SeededRandom(Mutex::new(Rng::new(seed))))
}

/// One L2TP node: a socket address, a dispatch and its tunnels.
pub struct Node {
    pub addr: SocketAddr,
    pub config: TunnelConfig,
    pub dispatch: Dispatch,
    pub tunnels: HashMap<u16, Tunnel>,
    pub random: Random,
    pub events: Vec<(u16, TunnelEvent)>,
    /// Accept every session request.
    pub accept_sessions: bool,
    /// Data frames delivered: (tunnel, session, frame).
    pub frames: Vec<(u16, u16, Vec<u8>)>,
}

impl Node {
    pub fn new(addr: &str, config: TunnelConfig, seed: u64) -> Node {
        let random = seeded(seed);
        let secret = config.secret.clone();
        Node {
            addr: addr.parse().unwrap(),
            config,
            dispatch: Dispatch::new(
                DispatchConfig {
                    secret,
                    ..DispatchConfig::default()
                },
                random.clone(),
            ),
            tunnels: HashMap::new(),
            random,
            events: Vec::new(),
            accept_sessions: true,
            frames: Vec::new(),
        }
    }

    pub fn connect(&mut self, now: Instant, peer: SocketAddr) -> u16 {
        let id = self.dispatch.connect(peer).unwrap();
        let t = Tunnel::connect(self.config.clone(), id, now, self.random.clone());
        self.dispatch.set_tie_breaker(id, t.tie_breaker());
        self.tunnels.insert(id, t);
        id
    }

    pub fn receive(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        let id = match self.dispatch.route(from, datagram) {
            Route::Tunnel(id) => id,
            Route::New {
                local_id, discard, ..
            } => {
                if let Some(d) = discard {
                    self.tunnels.remove(&d);
                }
                let t = Tunnel::accept(self.config.clone(), local_id, now, self.random.clone());
                self.tunnels.insert(local_id, t);
                local_id
            }
            Route::Discard { local_id } => {
                self.tunnels.remove(&local_id);
                return;
            }
            Route::Dropped(_) => return,
        };
        let Some(t) = self.tunnels.get_mut(&id) else {
            return;
        };
        if let Input::Data {
            session_id,
            payload,
        } = t.handle_input(now, datagram)
        {
            self.frames
                .push((id, session_id, datagram[payload].to_vec()));
        }
    }

    /// Drains events (acting on them) and transmits; returns datagrams
    /// to send: (to, bytes).
    pub fn drain(&mut self, now: Instant) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut out = Vec::new();
        let ids: Vec<u16> = self.tunnels.keys().copied().collect();
        for id in ids {
            loop {
                let t = self.tunnels.get_mut(&id).unwrap();
                let Some(e) = t.poll_event() else { break };
                match &e {
                    TunnelEvent::SessionRequested { session_id, .. } if self.accept_sessions => {
                        t.accept_session(now, *session_id).unwrap();
                    }
                    TunnelEvent::Up { .. } => self.dispatch.established(id),
                    _ => {}
                }
                self.events.push((id, e));
            }
            let peer = self.dispatch.peer(id);
            let t = self.tunnels.get_mut(&id).unwrap();
            let mut buf = Vec::new();
            while t.poll_transmit(&mut buf) {
                if let Some(p) = peer {
                    out.push((p, buf.clone()));
                }
            }
            if t.is_closed() {
                self.tunnels.remove(&id);
                self.dispatch.remove(id);
            }
        }
        out
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.tunnels.values().filter_map(|t| t.poll_timeout()).min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        for t in self.tunnels.values_mut() {
            if t.poll_timeout().is_some_and(|d| d <= now) {
                t.handle_timeout(now);
            }
        }
    }

    pub fn count(&self, f: impl Fn(&TunnelEvent) -> bool) -> usize {
        self.events.iter().filter(|(_, e)| f(e)).count()
    }
}

/// Link faults, in percent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    pub loss: u64,
    pub duplicate: u64,
    /// Extra delay up to this many ms (reorders).
    pub jitter_ms: u64,
}

pub struct Net {
    pub now: Instant,
    pub nodes: Vec<Node>,
    pub faults: Faults,
    pub rng: Rng,
    /// (deliver at, from, to node index, bytes)
    pub wire: Vec<(Instant, SocketAddr, usize, Vec<u8>)>,
    pub sent: u64,
    pub lost: u64,
}

impl Net {
    pub fn new(nodes: Vec<Node>, faults: Faults, seed: u64) -> Net {
        Net {
            now: Instant::now(),
            nodes,
            faults,
            rng: Rng::new(seed),
            wire: Vec::new(),
            sent: 0,
            lost: 0,
        }
    }

    fn index(&self, addr: SocketAddr) -> Option<usize> {
        self.nodes.iter().position(|n| n.addr == addr)
    }

    /// Drains every node and puts what they send on the wire.
    pub fn flush(&mut self) {
        for i in 0..self.nodes.len() {
            let from = self.nodes[i].addr;
            let out = self.nodes[i].drain(self.now);
            for (to, bytes) in out {
                let Some(j) = self.index(to) else { continue };
                self.sent += 1;
                if self.rng.chance(self.faults.loss) {
                    self.lost += 1;
                    continue;
                }
                let copies = if self.rng.chance(self.faults.duplicate) {
                    2
                } else {
                    1
                };
                for _ in 0..copies {
                    let delay = 5 + self.rng.below(self.faults.jitter_ms + 1);
                    self.wire.push((
                        self.now + Duration::from_millis(delay),
                        from,
                        j,
                        bytes.clone(),
                    ));
                }
            }
        }
    }

    /// Runs the network for `d` of virtual time.
    pub fn run(&mut self, d: Duration) {
        let end = self.now + d;
        self.flush();
        loop {
            let next_wire = self.wire.iter().map(|w| w.0).min();
            let next_timer = self.nodes.iter().filter_map(|n| n.poll_timeout()).min();
            let next = match (next_wire, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => break,
                },
            };
            if next > end {
                break;
            }
            self.now = self.now.max(next);
            let now = self.now;
            let (due, rest): (Vec<_>, Vec<_>) = self.wire.drain(..).partition(|w| w.0 <= now);
            self.wire = rest;
            for (_, from, j, bytes) in due {
                self.nodes[j].receive(now, from, &bytes);
            }
            for n in &mut self.nodes {
                n.handle_timeout(now);
            }
            self.flush();
        }
        self.now = end;
    }
}
