//! The PPTP client of a `mode = "pptp"` link (what pptp-linux does): one
//! control connection to the server's TCP port 1723, one outgoing call on
//! it, PPP in enhanced GRE (RFC 2637), and the link's own tun.
//!
//! In RFC 2637's terms the client is the PNS: it sends
//! Start-Control-Connection-Request, then Outgoing-Call-Request, and the
//! server (the PAC; pptpd) answers. Only once the call is connected does
//! PPP start: LCP, authentication (MS-CHAPv2 by default), CCP (MPPE-128 by
//! default) and IPCP, whose addresses, routes and hooks go through the
//! session's netconf as for any site link. The server's own address keeps
//! its old next hop ([`crate::config::LinkSettings::outer_peer`] defaults
//! to it): with `default_route` the control connection and the GRE would
//! otherwise enter the tunnel they carry (seed 004's split-tunnel lesson).
//!
//! Endings, each with its reason: PPP goes down (the peer's Terminate,
//! echo timeout, authentication) and the call is cleared
//! (Call-Clear-Request, then Stop-Control-Connection-Request); the server
//! clears the call or stops the control connection, or TCP breaks, and
//! PPP is told its lower layer went down; a hangup or the daemon stopping
//! closes PPP first (Terminate-Request), then the call.
//!
//! The data path batches: GRE datagrams are taken with `recvmmsg` and sent
//! with `sendmmsg` ([`GreSocket`]), and up to [`TUN_BATCH`] tun packets are
//! framed per wake-up.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tracing::{debug, info, warn};
use tsunagi_crypto::OsRandom;
use tsunagi_host::gre::{GreSocket, RecvBatch, SendBatch};
use tsunagi_host::offload::{Received as TunReceived, MAX_OFFLOAD_PACKET};
use tsunagi_ppp::link::{Event, Link, Phase};
use tsunagi_pptp::connection::{
    ClearReason, Connection, ConnectionConfig, ConnectionEvent, ControlState, Role,
};
use tsunagi_pptp::control::StopReason;
use tsunagi_pptp::gre::GreHeader;
use tsunagi_pptp::window::{CallWindow, Received};

use super::gre_path::{describe, push_ack, push_frame, GRE_RCVBUF};
use super::{host_name, PPTP_PORT};
use crate::control::Response;
use crate::netconf::{SessionNet, SessionNetconf};
use crate::session::{random_seed, EndReason, SessionEnd, SessionInfo};
use crate::transport::site::{client_command, create_tun, Asked};
use crate::transport::stream::SessionCtx;
use crate::transport::timers::sleep_until;
use crate::transport::tun_path::{read_failed, TunPath, TUN_BATCH};

/// How long the TCP connect to the server may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the control connection and the call may take to come up.
pub const CALL_SETUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a Terminate-Request exchange may take on hangup or shutdown.
pub const CLOSE_WAIT: Duration = Duration::from_secs(3);
/// How long clearing the call and stopping the control connection may take
/// once PPP is down.
pub const CLEAR_WAIT: Duration = Duration::from_secs(2);
/// Octets read from the control connection at a time.
const CONTROL_READ: usize = 4096;
/// GRE datagrams for our call kept while its Outgoing-Call-Reply is still
/// on its way: the server starts LCP as soon as it accepts the call, and
/// its first Configure-Request may overtake the reply on the other path.
const EARLY_FRAMES: usize = 8;

/// Runs one session to `server`: connect, place the call, run PPP until
/// the link is down; never panics on what the server sends.
pub async fn run_session(ctx: SessionCtx<'_>, server: Ipv4Addr) -> SessionEnd {
    let name = ctx.settings.name.clone();
    let fail = |why: String| {
        warn!("{name}: {why}");
        SessionEnd::new(EndReason::SetupFailed(why))
    };
    // In offload mode, super-packets are cut here to the server's MRU and
    // segments from the server coalesced into one GSO write.
    let tun = match create_tun(ctx.settings) {
        Ok(t) => t,
        Err(e) => return fail(format!("cannot create tun {}: {e}", ctx.settings.tun)),
    };
    // The raw socket needs CAP_NET_RAW; connected, it only sees the
    // server's GRE.
    let gre = match GreSocket::open().and_then(|g| g.connect(server).map(|()| g)) {
        Ok(g) => g,
        Err(e) => return fail(format!("cannot open a GRE socket to {server}: {e}")),
    };
    if let Err(e) = gre.set_recv_buffer_size_force(GRE_RCVBUF) {
        warn!("{name}: {e}");
    }
    let peer = SocketAddr::V4(SocketAddrV4::new(server, PPTP_PORT));
    info!("{name}: PPTP: connecting to {peer}");
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(peer)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            let why = format!("PPTP: cannot connect to {peer}: {e}");
            warn!("{name}: {why}");
            return SessionEnd::new(EndReason::TransportLost(why));
        }
        Err(_) => {
            let why = format!(
                "PPTP: no answer from {peer} within {}s",
                CONNECT_TIMEOUT.as_secs()
            );
            warn!("{name}: {why}");
            return SessionEnd::new(EndReason::TransportLost(why));
        }
    };
    let _ = tcp.set_nodelay(true);
    info!(
        "{name}: PPTP: control connection {} -> {peer}",
        tcp.local_addr()
            .map_or_else(|_| "?".to_string(), |a| a.to_string())
    );
    let id = ctx.registry.open_session(&name);
    let mut info = SessionInfo::new(id, &name, name.clone(), ctx.source.clone(), tun.name())
        .audited(ctx.registry.audit(), "pptp");
    info.from = Some(peer.to_string());
    let netconf = ctx.netconf.open(SessionNet::site(
        ctx.settings,
        tun.name(),
        "pptp",
        Some(server),
    ));
    // Its packets for `tsunagi capture`.
    let tap = ctx.registry.tap(&name).unwrap_or_default();
    let mut client = Client {
        name: name.clone(),
        ctx,
        server,
        tun_path: TunPath::new(tun, tap),
        gre,
        info,
        netconf,
        link: None,
        call: None,
        send: SendBatch::default(),
        gre_errors: 0,
        call_id: loop {
            // Call ids are the GRE Key: not guessable, so that a blind
            // sender must also guess it (and never 0, which some peers
            // take as "none").
            let id = random_seed() as u16;
            if id != 0 {
                break id;
            }
        },
        early: Vec::new(),
    };
    let (reader, writer) = tcp.into_split();
    let end = client.run(reader, writer).await;
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

/// The call once the server connected it.
struct Call {
    /// Our Call ID (the GRE Key of what the server sends us).
    id: u16,
    window: CallWindow,
}

struct Client<'a> {
    name: String,
    ctx: SessionCtx<'a>,
    server: Ipv4Addr,
    tun_path: TunPath,
    gre: GreSocket,
    info: SessionInfo,
    netconf: SessionNetconf,
    /// PPP, from the moment the call is connected.
    link: Option<Link>,
    call: Option<Call>,
    send: SendBatch,
    /// GRE datagrams from the server that were not for our call or did not
    /// parse.
    gre_errors: u64,
    /// Our Call ID (chosen before the call is placed).
    call_id: u16,
    /// Datagrams for our call that came before the call was connected.
    early: Vec<Vec<u8>>,
}

impl Client<'_> {
    async fn run(&mut self, mut reader: OwnedReadHalf, mut writer: OwnedWriteHalf) -> SessionEnd {
        let name = self.name.clone();
        let now = Instant::now();
        let mut conn = Connection::new(
            ConnectionConfig {
                host_name: host_name(),
                ..ConnectionConfig::new(Role::Pns)
            },
            now,
        );
        let recv_window = conn.config().recv_window;
        let call_id = self.call_id;
        let setup_until = now + CALL_SETUP_TIMEOUT;
        let mut out: Vec<u8> = Vec::with_capacity(1024);
        let mut rbuf = vec![0u8; CONTROL_READ];
        let mut tbuf = vec![0u8; MAX_OFFLOAD_PACKET];
        let mut recv = RecvBatch::default();
        // Why the session ends, once known: then the call is cleared and
        // the control connection stopped, until `until`.
        let mut ending: Option<(EndReason, Instant)> = None;
        // Why the layer under PPP went away, for the engine's LowerDown.
        let mut lower: Option<EndReason> = None;
        // A Terminate-Request exchange we started: (hangup, until).
        let mut closing: Option<(bool, Instant)> = None;
        let mut tcp_open = true;
        let mut shutdown_seen = *self.ctx.shutdown.borrow();
        if shutdown_seen {
            ending = Some((EndReason::Shutdown, now));
        }
        loop {
            let now = Instant::now();
            // What the engines have to say, in order: control first (a
            // call connected starts PPP), then PPP.
            while let Some(event) = conn.poll_event() {
                match event {
                    ConnectionEvent::Established {
                        peer_host_name,
                        peer_vendor,
                        ..
                    } => {
                        info!(
                            "{name}: PPTP: control connection up: server {peer_host_name:?} vendor {peer_vendor:?}; calling (call id {call_id})"
                        );
                        let serial = random_seed() as u16;
                        if let Err(e) = conn.place_call(now, call_id, serial) {
                            let why = format!("PPTP: cannot place the call: {e}");
                            warn!("{name}: {why}");
                            ending.get_or_insert((EndReason::TransportLost(why), now + CLEAR_WAIT));
                            conn.stop(now, StopReason::None);
                        }
                    }
                    ConnectionEvent::CallConnected {
                        call_id: id,
                        peer_call_id,
                        peer_recv_window,
                        ..
                    } if id == call_id && self.link.is_none() && ending.is_none() => {
                        info!(
                            "{name}: PPTP: call {id} connected, server call {peer_call_id}, its window {peer_recv_window}"
                        );
                        self.call = Some(Call {
                            id,
                            window: CallWindow::new(peer_call_id, recv_window, peer_recv_window),
                        });
                        let config = self.ctx.credentials.link_config(self.ctx.settings);
                        let mut link = Link::new(config, random_seed(), OsRandom::handle());
                        link.start(now);
                        self.link = Some(link);
                        for datagram in std::mem::take(&mut self.early) {
                            self.gre_datagram(now, self.server, &datagram);
                        }
                    }
                    ConnectionEvent::CallRefused {
                        call_id: id,
                        result,
                        error,
                        cause_code,
                    } if id == call_id => {
                        let why = format!(
                            "PPTP: the server refused the call: result {result}, error {error}, cause {cause_code}"
                        );
                        warn!("{name}: {why}");
                        ending.get_or_insert((EndReason::TransportLost(why), now + CLEAR_WAIT));
                        conn.stop(now, StopReason::None);
                    }
                    ConnectionEvent::CallCleared {
                        call_id: id, why, ..
                    } if id == call_id => {
                        let why = format!("PPTP: call {id}: {why}");
                        info!("{name}: {why}");
                        lower.get_or_insert(EndReason::TransportLost(why.clone()));
                        match self.link.as_mut() {
                            Some(link) => link.lower_down(now),
                            None => {
                                ending.get_or_insert((
                                    EndReason::TransportLost(why),
                                    now + CLEAR_WAIT,
                                ));
                            }
                        }
                        conn.stop(now, StopReason::None);
                    }
                    ConnectionEvent::Closed { why } => {
                        let why = format!("PPTP: control connection closed: {why}");
                        info!("{name}: {why}");
                        tcp_open = false;
                        lower.get_or_insert(EndReason::TransportLost(why.clone()));
                        if let Some(link) = self.link.as_mut() {
                            link.lower_down(now);
                        }
                        // Nothing more can be said to the server.
                        let reason = match (&ending, &closing) {
                            (Some((r, _)), _) => r.clone(),
                            (None, Some((true, _))) => EndReason::Hangup,
                            (None, Some((false, _))) => EndReason::Shutdown,
                            (None, None) => lower.clone().unwrap_or(EndReason::TransportLost(why)),
                        };
                        ending = Some((reason, now));
                    }
                    ConnectionEvent::WanError { call_id, errors } => {
                        info!("{name}: PPTP: WAN-Error-Notify for call {call_id}: {errors:?}");
                    }
                    other => debug!("{name}: PPTP: {other:?}"),
                }
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
                        if tcp_open {
                            conn.clear_call(now, call_id, ClearReason::request());
                            conn.stop(now, StopReason::None);
                        }
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
            self.transmit(now);
            conn.poll_transmit(&mut out);
            if !self.send.is_empty() {
                if let Err(e) = self.gre.flush(&mut self.send) {
                    debug!("{name}: {e}");
                }
            }
            if let Some((end, until)) = &ending {
                if !tcp_open || now >= *until || conn.state() == ControlState::Closed {
                    let _ = writer.write_all(&out).await;
                    let _ = writer.shutdown().await;
                    return SessionEnd {
                        reason: end.clone(),
                        up_for: self.info.up_for(),
                    };
                }
            }
            if self.link.is_none() && ending.is_none() && now >= setup_until {
                let why = format!(
                    "PPTP: no call within {}s (control connection {})",
                    CALL_SETUP_TIMEOUT.as_secs(),
                    conn.state()
                );
                warn!("{name}: {why}");
                ending = Some((EndReason::TransportLost(why), now + CLEAR_WAIT));
                conn.stop(now, StopReason::None);
                continue;
            }
            let wake = [
                self.link.as_ref().and_then(Link::poll_timeout),
                conn.poll_timeout(),
                self.call.as_ref().and_then(|c| c.window.poll_timeout()),
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
                r = reader.read(&mut rbuf), if tcp_open => {
                    let now = Instant::now();
                    match r {
                        Ok(0) => conn.handle_eof(now),
                        Ok(n) => conn.handle_bytes(now, &rbuf[..n]),
                        Err(e) => {
                            debug!("{name}: PPTP: control read: {e}");
                            conn.handle_eof(now);
                        }
                    }
                }
                r = writer.write(&out), if tcp_open && !out.is_empty() => {
                    match r {
                        Ok(n) => { out.drain(..n); }
                        Err(e) => {
                            debug!("{name}: PPTP: control write: {e}");
                            out.clear();
                            conn.handle_eof(Instant::now());
                        }
                    }
                }
                r = self.gre.recv_batch(&mut recv) => match r {
                    Ok(_) => {
                        self.gre_input(&recv);
                        self.tun_path.flush(&mut self.info.tun_errors);
                    }
                    Err(e) => {
                        warn!("{name}: GRE read: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                r = self.tun_path.tun().recv_gso(&mut tbuf), if lcp_up && ending.is_none() => match r {
                    Ok(got) => {
                        let now = Instant::now();
                        self.tun_packet(now, got, &tbuf);
                        for _ in 1..TUN_BATCH {
                            match self.tun_path.tun().try_recv_gso(&mut tbuf) {
                                Ok(got) => self.tun_packet(now, got, &tbuf),
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
                    if conn.poll_timeout().is_some_and(|t| t <= now) {
                        conn.handle_timeout(now);
                    }
                    if let (Some((hangup, until)), None) = (closing, &ending) {
                        if now >= until {
                            info!("{name}: no Terminate-Ack within {}s, closing anyway", CLOSE_WAIT.as_secs());
                            let end = if hangup { EndReason::Hangup } else { EndReason::Shutdown };
                            if tcp_open {
                                conn.clear_call(now, call_id, ClearReason::request());
                                conn.stop(now, StopReason::None);
                            }
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
                            self.close(now, true, &mut closing, &mut ending, &mut conn, call_id);
                            let _ = reply.send(Response::Done { message });
                        }
                        Asked::Nothing => {}
                    }
                }
                _ = self.ctx.shutdown.changed(), if !shutdown_seen => {
                    shutdown_seen = true;
                    if *self.ctx.shutdown.borrow() {
                        self.close(Instant::now(), false, &mut closing, &mut ending, &mut conn, call_id);
                    }
                }
            }
        }
    }

    /// Hangup (`hangup`) or shutdown: PPP's Terminate-Request first when
    /// PPP runs, else straight to clearing the call.
    fn close(
        &mut self,
        now: Instant,
        hangup: bool,
        closing: &mut Option<(bool, Instant)>,
        ending: &mut Option<(EndReason, Instant)>,
        conn: &mut Connection,
        call_id: u16,
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
                conn.clear_call(now, call_id, ClearReason::request());
                conn.stop(now, StopReason::None);
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
        self.info.tunnel = self
            .call
            .as_ref()
            .map(|c| tunnel_text(c, self.server, self.gre_errors));
        Some(self.info.status(link, now))
    }

    /// The control frames PPP queued, and any acknowledgement owed.
    fn transmit(&mut self, now: Instant) {
        let (Some(link), Some(call)) = (self.link.as_mut(), self.call.as_mut()) else {
            return;
        };
        let server = self.server;
        let send = &mut self.send;
        while link.poll_transmit_with(|header, info, _| {
            push_frame(send, server, &mut call.window, now, header, info)
        }) {}
        if let Some(ack) = call.window.poll_ack(now) {
            push_ack(send, server, &ack);
        }
    }

    /// Datagrams from the server: our call's frames to PPP, its packets to
    /// the tun.
    fn gre_input(&mut self, batch: &RecvBatch) {
        let now = Instant::now();
        for datagram in batch.iter() {
            self.gre_datagram(now, datagram.source, datagram.bytes);
        }
    }

    /// One datagram (IPv4 header, GRE header, PPP frame) from `source`.
    fn gre_datagram(&mut self, now: Instant, source: Ipv4Addr, bytes: &[u8]) {
        let parsed = tsunagi_pptp::gre::ipv4_payload(bytes)
            .and_then(|(_, gre)| GreHeader::parse_with_payload(gre));
        let (header, payload) = match parsed {
            Ok(p) => p,
            Err(e) => {
                self.gre_errors += 1;
                debug!("{}: GRE from {source}: {e}", self.name);
                return;
            }
        };
        if header.call_id != self.call_id {
            self.gre_errors += 1;
            debug!(
                "{}: GRE for call {} (ours is {})",
                self.name, header.call_id, self.call_id
            );
            return;
        }
        let (Some(link), Some(call)) = (self.link.as_mut(), self.call.as_mut()) else {
            // The call's reply is still on its way.
            if self.early.len() < EARLY_FRAMES {
                self.early.push(bytes.to_vec());
            } else {
                self.gre_errors += 1;
            }
            return;
        };
        let (tun_path, tun_errors) = (&mut self.tun_path, &mut self.info.tun_errors);
        match call.window.receive(now, &header) {
            Received::Deliver { .. } => {
                link.handle_frame(now, payload, &mut |_version, packet| {
                    tun_path.deliver(packet, tun_errors);
                });
            }
            Received::Duplicate | Received::Late | Received::AckOnly => {}
        }
    }

    /// One packet from the tun (at the start of `tbuf`) into the call; a
    /// TCP super-packet is cut into segments that fit the server's MRU.
    fn tun_packet(&mut self, now: Instant, got: TunReceived, tbuf: &[u8]) {
        let (Some(link), Some(call)) = (self.link.as_mut(), self.call.as_mut()) else {
            return;
        };
        let server = self.server;
        let send = &mut self.send;
        self.tun_path
            .cut(got, tbuf, &mut self.info.tun_errors, |version, segment| {
                link.encapsulate_with(version, segment, |header, info| {
                    push_frame(send, server, &mut call.window, now, header, info)
                });
            });
        if self.send.is_full() {
            if let Err(e) = self.gre.flush(&mut self.send) {
                debug!("{}: {e}", self.name);
            }
        }
    }
}

/// The call in words for `status`.
fn tunnel_text(call: &Call, server: Ipv4Addr, gre_errors: u64) -> String {
    let mut text = format!("to {server}: {}", describe(call.id, &call.window));
    if gre_errors > 0 {
        text.push_str(&format!(" gre errors {gre_errors}"));
    }
    text
}
