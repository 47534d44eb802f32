//! PPP in userland, sans-IO.
//!
//! Implements:
//! - RFC 1662 async HDLC-like framing: flags, control escapes, FCS-16, ACCM
//!   in both directions, address/control field compression ([`hdlc`]);
//! - RFC 1661 the option negotiation automaton and LCP ([`fsm`], [`lcp`]),
//!   RFC 1570 Identification, Echo keepalive, Protocol-Reject;
//! - RFC 1332 + RFC 1877 IPCP with DNS ([`ipcp`]); RFC 5072 IPV6CP ([`ipv6cp`]);
//! - RFC 1661 s3.5 the Authenticate phase ([`auth`]): RFC 1334 PAP, RFC 1994
//!   CHAP-MD5 with rechallenge, RFC 2759 MS-CHAPv2 (no retry, no
//!   Change-Password), each as authenticator and as peer; secrets through
//!   the [`secrets::Secrets`] trait, pppd's chap-secrets format parsed by
//!   [`secrets::ChapSecrets`];
//! - RFC 1962 CCP with RFC 1979 Deflate and RFC 3078/3079 MPPE (40/128-bit,
//!   stateless and stateful) ([`ccp`]).
//!
//! Around them: typed views of control packets and options ([`wire`]),
//! pppd-style text of packets for logs and tests ([`display`]), and a
//! seeded generator for magic numbers and interface identifiers ([`rng`]).
//!
//! Leaves out (for now): EAP, MS-CHAPv1, BSD-Compress/Predictor/MPPC,
//! multilink, synchronous framing.
//!
//! The engine ([`link::Link`]) does no I/O: bytes and time go in through
//! `handle_*`, bytes, events and deadlines come out through `poll_*`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod ccp;
pub mod display;
pub mod frame;
pub mod fsm;
pub mod fuzzing;
pub mod hdlc;
pub mod ipcp;
pub mod ipv6cp;
pub mod lcp;
pub mod link;
pub mod rng;
pub mod secrets;
pub mod stream;
pub mod wire;

pub use auth::{AuthConfig, AuthMethod};
pub use ccp::{CcpConfig, DeflateConfig, MppeConfig};
pub use display::{describe, PacketDisplay};
pub use link::{
    AuthEvent, ControlBudget, DownReason, EchoConfig, Event, FsmTimers, IpVersion, IpcpConfig,
    Ipv6cpConfig, LcpConfig, Link, LinkConfig, LinkStats, LinkStatus, Phase,
};
