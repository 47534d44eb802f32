//! The engine: IKE SAs, Quick Mode exchanges and child SAs of one
//! connection, the timers, and the "keep it up" logic of `auto=start`.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tsunagi_crypto::dh::DhPrivate;
use tsunagi_crypto::Random;

use super::keys::Phase1Keys;
use super::{
    ChildId, Config, Datagram, Event, Identity, IkeSaId, IkeSaStatus, Reason, Stage,
    TrafficSelector, Transmit,
};
use crate::isakmp::attr::EncapsulationMode;
use crate::isakmp::payload::NatTNumbering;
use crate::isakmp::proposal::Algorithms;
use crate::isakmp::{self, ExchangeType, Packet};

/// The first retransmission comes after this; each next one after twice
/// the last (RFC 2408 leaves the schedule to implementations).
pub(crate) const RETRANSMIT_BASE: Duration = Duration::from_secs(1);
/// Retransmissions before an exchange is given up.
pub(crate) const RETRANSMIT_TRIES: u32 = 5;
/// Quick Modes that may fail on one IKE SA before it is renegotiated.
pub(crate) const QUICK_MODE_FAILURES: u32 = 2;
/// A responder's IKE SA that no Quick Mode follows is deleted after this:
/// an IKE SA with no IPsec SA is not a resting state. Longer than an
/// initiator's own [`QUICK_MODE_FAILURES`] Quick Modes with every
/// retransmission, so that an initiator renegotiates first.
pub(crate) const CHILDLESS_TIMEOUT: Duration = Duration::from_secs(300);
/// Half-open (responder, Phase 1 not done) IKE SAs at most; more MM1s are
/// dropped, so a flood of them costs a bounded amount of memory.
pub(crate) const MAX_HALF_OPEN: usize = 512;
/// A responder's half-open IKE SA is forgotten after this (strongSwan's
/// `half_open_timeout` is the same), so spoofed message 1s hold slots only
/// briefly.
pub(crate) const HALF_OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// After a rekey, the old child SA is deleted this long after the new one
/// carried its first inbound packet (or at the latest after
/// [`REPLACED_GRACE_MAX`]).
pub(crate) const REPLACED_GRACE: Duration = Duration::from_secs(2);
/// See [`REPLACED_GRACE`].
pub(crate) const REPLACED_GRACE_MAX: Duration = Duration::from_secs(30);
/// A finished exchange's last message is kept this long, to answer a peer
/// that retransmits because our answer was lost.
pub(crate) const KEEP_FINISHED: Duration = Duration::from_secs(30);

/// A message sent that may need sending again.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub data: Vec<u8>,
    /// When to send it again (`None`: only on a retransmitted request).
    pub at: Option<Instant>,
    pub tries: u32,
    pub stage: Stage,
}

impl Outgoing {
    pub fn expecting_answer(data: Vec<u8>, now: Instant, stage: Stage) -> Outgoing {
        Outgoing {
            data,
            at: Some(now + RETRANSMIT_BASE),
            tries: 0,
            stage,
        }
    }

    pub fn final_answer(data: Vec<u8>, stage: Stage) -> Outgoing {
        Outgoing {
            data,
            at: None,
            tries: 0,
            stage,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum P1State {
    /// Initiator: MM1 sent.
    Sent1,
    /// Initiator: MM3 sent.
    Sent3,
    /// Initiator: MM5 sent.
    Sent5,
    /// Responder: MM2 sent.
    Sent2,
    /// Responder: MM4 sent.
    Sent4,
    Established,
}

impl P1State {
    fn name(self) -> &'static str {
        match self {
            P1State::Established => "ESTABLISHED",
            _ => "CONNECTING",
        }
    }
}

/// One IKE SA (ISAKMP SA).
pub(crate) struct IkeSa {
    pub id: IkeSaId,
    pub initiator: bool,
    pub state: P1State,
    pub cky_i: [u8; 8],
    pub cky_r: [u8; 8],
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub started: Instant,
    pub established: Option<Instant>,
    pub algorithms: Option<Algorithms>,
    /// SAi_b: the initiator's SA payload body as sent.
    pub sa_i_b: Vec<u8>,
    pub dh: Option<DhPrivate>,
    pub g_xi: Vec<u8>,
    pub g_xr: Vec<u8>,
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
    pub keys: Option<Phase1Keys>,
    /// The Phase 1 CBC chain.
    pub iv: Vec<u8>,
    /// The last CBC block of Phase 1: the seed of every Phase 2 IV.
    pub p1_last_block: Vec<u8>,
    pub natt: Option<NatTNumbering>,
    pub nat_local: bool,
    pub nat_remote: bool,
    pub peer_dpd: bool,
    pub remote_id: Option<Identity>,
    /// The last datagram received (to spot retransmissions).
    pub last_in: Vec<u8>,
    pub out: Option<Outgoing>,
    pub quick: Vec<Quick>,
    pub quick_failures: u32,
    pub rekey_at: Option<Instant>,
    pub expire_at: Option<Instant>,
    /// Any authenticated IKE message or ESP from the peer.
    pub last_heard: Instant,
    pub dpd_seq: u32,
    /// R-U-THERE outstanding: its sequence number, when first sent, when
    /// next sent.
    pub dpd_pending: Option<(u32, Instant, Instant)>,
    pub keepalive_at: Option<Instant>,
    /// Deleted; removed from the table at the next sweep.
    pub dead: bool,
    /// This SA rekeys another (Phase 1 rekey).
    pub replaces: Option<IkeSaId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QState {
    /// Initiator: QM1 sent.
    Sent1,
    /// Responder: QM2 sent.
    Sent2,
    /// Done: kept to answer retransmissions.
    Done,
}

/// One Quick Mode exchange.
pub(crate) struct Quick {
    pub mid: u32,
    pub initiator: bool,
    pub state: QState,
    pub iv: Vec<u8>,
    pub spi_in: u32,
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
    pub dh: Option<DhPrivate>,
    pub local_ts: TrafficSelector,
    pub remote_ts: TrafficSelector,
    pub mode: EncapsulationMode,
    pub replaces: Option<ChildId>,
    pub last_in: Vec<u8>,
    pub out: Option<Outgoing>,
    /// When a Done exchange is forgotten.
    pub forget_at: Option<Instant>,
    /// Responder: the child installed at QM2, confirmed by QM3.
    pub child: Option<ChildId>,
}

/// A child SA pair the driver has installed.
pub(crate) struct Child {
    pub id: ChildId,
    pub ike: IkeSaId,
    pub spi_in: u32,
    pub spi_out: u32,
    pub local_ts: TrafficSelector,
    pub remote_ts: TrafficSelector,
    pub established: Instant,
    pub rekey_at: Option<Instant>,
    pub expire_at: Instant,
    pub replaced_by: Option<ChildId>,
    pub delete_at: Option<Instant>,
    pub rekeying: bool,
}

/// `auto=start`: keep a child SA up with this peer.
pub(crate) struct Want {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Phase 1 attempts that failed in a row (`keyingtries`).
    pub failures: u32,
    pub next_attempt: Option<Instant>,
}

/// An IKEv1 engine for one connection.
pub struct Engine {
    pub(crate) config: Config,
    pub(crate) random: Random,
    pub(crate) sas: BTreeMap<IkeSaId, IkeSa>,
    pub(crate) children: BTreeMap<ChildId, Child>,
    pub(crate) next_id: u64,
    pub(crate) transmits: VecDeque<Transmit>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) want: Option<Want>,
}

impl Engine {
    /// A new pre-shared key (ipsec.secrets read again: strongSwan's
    /// `ipsec rereadsecrets`). It enters SKEYID (RFC 2409 s5.4) of the
    /// Phase 1 exchanges from now on; IKE SAs already up keep the keys they
    /// derived, and their IPsec SAs run on.
    pub fn set_psk(&mut self, psk: tsunagi_crypto::Secret) {
        self.config.psk = psk;
    }

    /// A new configuration (a reload changed what this connection
    /// negotiates: proposals, lifetimes, identities, DPD, the key): it
    /// counts from the next exchange; SAs up keep what they negotiated.
    /// The caller keeps the name, mode and selectors as they were.
    pub fn set_config(&mut self, config: Config) {
        self.config = config;
    }

    /// An engine for `config`; `random` is the OS CSPRNG.
    pub fn new(config: Config, random: Random) -> Engine {
        Engine {
            config,
            random,
            sas: BTreeMap::new(),
            children: BTreeMap::new(),
            next_id: 1,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            want: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// `auto=start` / `tsunagi up`: negotiate with `remote` from `local`
    /// (port 500; the engine floats to 4500 when it finds a NAT), and keep
    /// an IPsec SA up from then on, retrying as `keyingtries` says.
    pub fn initiate(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr) {
        self.want = Some(Want {
            local,
            remote,
            failures: 0,
            next_attempt: None,
        });
        self.drive(now);
    }

    /// A datagram arrived.
    pub fn handle(&mut self, now: Instant, datagram: Datagram<'_>) {
        if let Err(what) = self.dispatch(now, datagram) {
            self.events.push_back(Event::Dropped {
                remote: datagram.remote,
                what,
            });
        }
        self.drive(now);
    }

    fn dispatch(&mut self, now: Instant, d: Datagram<'_>) -> Result<(), String> {
        let packet = Packet::new_checked(d.data).map_err(|e| e.to_string())?;
        let header = packet.header();
        if packet.major_version() != 1 {
            return Err(format!(
                "ISAKMP version {}.{}: only IKEv1 (1.0) is configured",
                packet.major_version(),
                packet.minor_version()
            ));
        }
        let d = Datagram {
            data: &d.data[..packet.length() as usize],
            ..d
        };
        match header.exchange {
            ExchangeType::IdentityProtection => self.main_mode(now, d, header),
            ExchangeType::QuickMode => self.quick_mode(now, d, header),
            ExchangeType::Informational => self.informational(now, d, header),
            ExchangeType::Aggressive => Err(
                "Aggressive Mode refused: it sends a hash of the pre-shared key in the clear"
                    .into(),
            ),
            other => Err(format!("exchange type {other} not supported")),
        }
    }

    /// The SA a message belongs to, by its cookies.
    pub(crate) fn sa_by_cookies(&self, cky_i: [u8; 8], cky_r: [u8; 8]) -> Option<IkeSaId> {
        self.sas
            .values()
            .find(|sa| {
                !sa.dead
                    && sa.cky_i == cky_i
                    // An initiator learns CKY-R from message 2.
                    && (sa.cky_r == cky_r || cky_r == [0; 8] || sa.cky_r == [0; 8])
            })
            .map(|sa| sa.id)
    }

    /// ESP arrived on a child SA: the peer is alive (DPD), and a rekeyed
    /// child's predecessor may go.
    pub fn esp_received(&mut self, now: Instant, child: ChildId, remote: SocketAddr) {
        let _ = remote;
        let Some(c) = self.children.get(&child) else {
            return;
        };
        let ike = c.ike;
        if let Some(sa) = self.sas.get_mut(&ike) {
            sa.last_heard = now;
        }
        let old: Vec<ChildId> = self
            .children
            .values()
            .filter(|o| o.replaced_by == Some(child))
            .map(|o| o.id)
            .collect();
        for id in old {
            if let Some(o) = self.children.get_mut(&id) {
                let soon = now + REPLACED_GRACE;
                if o.delete_at.is_none_or(|t| t > soon) {
                    o.delete_at = Some(soon);
                }
            }
        }
    }

    /// The outbound SA of `child` needs a rekey (sequence numbers running
    /// out, [`crate::esp::OutboundSa::needs_rekey`]).
    pub fn rekey_child(&mut self, now: Instant, child: ChildId) {
        if let Some(c) = self.children.get_mut(&child) {
            if c.replaced_by.is_none() {
                c.rekey_at = Some(now);
            }
        }
        self.drive(now);
    }

    /// Deletes every SA (Informational Delete to the peers), for shutdown
    /// or `tsunagi down`; stops keeping the connection up.
    pub fn delete_all(&mut self, now: Instant) {
        self.want = None;
        let children: Vec<ChildId> = self.children.keys().copied().collect();
        for c in children {
            self.delete_child(now, c, Reason::Deleted, true);
        }
        let sas: Vec<IkeSaId> = self.sas.keys().copied().collect();
        for id in sas {
            self.delete_ike(now, id, Reason::Deleted, true);
        }
        self.sweep();
    }

    /// The next instant [`Engine::handle_timeout`] wants calling.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut at = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        for sa in self.sas.values() {
            at(sa.out.as_ref().and_then(|o| o.at));
            at(sa.rekey_at);
            at(sa.expire_at);
            at(sa.keepalive_at);
            at(sa.dpd_pending.map(|p| p.2));
            if let (Some(dpd), P1State::Established, true) =
                (self.config.dpd, sa.state, sa.peer_dpd)
            {
                if sa.dpd_pending.is_none() {
                    at(Some(sa.last_heard + dpd.delay));
                }
            }
            if sa.state != P1State::Established {
                at(Some(sa.started + self.phase1_deadline(sa.initiator)));
            } else if !sa.initiator
                && sa.quick.is_empty()
                && !self.children.values().any(|c| c.ike == sa.id)
            {
                at(sa.established.map(|e| e + CHILDLESS_TIMEOUT));
            }
            for q in &sa.quick {
                at(q.out.as_ref().and_then(|o| o.at));
                at(q.forget_at);
            }
        }
        for c in self.children.values() {
            at(c.rekey_at);
            at(Some(c.expire_at));
            at(c.delete_at);
        }
        if let Some(w) = &self.want {
            at(w.next_attempt);
        }
        t
    }

    /// How long a Phase 1 may take: an initiator's with all its
    /// retransmissions; a responder's half-open SA [`HALF_OPEN_TIMEOUT`].
    fn phase1_deadline(&self, initiator: bool) -> Duration {
        if initiator {
            RETRANSMIT_BASE * ((1 << (RETRANSMIT_TRIES + 1)) - 1) + Duration::from_secs(5)
        } else {
            HALF_OPEN_TIMEOUT
        }
    }

    /// Timers: retransmissions, DPD, keepalives, rekeying, expiry.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.retransmit(now);
        self.phase1_timers(now);
        self.child_timers(now);
        self.sweep();
        self.drive(now);
    }

    fn retransmit(&mut self, now: Instant) {
        let ids: Vec<IkeSaId> = self.sas.keys().copied().collect();
        for id in ids {
            let mut failed_p1 = None;
            let mut failed_qm = Vec::new();
            {
                let sa = self.sas.get_mut(&id).expect("listed");
                if let Some(o) = sa.out.as_mut() {
                    if o.at.is_some_and(|t| t <= now) {
                        if o.tries >= RETRANSMIT_TRIES {
                            o.at = None;
                            failed_p1 = Some(o.stage);
                        } else {
                            o.tries += 1;
                            o.at = Some(now + RETRANSMIT_BASE * (1 << o.tries));
                            self.transmits.push_back(Transmit {
                                local: sa.local,
                                remote: sa.remote,
                                data: o.data.clone(),
                            });
                        }
                    }
                }
                for q in sa.quick.iter_mut() {
                    if let Some(o) = q.out.as_mut() {
                        if o.at.is_some_and(|t| t <= now) {
                            if o.tries >= RETRANSMIT_TRIES {
                                o.at = None;
                                failed_qm.push((q.mid, o.stage));
                            } else {
                                o.tries += 1;
                                o.at = Some(now + RETRANSMIT_BASE * (1 << o.tries));
                                self.transmits.push_back(Transmit {
                                    local: sa.local,
                                    remote: sa.remote,
                                    data: o.data.clone(),
                                });
                            }
                        }
                    }
                }
            }
            if let Some(stage) = failed_p1 {
                let remote = self.sas[&id].remote;
                let state = self.sas[&id].state;
                if state == P1State::Established {
                    // An Informational that wanted no answer: nothing.
                } else {
                    self.phase1_failed(now, id, remote, Reason::Timeout(stage));
                }
            }
            for (mid, stage) in failed_qm {
                self.quick_failed(now, id, mid, Reason::Timeout(stage));
            }
        }
    }

    fn phase1_timers(&mut self, now: Instant) {
        let ids: Vec<IkeSaId> = self.sas.keys().copied().collect();
        for id in ids {
            let sa = &self.sas[&id];
            if sa.dead {
                continue;
            }
            if sa.state != P1State::Established {
                if now >= sa.started + self.phase1_deadline(sa.initiator) {
                    let remote = sa.remote;
                    let stage = sa.out.as_ref().map_or(Stage::MainMode(1), |o| o.stage);
                    self.phase1_failed(now, id, remote, Reason::Timeout(stage));
                }
                continue;
            }
            if sa.expire_at.is_some_and(|t| t <= now) {
                self.delete_ike(now, id, Reason::Expired, true);
                continue;
            }
            if sa.rekey_at.is_some_and(|t| t <= now) {
                let (local, remote) = (sa.local, sa.remote);
                self.sas.get_mut(&id).expect("listed").rekey_at = None;
                if self
                    .want
                    .as_ref()
                    .is_some_and(|w| w.remote.ip() == remote.ip())
                {
                    let local = SocketAddr::new(local.ip(), super::IKE_PORT);
                    let remote = SocketAddr::new(remote.ip(), super::IKE_PORT);
                    self.start_main_mode(now, local, remote, Some(id));
                }
            }
            // A responder's IKE SA with no child after a while: not a
            // resting state.
            let sa = &self.sas[&id];
            if !sa.initiator
                && sa.established.is_some_and(|e| now >= e + CHILDLESS_TIMEOUT)
                && sa.quick.is_empty()
                && !self.children.values().any(|c| c.ike == id)
            {
                self.delete_ike(now, id, Reason::NoChildSa, true);
                continue;
            }
            self.dpd_timer(now, id);
            let sa = self.sas.get_mut(&id).expect("listed");
            if let Some(t) = sa.keepalive_at {
                if t <= now {
                    sa.keepalive_at = Some(now + self.config.nat_keepalive);
                    self.transmits.push_back(Transmit {
                        local: sa.local,
                        remote: sa.remote,
                        data: crate::esp::NAT_KEEPALIVE.to_vec(),
                    });
                }
            }
            let sa = self.sas.get_mut(&id).expect("listed");
            sa.quick.retain(|q| q.forget_at.is_none_or(|t| t > now));
        }
    }

    fn child_timers(&mut self, now: Instant) {
        let ids: Vec<ChildId> = self.children.keys().copied().collect();
        for id in ids {
            let c = &self.children[&id];
            if c.delete_at.is_some_and(|t| t <= now) {
                self.delete_child(now, id, Reason::Deleted, true);
                continue;
            }
            if c.expire_at <= now {
                self.delete_child(now, id, Reason::Expired, true);
                continue;
            }
            if c.rekey_at.is_some_and(|t| t <= now) && c.replaced_by.is_none() && !c.rekeying {
                let ike = self.current_ike(c.ike);
                match ike {
                    Some(ike) => {
                        let c = self.children.get_mut(&id).expect("listed");
                        c.rekeying = true;
                        c.rekey_at = None;
                        let (l, r) = (c.local_ts, c.remote_ts);
                        self.start_quick_mode(now, ike, Some(id), Some((l, r)));
                    }
                    None => {
                        // No IKE SA to rekey with: drive() negotiates one;
                        // try again then.
                        let c = self.children.get_mut(&id).expect("listed");
                        c.rekey_at = Some(now + Duration::from_secs(1));
                        if self.want.is_none() {
                            c.rekey_at = None;
                        }
                    }
                }
            }
        }
    }

    /// The established IKE SA to use for the peer of `ike` (the newest,
    /// after a Phase 1 rekey).
    pub(crate) fn current_ike(&self, ike: IkeSaId) -> Option<IkeSaId> {
        let remote = self
            .sas
            .get(&ike)
            .map(|sa| sa.remote.ip())
            .or_else(|| self.want.as_ref().map(|w| w.remote.ip()))?;
        self.sas
            .values()
            .filter(|sa| !sa.dead && sa.state == P1State::Established && sa.remote.ip() == remote)
            .max_by_key(|sa| sa.established)
            .map(|sa| sa.id)
    }

    /// `auto=start`: whatever state we are in, move towards an IKE SA with
    /// an IPsec SA.
    pub(crate) fn drive(&mut self, now: Instant) {
        let Some(want) = self.want.as_mut() else {
            return;
        };
        match want.next_attempt {
            Some(t) if t > now => return,
            Some(_) => want.next_attempt = None,
            None => {}
        }
        let want = &*want;
        let remote_ip = want.remote.ip();
        let (local, remote) = (want.local, want.remote);
        let connecting = self
            .sas
            .values()
            .any(|sa| !sa.dead && sa.remote.ip() == remote_ip && sa.state != P1State::Established);
        let established = self
            .sas
            .values()
            .filter(|sa| {
                !sa.dead && sa.remote.ip() == remote_ip && sa.state == P1State::Established
            })
            .max_by_key(|sa| sa.established)
            .map(|sa| sa.id);
        match established {
            None if !connecting => {
                if let Some(w) = self.want.as_mut() {
                    w.next_attempt = None;
                }
                self.start_main_mode(now, local, remote, None);
            }
            None => {}
            Some(ike) => {
                let has_child = self.children.values().any(|c| c.replaced_by.is_none());
                let negotiating = self
                    .sas
                    .values()
                    .any(|sa| sa.quick.iter().any(|q| q.state != QState::Done));
                if !has_child && !negotiating {
                    self.start_quick_mode(now, ike, None, None);
                }
            }
        }
    }

    /// Phase 1 failed (or was refused): forget the SA; an initiator with
    /// `auto=start` tries again unless `keyingtries` is used up.
    pub(crate) fn phase1_failed(
        &mut self,
        now: Instant,
        id: IkeSaId,
        remote: SocketAddr,
        reason: Reason,
    ) {
        let initiator = self.sas.get(&id).is_some_and(|sa| sa.initiator);
        if let Some(sa) = self.sas.get_mut(&id) {
            sa.dead = true;
        }
        self.events.push_back(Event::Failed {
            remote,
            reason: reason.clone(),
        });
        if initiator {
            self.keying_attempt_failed(now, reason);
        }
    }

    pub(crate) fn keying_attempt_failed(&mut self, now: Instant, reason: Reason) {
        let tries = self.config.keying_tries;
        let Some(w) = self.want.as_mut() else {
            return;
        };
        w.failures += 1;
        if tries != 0 && w.failures >= tries {
            let remote = w.remote;
            self.want = None;
            self.events.push_back(Event::Failed {
                remote,
                reason: Reason::Refused(format!(
                    "giving up after {tries} keying tries (keyingtries={tries}); last: {reason}"
                )),
            });
        } else {
            // 1 s, 2 s, 4 s ... up to a minute between attempts.
            let backoff = Duration::from_secs(1 << w.failures.min(6)).min(Duration::from_secs(60));
            w.next_attempt = Some(now + backoff);
        }
    }

    /// A Quick Mode exchange failed.
    pub(crate) fn quick_failed(&mut self, now: Instant, ike: IkeSaId, mid: u32, reason: Reason) {
        let Some(sa) = self.sas.get_mut(&ike) else {
            return;
        };
        let remote = sa.remote;
        let q = sa
            .quick
            .iter()
            .position(|q| q.mid == mid)
            .map(|i| sa.quick.remove(i));
        let initiated = q.as_ref().is_some_and(|q| q.initiator);
        if let Some(q) = &q {
            if let Some(c) = q.replaces {
                if let Some(c) = self.children.get_mut(&c) {
                    c.rekeying = false;
                    c.rekey_at = Some(now + Duration::from_secs(1));
                }
            }
            if let Some(child) = q.child {
                self.delete_child(now, child, reason.clone(), false);
            }
        }
        self.events.push_back(Event::Failed {
            remote,
            reason: reason.clone(),
        });
        if !initiated {
            return;
        }
        let sa = self.sas.get_mut(&ike).expect("present");
        sa.quick_failures += 1;
        if sa.quick_failures >= QUICK_MODE_FAILURES {
            // Never rest with an IKE SA and no IPsec SA: renegotiate
            // Phase 1 from scratch.
            self.delete_ike(now, ike, Reason::NoChildSa, true);
            self.keying_attempt_failed(now, Reason::NoChildSa);
        }
    }

    /// Removes SAs marked dead.
    pub(crate) fn sweep(&mut self) {
        self.sas.retain(|_, sa| !sa.dead);
    }

    pub(crate) fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Random octets from the CSPRNG.
    pub(crate) fn random_bytes(&self, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.random.fill(&mut v);
        v
    }

    /// A random value in `lo..` that is not zero, for cookies, SPIs and
    /// message IDs.
    pub(crate) fn random_u32(&self, lo: u32) -> u32 {
        loop {
            let mut b = [0u8; 4];
            self.random.fill(&mut b);
            let v = u32::from_be_bytes(b);
            if v >= lo {
                return v;
            }
        }
    }

    pub(crate) fn send(&mut self, local: SocketAddr, remote: SocketAddr, data: Vec<u8>) {
        self.transmits.push_back(Transmit {
            local,
            remote,
            data,
        });
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The IKE SAs, for `status`.
    pub fn status(&self) -> Vec<IkeSaStatus> {
        self.sas
            .values()
            .filter(|sa| !sa.dead)
            .map(|sa| IkeSaStatus {
                id: sa.id,
                state: sa.state.name(),
                since: sa.established.unwrap_or(sa.started),
                local: sa.local,
                remote: sa.remote,
                remote_id: sa.remote_id.clone(),
                cookies: (sa.cky_i, sa.cky_r),
                algorithms: sa.algorithms,
                rekey_at: sa.rekey_at,
                initiator: sa.initiator,
            })
            .collect()
    }

    /// The child SAs: id, IKE SA, SPIs (in, out), selectors, when they are
    /// rekeyed.
    pub fn children(&self) -> Vec<super::ChildStatus> {
        self.children
            .values()
            .map(|c| super::ChildStatus {
                id: c.id,
                ike: c.ike,
                spi_in: c.spi_in,
                spi_out: c.spi_out,
                local_ts: c.local_ts,
                remote_ts: c.remote_ts,
                since: c.established,
                rekey_at: c.rekey_at,
                expire_at: c.expire_at,
                replaced: c.replaced_by.is_some(),
            })
            .collect()
    }

    /// Deletes a child: Delete to the peer (`notify`), ChildDown.
    pub(crate) fn delete_child(&mut self, now: Instant, id: ChildId, reason: Reason, notify: bool) {
        let Some(c) = self.children.remove(&id) else {
            return;
        };
        if notify {
            if let Some(ike) = self.current_ike(c.ike) {
                self.send_delete_esp(now, ike, c.spi_in);
            }
        }
        self.events.push_back(Event::ChildDown { id, reason });
    }

    /// Deletes an IKE SA: Delete to the peer (`notify`), IkeDown. Its
    /// children move to another established IKE SA with the same peer if
    /// there is one (IKEv1 child SAs do not depend on the IKE SA), else they
    /// go down too.
    pub(crate) fn delete_ike(&mut self, now: Instant, id: IkeSaId, reason: Reason, notify: bool) {
        let Some(sa) = self.sas.get(&id) else {
            return;
        };
        if sa.dead {
            return;
        }
        let was_up = sa.state == P1State::Established;
        if notify && was_up {
            self.send_delete_isakmp(now, id);
        }
        let sa = self.sas.get_mut(&id).expect("present");
        sa.dead = true;
        let remote = sa.remote.ip();
        let heir = self
            .sas
            .values()
            .filter(|o| !o.dead && o.state == P1State::Established && o.remote.ip() == remote)
            .max_by_key(|o| o.established)
            .map(|o| o.id);
        let orphans: Vec<ChildId> = self
            .children
            .values()
            .filter(|c| c.ike == id)
            .map(|c| c.id)
            .collect();
        for c in orphans {
            match heir {
                Some(h) => self.children.get_mut(&c).expect("listed").ike = h,
                None => self.delete_child(now, c, reason.clone(), notify && was_up),
            }
        }
        if was_up {
            self.events.push_back(Event::IkeDown { ike: id, reason });
        }
    }

    /// Registers a new IKE SA.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new_sa(
        &mut self,
        now: Instant,
        initiator: bool,
        cky_i: [u8; 8],
        cky_r: [u8; 8],
        local: SocketAddr,
        remote: SocketAddr,
        state: P1State,
    ) -> IkeSaId {
        let id = IkeSaId(self.next_id());
        self.sas.insert(
            id,
            IkeSa {
                id,
                initiator,
                state,
                cky_i,
                cky_r,
                local,
                remote,
                started: now,
                established: None,
                algorithms: None,
                sa_i_b: Vec::new(),
                dh: None,
                g_xi: Vec::new(),
                g_xr: Vec::new(),
                ni: Vec::new(),
                nr: Vec::new(),
                keys: None,
                iv: Vec::new(),
                p1_last_block: Vec::new(),
                natt: None,
                nat_local: false,
                nat_remote: false,
                peer_dpd: false,
                remote_id: None,
                last_in: Vec::new(),
                out: None,
                quick: Vec::new(),
                quick_failures: 0,
                rekey_at: None,
                expire_at: None,
                last_heard: now,
                dpd_seq: 0,
                dpd_pending: None,
                keepalive_at: None,
                dead: false,
                replaces: None,
            },
        );
        id
    }

    /// Half-open responder SAs now.
    pub(crate) fn half_open(&self) -> usize {
        self.sas
            .values()
            .filter(|sa| !sa.dead && !sa.initiator && sa.state != P1State::Established)
            .count()
    }
}

/// The header of a message of `sa`'s.
pub(crate) fn header(sa: &IkeSa, exchange: ExchangeType, message_id: u32) -> isakmp::Header {
    isakmp::Header {
        initiator_spi: sa.cky_i,
        responder_spi: sa.cky_r,
        exchange,
        flags: isakmp::Flags(0),
        message_id,
    }
}
