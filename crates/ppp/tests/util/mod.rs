//! Test helpers: a `Pair` of links on a virtual clock with a seeded lossy
//! pipe between them (as quinn-proto's `Pair` and smoltcp's netsim), and
//! readers for the pppd vectors.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use tsunagi_ppp::hdlc::Decoder;
use tsunagi_ppp::rng::Rng;
use tsunagi_ppp::stream::StreamLink;
use tsunagi_ppp::{Event, IpVersion, Link, LinkConfig};

/// One side of a pair with what it produced.
pub struct Side {
    pub link: StreamLink,
    pub events: Vec<Event>,
    pub received: Vec<(IpVersion, Vec<u8>)>,
    /// Frames (protocol, info) this side sent, decoded, for inspection.
    pub sent_frames: Vec<(u16, Vec<u8>)>,
    sniffer: Decoder,
    /// When false, everything this side sends is lost (a silent peer).
    pub transmit: bool,
}

impl Side {
    fn new(link: StreamLink) -> Side {
        Side {
            link,
            events: Vec::new(),
            received: Vec::new(),
            sent_frames: Vec::new(),
            sniffer: lax_decoder(),
            transmit: true,
        }
    }

    pub fn drain_events(&mut self) {
        while let Some(e) = self.link.poll_event() {
            self.events.push(e);
        }
    }

    pub fn has_event(&self, f: impl Fn(&Event) -> bool) -> bool {
        self.events.iter().any(f)
    }
}

/// Two links joined by a pipe that loses whole frames with probability
/// `loss` (deterministic from `seed`).
pub struct Pair {
    pub a: Side,
    pub b: Side,
    pub start: Instant,
    pub now: Instant,
    loss_per_mille: u64,
    rng: Rng,
    pub dropped: u64,
}

impl Pair {
    pub fn new(a: LinkConfig, b: LinkConfig, seed_a: u64, seed_b: u64) -> Pair {
        init_logs();
        let start = Instant::now();
        Pair {
            a: Side::new(tsunagi_ppp::stream::StreamLink::new(Link::new(
                a,
                seed_a,
                tsunagi_crypto::OsRandom::handle(),
            ))),
            b: Side::new(tsunagi_ppp::stream::StreamLink::new(Link::new(
                b,
                seed_b,
                tsunagi_crypto::OsRandom::handle(),
            ))),
            start,
            now: start,
            loss_per_mille: 0,
            rng: Rng::new(0x5eed),
            dropped: 0,
        }
    }

    pub fn set_loss(&mut self, per_mille: u64, seed: u64) {
        self.loss_per_mille = per_mille;
        self.rng = Rng::new(seed);
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    pub fn start_both(&mut self) {
        let now = self.now;
        self.a.link.start(now);
        self.b.link.start(now);
    }

    /// Moves bytes both ways until nothing is in flight. Returns whether
    /// anything moved.
    pub fn exchange(&mut self) -> bool {
        let mut moved = false;
        for _ in 0..1000 {
            let mut any = false;
            for dir in 0..2 {
                let (from, to) = if dir == 0 {
                    (&mut self.a, &mut self.b)
                } else {
                    (&mut self.b, &mut self.a)
                };
                let mut bytes = Vec::new();
                from.link.poll_transmit(&mut bytes);
                from.drain_events();
                if bytes.is_empty() {
                    continue;
                }
                any = true;
                let mut sent = Vec::new();
                from.sniffer.push(&bytes, &mut |f| {
                    if let Ok(f) = f {
                        sent.push((f.protocol, f.info.to_vec()));
                    }
                });
                from.sent_frames.extend(sent);
                if !from.transmit {
                    continue;
                }
                let kept = lossy(
                    &bytes,
                    self.loss_per_mille,
                    &mut self.rng,
                    &mut self.dropped,
                );
                let now = self.now;
                let mut received = Vec::new();
                to.link
                    .handle_input(now, &kept, &mut |v, p| received.push((v, p.to_vec())));
                to.received.extend(received);
                to.drain_events();
            }
            if !any {
                break;
            }
            moved = true;
        }
        moved
    }

    /// Exchanges, then advances the clock to the next deadline and fires it.
    pub fn step(&mut self) {
        self.exchange();
        let next = [self.a.link.poll_timeout(), self.b.link.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        if let Some(next) = next {
            if next > self.now {
                self.now = next;
            }
            let now = self.now;
            if self.a.link.poll_timeout().is_some_and(|d| d <= now) {
                self.a.link.handle_timeout(now);
            }
            if self.b.link.poll_timeout().is_some_and(|d| d <= now) {
                self.b.link.handle_timeout(now);
            }
        } else {
            self.now += Duration::from_millis(100);
        }
        self.exchange();
    }

    /// Steps until `done` or until `limit` of virtual time passed.
    pub fn drive_until(&mut self, limit: Duration, mut done: impl FnMut(&Pair) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.step();
        }
        done(self)
    }

    /// Delivers bytes one side produced to the other, through the lossy
    /// pipe.
    pub fn deliver_bytes(&mut self, from_a: bool, bytes: &[u8]) {
        let to = if from_a { &mut self.b } else { &mut self.a };
        let kept = lossy(bytes, self.loss_per_mille, &mut self.rng, &mut self.dropped);
        let now = self.now;
        let mut received = Vec::new();
        to.link
            .handle_input(now, &kept, &mut |v, p| received.push((v, p.to_vec())));
        to.received.extend(received);
        to.drain_events();
    }

    /// Sends an IP packet from one side; true if it was framed.
    pub fn send_ip(&mut self, from_a: bool, version: IpVersion, packet: &[u8]) -> bool {
        let (from, to) = if from_a {
            (&mut self.a, &mut self.b)
        } else {
            (&mut self.b, &mut self.a)
        };
        let mut bytes = Vec::new();
        if !from.link.encapsulate(version, packet, &mut bytes) {
            return false;
        }
        let kept = lossy(
            &bytes,
            self.loss_per_mille,
            &mut self.rng,
            &mut self.dropped,
        );
        let now = self.now;
        let mut received = Vec::new();
        to.link
            .handle_input(now, &kept, &mut |v, p| received.push((v, p.to_vec())));
        to.received.extend(received);
        to.drain_events();
        true
    }
}

/// Drops each frame (flag to flag) with probability per_mille/1000,
/// keeping a flag in its place so the receiver stays in sync.
pub fn lossy(bytes: &[u8], per_mille: u64, rng: &mut Rng, dropped: &mut u64) -> Vec<u8> {
    if per_mille == 0 {
        return bytes.to_vec();
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut frame = Vec::new();
    for &b in bytes {
        if b == 0x7e {
            if !frame.is_empty() {
                if rng.next_u64() % 1000 < per_mille {
                    *dropped += 1;
                } else {
                    out.extend_from_slice(&frame);
                }
                frame.clear();
            }
            out.push(0x7e);
        } else {
            frame.push(b);
        }
    }
    out.extend_from_slice(&frame);
    out
}

/// Reads a pppd vector stream: the concatenated bytes of one direction.
pub fn read_stream(scenario: &str, file: &str) -> Vec<u8> {
    let path = vectors_dir().join(scenario).join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("pppd vector {} missing: {e}", path.display()));
    let mut bytes = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let hex = line
            .split_whitespace()
            .nth(3)
            .unwrap_or_else(|| panic!("bad line in {}: {line}", path.display()));
        assert!(hex.len() % 2 == 0, "odd hex in {}", path.display());
        for i in (0..hex.len()).step_by(2) {
            bytes.push(u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"));
        }
    }
    bytes
}

/// Chunks of one direction with their socat sequence numbers.
pub fn read_chunks(scenario: &str, file: &str) -> Vec<(u32, Vec<u8>)> {
    let path = vectors_dir().join(scenario).join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("pppd vector {} missing: {e}", path.display()));
    let mut chunks = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        let seq: u32 = parts.next().unwrap().parse().unwrap();
        let hex = parts.nth(2).unwrap();
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        chunks.push((seq, bytes));
    }
    chunks
}

pub fn vectors_dir() -> std::path::PathBuf {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/pppd-2.4.9");
    assert!(
        dir.is_dir(),
        "pppd vectors not found at {} (expected ../shared/vectors beside the project root)",
        dir.display()
    );
    dir
}

/// All frames of a byte stream, decoded.
pub fn frames(bytes: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut decoder = lax_decoder();
    let mut out = Vec::new();
    decoder.push(bytes, &mut |f| {
        out.push(
            f.map(|f| (f.protocol, f.info.to_vec()))
                .expect("vector frame"),
        )
    });
    out
}

/// The `sent [...]` / `rcvd [...]` packet texts of a pppd log, in order.
pub fn pppd_log_packets(scenario: &str, file: &str, prefix: &str) -> Vec<String> {
    let path = vectors_dir().join(scenario).join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} missing: {e}", path.display()));
    text.lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .filter_map(|l| l.strip_prefix('[').and_then(|l| l.strip_suffix(']')))
        .map(str::to_string)
        .collect()
}

/// A typical two-site config: `local` and `remote` addresses given.
pub fn config(name: &str, local: [u8; 4], remote: [u8; 4]) -> LinkConfig {
    let mut c = LinkConfig {
        name: name.to_string(),
        ..LinkConfig::default()
    };
    c.ipcp.local = Some(local.into());
    c.ipcp.remote = Some(remote.into());
    c
}

/// Logs to the test output with RUST_LOG (e.g. RUST_LOG=debug).
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A decoder that keeps every control character (receive ACCM 0): after
/// LCP opens pppd sends them unescaped.
pub fn lax_decoder() -> Decoder {
    let mut d = Decoder::new(65535);
    d.set_rx_accm(0);
    d
}

/// Frames a control packet (default framing) for `protocol`.
pub fn control_frame(protocol: u16, code: u8, id: u8, data: &[u8]) -> Vec<u8> {
    let mut pkt = Vec::new();
    tsunagi_ppp::wire::ControlRepr {
        code: code.into(),
        identifier: id,
        data,
    }
    .emit(&mut pkt);
    raw_frame(protocol, &pkt)
}

/// Frames any information field (default framing, FCS correct).
pub fn raw_frame(protocol: u16, info: &[u8]) -> Vec<u8> {
    let mut framed = Vec::new();
    tsunagi_ppp::hdlc::Encoder::new().encode(protocol, info, true, &mut framed);
    framed
}
