//! Transports: the tasks that own a socket (or a byte stream), the PPP
//! sessions on it, their timers, and the path between them and a tun
//! (DESIGN.md, "Sessions and transports"). No channel hop and no lock per
//! packet: a transport's sessions live in its own task.
//!
//! - [`stream`]: one session over a site link's SSH byte stream (async HDLC);
//! - [`datagram`]: many sessions on one packet socket, the shape PPTP and
//!   L2TP servers take: a demux table, one timer heap, address pools, one
//!   shared tun routed by inner address;
//! - [`pptp`] and [`l2tp`]: their clients and their servers' ports;
//! - [`tun_path`]: the tun side the PPTP and L2TP clients share;
//! - [`timers`]: the timer heap the servers and the datagram transport
//!   share, and the sleep of a select loop.

pub mod datagram;
pub mod l2tp;
pub mod pptp;
pub mod site;
pub mod stream;
pub mod timers;
pub mod tun_path;
