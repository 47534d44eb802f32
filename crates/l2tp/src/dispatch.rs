//! Which tunnel a datagram on the L2TP socket belongs to.
//!
//! Every datagram a peer sends carries *our* Tunnel ID (section 3.1),
//! which we chose unique among our tunnels: that finds the tunnel, and the
//! datagram must come from the address and port the tunnel was made with
//! (the peer's address is part of a tunnel's identity; a datagram with a
//! right Tunnel ID from elsewhere is dropped and counted).
//!
//! The exception is SCCRQ: the initiator does not know our Tunnel ID yet
//! and sends 0. A new tunnel is then known by the peer's address and port
//! together with the peer's Assigned Tunnel ID, so that SCCRQs (and their
//! retransmissions) from several LACs behind one NAT, all from port 1701
//! and with equal Tunnel IDs on their side, are kept apart (xl2tpd issue
//! #82 came from keying on the Tunnel ID alone), and a retransmitted SCCRQ
//! finds the tunnel its first copy made.
//!
//! New tunnels are made within limits: `max_tunnels` in all and
//! `max_tunnels_per_address` from one IP address; beyond, the SCCRQ is
//! dropped and counted (a thousand SCCRQs from one source make at most
//! `max_tunnels_per_address` tunnels).
//!
//! Tie Breaker (section 4.4.3): when an SCCRQ comes from an address we
//! have an SCCRQ of our own outstanding to (sent with
//! [`Dispatch::connect`], not yet [`Dispatch::established`]), the lower Tie
//! Breaker wins: "the loser MUST silently discard its tunnel"; with equal
//! values both lose; when only one side sent a Tie Breaker that side wins;
//! when neither did, both tunnels stay.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use tsunagi_crypto::{Random, Secret};

use crate::header::{Header, HeaderError, Kind};
use crate::message::{Message, MessageType};

/// Limits of a [`Dispatch`].
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// Tunnels at most.
    pub max_tunnels: usize,
    /// Tunnels at most from (and to) one IP address.
    pub max_tunnels_per_address: usize,
    /// The secret, to read an SCCRQ whose Assigned Tunnel ID is hidden.
    pub secret: Option<Secret>,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            max_tunnels: 4096,
            max_tunnels_per_address: 64,
            secret: None,
        }
    }
}

/// The outcome of section 4.4.3's Tie Breaker between our outstanding
/// SCCRQ and the peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TieBreak {
    /// Neither sent one: both tunnels stay.
    NoTie,
    /// Ours is lower (or only we sent one): drop the peer's SCCRQ.
    WeWin,
    /// Theirs is lower (or only they sent one): discard our tunnel.
    TheyWin,
    /// Equal: both discard.
    BothLose,
}

/// Section 4.4.3's comparison.
pub fn tie_break(ours: Option<[u8; 8]>, theirs: Option<[u8; 8]>) -> TieBreak {
    match (ours, theirs) {
        (None, None) => TieBreak::NoTie,
        (Some(_), None) => TieBreak::WeWin,
        (None, Some(_)) => TieBreak::TheyWin,
        (Some(a), Some(b)) => match a.cmp(&b) {
            std::cmp::Ordering::Less => TieBreak::WeWin,
            std::cmp::Ordering::Greater => TieBreak::TheyWin,
            std::cmp::Ordering::Equal => TieBreak::BothLose,
        },
    }
}

/// Why a datagram went to no tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drop {
    /// The header does not parse.
    Malformed(HeaderError),
    /// A Tunnel ID we do not have.
    UnknownTunnel {
        /// The Tunnel ID.
        tunnel_id: u16,
    },
    /// Our Tunnel ID, from another address or port than the tunnel's peer.
    WrongPeer {
        /// The Tunnel ID.
        tunnel_id: u16,
    },
    /// Tunnel ID 0 on something other than a well-formed SCCRQ with a
    /// non-zero Assigned Tunnel ID.
    NotSccrq {
        /// What was wrong.
        detail: String,
    },
    /// `max_tunnels` tunnels exist.
    TooManyTunnels,
    /// `max_tunnels_per_address` tunnels exist with this IP address.
    TooManyFromAddress,
    /// The peer's SCCRQ lost the tie break to ours.
    LostTieBreak {
        /// Our tunnel that stays.
        our_tunnel: u16,
    },
}

/// Where a datagram goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// To this tunnel's [`crate::Tunnel::handle_input`].
    Tunnel(u16),
    /// An SCCRQ for a new tunnel, registered under `local_id`: make a
    /// [`crate::Tunnel::accept`] with it and hand it the datagram.
    New {
        /// Our Tunnel ID for it (random, non-zero, unique).
        local_id: u16,
        /// The peer's Assigned Tunnel ID.
        peer_tunnel_id: u16,
        /// Our tunnel that lost the tie break: drop it silently (it is no
        /// longer registered).
        discard: Option<u16>,
    },
    /// Equal Tie Breakers: drop the datagram and our tunnel `local_id`
    /// silently (it is no longer registered).
    Discard {
        /// Our tunnel.
        local_id: u16,
    },
    /// To no tunnel.
    Dropped(Drop),
}

/// Why [`Dispatch::connect`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    /// `max_tunnels` tunnels exist.
    #[error("{0} tunnels already (max_tunnels)")]
    TooManyTunnels(usize),
    /// `max_tunnels_per_address` tunnels exist with this IP address.
    #[error("{0} tunnels with this address already (max_tunnels_per_address)")]
    TooManyFromAddress(usize),
}

/// Counters of the socket's datagrams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DispatchCounters {
    /// Datagrams routed.
    pub datagrams: u64,
    /// Headers that did not parse.
    pub malformed: u64,
    /// Unknown Tunnel IDs.
    pub unknown_tunnel: u64,
    /// Right Tunnel ID, wrong address.
    pub wrong_peer: u64,
    /// Tunnel ID 0 without a usable SCCRQ.
    pub not_sccrq: u64,
    /// SCCRQs that made a tunnel.
    pub new_tunnels: u64,
    /// SCCRQs that found the tunnel their first copy made.
    pub sccrq_retransmissions: u64,
    /// SCCRQs refused by `max_tunnels`.
    pub refused_total: u64,
    /// SCCRQs refused by `max_tunnels_per_address`.
    pub refused_per_address: u64,
    /// Tie breaks decided.
    pub tie_breaks: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    peer: SocketAddr,
    /// The peer's Tunnel ID when we were the responder (the SCCRQ key).
    peer_tunnel_id: Option<u16>,
    /// Our outstanding SCCRQ's Tie Breaker state: `Some(tb)` until
    /// established.
    pending: Option<Option<[u8; 8]>>,
}

/// The tunnels of one UDP socket (see the module docs).
pub struct Dispatch {
    config: DispatchConfig,
    random: Random,
    by_local: HashMap<u16, Entry>,
    by_peer: HashMap<(SocketAddr, u16), u16>,
    per_ip: HashMap<IpAddr, usize>,
    counters: DispatchCounters,
}

impl std::fmt::Debug for Dispatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatch")
            .field("tunnels", &self.by_local.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Dispatch {
    /// An empty registry; Tunnel IDs are drawn from `random` (the OS
    /// CSPRNG in a running gateway).
    pub fn new(config: DispatchConfig, random: Random) -> Dispatch {
        Dispatch {
            config,
            random,
            by_local: HashMap::new(),
            by_peer: HashMap::new(),
            per_ip: HashMap::new(),
            counters: DispatchCounters::default(),
        }
    }

    /// The counters.
    pub fn counters(&self) -> &DispatchCounters {
        &self.counters
    }

    /// Tunnels registered.
    pub fn len(&self) -> usize {
        self.by_local.len()
    }

    /// No tunnel registered.
    pub fn is_empty(&self) -> bool {
        self.by_local.is_empty()
    }

    /// The peer address of our tunnel `local_id`.
    pub fn peer(&self, local_id: u16) -> Option<SocketAddr> {
        self.by_local.get(&local_id).map(|e| e.peer)
    }

    fn check_limits(&self, ip: IpAddr) -> Result<(), DispatchError> {
        if self.by_local.len() >= self.config.max_tunnels.min(65_000) {
            return Err(DispatchError::TooManyTunnels(self.by_local.len()));
        }
        let n = self.per_ip.get(&ip).copied().unwrap_or(0);
        if n >= self.config.max_tunnels_per_address {
            return Err(DispatchError::TooManyFromAddress(n));
        }
        Ok(())
    }

    fn allocate(&mut self) -> u16 {
        loop {
            let mut b = [0u8; 2];
            self.random.fill(&mut b);
            let id = u16::from_be_bytes(b);
            if id != 0 && !self.by_local.contains_key(&id) {
                return id;
            }
        }
    }

    fn insert(
        &mut self,
        peer: SocketAddr,
        peer_tunnel_id: Option<u16>,
        pending: Option<Option<[u8; 8]>>,
    ) -> u16 {
        let id = self.allocate();
        self.by_local.insert(
            id,
            Entry {
                peer,
                peer_tunnel_id,
                pending,
            },
        );
        if let Some(p) = peer_tunnel_id {
            self.by_peer.insert((peer, p), id);
        }
        *self.per_ip.entry(peer.ip()).or_insert(0) += 1;
        id
    }

    /// Registers a tunnel we open to `peer`: make a
    /// [`crate::Tunnel::connect`] with the returned Tunnel ID, then hand
    /// its [`crate::Tunnel::tie_breaker`] to [`Dispatch::set_tie_breaker`].
    pub fn connect(&mut self, peer: SocketAddr) -> Result<u16, DispatchError> {
        self.check_limits(peer.ip())?;
        Ok(self.insert(peer, None, Some(None)))
    }

    /// The Tie Breaker our tunnel `local_id` sent in its SCCRQ (until it is
    /// [`Dispatch::established`]).
    pub fn set_tie_breaker(&mut self, local_id: u16, tie_breaker: Option<[u8; 8]>) {
        if let Some(e) = self.by_local.get_mut(&local_id) {
            if e.pending.is_some() {
                e.pending = Some(tie_breaker);
            }
        }
    }

    /// Our tunnel `local_id` is established: its SCCRQ no longer collides.
    pub fn established(&mut self, local_id: u16) {
        if let Some(e) = self.by_local.get_mut(&local_id) {
            e.pending = None;
        }
    }

    /// Forgets tunnel `local_id` (it closed).
    pub fn remove(&mut self, local_id: u16) {
        if let Some(e) = self.by_local.remove(&local_id) {
            if let Some(p) = e.peer_tunnel_id {
                self.by_peer.remove(&(e.peer, p));
            }
            if let Some(n) = self.per_ip.get_mut(&e.peer.ip()) {
                *n -= 1;
                if *n == 0 {
                    self.per_ip.remove(&e.peer.ip());
                }
            }
        }
    }

    /// Where the datagram from `peer` goes (see [`Route`]).
    pub fn route(&mut self, peer: SocketAddr, datagram: &[u8]) -> Route {
        self.counters.datagrams += 1;
        let (header, range) = match Header::parse(datagram) {
            Ok(x) => x,
            Err(e) => {
                self.counters.malformed += 1;
                return Route::Dropped(Drop::Malformed(e));
            }
        };
        if header.tunnel_id != 0 {
            return match self.by_local.get(&header.tunnel_id) {
                None => {
                    self.counters.unknown_tunnel += 1;
                    Route::Dropped(Drop::UnknownTunnel {
                        tunnel_id: header.tunnel_id,
                    })
                }
                Some(e) if e.peer != peer => {
                    self.counters.wrong_peer += 1;
                    Route::Dropped(Drop::WrongPeer {
                        tunnel_id: header.tunnel_id,
                    })
                }
                Some(_) => Route::Tunnel(header.tunnel_id),
            };
        }
        let not_sccrq = |this: &mut Dispatch, detail: String| {
            this.counters.not_sccrq += 1;
            Route::Dropped(Drop::NotSccrq { detail })
        };
        if header.kind != Kind::Control {
            return not_sccrq(self, "a data message with Tunnel ID 0".to_string());
        }
        let secret = self.config.secret.as_ref().map(|s| s.expose().to_vec());
        let msg = match Message::parse(&datagram[range], secret.as_deref()) {
            Ok(m) => m,
            Err(e) => return not_sccrq(self, format!("Tunnel ID 0 and a bad message: {e}")),
        };
        if msg.kind() != MessageType::Sccrq {
            return not_sccrq(self, format!("{} with Tunnel ID 0", msg.kind()));
        }
        let Some(peer_tunnel_id) = msg.assigned_tunnel_id().filter(|&t| t != 0) else {
            return not_sccrq(self, "SCCRQ with Assigned Tunnel ID 0".to_string());
        };
        if let Some(&local) = self.by_peer.get(&(peer, peer_tunnel_id)) {
            self.counters.sccrq_retransmissions += 1;
            return Route::Tunnel(local);
        }
        // Section 4.4.3: our own outstanding SCCRQ to this address.
        let theirs = msg.tie_breaker();
        let ours = self
            .by_local
            .iter()
            .find(|(_, e)| e.peer.ip() == peer.ip() && e.pending.is_some())
            .map(|(&id, e)| (id, e.pending.flatten()));
        let mut discard = None;
        if let Some((our_tunnel, tb)) = ours {
            match tie_break(tb, theirs) {
                TieBreak::NoTie => {}
                TieBreak::WeWin => {
                    self.counters.tie_breaks += 1;
                    return Route::Dropped(Drop::LostTieBreak { our_tunnel });
                }
                TieBreak::TheyWin => {
                    self.counters.tie_breaks += 1;
                    self.remove(our_tunnel);
                    discard = Some(our_tunnel);
                }
                TieBreak::BothLose => {
                    self.counters.tie_breaks += 1;
                    self.remove(our_tunnel);
                    return Route::Discard {
                        local_id: our_tunnel,
                    };
                }
            }
        }
        match self.check_limits(peer.ip()) {
            Err(DispatchError::TooManyTunnels(_)) => {
                self.counters.refused_total += 1;
                return Route::Dropped(Drop::TooManyTunnels);
            }
            Err(DispatchError::TooManyFromAddress(_)) => {
                self.counters.refused_per_address += 1;
                return Route::Dropped(Drop::TooManyFromAddress);
            }
            Ok(()) => {}
        }
        self.counters.new_tunnels += 1;
        let local_id = self.insert(peer, Some(peer_tunnel_id), None);
        Route::New {
            local_id,
            peer_tunnel_id,
            discard,
        }
    }
}
