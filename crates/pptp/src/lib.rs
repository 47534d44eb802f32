//! PPTP, the Point-to-Point Tunneling Protocol (RFC 2637), sans-IO.
//!
//! Implements:
//! - RFC 2637 section 2: every control message (types 1 to 15) as a typed
//!   value that parses from and emits to its fixed-length wire form, and the
//!   reassembly of those messages from the TCP byte stream ([`control`]);
//! - RFC 2637 section 3: the control connection engine in both roles, PAC
//!   (the server side: answers Start-Control-Connection-Request and the PNS's
//!   Outgoing-Call-Requests) and PNS (the client side: starts the control
//!   connection and places outgoing calls), with echo keepalive, call id
//!   mapping, call clearing and Stop-Control-Connection ([`connection`]);
//! - RFC 2637 section 4.1: the enhanced GRE header, and the IPv4 header a raw
//!   `IPPROTO_GRE` socket hands over ([`gre`]);
//! - RFC 2637 sections 4.2 to 4.4: one call's sequence numbers,
//!   acknowledgements (piggybacked or ack-only) and the peer's receive window
//!   ([`window`]).
//!
//! Leaves out: incoming calls (Incoming-Call-Request is answered "Do Not
//! Accept": a gateway has no telephone line to ring), RFC 2637 section 4.4's
//! adaptive acknowledgement time-out and the window closing on it (nothing is
//! retransmitted in PPTP, and the peers in the field do not do it either: see
//! [`window`]), the TCP-level collision of section 3.1.3 (one TCP connection
//! is one [`connection::Connection`]; the daemon decides which to keep), and
//! management messages (PPTP Message Type 2, "currently not defined").
//!
//! Everything here does no I/O: bytes and time go in through `handle_*`,
//! bytes, events and deadlines come out through `poll_*`. Nothing reads a
//! clock or draws random numbers; the caller passes `now` and chooses the
//! call ids.
//!
//! Read the control messages with [`control::ControlReader`]: the Length,
//! the PPTP Message Type and the Magic Cookie are checked before anything
//! else is read (PoPToP's remote overflow, CVE-2003-0213, came from a
//! Length that was trusted).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[macro_use]
mod macros;

pub mod connection;
pub mod control;
pub mod fuzzing;
pub mod gre;
pub mod text;
pub mod window;

pub use connection::{
    CallEnd, CallError, CallState, ClearReason, CloseReason, Connection, ConnectionConfig,
    ConnectionCounters, ConnectionEvent, ControlState, Role,
};
pub use control::{ControlError, ControlReader, Message};
pub use gre::{ipv4_payload, GreError, GreHeader};
pub use window::{CallWindow, Received, WindowCounters};
