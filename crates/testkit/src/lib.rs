//! Test helpers for tsunagi's tests, not part of the gateway: the peers of
//! a link as a test drives them, well-behaved or hostile, and readings of
//! a process the tests watch.
//!
//! - [`hostile`]: what an attacking PPP peer sends (Configure-Request
//!   floods, Terminate-Requests with forged log lines, long and binary
//!   names), as frames any transport can carry, and async-HDLC framing of
//!   them for byte streams;
//! - [`direct`]: the peer of a `tsunagi direct` process, with the engine
//!   behind it driven by hand, or raw bytes in and nothing read out;
//! - [`process`]: a process's resident memory and open descriptors;
//! - [`corpus`]: the fuzz corpora replayed, and their seeds checked, as
//!   tests.
//!
//! The PPTP, L2TP and IPsec tests reuse [`hostile`] with their own
//! transports: its frames are whole PPP frames (RFC 1661 section 2), the
//! way those transports carry them.

pub mod corpus;
pub mod direct;
pub mod hostile;
pub mod process;
