//! Reliable delivery of control messages (RFC 2661 section 5.8 and
//! Appendix A), one per tunnel, sans-IO.
//!
//! - Every control message but a ZLB takes the next Ns (16 bits, wrapping);
//!   Nr says which Ns we expect next, and so acknowledges everything before
//!   it. A message that is acknowledged leaves the queue.
//! - Piggybacking: every message we send carries the current Nr. When
//!   nothing goes out within [`ReliableConfig::ack_delay`] after a message
//!   arrived, a ZLB (a header without AVPs, Ns unchanged) acknowledges it.
//! - Duplicates (Ns before the one we expect) are acknowledged at once with
//!   a ZLB and dropped: "the peer's acknowledgement was lost" (Appendix B.2).
//! - Messages ahead of the expected one, within our Receive Window Size,
//!   are kept (at most [`MAX_OUT_OF_ORDER`]) and delivered when the gap
//!   fills; beyond that they are dropped and the peer retransmits them.
//! - The peer's Receive Window Size bounds the messages in flight
//!   (section 5.8: "the peer MUST NOT send more than ... without
//!   acknowledgment"), and within it Appendix A's congestion window: it
//!   starts at 1, grows by one per acknowledged message up to the slow-start
//!   threshold (the peer's window at first), then by one per window's worth
//!   of acknowledgements; a retransmission halves the threshold and drops
//!   the window back to 1.
//! - Retransmission (section 5.8): the oldest unacknowledged message goes
//!   again after [`ReliableConfig::initial_timeout`] (1 s), the time
//!   doubling at each try up to [`ReliableConfig::max_timeout`] (8 s, "at
//!   least 8 seconds" is the RFC's cap); after
//!   [`ReliableConfig::max_retries`] retransmissions (5) without an
//!   acknowledgement the control connection is given up. After a
//!   retransmission the messages after the oldest go again as the window
//!   opens (go-back-N: the peer keeps or drops them as duplicates).
//! - The queue of messages waiting or in flight is bounded
//!   ([`ReliableConfig::max_queue`]): [`Reliable::queue`] says when it is
//!   full.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::header::{Header, CONTROL_HEADER_LEN};

/// Out-of-order messages kept at most, whatever our window.
pub const MAX_OUT_OF_ORDER: usize = 32;

/// Timers and bounds of reliable delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReliableConfig {
    /// First retransmission timeout (section 5.8 recommends 1 s).
    pub initial_timeout: Duration,
    /// Cap of the doubling timeout (the RFC: at least 8 s).
    pub max_timeout: Duration,
    /// Retransmissions before giving up (the RFC recommends 5).
    pub max_retries: u32,
    /// How long an acknowledgement may wait for a message to ride on before
    /// a ZLB carries it.
    pub ack_delay: Duration,
    /// Our Receive Window Size (what we advertise; bounds the out-of-order
    /// messages we keep).
    pub receive_window: u16,
    /// Messages waiting or in flight at most.
    pub max_queue: usize,
}

impl Default for ReliableConfig {
    fn default() -> Self {
        ReliableConfig {
            initial_timeout: Duration::from_secs(1),
            max_timeout: Duration::from_secs(8),
            max_retries: 5,
            ack_delay: Duration::from_millis(100),
            receive_window: 16,
            max_queue: 256,
        }
    }
}

/// `a` comes before `b` in 16-bit serial arithmetic.
pub fn seq_before(a: u16, b: u16) -> bool {
    a != b && b.wrapping_sub(a) < 0x8000
}

#[derive(Debug, Clone)]
struct Outgoing {
    ns: u16,
    tunnel_id: u16,
    session_id: u16,
    body: Vec<u8>,
    transmitted: bool,
}

/// A message delivered in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The Session ID of its header.
    pub session_id: u16,
    /// Its Ns.
    pub ns: u16,
    /// The body (AVPs).
    pub body: Vec<u8>,
}

/// What became of a received control datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// A ZLB: only its Nr counted.
    Zlb,
    /// In order: delivered, with this many buffered ones after it.
    InOrder {
        /// Buffered messages that followed it out.
        released: usize,
    },
    /// Already delivered: acknowledged again and dropped.
    Duplicate,
    /// Ahead of the expected Ns, kept for later.
    Buffered,
    /// Ahead beyond our window or our buffer: dropped.
    OutOfWindow,
}

/// The queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{queued} control messages are waiting or in flight already")]
pub struct QueueFull {
    /// Messages queued.
    pub queued: usize,
}

/// The oldest message was retransmitted `max_retries` times without an
/// acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetriesExhausted {
    /// Its Ns.
    pub ns: u16,
    /// Its Session ID.
    pub session_id: u16,
    /// The first two octets of its Message Type AVP value (the engine names
    /// the message).
    pub message_type: Option<u16>,
}

/// Counters of reliable delivery.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReliableCounters {
    /// Messages sent (first transmissions).
    pub sent: u64,
    /// Retransmissions.
    pub retransmitted: u64,
    /// ZLBs sent.
    pub zlb_sent: u64,
    /// Messages received in order.
    pub received: u64,
    /// ZLBs received.
    pub zlb_received: u64,
    /// Duplicates received (acknowledged again).
    pub duplicates: u64,
    /// Messages received ahead of order and kept.
    pub buffered: u64,
    /// Messages received beyond the window (dropped).
    pub out_of_window: u64,
    /// Nr values that acknowledged messages never sent (ignored).
    pub bogus_acks: u64,
}

/// Reliable delivery for one control connection (see the module docs).
#[derive(Debug)]
pub struct Reliable {
    config: ReliableConfig,
    next_ns: u16,
    expected: u16,
    peer_window: u16,
    cwnd: u16,
    ssthresh: u16,
    ca_count: u16,
    queue: VecDeque<Outgoing>,
    /// `queue[..sent]` went out since the last retransmission timeout.
    sent: usize,
    timeout: Duration,
    retries: u32,
    retransmit_at: Option<Instant>,
    ack_at: Option<Instant>,
    out_of_order: HashMap<u16, (u16, Vec<u8>)>,
    delivered: VecDeque<Delivered>,
    counters: ReliableCounters,
    now: Instant,
}

impl Reliable {
    /// Ns and Nr 0, the peer's window 4 until it says otherwise (section
    /// 5.8: "If absent, the peer must assume a window size of 4").
    pub fn new(config: ReliableConfig, now: Instant) -> Reliable {
        Reliable {
            next_ns: 0,
            expected: 0,
            peer_window: 4,
            cwnd: 1,
            ssthresh: 4,
            ca_count: 0,
            queue: VecDeque::new(),
            sent: 0,
            timeout: config.initial_timeout,
            retries: 0,
            retransmit_at: None,
            ack_at: None,
            out_of_order: HashMap::new(),
            delivered: VecDeque::new(),
            counters: ReliableCounters::default(),
            now,
            config,
        }
    }

    /// The peer's Receive Window Size (its SCCRQ or SCCRP). 0 is taken as
    /// 1: a window that never opens would wedge the tunnel.
    pub fn set_peer_window(&mut self, window: u16) {
        self.peer_window = window.max(1);
        self.ssthresh = self.peer_window;
        self.cwnd = self.cwnd.min(self.peer_window);
    }

    /// The peer's window.
    pub fn peer_window(&self) -> u16 {
        self.peer_window
    }

    /// Appendix A's congestion window.
    pub fn congestion_window(&self) -> u16 {
        self.cwnd
    }

    /// The Ns the next new message gets.
    pub fn next_ns(&self) -> u16 {
        self.next_ns
    }

    /// The Nr we send: the Ns we expect next.
    pub fn expected(&self) -> u16 {
        self.expected
    }

    /// Messages waiting or in flight.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Messages sent and not acknowledged.
    pub fn in_flight(&self) -> usize {
        self.queue.iter().filter(|m| m.transmitted).count()
    }

    /// The counters.
    pub fn counters(&self) -> &ReliableCounters {
        &self.counters
    }

    /// The current retransmission timeout.
    pub fn retransmit_timeout(&self) -> Duration {
        self.timeout
    }

    /// Retransmissions of the oldest message so far.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Queues a message body for `tunnel_id`/`session_id` (the peer's ids,
    /// as its header carries them) and returns its Ns.
    pub fn queue(
        &mut self,
        tunnel_id: u16,
        session_id: u16,
        body: Vec<u8>,
    ) -> Result<u16, QueueFull> {
        if self.queue.len() >= self.config.max_queue {
            return Err(QueueFull {
                queued: self.queue.len(),
            });
        }
        let ns = self.next_ns;
        self.next_ns = self.next_ns.wrapping_add(1);
        self.queue.push_back(Outgoing {
            ns,
            tunnel_id,
            session_id,
            body,
            transmitted: false,
        });
        Ok(ns)
    }

    /// Asks for a ZLB now (a duplicate, or a StopCCN to acknowledge before
    /// the state goes).
    pub fn ack_now(&mut self, now: Instant) {
        self.ack_at = Some(now);
    }

    /// A control datagram from the peer: `ns`/`nr` from its header, its
    /// Session ID and body (empty for a ZLB).
    pub fn receive(
        &mut self,
        now: Instant,
        ns: u16,
        nr: u16,
        session_id: u16,
        body: &[u8],
    ) -> Received {
        self.now = now;
        self.acknowledged(now, nr);
        if body.is_empty() {
            self.counters.zlb_received += 1;
            return Received::Zlb;
        }
        if ns == self.expected {
            self.deliver(session_id, ns, body.to_vec());
            let mut released = 0;
            while let Some((sid, b)) = self.out_of_order.remove(&self.expected) {
                self.deliver(sid, self.expected, b);
                released += 1;
            }
            if self.ack_at.is_none() {
                self.ack_at = Some(now + self.config.ack_delay);
            }
            return Received::InOrder { released };
        }
        if seq_before(ns, self.expected) {
            self.counters.duplicates += 1;
            self.ack_at = Some(now);
            return Received::Duplicate;
        }
        let ahead = ns.wrapping_sub(self.expected);
        let room = usize::from(self.config.receive_window).min(MAX_OUT_OF_ORDER);
        if usize::from(ahead) < usize::from(self.config.receive_window)
            && (self.out_of_order.len() < room || self.out_of_order.contains_key(&ns))
        {
            self.out_of_order
                .entry(ns)
                .or_insert_with(|| (session_id, body.to_vec()));
            self.counters.buffered += 1;
            Received::Buffered
        } else {
            self.counters.out_of_window += 1;
            Received::OutOfWindow
        }
    }

    fn deliver(&mut self, session_id: u16, ns: u16, body: Vec<u8>) {
        self.counters.received += 1;
        self.expected = self.expected.wrapping_add(1);
        self.delivered.push_back(Delivered {
            session_id,
            ns,
            body,
        });
    }

    /// The next message delivered in order.
    pub fn poll_delivered(&mut self) -> Option<Delivered> {
        self.delivered.pop_front()
    }

    fn acknowledged(&mut self, now: Instant, nr: u16) {
        let oldest = self.queue.front().map_or(self.next_ns, |m| m.ns);
        let k = usize::from(nr.wrapping_sub(oldest));
        if k == 0 {
            return;
        }
        let transmitted = self.queue.iter().take_while(|m| m.transmitted).count();
        if k > transmitted {
            // An Nr that is old (serially before the oldest) or that
            // acknowledges what we never sent.
            if !seq_before(nr, oldest) {
                self.counters.bogus_acks += 1;
            }
            return;
        }
        for _ in 0..k {
            self.queue.pop_front();
            if self.cwnd < self.ssthresh {
                self.cwnd += 1;
            } else {
                self.ca_count += 1;
                if self.ca_count >= self.cwnd {
                    self.cwnd += 1;
                    self.ca_count = 0;
                }
            }
        }
        self.cwnd = self.cwnd.min(self.peer_window).max(1);
        self.sent = self.sent.saturating_sub(k);
        self.retries = 0;
        self.timeout = self.config.initial_timeout;
        self.retransmit_at = if self.queue.iter().any(|m| m.transmitted) {
            Some(now + self.timeout)
        } else {
            None
        };
    }

    /// Writes the next datagram to send into `out` (cleared first):
    /// a queued message the window lets out, else a ZLB that is due
    /// (`peer_tunnel_id` goes in its header). `false` when there is none.
    pub fn poll_transmit(&mut self, peer_tunnel_id: u16, out: &mut Vec<u8>) -> bool {
        let window = usize::from(self.cwnd.min(self.peer_window).max(1));
        if self.sent < self.queue.len() && self.sent < window {
            let nr = self.expected;
            let m = &mut self.queue[self.sent];
            if m.transmitted {
                self.counters.retransmitted += 1;
            } else {
                self.counters.sent += 1;
            }
            m.transmitted = true;
            write_control(out, m.tunnel_id, m.session_id, m.ns, nr, &m.body);
            self.sent += 1;
            if self.retransmit_at.is_none() {
                self.retransmit_at = Some(self.now + self.timeout);
            }
            self.ack_at = None;
            return true;
        }
        if self.ack_at.is_some_and(|t| t <= self.now) {
            self.ack_at = None;
            self.counters.zlb_sent += 1;
            write_control(out, peer_tunnel_id, 0, self.next_ns, self.expected, &[]);
            return true;
        }
        false
    }

    /// The next time [`Reliable::handle_timeout`] must run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.retransmit_at, self.ack_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Time passed: a due ZLB becomes sendable, a retransmission timeout
    /// fires. `Err` when the oldest message ran out of retries.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), RetriesExhausted> {
        self.now = now;
        if self.retransmit_at.is_some_and(|t| t <= now) {
            let Some(oldest) = self.queue.front() else {
                self.retransmit_at = None;
                return Ok(());
            };
            if self.retries >= self.config.max_retries {
                self.retransmit_at = None;
                let message_type = (oldest.body.len() >= 8)
                    .then(|| u16::from_be_bytes([oldest.body[6], oldest.body[7]]));
                return Err(RetriesExhausted {
                    ns: oldest.ns,
                    session_id: oldest.session_id,
                    message_type,
                });
            }
            self.retries += 1;
            self.timeout = (self.timeout * 2).min(self.config.max_timeout);
            self.ssthresh = (self.cwnd / 2).max(1);
            self.cwnd = 1;
            self.ca_count = 0;
            self.sent = 0;
            self.retransmit_at = Some(now + self.timeout);
        }
        Ok(())
    }

    /// Records the time of a call that may transmit (for the timers armed
    /// by [`Reliable::poll_transmit`]).
    pub fn set_now(&mut self, now: Instant) {
        self.now = now;
    }

    /// Drops the messages queued or in flight but keeps acknowledging what
    /// arrives (the peer stopped the tunnel: nothing of ours matters now).
    pub fn drop_queue(&mut self) {
        self.queue.clear();
        self.sent = 0;
        self.retransmit_at = None;
    }

    /// Drops everything queued (the tunnel is gone).
    pub fn clear(&mut self) {
        self.queue.clear();
        self.sent = 0;
        self.retransmit_at = None;
        self.ack_at = None;
        self.out_of_order.clear();
        self.delivered.clear();
    }
}

/// Writes a control datagram: the 12-octet header (T, L, S; Length) and
/// `body`, into `out` (cleared first).
pub fn write_control(
    out: &mut Vec<u8>,
    tunnel_id: u16,
    session_id: u16,
    ns: u16,
    nr: u16,
    body: &[u8],
) {
    out.clear();
    let len = CONTROL_HEADER_LEN + body.len();
    out.resize(CONTROL_HEADER_LEN, 0);
    Header::control(tunnel_id, session_id, ns, nr, len as u16).emit(out);
    out.extend_from_slice(body);
}
