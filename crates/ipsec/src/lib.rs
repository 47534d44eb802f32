//! IPsec in userland, sans-IO: the wire formats and engines; the daemon
//! owns the sockets, the tun and the clock.
//!
//! - [`esp`]: ESP (RFC 4303), sealing and opening in place, anti-replay,
//!   tunnel and transport mode, UDP encapsulation (RFC 3948).
//! - [`isakmp`]: ISAKMP (RFC 2408) messages and payloads as typed views.

pub mod esp;
pub mod ike;
pub mod isakmp;
