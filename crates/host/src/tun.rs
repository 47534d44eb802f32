//! Layer-3 tun devices (IFF_TUN | IFF_NO_PI), non-blocking, driven by tokio.
//!
//! The kernel interface is `Documentation/networking/tuntap.rst`: open
//! `/dev/net/tun`, then `ioctl(TUNSETIFF)` with the wanted name and flags.
//! With `IFF_NO_PI` every `read` returns exactly one IP packet and every
//! `write` injects exactly one, with no 4-byte packet-information prefix.
//!
//! This is the VPN data path, so `recv`/`send`/`try_recv`/`try_send` do not
//! allocate: they read into and write from the caller's buffers.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

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
        req.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;

        // SAFETY: TUNSETIFF reads and writes one `struct ifreq`; `req` is a
        // live, properly sized and aligned ifreq, and `file` is an open fd.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut req) };
        if rc < 0 {
            return Err(with_context("TUNSETIFF", io::Error::last_os_error()));
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
        tracing::debug!(tun = %name, "tun device open");
        Ok(Tun { fd, name })
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
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|file| read_packet(file.get_ref(), buf)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Read one IP packet if one is queued, without waiting.
    ///
    /// Returns `ErrorKind::WouldBlock` when the queue is empty. Use it after
    /// [`Tun::recv`] to drain a burst of packets in one wake-up.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        // A WouldBlock here leaves tokio's readiness flag set; the next
        // `recv` then sees WouldBlock once more and clears it. Harmless.
        read_packet(self.fd.get_ref(), buf)
    }

    /// Write one IP packet.
    ///
    /// Cancel-safe: a dropped future has written nothing.
    pub async fn send(&self, packet: &[u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|file| write_packet(file.get_ref(), packet)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Write one IP packet without waiting; `ErrorKind::WouldBlock` if the
    /// device cannot take it now (rare: tun writes go straight to the stack).
    pub fn try_send(&self, packet: &[u8]) -> io::Result<usize> {
        write_packet(self.fd.get_ref(), packet)
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

fn write_packet(mut file: &File, packet: &[u8]) -> io::Result<usize> {
    file.write(packet)
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
