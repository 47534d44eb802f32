//! Layer-3 tun devices (IFF_TUN | IFF_NO_PI), non-blocking, driven by tokio.
//!
//! The kernel interface is `Documentation/networking/tuntap.rst`: open
//! `/dev/net/tun`, then `ioctl(TUNSETIFF)` with the wanted name and flags.
//! With `IFF_NO_PI` every `read` returns exactly one IP packet and every
//! `write` injects exactly one, with no 4-byte packet-information prefix.
//!
//! This is the VPN data path, so `recv`/`send`/`try_recv`/`try_send` do not
//! allocate: they read into and write from the caller's buffers.
//!
//! ## Offload mode
//!
//! [`Tun::create_offload`] opens the device with `IFF_VNET_HDR`: every read
//! and write then carries a 10-byte `struct virtio_net_hdr` (the legacy
//! layout of the virtio specification 1.1 section 5.1.6, in host byte
//! order) in front of the packet, as wireguard-go and tailscale use it.
//! Once [`Tun::set_tso`] has enabled `TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6`
//! the kernel hands over TCP super-packets (GSO, up to 64 KiB) and packets
//! whose checksum it left to the device (`NEEDS_CSUM`); this module
//! completes those checksums in software, so what the caller gets is always
//! a valid IP packet that any peer or capture can read. Written packets
//! longer than the MTU set with [`Tun::set_gso_mtu`] that are plain TCP go
//! in as GSO packets (`gso_size` = MTU minus the IP and TCP headers): the
//! kernel segments them where it has to (a device without TSO, a real NIC
//! does it in hardware), and keeps them whole across veth pairs. A
//! super-packet too large for the other end of the tunnel can be cut into
//! MTU-sized packets with [`segment_tcp`].

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::offload::{complete_offloaded, gso_plan, VnetHdr, VNET_HDR_LEN};
pub use crate::offload::{Received, MAX_OFFLOAD_PACKET};

/// Longest interface name the kernel accepts (IFNAMSIZ minus the NUL).
pub const MAX_IFNAME_LEN: usize = libc::IFNAMSIZ - 1;

/// An open tun device. Dropping it closes the fd, which removes the device
/// (unless it was made persistent by someone else, e.g. `ip tuntap add`).
///
/// `recv` and `send` take `&self`, so one task can read while another
/// writes (share it in an `Arc`), or one `select!` loop can do both.
#[derive(Debug)]
pub struct Tun {
    fd: AsyncFd<File>,
    name: String,
    /// Opened with `IFF_VNET_HDR`: reads and writes carry a [`VnetHdr`].
    vnet_hdr: bool,
    /// Written TCP packets longer than this go in as GSO packets (0: never).
    gso_mtu: AtomicUsize,
}

/// Check `name` the way the kernel's `dev_valid_name()` does, so that a bad
/// name from the config is reported with the reason instead of a bare EINVAL.
pub fn check_ifname(name: &str) -> io::Result<()> {
    let invalid = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("interface name {name:?}: {why}"),
        )
    };
    if name.is_empty() {
        return Err(invalid("empty"));
    }
    if name.len() > MAX_IFNAME_LEN {
        return Err(invalid(&format!(
            "{} bytes long, at most {MAX_IFNAME_LEN} allowed",
            name.len()
        )));
    }
    if name == "." || name == ".." {
        return Err(invalid("reserved name"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| *c == '/' || *c == ':' || *c == '\0' || c.is_whitespace())
    {
        return Err(invalid(&format!("contains {c:?}")));
    }
    Ok(())
}

impl Tun {
    /// Create (or attach to) tun device `name` (at most 15 bytes).
    ///
    /// A name with `%d` (e.g. `ts%d`) lets the kernel pick the number; the
    /// chosen name is then in [`Tun::name`]. Attaching to a device that
    /// another process has open fails with EBUSY.
    pub fn create(name: &str) -> io::Result<Tun> {
        Tun::open(name, false)
    }

    /// Like [`Tun::create`], in offload mode (see the module docs): reads
    /// and writes carry a virtio_net_hdr, handled here. No offload is
    /// enabled yet, so until [`Tun::set_tso`] the kernel hands over only
    /// ordinary packets; [`Tun::recv`] and [`Tun::send`] work the same way
    /// in both modes.
    pub fn create_offload(name: &str) -> io::Result<Tun> {
        Tun::open(name, true)
    }

    fn open(name: &str, vnet_hdr: bool) -> io::Result<Tun> {
        check_ifname(name)?;
        let with_context =
            |op: &str, e: io::Error| io::Error::new(e.kind(), format!("tun {name}: {op}: {e}"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .map_err(|e| with_context("open /dev/net/tun", e))?;

        // SAFETY: `ifreq` is plain old data (integers, byte arrays and a
        // union of those and raw pointers); all-zero is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
            *dst = src as libc::c_char;
        }
        // The name is at most 15 bytes, so ifr_name[15] stays NUL.
        let mut flags = libc::IFF_TUN | libc::IFF_NO_PI;
        if vnet_hdr {
            flags |= libc::IFF_VNET_HDR;
        }
        req.ifr_ifru.ifru_flags = flags as libc::c_short;

        // SAFETY: TUNSETIFF reads and writes one `struct ifreq`; `req` is a
        // live, properly sized and aligned ifreq, and `file` is an open fd.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut req) };
        if rc < 0 {
            return Err(with_context("TUNSETIFF", io::Error::last_os_error()));
        }
        if vnet_hdr {
            let size = VNET_HDR_LEN as libc::c_int;
            // SAFETY: TUNSETVNETHDRSZ reads one `int` through the pointer;
            // `size` is a live int, and `file` is an open tun fd.
            let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETVNETHDRSZ, &size) };
            if rc < 0 {
                return Err(with_context("TUNSETVNETHDRSZ", io::Error::last_os_error()));
            }
        }

        // The kernel writes back the name it used (it differs for `%d`).
        let kernel_name: Vec<u8> = req
            .ifr_name
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        let name = String::from_utf8(kernel_name).unwrap_or_else(|_| name.to_owned());

        if let Err(e) = tokio::runtime::Handle::try_current() {
            return Err(with_context("register with tokio", io::Error::other(e)));
        }
        // SAFETY: `file` owns its fd, and `AsyncFd` owns `file` from here on;
        // nothing closes or replaces that fd before the `AsyncFd` is dropped.
        let fd = unsafe {
            AsyncFd::register_with_interest(file, Interest::READABLE | Interest::WRITABLE)
        }
        .map_err(|e| with_context("register with tokio", e.into()))?;
        tracing::debug!(tun = %name, vnet_hdr, "tun device open");
        Ok(Tun {
            fd,
            name,
            vnet_hdr,
            gso_mtu: AtomicUsize::new(0),
        })
    }

    /// Opened with [`Tun::create_offload`].
    pub fn is_offload(&self) -> bool {
        self.vnet_hdr
    }

    /// Let the kernel hand over TCP super-packets and packets with their
    /// checksum left to us (`TUNSETOFFLOAD` with `TUN_F_CSUM | TUN_F_TSO4 |
    /// TUN_F_TSO6`), or stop it (`on = false`). Only in offload mode; may be
    /// called while the interface is up. [`Tun::recv`] completes what the
    /// kernel left undone, so callers only see longer packets.
    pub fn set_tso(&self, on: bool) -> io::Result<()> {
        if !self.vnet_hdr {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "tun {}: TSO needs a device opened in offload mode",
                    self.name
                ),
            ));
        }
        let flags: libc::c_uint = if on {
            libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6
        } else {
            0
        };
        // SAFETY: TUNSETOFFLOAD takes the flags as the ioctl's integer
        // argument itself, not through a pointer; the fd is an open tun.
        let rc = unsafe {
            libc::ioctl(
                self.as_raw_fd(),
                libc::TUNSETOFFLOAD,
                libc::c_ulong::from(flags),
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("tun {}: TUNSETOFFLOAD {flags:#x}: {e}", self.name),
            ));
        }
        Ok(())
    }

    /// Written TCP packets longer than `mtu` go in as GSO packets with
    /// segments that fit `mtu` (offload mode only; 0 = never). Set it to
    /// the interface MTU.
    pub fn set_gso_mtu(&self, mtu: usize) {
        self.gso_mtu.store(mtu, Ordering::Relaxed);
    }

    /// The kernel's name for the device.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Read one IP packet into `buf`; returns its length.
    ///
    /// `buf` should hold at least the interface MTU. A longer packet is
    /// lost (the kernel drops what does not fit) and reported as
    /// `InvalidData`, never passed on cut; the next call reads the next one.
    ///
    /// Cancel-safe (for `select!`): it only waits before reading, so a
    /// dropped future has consumed no packet.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_gso(buf).await.map(|r| r.len)
    }

    /// [`Tun::recv`], also saying whether the packet is a TCP super-packet
    /// (offload mode with TSO on); its checksums are complete either way.
    /// In offload mode `buf` should hold [`MAX_OFFLOAD_PACKET`] bytes.
    pub async fn recv_gso(&self, buf: &mut [u8]) -> io::Result<Received> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|file| self.read_one(file.get_ref(), buf)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// [`Tun::try_recv`] with what [`Tun::recv_gso`] tells.
    pub fn try_recv_gso(&self, buf: &mut [u8]) -> io::Result<Received> {
        self.read_one(self.fd.get_ref(), buf)
    }

    fn read_one(&self, file: &File, buf: &mut [u8]) -> io::Result<Received> {
        if !self.vnet_hdr {
            return read_packet(file, buf).map(|len| Received { len, gso: None });
        }
        let mut raw_hdr = [0u8; VNET_HDR_LEN];
        let n = read_vectored_packet(file, &mut raw_hdr, buf)?;
        let hdr = VnetHdr::parse(&raw_hdr);
        let packet = &mut buf[..n];
        let gso = complete_offloaded(&hdr, packet).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("tun {}: offloaded packet of {n} bytes: {e}", self.name),
            )
        })?;
        Ok(Received { len: n, gso })
    }

    /// Read one IP packet if one is queued, without waiting.
    ///
    /// Returns `ErrorKind::WouldBlock` when the queue is empty. Use it after
    /// [`Tun::recv`] to drain a burst of packets in one wake-up.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        // A WouldBlock here leaves tokio's readiness flag set; the next
        // `recv` then sees WouldBlock once more and clears it. Harmless.
        self.read_one(self.fd.get_ref(), buf).map(|r| r.len)
    }

    /// Write one IP packet.
    ///
    /// Cancel-safe: a dropped future has written nothing.
    pub async fn send(&self, packet: &[u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|file| self.write_one(file.get_ref(), packet)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Write one IP packet without waiting; `ErrorKind::WouldBlock` if the
    /// device cannot take it now (rare: tun writes go straight to the stack).
    pub fn try_send(&self, packet: &[u8]) -> io::Result<usize> {
        self.write_one(self.fd.get_ref(), packet)
    }

    /// One packet, with a virtio_net_hdr in offload mode: a GSO one for a
    /// TCP packet longer than the GSO MTU, else an empty one. Returns the
    /// packet's length (without the header).
    fn write_one(&self, mut file: &File, packet: &[u8]) -> io::Result<usize> {
        if !self.vnet_hdr {
            return file.write(packet);
        }
        let mtu = self.gso_mtu.load(Ordering::Relaxed);
        let plan = if mtu > 0 && packet.len() > mtu {
            gso_plan(packet, mtu)
        } else {
            None
        };
        let written = match plan {
            None => file.write_vectored(&[
                IoSlice::new(&VnetHdr::default().emit()),
                IoSlice::new(packet),
            ])?,
            Some((hdr, pseudo)) => {
                // The TCP checksum field carries the pseudo-header sum, as
                // for CHECKSUM_PARTIAL (the kernel adds the rest per
                // segment); the packet itself is not copied.
                let at = usize::from(hdr.csum_start) + usize::from(hdr.csum_offset);
                file.write_vectored(&[
                    IoSlice::new(&hdr.emit()),
                    IoSlice::new(&packet[..at]),
                    IoSlice::new(&pseudo.to_be_bytes()),
                    IoSlice::new(&packet[at + 2..]),
                ])?
            }
        };
        Ok(written.saturating_sub(VNET_HDR_LEN))
    }
}

impl AsRawFd for Tun {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.get_ref().as_raw_fd()
    }
}

fn read_packet(mut file: &File, buf: &mut [u8]) -> io::Result<usize> {
    let n = file.read(buf)?;
    // The kernel copies what fits and drops the rest of a longer packet
    // (tun_put_user), returning the copied length. So a read that fills
    // the buffer may be a cut packet: the IP header says how long it was.
    if n == buf.len() {
        if let Some(declared) = declared_ip_len(&buf[..n]) {
            if declared > n {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "tun packet of {declared} bytes cut to the {n}-byte buffer; the buffer must hold the MTU"
                    ),
                ));
            }
        }
    }
    Ok(n)
}

/// The packet length its IP header declares: IPv4 Total Length (RFC 791
/// section 3.1) or 40 + IPv6 Payload Length (RFC 8200 section 3). `None`
/// when the header is too short to say, or the version is neither.
fn declared_ip_len(packet: &[u8]) -> Option<usize> {
    let version = packet.first()? >> 4;
    match version {
        4 => Some(usize::from(u16::from_be_bytes([
            *packet.get(2)?,
            *packet.get(3)?,
        ]))),
        6 => Some(40 + usize::from(u16::from_be_bytes([*packet.get(4)?, *packet.get(5)?]))),
        _ => None,
    }
}

/// `readv` of one packet behind its virtio_net_hdr; returns the packet's
/// length. A packet that did not fit `buf` is an error, as in `read_packet`.
fn read_vectored_packet(
    mut file: &File,
    hdr: &mut [u8; VNET_HDR_LEN],
    buf: &mut [u8],
) -> io::Result<usize> {
    let room = buf.len();
    let n = file.read_vectored(&mut [IoSliceMut::new(hdr), IoSliceMut::new(buf)])?;
    let Some(n) = n.checked_sub(VNET_HDR_LEN) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("tun read of {n} bytes, shorter than the virtio_net_hdr"),
        ));
    };
    if n == room {
        if let Some(declared) = declared_ip_len(&buf[..n]) {
            if declared > n {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "tun packet of {declared} bytes cut to the {n}-byte buffer; the buffer must hold {MAX_OFFLOAD_PACKET} bytes"
                    ),
                ));
            }
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_lengths() {
        assert_eq!(declared_ip_len(&[0x45, 0, 0x05, 0xdc]), Some(1500));
        assert_eq!(declared_ip_len(&[0x60, 0, 0, 0, 0, 8]), Some(48));
        assert_eq!(declared_ip_len(&[0x45, 0]), None);
        assert_eq!(declared_ip_len(&[0x60, 0, 0, 0, 0]), None);
        assert_eq!(declared_ip_len(&[0x10, 0, 0, 0]), None);
        assert_eq!(declared_ip_len(&[]), None);
    }

    #[test]
    fn ifname_rules() {
        assert!(check_ifname("ts-labs").is_ok());
        assert!(check_ifname("ts%d").is_ok());
        assert!(check_ifname("123456789012345").is_ok());
        let err = check_ifname("1234567890123456").unwrap_err();
        assert!(err.to_string().contains("1234567890123456"), "{err}");
        assert!(err.to_string().contains("16 bytes"), "{err}");
        assert!(check_ifname("").is_err());
        assert!(check_ifname("..").is_err());
        assert!(check_ifname("a/b").is_err());
        assert!(check_ifname("a b").is_err());
        assert!(check_ifname("a:1").is_err());
    }
}
