//! IPsec in userland, sans-IO: the wire formats and engines; the daemon
//! owns the sockets, the tun and the clock.
//!
//! - [`esp`]: ESP (RFC 4303), sealing and opening in place, anti-replay,
//!   tunnel and transport mode, UDP encapsulation (RFC 3948).
//! - [`ike`]: IKEv1 (RFC 2409) as an engine: Main Mode with pre-shared
//!   keys, Quick Mode, NAT-T (RFC 3947), DPD (RFC 3706), rekeying.
//! - [`isakmp`]: ISAKMP (RFC 2408) messages and payloads as typed views.
//! - [`probe`]: Main Mode message 1 probes of an IKEv1 responder (RFC
//!   2409 s5), what `tsunagi probe ike` sends and reads.
//! - [`transport`]: the host's own packets taken apart for transport mode
//!   and rebuilt after it (RFC 4303 s3.1.1, RFC 3948 s3.1.2).

pub mod esp;
pub mod ike;
pub mod isakmp;
pub mod probe;
pub mod transport;
