//! IPsec in userland, sans-IO: the wire formats and engines; the daemon
//! owns the sockets, the tun and the clock.
//!
//! - [`esp`]: ESP (RFC 4303), sealing and opening in place, anti-replay,
//!   tunnel and transport mode, UDP encapsulation (RFC 3948).
//! - [`isakmp`]: ISAKMP (RFC 2408) messages and payloads as typed views.
//! - [`probe`]: Main Mode message 1 probes of an IKEv1 responder (RFC
//!   2409 s5), what `tsunagi probe ike` sends and reads.

pub mod esp;
pub mod ike;
pub mod isakmp;
pub mod probe;
