//! IKEv1 (RFC 2409) as a sans-IO engine: Main Mode with pre-shared keys,
//! Quick Mode with and without PFS, NAT-T (RFC 3947), DPD (RFC 3706),
//! Informational exchanges (delete, INITIAL-CONTACT), retransmission and
//! rekeying. The driver owns the UDP 500/4500 sockets, the clock and the
//! ESP SAs the engine hands out.
//!
//! One [`Engine`] serves one configured connection (`conn` in ipsec.conf
//! terms) and every IKE SA negotiated for it: one when it initiates, one
//! per client when it responds to `%any`.
//!
//! The driver loop:
//! - every datagram on UDP 500, and every non-ESP datagram on 4500 (after
//!   the driver strips the non-ESP marker), goes to [`Engine::handle`];
//! - at [`Engine::poll_timeout`], [`Engine::handle_timeout`];
//! - after either, drain [`Engine::poll_transmit`] (a Transmit on port 4500
//!   needs the non-ESP marker) and [`Engine::poll_event`] (child SAs to
//!   install and remove, IKE SAs up and down, failures to log).

mod engine;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod info;
pub mod keys;
mod phase1;
mod phase2;
mod wire;

pub use engine::Engine;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tsunagi_crypto::Secret;

use crate::esp::{InboundSa, Mode, OutboundSa};
use crate::isakmp::proposal::{Algorithms, Proposals};

/// The IKE port.
pub const IKE_PORT: u16 = 500;
/// The NAT-T port (RFC 3947 s4).
pub const NAT_T_PORT: u16 = 4500;

/// An identity (ID payload, RFC 2407 s4.6.2): `leftid=` / `rightid=`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// ID_IPV4_ADDR / ID_IPV6_ADDR.
    Address(IpAddr),
    /// ID_FQDN.
    Fqdn(String),
    /// ID_USER_FQDN (`user@host`).
    UserFqdn(String),
}

/// A traffic selector: `leftsubnet=` with `leftprotoport=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrafficSelector {
    /// The network address.
    pub addr: IpAddr,
    /// Its prefix length (32/128: a host, sent as ID_IPV4_ADDR).
    pub prefix: u8,
    /// IP protocol, 0 = any.
    pub protocol: u8,
    /// Port, 0 = any.
    pub port: u16,
}

/// Dead Peer Detection settings (RFC 3706; `dpddelay`, `dpdtimeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DpdConfig {
    /// Idle time after which R-U-THERE is sent.
    pub delay: Duration,
    /// No answer in this long: the peer is dead.
    pub timeout: Duration,
    /// What then.
    pub action: DpdAction,
}

/// `dpdaction=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpdAction {
    /// Delete the SAs.
    Clear,
    /// Delete the SAs and negotiate again (initiators).
    Restart,
}

/// One connection's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The connection's name (for logs and status).
    pub name: String,
    /// Our identity (`leftid`; default our address).
    pub local_id: Option<Identity>,
    /// The identity we accept from the peer (`rightid`; `None`: any).
    pub remote_id: Option<Identity>,
    /// The pre-shared key.
    pub psk: Secret,
    /// `ike=`.
    pub ike: Proposals,
    /// `esp=` (a group in it means PFS).
    pub esp: Proposals,
    /// `type=tunnel` / `transport`.
    pub mode: Mode,
    /// Our side's selector (tunnel: `leftsubnet`; transport: our address
    /// with `leftprotoport`).
    pub local_ts: Option<TrafficSelector>,
    /// The peer's side's selector.
    pub remote_ts: Option<TrafficSelector>,
    /// `ikelifetime=`.
    pub ike_lifetime: Duration,
    /// `lifetime=` (IPsec SA).
    pub lifetime: Duration,
    /// `margintime=`: rekey this long before expiry.
    pub rekey_margin: Duration,
    /// `keyingtries=` (0 = forever).
    pub keying_tries: u32,
    /// DPD, if any.
    pub dpd: Option<DpdConfig>,
    /// NAT-T keepalive interval (RFC 3948 s2.3; strongSwan: 20 s).
    pub nat_keepalive: Duration,
    /// `forceencaps=yes`: pretend a NAT so ESP goes in UDP 4500.
    pub force_encap: bool,
}

/// A handle on one IKE SA of an engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IkeSaId(pub u64);

/// A handle on one child (IPsec) SA pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChildId(pub u64);

/// A datagram for the engine.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    /// Our address and port (500 or 4500) it arrived on.
    pub local: SocketAddr,
    /// Where it came from.
    pub remote: SocketAddr,
    /// The ISAKMP message (on 4500: after the non-ESP marker).
    pub data: &'a [u8],
}

/// A datagram the engine wants sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Our address and port to send from (500 or 4500; on 4500 the driver
    /// prepends the non-ESP marker).
    pub local: SocketAddr,
    /// Where to.
    pub remote: SocketAddr,
    /// The ISAKMP message, or for a NAT-T keepalive the single 0xff.
    pub data: Vec<u8>,
}

/// A new child SA pair for the driver to install.
#[derive(Debug)]
pub struct ChildSa {
    /// Its handle.
    pub id: ChildId,
    /// The IKE SA that negotiated it.
    pub ike: IkeSaId,
    /// The SA that replaces, if this is a rekey: keep the old inbound SA
    /// until it expires, move outbound traffic to the new one.
    pub replaces: Option<ChildId>,
    /// Inbound (our SPI).
    pub inbound: InboundSa,
    /// Outbound (the peer's SPI).
    pub outbound: OutboundSa,
    /// Our address and the peer's, as ESP should use them (with NAT-T:
    /// ports 4500 and the peer's NAT-mapped port).
    pub local: SocketAddr,
    /// The peer.
    pub remote: SocketAddr,
    /// ESP goes in UDP (RFC 3948).
    pub udp_encap: bool,
    /// The selectors agreed (ours, the peer's).
    pub local_ts: TrafficSelector,
    /// The peer's.
    pub remote_ts: TrafficSelector,
    /// NAT-OA the peer sent (transport mode behind NAT: its original
    /// address, for the inner checksum).
    pub peer_original_addr: Option<IpAddr>,
    /// Negotiated algorithms.
    pub algorithms: Algorithms,
}

/// Why an SA went down or a negotiation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The peer sent a Delete.
    DeletedByPeer,
    /// We deleted it (shutdown, replaced by a rekey and expired).
    Deleted,
    /// Its lifetime ran out.
    Expired,
    /// DPD: no answer within the timeout.
    DeadPeer,
    /// No proposal in common (names what the peer offered).
    NoProposalChosen(String),
    /// The peer's HASH did not verify: most likely a different PSK.
    AuthenticationFailed,
    /// The peer's identity is not the one configured.
    IdentityMismatch(String),
    /// Retransmissions of this message exhausted with no answer.
    Timeout(Stage),
    /// Phase 1 came up but Quick Mode kept failing: the IKE SA was deleted
    /// to negotiate again (never an IKE SA resting with no IPsec SA).
    NoChildSa,
    /// The peer sent a notification that ends the exchange.
    Notified(String),
    /// A proposal, ID or selector the peer sent that we cannot accept.
    Refused(String),
    /// An INITIAL-CONTACT from the peer replaced the old SAs.
    InitialContact,
}

/// The message an exchange was waiting for an answer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Main Mode message N (1, 3, 5 as initiator; 2, 4 as responder).
    MainMode(u8),
    /// Quick Mode message N (1 as initiator, 2 as responder).
    QuickMode(u8),
    /// A DPD R-U-THERE.
    Dpd,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stage::MainMode(5) => f.write_str(
                "Main Mode message 5 (ID, HASH_I): a peer with a different pre-shared key cannot decrypt it and stays silent",
            ),
            Stage::MainMode(n) => write!(f, "Main Mode message {n}"),
            Stage::QuickMode(n) => write!(f, "Quick Mode message {n}"),
            Stage::Dpd => f.write_str("DPD R-U-THERE"),
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::DeletedByPeer => f.write_str("deleted by the peer"),
            Reason::Deleted => f.write_str("deleted"),
            Reason::Expired => f.write_str("lifetime expired"),
            Reason::DeadPeer => f.write_str("dead peer (DPD: no R-U-THERE-ACK within dpdtimeout)"),
            Reason::NoProposalChosen(what) => write!(f, "no proposal chosen: {what}"),
            Reason::AuthenticationFailed => f.write_str(
                "authentication failed: the peer's HASH did not verify (a different pre-shared key?)",
            ),
            Reason::IdentityMismatch(what) => write!(f, "identity mismatch: {what}"),
            Reason::Timeout(stage) => write!(f, "no answer to {stage}"),
            Reason::NoChildSa => f.write_str("Quick Mode failed repeatedly: renegotiating Phase 1"),
            Reason::Notified(what) => write!(f, "peer notified {what}"),
            Reason::Refused(what) => write!(f, "refused: {what}"),
            Reason::InitialContact => f.write_str("replaced after INITIAL-CONTACT from the peer"),
        }
    }
}

/// What the engine tells the driver.
#[derive(Debug)]
pub enum Event {
    /// Phase 1 completed.
    IkeUp {
        /// The SA.
        ike: IkeSaId,
        /// The peer's address and port.
        remote: SocketAddr,
        /// The peer's identity.
        remote_id: Identity,
        /// Negotiated algorithms.
        algorithms: Algorithms,
        /// NAT found in front of us / the peer.
        nat_local: bool,
        /// The peer is behind a NAT.
        nat_remote: bool,
    },
    /// An IKE SA ended (its children have ended before, each with
    /// ChildDown).
    IkeDown {
        /// The SA.
        ike: IkeSaId,
        /// Why.
        reason: Reason,
    },
    /// A child SA pair to install.
    ChildUp(Box<ChildSa>),
    /// A child SA pair to remove.
    ChildDown {
        /// Its handle.
        id: ChildId,
        /// Why.
        reason: Reason,
    },
    /// A negotiation failed (logged by the driver; the engine retries as
    /// `keyingtries` says).
    Failed {
        /// The peer.
        remote: SocketAddr,
        /// Why.
        reason: Reason,
    },
    /// A message was dropped: bad input, counted and logged.
    Dropped {
        /// From.
        remote: SocketAddr,
        /// What was wrong.
        what: String,
    },
}

/// What `status` shows of an IKE SA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IkeSaStatus {
    /// Its handle.
    pub id: IkeSaId,
    /// State name (`ESTABLISHED`, `CONNECTING`, ...).
    pub state: &'static str,
    /// When it was established (or started).
    pub since: Instant,
    /// Our address.
    pub local: SocketAddr,
    /// The peer's.
    pub remote: SocketAddr,
    /// The peer's identity, once known.
    pub remote_id: Option<Identity>,
    /// The cookies.
    pub cookies: ([u8; 8], [u8; 8]),
    /// Algorithms, once agreed.
    pub algorithms: Option<Algorithms>,
    /// When it is rekeyed.
    pub rekey_at: Option<Instant>,
    /// We initiated it.
    pub initiator: bool,
}

/// What `status` shows of a child SA (the driver adds the ESP counters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildStatus {
    /// Its handle.
    pub id: ChildId,
    /// The IKE SA it belongs to now.
    pub ike: IkeSaId,
    /// Our SPI.
    pub spi_in: u32,
    /// The peer's SPI.
    pub spi_out: u32,
    /// Our selector.
    pub local_ts: TrafficSelector,
    /// The peer's selector.
    pub remote_ts: TrafficSelector,
    /// When it was installed.
    pub since: Instant,
    /// When it is rekeyed.
    pub rekey_at: Option<Instant>,
    /// When it expires.
    pub expire_at: Instant,
    /// A rekey replaced it; it goes once the new one carries traffic.
    pub replaced: bool,
}
#[cfg(test)]
mod tests;
