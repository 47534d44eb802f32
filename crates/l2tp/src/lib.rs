//! L2TP version 2, the Layer Two Tunneling Protocol (RFC 2661), sans-IO.
//!
//! Implements:
//! - RFC 2661 section 3.1: the header of control and data messages, with
//!   Length, Ns/Nr, Offset Size and the P bit ([`header`]);
//! - sections 4.1 to 4.4: AVPs with the M and H bits, every AVP of section
//!   4.4 as a typed value, hidden AVPs with the shared secret and the Random
//!   Vector ([`avp`]);
//! - section 6: every control message (SCCRQ, SCCRP, SCCCN, StopCCN, HELLO,
//!   OCRQ, OCRP, OCCN, ICRQ, ICRP, ICCN, CDN, WEN, SLI) with the AVPs it
//!   requires, and section 4.2's handling of unknown AVPs ([`message`]);
//! - section 5.8 and Appendix A: reliable delivery of control messages
//!   (Ns/Nr, ZLB acknowledgements, retransmission with exponential backoff,
//!   the peer's receive window, slow start and congestion avoidance,
//!   duplicates and out-of-order messages) ([`reliable`]);
//! - sections 5.1 to 5.7 and 7: a tunnel engine in either role (LAC, LNS)
//!   and either end of establishment: tunnel authentication (Challenge /
//!   Challenge Response), HELLO keepalive, StopCCN teardown, incoming and
//!   outgoing calls, CDN, WEN, SLI, and data messages with optional Length
//!   and sequence numbers ([`tunnel`]);
//! - the demultiplexing of datagrams from many peers on one UDP socket,
//!   with the peer's address and port part of a tunnel's identity and
//!   limits on new tunnels, and section 4.4.3's Tie Breaker ([`dispatch`]);
//! - log text of every message in pppd's and xl2tpd's detail ([`text`]).
//!
//! Leaves out: L2TPv3 (RFC 3931); proxy LCP and proxy authentication are
//! parsed and reported but not acted on (the LNS runs its own LCP and
//! authentication, as xl2tpd does); the ACCM of SLI is reported, not
//! applied (there is no HDLC on a packet transport); the Q.931 Cause Code is
//! reported, never sent; Offset Size is read on data messages but never
//! sent; the P bit is read, never set; no Hidden AVP padding is sent.
//!
//! Everything here does no I/O: datagrams and time go in through
//! `handle_*`, datagrams, events and deadlines come out through `poll_*`.
//! Nothing reads a clock. Randomness (Session IDs, Challenges, Tie
//! Breakers, Random Vectors) comes from the [`tsunagi_crypto::Random`]
//! handed in, the OS CSPRNG in a running gateway.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[macro_use]
mod macros;

pub mod avp;
pub mod dispatch;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod header;
pub mod message;
pub mod reliable;
pub mod text;
pub mod tunnel;

pub use avp::{AttributeType, Avp, AvpError};
pub use dispatch::{Dispatch, DispatchConfig, Route};
pub use header::{Header, HeaderError, Kind, DATA_HEADROOM, UDP_PORT};
pub use message::{CdnResult, ErrorCode, Message, MessageError, MessageType, StopCcnResult};
pub use reliable::{Reliable, ReliableConfig};
pub use tunnel::{
    CallDirection, CallInfo, CallParams, DownReason, Input, Role, SessionEnd, SessionError,
    SessionState, Tunnel, TunnelConfig, TunnelCounters, TunnelEvent, TunnelState,
};
