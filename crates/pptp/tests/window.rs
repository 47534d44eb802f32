//! One call's sequencing and acknowledgements (RFC 2637 sections 4.2-4.4):
//! in order, duplicate, late, ahead by a gap, the 2^32 wrap, ack-only
//! timing, the half-window immediate ack, the peer's window; then a seeded
//! network that loses, reorders and duplicates, with both directions
//! running.

use std::time::{Duration, Instant};

use tsunagi_pptp::gre::GreHeader;
use tsunagi_pptp::window::{CallWindow, Received, ACK_DELAY, FIRST_SEQUENCE_NUMBER};

fn data(seq: u32) -> GreHeader {
    GreHeader {
        call_id: 1,
        payload_len: 10,
        seq: Some(seq),
        ack: None,
    }
}

fn ack(n: u32) -> GreHeader {
    GreHeader {
        call_id: 1,
        payload_len: 0,
        seq: None,
        ack: Some(n),
    }
}

fn deliver(lost: u32) -> Received {
    Received::Deliver { lost }
}

#[test]
fn in_order() {
    let now = Instant::now();
    let mut w = CallWindow::new(7, 64, 64);
    for seq in 0..10 {
        assert_eq!(w.receive(now, &data(seq)), deliver(0));
    }
    assert_eq!(w.highest_received(), Some(9));
    let c = w.counters();
    assert_eq!((c.received, c.delivered, c.lost), (10, 10, 0));
}

#[test]
fn first_packet_is_taken_whatever_its_number() {
    // RFC peers start at 0, the Linux kernel and pptp-linux at 1.
    for first in [0, 1, 12345, u32::MAX] {
        let now = Instant::now();
        let mut w = CallWindow::new(7, 64, 64);
        assert_eq!(w.receive(now, &data(first)), deliver(0));
        assert_eq!(w.receive(now, &data(first.wrapping_add(1))), deliver(0));
    }
}

#[test]
fn duplicates() {
    let now = Instant::now();
    let mut w = CallWindow::new(7, 64, 64);
    assert_eq!(w.receive(now, &data(0)), deliver(0));
    assert_eq!(w.receive(now, &data(1)), deliver(0));
    assert_eq!(w.receive(now, &data(1)), Received::Duplicate);
    assert_eq!(w.receive(now, &data(2)), deliver(0));
    // An older one received before: a duplicate too (the bitmap).
    assert_eq!(w.receive(now, &data(0)), Received::Duplicate);
    assert_eq!(w.counters().duplicates, 2);
    assert_eq!(w.counters().late, 0);
}

#[test]
fn late_and_ahead() {
    // RFC 2637 section 4.3's example: 0..5 sent, 4 arrives before 3.
    let now = Instant::now();
    let mut w = CallWindow::new(7, 64, 64);
    for seq in 0..3 {
        assert_eq!(w.receive(now, &data(seq)), deliver(0));
    }
    // 4 is ahead: delivered, 3 counted as skipped; "The PAC acknowledges
    // packet 4".
    assert_eq!(w.receive(now, &data(4)), deliver(1));
    assert_eq!(w.header(now, 1).ack, Some(4));
    // 3 comes late: "it MUST not attempt to transmit it".
    assert_eq!(w.receive(now, &data(3)), Received::Late);
    // A second copy of 3 is then a duplicate.
    assert_eq!(w.receive(now, &data(3)), Received::Duplicate);
    // 5 "is acknowledged by the PAC since it has a higher sequence number".
    assert_eq!(w.receive(now, &data(5)), deliver(0));
    // A gap of 1000.
    assert_eq!(w.receive(now, &data(1006)), deliver(1000));
    // Far behind the remembered history: late.
    assert_eq!(w.receive(now, &data(10)), Received::Late);
    let c = w.counters();
    assert_eq!(c.delivered, 6);
    assert_eq!(c.late, 2);
    assert_eq!(c.duplicates, 1);
    assert_eq!(c.lost, 1001);
    assert_eq!(
        c.received,
        c.delivered + c.duplicates + c.late + c.ack_only_received
    );
}

#[test]
fn sequence_wrap() {
    let now = Instant::now();
    // Receiving across 2^32.
    let mut w = CallWindow::new(7, 64, 64);
    assert_eq!(w.receive(now, &data(u32::MAX - 1)), deliver(0));
    assert_eq!(w.receive(now, &data(u32::MAX)), deliver(0));
    assert_eq!(w.receive(now, &data(0)), deliver(0));
    assert_eq!(w.receive(now, &data(2)), deliver(1));
    assert_eq!(w.receive(now, &data(1)), Received::Late);
    assert_eq!(w.receive(now, &data(u32::MAX)), Received::Duplicate);
    assert_eq!(w.receive(now, &data(u32::MAX - 2)), Received::Late);
    // 2^31 - 1 ahead is ahead; exactly 2^31 away is taken as behind.
    assert_eq!(
        w.receive(now, &data(2u32.wrapping_add(0x8000_0000))),
        Received::Late
    );
    assert_eq!(
        w.receive(now, &data(2u32.wrapping_add(0x7fff_ffff))),
        deliver(0x7fff_fffe)
    );

    // Sending across 2^32, and the peer's acks with it.
    let mut w = CallWindow::new(7, 64, 64).starting_at(u32::MAX - 1);
    let seqs: Vec<_> = (0..4).map(|_| w.header(now, 1).seq.unwrap()).collect();
    assert_eq!(seqs, [u32::MAX - 1, u32::MAX, 0, 1]);
    assert_eq!(w.in_flight(), 4);
    assert_eq!(w.receive(now, &ack(u32::MAX)), Received::AckOnly);
    assert_eq!(w.in_flight(), 2);
    assert_eq!(w.receive(now, &ack(1)), Received::AckOnly);
    assert_eq!(w.in_flight(), 0);
    // An ack older than the last one: no news, not an error.
    w.receive(now, &ack(0));
    assert_eq!(w.in_flight(), 0);
    assert_eq!(w.counters().acks_received, 3);
    // An ack for a packet never sent.
    w.receive(now, &ack(5));
    assert_eq!(w.counters().bad_acks, 1);
    assert_eq!(w.in_flight(), 0);
}

#[test]
fn ack_only_after_the_delay() {
    let t0 = Instant::now();
    let mut w = CallWindow::new(0x55, 64, 64);
    assert_eq!(w.poll_timeout(), None);
    assert_eq!(w.poll_ack(t0), None);
    w.receive(t0, &data(0));
    w.receive(t0 + Duration::from_millis(10), &data(1));
    // Due ACK_DELAY after the first unacknowledged packet.
    assert_eq!(w.poll_timeout(), Some(t0 + ACK_DELAY));
    assert_eq!(w.poll_ack(t0 + ACK_DELAY - Duration::from_millis(1)), None);
    assert_eq!(
        w.poll_ack(t0 + ACK_DELAY),
        Some(GreHeader {
            call_id: 0x55,
            payload_len: 0,
            seq: None,
            ack: Some(1)
        })
    );
    assert_eq!(w.poll_timeout(), None);
    assert_eq!(w.poll_ack(t0 + Duration::from_secs(10)), None);
    assert_eq!(w.counters().acks_sent, 1);
    // Nothing new: the next data packet carries no ack.
    assert_eq!(w.header(t0, 5).ack, None);
    // Duplicates and late packets owe no ack.
    w.receive(t0, &data(1));
    w.receive(t0, &data(0));
    assert_eq!(w.poll_timeout(), None);
}

#[test]
fn piggybacked_ack() {
    let t0 = Instant::now();
    let mut w = CallWindow::new(0x55, 64, 64);
    w.receive(t0, &data(0));
    w.receive(t0, &data(1));
    let h = w.header(t0 + Duration::from_millis(1), 100);
    assert_eq!(
        h,
        GreHeader {
            call_id: 0x55,
            payload_len: 100,
            seq: Some(FIRST_SEQUENCE_NUMBER),
            ack: Some(1)
        }
    );
    assert_eq!(h.len(), 16);
    // The ack went with the data: no ack-only packet is owed.
    assert_eq!(w.poll_timeout(), None);
    assert_eq!(w.poll_ack(t0 + Duration::from_secs(1)), None);
    assert_eq!(w.header(t0, 100).ack, None);
    assert_eq!(w.counters().acks_piggybacked, 1);
    assert_eq!(w.counters().acks_sent, 0);
}

#[test]
fn half_window_acks_at_once() {
    let t0 = Instant::now();
    let mut w = CallWindow::new(1, 8, 64);
    for seq in 0..3 {
        w.receive(t0, &data(seq));
    }
    assert_eq!(w.poll_ack(t0), None);
    assert_eq!(w.poll_timeout(), Some(t0 + ACK_DELAY));
    // The fourth (half of 8) makes it due now.
    w.receive(t0, &data(3));
    assert_eq!(w.poll_timeout(), Some(t0));
    assert_eq!(w.poll_ack(t0).and_then(|h| h.ack), Some(3));
    // A gap counts as unacknowledged too (a sender's window counts
    // sequence numbers): 4 then 8 is five past the ack.
    w.receive(t0, &data(4));
    assert_eq!(w.poll_ack(t0), None);
    w.receive(t0, &data(8));
    assert_eq!(w.poll_ack(t0).and_then(|h| h.ack), Some(8));
    // A window of 1 (or 0) acks every packet at once.
    let mut w = CallWindow::new(1, 0, 0);
    w.receive(t0, &data(0));
    assert_eq!(w.poll_ack(t0).and_then(|h| h.ack), Some(0));
}

#[test]
fn peer_window_is_counted_not_enforced() {
    let t0 = Instant::now();
    let mut w = CallWindow::new(1, 64, 3);
    for _ in 0..5 {
        w.header(t0, 1);
    }
    assert_eq!(w.in_flight(), 5);
    assert!(!w.peer_window_open());
    // Packets 4 and 5 went out with 3 in flight or more.
    assert_eq!(w.counters().window_exceeded, 2);
    assert_eq!(w.counters().sent, 5);
    // The peer acks through 2 (piggybacked on its data).
    let h = GreHeader {
        call_id: 1,
        payload_len: 1,
        seq: Some(0),
        ack: Some(2),
    };
    assert_eq!(w.receive(t0, &h), deliver(0));
    assert_eq!(w.in_flight(), 2);
    assert!(w.peer_window_open());
}

#[test]
fn acks_before_anything_was_sent_are_ignored() {
    let t0 = Instant::now();
    let mut w = CallWindow::new(1, 64, 64);
    assert_eq!(w.receive(t0, &ack(0)), Received::AckOnly);
    assert_eq!(w.counters().bad_acks, 1);
    assert_eq!(w.in_flight(), 0);
    w.header(t0, 1);
    assert_eq!(w.in_flight(), 1);
}

/// xorshift64*, enough for a test network.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn chance(&mut self, per_mille: u64) -> bool {
        self.next() % 1000 < per_mille
    }
}

/// Packets on their way: (arrival, header).
struct Net {
    rng: Rng,
    loss: u64,
    dup: u64,
    jitter_ms: u64,
    in_flight: Vec<(Instant, GreHeader)>,
}

impl Net {
    fn send(&mut self, now: Instant, h: GreHeader) {
        if self.rng.chance(self.loss) {
            return;
        }
        let copies = if self.rng.chance(self.dup) { 2 } else { 1 };
        for _ in 0..copies {
            let delay = 5 + self.rng.next() % (self.jitter_ms + 1);
            self.in_flight.push((now + Duration::from_millis(delay), h));
        }
    }

    fn arrived(&mut self, now: Instant) -> Vec<GreHeader> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.in_flight.len() {
            if self.in_flight[i].0 <= now {
                out.push(self.in_flight.swap_remove(i).1);
            } else {
                i += 1;
            }
        }
        // swap_remove shuffles order among packets due together: more
        // reordering, which is the point.
        out
    }
}

fn simulate(seed: u64, loss: u64, dup: u64, jitter_ms: u64, first: u32) {
    let t0 = Instant::now();
    let mut a = CallWindow::new(0xb, 16, 32).starting_at(first);
    let mut b = CallWindow::new(0xa, 32, 16).starting_at(first.wrapping_mul(3));
    let mut rng = Rng(seed | 1);
    let mut ab = Net {
        rng: Rng(seed.wrapping_mul(7) | 1),
        loss,
        dup,
        jitter_ms,
        in_flight: Vec::new(),
    };
    let mut ba = Net {
        rng: Rng(seed.wrapping_mul(13) | 1),
        loss,
        dup,
        jitter_ms,
        in_flight: Vec::new(),
    };
    let mut delivered_b: Vec<u32> = Vec::new();
    let mut delivered_a: Vec<u32> = Vec::new();
    let mut sent_a = std::collections::HashSet::new();
    let mut sent_b = std::collections::HashSet::new();
    let mut now = t0;
    for tick in 0..20_000u32 {
        now += Duration::from_millis(1);
        // A sends a lot, B a little (acks mostly go alone).
        if tick < 15_000 && rng.chance(600) {
            let h = a.header(now, 100);
            sent_a.insert(h.seq.unwrap());
            ab.send(now, h);
        }
        if tick < 15_000 && rng.chance(30) {
            let h = b.header(now, 40);
            sent_b.insert(h.seq.unwrap());
            ba.send(now, h);
        }
        for h in ab.arrived(now) {
            if let Received::Deliver { .. } = b.receive(now, &h) {
                let seq = h.seq.unwrap();
                if let Some(&last) = delivered_b.last() {
                    assert!(
                        (seq.wrapping_sub(last) as i32) > 0,
                        "seed {seed}: {seq} delivered after {last}"
                    );
                }
                assert!(sent_a.contains(&seq));
                delivered_b.push(seq);
            }
        }
        for h in ba.arrived(now) {
            if let Received::Deliver { .. } = a.receive(now, &h) {
                let seq = h.seq.unwrap();
                if let Some(&last) = delivered_a.last() {
                    assert!((seq.wrapping_sub(last) as i32) > 0);
                }
                assert!(sent_b.contains(&seq));
                delivered_a.push(seq);
            }
        }
        for (w, net) in [(&mut a, &mut ab), (&mut b, &mut ba)] {
            if let Some(t) = w.poll_timeout() {
                assert!(
                    t + ACK_DELAY >= now,
                    "an ack overdue by more than ACK_DELAY"
                );
                if let Some(h) = w.poll_ack(now) {
                    assert!(h.is_ack_only());
                    net.send(now, h);
                }
            }
        }
    }
    for w in [&a, &b] {
        let c = w.counters();
        assert_eq!(
            c.received,
            c.delivered + c.duplicates + c.late + c.ack_only_received,
            "seed {seed}: {c:?}"
        );
        // The peer acknowledges only what it received: never a bad ack.
        assert_eq!(c.bad_acks, 0, "seed {seed}: {c:?}");
    }
    let cb = b.counters();
    assert_eq!(cb.delivered as usize, delivered_b.len());
    // Everything A sent was delivered, counted lost, or is in the
    // difference between first and last delivered.
    let span = delivered_b
        .last()
        .unwrap()
        .wrapping_sub(*delivered_b.first().unwrap()) as u64
        + 1;
    assert_eq!(cb.delivered + cb.lost, span, "seed {seed}: {cb:?}");
    if loss == 0 && dup == 0 && jitter_ms == 0 {
        assert_eq!(delivered_b.len(), sent_a.len());
        assert_eq!(cb.late + cb.duplicates + cb.lost, 0);
    }
    if dup > 0 {
        assert!(cb.duplicates > 0, "seed {seed}: {cb:?}");
    }
    if jitter_ms > 10 {
        assert!(cb.late > 0, "seed {seed}: {cb:?}");
    }
    // Acks flowed. On a clean network B's acknowledgements (at half its
    // window, or after ACK_DELAY) keep A inside B's window; with loss and
    // 35 ms of delay at 600 packets a second the path holds more than the
    // window, and A sends on, counting (see the module docs).
    let ca = a.counters();
    assert!(ca.acks_received > 0);
    if loss == 0 && jitter_ms == 0 {
        assert_eq!(ca.window_exceeded, 0, "seed {seed}: {ca:?}");
    }
    assert!(cb.acks_sent > 0);
}

#[test]
fn clean_network() {
    simulate(1, 0, 0, 0, 0);
}

#[test]
fn lossy_reordering_duplicating_network() {
    for seed in 1..=20u64 {
        simulate(seed, 50, 20, 30, 0);
    }
}

#[test]
fn lossy_network_across_the_wrap() {
    for seed in 100..=105u64 {
        simulate(seed, 100, 50, 20, u32::MAX - 3000);
    }
}
