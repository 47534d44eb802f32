//! The LAC of a `mode = "l2tp"` link (what xl2tpd's `[lac]` does): one
//! tunnel to the LNS on UDP 1701, one incoming call (ICRQ, ICRP, ICCN) on
//! it, PPP in its data messages, and the link's own tun.
//!
//! The UDP socket is bound to port 1701 as xl2tpd's is (an LNS or a
//! firewall may expect it; a LAC behind NAT is told apart by the LNS all
//! the same), falling back to any port with a warning when 1701 is taken
//! on this host, and connected to the LNS so that only its datagrams
//! arrive. PPP starts once the session is established: LCP,
//! authentication (MS-CHAPv2 or CHAP as the LNS asks), IPCP, whose
//! addresses, routes and hooks go through the session's netconf as for
//! any site link. The LNS's own address keeps its old next hop
//! ([`crate::config::LinkSettings::outer_peer`] defaults to it), so that
//! with `default_route` the tunnel does not carry its own UDP.
//!
//! Endings, each with its reason; the daemon's link driver redials after
//! each (`persist`, `redial_timeout`, `max_redials`):
//! - the LNS is gone: our control messages are not acknowledged after
//!   every retransmission (RFC 2661 section 5.8), or our HELLO is not
//!   (section 5.5), or PPP's echoes go unanswered;
//! - the LNS ends the session (CDN) or the tunnel (StopCCN);
//! - PPP goes down (the peer's Terminate, authentication): the session is
//!   disconnected (CDN) and the tunnel stopped (StopCCN);
//! - a hangup or the daemon stopping closes PPP first
//!   (Terminate-Request), then the session and the tunnel.
//!
//! The data path batches: datagrams are taken with `recvmmsg` and sent
//! with `sendmmsg` ([`UdpBatchSocket`]), up to [`TUN_BATCH`] tun packets
//! are framed per wake-up, and the tun is used in offload mode as the PPTP
//! client does (super-packets cut to the LNS's MRU, segments from it
//! coalesced into one write).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};
use tsunagi_crypto::OsRandom;
use tsunagi_host::offload::{Received as TunReceived, MAX_OFFLOAD_PACKET};
use tsunagi_host::udp::{RecvBatch, SendBatch, UdpBatchSocket};
use tsunagi_l2tp::tunnel::Input;
use tsunagi_l2tp::{
    CallParams, CdnResult, ErrorCode, Role, StopCcnResult, Tunnel, TunnelEvent, TunnelState,
    DATA_HEADROOM, UDP_PORT,
};
use tsunagi_ppp::link::{Event, Link, Phase};

use super::{tunnel_config, UDP_RCVBUF};
use crate::control::Response;
use crate::ipsec::bridge::Lower;
use crate::netconf::{SessionNet, SessionNetconf};
use crate::session::{random_seed, EndReason, SessionEnd, SessionInfo};
use crate::transport::site::{client_command, create_tun, Asked};
use crate::transport::stream::SessionCtx;
use crate::transport::timers::sleep_until;
use crate::transport::tun_path::{read_failed, TunPath, TUN_BATCH};

/// How long the tunnel and the session may take to come up (the engine
/// gives up on an unanswered SCCRQ by itself after its retransmissions,
/// about 31 s).
pub const CALL_SETUP_TIMEOUT: Duration = Duration::from_secs(40);
/// How long a Terminate-Request exchange may take on hangup or shutdown.
pub const CLOSE_WAIT: Duration = Duration::from_secs(3);
/// How long the CDN and StopCCN may wait for their acknowledgement once
/// PPP is down.
pub const CLEAR_WAIT: Duration = Duration::from_secs(2);
/// ICMP port unreachable answers to our SCCRQ (and its retransmissions)
/// after which the LNS is taken as not running (about 7 s with RFC 2661's
/// 1, 2, 4 s backoff, rather than the 31 s of the full cycle).
pub const UNREACHABLE_LIMIT: u32 = 3;

/// How long a dial waits for the IPsec SA under L2TP/IPsec (Main and
/// Quick Mode, with a few of IKE's retransmissions).
pub const IPSEC_WAIT: Duration = Duration::from_secs(30);

/// Runs one session to `lns`: the tunnel, the call, PPP until the link is
/// down; never panics on what the LNS sends. With `lower` (L2TP/IPsec)
/// the conn is asked up first, L2TP starts once it has an IPsec SA, from
/// a socket bound to its tun (nothing of L2TP ever leaves in the clear),
/// and the session ends when the conn has no SA left.
pub async fn run_session(
    ctx: SessionCtx<'_>,
    lns: Ipv4Addr,
    mut lower: Option<&mut Lower>,
) -> SessionEnd {
    let name = ctx.settings.name.clone();
    let fail = |why: String| {
        warn!("{name}: {why}");
        SessionEnd::new(EndReason::SetupFailed(why))
    };
    if let Some(l) = lower.as_mut() {
        l.up();
        if !l.wait_sa(IPSEC_WAIT).await {
            return fail(format!(
                "IPsec: no SA with {lns} within {}s (ipsec {})",
                IPSEC_WAIT.as_secs(),
                l.conn
            ));
        }
        info!(
            "{name}: IPsec SA with {lns} up (ipsec {}): L2TP through it",
            l.conn
        );
    }
    let tun = match create_tun(ctx.settings) {
        Ok(t) => t,
        Err(e) => return fail(format!("cannot create tun {}: {e}", ctx.settings.tun)),
    };
    let peer = SocketAddrV4::new(lns, UDP_PORT);
    let bound = match &lower {
        // The conn's selectors say port 1701: no other will do.
        Some(l) => UdpBatchSocket::bind_on(SocketAddrV4::new(l.left, UDP_PORT), Some(&l.tun))
            .map_err(|e| {
                format!(
                    "L2TP/IPsec: cannot bind UDP {}:{UDP_PORT} on {}: {e}",
                    l.left, l.tun
                )
            }),
        None => UdpBatchSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, UDP_PORT))
            .map_err(|e| e.to_string()),
    };
    let socket = match bound {
        Ok(s) => s,
        Err(e) if lower.is_some() => return fail(e),
        Err(e) => {
            warn!("{name}: L2TP: cannot use UDP port {UDP_PORT} ({e}); from another port");
            match UdpBatchSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)) {
                Ok(s) => s,
                Err(e) => return fail(format!("L2TP: cannot open a UDP socket: {e}")),
            }
        }
    };
    if let Err(e) = socket.connect(peer) {
        return fail(format!("L2TP: {e}"));
    }
    if let Err(e) = socket.set_recv_buffer_size_force(UDP_RCVBUF) {
        warn!("{name}: L2TP: {e}");
    }
    let local_id = loop {
        // Our Tunnel ID guards the tunnel against blind spoofing.
        let id = random_seed() as u16;
        if id != 0 {
            break id;
        }
    };
    let now = Instant::now();
    let tunnel = Tunnel::connect(
        tunnel_config(Role::Lac, &ctx.settings.l2tp),
        local_id,
        now,
        OsRandom::handle(),
    );
    info!(
        "{name}: L2TP: tunnel {local_id} {} -> {peer}: SCCRQ",
        socket
            .local_addr()
            .map_or_else(|_| "?".to_string(), |a| a.to_string())
    );
    let id = ctx.registry.open_session(&name);
    let protocol = if lower.is_some() {
        "l2tp/ipsec"
    } else {
        "l2tp"
    };
    let mut info = SessionInfo::new(id, &name, name.clone(), ctx.source.clone(), tun.name())
        .audited(ctx.registry.audit(), protocol);
    info.from = Some(peer.to_string());
    let netconf = ctx.netconf.open(SessionNet::site(
        ctx.settings,
        tun.name(),
        "l2tp",
        Some(lns),
    ));
    // Its packets for `tsunagi capture`.
    let tap = ctx.registry.tap(&name).unwrap_or_default();
    let mut client = Client {
        name: name.clone(),
        ctx,
        peer,
        socket,
        tun_path: TunPath::new(tun, tap),
        tunnel,
        session: None,
        info,
        netconf,
        link: None,
        send: SendBatch::default(),
        out: Vec::with_capacity(1500),
        udp_errors: 0,
        lower,
    };
    let end = client.run().await;
    let Client {
        ctx,
        netconf,
        tun_path,
        info,
        link,
        ..
    } = client;
    netconf.finish().await;
    drop(tun_path);
    let counters = link
        .as_ref()
        .map(|l| crate::control::Counters::from(l.stats()));
    ctx.registry.end_session(&info, &end.reason, counters);
    end
}

struct Client<'a> {
    name: String,
    ctx: SessionCtx<'a>,
    peer: SocketAddrV4,
    socket: UdpBatchSocket,
    tun_path: TunPath,
    tunnel: Tunnel,
    /// Our Session ID once the call is placed.
    session: Option<u16>,
    info: SessionInfo,
    netconf: SessionNetconf,
    /// PPP, from the moment the session is established.
    link: Option<Link>,
    send: SendBatch,
    /// One control datagram being written.
    out: Vec<u8>,
    /// Receive errors (ICMP port unreachable: nobody at the LNS's port).
    udp_errors: u64,
    /// L2TP/IPsec: the conn under the tunnel.
    lower: Option<&'a mut Lower>,
}

/// Resolves when the conn under L2TP/IPsec has no SA left; never without
/// one.
async fn ipsec_lost(lower: &mut Option<&mut Lower>) {
    match lower {
        Some(l) => l.lost().await,
        None => std::future::pending().await,
    }
}

impl Client<'_> {
    async fn run(&mut self) -> SessionEnd {
        let name = self.name.clone();
        let setup_until = Instant::now() + CALL_SETUP_TIMEOUT;
        let mut tbuf = vec![0u8; MAX_OFFLOAD_PACKET];
        let mut recv = RecvBatch::default();
        // Why the session ends, once known: then the session is
        // disconnected and the tunnel stopped, until `until`.
        let mut ending: Option<(EndReason, Instant)> = None;
        // Why the layer under PPP went away, for the engine's LowerDown.
        let mut lower: Option<EndReason> = None;
        // A Terminate-Request exchange we started: (hangup, until).
        let mut closing: Option<(bool, Instant)> = None;
        let mut shutdown_seen = *self.ctx.shutdown.borrow();
        if shutdown_seen {
            return SessionEnd::new(EndReason::Shutdown);
        }
        // ICMP port unreachable answers to our SCCRQs so far.
        let mut unreachable_count = 0u32;
        // Taken out: the loop's other arms borrow the client.
        let mut ipsec = self.lower.take();
        loop {
            let now = Instant::now();
            // The tunnel's events first (a session established starts
            // PPP), then PPP's.
            while let Some(event) = self.tunnel.poll_event() {
                self.tunnel_event(now, event, &mut ending, &mut lower, closing);
            }
            if let Some(link) = self.link.as_mut() {
                while let Some(event) = link.poll_auth_event() {
                    self.info.auth_event(event, self.ctx.guard);
                }
            }
            while let Some(event) = self.link.as_mut().and_then(Link::poll_event) {
                if let Event::Down(reason) = event {
                    let end = match closing {
                        Some((true, _)) => EndReason::Hangup,
                        Some((false, _)) => EndReason::Shutdown,
                        None => self.info.end_for(reason, lower.clone()),
                    };
                    info!("{name}: link down: {end}");
                    if ending.is_none() {
                        self.clear(now);
                        ending = Some((end, now + CLEAR_WAIT));
                    }
                } else {
                    self.tun_path.link_event(
                        event,
                        self.link.as_ref(),
                        self.ctx.settings,
                        &mut self.info,
                        &self.netconf,
                    );
                }
            }
            self.transmit();
            if !self.send.is_empty() {
                if let Err(e) = self.socket.flush(&mut self.send) {
                    debug!("{name}: L2TP: {e}");
                }
            }
            if let Some((end, until)) = &ending {
                // Done once the tunnel is gone, or our StopCCN was
                // acknowledged, or waiting longer is no use.
                let acked = self.tunnel.reliable().in_flight() == 0;
                let over = self.tunnel.is_closed()
                    || (self.tunnel.state() == TunnelState::Closing && acked);
                if over || now >= *until {
                    return SessionEnd {
                        reason: end.clone(),
                        up_for: self.info.up_for(),
                    };
                }
            }
            if self.link.is_none() && ending.is_none() && now >= setup_until {
                let why = format!(
                    "L2TP: no session within {}s (tunnel {})",
                    CALL_SETUP_TIMEOUT.as_secs(),
                    self.tunnel.state()
                );
                warn!("{name}: {why}");
                self.clear(now);
                ending = Some((EndReason::TransportLost(why), now + CLEAR_WAIT));
                continue;
            }
            let wake = [
                self.link.as_ref().and_then(Link::poll_timeout),
                self.tunnel.poll_timeout(),
                ending.as_ref().map(|(_, t)| *t),
                closing.map(|(_, t)| t),
                self.link.is_none().then_some(setup_until),
            ]
            .into_iter()
            .flatten()
            .min();
            let sleep = sleep_until(wake);
            let lcp_up = self
                .link
                .as_ref()
                .is_some_and(|l| l.phase() == Phase::Network);
            tokio::select! {
                r = self.socket.recv_batch(&mut recv) => match r {
                    Ok(_) => {
                        self.udp_input(&recv);
                        self.tun_path.flush(&mut self.info.tun_errors);
                    }
                    Err(e) => {
                        // Port unreachable: nobody listens at the LNS's
                        // port. While the tunnel is being set up, a few
                        // in a row (one per SCCRQ sent) end the attempt
                        // rather than the full retransmission cycle; on an
                        // established tunnel the retransmissions and the
                        // keepalive decide.
                        self.udp_errors += 1;
                        debug!("{name}: L2TP: receive: {e}");
                        let refused = e.kind() == std::io::ErrorKind::ConnectionRefused;
                        if refused && self.tunnel.state() == TunnelState::WaitCtlReply {
                            unreachable_count += 1;
                            if unreachable_count >= UNREACHABLE_LIMIT && ending.is_none() {
                                let why = format!(
                                    "L2TP: nobody answers at {} (port unreachable, {unreachable_count} times)",
                                    self.peer
                                );
                                warn!("{name}: {why}");
                                ending = Some((EndReason::TransportLost(why), Instant::now()));
                            }
                        }
                    }
                },
                r = self.tun_path.tun().recv_gso(&mut tbuf), if lcp_up && ending.is_none() => match r {
                    Ok(got) => {
                        self.tun_packet(got, &tbuf);
                        for _ in 1..TUN_BATCH {
                            match self.tun_path.tun().try_recv_gso(&mut tbuf) {
                                Ok(got) => self.tun_packet(got, &tbuf),
                                Err(_) => break,
                            }
                        }
                    }
                    Err(e) => {
                        if let Some(why) = read_failed(&name, &e, &mut self.info.tun_errors) {
                            if let Some(link) = self.link.as_mut() {
                                link.close(Instant::now(), "tun device failed");
                            }
                            lower.get_or_insert(why);
                        }
                    }
                },
                () = sleep => {
                    let now = Instant::now();
                    if let Some(link) = self.link.as_mut() {
                        if link.poll_timeout().is_some_and(|t| t <= now) {
                            link.handle_timeout(now);
                        }
                    }
                    if self.tunnel.poll_timeout().is_some_and(|t| t <= now) {
                        self.tunnel.handle_timeout(now);
                    }
                    if let (Some((hangup, until)), None) = (closing, &ending) {
                        if now >= until {
                            info!("{name}: no Terminate-Ack within {}s, closing anyway", CLOSE_WAIT.as_secs());
                            let end = if hangup { EndReason::Hangup } else { EndReason::Shutdown };
                            self.clear(now);
                            ending = Some((end, now + CLEAR_WAIT));
                        }
                    }
                }
                cmd = self.ctx.commands.recv() => {
                    let now = Instant::now();
                    match client_command(&name, self.info.id, cmd) {
                        Asked::Snapshot(reply) => {
                            let _ = reply.send(self.snapshot(now).into_iter().collect());
                        }
                        Asked::Hangup(reply, message) => {
                            self.close(now, true, &mut closing, &mut ending);
                            let _ = reply.send(Response::Done { message });
                        }
                        Asked::Nothing => {}
                    }
                }
                () = ipsec_lost(&mut ipsec), if ipsec.is_some() && ending.is_none() => {
                    // Nothing reaches the LNS any more: the stack redials
                    // as one (the link takes the conn down, then up).
                    let now = Instant::now();
                    let why = format!(
                        "IPsec: no SA left (ipsec {})",
                        ipsec.as_ref().map_or("", |l| l.conn.as_str())
                    );
                    warn!("{name}: {why}");
                    lower.get_or_insert(EndReason::TransportLost(why));
                    if let Some(link) = self.link.as_mut() {
                        link.lower_down(now);
                    }
                    ending = Some((lower.clone().unwrap_or(EndReason::TransportLost(String::new())), now));
                    ipsec = None;
                }
                _ = self.ctx.shutdown.changed(), if !shutdown_seen => {
                    shutdown_seen = true;
                    if *self.ctx.shutdown.borrow() {
                        self.close(Instant::now(), false, &mut closing, &mut ending);
                    }
                }
            }
        }
    }

    /// One event of the tunnel engine.
    fn tunnel_event(
        &mut self,
        now: Instant,
        event: TunnelEvent,
        ending: &mut Option<(EndReason, Instant)>,
        lower: &mut Option<EndReason>,
        closing: Option<(bool, Instant)>,
    ) {
        let name = &self.name;
        match event {
            TunnelEvent::Up {
                peer_host_name,
                peer_vendor_name,
                peer_tunnel_id,
                authenticated,
                ..
            } => {
                info!(
                    "{name}: L2TP: tunnel up: LNS {peer_host_name:?} vendor {peer_vendor_name:?}, its tunnel {peer_tunnel_id}{}; calling",
                    if authenticated { ", authenticated" } else { "" }
                );
                if ending.is_some() {
                    return;
                }
                match self.tunnel.open_session(now, &CallParams::default()) {
                    Ok(id) => self.session = Some(id),
                    Err(e) => {
                        let why = format!("L2TP: cannot place the call: {e}");
                        warn!("{name}: {why}");
                        self.tunnel.stop(now, StopCcnResult::GeneralError, None);
                        *ending = Some((EndReason::SetupFailed(why), now + CLEAR_WAIT));
                    }
                }
            }
            TunnelEvent::Down { why } => {
                let why = format!("L2TP: tunnel down: {why}");
                info!("{name}: {why}");
                lower.get_or_insert(EndReason::TransportLost(why.clone()));
                if let Some(link) = self.link.as_mut() {
                    link.lower_down(now);
                }
                // Nothing more can be said to the LNS.
                let reason = match (&*ending, closing) {
                    (Some((r, _)), _) => r.clone(),
                    (None, Some((true, _))) => EndReason::Hangup,
                    (None, Some((false, _))) => EndReason::Shutdown,
                    (None, None) => lower.clone().unwrap_or(EndReason::TransportLost(why)),
                };
                *ending = Some((reason, now));
            }
            TunnelEvent::SessionUp {
                session_id,
                peer_session_id,
                sequencing,
                ..
            } if Some(session_id) == self.session && self.link.is_none() && ending.is_none() => {
                info!(
                    "{name}: L2TP: session {session_id} up, LNS session {peer_session_id}{}",
                    if sequencing { ", sequenced" } else { "" }
                );
                let config = self.ctx.credentials.link_config(self.ctx.settings);
                let mut link = Link::new(config, random_seed(), OsRandom::handle());
                link.start(now);
                self.link = Some(link);
            }
            TunnelEvent::SessionDown {
                session_id, why, ..
            } if Some(session_id) == self.session => {
                let why = format!("L2TP: session {session_id}: {why}");
                info!("{name}: {why}");
                lower.get_or_insert(EndReason::TransportLost(why.clone()));
                self.session = None;
                match self.link.as_mut() {
                    Some(link) => link.lower_down(now),
                    None => {
                        ending.get_or_insert((EndReason::TransportLost(why), now + CLEAR_WAIT));
                    }
                }
                self.tunnel.stop(now, StopCcnResult::GeneralRequest, None);
            }
            TunnelEvent::SessionRequested { session_id, .. } => {
                // An outgoing call from the LNS: we have no line to dial.
                let _ = self.tunnel.refuse_session(
                    now,
                    session_id,
                    CdnResult::NoFacilitiesPermanent,
                    Some(ErrorCode::NoError),
                );
            }
            other => debug!("{name}: L2TP: {other:?}"),
        }
    }

    /// PPP is done: disconnect the session (CDN) and stop the tunnel
    /// (StopCCN).
    fn clear(&mut self, now: Instant) {
        if let Some(id) = self.session.take() {
            let _ = self
                .tunnel
                .close_session(now, id, CdnResult::Administrative, None);
        }
        self.tunnel.stop(now, StopCcnResult::GeneralRequest, None);
    }

    /// Hangup (`hangup`) or shutdown: PPP's Terminate-Request first when
    /// PPP runs, else straight to clearing the session and the tunnel.
    fn close(
        &mut self,
        now: Instant,
        hangup: bool,
        closing: &mut Option<(bool, Instant)>,
        ending: &mut Option<(EndReason, Instant)>,
    ) {
        if ending.is_some() || closing.is_some() {
            return;
        }
        let why = if hangup {
            "Administrative hangup"
        } else {
            "daemon shutting down"
        };
        match self.link.as_mut() {
            Some(link) => {
                link.close(now, why);
                *closing = Some((hangup, now + CLOSE_WAIT));
            }
            None => {
                self.clear(now);
                let end = if hangup {
                    EndReason::Hangup
                } else {
                    EndReason::Shutdown
                };
                *ending = Some((end, now + CLEAR_WAIT));
            }
        }
    }

    /// What `status` shows while PPP runs.
    fn snapshot(&mut self, now: Instant) -> Option<crate::control::SessionStatus> {
        let link = self.link.as_ref()?;
        let t = &self.tunnel;
        let mut text = format!(
            "l2tp to {}: tunnel {}/{} {}",
            self.peer,
            t.local_id(),
            t.peer_id(),
            t.state()
        );
        if let Some(id) = self.session {
            text.push_str(&format!(
                " session {id}/{}",
                t.peer_session_id(id).unwrap_or(0)
            ));
        }
        let c = t.counters();
        text.push_str(&format!(
            " control rx {} tx {} retransmitted {} data rx {} tx {} dropped {}",
            c.control_received,
            c.messages_sent,
            t.reliable_counters().retransmitted,
            c.data_received,
            c.data_sent,
            c.data_dropped
        ));
        if self.udp_errors > 0 {
            text.push_str(&format!(" udp errors {}", self.udp_errors));
        }
        self.info.tunnel = Some(text);
        Some(self.info.status(link, now))
    }

    /// What the tunnel and PPP queued, into the send batch: control
    /// first, so that the ICCN that establishes the session reaches the
    /// LNS before PPP's first Configure-Request in it.
    fn transmit(&mut self) {
        while self.tunnel.poll_transmit(&mut self.out) {
            self.send.slot_to(self.peer).extend_from_slice(&self.out);
        }
        if let (Some(link), Some(id)) = (self.link.as_mut(), self.session) {
            let (send, tunnel, peer) = (&mut self.send, &mut self.tunnel, self.peer);
            while link.poll_transmit_with(|header, info, _| {
                push_frame(send, tunnel, peer, id, header, info);
            }) {}
        }
    }

    /// Datagrams from the LNS: control to the tunnel, our session's
    /// frames to PPP and its packets to the tun.
    fn udp_input(&mut self, batch: &RecvBatch) {
        let now = Instant::now();
        for i in 0..batch.len() {
            let Some((from, datagram)) = batch.get_from(i) else {
                continue;
            };
            if from != self.peer {
                continue;
            }
            match self.tunnel.handle_input(now, datagram) {
                Input::Data {
                    session_id,
                    payload,
                } if Some(session_id) == self.session => {
                    let Some(link) = self.link.as_mut() else {
                        continue;
                    };
                    let (tun_path, tun_errors) = (&mut self.tun_path, &mut self.info.tun_errors);
                    link.handle_frame(now, &datagram[payload], &mut |_version, packet| {
                        tun_path.deliver(packet, tun_errors);
                    });
                }
                Input::Control | Input::Data { .. } | Input::Dropped(_) => {}
            }
        }
    }

    /// One packet from the tun (at the start of `tbuf`) into the session;
    /// a TCP super-packet is cut into segments that fit the LNS's MRU.
    fn tun_packet(&mut self, got: TunReceived, tbuf: &[u8]) {
        let (Some(link), Some(id)) = (self.link.as_mut(), self.session) else {
            return;
        };
        let (send, tunnel, peer) = (&mut self.send, &mut self.tunnel, self.peer);
        self.tun_path
            .cut(got, tbuf, &mut self.info.tun_errors, |version, segment| {
                link.encapsulate_with(version, segment, |header, info| {
                    push_frame(send, tunnel, peer, id, header, info);
                });
            });
        if self.send.is_full() {
            if let Err(e) = self.socket.flush(&mut self.send) {
                debug!("{}: L2TP: {e}", self.name);
            }
        }
    }
}

/// One PPP frame (`header` and `info`, not yet joined) of session
/// `session` into the send batch as an L2TP data message to `peer`: the
/// L2TP header is written in the headroom before it.
fn push_frame(
    send: &mut SendBatch,
    tunnel: &mut Tunnel,
    peer: SocketAddrV4,
    session: u16,
    header: &[u8],
    info: &[u8],
) {
    let slot = send.slot_to(peer);
    slot.resize(DATA_HEADROOM, 0);
    slot.extend_from_slice(header);
    slot.extend_from_slice(info);
    let end = slot.len();
    match tunnel.encapsulate(session, slot, DATA_HEADROOM..end) {
        Ok(range) => {
            // The header is shorter than the headroom without Ns (and
            // without Length): the datagram starts where it does.
            slot.truncate(range.end);
            slot.drain(..range.start);
        }
        Err(_) => send.pop(),
    }
}
