//! A UDP socket with batched reads and writes (`recvmmsg`/`sendmmsg`),
//! driven by tokio: the transport of L2TP (RFC 2661 section 8.1, UDP port
//! 1701), where every control and data message is one datagram.
//!
//! The batches are the GRE socket's ([`RecvBatch`], [`SendBatch`]; see
//! [`crate::gre`] for how they are reused and why a full kernel queue
//! drops rather than blocks): a datagram here is the UDP payload alone, and
//! its source or destination carries a port ([`RecvBatch::get_from`],
//! [`SendBatch::slot_to`]).

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use rustix::net::{AddressFamily, SendFlags, SocketFlags, SocketType};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

pub use crate::gre::{RecvBatch, SendBatch};

/// A non-blocking IPv4 UDP socket registered with tokio.
///
/// All methods take `&self`.
#[derive(Debug)]
pub struct UdpBatchSocket {
    fd: AsyncFd<OwnedFd>,
}

impl UdpBatchSocket {
    /// `socket(AF_INET, SOCK_DGRAM)` bound to `local` (with
    /// `SO_REUSEADDR`, so that a restarted daemon gets its port back at
    /// once), registered with the current tokio runtime. A port below 1024
    /// needs CAP_NET_BIND_SERVICE.
    pub fn bind(local: SocketAddrV4) -> io::Result<UdpBatchSocket> {
        UdpBatchSocket::bind_on(local, None)
    }

    /// [`bind`](Self::bind), and with a `device` only that interface's
    /// datagrams are received and everything sent leaves through it
    /// (`SO_BINDTODEVICE`, set before the port is bound, so that sockets
    /// on other devices may share the port): for L2TP/IPsec, a socket
    /// that sees nothing but what came out of IPsec.
    pub fn bind_on(local: SocketAddrV4, device: Option<&str>) -> io::Result<UdpBatchSocket> {
        let context = |op: &str, e: io::Error| io::Error::new(e.kind(), format!("udp: {op}: {e}"));
        let fd = rustix::net::socket_with(
            AddressFamily::INET,
            SocketType::DGRAM,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| context("socket(AF_INET, SOCK_DGRAM)", e.into()))?;
        rustix::net::sockopt::set_socket_reuseaddr(&fd, true)
            .map_err(|e| context("SO_REUSEADDR", e.into()))?;
        if let Some(device) = device {
            bind_to_device(&fd, device)
                .map_err(|e| context(&format!("SO_BINDTODEVICE {device}"), e))?;
        }
        rustix::net::bind(&fd, &local).map_err(|e| context(&format!("bind {local}"), e.into()))?;
        if let Err(e) = tokio::runtime::Handle::try_current() {
            return Err(context("register with tokio", io::Error::other(e)));
        }
        // SAFETY: `fd` owns its descriptor, and `AsyncFd` owns `fd` from
        // here on; nothing closes or replaces that descriptor before the
        // `AsyncFd` is dropped.
        let fd =
            unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE | Interest::WRITABLE) }
                .map_err(|e| context("register with tokio", e.into()))?;
        Ok(UdpBatchSocket { fd })
    }

    /// Receive only from `peer` (`connect(2)`), for a client that talks to
    /// one server. An ICMP error about what was sent (port unreachable:
    /// nobody listens there) then fails the next receive once
    /// (`ECONNREFUSED`); the socket stays usable.
    pub fn connect(&self, peer: SocketAddrV4) -> io::Result<()> {
        rustix::net::connect(self.fd.get_ref(), &peer).map_err(|e| {
            io::Error::new(
                io::Error::from(e).kind(),
                format!("udp: connect {peer}: {e}"),
            )
        })
    }

    /// The local address and port.
    pub fn local_addr(&self) -> io::Result<SocketAddrV4> {
        let addr = rustix::net::getsockname(self.fd.get_ref()).map_err(io::Error::from)?;
        SocketAddrV4::try_from(addr)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "udp: not an IPv4 address"))
    }

    /// Ask for a receive buffer of `bytes`, beyond `net.core.rmem_max`
    /// when we have CAP_NET_ADMIN (`SO_RCVBUFFORCE`), else capped
    /// (`SO_RCVBUF`).
    pub fn set_recv_buffer_size_force(&self, bytes: usize) -> io::Result<()> {
        let fd = self.fd.get_ref();
        match rustix::net::sockopt::set_socket_recv_buffer_size_force(fd, bytes) {
            Ok(()) => Ok(()),
            Err(_) => rustix::net::sockopt::set_socket_recv_buffer_size(fd, bytes).map_err(|e| {
                io::Error::new(io::Error::from(e).kind(), format!("udp: SO_RCVBUF: {e}"))
            }),
        }
    }

    /// Ask for a send buffer of `bytes`, beyond `net.core.wmem_max` when
    /// we have CAP_NET_ADMIN (`SO_SNDBUFFORCE`), else capped (`SO_SNDBUF`).
    pub fn set_send_buffer_size_force(&self, bytes: usize) -> io::Result<()> {
        let fd = self.fd.get_ref();
        match rustix::net::sockopt::set_socket_send_buffer_size_force(fd, bytes) {
            Ok(()) => Ok(()),
            Err(_) => rustix::net::sockopt::set_socket_send_buffer_size(fd, bytes).map_err(|e| {
                io::Error::new(io::Error::from(e).kind(), format!("udp: SO_SNDBUF: {e}"))
            }),
        }
    }

    /// Let the kernel coalesce datagrams of one flow that arrive in a run
    /// (`UDP_GRO`, `udp(7)`, Linux 5.0): one receive then takes up to 64
    /// KiB, which a [`RecvBatch::with_gro`] splits into the datagrams
    /// again. A batch made with [`RecvBatch::new`] must not be used on it.
    pub fn set_gro(&self, on: bool) -> io::Result<()> {
        let value = libc::c_int::from(on);
        // SAFETY: setsockopt reads `size_of::<c_int>()` octets from the
        // pointer, a live c_int; the fd is an open socket.
        let rc = unsafe {
            libc::setsockopt(
                self.as_raw_fd(),
                libc::SOL_UDP,
                crate::gre::UDP_GRO,
                std::ptr::addr_of!(value).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("udp: UDP_GRO: {e}")));
        }
        Ok(())
    }

    /// Wait until datagrams are queued, then take as many as `batch` holds
    /// (`recvmmsg`). Returns how many were delivered, at least one.
    /// Cancel-safe: it only waits before receiving.
    pub async fn recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.ready(Interest::READABLE | Interest::ERROR).await?;
            match guard.try_io(|fd| crate::gre::recv_into(fd.get_ref().as_fd(), batch)) {
                Ok(Ok(0)) => continue,
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Send every datagram of `batch` (`sendmmsg`, never waiting) and
    /// empty it; see [`crate::gre::GreSocket::flush`] for what is dropped
    /// and what is returned.
    pub fn flush(&self, batch: &mut SendBatch) -> io::Result<usize> {
        crate::gre::flush_into(self.fd.get_ref().as_fd(), batch, "udp")
    }

    /// Send one datagram to `dest` without waiting.
    pub fn send_to(&self, bytes: &[u8], dest: SocketAddrV4) -> io::Result<usize> {
        rustix::net::sendto(self.fd.get_ref(), bytes, SendFlags::DONTWAIT, &dest).map_err(|e| {
            io::Error::new(
                io::Error::from(e).kind(),
                format!("udp: send to {dest}: {e}"),
            )
        })
    }
}

impl AsRawFd for UdpBatchSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.get_ref().as_raw_fd()
    }
}

impl AsFd for UdpBatchSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.get_ref().as_fd()
    }
}

/// The unspecified address on `port`: what a server binds to when it is
/// given no address.
pub fn any(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)
}

/// `setsockopt(SO_BINDTODEVICE, device)`.
fn bind_to_device(fd: &OwnedFd, device: &str) -> io::Result<()> {
    if device.is_empty() || device.len() >= libc::IFNAMSIZ || device.contains('\0') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{device:?} is not an interface name"),
        ));
    }
    // SAFETY: setsockopt reads `device.len()` octets from a live &str;
    // the fd is an open socket.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            device.as_ptr().cast(),
            device.len() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_batch_goes_out_and_comes_back_with_its_ports() {
        let a = UdpBatchSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).unwrap();
        let b = UdpBatchSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).unwrap();
        let (at_a, at_b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let mut out = SendBatch::new(4, 64);
        for i in 0..3u8 {
            out.slot_to(at_b).extend_from_slice(&[i; 5]);
        }
        assert_eq!(a.flush(&mut out).unwrap(), 3);
        let mut got = Vec::new();
        let mut batch = RecvBatch::new(8, 64);
        while got.len() < 3 {
            let n =
                tokio::time::timeout(std::time::Duration::from_secs(5), b.recv_batch(&mut batch))
                    .await
                    .unwrap()
                    .unwrap();
            for i in 0..n {
                let (from, bytes) = batch.get_from(i).unwrap();
                got.push((from, bytes.to_vec()));
            }
        }
        assert_eq!(
            got,
            (0..3u8).map(|i| (at_a, vec![i; 5])).collect::<Vec<_>>()
        );
    }

    /// Datagrams of `len` octets, each filled with its number.
    fn numbered(lens: &[usize]) -> Vec<Vec<u8>> {
        lens.iter()
            .enumerate()
            .map(|(i, &len)| vec![i as u8; len])
            .collect()
    }

    /// Everything `socket` receives until `count` datagrams are in.
    async fn receive(socket: &UdpBatchSocket, batch: &mut RecvBatch, count: usize) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        while got.len() < count {
            let n =
                tokio::time::timeout(std::time::Duration::from_secs(5), socket.recv_batch(batch))
                    .await
                    .expect("the datagrams arrive")
                    .unwrap();
            for i in 0..n {
                got.push(batch.get_from(i).unwrap().1.to_vec());
            }
        }
        got
    }

    /// Equal datagrams and a shorter last one go out as one UDP GSO send
    /// (udp(7) UDP_SEGMENT); a longer one starts the next train. A socket
    /// with GRO takes each train whole and the batch gives its datagrams
    /// back one by one; one without GRO gets them cut by the kernel.
    #[tokio::test]
    async fn gso_trains_arrive_as_the_datagrams_they_were() {
        let lens = [300, 300, 300, 120, 500, 500, 7];
        let sent = numbered(&lens);
        for gro in [true, false] {
            let a = UdpBatchSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).unwrap();
            let b = UdpBatchSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).unwrap();
            let mut batch = if gro {
                b.set_gro(true).unwrap();
                RecvBatch::with_gro(4, crate::gre::GRO_SLOT_SIZE)
            } else {
                RecvBatch::new(16, 1024)
            };
            let mut out = SendBatch::new(4, 64);
            out.set_gso(true);
            for d in &sent {
                out.push_segment(b.local_addr().unwrap(), |buf| {
                    buf.extend_from_slice(d);
                    Ok::<(), ()>(())
                })
                .unwrap();
            }
            // 300 300 300 120 | 500 500 7
            assert_eq!(out.len(), 2);
            // A failed write queues nothing.
            assert!(out
                .push_segment(b.local_addr().unwrap(), |buf| {
                    buf.extend_from_slice(&[9; 3]);
                    Err::<(), _>("no")
                })
                .is_err());
            assert_eq!(a.flush(&mut out).unwrap(), lens.len());
            assert_eq!((out.sent(), out.gso_sends(), out.failed()), (7, 2, 0));
            let got = receive(&b, &mut batch, lens.len()).await;
            assert_eq!(got, sent, "gro {gro}");
            if gro {
                assert!(batch.coalesced() >= 1);
            }
        }
    }

    /// Datagrams longer than the GSO limit go alone (the kernel would
    /// refuse a train of them beyond the path MTU, and fragments a lone
    /// one); shorter ones still make trains.
    #[tokio::test]
    async fn datagrams_over_the_gso_limit_go_alone() {
        let lens = [1500, 1500, 1400, 1400, 1400];
        let sent = numbered(&lens);
        let a = UdpBatchSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).unwrap();
        let b = UdpBatchSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).unwrap();
        let mut out = SendBatch::new(4, 64);
        out.set_gso(true);
        out.set_gso_max_segment(1472);
        for d in &sent {
            out.push_segment(b.local_addr().unwrap(), |buf| {
                buf.extend_from_slice(d);
                Ok::<(), ()>(())
            })
            .unwrap();
        }
        // 1500 | 1500 | 1400 1400 1400
        assert_eq!(out.len(), 3);
        assert_eq!(a.flush(&mut out).unwrap(), lens.len());
        assert_eq!((out.sent(), out.gso_sends(), out.failed()), (5, 1, 0));
        let mut batch = RecvBatch::new(16, 2048);
        assert_eq!(receive(&b, &mut batch, lens.len()).await, sent);
    }

    /// A socket bound to a device takes only that device's datagrams: one
    /// on `lo` gets what is sent to 127.0.0.1, one on a device that does
    /// not exist cannot be made.
    #[tokio::test]
    async fn a_socket_bound_to_a_device() {
        match UdpBatchSocket::bind_on(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0), Some("lo")) {
            Ok(b) => {
                let a = UdpBatchSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).unwrap();
                a.send_to(b"x", b.local_addr().unwrap()).unwrap();
                let mut batch = RecvBatch::new(4, 64);
                assert_eq!(receive(&b, &mut batch, 1).await, vec![b"x".to_vec()]);
            }
            // Without CAP_NET_RAW (before Linux 5.7) binding needs it.
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}"),
        }
        let Err(e) = UdpBatchSocket::bind_on(
            SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
            Some("no-such-dev0"),
        ) else {
            panic!("bound to a device that does not exist");
        };
        assert!(
            e.to_string().contains("SO_BINDTODEVICE no-such-dev0"),
            "{e}"
        );
        assert!(
            UdpBatchSocket::bind_on(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0), Some("")).is_err()
        );
    }

    /// Without GSO every datagram is a slot of its own, as `slot_to`
    /// makes them.
    #[tokio::test]
    async fn without_gso_no_train_is_built() {
        let a = UdpBatchSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).unwrap();
        let b = UdpBatchSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).unwrap();
        let sent = numbered(&[200, 200, 200]);
        let mut out = SendBatch::new(4, 64);
        for d in &sent {
            out.push_segment(b.local_addr().unwrap(), |buf| {
                buf.extend_from_slice(d);
                Ok::<(), ()>(())
            })
            .unwrap();
        }
        assert_eq!(out.len(), 3);
        assert_eq!(a.flush(&mut out).unwrap(), 3);
        assert_eq!(out.gso_sends(), 0);
        let got = receive(&b, &mut RecvBatch::new(8, 1024), 3).await;
        assert_eq!(got, sent);
    }
}
