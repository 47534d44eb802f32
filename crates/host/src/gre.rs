//! A raw socket for GRE (IP protocol 47), with batched reads and writes,
//! driven by tokio: the outer transport of PPTP's data channel (RFC 2637
//! section 4.1, "enhanced GRE", over RFC 1701's header).
//!
//! The socket is `socket(AF_INET, SOCK_RAW, IPPROTO_GRE)` (`raw(7)`):
//!
//! - Every datagram received is a whole IPv4 packet, IPv4 header included
//!   (RFC 791; the GRE header starts after `IHL * 4` octets, see
//!   [`Datagram::payload`]). The kernel has already checked that header.
//!   Every GRE packet this host receives is copied to every GRE socket that
//!   matches it: [`GreSocket::bind`] keeps only those sent to one local
//!   address, [`GreSocket::connect`] only those from one peer (a client only
//!   wants its server's GRE).
//! - What is sent is the GRE header and payload only: without `IP_HDRINCL`
//!   the kernel writes the IPv4 header (source address from the route or
//!   [`GreSocket::bind`]).
//!
//! # Batches
//!
//! A VPN data path must not pay one system call per packet, so reads and
//! writes go by the batch: [`GreSocket::recv_batch`] waits until the socket
//! is readable and then takes every queued datagram that fits the
//! [`RecvBatch`] with `recvmmsg(2)`; [`GreSocket::flush`] sends every
//! datagram of a [`SendBatch`] with as few `sendmmsg(2)` calls as it can
//! (one per [`MMSG_CHUNK`] datagrams). Both batches own their buffers and
//! are reused from one batch to the next: nothing is allocated per packet
//! once a batch has been used.
//!
//! `rustix` 1.1 has a safe `sendmmsg`, which [`GreSocket::flush`] uses, but
//! no `recvmmsg`: that one call is made through `libc`, in one `unsafe`
//! block over arrays on the stack (see `recvmmsg_chunk`).
//!
//! # Dropping instead of blocking
//!
//! When the kernel cannot take a datagram now (`EAGAIN`: the socket's send
//! buffer is full; `ENOBUFS`: no memory or a full device queue) the
//! datagrams not yet sent in that flush are dropped and counted
//! ([`SendBatch::dropped`]): a tunnel loses packets rather than stalling
//! every session behind one slow queue, and the protocols inside (TCP
//! above all) recover from loss.

use std::io::{self, IoSlice};
use std::mem::size_of;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use rustix::net::{
    AddressFamily, MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny, SocketFlags, SocketType,
};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// IP protocol number of GRE (IANA "Assigned Internet Protocol Numbers").
pub const IPPROTO_GRE: u8 = 47;

/// At most this many datagrams go into one `recvmmsg`/`sendmmsg` call; a
/// larger batch takes several calls. The arrays the kernel reads are on
/// the stack, so this bounds the stack used (about 6 KiB on receive).
pub const MMSG_CHUNK: usize = 64;

/// Default number of slots of a [`RecvBatch`] and [`SendBatch`].
pub const DEFAULT_SLOTS: usize = 64;

/// Default size of a [`RecvBatch`] slot: a 1500-octet PPP frame with its
/// GRE (16) and IPv4 (20, up to 60 with options) headers fits with room.
pub const DEFAULT_SLOT_SIZE: usize = 4096;

/// A [`RecvBatch::with_gro`] slot that holds any coalesced UDP datagram
/// (the kernel's GRO builds them up to 64 KiB).
pub const GRO_SLOT_SIZE: usize = 65536;

/// A raw IPv4 socket for GRE, non-blocking, registered with tokio.
///
/// All methods take `&self`: one task can receive while another sends
/// (share it in an `Arc`).
#[derive(Debug)]
pub struct GreSocket {
    fd: AsyncFd<OwnedFd>,
}

impl GreSocket {
    /// `socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
    /// IPPROTO_GRE)`, registered with the current tokio runtime. Needs
    /// CAP_NET_RAW (`EPERM` otherwise), and a runtime (an error without).
    pub fn open() -> io::Result<GreSocket> {
        GreSocket::open_protocol(IPPROTO_GRE)
    }

    /// The same socket for another IP protocol: ESP (50) when IPsec runs
    /// without NAT-T (RFC 4303 s2; the datagrams are the same shape: an
    /// IPv4 packet received, the payload alone sent).
    pub fn open_protocol(protocol: u8) -> io::Result<GreSocket> {
        let context = |op: &str, e: io::Error| {
            io::Error::new(e.kind(), format!("ip protocol {protocol}: {op}: {e}"))
        };
        let number = std::num::NonZeroU32::new(u32::from(protocol))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "ip protocol 0"))?;
        let fd = rustix::net::socket_with(
            AddressFamily::INET,
            SocketType::RAW,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            Some(rustix::net::Protocol::from_raw(number)),
        )
        .map_err(|e| context("socket(AF_INET, SOCK_RAW)", e.into()))?;
        if let Err(e) = tokio::runtime::Handle::try_current() {
            return Err(context("register with tokio", io::Error::other(e)));
        }
        // SAFETY: `fd` owns its descriptor, and `AsyncFd` owns `fd` from
        // here on; nothing closes or replaces that descriptor before the
        // `AsyncFd` is dropped.
        let fd =
            unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE | Interest::WRITABLE) }
                .map_err(|e| context("register with tokio", e.into()))?;
        Ok(GreSocket { fd })
    }

    /// Receive only GRE sent to `local` (`bind(2)`; `raw(7)`: a bound raw
    /// socket gets only packets for its address), and send from it.
    /// `local` must be an address of this host (`EADDRNOTAVAIL`).
    pub fn bind(&self, local: Ipv4Addr) -> io::Result<()> {
        rustix::net::bind(self.fd.get_ref(), &SocketAddrV4::new(local, 0)).map_err(|e| {
            io::Error::new(io::Error::from(e).kind(), format!("gre: bind {local}: {e}"))
        })
    }

    /// Receive only GRE from `peer` (`connect(2)` on a raw socket: the
    /// kernel's `raw_v4_match` then compares the source address), for a
    /// client that talks to one server.
    ///
    /// A connected raw socket also hears ICMP errors about what it sent
    /// (`raw(7)`; `raw_err` in net/ipv4/raw.c): the next receive fails once
    /// with the error, e.g. `ENOPROTOOPT` ("Protocol not available") for a
    /// protocol unreachable (the peer's host takes no GRE), `EHOSTUNREACH`
    /// for a host unreachable, before any datagram queued behind it. The
    /// kernel signals it as EPOLLERR alone, for which
    /// [`GreSocket::recv_batch`] wakes up too. The socket stays usable.
    pub fn connect(&self, peer: Ipv4Addr) -> io::Result<()> {
        rustix::net::connect(self.fd.get_ref(), &SocketAddrV4::new(peer, 0)).map_err(|e| {
            io::Error::new(
                io::Error::from(e).kind(),
                format!("gre: connect {peer}: {e}"),
            )
        })
    }

    /// Ask for a receive buffer of `bytes` (`SO_RCVBUF`; the kernel
    /// doubles it and caps it at `net.core.rmem_max`): room for the bursts
    /// that arrive between two wake-ups.
    pub fn set_recv_buffer_size(&self, bytes: usize) -> io::Result<()> {
        rustix::net::sockopt::set_socket_recv_buffer_size(self.fd.get_ref(), bytes)
            .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("gre: SO_RCVBUF: {e}")))
    }

    /// [`GreSocket::set_recv_buffer_size`] beyond `net.core.rmem_max`
    /// (`SO_RCVBUFFORCE`, which needs CAP_NET_ADMIN, as the daemon has);
    /// without the capability, the capped `SO_RCVBUF`.
    pub fn set_recv_buffer_size_force(&self, bytes: usize) -> io::Result<()> {
        match rustix::net::sockopt::set_socket_recv_buffer_size_force(self.fd.get_ref(), bytes) {
            Ok(()) => Ok(()),
            Err(_) => self.set_recv_buffer_size(bytes),
        }
    }

    /// Wait until datagrams are queued, then take as many as `batch` holds
    /// (see [`GreSocket::try_recv_batch`]). Returns how many were
    /// delivered, at least one: a wake-up that found only truncated
    /// datagrams waits again.
    ///
    /// Cancel-safe: it only waits before receiving, so a dropped future
    /// has taken no datagram.
    pub async fn recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        loop {
            // ERROR too: an ICMP error on a connected socket is signalled as
            // EPOLLERR alone, and is worth a wake-up (see `connect`).
            let mut guard = self.fd.ready(Interest::READABLE | Interest::ERROR).await?;
            match guard.try_io(|fd| recv_into(fd.get_ref().as_fd(), batch)) {
                Ok(Ok(0)) => continue,
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Take the queued datagrams that fit `batch` without waiting
    /// (`recvmmsg` with `MSG_DONTWAIT`, one call per [`MMSG_CHUNK`] slots
    /// until the batch is full or the queue empty). What was in the batch
    /// before is replaced.
    ///
    /// Returns how many were delivered; `Ok(0)` when every datagram taken
    /// was too long for a slot (those are counted in
    /// [`RecvBatch::truncated`] and never delivered cut), and
    /// `ErrorKind::WouldBlock` when nothing was queued. Errors are the
    /// kernel's, unchanged (`raw_os_error` tells them apart; see
    /// [`GreSocket::connect`] for the ICMP ones).
    pub fn try_recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        // A WouldBlock here leaves tokio's readiness set; the next
        // `recv_batch` sees WouldBlock once more and clears it. Harmless.
        recv_into(self.fd.get_ref().as_fd(), batch)
    }

    /// Send every datagram of `batch` (`sendmmsg(2)`, [`MMSG_CHUNK`] at a
    /// time, never waiting) and empty it. Returns how many were sent.
    ///
    /// `EAGAIN` and `ENOBUFS` drop the datagrams not yet sent and count
    /// them in [`SendBatch::dropped`] (see the module docs: a VPN drops
    /// rather than blocks its data path). Any other error is about one
    /// datagram (no route to its destination, too long, refused by a
    /// firewall rule): that datagram is counted in [`SendBatch::failed`],
    /// the rest are still sent, and the first such error is returned at the
    /// end, naming the destination. The batch is empty afterwards either
    /// way.
    pub fn flush(&self, batch: &mut SendBatch) -> io::Result<usize> {
        flush_into(self.fd.get_ref().as_fd(), batch, "gre")
    }

    /// Send one datagram (GRE header and payload) to `dest` without
    /// waiting; `ErrorKind::WouldBlock` when the send buffer is full.
    pub fn send_to(&self, bytes: &[u8], dest: Ipv4Addr) -> io::Result<usize> {
        rustix::net::sendto(
            self.fd.get_ref(),
            bytes,
            SendFlags::DONTWAIT,
            &SocketAddrV4::new(dest, 0),
        )
        .map_err(|e| {
            io::Error::new(
                io::Error::from(e).kind(),
                format!("gre: send to {dest}: {e}"),
            )
        })
    }
}

/// [`GreSocket::flush`] on any datagram socket `fd` (`what` names it in
/// errors).
pub(crate) fn flush_into(
    fd: BorrowedFd<'_>,
    batch: &mut SendBatch,
    what: &str,
) -> io::Result<usize> {
    let total = batch.len;
    let mut next = 0;
    let mut sent = 0;
    let mut first_error = None;
    let mut note = |e: &io::Error, dest: SocketAddrV4| {
        if first_error.is_none() {
            // A raw socket's destinations have no port.
            let dest = match dest.port() {
                0 => dest.ip().to_string(),
                _ => dest.to_string(),
            };
            first_error = Some(io::Error::new(
                e.kind(),
                format!("{what}: send to {dest}: {e}"),
            ));
        }
    };
    while next < total {
        let end = total.min(next + MMSG_CHUNK);
        let chunk = &batch.slots[next..end];
        let result = if chunk.iter().any(SendSlot::is_train) {
            sendmmsg_gso_chunk(fd, chunk)
        } else {
            sendmmsg_chunk(fd, chunk)
        };
        match result {
            Ok(0) => {
                // Not an outcome sendmmsg(2) documents; never spin.
                batch.dropped += datagrams(&batch.slots[next..total]);
                next = total;
            }
            Ok(n) => {
                let done = &batch.slots[next..next + n];
                sent += datagrams(done);
                batch.gso_sends += done.iter().filter(|s| s.is_train()).count() as u64;
                next += n;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_drop(&e) => {
                batch.dropped += datagrams(&batch.slots[next..total]);
                next = total;
            }
            Err(e) if batch.slots[next].is_train() && is_gso_refused(&e) => {
                // No UDP GSO on this socket or route: this train goes
                // datagram by datagram, and no more are built.
                batch.gso = false;
                let slot = &batch.slots[next];
                let (ok, dropped, failed) = send_alone(fd, slot, &mut note);
                sent += ok;
                batch.dropped += dropped;
                batch.failed += failed;
                next += 1;
            }
            Err(e) => {
                let slot = &batch.slots[next];
                batch.failed += slot.count as u64;
                note(&e, slot.dest);
                next += 1;
            }
        }
    }
    batch.sent += sent;
    batch.len = 0;
    match first_error {
        Some(e) => Err(e),
        None => Ok(sent as usize),
    }
}

/// The datagrams in `slots` (a train counts each of its own).
fn datagrams(slots: &[SendSlot]) -> u64 {
    slots.iter().map(|s| s.count as u64).sum()
}

/// What a UDP GSO send fails with when the kernel, the socket or the route
/// cannot do it (`udp_send_skb`: no checksum offload, a segment longer
/// than the path MTU, too many segments).
fn is_gso_refused(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EIO | libc::EINVAL | libc::EOPNOTSUPP | libc::ENOPROTOOPT)
    )
}

/// A train's datagrams one `sendto` each; returns how many were sent,
/// dropped (the rest after `EAGAIN`/`ENOBUFS`) and failed (`note` hears of
/// those errors).
fn send_alone(
    fd: BorrowedFd<'_>,
    slot: &SendSlot,
    note: &mut impl FnMut(&io::Error, SocketAddrV4),
) -> (u64, u64, u64) {
    let (mut sent, mut failed) = (0, 0);
    let segment = slot.segment.max(1);
    let mut datagrams = slot.bytes.chunks(segment);
    while let Some(d) = datagrams.next() {
        match rustix::net::sendto(fd, d, SendFlags::DONTWAIT, &slot.dest) {
            Ok(_) => sent += 1,
            Err(e) => {
                let e = io::Error::from(e);
                if is_drop(&e) {
                    return (sent, 1 + datagrams.count() as u64, failed);
                }
                failed += 1;
                note(&e, slot.dest);
            }
        }
    }
    (sent, 0, failed)
}

impl AsRawFd for GreSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.get_ref().as_raw_fd()
    }
}

impl AsFd for GreSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.get_ref().as_fd()
    }
}

/// `EAGAIN`/`EWOULDBLOCK` or `ENOBUFS`: the kernel cannot take datagrams
/// now; they are dropped, not retried.
fn is_drop(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::ENOBUFS)
}

/// One datagram of a [`RecvBatch`]: the whole IPv4 packet as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram<'a> {
    /// The sender (the IPv4 source address).
    pub source: Ipv4Addr,
    /// IPv4 header, GRE header and payload.
    pub bytes: &'a [u8],
}

impl<'a> Datagram<'a> {
    /// What follows the IPv4 header (the GRE header and payload), or `None`
    /// if the header's IHL (RFC 791 section 3.1) is below 5 or longer than
    /// the datagram (the kernel does not pass such packets on; checked all
    /// the same).
    pub fn payload(&self) -> Option<&'a [u8]> {
        ipv4_payload(self.bytes).map(|at| &self.bytes[at..])
    }
}

/// The offset of the IPv4 payload in `packet`, from its IHL.
fn ipv4_payload(packet: &[u8]) -> Option<usize> {
    let first = *packet.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let at = usize::from(first & 0x0f) * 4;
    (at >= 20 && at <= packet.len()).then_some(at)
}

/// Where one delivered datagram lies in a [`RecvBatch`].
#[derive(Debug, Clone, Copy)]
struct Delivered {
    slot: usize,
    /// Where in the slot it starts (not 0 for the segments after the
    /// first of a coalesced UDP datagram).
    offset: usize,
    len: usize,
    source: Ipv4Addr,
    /// The source port (UDP; 0 for a raw socket).
    port: u16,
}

/// Reusable receive buffers: `slots` datagrams of up to `slot_size`
/// octets, and what the last receive put in them.
///
/// A datagram longer than a slot is not delivered (the kernel keeps only
/// what fits and says `MSG_TRUNC`): it is counted in
/// [`RecvBatch::truncated`] instead. Make slots larger than the longest
/// datagram a peer may send.
///
/// A batch made with [`RecvBatch::with_gro`], on a UDP socket with
/// [`crate::udp::UdpBatchSocket::set_gro`] on, takes coalesced datagrams
/// (the `UDP_GRO` control message of `udp(7)` gives their segment size)
/// and delivers every segment as a datagram of its own, in order.
#[derive(Debug)]
pub struct RecvBatch {
    slot_size: usize,
    slots: usize,
    buffers: Vec<u8>,
    delivered: Vec<Delivered>,
    truncated: u64,
    /// Ask for the `UDP_GRO` control message.
    gro: bool,
    /// Receives that held more than one segment.
    coalesced: u64,
}

impl Default for RecvBatch {
    /// [`DEFAULT_SLOTS`] slots of [`DEFAULT_SLOT_SIZE`] octets.
    fn default() -> RecvBatch {
        RecvBatch::new(DEFAULT_SLOTS, DEFAULT_SLOT_SIZE)
    }
}

impl RecvBatch {
    /// `slots` slots of `slot_size` octets each (both at least 1).
    pub fn new(slots: usize, slot_size: usize) -> RecvBatch {
        let slots = slots.max(1);
        let slot_size = slot_size.max(1);
        RecvBatch {
            slot_size,
            slots,
            buffers: vec![0; slots * slot_size],
            delivered: Vec::with_capacity(slots),
            truncated: 0,
            gro: false,
            coalesced: 0,
        }
    }

    /// [`RecvBatch::new`] for a UDP socket with GRO on: each slot takes
    /// one coalesced datagram, split into its segments on delivery. Make
    /// `slot_size` [`GRO_SLOT_SIZE`] so that every coalesced datagram
    /// fits.
    pub fn with_gro(slots: usize, slot_size: usize) -> RecvBatch {
        RecvBatch {
            gro: true,
            ..RecvBatch::new(slots, slot_size)
        }
    }

    /// Coalesced datagrams received so far (each delivered as several).
    pub fn coalesced(&self) -> u64 {
        self.coalesced
    }

    /// How many datagrams the last receive delivered (segments of a
    /// coalesced one each count).
    pub fn len(&self) -> usize {
        self.delivered.len()
    }

    /// Whether the last receive delivered nothing.
    pub fn is_empty(&self) -> bool {
        self.delivered.is_empty()
    }

    /// Number of slots: the most datagrams one receive delivers.
    pub fn capacity(&self) -> usize {
        self.slots
    }

    /// Octets per slot: the longest datagram delivered.
    pub fn slot_size(&self) -> usize {
        self.slot_size
    }

    /// Datagrams skipped so far because they were longer than a slot.
    pub fn truncated(&self) -> u64 {
        self.truncated
    }

    /// The `i`th datagram of the last receive.
    pub fn get(&self, i: usize) -> Option<Datagram<'_>> {
        let d = self.delivered.get(i)?;
        let start = d.slot * self.slot_size + d.offset;
        Some(Datagram {
            source: d.source,
            bytes: &self.buffers[start..start + d.len],
        })
    }

    /// The `i`th datagram's source and bytes, writable (to decrypt or
    /// decompress in place).
    pub fn get_mut(&mut self, i: usize) -> Option<(Ipv4Addr, &mut [u8])> {
        let d = *self.delivered.get(i)?;
        let start = d.slot * self.slot_size + d.offset;
        Some((d.source, &mut self.buffers[start..start + d.len]))
    }

    /// The `i`th datagram's source address and port and its bytes: for a
    /// UDP socket ([`crate::udp::UdpBatchSocket`]), whose datagrams are
    /// the payload alone (the port is 0 on a raw socket).
    pub fn get_from(&self, i: usize) -> Option<(SocketAddrV4, &[u8])> {
        let d = self.delivered.get(i)?;
        let start = d.slot * self.slot_size + d.offset;
        Some((
            SocketAddrV4::new(d.source, d.port),
            &self.buffers[start..start + d.len],
        ))
    }

    /// The datagrams of the last receive, in the order they arrived.
    pub fn iter(&self) -> impl Iterator<Item = Datagram<'_>> + '_ {
        (0..self.delivered.len()).filter_map(move |i| self.get(i))
    }

    /// Forget what the last receive delivered.
    fn clear(&mut self) {
        self.delivered.clear();
    }

    /// What the kernel said about the datagram in slot `slot`: delivered
    /// (as segments of `segment` octets, the last one perhaps shorter,
    /// when the kernel coalesced it), or counted as truncated.
    fn record(
        &mut self,
        slot: usize,
        len: usize,
        truncated: bool,
        source: SocketAddrV4,
        segment: Option<usize>,
    ) {
        if truncated || len > self.slot_size {
            self.truncated += 1;
            return;
        }
        let segment = match segment {
            Some(s) if s > 0 && s < len => {
                self.coalesced += 1;
                s
            }
            _ => len.max(1),
        };
        let mut offset = 0;
        // A zero-length datagram is delivered too (once).
        loop {
            let seg_len = segment.min(len - offset);
            self.delivered.push(Delivered {
                slot,
                offset,
                len: seg_len,
                source: *source.ip(),
                port: source.port(),
            });
            offset += seg_len;
            if offset >= len {
                break;
            }
        }
    }
}

/// The receive itself: `recvmmsg` into `batch`'s slots, one chunk at a
/// time, until the batch is full or the queue empty. Returns the number of
/// datagrams delivered; `WouldBlock` only if nothing at all was queued.
pub(crate) fn recv_into(fd: BorrowedFd<'_>, batch: &mut RecvBatch) -> io::Result<usize> {
    batch.clear();
    let mut first_slot = 0;
    let mut taken_any = false;
    while first_slot < batch.slots {
        let count = (batch.slots - first_slot).min(MMSG_CHUNK);
        let mut results = [RawReceived::default(); MMSG_CHUNK];
        let start = first_slot * batch.slot_size;
        let region = &mut batch.buffers[start..start + count * batch.slot_size];
        let received = match recvmmsg_chunk(fd, region, batch.slot_size, batch.gro, &mut results) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && taken_any => break,
            Err(e) if taken_any => {
                // The datagrams already taken are delivered. The error (an
                // ICMP report on a connected socket, which the kernel
                // forgets once read) is not worth losing them for.
                tracing::debug!("gre: recvmmsg after {first_slot} datagrams: {e}");
                break;
            }
            // Returned as the kernel said it, so that callers can tell
            // ENOPROTOOPT from EHOSTUNREACH (and WouldBlock, the usual end
            // of a wake-up, costs no message on the data path).
            Err(e) => return Err(e),
        };
        taken_any = true;
        for (i, r) in results.iter().take(received).enumerate() {
            batch.record(first_slot + i, r.len, r.truncated, r.source, r.segment);
        }
        first_slot += received;
        if received < count {
            break;
        }
    }
    Ok(batch.delivered.len())
}

/// What `recvmmsg` said about one message.
#[derive(Debug, Clone, Copy)]
struct RawReceived {
    len: usize,
    truncated: bool,
    source: SocketAddrV4,
    /// The segment size of a coalesced UDP datagram (`UDP_GRO`).
    segment: Option<usize>,
}

impl Default for RawReceived {
    fn default() -> RawReceived {
        RawReceived {
            len: 0,
            truncated: false,
            source: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
            segment: None,
        }
    }
}

/// Room for one control message carrying an `int` (`CMSG_SPACE(4)` is 24
/// octets on 64-bit Linux), aligned for `struct cmsghdr`.
type CmsgInt = [u64; 4];

/// One `recvmmsg(2)` call (`MSG_DONTWAIT`, no timeout) into the
/// `region.len() / slot_size` (at most [`MMSG_CHUNK`]) slots that make up
/// `region`; fills `results` for the messages received and returns their
/// number. With `gro`, each message gets room for the `UDP_GRO` control
/// message, whose segment size goes into its result.
fn recvmmsg_chunk(
    fd: BorrowedFd<'_>,
    region: &mut [u8],
    slot_size: usize,
    gro: bool,
    results: &mut [RawReceived; MMSG_CHUNK],
) -> io::Result<usize> {
    let count = (region.len() / slot_size).min(MMSG_CHUNK);
    let mut iovs = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; MMSG_CHUNK];
    for (iov, slot) in iovs.iter_mut().zip(region.chunks_exact_mut(slot_size)) {
        iov.iov_base = slot.as_mut_ptr().cast();
        iov.iov_len = slot.len();
    }
    // SAFETY: sockaddr_in and mmsghdr are plain C structs of integers and
    // raw pointers (and padding), for which all-zero bytes are a valid
    // value: null pointers and zero lengths.
    let mut names: [libc::sockaddr_in; MMSG_CHUNK] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut headers: [libc::mmsghdr; MMSG_CHUNK] = unsafe { std::mem::zeroed() };
    let mut controls: [CmsgInt; MMSG_CHUNK] = [[0; 4]; MMSG_CHUNK];
    for (i, header) in headers.iter_mut().enumerate().take(count) {
        header.msg_hdr.msg_name = std::ptr::addr_of_mut!(names[i]).cast();
        header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        header.msg_hdr.msg_iov = std::ptr::addr_of_mut!(iovs[i]);
        header.msg_hdr.msg_iovlen = 1;
        if gro {
            header.msg_hdr.msg_control = controls[i].as_mut_ptr().cast();
            header.msg_hdr.msg_controllen = size_of::<CmsgInt>() as _;
        }
    }
    // SAFETY: `headers[..count]` are valid mmsghdrs whose pointers all
    // point into live memory this function borrows mutably until the call
    // returns: each msg_name at a sockaddr_in of `names` with msg_namelen
    // its size, each msg_iov at one iovec of `iovs` whose base and length
    // are a distinct `slot_size` slot of `region` (`count` slots fit in
    // it). Without `gro` no control buffer (msg_control null,
    // msg_controllen 0); with it, msg_control points at one CmsgInt of
    // `controls` and msg_controllen is its size. The kernel writes at most
    // msg_namelen octets of address, at most iov_len octets per slot, at
    // most msg_controllen octets of control messages, and
    // msg_len/msg_flags/msg_namelen/msg_controllen of the first `count`
    // headers, and keeps no pointer after returning. `count` is at most
    // MMSG_CHUNK, the arrays' length; the timeout is null (none).
    let rc = unsafe {
        libc::recvmmsg(
            fd.as_raw_fd(),
            headers.as_mut_ptr(),
            count as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let received = (rc as usize).min(count);
    for ((result, message), name) in results.iter_mut().zip(&headers).zip(&names).take(received) {
        let header = &message.msg_hdr;
        let source = if header.msg_namelen as usize >= size_of::<libc::sockaddr_in>()
            && libc::c_int::from(name.sin_family) == libc::AF_INET
        {
            SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(name.sin_addr.s_addr)),
                u16::from_be(name.sin_port),
            )
        } else {
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)
        };
        *result = RawReceived {
            len: message.msg_len as usize,
            truncated: header.msg_flags & libc::MSG_TRUNC != 0,
            source,
            segment: if gro { gro_segment(header) } else { None },
        };
    }
    Ok(received)
}

/// `UDP_GRO` of `udp.h`: the socket option, and the control message that
/// gives a coalesced datagram's segment size.
pub(crate) const UDP_GRO: libc::c_int = 104;

/// The segment size of the `UDP_GRO` control message `recvmmsg` left in
/// `header`, if there is one.
fn gro_segment(header: &libc::msghdr) -> Option<usize> {
    if header.msg_control.is_null() || header.msg_controllen < size_of::<libc::cmsghdr>() {
        return None;
    }
    // SAFETY: msg_control points at a live CmsgInt of recvmmsg_chunk's
    // `controls` and msg_controllen is what the kernel wrote into it (at
    // most its size); CMSG_FIRSTHDR/CMSG_NXTHDR stay within
    // msg_control..msg_control + msg_controllen, and each header they
    // return is only read after checking that its cmsg_len covers an
    // `int` of data inside that range (read unaligned).
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(header);
        while !cmsg.is_null() {
            let c = &*cmsg;
            let end = (header.msg_control as usize) + header.msg_controllen;
            let data = libc::CMSG_DATA(cmsg);
            if c.cmsg_level == libc::SOL_UDP
                && c.cmsg_type == UDP_GRO
                && c.cmsg_len as usize >= libc::CMSG_LEN(size_of::<libc::c_int>() as u32) as usize
                && (data as usize) + size_of::<libc::c_int>() <= end
            {
                let size = std::ptr::read_unaligned(data.cast::<libc::c_int>());
                return usize::try_from(size).ok().filter(|s| *s > 0);
            }
            cmsg = libc::CMSG_NXTHDR(header, cmsg);
        }
    }
    None
}

/// One datagram waiting in a [`SendBatch`], or a train of them for one
/// UDP GSO send (see [`SendBatch::push_segment`]).
#[derive(Debug)]
struct SendSlot {
    dest: SocketAddrV4,
    addr: SocketAddrAny,
    bytes: Vec<u8>,
    /// Datagrams in `bytes`: 1, or a train's, each `segment` octets long
    /// but the last, which may be shorter.
    count: usize,
    /// A train's segment size (0 for a datagram queued with
    /// [`SendBatch::slot_to`]).
    segment: usize,
    /// A train that may take more datagrams.
    open: bool,
}

impl SendSlot {
    fn new(dest: SocketAddrV4, capacity: usize) -> SendSlot {
        SendSlot {
            dest,
            addr: dest.into(),
            bytes: Vec::with_capacity(capacity),
            count: 1,
            segment: 0,
            open: false,
        }
    }

    /// Empty, to `dest`, for one datagram.
    fn reset(&mut self, dest: SocketAddrV4) {
        if self.dest != dest {
            self.addr = dest.into();
            self.dest = dest;
        }
        self.bytes.clear();
        self.count = 1;
        self.segment = 0;
        self.open = false;
    }

    /// A train of more than one datagram (sent with `UDP_SEGMENT`).
    fn is_train(&self) -> bool {
        self.count > 1
    }
}

/// At most this many datagrams go into one UDP GSO send (the kernel's
/// `UDP_MAX_SEGMENTS` was 64 until Linux 6.9).
pub const MAX_GSO_SEGMENTS: usize = 64;

/// At most this many octets go into one UDP GSO send: the longest UDP
/// payload of an IPv4 datagram (65535 less the IPv4 and UDP headers).
pub const MAX_GSO_BYTES: usize = 65535 - 20 - 8;

/// `UDP_SEGMENT` of `udp.h`: the control message (and socket option) that
/// makes one send of a UDP socket several datagrams of that size.
pub(crate) const UDP_SEGMENT: libc::c_int = 103;

/// Reusable send buffers: datagrams (GRE header and payload) and their
/// destinations, written in place and sent with [`GreSocket::flush`].
///
/// Slots keep their buffers between flushes, so after the first batch
/// nothing is allocated. [`SendBatch::is_full`] says when the planned
/// number of datagrams is queued; more can be added (the batch grows, once).
#[derive(Debug)]
pub struct SendBatch {
    slots: Vec<SendSlot>,
    len: usize,
    planned: usize,
    slot_capacity: usize,
    sent: u64,
    dropped: u64,
    failed: u64,
    /// [`SendBatch::push_segment`] builds trains.
    gso: bool,
    /// UDP GSO sends made.
    gso_sends: u64,
    /// Longer datagrams start no train (see [`SendBatch::set_gso_max_segment`]).
    gso_max_segment: usize,
}

impl Default for SendBatch {
    /// [`DEFAULT_SLOTS`] datagrams of up to [`DEFAULT_SLOT_SIZE`] octets
    /// before any buffer grows.
    fn default() -> SendBatch {
        SendBatch::new(DEFAULT_SLOTS, DEFAULT_SLOT_SIZE)
    }
}

impl SendBatch {
    /// Room for `slots` datagrams of `slot_capacity` octets, allocated now.
    pub fn new(slots: usize, slot_capacity: usize) -> SendBatch {
        let slots = slots.max(1);
        SendBatch {
            slots: (0..slots)
                .map(|_| SendSlot::new(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0), slot_capacity))
                .collect(),
            len: 0,
            planned: slots,
            slot_capacity,
            sent: 0,
            dropped: 0,
            failed: 0,
            gso: false,
            gso_sends: 0,
            gso_max_segment: usize::MAX,
        }
    }

    /// Let [`SendBatch::push_segment`] join datagrams into trains, each
    /// sent as one UDP GSO send (`UDP_SEGMENT`, `udp(7)`): only for a
    /// batch flushed on a UDP socket. Turned off again by a flush whose
    /// kernel refuses it.
    pub fn set_gso(&mut self, on: bool) {
        self.gso = on;
    }

    /// Datagrams longer than `octets` are sent alone, never as a train:
    /// the kernel refuses a train whose segments exceed the path MTU, but
    /// fragments a lone datagram (IPsec transport mode carries 1500-octet
    /// packets in longer ESP datagrams).
    pub fn set_gso_max_segment(&mut self, octets: usize) {
        self.gso_max_segment = octets;
    }

    /// Whether trains are built (see [`SendBatch::set_gso`]).
    pub fn gso(&self) -> bool {
        self.gso
    }

    /// UDP GSO sends made so far (each of several datagrams).
    pub fn gso_sends(&self) -> u64 {
        self.gso_sends
    }

    /// Queues one datagram to `dest`, which `write` appends to the vector
    /// it is given (leaving what is there). With GSO on
    /// ([`SendBatch::set_gso`]) it joins the train queued last when that
    /// one goes to `dest` and the datagram is no longer than the train's
    /// first: the kernel cuts a train at its first datagram's length, so
    /// one shorter datagram ends a train and a longer one starts the next.
    /// A train holds at most [`MAX_GSO_SEGMENTS`] datagrams and
    /// [`MAX_GSO_BYTES`] octets. When `write` fails, nothing is queued and
    /// its error is returned.
    pub fn push_segment<E>(
        &mut self,
        dest: SocketAddrV4,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let joins = self.gso
            && self.len > 0
            && self.slots[self.len - 1].open
            && self.slots[self.len - 1].dest == dest;
        if !joins {
            let gso = self.gso;
            let slot = self.slot_to(dest);
            if let Err(e) = write(slot) {
                self.pop();
                return Err(e);
            }
            let last = &mut self.slots[self.len - 1];
            last.segment = last.bytes.len();
            last.open = gso && last.segment > 0 && last.segment <= self.gso_max_segment;
            return Ok(());
        }
        let last = self.len - 1;
        let train = &mut self.slots[last];
        let mark = train.bytes.len();
        if let Err(e) = write(&mut train.bytes) {
            train.bytes.truncate(mark);
            return Err(e);
        }
        let len = train.bytes.len() - mark;
        if len > 0
            && len <= train.segment
            && train.count < MAX_GSO_SEGMENTS
            && train.bytes.len() <= MAX_GSO_BYTES
        {
            train.count += 1;
            train.open = len == train.segment && train.count < MAX_GSO_SEGMENTS;
            return Ok(());
        }
        // It does not fit this train: it starts the next one.
        train.open = false;
        if self.len == self.slots.len() {
            self.slots.push(SendSlot::new(dest, self.slot_capacity));
        }
        let (queued, free) = self.slots.split_at_mut(self.len);
        let (train, next) = (&mut queued[last], &mut free[0]);
        next.reset(dest);
        next.bytes.extend_from_slice(&train.bytes[mark..]);
        train.bytes.truncate(mark);
        next.segment = len;
        next.open = len > 0 && len <= self.gso_max_segment;
        self.len += 1;
        Ok(())
    }

    /// A new datagram to `dest`: its buffer, empty, for the caller to write
    /// the GRE header and payload into (`extend_from_slice`, `resize` and
    /// write, ...). It is sent by the next [`GreSocket::flush`] as it is
    /// then.
    pub fn slot(&mut self, dest: Ipv4Addr) -> &mut Vec<u8> {
        self.slot_to(SocketAddrV4::new(dest, 0))
    }

    /// [`SendBatch::slot`] for a datagram to an address and port (a UDP
    /// socket's, [`crate::udp::UdpBatchSocket`]).
    pub fn slot_to(&mut self, dest: SocketAddrV4) -> &mut Vec<u8> {
        if self.len == self.slots.len() {
            self.slots.push(SendSlot::new(dest, self.slot_capacity));
        }
        let slot = &mut self.slots[self.len];
        self.len += 1;
        slot.reset(dest);
        &mut slot.bytes
    }

    /// Queue a copy of `bytes` to `dest`.
    pub fn push(&mut self, dest: Ipv4Addr, bytes: &[u8]) {
        self.slot(dest).extend_from_slice(bytes);
    }

    /// Take back the datagram queued last (for a caller whose encoding
    /// failed after [`SendBatch::slot`]).
    pub fn pop(&mut self) {
        self.len = self.len.saturating_sub(1);
    }

    /// Datagrams queued (a train of [`SendBatch::push_segment`] counts
    /// once).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Nothing queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// As many datagrams queued as the batch was made for: time to flush.
    pub fn is_full(&self) -> bool {
        self.len >= self.planned
    }

    /// The `i`th queued datagram's destination and bytes (a train's: all
    /// of its datagrams, one after the other).
    pub fn get(&self, i: usize) -> Option<(Ipv4Addr, &[u8])> {
        (i < self.len).then(|| (*self.slots[i].dest.ip(), self.slots[i].bytes.as_slice()))
    }

    /// Drop everything queued without sending it (not counted).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Datagrams sent so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Datagrams dropped so far because the kernel could not take them
    /// (`EAGAIN`, `ENOBUFS`).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Datagrams the kernel refused so far for another reason (the error
    /// of the first in each flush is what the flush returned).
    pub fn failed(&self) -> u64 {
        self.failed
    }
}

/// One `sendmmsg(2)` call (`MSG_DONTWAIT`) for `slots` (at most
/// [`MMSG_CHUNK`]); returns how many the kernel took.
fn sendmmsg_chunk(fd: BorrowedFd<'_>, slots: &[SendSlot]) -> io::Result<usize> {
    let slots = &slots[..slots.len().min(MMSG_CHUNK)];
    let empty: &[u8] = &[];
    let iovs: [[IoSlice<'_>; 1]; MMSG_CHUNK] = std::array::from_fn(|i| {
        [IoSlice::new(
            slots.get(i).map_or(empty, |s| s.bytes.as_slice()),
        )]
    });
    let mut controls: [SendAncillaryBuffer<'_, '_, '_>; MMSG_CHUNK] =
        std::array::from_fn(|_| SendAncillaryBuffer::default());
    let mut index = 0;
    let mut messages = controls.each_mut().map(|control| {
        let i = index;
        index += 1;
        match slots.get(i) {
            Some(slot) => MMsgHdr::new_with_addr(&slot.addr, &iovs[i], control),
            None => MMsgHdr::new(&iovs[i], control),
        }
    });
    rustix::net::sendmmsg(fd, &mut messages[..slots.len()], SendFlags::DONTWAIT)
        .map_err(io::Error::from)
}

/// One `sendmmsg(2)` call (`MSG_DONTWAIT`) for `slots` (at most
/// [`MMSG_CHUNK`]) of a UDP socket, a train with its `UDP_SEGMENT` control
/// message (rustix 1.1 has no such message); returns how many messages
/// the kernel took.
fn sendmmsg_gso_chunk(fd: BorrowedFd<'_>, slots: &[SendSlot]) -> io::Result<usize> {
    let slots = &slots[..slots.len().min(MMSG_CHUNK)];
    let mut iovs = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; MMSG_CHUNK];
    // SAFETY: sockaddr_in and mmsghdr are plain C structs of integers and
    // raw pointers (and padding), for which all-zero bytes are a valid
    // value: null pointers and zero lengths.
    let mut names: [libc::sockaddr_in; MMSG_CHUNK] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut headers: [libc::mmsghdr; MMSG_CHUNK] = unsafe { std::mem::zeroed() };
    let mut controls: [CmsgInt; MMSG_CHUNK] = [[0; 4]; MMSG_CHUNK];
    for (i, slot) in slots.iter().enumerate() {
        iovs[i] = libc::iovec {
            // The kernel only reads through it (sendmmsg).
            iov_base: slot.bytes.as_ptr().cast_mut().cast(),
            iov_len: slot.bytes.len(),
        };
        names[i].sin_family = libc::AF_INET as libc::sa_family_t;
        names[i].sin_port = slot.dest.port().to_be();
        names[i].sin_addr.s_addr = u32::from(*slot.dest.ip()).to_be();
        let h = &mut headers[i].msg_hdr;
        h.msg_name = std::ptr::addr_of_mut!(names[i]).cast();
        h.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        h.msg_iov = std::ptr::addr_of_mut!(iovs[i]);
        h.msg_iovlen = 1;
        if slot.is_train() {
            h.msg_control = controls[i].as_mut_ptr().cast();
            // SAFETY: CMSG_SPACE only computes a length.
            h.msg_controllen = unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as _;
            // SAFETY: msg_control points at controls[i], 32 octets aligned
            // for cmsghdr, and msg_controllen (CMSG_SPACE of a u16, 24 on
            // 64-bit Linux) is within it, so CMSG_FIRSTHDR returns a
            // pointer to its start, and the header and the u16 after it
            // (CMSG_DATA, written unaligned) lie inside controls[i].
            unsafe {
                let cmsg = libc::CMSG_FIRSTHDR(h);
                (*cmsg).cmsg_level = libc::SOL_UDP;
                (*cmsg).cmsg_type = UDP_SEGMENT;
                (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), slot.segment as u16);
            }
        }
    }
    // SAFETY: `headers[..slots.len()]` are valid mmsghdrs whose pointers
    // all point into memory that lives until the call returns: msg_name at
    // a sockaddr_in of `names` with msg_namelen its size, msg_iov at one
    // iovec of `iovs` over a slot's bytes (only read by the kernel), and
    // for a train msg_control at one CmsgInt of `controls` with
    // msg_controllen within it (else null and 0). The kernel writes only
    // msg_len of those headers and keeps no pointer after returning;
    // `slots.len()` is at most MMSG_CHUNK, the arrays' length.
    let rc = unsafe {
        libc::sendmmsg(
            fd.as_raw_fd(),
            headers.as_mut_ptr(),
            slots.len() as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_payload_follows_the_ihl() {
        let mut packet = vec![0u8; 28];
        packet[0] = 0x45;
        assert_eq!(ipv4_payload(&packet), Some(20));
        packet[0] = 0x46;
        assert_eq!(ipv4_payload(&packet), Some(24));
        packet[0] = 0x48; // 32 octets of header in a 28-octet packet
        assert_eq!(ipv4_payload(&packet), None);
        packet[0] = 0x44; // IHL below 5
        assert_eq!(ipv4_payload(&packet), None);
        packet[0] = 0x65; // not IPv4
        assert_eq!(ipv4_payload(&packet), None);
        assert_eq!(ipv4_payload(&[]), None);
        let d = Datagram {
            source: Ipv4Addr::LOCALHOST,
            bytes: &[
                0x45, 0, 0, 22, 0, 0, 0, 0, 64, 47, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0x30, 0x81,
            ],
        };
        assert_eq!(d.payload(), Some(&[0x30, 0x81][..]));
    }

    #[test]
    fn recv_batch_delivers_what_fits_and_counts_the_rest() {
        let mut batch = RecvBatch::new(4, 8);
        assert_eq!(batch.capacity(), 4);
        assert_eq!(batch.slot_size(), 8);
        batch.buffers[..8].copy_from_slice(b"first!!!");
        batch.buffers[8..16].copy_from_slice(b"cut.....");
        batch.buffers[16..24].copy_from_slice(b"third...");
        let a = Ipv4Addr::new(192, 0, 2, 1);
        let b = Ipv4Addr::new(192, 0, 2, 2);
        batch.record(0, 6, false, SocketAddrV4::new(a, 0), None);
        batch.record(1, 8, true, SocketAddrV4::new(b, 0), None);
        batch.record(2, 5, false, SocketAddrV4::new(b, 1701), None);
        assert_eq!(batch.len(), 2);
        assert_eq!(batch.truncated(), 1);
        let got: Vec<(Ipv4Addr, &[u8])> = batch.iter().map(|d| (d.source, d.bytes)).collect();
        assert_eq!(got, vec![(a, &b"first!"[..]), (b, &b"third"[..])]);
        assert_eq!(
            batch.get_from(1),
            Some((SocketAddrV4::new(b, 1701), &b"third"[..]))
        );
        let (source, bytes) = batch.get_mut(1).unwrap();
        assert_eq!(source, b);
        bytes[0] = b'T';
        assert_eq!(batch.get(1).unwrap().bytes, b"Third");
        assert!(batch.get(2).is_none());
        batch.clear();
        assert!(batch.is_empty());
        assert_eq!(batch.truncated(), 1, "the count outlives the batch");
    }

    #[test]
    fn send_batch_reuses_its_buffers() {
        let mut batch = SendBatch::new(2, 64);
        let a = Ipv4Addr::new(198, 51, 100, 1);
        let b = Ipv4Addr::new(198, 51, 100, 2);
        batch.slot(a).extend_from_slice(&[0x30, 0x81, 0, 0]);
        batch.push(b, b"second");
        assert!(batch.is_full());
        assert_eq!(batch.get(0), Some((a, &[0x30, 0x81, 0, 0][..])));
        assert_eq!(batch.get(1), Some((b, &b"second"[..])));
        assert_eq!(batch.get(2), None);
        let pointers: Vec<*const u8> = batch.slots.iter().map(|s| s.bytes.as_ptr()).collect();
        batch.clear();
        assert!(batch.is_empty());
        // The same destinations the other way round: same buffers, new
        // addresses, old bytes gone.
        batch.push(b, b"x");
        batch.push(a, b"y");
        assert_eq!(batch.get(0), Some((b, &b"x"[..])));
        assert_eq!(batch.get(1), Some((a, &b"y"[..])));
        let again: Vec<*const u8> = batch.slots.iter().map(|s| s.bytes.as_ptr()).collect();
        assert_eq!(pointers, again, "no buffer was reallocated");
        let addr = SocketAddrV4::try_from(batch.slots[0].addr.clone()).unwrap();
        assert_eq!(*addr.ip(), b);
        // Growing past the plan works; popping takes the last one back.
        batch.push(a, b"z");
        assert_eq!(batch.len(), 3);
        batch.pop();
        assert_eq!(batch.len(), 2);
        assert_eq!((batch.sent(), batch.dropped(), batch.failed()), (0, 0, 0));
    }

    #[test]
    fn trains_end_at_their_limits() {
        let mut batch = SendBatch::new(2, 64);
        batch.set_gso(true);
        let a = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 1), 4500);
        let b = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 2), 4500);
        let push = |batch: &mut SendBatch, dest, len: usize| {
            batch
                .push_segment(dest, |buf| {
                    buf.resize(buf.len() + len, 1);
                    Ok::<(), ()>(())
                })
                .unwrap();
        };
        for _ in 0..=MAX_GSO_SEGMENTS {
            push(&mut batch, a, 10);
        }
        assert_eq!(batch.len(), 2);
        assert_eq!(batch.slots[0].count, MAX_GSO_SEGMENTS);
        assert_eq!(batch.slots[1].count, 1);
        // Another destination: another train.
        push(&mut batch, b, 10);
        assert_eq!(batch.len(), 3);
        assert_eq!(batch.get(2), Some((*b.ip(), &[1u8; 10][..])));
        batch.clear();
        // No more than an IPv4 datagram holds: 65507 / 1400 = 46.
        for _ in 0..50 {
            push(&mut batch, a, 1400);
        }
        assert_eq!(batch.len(), 2);
        assert_eq!(batch.slots[0].count, 46);
        assert_eq!(batch.slots[0].bytes.len(), 46 * 1400);
        assert_eq!(batch.slots[1].count, 4);
        assert_eq!(datagrams(&batch.slots[..batch.len()]), 50);
        // A raw socket's batch (no GSO) never builds one.
        let mut raw = SendBatch::new(2, 64);
        push(&mut raw, a, 10);
        push(&mut raw, a, 10);
        assert_eq!(raw.len(), 2);
        assert!(!raw.slots[0].is_train());
    }

    #[test]
    fn a_coalesced_datagram_is_delivered_as_its_segments() {
        let mut batch = RecvBatch::with_gro(2, 16);
        batch.buffers[..10].copy_from_slice(b"aaaabbbbcc");
        batch.buffers[16..19].copy_from_slice(b"xyz");
        let a = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 4500);
        batch.record(0, 10, false, a, Some(4));
        // Not coalesced: a segment size beyond the datagram.
        batch.record(1, 3, false, a, Some(4));
        let got: Vec<&[u8]> = (0..batch.len())
            .map(|i| batch.get_from(i).unwrap().1)
            .collect();
        assert_eq!(got, vec![&b"aaaa"[..], b"bbbb", b"cc", b"xyz"]);
        assert_eq!(batch.coalesced(), 1);
        let (_, second) = batch.get_mut(1).unwrap();
        second[0] = b'B';
        assert_eq!(batch.get(1).unwrap().bytes, b"Bbbb");
    }

    #[test]
    fn drops_are_eagain_and_enobufs_only() {
        assert!(is_drop(&io::Error::from_raw_os_error(libc::EAGAIN)));
        assert!(is_drop(&io::Error::from_raw_os_error(libc::ENOBUFS)));
        assert!(!is_drop(&io::Error::from_raw_os_error(libc::EHOSTUNREACH)));
        assert!(!is_drop(&io::Error::from_raw_os_error(libc::EMSGSIZE)));
        assert!(!is_drop(&io::Error::from_raw_os_error(libc::EPERM)));
    }
}
