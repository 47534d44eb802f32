//! NFLOG: packets the filter logs (`log group N` in nftables), read over
//! netlink (`NETLINK_NETFILTER`, subsystem `NFNL_SUBSYS_ULOG`), for the
//! ipmon-style log lines of seed 000 appendix B.3.
//!
//! The message layout is the kernel's `include/uapi/linux/netfilter/
//! nfnetlink_log.h`: a `nlmsghdr`, a `nfgenmsg` (family, version, group in
//! network order), then netlink attributes. [`parse_nflog_datagram`] is the
//! pure parser (tested with byte vectors); [`NflogSocket`] binds a group and
//! receives. The socket is created in the calling thread's network
//! namespace.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

const NETLINK_NETFILTER: libc::c_int = 12;
const NFNL_SUBSYS_ULOG: u16 = 4;
const NFULNL_MSG_PACKET: u16 = 0;
const NFULNL_MSG_CONFIG: u16 = 1;
const NFULA_CFG_CMD: u16 = 1;
const NFULA_CFG_MODE: u16 = 2;
const NFULA_CFG_QTHRESH: u16 = 5;
const NFULNL_CFG_CMD_BIND: u8 = 1;
const NFULNL_COPY_PACKET: u8 = 2;
const NFULA_PACKET_HDR: u16 = 1;
const NFULA_MARK: u16 = 2;
const NFULA_IFINDEX_INDEV: u16 = 4;
const NFULA_IFINDEX_OUTDEV: u16 = 5;
const NFULA_PAYLOAD: u16 = 9;
const NFULA_PREFIX: u16 = 10;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_HDRLEN: usize = 16;
const NFGENMSG_LEN: usize = 4;

/// One logged packet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NflogPacket {
    /// NFLOG group it was sent to.
    pub group: u16,
    /// `log prefix` of the rule.
    pub prefix: String,
    /// Interface index it came in on, if any.
    pub indev: Option<u32>,
    /// Interface index it goes out on, if any.
    pub outdev: Option<u32>,
    /// Netfilter hook number (0 prerouting .. 4 postrouting), if given.
    pub hook: Option<u8>,
    /// Packet mark.
    pub mark: Option<u32>,
    /// The packet from its network header (cut to the copy range).
    pub payload: Vec<u8>,
}

/// A malformed NFLOG datagram; names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NflogError {
    /// A netlink message header claims more or fewer octets than there are.
    #[error("netlink message length {len} at offset {offset} outside the {have}-octet datagram")]
    MessageLength {
        /// Claimed length.
        len: usize,
        /// Offset of the message.
        offset: usize,
        /// Datagram length.
        have: usize,
    },
    /// An attribute header claims more octets than its message has.
    #[error("NFLOG attribute {kind} length {len} outside its message")]
    AttributeLength {
        /// Attribute type.
        kind: u16,
        /// Claimed length.
        len: usize,
    },
    /// An attribute has the wrong size for its type.
    #[error("NFLOG attribute {kind} has {len} octets, expected {expected}")]
    AttributeSize {
        /// Attribute type.
        kind: u16,
        /// Its length.
        len: usize,
        /// Expected length.
        expected: usize,
    },
    /// The kernel answered a request with an error.
    #[error("netlink error {0} from the kernel")]
    Kernel(i32),
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be32(kind: u16, v: &[u8]) -> Result<u32, NflogError> {
    let a: [u8; 4] = v.try_into().map_err(|_| NflogError::AttributeSize {
        kind,
        len: v.len(),
        expected: 4,
    })?;
    Ok(u32::from_be_bytes(a))
}

/// Parse one datagram from an NFLOG socket into the packets it carries.
/// Messages other than NFULNL_MSG_PACKET are skipped; an NLMSG_ERROR with a
/// non-zero code is an error (zero is an ACK).
pub fn parse_nflog_datagram(buf: &[u8]) -> Result<Vec<NflogPacket>, NflogError> {
    let mut packets = Vec::new();
    let mut offset = 0;
    while buf.len() - offset >= NLMSG_HDRLEN {
        let len = u32_at(buf, offset) as usize;
        if len < NLMSG_HDRLEN || len > buf.len() - offset {
            return Err(NflogError::MessageLength {
                len,
                offset,
                have: buf.len(),
            });
        }
        let kind = u16_at(buf, offset + 4);
        let start = offset;
        let msg = &buf[offset..offset + len];
        offset = (offset + ((len + 3) & !3)).min(buf.len());
        if kind == NLMSG_ERROR {
            if msg.len() >= NLMSG_HDRLEN + 4 {
                let code = u32_at(msg, NLMSG_HDRLEN) as i32;
                if code != 0 {
                    return Err(NflogError::Kernel(code));
                }
            }
            continue;
        }
        if kind == NLMSG_DONE || kind != (NFNL_SUBSYS_ULOG << 8 | NFULNL_MSG_PACKET) {
            continue;
        }
        if msg.len() < NLMSG_HDRLEN + NFGENMSG_LEN {
            return Err(NflogError::MessageLength {
                len,
                offset: start,
                have: buf.len(),
            });
        }
        let mut packet = NflogPacket {
            group: u16::from_be_bytes([msg[NLMSG_HDRLEN + 2], msg[NLMSG_HDRLEN + 3]]),
            ..NflogPacket::default()
        };
        let mut at = NLMSG_HDRLEN + NFGENMSG_LEN;
        while msg.len() - at >= 4 {
            let alen = usize::from(u16_at(msg, at));
            // Nested and byte-order flags live in the top two bits.
            let akind = u16_at(msg, at + 2) & 0x3fff;
            if alen < 4 || alen > msg.len() - at {
                return Err(NflogError::AttributeLength {
                    kind: akind,
                    len: alen,
                });
            }
            let value = &msg[at + 4..at + alen];
            at += (alen + 3) & !3;
            at = at.min(msg.len());
            match akind {
                NFULA_PACKET_HDR => {
                    if value.len() < 3 {
                        return Err(NflogError::AttributeSize {
                            kind: akind,
                            len: value.len(),
                            expected: 4,
                        });
                    }
                    packet.hook = Some(value[2]);
                }
                NFULA_MARK => packet.mark = Some(be32(akind, value)?),
                NFULA_IFINDEX_INDEV => packet.indev = Some(be32(akind, value)?),
                NFULA_IFINDEX_OUTDEV => packet.outdev = Some(be32(akind, value)?),
                NFULA_PAYLOAD => packet.payload = value.to_vec(),
                NFULA_PREFIX => {
                    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
                    packet.prefix = String::from_utf8_lossy(&value[..end]).into_owned();
                }
                _ => {}
            }
        }
        packets.push(packet);
    }
    Ok(packets)
}

/// A netlink message of the ULOG subsystem's CONFIG type for `group`.
fn config_message(group: u16, seq: u32, attr_kind: u16, value: &[u8]) -> Vec<u8> {
    let attr_len = 4 + value.len();
    let len = NLMSG_HDRLEN + NFGENMSG_LEN + ((attr_len + 3) & !3);
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&(NFNL_SUBSYS_ULOG << 8 | NFULNL_MSG_CONFIG).to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.push(libc::AF_UNSPEC as u8);
    m.push(0); // NFNETLINK_V0
    m.extend_from_slice(&group.to_be_bytes());
    m.extend_from_slice(&(attr_len as u16).to_ne_bytes());
    m.extend_from_slice(&attr_kind.to_ne_bytes());
    m.extend_from_slice(value);
    m.resize(len, 0);
    m
}

/// A netlink socket bound to one NFLOG group.
#[derive(Debug)]
pub struct NflogSocket {
    fd: OwnedFd,
    group: u16,
}

impl NflogSocket {
    /// Open a socket in this thread's network namespace, bind NFLOG `group`
    /// and ask for whole packets (up to 65535 octets).
    pub fn bind(group: u16) -> io::Result<NflogSocket> {
        // SAFETY: socket(2) with constant arguments; the result is checked
        // and owned at once.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                NETLINK_NETFILTER,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: an all-zero sockaddr_nl is valid (pid 0: kernel assigns).
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: `addr` is a valid sockaddr_nl and its size is passed.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                std::ptr::addr_of!(addr).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let sock = NflogSocket { fd, group };
        sock.set_read_timeout(Some(Duration::from_secs(2)))?;
        sock.request(1, NFULA_CFG_CMD, &[NFULNL_CFG_CMD_BIND])?;
        let mut mode = Vec::from(65535u32.to_be_bytes());
        mode.extend_from_slice(&[NFULNL_COPY_PACKET, 0]);
        sock.request(2, NFULA_CFG_MODE, &mode)?;
        // One packet per message, at once: the kernel's default batches up
        // to 100 packets or 1 s, and a log line a second late misleads.
        sock.request(3, NFULA_CFG_QTHRESH, &1u32.to_be_bytes())?;
        // A burst must not overflow the queue (the kernel caps this at
        // net.core.rmem_max; ENOBUFS tells the reader it happened anyway).
        let size: libc::c_int = 1 << 20;
        // SAFETY: passes a valid c_int and its size.
        let rc = unsafe {
            libc::setsockopt(
                sock.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                std::ptr::addr_of!(size).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        sock.set_read_timeout(None)?;
        Ok(sock)
    }

    /// The group this socket is bound to.
    pub fn group(&self) -> u16 {
        self.group
    }

    fn request(&self, seq: u32, kind: u16, value: &[u8]) -> io::Result<()> {
        let msg = config_message(self.group, seq, kind, value);
        // SAFETY: sends `msg.len()` initialised octets from a live buffer.
        let rc = unsafe { libc::send(self.fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = [0u8; 4096];
        let n = self.recv_raw(&mut buf)?;
        match parse_nflog_datagram(&buf[..n]) {
            Ok(_) => Ok(()),
            Err(NflogError::Kernel(code)) => Err(io::Error::from_raw_os_error(-code)),
            Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }

    /// Wait at most `timeout` in [`NflogSocket::recv`] (`None`: forever).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        let t = timeout.unwrap_or(Duration::ZERO);
        let tv = libc::timeval {
            tv_sec: t.as_secs() as libc::time_t,
            tv_usec: t.subsec_micros() as libc::suseconds_t,
        };
        // SAFETY: passes a valid timeval and its size.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                std::ptr::addr_of!(tv).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Non-blocking mode, for driving the socket from an event loop (tokio's
    /// `AsyncFd` over [`AsFd`]): [`NflogSocket::recv`] then fails with
    /// `WouldBlock` when nothing is queued.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        // SAFETY: F_GETFL on a descriptor we own.
        let flags = unsafe { libc::fcntl(self.fd.as_raw_fd(), libc::F_GETFL) };
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        let flags = if on {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        // SAFETY: F_SETFL with flags derived from F_GETFL.
        if unsafe { libc::fcntl(self.fd.as_raw_fd(), libc::F_SETFL, flags) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn recv_raw(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: the kernel writes at most `buf.len()` octets into `buf`.
        let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// Receive one datagram (blocking, or until the read timeout: then an
    /// error of kind `WouldBlock`/`TimedOut`) and return its packets.
    pub fn recv(&self) -> io::Result<Vec<NflogPacket>> {
        let mut buf = vec![0u8; 128 * 1024];
        let n = self.recv_raw(&mut buf)?;
        parse_nflog_datagram(&buf[..n]).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

impl AsFd for NflogSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for NflogSocket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

/// Name of interface `index` in this thread's network namespace.
pub fn interface_name(index: u32) -> io::Result<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` has the IF_NAMESIZE octets if_indextoname(3) may write.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return Err(io::Error::last_os_error());
    }
    let bytes: Vec<u8> = buf
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(value);
        while a.len() % 4 != 0 {
            a.push(0);
        }
        a
    }

    fn packet_message(attrs: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = attrs.concat();
        let len = NLMSG_HDRLEN + NFGENMSG_LEN + body.len();
        let mut m = Vec::new();
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&(NFNL_SUBSYS_ULOG << 8).to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(&[2, 0, 0, 1]);
        m.extend_from_slice(&body);
        m
    }

    #[test]
    fn parses_prefix_interfaces_and_payload() {
        let msg = packet_message(&[
            attr(NFULA_PACKET_HDR, &[8, 0, 0, 0]),
            attr(NFULA_IFINDEX_INDEV, &7u32.to_be_bytes()),
            attr(NFULA_PAYLOAD, &[0x45, 0, 0, 20, 1]),
            attr(NFULA_PREFIX, b"@300:2 p IN K-S K-F\0"),
        ]);
        let mut two = msg.clone();
        two.extend_from_slice(&msg);
        let packets = parse_nflog_datagram(&two).unwrap();
        assert_eq!(packets.len(), 2);
        let p = &packets[0];
        assert_eq!(p.group, 1);
        assert_eq!(p.hook, Some(0));
        assert_eq!(p.indev, Some(7));
        assert_eq!(p.outdev, None);
        assert_eq!(p.prefix, "@300:2 p IN K-S K-F");
        assert_eq!(p.payload, [0x45, 0, 0, 20, 1]);
    }

    #[test]
    fn malformed_lengths_are_errors_not_panics() {
        let msg = packet_message(&[attr(NFULA_PREFIX, b"x\0")]);
        for cut in 0..msg.len() {
            let mut m = msg[..cut].to_vec();
            if m.len() >= 4 {
                m[..4].copy_from_slice(&(cut as u32).to_ne_bytes());
            }
            let _ = parse_nflog_datagram(&m);
        }
        let mut bad = msg.clone();
        bad[NLMSG_HDRLEN + NFGENMSG_LEN] = 200; // attribute length
        assert!(matches!(
            parse_nflog_datagram(&bad),
            Err(NflogError::AttributeLength { .. })
        ));
        let mut bad = msg;
        bad[0] = 255;
        assert!(matches!(
            parse_nflog_datagram(&bad),
            Err(NflogError::MessageLength { .. })
        ));
        let wrong_size = packet_message(&[attr(NFULA_IFINDEX_OUTDEV, &[1, 2])]);
        assert!(matches!(
            parse_nflog_datagram(&wrong_size),
            Err(NflogError::AttributeSize { kind: 5, .. })
        ));
    }
}
