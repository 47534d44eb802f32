//! One call's data path bookkeeping (RFC 2637 sections 4.2 to 4.4): the
//! Sequence Numbers we send, the Acknowledgment Numbers we owe and send, what
//! to do with each packet that arrives, and the peer's receive window.
//!
//! A [`CallWindow`] per call, sans-IO: [`CallWindow::header`] gives the GRE
//! header for the next data packet (with a piggybacked acknowledgement when
//! one is owed), [`CallWindow::receive`] says what to do with an arriving
//! packet, [`CallWindow::poll_ack`] gives an acknowledgement-only packet when
//! one is due and [`CallWindow::poll_timeout`] when that will be.
//!
//! # Decisions where RFC 2637 leaves a choice
//!
//! **Packets out of order** (section 4.3). A packet ahead of the next
//! expected one is delivered at once: the gap is a loss, which PPP tolerates
//! ("PPP does properly deal with the loss of packets, but not with
//! reordering"), and the RFC's own example acknowledges the packet that
//! came early. A packet behind what was already delivered is dropped
//! ("out of sequence packets ... MUST be silently discarded, or they may be
//! reordered by the receiver"): reordering would need a queue and a timer,
//! and by the time the late packet comes PPP has moved on (MPPE's coherency
//! count, for one, cannot go back). A second copy of a packet is dropped as
//! a duplicate ("A robust implementation will silently discard duplicate
//! GRE packets"). The Linux kernel's pptp module does the same: deliver
//! what is ahead, drop what is behind. Every outcome is counted
//! ([`WindowCounters`]); a 64-packet bitmap tells a duplicate from a late
//! packet that filled a gap.
//!
//! Sequence numbers are compared in 32-bit serial arithmetic (RFC 1982): a
//! number up to 2^31 - 1 after the highest one delivered is ahead, one
//! exactly 2^31 away is taken as behind. The first packet received is
//! delivered whatever its number (peers start at 0, as section 4.1 says,
//! or at 1, as the Linux kernel and pptp-linux do).
//!
//! **Acknowledgements without data** (sections 4.2 and 4.2.5). An owed
//! acknowledgement rides on our next data packet. When none goes out, an
//! acknowledgement-only packet is due [`ACK_DELAY`] (100 ms) after the first
//! unacknowledged packet arrived, and at once when half our receive window
//! is unacknowledged. Half the window is also the window a section 4.2.1
//! sender starts with, so a sender that honours the window is never left
//! waiting for an acknowledgement. 100 ms is like TCP's delayed ACK (RFC
//! 1122 section 4.2.3.2 allows up to 500 ms, Linux waits 40 to 200 ms):
//! long enough for the reply traffic of a request/response exchange to carry
//! the acknowledgement, short against the one second of transit delay
//! section 3.2.1 budgets, and it costs at most ten small packets a second on
//! a one-way flow. pptp-linux waits 500 ms for a single packet and not at all
//! for more; the Linux kernel module never sends acknowledgements without
//! data.
//!
//! **The peer's receive window** (section 4.2). We count the packets sent
//! and not yet acknowledged, but never stop sending at the window: the data
//! goes out and [`WindowCounters::window_exceeded`] counts it. The peers in
//! the field acknowledge lazily or not at all: the Linux kernel module
//! (behind accel-ppp and pptpd's in-kernel mode) acknowledges only on its
//! own data packets, so a one-way flow towards it would stall for good once
//! the window filled; and neither it nor pptp-linux enforces a window on
//! its own sending. Nothing is retransmitted in PPTP (section 4.1), so
//! holding data back gains nothing that dropping it at the receiver (section
//! 4.2.4) does not; the count shows an operator a peer that acknowledges
//! too slowly. Section 4.4's adaptive time-out, which only shrinks that
//! window, is left out for the same reason.

use std::time::{Duration, Instant};

use crate::gre::GreHeader;

/// How long an owed acknowledgement waits for a data packet to ride on
/// before it goes out alone (see the module docs).
pub const ACK_DELAY: Duration = Duration::from_millis(100);

/// The Sequence Number of the first data packet of a call: "The sequence
/// number for each user session is set to zero at session startup" (RFC
/// 2637 section 4.1).
pub const FIRST_SEQUENCE_NUMBER: u32 = 0;

/// Packets behind the highest delivered one whose arrival is remembered
/// (to tell a duplicate from a late packet).
const HISTORY: u32 = 64;

/// What to do with a packet [`CallWindow::receive`] looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Hand the payload to PPP. `lost`: sequence numbers skipped before this
    /// one (0 when it is the next expected packet).
    Deliver {
        /// Packets between the last delivered one and this one.
        lost: u32,
    },
    /// A copy of a packet already received: drop it.
    Duplicate,
    /// Behind what was already delivered (out of order, section 4.3): drop
    /// it.
    Late,
    /// An acknowledgement without payload (S clear): nothing to deliver.
    AckOnly,
}

/// What a [`CallWindow`] counted. Each packet passed to
/// [`CallWindow::receive`] is exactly one of delivered, duplicate, late or
/// ack-only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowCounters {
    /// Data packets sent ([`CallWindow::header`] calls).
    pub sent: u64,
    /// Packets received (data and acknowledgement-only).
    pub received: u64,
    /// Data packets delivered.
    pub delivered: u64,
    /// Data packets dropped as duplicates.
    pub duplicates: u64,
    /// Data packets dropped as late (behind the highest delivered).
    pub late: u64,
    /// Sequence numbers skipped over by packets delivered early (lost or
    /// still on their way: those that come later are counted late too).
    pub lost: u64,
    /// Acknowledgement-only packets received.
    pub ack_only_received: u64,
    /// Acknowledgement-only packets sent ([`CallWindow::poll_ack`]).
    pub acks_sent: u64,
    /// Acknowledgements piggybacked on our data packets.
    pub acks_piggybacked: u64,
    /// Acknowledgment Numbers received that acknowledge something we sent.
    pub acks_received: u64,
    /// Acknowledgment Numbers for packets we never sent (ignored).
    pub bad_acks: u64,
    /// Data packets sent while the peer's receive window was full.
    pub window_exceeded: u64,
}

/// Sequencing and acknowledgements of one call (see the module docs).
#[derive(Debug, Clone)]
pub struct CallWindow {
    peer_call_id: u16,
    recv_window: u16,
    peer_recv_window: u16,
    /// Sequence Number of our next data packet.
    next_seq: u32,
    /// Sequence Number of our first data packet.
    first_seq: u32,
    /// Highest Sequence Number the peer acknowledged (`None`: none yet).
    peer_acked: Option<u32>,
    /// Highest Sequence Number received and delivered.
    highest: Option<u32>,
    /// Bit i set: `highest - i` arrived (bit 0 is `highest` itself).
    seen: u64,
    /// Sequence numbers delivered past our last acknowledgement.
    unacked: u32,
    /// When the owed acknowledgement must go out alone.
    ack_due: Option<Instant>,
    counters: WindowCounters,
}

impl CallWindow {
    /// The window of a call whose packets go to `peer_call_id` (the Call ID
    /// the peer assigned, which goes in the GRE Key), with `recv_window`
    /// packets we said we buffer and `peer_recv_window` packets the peer
    /// said it buffers (the Packet Recv. Window Size fields of the call's
    /// Request and Reply). A window of 0 is taken as 1.
    pub fn new(peer_call_id: u16, recv_window: u16, peer_recv_window: u16) -> CallWindow {
        CallWindow {
            peer_call_id,
            recv_window: recv_window.max(1),
            peer_recv_window: peer_recv_window.max(1),
            next_seq: FIRST_SEQUENCE_NUMBER,
            first_seq: FIRST_SEQUENCE_NUMBER,
            peer_acked: None,
            highest: None,
            seen: 0,
            unacked: 0,
            ack_due: None,
            counters: WindowCounters::default(),
        }
    }

    /// The same window with our first Sequence Number `first` instead of
    /// [`FIRST_SEQUENCE_NUMBER`] (the Linux kernel starts at 1; tests start
    /// near 2^32 to cross the wrap).
    pub fn starting_at(mut self, first: u32) -> CallWindow {
        if self.counters.sent == 0 {
            self.next_seq = first;
            self.first_seq = first;
        }
        self
    }

    /// The header for our next data packet of `payload_len` octets: the
    /// next Sequence Number, and the acknowledgement of the highest packet
    /// received if one is owed. Never refuses (see the module docs on the
    /// peer's window).
    pub fn header(&mut self, _now: Instant, payload_len: u16) -> GreHeader {
        if self.in_flight() >= u32::from(self.peer_recv_window) {
            self.counters.window_exceeded += 1;
        }
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        self.counters.sent += 1;
        let ack = self.take_ack();
        if ack.is_some() {
            self.counters.acks_piggybacked += 1;
        }
        GreHeader {
            call_id: self.peer_call_id,
            payload_len,
            seq: Some(seq),
            ack,
        }
    }

    /// Looks at the header of a packet that arrived for this call (the
    /// caller matched its Call ID) and says what to do with its payload.
    pub fn receive(&mut self, now: Instant, header: &GreHeader) -> Received {
        self.counters.received += 1;
        if let Some(ack) = header.ack {
            self.peer_ack(ack);
        }
        let Some(seq) = header.seq else {
            self.counters.ack_only_received += 1;
            return Received::AckOnly;
        };
        let lost = match self.highest {
            None => {
                self.seen = 1;
                self.unacked = 1;
                0
            }
            Some(highest) => {
                let ahead = seq.wrapping_sub(highest);
                if ahead == 0 {
                    self.counters.duplicates += 1;
                    return Received::Duplicate;
                }
                if ahead >= 1 << 31 {
                    let behind = highest.wrapping_sub(seq);
                    if behind < HISTORY {
                        let bit = 1u64 << behind;
                        if self.seen & bit != 0 {
                            self.counters.duplicates += 1;
                            return Received::Duplicate;
                        }
                        self.seen |= bit;
                    }
                    self.counters.late += 1;
                    return Received::Late;
                }
                self.seen = if ahead >= HISTORY {
                    1
                } else {
                    (self.seen << ahead) | 1
                };
                self.unacked = self.unacked.saturating_add(ahead);
                ahead - 1
            }
        };
        self.highest = Some(seq);
        self.counters.delivered += 1;
        self.counters.lost += u64::from(lost);
        let half = u32::from(self.recv_window / 2).max(1);
        if self.unacked >= half {
            self.ack_due = Some(now);
        } else if self.ack_due.is_none() {
            self.ack_due = Some(now + ACK_DELAY);
        }
        Received::Deliver { lost }
    }

    /// An acknowledgement-only packet (S clear, A set, no payload) when one
    /// is due at `now`.
    pub fn poll_ack(&mut self, now: Instant) -> Option<GreHeader> {
        if self.ack_due? > now {
            return None;
        }
        let ack = self.take_ack()?;
        self.counters.acks_sent += 1;
        Some(GreHeader {
            call_id: self.peer_call_id,
            payload_len: 0,
            seq: None,
            ack: Some(ack),
        })
    }

    /// When [`CallWindow::poll_ack`] will have an acknowledgement to send.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.ack_due
    }

    /// Data packets sent and not yet acknowledged by the peer.
    pub fn in_flight(&self) -> u32 {
        let acked_through = self.peer_acked.unwrap_or(self.first_seq.wrapping_sub(1));
        self.next_seq.wrapping_sub(acked_through).wrapping_sub(1)
    }

    /// Fewer packets in flight than the peer's receive window.
    pub fn peer_window_open(&self) -> bool {
        self.in_flight() < u32::from(self.peer_recv_window)
    }

    /// The highest Sequence Number delivered, if any.
    pub fn highest_received(&self) -> Option<u32> {
        self.highest
    }

    /// The Call ID our packets carry (the peer's).
    pub fn peer_call_id(&self) -> u16 {
        self.peer_call_id
    }

    /// What was counted.
    pub fn counters(&self) -> &WindowCounters {
        &self.counters
    }

    /// The owed acknowledgement, which is then no longer owed.
    fn take_ack(&mut self) -> Option<u32> {
        if self.unacked == 0 {
            return None;
        }
        self.unacked = 0;
        self.ack_due = None;
        self.highest
    }

    /// An Acknowledgment Number from the peer: accepted if it acknowledges a
    /// packet we sent (serial arithmetic from the last one acknowledged).
    fn peer_ack(&mut self, ack: u32) {
        let sent = self.counters.sent > 0;
        let acked_through = self.peer_acked.unwrap_or(self.first_seq.wrapping_sub(1));
        let last_sent = self.next_seq.wrapping_sub(1);
        let advance = ack.wrapping_sub(acked_through);
        let outstanding = last_sent.wrapping_sub(acked_through);
        if !sent {
            self.counters.bad_acks += 1;
        } else if advance <= outstanding {
            if advance > 0 {
                self.peer_acked = Some(ack);
            }
            self.counters.acks_received += 1;
        } else if advance >= 1 << 31 {
            // An older acknowledgement overtaken by a newer one: no news.
            self.counters.acks_received += 1;
        } else {
            self.counters.bad_acks += 1;
        }
    }
}
