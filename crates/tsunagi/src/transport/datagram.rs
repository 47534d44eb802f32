//! The packet transport of a server profile: many PPP sessions on one
//! socket, the shape of a PPTP server (TCP 1723 + GRE) and an L2TP LNS (UDP
//! 1701), DESIGN.md "Sessions and transports".
//!
//! One task owns everything: the port (the protocol's socket and its
//! per-call state, behind [`PacketPort`]), every session's engine, the
//! demux table from the port's key (peer and call id) to the session, one
//! timer heap for all sessions, the address pool, and one tun shared by
//! all sessions ([`PacketDevice`]) on which packets are routed by inner
//! address. There is no channel hop and no lock per packet.
//!
//! A session:
//! - starts when the port reports a new call ([`PortEvent::Open`]), with
//!   its own engine on packet framing ([`tsunagi_ppp::lcp::Framing::Packet`]);
//! - authenticates (as configured), then asks for the peer's address
//!   ([`tsunagi_ppp::Event::PeerAddressNeeded`]): the per-user address
//!   from the secrets file wins, else the pool's next free address; with
//!   the pool exhausted the session ends with a log line saying so;
//! - is routed by that address once IPCP opens: packets from the tun to
//!   it are framed and sent through the port; its packets to the tun must
//!   come from it (others are dropped and counted);
//! - ends when its engine goes down, the port loses the call, or it is
//!   kicked; its lease goes back to the pool, its hooks run (netconf), the
//!   registry forgets it, and the other sessions are untouched.
//!
//! The shared tun is set up once when the transport starts: the pool's
//! local addresses on it, and routes for the pool's remote addresses, so a
//! session costs no netlink work and no interface.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};
use tsunagi_crypto::OsRandom;
use tsunagi_host::gro::Coalescer;
use tsunagi_host::netlink::Ipv4Net;
pub use tsunagi_host::offload::Received;
use tsunagi_host::offload::{segment_tcp, tcp_layout, MAX_OFFLOAD_PACKET};
use tsunagi_ppp::lcp::Framing;
use tsunagi_ppp::link::{Event, IpVersion, Link, LinkConfig};

use crate::auth::{AuthGuard, AuthSource};
use crate::capture::{Direction, Tap};
use crate::control::{Response, ServerStatus, SessionStatus, TunnelStatus};
use crate::netconf::{Change, Netconf, SessionNet, SessionNetconf};
use crate::pool::{Lease, Pool};
use crate::registry::{Command, Registry};
use crate::session::{random_seed, EndReason, Ipv4Pair, SessionId, SessionInfo};
use crate::transport::timers::{fired, sleep_until, TimerHeap};

/// How long sessions get to exchange Terminate-Request/Ack when the
/// daemon stops.
pub const CLOSE_WAIT: Duration = Duration::from_secs(3);
/// Packets taken from the tun per wake-up.
pub const DEVICE_BATCH: usize = 64;
/// The largest datagram or tun packet handled.
pub const MAX_PACKET: usize = 65535;

/// What a server's port reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortEvent<K> {
    /// A peer opened a session (a PPTP call, an L2TP session).
    Open {
        /// How the port names it (peer address and call id).
        key: K,
        /// The peer's address: its authentication failures count against
        /// it, and after a few its next sessions are refused for a while.
        peer: IpAddr,
        /// The peer outside the tunnel, for `status` and the logs (its
        /// address and port).
        outer: String,
    },
    /// A PPP frame for session `key` is at the start of the receive buffer.
    Frame {
        /// The session.
        key: K,
        /// The frame's length.
        len: usize,
    },
    /// The port lost the session (the call was cleared, the tunnel went).
    Closed {
        /// The session.
        key: K,
        /// Why, in words.
        why: String,
    },
}

/// The protocol side of a server transport: its socket(s) and its per-call
/// state. PPTP and L2TP implement it; the transport does the rest.
pub trait PacketPort: Send {
    /// How the port names a session (peer address and call id).
    type Key: Clone + Eq + Hash + fmt::Debug + Send + Sync + 'static;

    /// Octets reserved before each frame for the port's own header.
    fn headroom(&self) -> usize;

    /// Waits for the next event; a frame goes to the start of `buf`.
    fn recv(
        &mut self,
        buf: &mut [u8],
    ) -> impl Future<Output = io::Result<PortEvent<Self::Key>>> + Send;

    /// Sends one frame of session `key`: `datagram[headroom..]` is the PPP
    /// frame, the port writes its header into `datagram[..headroom]`.
    fn send(&mut self, key: &Self::Key, datagram: &mut [u8]) -> io::Result<()>;

    /// The session `key` ended (its engine went down, or it was kicked):
    /// the port clears the call.
    fn closed(&mut self, key: &Self::Key, reason: &EndReason);

    /// Sends what [`PacketPort::send`] queued. The transport calls it once
    /// per wake-up, so a port may batch (sendmmsg).
    fn flush(&mut self) {}

    /// The transport stops (every session has ended): the port ends what
    /// it still holds (L2TP: a StopCCN to every tunnel). A flush follows.
    fn stop(&mut self) {}

    /// Frames already read that [`PacketPort::recv`] will hand over
    /// without waiting (the rest of a `recvmmsg` batch): the transport
    /// holds its coalesced tun writes until they are through.
    fn has_pending(&self) -> bool {
        false
    }

    /// The session's tunnel in words, for `status` (call ids, counters).
    fn describe(&self, _key: &Self::Key) -> Option<String> {
        None
    }

    /// What the port counted that belongs to no session, by name, for
    /// `status`.
    fn counters(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    /// The port's tunnels (L2TP control connections), for `status`.
    fn tunnels(&self) -> Vec<TunnelStatus> {
        Vec::new()
    }
}

/// Where a server's sessions' packets go: one tun shared by all sessions.
///
/// In offload mode (a tun opened with [`tsunagi_host::Tun::create_offload`]
/// and TSO on), what the kernel hands over may be a TCP super-packet
/// ([`Received::gso`]), which the transport cuts to each session's MRU; and
/// what it writes may be longer than the MTU (coalesced segments), which the
/// device writes as one GSO packet.
pub trait PacketDevice: Send + Sync {
    /// Waits for the next packet from the kernel.
    fn recv(&self, buf: &mut [u8]) -> impl Future<Output = io::Result<Received>> + Send;
    /// The next packet if one is waiting (`WouldBlock` when none).
    fn try_recv(&self, buf: &mut [u8]) -> io::Result<Received>;
    /// Writes one packet to the kernel without waiting.
    fn try_send(&self, packet: &[u8]) -> io::Result<()>;
    /// The kernel interface's name, for its one-time set-up (`None`: not
    /// a kernel interface).
    fn interface(&self) -> Option<&str>;
}

impl PacketDevice for tsunagi_host::Tun {
    async fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        tsunagi_host::Tun::recv_gso(self, buf).await
    }

    fn try_recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        tsunagi_host::Tun::try_recv_gso(self, buf)
    }

    fn try_send(&self, packet: &[u8]) -> io::Result<()> {
        tsunagi_host::Tun::try_send(self, packet).map(|_| ())
    }

    fn interface(&self) -> Option<&str> {
        Some(self.name())
    }
}

/// A server profile.
#[derive(Debug)]
pub struct ServerSettings {
    /// The profile's name (status, logs, the hooks' ipparam).
    pub name: String,
    /// Each session's engine configuration: authentication, CCP, DNS to
    /// hand out, timers. The transport sets packet framing, and the
    /// addresses from the pool.
    pub link: LinkConfig,
    /// The addresses sessions get.
    pub pool: Pool,
    /// pppd's tty argument of the hooks ("pptp", "l2tp").
    pub tty: &'static str,
    /// Hook run when a session's IPCP comes up (pppd's six arguments).
    pub ip_up: Option<PathBuf>,
    /// Hook run when it goes down.
    pub ip_down: Option<PathBuf>,
    /// Answer ARP for each session's address on the LAN interface whose
    /// network holds it (pppd `proxyarp`), while its IPCP is open.
    pub proxyarp: bool,
    /// Where the port listens, for `status` ("203.0.113.1:1723").
    pub listen: String,
}

/// Counters of the transport itself (not of one session).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerCounters {
    /// Frames for a key no session has (dropped).
    pub unknown_session: u64,
    /// Packets from the tun for an address no session has (dropped).
    pub no_route: u64,
    /// Packets from a session with a source address not its own (dropped).
    pub spoofed: u64,
    /// Packets the tun would not take.
    pub device_errors: u64,
    /// Frames the port could not send.
    pub send_errors: u64,
    /// Super-packets from the tun that could not be cut into segments.
    pub segment_errors: u64,
    /// Segments coalesced into one write to the tun.
    pub coalesced: u64,
    /// Sessions refused an address (pool exhausted, limit, conflict).
    pub refused: u64,
    /// Sessions refused at once: their peer's authentication failures
    /// hold it off.
    pub held_off: u64,
}

/// One session of the server.
struct ServerSession<K> {
    key: K,
    link: Link,
    info: SessionInfo,
    netconf: SessionNetconf,
    /// The deadline in the timer heap (others there for it are stale).
    deadline: Option<Instant>,
    lease: Option<Lease>,
    /// The inner address it is routed by, while IPCP is open.
    routed: Option<Ipv4Addr>,
    /// Closed by us (kicked: a hangup; the daemon stopping): why, whatever
    /// the Terminate exchange comes to.
    closing: Option<EndReason>,
    /// Why the port lost the call, for an engine that only knows its lower
    /// layer went down.
    lower: Option<EndReason>,
    /// The peer's MRU while LCP is open: super-packets from the tun are cut
    /// to fit it.
    max_send: usize,
}

/// A server transport: see the module documentation.
pub struct Server<P: PacketPort, D: PacketDevice> {
    settings: ServerSettings,
    port: P,
    device: D,
    registry: Registry,
    netconf: Netconf,
    guard: AuthGuard,
    sessions: HashMap<SessionId, ServerSession<P::Key>>,
    by_key: HashMap<P::Key, SessionId>,
    by_inner: HashMap<Ipv4Addr, SessionId>,
    timers: TimerHeap<SessionId>,
    /// The datagram being built (headroom, then a frame).
    out: Vec<u8>,
    counters: ServerCounters,
    /// Segments for the tun, coalesced while they come in a run.
    coalescer: Coalescer,
    /// Where super-packets are cut.
    segments: Vec<u8>,
    /// The profile's capture point.
    tap: Tap,
}

impl<P: PacketPort, D: PacketDevice> Server<P, D> {
    /// A server for `settings` on `port` and `device`.
    pub fn new(
        settings: ServerSettings,
        port: P,
        device: D,
        registry: Registry,
        netconf: Netconf,
        guard: AuthGuard,
    ) -> Server<P, D> {
        // Its packets for `tsunagi capture`.
        let tap = registry.tap(&settings.name).unwrap_or_default();
        Server {
            tap,
            settings,
            port,
            device,
            registry,
            netconf,
            guard,
            sessions: HashMap::new(),
            by_key: HashMap::new(),
            by_inner: HashMap::new(),
            timers: TimerHeap::new(),
            out: Vec::with_capacity(MAX_PACKET),
            counters: ServerCounters::default(),
            coalescer: Coalescer::new(),
            segments: Vec::new(),
        }
    }

    /// The shared tun's one-time set-up: up, the pool's local addresses
    /// on it and routes for its remote addresses (failures are logged).
    async fn set_up_device(&self) {
        let Some(ifname) = self.device.interface() else {
            return;
        };
        let name = &self.settings.name;
        let netlink = self.netconf.netlink();
        let mtu = u32::from(self.settings.link.lcp.mru);
        if let Err(e) = netlink.link_up(ifname, mtu).await {
            warn!("{name}: {ifname}: cannot set mtu {mtu} and up: {e}");
        }
        for local in self.settings.pool.local_addresses() {
            match netlink.add_address_ptp(ifname, local, local).await {
                Ok(()) => info!("{name}: {ifname}: address {local}"),
                Err(e) => warn!("{name}: {ifname}: cannot add address {local}: {e}"),
            }
        }
        for net in covering_prefixes(self.settings.pool.remote_addresses()) {
            match netlink.add_route(net, ifname).await {
                Ok(()) => info!("{name}: route {net} via {ifname} (the pool)"),
                Err(e) => warn!("{name}: route {net} via {ifname}: {e}"),
            }
        }
    }

    /// Runs until the daemon stops (`shutdown` becomes true), then closes
    /// every session (Terminate-Request, up to [`CLOSE_WAIT`]).
    pub async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut shutdown: watch::Receiver<bool>,
    ) -> ServerCounters {
        self.set_up_device().await;
        info!(
            "{}: serving, pool of {} addresses ({} free)",
            self.settings.name,
            self.settings.pool.size(),
            self.settings.pool.free()
        );
        let mut rbuf = vec![0u8; MAX_PACKET];
        let mut tbuf = vec![0u8; MAX_OFFLOAD_PACKET];
        let mut closing_until: Option<Instant> = None;
        // The daemon's end of `shutdown` went away: stop as if told to.
        let mut orphaned = false;
        loop {
            if (orphaned || *shutdown.borrow()) && closing_until.is_none() {
                let now = Instant::now();
                closing_until = Some(now + CLOSE_WAIT);
                let ids: Vec<SessionId> = self.sessions.keys().copied().collect();
                for id in ids {
                    if let Some(s) = self.sessions.get_mut(&id) {
                        s.closing = Some(EndReason::Shutdown);
                        s.link.close(now, "daemon shutting down");
                    }
                    self.service(id, now);
                }
            }
            if let Some(until) = closing_until {
                if self.sessions.is_empty() || Instant::now() >= until {
                    let ids: Vec<SessionId> = self.sessions.keys().copied().collect();
                    for id in ids {
                        self.end_session(id, EndReason::Shutdown);
                    }
                    self.flush_device();
                    self.port.stop();
                    self.port.flush();
                    return self.counters;
                }
            }
            let next = self.next_deadline();
            let wake = closing_until.into_iter().chain(next).min();
            let sleep = sleep_until(wake);
            tokio::select! {
                event = self.port.recv(&mut rbuf) => match event {
                    Ok(event) => self.port_event(event, &rbuf),
                    Err(e) => {
                        // A port that failed loses every call; the
                        // transport goes on (the port reopens as it can).
                        warn!("{}: port: {e}", self.settings.name);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                got = self.device.recv(&mut tbuf) => match got {
                    Ok(got) => {
                        self.device_packet(&tbuf, got);
                        for _ in 1..DEVICE_BATCH {
                            match self.device.try_recv(&mut tbuf) {
                                Ok(got) => self.device_packet(&tbuf, got),
                                Err(_) => break,
                            }
                        }
                    }
                    Err(e) => {
                        warn!("{}: tun read: {e}", self.settings.name);
                        self.counters.device_errors += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                () = sleep => self.fire_timers(Instant::now()),
                command = commands.recv() => match command {
                    Some(command) => self.command(command),
                    None => return self.counters,
                },
                changed = shutdown.changed(), if closing_until.is_none() => {
                    orphaned |= changed.is_err();
                }
            }
            // The coalesced segments go once the port's batch is through:
            // a run across two wake-ups is then one write, and nothing
            // waits for more than that batch.
            if !self.port.has_pending() {
                self.flush_device();
            }
            self.port.flush();
        }
    }

    /// The earliest live deadline; stale heap entries are dropped.
    fn next_deadline(&mut self) -> Option<Instant> {
        let sessions = &self.sessions;
        self.timers
            .next_live(|id| sessions.get(&id).and_then(|s| s.deadline))
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some((at, id)) = self.timers.pop_due(now) {
            let Some(s) = self.sessions.get_mut(&id) else {
                continue;
            };
            if !fired(&mut s.deadline, at) {
                continue;
            }
            s.link.handle_timeout(now);
            self.service(id, now);
        }
    }

    fn port_event(&mut self, event: PortEvent<P::Key>, buf: &[u8]) {
        let now = Instant::now();
        match event {
            PortEvent::Open { key, peer, outer } => self.open_session(key, peer, outer, now),
            PortEvent::Frame { key, len } => {
                let Some(&id) = self.by_key.get(&key) else {
                    self.counters.unknown_session += 1;
                    debug!("{}: frame for unknown session {key:?}", self.settings.name);
                    return;
                };
                let Some(s) = self.sessions.get_mut(&id) else {
                    return;
                };
                let device = &self.device;
                let counters = &mut self.counters;
                let coalescer = &mut self.coalescer;
                let routed = s.routed;
                let tap = &self.tap;
                let tun_errors = &mut s.info.tun_errors;
                s.link
                    .handle_frame(now, &buf[..len.min(buf.len())], &mut |version, packet| {
                        // A session's packets come from its own address.
                        if version == IpVersion::V4 && source(packet) != routed {
                            counters.spoofed += 1;
                            return;
                        }
                        tap.packet(Direction::In, packet);
                        coalescer.push(packet, &mut |p| {
                            if device.try_send(p).is_err() {
                                *tun_errors += 1;
                                counters.device_errors += 1;
                            }
                        });
                    });
                self.service(id, now);
            }
            PortEvent::Closed { key, why } => {
                if let Some(&id) = self.by_key.get(&key) {
                    let lost = EndReason::TransportLost(why);
                    if let Some(s) = self.sessions.get_mut(&id) {
                        // The engine says why it went down (a peer's
                        // Terminate-Request just before says more than
                        // the call's end); the port's words otherwise.
                        s.lower = Some(lost.clone());
                        s.link.lower_down(now);
                        self.service(id, now);
                    }
                    self.end_session(id, lost);
                }
            }
        }
    }

    fn open_session(&mut self, key: P::Key, peer: IpAddr, outer: String, now: Instant) {
        if let Some(&old) = self.by_key.get(&key) {
            // The port reuses a key: the old session is gone.
            self.end_session(old, EndReason::TransportLost("call replaced".into()));
        }
        let name = self.settings.name.clone();
        // Failures count against the peer's address, not its port: a new
        // source port is no new peer.
        let source = AuthSource::Peer(peer.to_string());
        if let Some(hold) = self.guard.hold_for(now, &source) {
            self.counters.held_off += 1;
            let reason = EndReason::HeldOff {
                key: hold.key.to_string(),
                secs: hold.secs(),
            };
            debug!("{name}: session from {outer} refused: {reason}");
            self.port.closed(&key, &reason);
            return;
        }
        let id = self.registry.open_session(&name);
        let log_name = format!("{name}[{id}]");
        let ifname = self.device.interface().unwrap_or("-").to_string();
        let mut info = SessionInfo::new(id, &name, log_name.clone(), source, &ifname)
            .audited(self.registry.audit(), self.settings.tty);
        info.outer_peer = outer;
        let mut config = self.settings.link.clone();
        config.name = log_name.clone();
        config.lcp.framing = Framing::Packet;
        config.ipcp.remote_from_driver = true;
        config.ipcp.remote = None;
        let netconf = self.netconf.open(SessionNet {
            name: log_name.clone(),
            ifname,
            tty: self.settings.tty,
            ipparam: name.clone(),
            owns_interface: false,
            routes: Vec::new(),
            full_tunnel: None,
            source_routes: Vec::new(),
            route_table: 0,
            ip_up: self.settings.ip_up.clone(),
            ip_down: self.settings.ip_down.clone(),
            ipv6: false,
            proxyarp: self.settings.proxyarp,
        });
        let mut link = Link::new(config, random_seed(), OsRandom::handle());
        link.start(now);
        info!("{log_name}: session from {} ({key:?})", info.outer_peer);
        self.by_key.insert(key.clone(), id);
        self.sessions.insert(
            id,
            ServerSession {
                key,
                link,
                info,
                netconf,
                deadline: None,
                lease: None,
                routed: None,
                closing: None,
                lower: None,
                max_send: usize::from(tsunagi_ppp::lcp::DEFAULT_MRU),
            },
        );
        self.service(id, now);
    }

    /// After a session's engine was fed: send what it queued, act on its
    /// events, re-arm its timer.
    fn service(&mut self, id: SessionId, now: Instant) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        while let Some(event) = s.link.poll_auth_event() {
            s.info.auth_event(event, &self.guard);
        }
        let mut ended = None;
        while let Some(event) = s.link.poll_event() {
            match event {
                Event::PeerAddressNeeded { user, fixed } => {
                    let lease = match s.lease {
                        Some(lease) => Ok(lease),
                        None => self.settings.pool.lease(id.0, user.as_deref(), fixed),
                    };
                    match lease {
                        Ok(lease) => {
                            s.lease = Some(lease);
                            s.link.set_local_address(lease.local);
                            s.link.set_peer_address(now, lease.remote);
                        }
                        Err(e) => {
                            warn!("{}: no address: {e}", s.info.log_name);
                            self.counters.refused += 1;
                            s.link.refuse_peer_address(now, &e.to_string());
                        }
                    }
                }
                Event::Ipv4Up { local, peer, dns } => {
                    s.max_send = usize::from(s.link.status().peer_mru);
                    s.info.ipv4_up(local, peer);
                    if let Some(old) = s.routed.replace(peer) {
                        self.by_inner.remove(&old);
                    }
                    self.by_inner.insert(peer, id);
                    s.netconf
                        .send(Change::Ipv4Up(Ipv4Pair { local, peer, dns }));
                }
                Event::Ipv4Down => {
                    s.info.ipv4(false);
                    if let Some(old) = s.routed.take() {
                        self.by_inner.remove(&old);
                    }
                    s.netconf.send(Change::Ipv4Down);
                }
                Event::Down(reason) => {
                    let end = match &s.closing {
                        Some(why) => why.clone(),
                        None => s.info.end_for(reason, s.lower.take()),
                    };
                    ended = Some(end);
                }
                Event::PeerIdent(text) => {
                    info!("{}: LCP: peer identifies as {text:?}", s.info.log_name)
                }
                Event::Phase(_) | Event::Ipv6Up { .. } | Event::Ipv6Down => {}
            }
        }
        // What the engine queued, in order, and what the events caused (a
        // refusal's Terminate-Request) after it.
        let headroom = self.port.headroom();
        loop {
            self.out.clear();
            self.out.resize(headroom, 0);
            if s.link.poll_transmit(&mut self.out).is_none() {
                break;
            }
            if self.port.send(&s.key, &mut self.out).is_err() {
                self.counters.send_errors += 1;
            }
        }
        if let Some(end) = ended {
            self.end_session(id, end);
            return;
        }
        self.timers.arm(&mut s.deadline, s.link.poll_timeout(), id);
    }

    /// Forgets a session: its lease, its route, its netconf (hooks run and
    /// are waited for in a task of their own), its registry entry.
    fn end_session(&mut self, id: SessionId, reason: EndReason) {
        let Some(s) = self.sessions.remove(&id) else {
            return;
        };
        self.by_key.remove(&s.key);
        if let Some(addr) = s.routed {
            self.by_inner.remove(&addr);
        }
        if s.lease.is_some() {
            self.settings.pool.release(id.0);
        }
        self.port.closed(&s.key, &reason);
        info!("{}: session ended: {reason}", s.info.log_name);
        let counters = crate::control::Counters::from(s.link.stats());
        self.registry.end_session(&s.info, &reason, Some(counters));
        let netconf = s.netconf;
        tokio::spawn(netconf.finish());
    }

    /// Writes the segments coalesced so far to the tun.
    fn flush_device(&mut self) {
        let device = &self.device;
        let counters = &mut self.counters;
        self.coalescer.flush(&mut |p| {
            if device.try_send(p).is_err() {
                counters.device_errors += 1;
            }
        });
        counters.coalesced = self.coalescer.merged();
    }

    /// One packet from the tun (at the start of `tbuf`): to the session
    /// its destination belongs to; a TCP super-packet longer than the
    /// session's peer takes is cut into segments first.
    fn device_packet(&mut self, tbuf: &[u8], got: Received) {
        let packet = &tbuf[..got.len.min(tbuf.len())];
        let Some(id) = destination(packet).and_then(|dst| self.by_inner.get(&dst).copied()) else {
            self.counters.no_route += 1;
            return;
        };
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let headroom = self.port.headroom();
        let out = &mut self.out;
        let port = &mut self.port;
        let counters = &mut self.counters;
        let key = &s.key;
        let link = &mut s.link;
        let tap = &self.tap;
        let mut send = |segment: &[u8]| {
            out.clear();
            out.resize(headroom, 0);
            let framed = link.encapsulate(IpVersion::V4, segment, out);
            if framed {
                tap.packet(Direction::Out, segment);
            }
            if framed && port.send(key, out).is_err() {
                counters.send_errors += 1;
            }
        };
        match got.gso {
            Some(gso) if packet.len() > s.max_send => {
                // Segments of the kernel's size, or smaller where the
                // peer's MRU is smaller than our tun's MTU.
                let room = tcp_layout(packet)
                    .map(|l| s.max_send.saturating_sub(l.headers()))
                    .unwrap_or(0);
                let payload = usize::from(gso).min(room);
                if payload == 0
                    || segment_tcp(packet, payload, &mut self.segments, &mut send).is_err()
                {
                    counters.segment_errors += 1;
                }
            }
            _ => send(packet),
        }
    }

    fn command(&mut self, command: Command) {
        let name = self.settings.name.clone();
        let now = Instant::now();
        match command {
            Command::Snapshot(reply) => {
                let port = &self.port;
                let mut all: Vec<SessionStatus> = self
                    .sessions
                    .values()
                    .map(|s| {
                        let mut status = s.info.status(&s.link, now);
                        status.tunnel = port.describe(&s.key);
                        status
                    })
                    .collect();
                all.sort_by_key(|s| s.id);
                let _ = reply.send(all);
            }
            Command::Kick(id, reply) => match self.sessions.get_mut(&id) {
                Some(s) => {
                    info!("{}: kicked", s.info.log_name);
                    s.closing = Some(EndReason::Hangup);
                    s.link.close(now, "Administrative hangup");
                    let _ = reply.send(Response::Done {
                        message: format!("{name}: closing session {id}"),
                    });
                    self.service(id, now);
                }
                None => {
                    let _ = reply.send(Response::Refused {
                        message: format!("no session {id} on {name}"),
                    });
                }
            },
            Command::Dial(reply) | Command::Hangup(reply) => {
                let _ = reply.send(Response::Refused {
                    message: format!("{name} is a server: `kick` one of its sessions"),
                });
            }
            Command::ServerStatus(reply) => {
                let c = &self.counters;
                let mut counters: std::collections::BTreeMap<String, u64> = [
                    ("unknown_session", c.unknown_session),
                    ("no_route", c.no_route),
                    ("spoofed", c.spoofed),
                    ("device_errors", c.device_errors),
                    ("send_errors", c.send_errors),
                    ("segment_errors", c.segment_errors),
                    ("coalesced", c.coalesced),
                    ("refused", c.refused),
                    ("held_off", c.held_off),
                ]
                .into_iter()
                .chain(self.port.counters())
                .filter(|(_, v)| *v > 0)
                .map(|(k, v)| (k.to_string(), v))
                .collect();
                counters.retain(|_, v| *v > 0);
                let pool = &self.settings.pool;
                let _ = reply.send(ServerStatus {
                    name,
                    protocol: self.settings.tty.to_string(),
                    listen: self.settings.listen.clone(),
                    tun: self.device.interface().unwrap_or("-").to_string(),
                    sessions: self.sessions.len(),
                    pool_size: pool.size(),
                    pool_free: pool.free(),
                    counters,
                    tunnels: self.port.tunnels(),
                });
            }
            // The IPsec driver's; nobody asks a server.
            Command::IpsecStatus(_) => {}
            Command::Attach(attach) => {
                let _ = attach.reply.send(Response::Refused {
                    message: format!("profile {name} is a server, not mode = \"direct\""),
                });
            }
        }
    }
}

/// An IPv4 packet's source address.
fn source(packet: &[u8]) -> Option<Ipv4Addr> {
    match packet {
        [v, _, _, _, _, _, _, _, _, _, _, _, a, b, c, d, ..] if v >> 4 == 4 => {
            Some(Ipv4Addr::new(*a, *b, *c, *d))
        }
        _ => None,
    }
}

/// An IPv4 packet's destination address.
fn destination(packet: &[u8]) -> Option<Ipv4Addr> {
    match packet {
        [v, _, _, _, _, _, _, _, _, _, _, _, _, _, _, _, a, b, c, d, ..] if v >> 4 == 4 => {
            Some(Ipv4Addr::new(*a, *b, *c, *d))
        }
        _ => None,
    }
}

/// The fewest prefixes that cover exactly `addresses` (in any order,
/// duplicates allowed): the routes of a pool.
pub fn covering_prefixes(addresses: &[Ipv4Addr]) -> Vec<Ipv4Net> {
    let mut values: Vec<u32> = addresses.iter().map(|a| u32::from(*a)).collect();
    values.sort_unstable();
    values.dedup();
    let mut out = Vec::new();
    let mut i = 0;
    while i < values.len() {
        // The run of consecutive addresses starting here.
        let start = values[i];
        let mut end = start;
        while i + 1 < values.len() && values[i + 1] == end.wrapping_add(1) && end != u32::MAX {
            i += 1;
            end = values[i];
        }
        i += 1;
        // Cut the run [start, end] into aligned blocks.
        let mut at = u64::from(start);
        let stop = u64::from(end) + 1;
        while at < stop {
            let mut size = if at == 0 {
                1u64 << 32
            } else {
                at & at.wrapping_neg()
            };
            while at + size > stop {
                size /= 2;
            }
            let prefix = 32 - size.trailing_zeros() as u8;
            if let Ok(net) = Ipv4Net::new(Ipv4Addr::from(at as u32), prefix) {
                out.push(net);
            }
            at += size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_cover_exactly_the_pool() {
        let a = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let nets = |addrs: &[&str]| -> Vec<String> {
            covering_prefixes(&addrs.iter().map(|s| a(s)).collect::<Vec<_>>())
                .iter()
                .map(|n| format!("{}/{}", n.addr, n.prefix))
                .collect()
        };
        // pptpd.conf's example: 192.168.0.234-238,192.168.0.245
        assert_eq!(
            nets(&[
                "192.168.0.234",
                "192.168.0.235",
                "192.168.0.236",
                "192.168.0.237",
                "192.168.0.238",
                "192.168.0.245"
            ]),
            [
                "192.168.0.234/31",
                "192.168.0.236/31",
                "192.168.0.238/32",
                "192.168.0.245/32"
            ]
        );
        let block: Vec<Ipv4Addr> = (0..=255u8).map(|i| Ipv4Addr::new(10, 0, 0, i)).collect();
        assert_eq!(
            covering_prefixes(&block)
                .iter()
                .map(|n| format!("{}/{}", n.addr, n.prefix))
                .collect::<Vec<_>>(),
            ["10.0.0.0/24"]
        );
        assert!(covering_prefixes(&[]).is_empty());
    }

    #[test]
    fn addresses_of_ipv4_packets() {
        let mut p = [0u8; 20];
        p[0] = 0x45;
        p[12..16].copy_from_slice(&[10, 0, 0, 2]);
        p[16..20].copy_from_slice(&[10, 0, 0, 1]);
        assert_eq!(source(&p), Some(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(destination(&p), Some(Ipv4Addr::new(10, 0, 0, 1)));
        p[0] = 0x60;
        assert_eq!(destination(&p), None);
        assert_eq!(destination(&p[..10]), None);
    }
}
