//! The data path PPTP's client and server share: PPP frames into and out
//! of enhanced GRE (RFC 2637 section 4.1), through one call's
//! [`CallWindow`], batched on the raw socket's [`SendBatch`].
//!
//! A frame is written once, straight into its datagram's buffer: the GRE
//! header the window gives (its length depends on whether an
//! acknowledgement rides along, so it cannot be reserved in advance), then
//! the PPP header and the information field the engine hands over
//! separately ([`tsunagi_ppp::link::Link::encapsulate_with`]).

use std::net::Ipv4Addr;
use std::time::Instant;

use tsunagi_host::gre::SendBatch;
use tsunagi_pptp::gre::GreHeader;
use tsunagi_pptp::window::{CallWindow, WindowCounters};

/// The Packet Recv. Window Size we announce (RFC 2637 sections 2.7, 2.8):
/// what Windows and pptpd announce. We never hold packets back to honour
/// it; it sets when an acknowledgement goes out without waiting.
pub const RECV_WINDOW: u16 = 64;

/// The GRE socket's receive buffer: tens of milliseconds of a busy link,
/// so that a daemon the scheduler keeps off the CPU that long loses
/// nothing. The default (`net.core.rmem_default`, 208 KiB) holds about 90
/// frames, and benches/pptp.sh saw it overflow with 20 % of the frames
/// lost at a few hundred Mbit/s.
pub const GRE_RCVBUF: usize = 4 << 20;

/// Queues one data packet of `call`: its GRE header, then `header` and
/// `info` (a PPP frame) to `dest`.
pub fn push_frame(
    batch: &mut SendBatch,
    dest: Ipv4Addr,
    call: &mut CallWindow,
    now: Instant,
    header: &[u8],
    info: &[u8],
) {
    // The engine never builds a frame beyond the peer's MRU (a u16).
    let len = u16::try_from(header.len() + info.len()).unwrap_or(u16::MAX);
    let gre = call.header(now, len);
    let slot = batch.slot(dest);
    let at = gre.len();
    slot.resize(at, 0);
    gre.emit(&mut slot[..at]);
    slot.extend_from_slice(header);
    slot.extend_from_slice(info);
}

/// Queues an acknowledgement-only packet.
pub fn push_ack(batch: &mut SendBatch, dest: Ipv4Addr, ack: &GreHeader) {
    let slot = batch.slot(dest);
    slot.resize(ack.len(), 0);
    ack.emit(slot);
}

/// A call in words, for `status`: the call ids and the GRE counters.
pub fn describe(call_id: u16, call: &CallWindow) -> String {
    let c: &WindowCounters = call.counters();
    format!(
        "pptp call {call_id} (peer call {}): gre rx {} tx {} lost {} late {} dup {} acks {}/{} in flight {}{}",
        call.peer_call_id(),
        c.delivered,
        c.sent,
        c.lost,
        c.late,
        c.duplicates,
        c.acks_sent,
        c.ack_only_received,
        call.in_flight(),
        if c.window_exceeded > 0 {
            format!(" over window {}", c.window_exceeded)
        } else {
            String::new()
        }
    )
}
