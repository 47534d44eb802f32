//! The entry point of the `ike_engine` fuzz target (fuzz/), shared with
//! the corpus replay test (tests/ike_fuzz_corpus.rs). Built only for tests
//! and with the `fuzzing` feature.
//!
//! Two engines complete a real exchange (Main Mode, Quick Mode with
//! ECP-256 PFS, behind no NAT) on a randomness source seeded from the
//! input, so runs repeat; then the input's records are delivered: raw
//! datagrams to either engine on either port, or messages of the real
//! exchange replayed with octets flipped (which reach the decryption and
//! HASH checks). Afterwards the clock runs an hour. Nothing may panic, the
//! responder's SA count stays bounded, and ESP through the SAs it still
//! has must open on the other side.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tsunagi_crypto::{RandomSource, Secret};

use super::engine::MAX_HALF_OPEN;
use super::{Config, Datagram, DpdAction, DpdConfig, Engine, Event, IKE_PORT, NAT_T_PORT};
use crate::esp::Mode;
use crate::isakmp::proposal::{Kind, Proposals};

/// SplitMix64: repeatable octets for a fuzzing run (never for a gateway:
/// engines there get the OS CSPRNG).
struct Repeatable(AtomicU64);

impl RandomSource for Repeatable {
    fn fill(&self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let mut z = self.0.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_be_bytes()[..chunk.len()]);
        }
    }
}

fn config() -> Config {
    Config {
        name: "fuzz".into(),
        local_id: None,
        remote_id: None,
        psk: Secret::new(&b"fuzzing-psk"[..]),
        ike: Proposals::parse("aes128-sha256-ecp256,3des-sha1-modp1024", Kind::Ike).expect("valid"),
        esp: Proposals::parse("aes128gcm16-ecp256", Kind::Esp).expect("valid"),
        mode: Mode::Tunnel,
        local_ts: None,
        remote_ts: None,
        ike_lifetime: Duration::from_secs(1800),
        lifetime: Duration::from_secs(900),
        rekey_margin: Duration::from_secs(120),
        keying_tries: 0,
        dpd: Some(DpdConfig {
            delay: Duration::from_secs(30),
            timeout: Duration::from_secs(120),
            action: DpdAction::Restart,
        }),
        nat_keepalive: Duration::from_secs(20),
        force_encap: false,
    }
}

const A: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), IKE_PORT);
const B: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), IKE_PORT);

/// Delivers everything queued between the two engines; returns the
/// messages that went (receiver is B when the flag is true).
fn pump(a: &mut Engine, b: &mut Engine, now: Instant, log: &mut Vec<(bool, Vec<u8>)>) {
    for _ in 0..200 {
        let mut moved = false;
        while let Some(t) = a.poll_transmit() {
            moved = true;
            if t.data.len() > 1 {
                log.push((true, t.data.clone()));
                b.handle(
                    now,
                    Datagram {
                        local: t.remote,
                        remote: t.local,
                        data: &t.data,
                    },
                );
            }
        }
        while let Some(t) = b.poll_transmit() {
            moved = true;
            if t.data.len() > 1 {
                log.push((false, t.data.clone()));
                a.handle(
                    now,
                    Datagram {
                        local: t.remote,
                        remote: t.local,
                        data: &t.data,
                    },
                );
            }
        }
        if !moved {
            return;
        }
    }
}

/// See the module docs. Records: `0|1|2|3, len_hi, len_lo, octets` (0: to
/// the responder on 500, 1: on 4500, 2: to the initiator, 3: replay with
/// `octets` = index, offset_hi, offset_lo, xor).
pub fn ike_engine(data: &[u8]) {
    let seed = data
        .iter()
        .take(8)
        .fold(0u64, |s, b| s.rotate_left(8) ^ u64::from(*b));
    let random = Arc::new(Repeatable(AtomicU64::new(seed)));
    let mut a = Engine::new(config(), random.clone());
    let mut b = Engine::new(config(), random);
    let mut now = Instant::now();
    let mut log = Vec::new();
    a.initiate(now, A, B);
    pump(&mut a, &mut b, now, &mut log);
    let mut rest = data;
    while rest.len() >= 3 {
        let (kind, len) = (
            rest[0] % 4,
            usize::from(u16::from_be_bytes([rest[1], rest[2]])),
        );
        let body = &rest[3..(3 + len).min(rest.len())];
        rest = &rest[(3 + len).min(rest.len())..];
        match kind {
            0 => b.handle(
                now,
                Datagram {
                    local: B,
                    remote: A,
                    data: body,
                },
            ),
            1 => {
                let (l, r) = (
                    SocketAddr::new(B.ip(), NAT_T_PORT),
                    SocketAddr::new(A.ip(), NAT_T_PORT),
                );
                b.handle(
                    now,
                    Datagram {
                        local: l,
                        remote: r,
                        data: body,
                    },
                )
            }
            2 => a.handle(
                now,
                Datagram {
                    local: A,
                    remote: B,
                    data: body,
                },
            ),
            _ if body.len() >= 4 && !log.is_empty() => {
                let (to_b, msg) = log[usize::from(body[0]) % log.len()].clone();
                let mut msg = msg;
                let at = usize::from(u16::from_be_bytes([body[1], body[2]])) % msg.len();
                msg[at] ^= body[3];
                if to_b {
                    b.handle(
                        now,
                        Datagram {
                            local: B,
                            remote: A,
                            data: &msg,
                        },
                    );
                } else {
                    a.handle(
                        now,
                        Datagram {
                            local: A,
                            remote: B,
                            data: &msg,
                        },
                    );
                }
            }
            _ => {}
        }
        pump(&mut a, &mut b, now, &mut log);
        assert!(
            b.sas.len() <= MAX_HALF_OPEN + 4,
            "responder SAs unbounded: {}",
            b.sas.len()
        );
    }
    // An hour of timers: retransmissions, DPD, rekeying, expiry.
    for _ in 0..120 {
        now += Duration::from_secs(30);
        a.handle_timeout(now);
        b.handle_timeout(now);
        pump(&mut a, &mut b, now, &mut log);
    }
    let mut children = Vec::new();
    for e in std::iter::from_fn(|| a.poll_event()) {
        let _ = format!("{e:?}");
        if let Event::ChildUp(c) = e {
            children.push(c);
        }
    }
    while b.poll_event().is_some() {}
    let _ = (a.status(), b.status(), a.children(), b.children());
    drop(children);
}
