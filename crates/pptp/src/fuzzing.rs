//! Entry points shared by the fuzz targets in `fuzz/` (`pptp_control`,
//! `pptp_gre`) and the corpus replay test (`tests/fuzz_corpus.rs`), so that
//! every corpus file is also a plain regression test.
//!
//! They panic when an invariant breaks; that is how a fuzzer notices.
//! Nothing here is meant for production use.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::connection::{
    CallState, ClearReason, Connection, ConnectionConfig, ConnectionEvent, ControlState, Role,
};
use crate::control::{ControlReader, GeneralError, OutgoingCallResult, StopReason};
use crate::gre::{ipv4_payload, GreHeader, MAX_HEADER_LEN};
use crate::window::{CallWindow, Received};

/// Our first call id in the harness (PNS: `place_call`; PAC:
/// `accept_call`), then one more per call.
pub const FIRST_CALL_ID: u16 = 0x1000;

/// xorshift64: the harness's choices (read sizes, time steps) from the
/// input, reproducibly.
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
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// How one `pptp_control` input is read: the first octet picks the
/// configuration, the rest is the peer's TCP byte stream.
///
/// Configuration octet:
/// - bit 0: our role, PAC (clear) or PNS (set);
/// - bit 1: the driver's answers: a PAC accepts call requests (set) or
///   refuses them as Busy (clear); a PNS places two calls once established
///   (set) or one (clear), and clears the first when it connects;
/// - bit 2: short timers (echo after 1 s, replies within 2 s) instead of
///   the RFC's 60 s;
/// - bits 3..=7: the largest read, in octets (0: the whole stream in one
///   read); reads and the time between them (0 to 3 s) are drawn from a
///   generator seeded with the input.
pub fn pptp_control(data: &[u8]) {
    let Some((&config, stream)) = data.split_first() else {
        return;
    };
    let role = if config & 1 == 0 {
        Role::Pac
    } else {
        Role::Pns
    };
    let eager = config & 2 != 0;
    let mut cfg = ConnectionConfig {
        max_calls: 4,
        ..ConnectionConfig::new(role)
    };
    if config & 4 != 0 {
        cfg.echo_interval = Duration::from_secs(1);
        cfg.reply_timeout = Duration::from_secs(2);
    }
    let max_read = usize::from(config >> 3);
    let t0 = Instant::now();
    let mut h = Harness {
        conn: Connection::new(cfg, t0),
        now: t0,
        sent: ControlReader::new(),
        closed: false,
        eager,
        next_call_id: FIRST_CALL_ID,
        placed: 0,
        requested: HashSet::new(),
    };
    h.drain();
    let mut rng = Rng::new(
        stream
            .iter()
            .fold(u64::from(config), |a, &b| a.rotate_left(5) ^ u64::from(b)),
    );
    let mut rest = stream;
    while !rest.is_empty() {
        let n = if max_read == 0 {
            rest.len()
        } else {
            (1 + rng.below(max_read as u64) as usize).min(rest.len())
        };
        let (chunk, after) = rest.split_at(n);
        rest = after;
        h.advance(Duration::from_millis(rng.below(3000)));
        h.conn.handle_bytes(h.now, chunk);
        h.drain();
    }
    // Let every timer run out, then the peer closes TCP.
    for _ in 0..64 {
        match h.conn.poll_timeout() {
            Some(t) => {
                h.now = h.now.max(t);
                h.conn.handle_timeout(h.now);
                h.drain();
            }
            None => break,
        }
    }
    h.conn.handle_eof(h.now);
    h.drain();
    assert!(h.closed, "the connection ends with Closed");
    assert_eq!(h.conn.state(), ControlState::Closed);
    assert_eq!(h.conn.poll_timeout(), None);
    assert_eq!(h.conn.calls().count(), 0);
    assert_eq!(h.sent.finish(), Ok(()), "we sent whole messages only");
    // After Closed, nothing.
    h.conn.handle_bytes(h.now, stream);
    h.conn.handle_timeout(h.now + Duration::from_secs(3600));
    h.conn.stop(h.now, StopReason::None);
    assert_eq!(h.conn.poll_event(), None);
}

struct Harness {
    conn: Connection,
    now: Instant,
    /// Everything the connection sent, reassembled.
    sent: ControlReader,
    closed: bool,
    eager: bool,
    next_call_id: u16,
    placed: u32,
    /// PAC: peer call ids of requests not yet answered.
    requested: HashSet<u16>,
}

impl Harness {
    /// Moves the clock and fires what is due, as a driver's timer would.
    fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        while let Some(t) = self.conn.poll_timeout() {
            if t > target {
                break;
            }
            self.now = self.now.max(t);
            self.conn.handle_timeout(self.now);
            self.drain();
            if let Some(next) = self.conn.poll_timeout() {
                assert!(next > self.now, "a fired timer re-arms in the future");
            }
        }
        self.now = target;
    }

    fn drain(&mut self) {
        loop {
            let mut out = Vec::new();
            while self.conn.poll_transmit(&mut out) {}
            self.sent.push(&out);
            while let Some(m) = self.sent.pop() {
                if let Err(e) = m {
                    panic!("we sent a message that does not parse: {e}");
                }
            }
            let Some(event) = self.conn.poll_event() else {
                break;
            };
            assert!(!self.closed, "an event after Closed: {event:?}");
            self.on_event(event);
        }
        assert!(self.conn.calls().count() <= 4, "max_calls");
    }

    fn on_event(&mut self, event: ConnectionEvent) {
        let now = self.now;
        match event {
            ConnectionEvent::Closed { why } => {
                let _ = why.to_string();
                self.closed = true;
            }
            // Events tell what happened while the last octets were read;
            // the connection may have moved on since (closed, a call
            // cleared in the same read): act only on what is still true.
            ConnectionEvent::Established { .. } => {
                if self.conn.role() == Role::Pns && self.conn.state() == ControlState::Established {
                    let calls = if self.eager { 2 } else { 1 };
                    for _ in 0..calls {
                        let id = self.next_call_id;
                        self.next_call_id = self.next_call_id.wrapping_add(1);
                        self.conn
                            .place_call(now, id, id)
                            .expect("place_call when established");
                        self.placed += 1;
                    }
                }
            }
            ConnectionEvent::CallRequested { peer_call_id, .. } => {
                assert_eq!(self.conn.role(), Role::Pac);
                assert!(
                    self.requested.insert(peer_call_id),
                    "a second request with peer call id {peer_call_id} was reported"
                );
                if self.eager {
                    let id = self.next_call_id;
                    self.next_call_id = self.next_call_id.wrapping_add(1);
                    let waiting = self.conn.calls().any(|(_, peer, state)| {
                        peer == Some(peer_call_id) && state == CallState::WaitCsAns
                    });
                    self.conn.accept_call(now, peer_call_id, id);
                    if waiting {
                        assert_eq!(self.conn.call_state(id), Some(CallState::Established));
                    }
                } else {
                    self.conn.refuse_call(
                        now,
                        peer_call_id,
                        OutgoingCallResult::Busy,
                        GeneralError::None,
                    );
                }
                self.requested.remove(&peer_call_id);
            }
            ConnectionEvent::CallConnected { call_id, .. } => {
                assert_ne!(self.conn.call_state(call_id), Some(CallState::WaitReply));
                if call_id == FIRST_CALL_ID {
                    self.conn.clear_call(now, call_id, ClearReason::default());
                } else {
                    let _ = self.conn.set_link_info(now, call_id, 0xffff_ffff, 0);
                }
            }
            ConnectionEvent::CallCleared { call_id, why, .. } => {
                let _ = why.to_string();
                assert_eq!(self.conn.call_state(call_id), None);
            }
            ConnectionEvent::CallRefused { call_id, .. } => {
                assert_eq!(self.conn.call_state(call_id), None);
            }
            ConnectionEvent::CallWithdrawn { peer_call_id, .. } => {
                self.requested.remove(&peer_call_id);
            }
            ConnectionEvent::LinkInfo { .. } | ConnectionEvent::WanError { .. } => {}
        }
    }
}

/// How one `pptp_gre` input is read: the first octet picks the
/// configuration, then records, each a big-endian 16-bit length and its
/// octets (a short last record is taken as it is).
///
/// Configuration octet:
/// - bit 0: records are whole IPv4 packets (through [`ipv4_payload`]
///   first, as from a raw socket) or GRE packets;
/// - bits 1..=3: our receive window: 0, 1, 2, 3, 8, 16, 64 or 65535;
/// - bits 4..=7: milliseconds between records, times 16.
///
/// Each record goes through [`GreHeader::parse`] and, when it parses, into
/// a [`CallWindow`]; after each, the window sends a data packet (its header
/// must parse back) and any acknowledgement due. Checks: the payload lies
/// in the packet, a parsed header emits back to its octets, delivered
/// Sequence Numbers only increase (serial arithmetic), the counters add up,
/// an acknowledgement is never sent before it is due.
pub fn pptp_gre(data: &[u8]) {
    let Some((&config, mut rest)) = data.split_first() else {
        return;
    };
    let raw_ip = config & 1 != 0;
    let window = [0u16, 1, 2, 3, 8, 16, 64, 65535][usize::from((config >> 1) & 7)];
    let step = Duration::from_millis(u64::from(config >> 4) * 16);
    let t0 = Instant::now();
    let mut now = t0;
    let mut w = CallWindow::new(0x4242, window, window);
    let mut last_delivered: Option<u32> = None;
    let mut sent = 0u64;
    while !rest.is_empty() {
        let (record, after) = if rest.len() >= 2 {
            let n = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
            (&rest[2..2 + n], &rest[2 + n..])
        } else {
            (rest, &rest[rest.len()..])
        };
        rest = after;
        now += step;
        let gre = if raw_ip {
            match ipv4_payload(record) {
                Ok((_, gre)) => {
                    assert!(gre.len() <= record.len());
                    gre
                }
                Err(e) => {
                    let _ = e.to_string();
                    continue;
                }
            }
        } else {
            record
        };
        match GreHeader::parse(gre) {
            Ok((header, len)) => {
                assert_eq!(len, header.len());
                let end = len + usize::from(header.payload_len);
                assert!(end <= gre.len());
                let mut out = [0u8; MAX_HEADER_LEN];
                header.emit(&mut out);
                assert_eq!(out[..len], gre[..len], "emit(parse(x)) == x");
                let before = *w.counters();
                match w.receive(now, &header) {
                    Received::Deliver { lost } => {
                        let seq = header.seq.expect("delivered data has a sequence number");
                        if let Some(last) = last_delivered {
                            let ahead = seq.wrapping_sub(last);
                            assert!(ahead > 0 && ahead < 1 << 31, "{seq} after {last}");
                            assert_eq!(lost, ahead - 1);
                        }
                        last_delivered = Some(seq);
                    }
                    Received::AckOnly => assert!(header.seq.is_none()),
                    Received::Duplicate | Received::Late => {
                        assert!(header.seq.is_some());
                        assert_eq!(w.highest_received(), last_delivered);
                    }
                }
                assert_eq!(w.counters().received, before.received + 1);
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
        // Our side: a data packet now and then, and the acks that are due.
        if record.first().is_some_and(|b| b & 1 == 1) {
            let h = w.header(now, record.len() as u16);
            sent += 1;
            let mut buf = vec![0u8; h.len() + record.len()];
            h.emit(&mut buf);
            assert_eq!(GreHeader::parse(&buf), Ok((h, h.len())));
        }
        let due = w.poll_timeout();
        match w.poll_ack(now) {
            Some(ack) => {
                assert!(due.is_some_and(|d| d <= now), "an ack before it was due");
                assert!(ack.is_ack_only() && ack.ack.is_some());
                assert_eq!(ack.ack, last_delivered);
                let mut buf = [0u8; MAX_HEADER_LEN];
                ack.emit(&mut buf);
                assert_eq!(GreHeader::parse(&buf[..ack.len()]), Ok((ack, ack.len())));
            }
            None => assert!(
                !matches!(due, Some(d) if d <= now),
                "an ack due and not given"
            ),
        }
        if let Some(d) = w.poll_timeout() {
            assert!(d > now, "an ack left overdue");
        }
    }
    let c = w.counters();
    assert_eq!(
        c.received,
        c.delivered + c.duplicates + c.late + c.ack_only_received
    );
    assert_eq!(c.sent, sent);
}
