//! The kernel around the tunnel: tun devices, interface addresses and routes.
//!
//! Everything here talks to Linux: `/dev/net/tun` (ioctl TUNSETIFF) and
//! rtnetlink (RFC 3549) for links, addresses and routes. No `ip` subprocesses.
//! This is the only crate of tsunagi that uses `unsafe` (ioctls).

pub mod netlink;
pub mod tun;

pub use netlink::Netlink;
pub use tun::Tun;
