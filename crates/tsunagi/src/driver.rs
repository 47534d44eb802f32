//! One PPP session: the byte stream, the engine and the tun device.
//!
//! The engine ([`tsunagi_ppp::link::Link`]) is sans-IO; this is the loop
//! around it, in the calling order the engine documents: after every input
//! drain `poll_transmit` and `poll_event`, then re-arm the timer from
//! `poll_timeout`.
//!
//! The data path batches: up to 64 KiB is read from the stream at a time
//! and handed to the engine in one call, whose datagrams go to the tun with
//! `try_send` straight from the engine's buffer (no copy, no allocation);
//! from the tun up to [`TUN_BATCH`] packets are drained per wake-up into one
//! write buffer, written to the stream with as few `write`s as it takes.
//! Reading the stream never waits for writing it (both peers may be writing
//! at once through pipes), and the tun is not read while more than
//! [`WRITE_HIGH_WATER`] bytes wait for the stream: then the kernel's tun
//! queue fills and drops, which TCP inside the tunnel reads as congestion.
//!
//! Offload (`tun_offload`, on by default): the tun is opened with a
//! virtio_net_hdr ([`Tun::create_offload`]). When LCP has agreed a peer MRU
//! of at least [`OFFLOAD_MIN_PEER_MRU`] (another tsunagi with `mru =
//! 65535`), TSO is enabled on it: the kernel hands us TCP super-packets of
//! up to 64 KiB, each sent as one PPP frame, instead of 40 packets of 1500
//! bytes with a syscall, a route lookup and an HDLC frame each. Packets
//! from the peer longer than the tun MTU are written back as GSO packets
//! (the kernel segments them where it must). The tun MTU stays at most
//! 1500 then, so the hosts behind it see ordinary segment sizes. A peer
//! with a small MRU (pppd: 1500) gets ordinary packets and nothing changes.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::process::Child;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};
use tsunagi_crypto::OsRandom;
use tsunagi_host::offload::{segment_tcp, MAX_OFFLOAD_PACKET};
use tsunagi_host::policy_route::{NextHop, PolicyRoutes};
use tsunagi_host::{Netlink, Tun};
use tsunagi_ppp::hdlc::FcsMode;
use tsunagi_ppp::link::{AuthEvent, DownReason, Event, IpVersion, Link, Phase};
use tsunagi_ppp::stream::StreamLink;

use crate::auth::{AuthGuard, Credentials};
use crate::config::LinkSettings;
use crate::control::{Response, EXIT_LINK_FAILED, EXIT_NORMAL, EXIT_REFUSED};
use crate::daemon::{LinkCommand, LiveStatus};
use crate::hooks;

/// Bytes read from the stream per `read`.
pub const STREAM_READ: usize = 256 * 1024;
/// The peer MRU from which TSO is enabled on an offload-mode tun: the
/// kernel's super-packets are up to 64 KiB long (`mru = 65535`). One that is
/// still longer than the peer's MRU is cut in software.
pub const OFFLOAD_MIN_PEER_MRU: u16 = 65000;
/// The tun MTU when the MRUs are large for offload: the segment size the
/// kernel cuts super-packets into on the LAN side.
pub const OFFLOAD_MTU: u16 = 1500;
/// Tun packets drained per wake-up before writing them out.
pub const TUN_BATCH: usize = 64;
/// Stop reading the tun while this much waits to be written to the stream.
pub const WRITE_HIGH_WATER: usize = 512 * 1024;
/// How long a Terminate-Request exchange may take on hangup or shutdown.
pub const CLOSE_WAIT: Duration = Duration::from_secs(3);
/// How often the counters that `status` shows are refreshed.
pub const STATUS_REFRESH: Duration = Duration::from_millis(250);
/// How long we try to flush the last frames (Terminate-Ack) once the link is down.
pub const FLUSH_WAIT: Duration = Duration::from_secs(1);

/// A PPP byte stream: the device command's stdout/stdin, or the fds that
/// `tsunagi direct` passed us.
pub struct Stream {
    /// Bytes from the peer.
    pub reader: Box<dyn AsyncRead + Unpin + Send>,
    /// Bytes to the peer.
    pub writer: Box<dyn AsyncWrite + Unpin + Send>,
    /// The device process, when we started one.
    pub child: Option<Child>,
}

impl Stream {
    /// Wrap the two fds of a `direct` request (stdin = from the peer,
    /// stdout = to the peer). They must be pollable: a pipe, socket or tty.
    pub fn from_fds(from_peer: OwnedFd, to_peer: OwnedFd) -> io::Result<Stream> {
        Ok(Stream {
            reader: Box::new(FdIo::new(from_peer)?),
            writer: Box::new(FdIo::new(to_peer)?),
            child: None,
        })
    }
}

/// Pipe capacity asked for the PPP stream (the kernel's default is 64 KiB).
pub const PIPE_SIZE: usize = 1024 * 1024;

/// Enlarge the pipe behind `fd` to [`PIPE_SIZE`] so that one wake-up moves
/// more frames; not a pipe (a socket, a tty) or over the system's
/// `/proc/sys/fs/pipe-max-size`: left as it is.
fn enlarge_pipe(fd: impl std::os::fd::AsFd) {
    let _ = rustix::pipe::fcntl_setpipe_size(fd, PIPE_SIZE);
}

/// A non-blocking fd driven by tokio's reactor.
struct FdIo(AsyncFd<OwnedFd>);

impl FdIo {
    fn new(fd: OwnedFd) -> io::Result<FdIo> {
        enlarge_pipe(&fd);
        let flags = rustix::fs::fcntl_getfl(&fd)?;
        rustix::fs::fcntl_setfl(&fd, flags | rustix::fs::OFlags::NONBLOCK)?;
        // AsyncFd::new is deprecated (tokio #8587) because a `T` whose fd
        // can be closed or swapped through `&T` makes it unsound; an
        // `OwnedFd` cannot be, and `register` would need `unsafe` here.
        #[allow(deprecated)]
        let registered = AsyncFd::new(fd);
        registered.map(FdIo).map_err(|e| {
            if e.raw_os_error() == Some(libc::EPERM) {
                io::Error::new(
                    e.kind(),
                    "the passed stdin/stdout must be a pipe, socket or tty",
                )
            } else {
                e
            }
        })
    }
}

impl AsyncRead for FdIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            let wanted = unfilled.len();
            match guard.try_io(|fd| {
                rustix::io::read(fd.get_ref(), &mut *unfilled).map_err(io::Error::from)
            }) {
                Ok(Ok(n)) => {
                    // A short read emptied the pipe or socket: wait for the
                    // next readiness event instead of learning that from
                    // an EAGAIN read (one syscall less per wake-up). Safe
                    // against a write in between: `clear_ready` keeps a
                    // readiness event that arrived after this guard's.
                    if n > 0 && n < wanted {
                        guard.clear_ready();
                    }
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for FdIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.0.poll_write_ready(cx))?;
            match guard.try_io(|fd| rustix::io::write(fd.get_ref(), data).map_err(io::Error::from))
            {
                Ok(result) => {
                    // A short write filled the pipe: the next attempt
                    // would only return EAGAIN.
                    if matches!(result, Ok(n) if n < data.len()) {
                        guard.clear_ready();
                    }
                    return Poll::Ready(result);
                }
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// How a session ended.
#[derive(Debug, Clone)]
pub struct SessionEnd {
    /// In words, for logs, `status` and the `direct` caller.
    pub reason: String,
    /// What `tsunagi direct` exits with.
    pub exit_code: i32,
    /// An administrator hung up: do not redial.
    pub hangup: bool,
    /// The daemon is stopping.
    pub shutdown: bool,
    /// How long IPCP was up (None if it never came up).
    pub up_for: Option<Duration>,
}

impl SessionEnd {
    /// A session that failed before PPP started.
    pub fn failed(reason: String) -> SessionEnd {
        SessionEnd {
            reason,
            exit_code: EXIT_REFUSED,
            hangup: false,
            shutdown: false,
            up_for: None,
        }
    }

    /// The answer for the `direct` caller.
    pub fn response(&self) -> Response {
        Response::Ended {
            reason: self.reason.clone(),
            exit_code: self.exit_code,
        }
    }
}

/// Why the engine went down, in words and as an exit status.
fn describe_down(reason: &DownReason) -> (String, i32) {
    match reason {
        DownReason::PeerTerminated(text) if text.is_empty() => {
            ("peer terminated".into(), EXIT_NORMAL)
        }
        DownReason::PeerTerminated(text) => (format!("peer terminated: {text}"), EXIT_NORMAL),
        DownReason::AdminClose => ("closed by us".into(), EXIT_NORMAL),
        DownReason::EchoTimeout => (
            "LCP echo timeout: peer not answering".into(),
            EXIT_LINK_FAILED,
        ),
        DownReason::LoopbackDetected => (
            "loopback detected (peer echoes our magic number)".into(),
            EXIT_LINK_FAILED,
        ),
        DownReason::NegotiationFailed(proto) => {
            (format!("{proto} negotiation failed"), EXIT_LINK_FAILED)
        }
        DownReason::LowerDown => ("stream lost".into(), EXIT_LINK_FAILED),
        DownReason::AuthFailed {
            method,
            reason,
            ours: false,
        } => (
            format!("authentication failed: peer by {}: {reason}", method.name()),
            EXIT_LINK_FAILED,
        ),
        DownReason::AuthFailed {
            method,
            reason,
            ours: true,
        } => (
            format!("authentication failed: us by {}: {reason}", method.name()),
            EXIT_LINK_FAILED,
        ),
        DownReason::PeerRefusedAuth => ("peer refused to authenticate".into(), EXIT_LINK_FAILED),
        DownReason::NoPeerAddress(why) => {
            (format!("no address for the peer: {why}"), EXIT_LINK_FAILED)
        }
    }
}

/// Phase names as `status` shows them.
pub fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Dead => "dead",
        Phase::Establish => "establish",
        Phase::Authenticate => "authenticate",
        Phase::Network => "network",
        Phase::Terminate => "terminate",
    }
}

/// An FCS mode as `status` shows it: the value of the `fcs` config key
/// that asks for it ("16", "null"; RFC 1570 section 2.1).
pub fn fcs_name(mode: FcsMode) -> &'static str {
    match mode {
        FcsMode::Fcs16 => "16",
        FcsMode::Null => "null",
    }
}

/// The link-local address of an IPV6CP interface identifier: `fe80::/64`
/// with the identifier as its low 64 bits (RFC 5072 section 5, RFC 4291
/// section 2.5.6), as pppd forms it.
pub fn link_local_address(interface_id: &[u8; 8]) -> Ipv6Addr {
    let mut octets = [0u8; 16];
    octets[..2].copy_from_slice(&[0xfe, 0x80]);
    octets[8..].copy_from_slice(interface_id);
    Ipv6Addr::from(octets)
}

/// The smallest MTU IPv6 runs on (RFC 8200 section 5); below it the
/// kernel drops the device's IPv6 state and refuses its addresses.
pub const IPV6_MIN_MTU: u32 = 1280;

/// 64 bits from the kernel for the cheap generator of magic numbers and
/// interface identifiers; a draw of its own, so it shares nothing with the
/// challenges the link draws from [`OsRandom`].
pub fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    tsunagi_crypto::RandomSource::fill(&OsRandom, &mut b);
    u64::from_ne_bytes(b)
}

/// The kept next hop for log lines: `GW (ifindex N)` or `ifindex N directly`.
fn describe_hop(hop: NextHop) -> String {
    match hop.gateway {
        Some(gw) => format!("{gw} (ifindex {})", hop.oif),
        None => format!("ifindex {} directly", hop.oif),
    }
}

/// Undo [`Session::policy_routing_up`]; failures are logged.
async fn policy_routing_down(s: &LinkSettings, ifname: &str, routing: InstalledRouting) {
    let name = &s.name;
    let InstalledRouting {
        routes,
        oif,
        full_tunnel,
        sources,
    } = routing;
    if let Some((outer, hop)) = full_tunnel {
        match routes.end_full_tunnel(outer, hop, oif).await {
            Ok(()) => info!("{name}: default route via {ifname} and host route to {outer} removed"),
            Err(e) => warn!("{name}: default route via {ifname}: cannot remove: {e}"),
        }
    }
    for addr in sources {
        match routes
            .end_source_route(addr, s.route_table, SOURCE_RULE_PRIORITY, oif)
            .await
        {
            Ok(()) => info!("{name}: source route from {addr} via {ifname} removed"),
            Err(e) => warn!("{name}: source route from {addr} via {ifname}: cannot remove: {e}"),
        }
    }
}

/// What a session needs from its supervisor.
pub struct SessionCtx<'a> {
    /// The link's settings.
    pub settings: &'a LinkSettings,
    /// Secrets and password read at start-up.
    pub credentials: &'a Credentials,
    /// Daemon-wide authentication failure limiter.
    pub guard: &'a AuthGuard,
    /// Where the peer is, for auth log lines and the limiter: the ssh
    /// client address of a direct caller (else its uid), or the dial target.
    pub source: String,
    /// Shared rtnetlink handle.
    pub netlink: &'a Netlink,
    /// What `status` shows.
    pub status: &'a Arc<Mutex<LiveStatus>>,
    /// Commands for this link (hangup, a second `direct`).
    pub commands: &'a mut mpsc::Receiver<LinkCommand>,
    /// Becomes true when the daemon stops.
    pub shutdown: watch::Receiver<bool>,
    /// "ssh" or "direct" (pppd's tty argument of the hooks).
    pub tty: &'static str,
}

/// Priority of the `ip rule from ADDR lookup TABLE` rules of
/// `source_routes`: before the main table's rule (32766), after local (0).
pub const SOURCE_RULE_PRIORITY: u32 = 1000;

/// Policy routing installed for an open IPCP, to undo on down.
struct InstalledRouting {
    routes: PolicyRoutes,
    /// The tun's interface index.
    oif: u32,
    /// `default_route`: the peer's outer address and its kept next hop.
    full_tunnel: Option<(Ipv4Addr, NextHop)>,
    /// `source_routes` whose rule and table route went in.
    sources: Vec<Ipv4Addr>,
}

/// Addresses while IPCP is open.
#[derive(Debug, Clone, Copy)]
struct Ipv4State {
    local: Ipv4Addr,
    peer: Ipv4Addr,
    /// DNS servers the peer gave us (for the hooks' DNS1/DNS2).
    dns: [Option<Ipv4Addr>; 2],
}

/// The link-local pair on the tun while IPV6CP is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ipv6State {
    local: Ipv6Addr,
    peer: Ipv6Addr,
}

/// Run one session over `stream` until the link is down. Never panics on
/// what the peer sends; every failure becomes a [`SessionEnd`].
pub async fn run_session(ctx: SessionCtx<'_>, stream: Stream) -> SessionEnd {
    let name = ctx.settings.name.as_str();
    let created = if ctx.settings.tun_offload {
        Tun::create_offload(&ctx.settings.tun).or_else(|e| {
            warn!(
                "{name}: tun {} in offload mode: {e}; without offload",
                ctx.settings.tun
            );
            Tun::create(&ctx.settings.tun)
        })
    } else {
        Tun::create(&ctx.settings.tun)
    };
    let tun = match created {
        Ok(t) => t,
        Err(e) => {
            warn!("{name}: cannot create tun {}: {e}", ctx.settings.tun);
            return SessionEnd::failed(format!("cannot create tun {}: {e}", ctx.settings.tun));
        }
    };
    let mut session = Session {
        ctx,
        tun,
        link: None,
        ipv4: None,
        ipv6: None,
        tun_mtu: None,
        routing: None,
        first_up: None,
        auth_failure: None,
        tun_errors: 0,
        max_send: usize::from(tsunagi_ppp::lcp::DEFAULT_MRU),
        segment_scratch: Vec::new(),
    };
    session.ipv6_prepare().await;
    let end = session.run(stream).await;
    session.ipv6_down().await;
    session.ipv4_down().await;
    {
        let mut st = session.ctx.status.lock().unwrap_or_else(|e| e.into_inner());
        st.phase = "dead";
        st.fcs = None;
        st.auth = None;
        st.ccp = None;
        st.last_down = Some(end.reason.clone());
        if let Some(link) = &session.link {
            st.counters = link.stats().into();
        }
    }
    // Dropping the tun removes the device and what remains of its routes.
    end
}

struct Session<'a> {
    ctx: SessionCtx<'a>,
    tun: Tun,
    link: Option<StreamLink>,
    ipv4: Option<Ipv4State>,
    /// The link-local pair while IPV6CP is open, to remove on down.
    ipv6: Option<Ipv6State>,
    /// The MTU [`Session::tun_up`] set while LCP is open (the first NCP
    /// to open brings the tun up).
    tun_mtu: Option<u32>,
    /// Full tunnel and source routes while IPCP is open.
    routing: Option<InstalledRouting>,
    /// When IPCP first came up in this session (kept after it goes down:
    /// the redial backoff asks how long the link was good).
    first_up: Option<Instant>,
    tun_errors: u64,
    /// The peer's MRU: the longest packet one frame may carry.
    max_send: usize,
    /// Where [`segment_tcp`] builds segments of a too-long super-packet.
    segment_scratch: Vec<u8>,
    /// Why authentication failed, to say so when the link goes down.
    auth_failure: Option<String>,
}

impl Session<'_> {
    async fn run(&mut self, stream: Stream) -> SessionEnd {
        let Stream {
            mut reader,
            mut writer,
            mut child,
        } = stream;
        let name = self.ctx.settings.name.clone();
        let mut link = StreamLink::new(Link::new(
            self.ctx.credentials.link_config(self.ctx.settings),
            random_seed(),
            OsRandom::handle(),
        ));
        link.start(Instant::now());
        info!(
            "{name}: PPP started over the {} stream on {}",
            self.ctx.tty,
            self.tun.name()
        );

        let mut out: Vec<u8> = Vec::with_capacity(WRITE_HIGH_WATER + 64 * 1024);
        let mut written = 0usize;
        let mut rbuf = vec![0u8; STREAM_READ];
        let mut tbuf = vec![0u8; MAX_OFFLOAD_PACKET];
        let far = tokio::time::Instant::now() + Duration::from_secs(86400 * 365);
        let timer = tokio::time::sleep_until(far);
        tokio::pin!(timer);
        let mut armed: Option<Instant> = None;
        // Set when the session is to end: (why, flush until).
        let mut ending: Option<(SessionEnd, Instant)> = None;
        // The stream or the device ended; becomes `ending` once the engine
        // has said what it makes of that (see below).
        let mut stream_end: Option<(SessionEnd, Instant)> = None;
        // Set while a Terminate-Request exchange runs (hangup, shutdown).
        let mut closing: Option<(bool, Instant)> = None;
        let mut stream_eof = false;
        let mut write_failed = false;
        // The device process is waited for in its own task: polling
        // `Child::wait` in the loop below would cost a waitpid per wake-up.
        // Dropping `_kill_device` at the end of the session kills it.
        let (_kill_device, mut device_exit) = watch_device(child.take());
        let mut child_done = device_exit.is_none();
        let mut shown_phase = "";
        let mut status_due = Instant::now();
        let mut status_armed = false;
        let status_timer = tokio::time::sleep_until(far);
        tokio::pin!(status_timer);
        let mut shutdown_seen = *self.ctx.shutdown.borrow();
        if shutdown_seen {
            link.close(Instant::now(), "daemon shutting down");
            closing = Some((false, Instant::now() + CLOSE_WAIT));
        }

        loop {
            link.poll_transmit(&mut out);
            // Before the link events: a failure is logged before the
            // "link down" it causes.
            while let Some(event) = link.poll_auth_event() {
                self.handle_auth_event(event, &name);
            }
            while let Some(event) = link.poll_event() {
                if let Some((end, lower_down)) = self.handle_event(event, &name, &link).await {
                    // "stream lost" says less than why we know it was lost;
                    // a Terminate-Request the peer sent before says more.
                    let end = match stream_end.take() {
                        Some((ours, _)) if lower_down => ours,
                        _ => end,
                    };
                    ending.get_or_insert((end, Instant::now() + FLUSH_WAIT));
                }
            }
            if let Some(end) = stream_end.take() {
                ending.get_or_insert(end);
            }
            // `status` reads this; refreshed on a phase change and a few
            // times a second, not per batch: the data path takes no lock.
            let phase = phase_name(link.phase());
            let now = Instant::now();
            if phase != shown_phase || now >= status_due {
                shown_phase = phase;
                status_due = now + STATUS_REFRESH;
                status_armed = false;
                let mut st = self.ctx.status.lock().unwrap_or_else(|e| e.into_inner());
                st.phase = phase;
                st.counters = link.stats().into();
            } else if !status_armed {
                // Something may have changed since: publish it when due
                // even if the link then goes quiet.
                status_armed = true;
                status_timer.as_mut().reset(status_due.into());
            }
            if let Some((end, flush_until)) = &ending {
                if written == out.len() || write_failed || Instant::now() >= *flush_until {
                    let mut end = end.clone();
                    if let Some((hangup, _)) = closing {
                        end.hangup |= hangup;
                        end.shutdown |= !hangup;
                    }
                    end.up_for = self.first_up.map(|t| t.elapsed());
                    self.link = Some(link);
                    return end;
                }
            }
            let next = link.poll_timeout();
            if next != armed {
                armed = next;
                let at = next.map_or(far, tokio::time::Instant::from_std);
                timer.as_mut().reset(at);
            }
            let stop_at = match (&ending, &closing) {
                (Some((_, t)), _) => Some(*t),
                (None, Some((_, t))) => Some(*t),
                (None, None) => None,
            };
            let stop_timer = async move {
                match stop_at {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            let pending_write = out.len() - written;
            let child_wait = async {
                match device_exit.as_mut() {
                    Some(rx) if !child_done => match rx.await {
                        Ok(status) => status,
                        Err(_) => Err(io::Error::other("device watcher gone")),
                    },
                    _ => std::future::pending().await,
                }
            };

            tokio::select! {
                r = reader.read(&mut rbuf), if !stream_eof => {
                    let now = Instant::now();
                    // A device socket closed with our frames still unread
                    // in it reads as a reset, not as an EOF: the same end.
                    let r = match r {
                        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(0),
                        r => r,
                    };
                    match r {
                        Ok(n) if n > 0 => {
                            let tun = &self.tun;
                            let errors = &mut self.tun_errors;
                            let mut delivered = false;
                            link.handle_input(now, &rbuf[..n], &mut |_version, packet| {
                                match tun.try_send(packet) {
                                    Ok(_) => delivered = true,
                                    Err(_) => *errors += 1,
                                }
                            });
                            // Writing to the tun runs the stack behind it at
                            // once: a TCP receiver's ACK, or a sender's next
                            // segments, are usually queued on the tun by now.
                            // Taking them in this wake-up saves a round
                            // through the reactor per packet. A read that
                            // completed no packet caused nothing to take.
                            if delivered && ending.is_none() {
                                self.drain_tun(&mut link, &mut tbuf, &mut out, written, &name);
                            }
                        }
                        Ok(_) => {
                            // A device that closed its stdout is usually
                            // exiting: its status says more than the EOF.
                            let fallback = if device_exit.is_some() {
                                "the device closed the stream"
                            } else {
                                "the peer closed the stream"
                            };
                            let why = device_status_or(&mut device_exit, &mut child_done, fallback).await;
                            info!("{name}: {why}");
                            stream_eof = true;
                            link.lower_down(now);
                            stream_end.get_or_insert((self.end_now(&why, EXIT_LINK_FAILED), now + FLUSH_WAIT));
                        }
                        Err(e) => {
                            warn!("{name}: stream read: {e}");
                            stream_eof = true;
                            link.lower_down(now);
                            stream_end.get_or_insert((self.end_now(&format!("stream read error: {e}"), EXIT_LINK_FAILED), now));
                        }
                    }
                }
                r = writer.write(&out[written..]), if pending_write > 0 && !write_failed => {
                    match r {
                        Ok(n) if n > 0 => {
                            written += n;
                            if written == out.len() {
                                out.clear();
                                written = 0;
                            } else if written > WRITE_HIGH_WATER {
                                out.drain(..written);
                                written = 0;
                            }
                        }
                        r => {
                            let why = match r { Err(e) => e.to_string(), Ok(_) => "wrote 0 bytes".into() };
                            warn!("{name}: stream write: {why}");
                            let why = device_status_or(
                                &mut device_exit,
                                &mut child_done,
                                &format!("stream write error: {why}"),
                            )
                            .await;
                            write_failed = true;
                            out.clear();
                            written = 0;
                            let now = Instant::now();
                            if !stream_eof {
                                link.lower_down(now);
                            }
                            stream_end.get_or_insert((self.end_now(&why, EXIT_LINK_FAILED), now));
                        }
                    }
                }
                r = self.tun.recv_gso(&mut tbuf), if pending_write < WRITE_HIGH_WATER && ending.is_none() => {
                    match r {
                        Ok(got) => {
                            self.encapsulate_received(&mut link, &tbuf, got, &mut out);
                            // Drain a burst in this wake-up so it leaves in
                            // one write (super-packets fill the buffer sooner).
                            self.drain_tun(&mut link, &mut tbuf, &mut out, written, &name);
                        }
                        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                            debug!("{name}: tun read: {e}");
                            self.tun_errors += 1;
                        }
                        Err(e) => {
                            warn!("{name}: tun read: {e}");
                            let now = Instant::now();
                            link.close(now, "tun device failed");
                            ending.get_or_insert((self.end_now(&format!("tun read error: {e}"), EXIT_LINK_FAILED), now + FLUSH_WAIT));
                        }
                    }
                }
                () = &mut status_timer, if status_armed => {}
                () = &mut timer, if armed.is_some() => {
                    armed = None;
                    link.handle_timeout(Instant::now());
                }
                status = child_wait => {
                    child_done = true;
                    let why = describe_exit(status);
                    info!("{name}: device {why}");
                    let now = Instant::now();
                    if !stream_eof {
                        stream_eof = true;
                        link.lower_down(now);
                    }
                    stream_end.get_or_insert((self.end_now(&format!("device {why}"), EXIT_LINK_FAILED), now + FLUSH_WAIT));
                }
                cmd = self.ctx.commands.recv() => {
                    match cmd {
                        Some(LinkCommand::Hangup(reply)) => {
                            info!("{name}: hangup requested");
                            link.close(Instant::now(), "Administrative hangup");
                            closing.get_or_insert((true, Instant::now() + CLOSE_WAIT));
                            let _ = reply.send(Response::Done { message: format!("{name}: closing") });
                        }
                        Some(LinkCommand::Dial(reply)) => {
                            let _ = reply.send(Response::Done { message: format!("{name}: already connected") });
                        }
                        Some(LinkCommand::Attach(attach)) => {
                            warn!("{name}: direct refused for uid {} pid {}: profile already in use", attach.uid, attach.pid);
                            let _ = attach.reply.send(Response::Refused {
                                message: format!("profile {name} is already in use"),
                            });
                        }
                        None => {}
                    }
                }
                _ = self.ctx.shutdown.changed(), if !shutdown_seen => {
                    shutdown_seen = true;
                    if *self.ctx.shutdown.borrow() {
                        link.close(Instant::now(), "daemon shutting down");
                        closing.get_or_insert((false, Instant::now() + CLOSE_WAIT));
                    }
                }
                () = stop_timer => {
                    if ending.is_none() {
                        let why = if closing.is_some_and(|(h, _)| h) { "hangup" } else { "daemon shutdown" };
                        info!("{name}: no Terminate-Ack within {}s, closing anyway", CLOSE_WAIT.as_secs());
                        ending = Some((self.end_now(why, EXIT_NORMAL), Instant::now()));
                    }
                    // Past the flush deadline: the check at the top ends the loop.
                }
            }
        }
    }

    /// Takes what the tun has queued, without waiting, into the stream
    /// buffer: at most [`TUN_BATCH`] packets, and not past
    /// [`WRITE_HIGH_WATER`] bytes waiting to be written.
    fn drain_tun(
        &mut self,
        link: &mut StreamLink,
        tbuf: &mut [u8],
        out: &mut Vec<u8>,
        written: usize,
        name: &str,
    ) {
        for _ in 0..TUN_BATCH {
            if out.len() - written >= WRITE_HIGH_WATER {
                break;
            }
            match self.tun.try_recv_gso(tbuf) {
                Ok(got) => self.encapsulate_received(link, tbuf, got, out),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // A packet we could not take (cut, or an offload
                    // header we cannot complete): lost like a drop; the
                    // tun goes on.
                    debug!("{name}: tun read: {e}");
                    self.tun_errors += 1;
                    break;
                }
            }
        }
    }

    /// One packet read from the tun (at the start of `tbuf`) to the stream
    /// buffer; a super-packet longer than the peer's MRU is cut into
    /// segments first (rare: only when the kernel's GSO limit exceeds it).
    fn encapsulate_received(
        &mut self,
        link: &mut StreamLink,
        tbuf: &[u8],
        got: tsunagi_host::tun::Received,
        out: &mut Vec<u8>,
    ) {
        let packet = &tbuf[..got.len];
        match got.gso {
            Some(segment) if packet.len() > self.max_send => {
                let cut = segment_tcp(
                    packet,
                    usize::from(segment),
                    &mut self.segment_scratch,
                    &mut |seg| encapsulate(link, seg, out),
                );
                if cut.is_err() {
                    self.tun_errors += 1;
                }
            }
            _ => encapsulate(link, packet, out),
        }
    }

    fn end_now(&self, reason: &str, exit_code: i32) -> SessionEnd {
        SessionEnd {
            reason: reason.to_string(),
            exit_code,
            hangup: false,
            shutdown: false,
            up_for: None,
        }
    }

    /// Log an authentication or CCP outcome, publish it for `status`, and
    /// feed the failure limiter. Never logs a secret: the engine's reasons
    /// do not carry them.
    fn handle_auth_event(&mut self, event: AuthEvent, name: &str) {
        let source = self.ctx.source.as_str();
        let publish = |f: &dyn Fn(&mut LiveStatus)| {
            f(&mut self.ctx.status.lock().unwrap_or_else(|e| e.into_inner()));
        };
        let add_auth = |text: String| {
            publish(&|st: &mut LiveStatus| {
                st.auth = Some(match &st.auth {
                    Some(prev) => format!("{prev}; {text}"),
                    None => text.clone(),
                });
            })
        };
        match event {
            AuthEvent::Authenticated {
                user,
                method,
                address,
            } => {
                let fixed = address.map_or_else(String::new, |a| format!(", fixed address {a}"));
                info!(
                    "{name}: peer {user:?} from {source} authenticated with {}{fixed}",
                    method.name()
                );
                self.ctx.guard.succeeded(source);
                add_auth(format!("peer {user} by {}", method.name()));
            }
            AuthEvent::AuthenticatedToPeer { user, method } => {
                info!(
                    "{name}: we authenticated to {source} as {user:?} with {}",
                    method.name()
                );
                add_auth(format!("us as {user} by {}", method.name()));
            }
            AuthEvent::AuthFailed {
                user,
                method,
                reason,
                ours: false,
            } => {
                let hold = self.ctx.guard.failed(Instant::now(), source);
                let held = if hold.is_zero() {
                    String::new()
                } else {
                    format!("; next attempt from {source} held off {}s", hold.as_secs())
                };
                warn!(
                    "{name}: authentication failed: user {user:?} from {source} by {}: {reason}{held}",
                    method.name()
                );
                self.auth_failure = Some(format!(
                    "authentication of peer {user:?} by {} failed: {reason}",
                    method.name()
                ));
            }
            AuthEvent::AuthFailed {
                user,
                method,
                reason,
                ours: true,
            } => {
                warn!(
                    "{name}: {source} refused our authentication as {user:?} by {}: {reason}",
                    method.name()
                );
                self.auth_failure = Some(format!(
                    "peer refused our authentication as {user:?} by {}: {reason}",
                    method.name()
                ));
            }
            AuthEvent::PeerRefusedAuth => {
                let hold = self.ctx.guard.failed(Instant::now(), source);
                warn!(
                    "{name}: authentication failed: peer at {source} refused to authenticate (held off {}s)",
                    hold.as_secs()
                );
                self.auth_failure = Some("peer refused to authenticate".to_string());
            }
            AuthEvent::CcpUp { tx, rx } => {
                let show = |m: Option<tsunagi_ppp::ccp::CcpMethod>| {
                    m.map_or_else(|| "none".to_string(), |m| m.to_string())
                };
                let text = format!("send {}, receive {}", show(tx), show(rx));
                info!("{name}: CCP up: {text}");
                publish(&|st: &mut LiveStatus| st.ccp = Some(text.clone()));
            }
        }
    }

    /// React to one engine event; `Some((end, lower_down))` when the link
    /// is finished, `lower_down` when only because its stream ended.
    async fn handle_event(
        &mut self,
        event: Event,
        name: &str,
        link: &StreamLink,
    ) -> Option<(SessionEnd, bool)> {
        match event {
            // Site links give the peer's address in their config.
            Event::PeerAddressNeeded { .. } => None,
            Event::Phase(p) => {
                debug!("{name}: phase {}", phase_name(p));
                // The FCS of each direction is fixed while LCP is open
                // (RFC 1570 section 2.1), which is what these phases mean.
                let lcp_open = matches!(p, Phase::Authenticate | Phase::Network);
                if !lcp_open {
                    // LCP may open again with other MRUs.
                    self.tun_mtu = None;
                }
                let fcs = lcp_open.then(|| {
                    let st = link.status();
                    (st.tx_fcs, st.rx_fcs)
                });
                self.ctx
                    .status
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .fcs = fcs;
                None
            }
            Event::Ipv4Up { local, peer, dns } => {
                if self.ctx.settings.usepeerdns {
                    for d in dns.iter().flatten() {
                        info!("{name}: IPCP: peer DNS {d}");
                    }
                }
                self.ipv4_up(local, peer, dns, link.status().peer_mru).await;
                None
            }
            Event::Ipv4Down => {
                self.ipv4_down().await;
                None
            }
            Event::Ipv6Up { local_id, peer_id } => {
                info!(
                    "{name}: IPV6CP: up, local id {} peer id {}",
                    hex(&local_id),
                    hex(&peer_id)
                );
                self.ipv6_up(&local_id, &peer_id, link.status().peer_mru)
                    .await;
                None
            }
            Event::Ipv6Down => {
                // The engine has logged "IPV6CP: down".
                self.ipv6_down().await;
                None
            }
            Event::PeerIdent(text) => {
                info!("{name}: LCP: peer identifies as {text:?}");
                None
            }
            Event::Down(reason) => {
                let (mut why, mut code) = describe_down(&reason);
                if let Some(failure) = &self.auth_failure {
                    why = format!("{failure}; {why}");
                    code = EXIT_REFUSED;
                }
                info!("{name}: link down: {why}");
                Some((self.end_now(&why, code), reason == DownReason::LowerDown))
            }
        }
    }

    /// The IPv6 side of the tun, once, before it first comes up: the
    /// kernel must not add a random link-local address of its own
    /// (`addrgenmode none`); the link-local addresses of a PPP link are the
    /// ones IPV6CP agrees (RFC 5072 section 5). Only when IPV6CP is
    /// enabled; a failure (a kernel without IPv6) is logged.
    async fn ipv6_prepare(&self) {
        if !self.ctx.settings.ipv6cp {
            return;
        }
        let name = &self.ctx.settings.name;
        let ifname = self.tun.name();
        if let Err(e) = self.ctx.netlink.set_addrgenmode_none(ifname).await {
            warn!("{name}: {e}; the kernel may add a link-local address of its own");
        }
    }

    /// The link-local pair of an opened IPV6CP on the tun: `fe80::LOCAL_ID
    /// peer fe80::PEER_ID` (RFC 5072 section 5), as pppd configures it.
    /// Turns IPv6 on for the tun if the kernel has it off, and brings the
    /// tun up if no NCP has yet. A failure is logged and leaves the link up;
    /// so does an MTU below IPv6's minimum, without addresses.
    async fn ipv6_up(&mut self, local_id: &[u8; 8], peer_id: &[u8; 8], peer_mru: u16) {
        let s = self.ctx.settings;
        let name = &s.name;
        let ifname = self.tun.name().to_string();
        let state = Ipv6State {
            local: link_local_address(local_id),
            peer: link_local_address(peer_id),
        };
        // IPV6CP opening again without a close in between: other
        // identifiers mean other addresses; the old pair goes first.
        if self.ipv6.is_some_and(|old| old != state) {
            self.ipv6_down().await;
        }
        let mtu = match self.tun_mtu {
            Some(mtu) => mtu,
            None => self.tun_up(peer_mru).await,
        };
        if mtu < IPV6_MIN_MTU {
            warn!(
                "{name}: {ifname}: mtu {mtu} is below IPv6's minimum {IPV6_MIN_MTU} (RFC 8200 s5): no IPv6 addresses"
            );
            return;
        }
        // After the MTU: below 1280 the kernel has no IPv6 state (and no
        // sysctl directory) for the device at all.
        match tsunagi_host::netlink::enable_ipv6(&ifname) {
            Ok(true) => info!("{name}: {ifname}: IPv6 turned on (disable_ipv6 was set)"),
            Ok(false) => {}
            Err(e) => warn!("{name}: cannot turn IPv6 on: {e}"),
        }
        let Ipv6State { local, peer } = state;
        match self
            .ctx
            .netlink
            .add_address6_ptp(&ifname, local, peer)
            .await
        {
            Ok(()) => {
                info!("{name}: {ifname} IPv6 up: {local} peer {peer}");
                self.ipv6 = Some(state);
                let mut st = self.ctx.status.lock().unwrap_or_else(|e| e.into_inner());
                st.local6 = Some(local);
                st.peer_addr6 = Some(peer);
            }
            Err(e) => warn!("{name}: {ifname}: cannot add address {local} peer {peer}: {e}"),
        }
    }

    /// Undo [`Session::ipv6_up`] (IPV6CP down, session end); a failure is
    /// logged.
    async fn ipv6_down(&mut self) {
        let Some(Ipv6State { local, peer }) = self.ipv6.take() else {
            return;
        };
        let name = &self.ctx.settings.name;
        let ifname = self.tun.name().to_string();
        {
            let mut st = self.ctx.status.lock().unwrap_or_else(|e| e.into_inner());
            st.local6 = None;
            st.peer_addr6 = None;
        }
        match self
            .ctx
            .netlink
            .del_address6_ptp(&ifname, local, peer)
            .await
        {
            Ok(()) => info!("{name}: {ifname} IPv6 down: {local} peer {peer} removed"),
            Err(e) => warn!("{name}: {ifname}: cannot remove address {local} peer {peer}: {e}"),
        }
    }

    /// MTU, offload and up for the tun once an NCP opens; the MTU set. The
    /// MTU is the configured one, else the smaller of our MRU and the
    /// peer's: a packet the peer cannot receive must not leave the tun
    /// whole; on an offload-mode tun at most [`OFFLOAD_MTU`], and TSO goes
    /// on when the peer's MRU takes super-packets (see the module docs).
    async fn tun_up(&mut self, peer_mru: u16) -> u32 {
        let s = self.ctx.settings;
        let name = &s.name;
        let ifname = self.tun.name().to_string();
        let offload = self.tun.is_offload();
        let negotiated = s.mru.min(peer_mru);
        let mtu = s.mtu.unwrap_or(if offload {
            negotiated.min(OFFLOAD_MTU)
        } else {
            negotiated
        });
        self.max_send = usize::from(peer_mru);
        if offload {
            self.tun.set_gso_mtu(usize::from(mtu));
            let tso = peer_mru >= OFFLOAD_MIN_PEER_MRU;
            match self.tun.set_tso(tso) {
                Ok(()) if tso => info!("{name}: {ifname}: TSO on (peer mru {peer_mru})"),
                Ok(()) => {}
                Err(e) => warn!("{name}: {ifname}: {e}"),
            }
        }
        let mtu = u32::from(mtu);
        if let Err(e) = self.ctx.netlink.link_up(&ifname, mtu).await {
            warn!("{name}: {ifname}: cannot set mtu {mtu} and up: {e}");
        }
        self.tun_mtu = Some(mtu);
        mtu
    }

    /// Address, routes and hook for an opened IPCP; the tun's MTU as
    /// [`Session::tun_up`] chooses it.
    async fn ipv4_up(
        &mut self,
        local: Ipv4Addr,
        peer: Ipv4Addr,
        dns: [Option<Ipv4Addr>; 2],
        peer_mru: u16,
    ) {
        let s = self.ctx.settings;
        let name = &s.name;
        let ifname = self.tun.name().to_string();
        let mtu = self.tun_up(peer_mru).await;
        match self.ctx.netlink.add_address_ptp(&ifname, local, peer).await {
            Ok(()) => info!("{name}: {ifname} up: mtu {mtu}, {local} peer {peer}"),
            Err(e) => warn!("{name}: {ifname}: cannot add address {local} peer {peer}: {e}"),
        }
        for route in &s.routes {
            match self.ctx.netlink.add_route(*route, &ifname).await {
                Ok(()) => info!("{name}: route {route} via {ifname} added"),
                Err(e) => warn!("{name}: route {route} via {ifname}: {e}"),
            }
        }
        // IPCP opening again without a close in between (a renegotiation):
        // take the old routing away first, its next hop may have changed.
        if let Some(old) = self.routing.take() {
            policy_routing_down(s, &ifname, old).await;
        }
        self.routing = self.policy_routing_up(&ifname).await;
        self.first_up.get_or_insert_with(Instant::now);
        self.ipv4 = Some(Ipv4State { local, peer, dns });
        {
            let mut st = self.ctx.status.lock().unwrap_or_else(|e| e.into_inner());
            st.local = Some(local);
            st.peer_addr = Some(peer);
            st.up_since = Some(Instant::now());
        }
        if let Some(hook) = &s.ip_up {
            hooks::spawn(hook, &ifname, self.ctx.tty, local, peer, name, dns);
        }
    }

    /// `default_route` (full tunnel) and `source_routes` of the link; a
    /// failure is logged and leaves the link up (split tunnel then).
    async fn policy_routing_up(&self, ifname: &str) -> Option<InstalledRouting> {
        let s = self.ctx.settings;
        let name = &s.name;
        if !s.default_route && s.source_routes.is_empty() {
            return None;
        }
        let routes = match PolicyRoutes::new() {
            Ok(r) => r,
            Err(e) => {
                warn!("{name}: policy routing: {e}");
                return None;
            }
        };
        let oif = match self.ctx.netlink.ifindex(ifname).await {
            Ok(i) => i,
            Err(e) => {
                warn!("{name}: policy routing: {ifname}: {e}");
                return None;
            }
        };
        let mut installed = InstalledRouting {
            routes,
            oif,
            full_tunnel: None,
            sources: Vec::new(),
        };
        if s.default_route {
            // A direct link's peer is the SSH client when the config does not
            // name it (SSH_CONNECTION's first field).
            let outer = s.outer_peer.or_else(|| self.ctx.source.parse().ok());
            match outer {
                None => warn!(
                    "{name}: default_route: no outer_peer and no SSH client address; split tunnel only"
                ),
                Some(outer) => {
                    let before = installed.routes.route_to(outer).await;
                    match installed.routes.start_full_tunnel(outer, oif).await {
                        Ok(hop) => {
                            info!(
                                "{name}: default route via {ifname} (0/1, 128/1); {outer} kept via {}",
                                describe_hop(hop)
                            );
                            installed.full_tunnel = Some((outer, hop));
                        }
                        Err(e) => {
                            warn!("{name}: default_route via {ifname}: {e}; split tunnel only");
                            // Take back whatever half went in.
                            if let Some(hop) = before.ok().filter(|h| h.oif != oif) {
                                let _ = installed.routes.end_full_tunnel(outer, hop, oif).await;
                            }
                        }
                    }
                }
            }
        }
        for &addr in &s.source_routes {
            match installed
                .routes
                .start_source_route(addr, s.route_table, SOURCE_RULE_PRIORITY, oif)
                .await
            {
                Ok(()) => {
                    info!(
                        "{name}: replies from {addr} via {ifname} (rule from {addr} lookup {})",
                        s.route_table
                    );
                    installed.sources.push(addr);
                }
                Err(e) => warn!(
                    "{name}: source route from {addr} via {ifname} (table {}): {e}",
                    s.route_table
                ),
            }
        }
        Some(installed)
    }

    async fn ipv4_down(&mut self) {
        let Some(state) = self.ipv4.take() else {
            return;
        };
        let s = self.ctx.settings;
        let ifname = self.tun.name().to_string();
        if let Some(routing) = self.routing.take() {
            policy_routing_down(s, &ifname, routing).await;
        }
        for route in &s.routes {
            match self.ctx.netlink.del_route(*route, &ifname).await {
                Ok(()) => info!("{}: route {route} via {ifname} removed", s.name),
                Err(e) => warn!("{}: route {route} via {ifname}: cannot remove: {e}", s.name),
            }
        }
        {
            let mut st = self.ctx.status.lock().unwrap_or_else(|e| e.into_inner());
            st.local = None;
            st.peer_addr = None;
            st.up_since = None;
        }
        if self.tun_errors > 0 {
            info!(
                "{}: {} packets could not be written to {ifname}",
                s.name, self.tun_errors
            );
        }
        if let Some(hook) = &s.ip_down {
            hooks::spawn(
                hook,
                &ifname,
                self.ctx.tty,
                state.local,
                state.peer,
                &s.name,
                state.dns,
            );
        }
    }
}

/// Why the stream failed: a device that closed its end or stopped reading
/// is usually exiting, and its exit status says more than EOF or EPIPE.
/// Waits up to half a second for it; `fallback` when there is no device.
async fn device_status_or(
    device_exit: &mut Option<oneshot::Receiver<io::Result<ExitStatus>>>,
    done: &mut bool,
    fallback: &str,
) -> String {
    if let Some(rx) = device_exit.as_mut().filter(|_| !*done) {
        if let Ok(Ok(status)) = tokio::time::timeout(Duration::from_millis(500), rx).await {
            *done = true;
            return format!("device {}", describe_exit(status));
        }
    }
    fallback.to_string()
}

/// Wait for the device process in a task of its own. Returns the sender
/// whose drop kills the device, and the receiver of its exit status.
#[allow(clippy::type_complexity)]
fn watch_device(
    child: Option<Child>,
) -> (
    Option<oneshot::Sender<()>>,
    Option<oneshot::Receiver<io::Result<ExitStatus>>>,
) {
    let Some(mut child) = child else {
        return (None, None);
    };
    let (kill_tx, kill_rx) = oneshot::channel::<()>();
    let (exit_tx, exit_rx) = oneshot::channel();
    // The device runs in a process group of its own (see the daemon's
    // dial); `sh -c` may have forked ssh rather than exec'd it.
    let group = child
        .id()
        .and_then(|p| rustix::process::Pid::from_raw(p as i32));
    tokio::spawn(async move {
        let status = tokio::select! {
            status = child.wait() => status,
            _ = kill_rx => {
                // SIGTERM first, while the leader is unreaped and so the
                // group id cannot have been reused: ssh exits cleanly.
                if let Some(g) = group {
                    let _ = rustix::process::kill_process_group(g, rustix::process::Signal::TERM);
                }
                match tokio::time::timeout(Duration::from_millis(500), child.wait()).await {
                    Ok(status) => status,
                    Err(_) => {
                        let _ = child.start_kill();
                        child.wait().await
                    }
                }
            }
        };
        let _ = exit_tx.send(status);
    });
    (Some(kill_tx), Some(exit_rx))
}

/// One packet from the tun to the stream buffer. Anything that is not
/// IPv4 or IPv6 (by its version nibble) is dropped.
fn encapsulate(link: &mut StreamLink, packet: &[u8], out: &mut Vec<u8>) {
    let version = match packet.first().map(|b| b >> 4) {
        Some(4) => IpVersion::V4,
        Some(6) => IpVersion::V6,
        _ => return,
    };
    // false = that NCP is not open (yet); the packet is dropped, as pppd does.
    let _ = link.encapsulate(version, packet, out);
}

fn describe_exit(status: io::Result<ExitStatus>) -> String {
    match status {
        Ok(s) => match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
            (Some(c), _) => format!("exited with status {c}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            _ => "exited".into(),
        },
        Err(e) => format!("wait failed: {e}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_reasons_map_to_exit_codes() {
        assert_eq!(
            describe_down(&DownReason::PeerTerminated("bye".into())),
            ("peer terminated: bye".into(), 0)
        );
        assert_eq!(describe_down(&DownReason::AdminClose).1, EXIT_NORMAL);
        assert_eq!(describe_down(&DownReason::EchoTimeout).1, EXIT_LINK_FAILED);
        assert_eq!(
            describe_down(&DownReason::NegotiationFailed("IPCP")).0,
            "IPCP negotiation failed"
        );
    }

    #[test]
    fn link_local_address_from_interface_identifier() {
        // pppd's log of a real session: "local  LL address fe80::6441:6fd5:c640:6ccf".
        let id = [0x64, 0x41, 0x6f, 0xd5, 0xc6, 0x40, 0x6c, 0xcf];
        let addr = link_local_address(&id);
        assert_eq!(addr.to_string(), "fe80::6441:6fd5:c640:6ccf");
        assert!(addr.is_unicast_link_local());
        assert_eq!(&addr.octets()[8..], &id);
        // The same address as the engine's pppd-style text, which writes
        // every group with four digits ("0487"); ip(8) and `status` show
        // the RFC 5952 form.
        let id = [0xd9, 0x11, 0x45, 0xf9, 0x04, 0x87, 0x4f, 0x84];
        let text = tsunagi_ppp::ipv6cp::link_local_text(&id);
        assert_eq!(text, "fe80::d911:45f9:0487:4f84");
        assert_eq!(text.parse::<Ipv6Addr>().unwrap(), link_local_address(&id));
        assert_eq!(
            link_local_address(&id).to_string(),
            "fe80::d911:45f9:487:4f84"
        );
        // Zero groups fold into the "::" (RFC 5952 s4.2).
        assert_eq!(
            link_local_address(&[0, 0, 0, 0, 0, 0, 0, 1]).to_string(),
            "fe80::1"
        );
        assert_eq!(
            link_local_address(&[0x02, 0, 0, 0, 0, 0, 0, 0x02]).to_string(),
            "fe80::200:0:0:2"
        );
    }

    #[test]
    fn fcs_names_are_the_config_values() {
        assert_eq!(fcs_name(FcsMode::Fcs16), "16");
        assert_eq!(fcs_name(FcsMode::Null), "null");
    }

    #[tokio::test]
    async fn fd_stream_moves_bytes_both_ways() {
        let (a_read, b_write) = std::io::pipe().unwrap();
        let (b_read, a_write) = std::io::pipe().unwrap();
        let mut a = Stream::from_fds(OwnedFd::from(a_read), OwnedFd::from(a_write)).unwrap();
        let mut b = Stream::from_fds(OwnedFd::from(b_read), OwnedFd::from(b_write)).unwrap();
        // More than a pipe holds, so both writers must wait for the reader.
        let data: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        let d2 = data.clone();
        let writer = tokio::spawn(async move {
            a.writer.write_all(&d2).await.unwrap();
            drop(a.writer);
            a.reader
        });
        let mut got = Vec::new();
        b.reader.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, data);
        let mut a_reader = writer.await.unwrap();
        b.writer.write_all(b"back").await.unwrap();
        drop(b.writer);
        let mut back = Vec::new();
        a_reader.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"back");
    }

    #[test]
    fn regular_files_are_refused() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let f = std::fs::File::open("/etc/passwd").unwrap();
            let g = std::fs::File::open("/etc/passwd").unwrap();
            let e = Stream::from_fds(f.into(), g.into())
                .err()
                .expect("regular file accepted");
            assert!(e.to_string().contains("pipe, socket or tty"), "{e}");
        });
    }
}
