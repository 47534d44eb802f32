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
    while next < total {
        let end = total.min(next + MMSG_CHUNK);
        match sendmmsg_chunk(fd, &batch.slots[next..end]) {
            Ok(0) => {
                // Not an outcome sendmmsg(2) documents; never spin.
                batch.dropped += (total - next) as u64;
                next = total;
            }
            Ok(n) => {
                sent += n;
                next += n;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_drop(&e) => {
                batch.dropped += (total - next) as u64;
                next = total;
            }
            Err(e) => {
                batch.failed += 1;
                if first_error.is_none() {
                    let dest = batch.slots[next].dest;
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
                next += 1;
            }
        }
    }
    batch.sent += sent as u64;
    batch.len = 0;
    match first_error {
        Some(e) => Err(e),
        None => Ok(sent),
    }
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
#[derive(Debug)]
pub struct RecvBatch {
    slot_size: usize,
    slots: usize,
    buffers: Vec<u8>,
    delivered: Vec<Delivered>,
    truncated: u64,
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
        }
    }

    /// How many datagrams the last receive delivered.
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
        let start = d.slot * self.slot_size;
        Some(Datagram {
            source: d.source,
            bytes: &self.buffers[start..start + d.len],
        })
    }

    /// The `i`th datagram's source and bytes, writable (to decrypt or
    /// decompress in place).
    pub fn get_mut(&mut self, i: usize) -> Option<(Ipv4Addr, &mut [u8])> {
        let d = *self.delivered.get(i)?;
        let start = d.slot * self.slot_size;
        Some((d.source, &mut self.buffers[start..start + d.len]))
    }

    /// The `i`th datagram's source address and port and its bytes: for a
    /// UDP socket ([`crate::udp::UdpBatchSocket`]), whose datagrams are
    /// the payload alone (the port is 0 on a raw socket).
    pub fn get_from(&self, i: usize) -> Option<(SocketAddrV4, &[u8])> {
        let d = self.delivered.get(i)?;
        let start = d.slot * self.slot_size;
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

    /// What the kernel said about the datagram in slot `slot`: delivered,
    /// or counted as truncated.
    fn record(&mut self, slot: usize, len: usize, truncated: bool, source: SocketAddrV4) {
        if truncated || len > self.slot_size {
            self.truncated += 1;
        } else {
            self.delivered.push(Delivered {
                slot,
                len,
                source: *source.ip(),
                port: source.port(),
            });
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
        let received = match recvmmsg_chunk(fd, region, batch.slot_size, &mut results) {
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
            batch.record(first_slot + i, r.len, r.truncated, r.source);
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
}

impl Default for RawReceived {
    fn default() -> RawReceived {
        RawReceived {
            len: 0,
            truncated: false,
            source: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
        }
    }
}

/// One `recvmmsg(2)` call (`MSG_DONTWAIT`, no timeout) into the
/// `region.len() / slot_size` (at most [`MMSG_CHUNK`]) slots that make up
/// `region`; fills `results` for the messages received and returns their
/// number.
fn recvmmsg_chunk(
    fd: BorrowedFd<'_>,
    region: &mut [u8],
    slot_size: usize,
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
    for (i, header) in headers.iter_mut().enumerate().take(count) {
        header.msg_hdr.msg_name = std::ptr::addr_of_mut!(names[i]).cast();
        header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        header.msg_hdr.msg_iov = std::ptr::addr_of_mut!(iovs[i]);
        header.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: `headers[..count]` are valid mmsghdrs whose pointers all
    // point into live memory this function borrows mutably until the call
    // returns: each msg_name at a sockaddr_in of `names` with msg_namelen
    // its size, each msg_iov at one iovec of `iovs` whose base and length
    // are a distinct `slot_size` slot of `region` (`count` slots fit in
    // it). No control buffer (msg_control null, msg_controllen 0). The
    // kernel writes at most msg_namelen octets of address, at most iov_len
    // octets per slot, and msg_len/msg_flags/msg_namelen of the first
    // `count` headers, and keeps no pointer after returning. `count` is at
    // most MMSG_CHUNK, the arrays' length; the timeout is null (none).
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
        };
    }
    Ok(received)
}

/// One datagram waiting in a [`SendBatch`].
#[derive(Debug)]
struct SendSlot {
    dest: SocketAddrV4,
    addr: SocketAddrAny,
    bytes: Vec<u8>,
}

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
                .map(|_| SendSlot {
                    dest: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
                    addr: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0).into(),
                    bytes: Vec::with_capacity(slot_capacity),
                })
                .collect(),
            len: 0,
            planned: slots,
            slot_capacity,
            sent: 0,
            dropped: 0,
            failed: 0,
        }
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
            self.slots.push(SendSlot {
                dest,
                addr: dest.into(),
                bytes: Vec::with_capacity(self.slot_capacity),
            });
        }
        let slot = &mut self.slots[self.len];
        self.len += 1;
        if slot.dest != dest {
            slot.addr = dest.into();
            slot.dest = dest;
        }
        slot.bytes.clear();
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

    /// Datagrams queued.
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

    /// The `i`th queued datagram's destination and bytes.
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
        batch.record(0, 6, false, SocketAddrV4::new(a, 0));
        batch.record(1, 8, true, SocketAddrV4::new(b, 0));
        batch.record(2, 5, false, SocketAddrV4::new(b, 1701));
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
    fn drops_are_eagain_and_enobufs_only() {
        assert!(is_drop(&io::Error::from_raw_os_error(libc::EAGAIN)));
        assert!(is_drop(&io::Error::from_raw_os_error(libc::ENOBUFS)));
        assert!(!is_drop(&io::Error::from_raw_os_error(libc::EHOSTUNREACH)));
        assert!(!is_drop(&io::Error::from_raw_os_error(libc::EMSGSIZE)));
        assert!(!is_drop(&io::Error::from_raw_os_error(libc::EPERM)));
    }
}
