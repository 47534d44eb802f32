//! The kernel around the tunnel: tun devices, raw sockets, interface
//! addresses, routes and proxy ARP.
//!
//! Everything here talks to Linux: `/dev/net/tun` (ioctl TUNSETIFF), raw
//! IP sockets ([`gre`]: GRE with `recvmmsg`/`sendmmsg`), UDP with the same
//! batches ([`udp`]) and rtnetlink
//! (RFC 3549) for links, addresses and routes. No `ip` subprocesses.
//! This is the only crate of tsunagi that uses `unsafe` (ioctls,
//! `recvmmsg`); each block is small and says why it is sound.

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

pub mod civil;
pub mod gre;
pub mod gro;
pub mod holes;
pub mod netlink;
pub mod nflog;
pub mod nft;
pub mod offload;
pub mod policy_apply;
pub mod policy_route;
pub mod proxy_arp;
pub mod tun;
pub mod udp;

pub use gre::GreSocket;
pub use netlink::{InterfaceAddress, Ipv4Net, Ipv4NetError, Netlink, ROUTE_PROTOCOL};
pub use tun::Tun;
