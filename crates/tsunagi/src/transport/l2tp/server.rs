//! The LNS's port (what xl2tpd's `[lns]` does): one UDP socket on port
//! 1701 carrying every tunnel and every session, behind [`PacketPort`] so
//! that the server transport ([`crate::transport::datagram`]) runs the PPP
//! sessions, the pool and the shared tun.
//!
//! - Datagrams are read by the batch (`recvmmsg`) and handed to
//!   [`Dispatch`], which finds the tunnel by our Tunnel ID and the peer's
//!   address and port; an SCCRQ (Tunnel ID 0) is known by the peer's
//!   address, port and Assigned Tunnel ID, so LACs behind one NAT, all from
//!   source port 1701, are kept apart. Whatever `Dispatch` refuses (a
//!   header that does not parse, an unknown Tunnel ID, a right Tunnel ID
//!   from the wrong address, more tunnels than the limits) is dropped and
//!   counted.
//! - Each tunnel is a [`Tunnel`] engine in the LNS role; its control
//!   messages leave by the batch (`sendmmsg`), flushed once per wake-up.
//!   A session the LAC asks for (ICRQ) is accepted unless the server has
//!   its `connections` already; once established (ICCN) it becomes one PPP
//!   session ([`PortEvent::Open`]), keyed by (our Tunnel ID, our Session
//!   ID).
//! - A session whose PPP ended is disconnected (CDN); a tunnel whose last
//!   session went stays for the LAC to stop or reuse, as xl2tpd's does,
//!   and ends by itself when its peer stops answering (HELLO). When the
//!   daemon stops, every tunnel is stopped (StopCCN) so that LACs redial
//!   at once rather than after their keepalive gives up.
//! - Limits against peers that never authenticate: tunnels in all and per
//!   address ([`DispatchConfig`]), a tunnel must be established within the
//!   engine's reply timeout, and sessions are bounded by `connections`.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use tsunagi_crypto::OsRandom;
use tsunagi_host::udp::{RecvBatch, SendBatch, UdpBatchSocket};
use tsunagi_l2tp::dispatch::DispatchCounters;
use tsunagi_l2tp::tunnel::Input;
use tsunagi_l2tp::{
    CdnResult, Dispatch, DispatchConfig, ErrorCode, Role, Route, StopCcnResult, Tunnel,
    TunnelConfig, TunnelEvent, DATA_HEADROOM, UDP_PORT,
};

use super::{tunnel_config, UDP_RCVBUF};
use crate::config::L2tpSettings;
use crate::control::TunnelStatus;
use crate::logging::{Admit, RateLimit, LOG_BUDGET, LOG_KEYS, LOG_WINDOW};
use crate::session::EndReason;
use crate::transport::datagram::{PacketPort, PortEvent, MAX_PACKET};
use crate::transport::timers::{fired, sleep_until, TimerHeap};

/// Tunnels at most from one IP address (LACs behind one NAT share it).
pub const TUNNELS_PER_ADDRESS: usize = 64;

/// How the server transport names a session: our Tunnel ID and our
/// Session ID (both unique: Tunnel IDs across the server, Session IDs
/// within a tunnel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionKey {
    /// Our Tunnel ID.
    pub tunnel: u16,
    /// Our Session ID.
    pub session: u16,
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tunnel {} session {}", self.tunnel, self.session)
    }
}

/// What the port counted (not per tunnel).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct L2tpCounters {
    /// Tunnels made.
    pub tunnels: u64,
    /// Sessions refused (the server's `connections` reached).
    pub sessions_refused: u64,
    /// Datagrams longer than a receive slot (dropped).
    pub truncated: u64,
    /// Datagrams dropped because the kernel would not take them.
    pub send_dropped: u64,
}

/// One tunnel.
struct Entry {
    tunnel: Tunnel,
    peer: SocketAddrV4,
    /// The deadline in the timer heap.
    deadline: Option<Instant>,
    /// Our Session IDs of the sessions the transport was told of (Open).
    open: BTreeSet<u16>,
    since: Instant,
}

/// What a rate-limited log line is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct LogKey {
    peer: Ipv4Addr,
}

impl fmt::Display for LogKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "L2TP: datagrams dropped from {}", self.peer)
    }
}

/// The port: see the module documentation.
pub struct L2tpPort {
    name: String,
    socket: UdpBatchSocket,
    config: TunnelConfig,
    dispatch: Dispatch,
    tunnels: HashMap<u16, Entry>,
    max_sessions: usize,
    events: VecDeque<PortEvent<SessionKey>>,
    recv: RecvBatch,
    /// The next datagram of `recv` to look at, and how many it holds.
    recv_at: usize,
    recv_len: usize,
    send: SendBatch,
    /// One control datagram being written.
    out: Vec<u8>,
    timers: TimerHeap<u16>,
    counters: L2tpCounters,
    log_limit: RateLimit<LogKey>,
    /// L2TP/IPsec: clients whose last IPsec SA went, by the address and
    /// port L2TP knows them by.
    gone: Option<mpsc::UnboundedReceiver<SocketAddr>>,
}

impl L2tpPort {
    /// Binds UDP `listen`:1701 (all addresses when `None`; `port` other
    /// than 1701 for tests) for at most `max_sessions` sessions; with a
    /// `device` (L2TP/IPsec: the transport conn's tun) only datagrams that
    /// came out of IPsec reach it, and everything it sends goes into IPsec.
    pub fn bind(
        name: &str,
        listen: Option<Ipv4Addr>,
        port: u16,
        settings: &L2tpSettings,
        max_sessions: usize,
        device: Option<&str>,
    ) -> io::Result<L2tpPort> {
        let at = SocketAddrV4::new(listen.unwrap_or(Ipv4Addr::UNSPECIFIED), port);
        let socket = UdpBatchSocket::bind_on(at, device).map_err(|e| {
            let on = device.map(|d| format!(" on {d}")).unwrap_or_default();
            io::Error::new(e.kind(), format!("cannot listen on UDP {at}{on}: {e}"))
        })?;
        if let Err(e) = socket.set_recv_buffer_size_force(UDP_RCVBUF) {
            warn!("{name}: L2TP: {e}");
        }
        let mut config = tunnel_config(Role::Lns, settings);
        config.max_sessions = u16::try_from(max_sessions).unwrap_or(u16::MAX).max(1);
        let dispatch = Dispatch::new(
            DispatchConfig {
                max_tunnels: max_sessions.saturating_add(64),
                max_tunnels_per_address: TUNNELS_PER_ADDRESS,
                secret: settings.secret.clone(),
            },
            OsRandom::handle(),
        );
        Ok(L2tpPort {
            name: name.to_string(),
            socket,
            config,
            dispatch,
            tunnels: HashMap::new(),
            max_sessions,
            events: VecDeque::new(),
            recv: RecvBatch::default(),
            recv_at: 0,
            recv_len: 0,
            send: SendBatch::default(),
            out: Vec::with_capacity(1500),
            timers: TimerHeap::new(),
            counters: L2tpCounters::default(),
            log_limit: RateLimit::new(LOG_BUDGET, LOG_WINDOW, LOG_KEYS),
            gone: None,
        })
    }

    /// L2TP/IPsec: where the driver says which clients' IPsec went; their
    /// sessions end and their tunnels stop with it.
    pub fn set_ipsec_gone(&mut self, gone: mpsc::UnboundedReceiver<SocketAddr>) {
        self.gone = Some(gone);
    }

    /// A client's IPsec went: nothing more reaches it, so its sessions end
    /// now (their addresses back to the pool) and its tunnels stop.
    fn peer_gone(&mut self, seen: SocketAddr, now: Instant) {
        let SocketAddr::V4(seen) = seen else {
            return;
        };
        let ids: Vec<u16> = self
            .tunnels
            .iter()
            .filter(|(_, e)| e.peer == seen)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let Some(e) = self.tunnels.get_mut(&id) else {
                continue;
            };
            info!(
                "{}: L2TP: tunnel {id} from {seen}: its IPsec SA is gone, closing it",
                self.name
            );
            for session in std::mem::take(&mut e.open) {
                self.events.push_back(PortEvent::Closed {
                    key: SessionKey {
                        tunnel: id,
                        session,
                    },
                    why: "IPsec: the client's SA is gone".into(),
                });
            }
            e.tunnel.stop(now, StopCcnResult::GeneralRequest, None);
            self.service(id, now);
        }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddrV4> {
        self.socket.local_addr()
    }

    /// Sessions on every tunnel, in any state.
    fn session_count(&self) -> usize {
        self.tunnels
            .values()
            .map(|e| e.tunnel.sessions().count())
            .sum()
    }

    /// After a tunnel's engine was fed: its events to the transport, its
    /// datagrams to the send batch, its timer re-armed; forgotten once
    /// closed.
    fn service(&mut self, id: u16, now: Instant) {
        let total = self.session_count();
        let Some(e) = self.tunnels.get_mut(&id) else {
            return;
        };
        let name = &self.name;
        let peer = e.peer;
        let mut accepted = 0;
        while let Some(event) = e.tunnel.poll_event() {
            match event {
                TunnelEvent::Up {
                    peer_host_name,
                    peer_vendor_name,
                    peer_tunnel_id,
                    authenticated,
                    ..
                } => {
                    self.dispatch.established(id);
                    info!(
                        "{name}: L2TP: tunnel {id} from {peer} up: host {peer_host_name:?} vendor {peer_vendor_name:?}, its tunnel {peer_tunnel_id}{}",
                        if authenticated { ", authenticated" } else { "" }
                    );
                }
                TunnelEvent::Down { why } => {
                    info!("{name}: L2TP: tunnel {id} from {peer} down: {why}");
                    for session in std::mem::take(&mut e.open) {
                        self.events.push_back(PortEvent::Closed {
                            key: SessionKey {
                                tunnel: id,
                                session,
                            },
                            why: format!("L2TP: tunnel down: {why}"),
                        });
                    }
                }
                TunnelEvent::SessionRequested {
                    session_id,
                    peer_session_id,
                    call,
                    ..
                } => {
                    // The request itself is counted among the sessions.
                    if total + accepted > self.max_sessions {
                        self.counters.sessions_refused += 1;
                        warn!(
                            "{name}: L2TP: tunnel {id}: session refused: {} sessions, the limit",
                            self.max_sessions
                        );
                        let _ = e.tunnel.refuse_session(
                            now,
                            session_id,
                            CdnResult::NoFacilitiesTemporary,
                            Some(ErrorCode::NoResources),
                        );
                    } else {
                        accepted += 1;
                        debug!(
                            "{name}: L2TP: tunnel {id}: session {session_id} requested (its session {peer_session_id}, serial {}, calling {:?})",
                            call.serial, call.calling_number
                        );
                        let _ = e.tunnel.accept_session(now, session_id);
                    }
                }
                TunnelEvent::SessionUp {
                    session_id,
                    peer_session_id,
                    sequencing,
                    ..
                } => {
                    info!(
                        "{name}: L2TP: tunnel {id}: session {session_id} up (its session {peer_session_id}{})",
                        if sequencing { ", sequenced" } else { "" }
                    );
                    e.open.insert(session_id);
                    self.events.push_back(PortEvent::Open {
                        key: SessionKey {
                            tunnel: id,
                            session: session_id,
                        },
                        peer: IpAddr::V4(*peer.ip()),
                        outer: peer.to_string(),
                    });
                }
                TunnelEvent::SessionDown {
                    session_id, why, ..
                } => {
                    info!("{name}: L2TP: tunnel {id}: session {session_id} down: {why}");
                    if e.open.remove(&session_id) {
                        self.events.push_back(PortEvent::Closed {
                            key: SessionKey {
                                tunnel: id,
                                session: session_id,
                            },
                            why: format!("L2TP: {why}"),
                        });
                    }
                }
                TunnelEvent::SetLinkInfo { .. } => {}
                TunnelEvent::WanErrorNotify { session_id, errors } => {
                    info!("{name}: L2TP: tunnel {id}: session {session_id}: WAN-Error-Notify {errors:?}");
                }
            }
        }
        while e.tunnel.poll_transmit(&mut self.out) {
            self.send.slot_to(peer).extend_from_slice(&self.out);
        }
        if e.tunnel.is_closed() {
            debug!("{name}: L2TP: tunnel {id} from {peer} forgotten");
            self.dispatch.remove(id);
            self.tunnels.remove(&id);
            return;
        }
        self.timers
            .arm(&mut e.deadline, e.tunnel.poll_timeout(), id);
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some((at, id)) = self.timers.pop_due(now) {
            let Some(e) = self.tunnels.get_mut(&id) else {
                continue;
            };
            if !fired(&mut e.deadline, at) {
                continue;
            }
            e.tunnel.handle_timeout(now);
            self.service(id, now);
        }
    }

    /// The earliest live deadline; stale heap entries are dropped.
    fn next_deadline(&mut self) -> Option<Instant> {
        let tunnels = &self.tunnels;
        self.timers
            .next_live(|id| tunnels.get(&id).and_then(|e| e.deadline))
    }

    /// The next datagram of the batch that carries a frame for a session
    /// (copied to the start of `buf`); control messages are taken in on
    /// the way. Stops early when a control message made port events.
    fn next_frame(&mut self, buf: &mut [u8], now: Instant) -> Option<PortEvent<SessionKey>> {
        while self.recv_at < self.recv_len && self.events.is_empty() {
            let i = self.recv_at;
            self.recv_at += 1;
            let Some((from, datagram)) = self.recv.get_from(i) else {
                continue;
            };
            let id = match self.dispatch.route(SocketAddr::V4(from), datagram) {
                Route::Tunnel(id) => id,
                Route::New {
                    local_id,
                    peer_tunnel_id,
                    discard,
                } => {
                    if let Some(old) = discard {
                        self.tunnels.remove(&old);
                    }
                    self.counters.tunnels += 1;
                    debug!(
                        "{}: L2TP: SCCRQ from {from} (its tunnel {peer_tunnel_id}): tunnel {local_id}",
                        self.name
                    );
                    let tunnel =
                        Tunnel::accept(self.config.clone(), local_id, now, OsRandom::handle());
                    self.tunnels.insert(
                        local_id,
                        Entry {
                            tunnel,
                            peer: from,
                            deadline: None,
                            open: BTreeSet::new(),
                            since: now,
                        },
                    );
                    local_id
                }
                Route::Discard { local_id } => {
                    self.tunnels.remove(&local_id);
                    continue;
                }
                Route::Dropped(why) => {
                    let key = LogKey { peer: *from.ip() };
                    if self.log_limit.admit(now, key) == Admit::Write {
                        debug!("{}: L2TP: from {from}: dropped: {why:?}", self.name);
                    }
                    continue;
                }
            };
            let Some(e) = self.tunnels.get_mut(&id) else {
                continue;
            };
            match e.tunnel.handle_input(now, datagram) {
                Input::Data {
                    session_id,
                    payload,
                } => {
                    let frame = &datagram[payload];
                    let len = frame.len().min(buf.len());
                    buf[..len].copy_from_slice(&frame[..len]);
                    return Some(PortEvent::Frame {
                        key: SessionKey {
                            tunnel: id,
                            session: session_id,
                        },
                        len,
                    });
                }
                Input::Control => self.service(id, now),
                Input::Dropped(_) => {}
            }
        }
        None
    }

    /// Stops every tunnel (StopCCN, "Requester is being shut down") and
    /// sends what that queued: the daemon is stopping, and LACs should
    /// redial at once rather than when their keepalive gives up.
    fn stop_all(&mut self, now: Instant) {
        let ids: Vec<u16> = self.tunnels.keys().copied().collect();
        for id in ids {
            if let Some(e) = self.tunnels.get_mut(&id) {
                e.tunnel.stop(now, StopCcnResult::ShuttingDown, None);
            }
            self.service(id, now);
        }
        self.flush();
    }

    fn log_summaries(&mut self, now: Instant) {
        for summary in self.log_limit.expire(now) {
            debug!("{}: {summary}", self.name);
        }
    }
}

/// The next client gone, or never without IPsec.
async fn ipsec_gone(gone: &mut Option<mpsc::UnboundedReceiver<SocketAddr>>) -> Option<SocketAddr> {
    match gone {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl PacketPort for L2tpPort {
    type Key = SessionKey;

    fn headroom(&self) -> usize {
        DATA_HEADROOM
    }

    async fn recv(&mut self, buf: &mut [u8]) -> io::Result<PortEvent<SessionKey>> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Ok(event);
            }
            let now = Instant::now();
            if let Some(event) = self.next_frame(buf, now) {
                return Ok(event);
            }
            if !self.events.is_empty() {
                continue;
            }
            // Acknowledgements and answers to the datagrams just read.
            self.flush();
            let next = self
                .next_deadline()
                .into_iter()
                .chain(self.log_limit.poll_at())
                .min();
            let sleep = sleep_until(next);
            tokio::select! {
                got = self.socket.recv_batch(&mut self.recv) => {
                    self.recv_at = 0;
                    self.recv_len = match got {
                        Ok(n) => n,
                        Err(e) => {
                            debug!("{}: L2TP: receive: {e}", self.name);
                            // Not a reason to spin.
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            0
                        }
                    };
                    self.counters.truncated = self.recv.truncated();
                }
                () = sleep => {
                    let now = Instant::now();
                    self.log_summaries(now);
                    self.fire_timers(now);
                }
                Some(seen) = ipsec_gone(&mut self.gone) => {
                    self.peer_gone(seen, Instant::now());
                }
            }
        }
    }

    fn send(&mut self, key: &SessionKey, datagram: &mut [u8]) -> io::Result<()> {
        let Some(e) = self.tunnels.get_mut(&key.tunnel) else {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                format!("no tunnel {}", key.tunnel),
            ));
        };
        let end = datagram.len().min(MAX_PACKET);
        let range = e
            .tunnel
            .encapsulate(key.session, datagram, DATA_HEADROOM..end)
            .map_err(|err| io::Error::new(io::ErrorKind::NotConnected, err.to_string()))?;
        self.send
            .slot_to(e.peer)
            .extend_from_slice(&datagram[range]);
        if self.send.is_full() {
            self.flush();
        }
        Ok(())
    }

    fn closed(&mut self, key: &SessionKey, reason: &EndReason) {
        let now = Instant::now();
        let Some(e) = self.tunnels.get_mut(&key.tunnel) else {
            return;
        };
        // The session's last frames leave before its CDN.
        e.open.remove(&key.session);
        let result = match reason {
            EndReason::Hangup | EndReason::Shutdown | EndReason::Reconfigured => {
                CdnResult::Administrative
            }
            _ => CdnResult::GeneralError,
        };
        if e.tunnel.session_state(key.session).is_some() {
            let _ = e.tunnel.close_session(now, key.session, result, None);
        }
        self.service(key.tunnel, now);
    }

    fn stop(&mut self) {
        self.stop_all(Instant::now());
    }

    fn has_pending(&self) -> bool {
        self.recv_at < self.recv_len
    }

    fn flush(&mut self) {
        if self.send.is_empty() {
            return;
        }
        if let Err(e) = self.socket.flush(&mut self.send) {
            debug!("{}: L2TP: {e}", self.name);
        }
        self.counters.send_dropped = self.send.dropped();
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let c = &self.counters;
        let d: &DispatchCounters = self.dispatch.counters();
        vec![
            ("l2tp_tunnels_made", c.tunnels),
            ("l2tp_sessions_refused", c.sessions_refused),
            ("l2tp_truncated", c.truncated),
            ("l2tp_send_dropped", c.send_dropped),
            ("l2tp_malformed", d.malformed),
            ("l2tp_unknown_tunnel", d.unknown_tunnel),
            ("l2tp_wrong_peer", d.wrong_peer),
            ("l2tp_not_sccrq", d.not_sccrq),
            ("l2tp_sccrq_retransmissions", d.sccrq_retransmissions),
            ("l2tp_refused_total", d.refused_total),
            ("l2tp_refused_per_address", d.refused_per_address),
        ]
    }

    fn describe(&self, key: &SessionKey) -> Option<String> {
        let e = self.tunnels.get(&key.tunnel)?;
        let t = &e.tunnel;
        Some(format!(
            "l2tp {} tunnel {}/{} session {}/{}",
            e.peer,
            key.tunnel,
            t.peer_id(),
            key.session,
            t.peer_session_id(key.session).unwrap_or(0)
        ))
    }

    fn tunnels(&self) -> Vec<TunnelStatus> {
        let now = Instant::now();
        let mut all: Vec<TunnelStatus> = self
            .tunnels
            .iter()
            .map(|(&id, e)| tunnel_status(id, e.peer, &e.tunnel, now - e.since))
            .collect();
        all.sort_by(|a, b| (&a.peer, a.local_id).cmp(&(&b.peer, b.local_id)));
        all
    }
}

/// One tunnel for `status`.
pub fn tunnel_status(id: u16, peer: SocketAddrV4, t: &Tunnel, age: Duration) -> TunnelStatus {
    let c = t.counters();
    let r = t.reliable_counters();
    TunnelStatus {
        peer: peer.to_string(),
        host_name: t.peer_host_name().to_string(),
        local_id: id,
        peer_id: t.peer_id(),
        state: t.state().to_string(),
        sessions: t.sessions().count(),
        age_secs: age.as_secs(),
        control_rx: c.control_received,
        control_tx: c.messages_sent,
        retransmitted: r.retransmitted,
        data_rx: c.data_received,
        data_tx: c.data_sent,
        data_dropped: c.data_dropped,
    }
}

/// The port's UDP port when the config names none.
pub const DEFAULT_PORT: u16 = UDP_PORT;
