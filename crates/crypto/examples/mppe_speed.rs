//! MPPE stateless mode (RFC 3078 s7.1: a key change and a fresh RC4 per
//! packet), CPU time per packet, old data path against new, both
//! directions:
//!
//! - old: the path before arcfour.rs, kept here: the `rc4` crate, the
//!   key change with two key schedules one after the other, the packet
//!   copied and then encrypted in place, and on receive the protocol
//!   field drained off the front;
//! - serial: [`SessionKey`] (our RC4, still one packet at a time);
//! - new: [`StatelessKey`] (keys scheduled four packets ahead, keystreams
//!   made in lockstep), as `tsunagi_ppp::ccp::MppeTx`/`MppeRx` use it.
//!
//! `cargo run --release -p tsunagi-crypto --example mppe_speed`
//!
//! Prints the median of 5 rounds in ns per packet and old/new. The
//! figures move with machine load; the ratios are the point. Also prints
//! the RC4 primitives alone.

use std::hint::black_box;
use std::time::Instant;

use rc4::{KeyInit, StreamCipher};
use tsunagi_crypto::mppe::{get_new_key_from_sha, KeyStrength, SessionKey, StatelessKey};
use tsunagi_crypto::Rc4;

const START: [u8; 16] = [
    0x8b, 0x7c, 0xdc, 0x14, 0x9b, 0x99, 0x3a, 0x1b, 0xa1, 0x18, 0xcb, 0x15, 0x3f, 0x56, 0xdc, 0xcb,
];
const ENCRYPTED_FLUSHED: u16 = 0x9000;
const ROUNDS: usize = 5;
/// Packets per measurement (one coherency-count cycle, less a little).
const PACKETS: usize = 4000;

/// The session key schedule as it was, on the `rc4` crate (128-bit).
struct OldKey {
    start: Vec<u8>,
    current: Vec<u8>,
    cipher: rc4::Rc4<rc4::consts::U16>,
}

impl OldKey {
    fn new(start: &[u8; 16]) -> OldKey {
        let current = get_new_key_from_sha(start, start, 16).to_vec();
        let cipher = rc4::Rc4::new_from_slice(&current).unwrap();
        OldKey {
            start: start.to_vec(),
            current,
            cipher,
        }
    }

    fn rekey(&mut self) {
        let interim = get_new_key_from_sha(&self.start, &self.current, 16);
        let mut next = interim.to_vec();
        rc4::Rc4::<rc4::consts::U16>::new_from_slice(&interim)
            .unwrap()
            .apply_keystream(&mut next);
        self.current = next;
        self.cipher = rc4::Rc4::new_from_slice(&self.current).unwrap();
    }

    fn encrypt_into(&mut self, count: u16, protocol: u16, packet: &[u8], out: &mut Vec<u8>) {
        self.rekey();
        out.extend_from_slice(&(ENCRYPTED_FLUSHED | count).to_be_bytes());
        out.extend_from_slice(&protocol.to_be_bytes());
        out.extend_from_slice(packet);
        self.cipher.apply_keystream(&mut out[2..]);
    }

    fn decrypt_into(&mut self, data: &[u8], out: &mut Vec<u8>) -> u16 {
        self.rekey();
        out.clear();
        out.extend_from_slice(&data[2..]);
        self.cipher.apply_keystream(out);
        let protocol = u16::from_be_bytes([out[0], out[1]]);
        out.drain(..2);
        protocol
    }
}

/// Our RC4, one packet at a time.
struct SerialKey(SessionKey);

impl SerialKey {
    fn encrypt_into(&mut self, count: u16, protocol: u16, packet: &[u8], out: &mut Vec<u8>) {
        self.0.rekey();
        out.extend_from_slice(&(ENCRYPTED_FLUSHED | count).to_be_bytes());
        out.extend_from_slice(&protocol.to_be_bytes());
        out.extend_from_slice(packet);
        self.0.apply(&mut out[2..]);
    }

    fn decrypt_into(&mut self, data: &[u8], out: &mut Vec<u8>) -> u16 {
        self.0.rekey();
        out.clear();
        let mut protocol = [data[2], data[3]];
        self.0.apply(&mut protocol);
        out.extend_from_slice(&data[4..]);
        self.0.apply(out);
        u16::from_be_bytes(protocol)
    }
}

/// What `MppeTx::encrypt_into` / `MppeRx::decrypt_into` do in stateless mode.
struct NewKey(StatelessKey);

impl NewKey {
    fn encrypt_into(&mut self, count: u16, protocol: u16, packet: &[u8], out: &mut Vec<u8>) {
        out.reserve(4 + packet.len());
        out.extend_from_slice(&(ENCRYPTED_FLUSHED | count).to_be_bytes());
        let mut keystream = self.0.next_packet(1);
        keystream.extend(&protocol.to_be_bytes(), out);
        keystream.extend(packet, out);
    }

    fn decrypt_into(&mut self, data: &[u8], out: &mut Vec<u8>) -> u16 {
        out.clear();
        let mut keystream = self.0.next_packet(1);
        let mut protocol = [data[2], data[3]];
        keystream.apply(&mut protocol);
        keystream.extend(&data[4..], out);
        u16::from_be_bytes(protocol)
    }
}

trait Path {
    fn fresh() -> Self;
    fn tx(&mut self, count: u16, packet: &[u8], out: &mut Vec<u8>);
    fn rx(&mut self, data: &[u8], out: &mut Vec<u8>) -> u16;
}

macro_rules! path {
    ($t:ty, $new:expr) => {
        impl Path for $t {
            fn fresh() -> Self {
                $new
            }
            fn tx(&mut self, count: u16, packet: &[u8], out: &mut Vec<u8>) {
                self.encrypt_into(count, 0x21, packet, out)
            }
            fn rx(&mut self, data: &[u8], out: &mut Vec<u8>) -> u16 {
                self.decrypt_into(data, out)
            }
        }
    };
}

path!(OldKey, OldKey::new(&START));
path!(
    SerialKey,
    SerialKey(SessionKey::new(&START, KeyStrength::Bits128))
);
path!(
    NewKey,
    NewKey(StatelessKey::new(&START, KeyStrength::Bits128))
);

/// The packets of one workload, their lengths cycling through `lengths`.
fn packets(lengths: &[usize]) -> Vec<Vec<u8>> {
    (0..PACKETS)
        .map(|n| {
            (0..lengths[n % lengths.len()])
                .map(|i| (i * 7 + n) as u8)
                .collect()
        })
        .collect()
}

/// ns per packet to encrypt all of `packets` with a fresh `P`.
fn time_tx<P: Path>(packets: &[Vec<u8>]) -> f64 {
    let mut path = P::fresh();
    let mut out = Vec::with_capacity(2048);
    let t = Instant::now();
    for (n, p) in packets.iter().enumerate() {
        out.clear();
        path.tx((n % 4096) as u16, black_box(p), &mut out);
        black_box(&out);
    }
    t.elapsed().as_nanos() as f64 / packets.len() as f64
}

/// ns per packet to decrypt all of `wire` with a fresh `P`.
fn time_rx<P: Path>(wire: &[Vec<u8>]) -> f64 {
    let mut path = P::fresh();
    let mut out = Vec::with_capacity(2048);
    let t = Instant::now();
    for w in wire {
        black_box(path.rx(black_box(w), &mut out));
        black_box(&out);
    }
    t.elapsed().as_nanos() as f64 / wire.len() as f64
}

fn encrypt_all<P: Path>(packets: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut path = P::fresh();
    (0..packets.len())
        .map(|n| {
            let mut out = Vec::new();
            path.tx((n % 4096) as u16, &packets[n], &mut out);
            out
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn row(what: &str, old: Vec<f64>, serial: Vec<f64>, new: Vec<f64>) {
    let (o, s, n) = (median(old), median(serial), median(new));
    println!(
        "{what:<30} {o:>8.0} {s:>8.0} {n:>8.0} {:>9.2}x {:>9.2}x",
        o / s,
        o / n
    );
}

fn main() {
    println!("MPPE stateless, 128-bit, ns/packet (median of {ROUNDS} rounds of {PACKETS} packets)");
    println!(
        "{:<30} {:>8} {:>8} {:>8} {:>10} {:>10}",
        "", "old", "serial", "new", "old/serial", "old/new"
    );
    let workloads: [(&str, &[usize]); 4] = [
        ("1400 octets", &[1400]),
        ("60 octets", &[60]),
        ("1400, 60, 60, 60 (mixed)", &[1400, 60, 60, 60]),
        ("1600 octets (past the kept)", &[1600]),
    ];
    for (name, lengths) in workloads {
        let packets = packets(lengths);
        let wire = encrypt_all::<OldKey>(&packets);
        // The three paths agree before they are timed.
        assert!(wire == encrypt_all::<NewKey>(&packets));
        assert!(wire == encrypt_all::<SerialKey>(&packets));
        let (mut old, mut serial, mut new) = (vec![], vec![], vec![]);
        for _ in 0..ROUNDS {
            old.push(time_tx::<OldKey>(&packets));
            serial.push(time_tx::<SerialKey>(&packets));
            new.push(time_tx::<NewKey>(&packets));
        }
        row(&format!("tx {name}"), old, serial, new);
        let (mut old, mut serial, mut new) = (vec![], vec![], vec![]);
        for _ in 0..ROUNDS {
            old.push(time_rx::<OldKey>(&wire));
            serial.push(time_rx::<SerialKey>(&wire));
            new.push(time_rx::<NewKey>(&wire));
        }
        row(&format!("rx {name}"), old, serial, new);
    }
    primitives();
}

/// The RC4 primitives alone: key schedule (ns) and keystream (ns/octet).
fn primitives() {
    fn per<F: FnMut()>(iters: u32, mut f: F) -> f64 {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        t.elapsed().as_nanos() as f64 / f64::from(iters)
    }
    let key = START;
    let keys = [START, [1; 16], [2; 16], [3; 16]];
    let mut buf = vec![0u8; 1400];
    let mut lanes = Box::new([[0u8; 1400]; 4]);
    let (mut ksa, mut ks) = ([vec![], vec![], vec![]], [vec![], vec![], vec![]]);
    for _ in 0..ROUNDS {
        ksa[0].push(per(100_000, || {
            black_box(rc4::Rc4::<rc4::consts::U16>::new_from_slice(black_box(&key)).unwrap());
        }));
        ksa[1].push(per(100_000, || {
            black_box(Rc4::new(black_box(&key)));
        }));
        ksa[2].push(
            per(25_000, || {
                black_box(Rc4::new_many(black_box(&keys)));
            }) / 4.0,
        );
        let mut crate_rc4 = rc4::Rc4::<rc4::consts::U16>::new_from_slice(&key).unwrap();
        ks[0].push(per(10_000, || crate_rc4.apply_keystream(black_box(&mut buf))) / 1400.0);
        let mut own = Rc4::new(&key).unwrap();
        ks[1].push(per(10_000, || own.apply(black_box(&mut buf))) / 1400.0);
        let mut many = Rc4::new_many(&keys);
        ks[2].push(
            per(5_000, || {
                Rc4::keystream_many(&mut many, &mut lanes, 0, 1400);
                black_box(&lanes);
            }) / 1400.0
                / 4.0,
        );
    }
    let [a, b, c] = ksa.map(median);
    println!(
        "RC4 key schedule, ns:     rc4 crate {a:.0}, ours {b:.0}, ours 4 in lockstep {c:.0} each"
    );
    let [a, b, c] = ks.map(median);
    println!(
        "RC4 keystream, ns/octet:  rc4 crate {a:.2}, ours {b:.2}, ours 4 in lockstep {c:.2} each"
    );
}
