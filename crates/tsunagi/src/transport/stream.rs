//! The byte-stream transport: one PPP session over the SSH byte stream of
//! a site link (the device command's stdio, or the fds `tsunagi direct`
//! passed), async HDLC around the engine ([`StreamLink`]), and the link's
//! own tun.
//!
//! The engine is sans-IO; this is the loop around it, in the calling order
//! the engine documents: after every input drain `poll_transmit` and
//! `poll_event`, then re-arm the timer from `poll_timeout`. Address and
//! route changes go to the session's netconf worker ([`crate::netconf`])
//! and are never waited for; `status` is answered from the engine when
//! asked ([`Command::Snapshot`]), so the data path takes no lock.
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
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::process::ExitStatus;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::process::Child;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};
use tsunagi_crypto::OsRandom;
use tsunagi_host::offload::{segment_tcp, MAX_OFFLOAD_PACKET};
use tsunagi_host::Tun;
use tsunagi_ppp::ipcp::Ipv4Prefix;
use tsunagi_ppp::link::{Event, IpVersion, Link, LinkConfig, Phase};
use tsunagi_ppp::stream::StreamLink;

use crate::auth::{AuthGuard, AuthSource, Credentials};
use crate::capture::{Direction, Tap};
use crate::config::LinkSettings;
use crate::control::{Counters, Response};
use crate::netconf::{Change, Netconf, SessionNet, SessionNetconf};
use crate::registry::{Command, Registry};
use crate::session::{phase_name, random_seed, EndReason, SessionEnd, SessionInfo};
use crate::transport::site::{create_tun, ncp_event, SiteSession};
use crate::transport::timers::sleep_until;

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
/// Drop control frames (counted by the engine) while this much waits to be
/// written: a peer that sends and never reads must not grow the buffer.
pub const MAX_UNSENT: usize = 2 * WRITE_HIGH_WATER;
/// How long a Terminate-Request exchange may take on hangup or shutdown.
pub const CLOSE_WAIT: Duration = Duration::from_secs(3);
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

/// What a session needs from its supervisor.
pub struct SessionCtx<'a> {
    /// The link's settings.
    pub settings: &'a LinkSettings,
    /// Secrets and password read at start-up.
    pub credentials: &'a Credentials,
    /// Daemon-wide authentication failure limiter.
    pub guard: &'a AuthGuard,
    /// Where the peer is, for `status`, auth log lines and the limiter:
    /// a direct caller's claimed ssh client address and its uid, or the
    /// dial target.
    pub source: AuthSource,
    /// The peer's outer address when known (the ssh client of a direct
    /// caller): a full tunnel keeps it on its old next hop.
    pub outer_ip: Option<Ipv4Addr>,
    /// Every profile and session.
    pub registry: &'a Registry,
    /// Address and route changes.
    pub netconf: &'a Netconf,
    /// Commands for this link (status, hangup, a second `direct`).
    pub commands: &'a mut mpsc::Receiver<Command>,
    /// Becomes true when the daemon stops.
    pub shutdown: watch::Receiver<bool>,
    /// "ssh" or "direct" (pppd's tty argument of the hooks).
    pub tty: &'static str,
}

/// Run one session over `stream` until the link is down. Never panics on
/// what the peer sends; every failure becomes a [`SessionEnd`].
pub async fn run_session(ctx: SessionCtx<'_>, stream: Stream) -> SessionEnd {
    let name = ctx.settings.name.as_str();
    let tun = match create_tun(ctx.settings) {
        Ok(t) => t,
        Err(e) => {
            warn!("{name}: cannot create tun {}: {e}", ctx.settings.tun);
            return SessionEnd::new(EndReason::SetupFailed(format!(
                "cannot create tun {}: {e}",
                ctx.settings.tun
            )));
        }
    };
    let mut config = ctx.credentials.link_config(ctx.settings);
    if config.ipcp.remote.is_none() {
        // The peer chooses its own address: not one of this host's
        // networks or addresses.
        match ctx.netconf.netlink().reserved_for_peer_of(tun.name()).await {
            Ok(nets) => {
                config.ipcp.refused_remote = nets
                    .into_iter()
                    .map(|n| Ipv4Prefix {
                        addr: n.addr,
                        len: n.prefix,
                    })
                    .collect()
            }
            Err(e) => warn!(
                "{name}: cannot list this host's networks ({e}): only non-unicast addresses and ours are refused to the peer"
            ),
        }
    }
    let id = ctx.registry.open_session(name);
    let info = SessionInfo::new(id, name, name.to_string(), ctx.source.clone(), tun.name())
        .audited(ctx.registry.audit(), ctx.tty);
    let netconf = ctx.netconf.open(SessionNet::site(
        ctx.settings,
        tun.name(),
        ctx.tty,
        ctx.outer_ip,
    ));
    // Its packets for `tsunagi capture`.
    let tap = ctx.registry.tap(name).unwrap_or_default();
    let mut session = Session {
        ctx,
        config: Some(config),
        tun,
        info,
        netconf,
        tun_mtu: None,
        max_send: usize::from(tsunagi_ppp::lcp::DEFAULT_MRU),
        segment_scratch: Vec::new(),
        tap,
    };
    let end = session.run(stream).await;
    let Session {
        ctx,
        netconf,
        tun,
        info,
        ..
    } = session;
    // Addresses, routes and ip-down before the tun goes: dropping it
    // removes the device and what remains of its routes.
    netconf.finish().await;
    drop(tun);
    ctx.registry.end_session(&info, &end.reason, None);
    end
}

struct Session<'a> {
    ctx: SessionCtx<'a>,
    /// The engine's configuration, until the engine starts.
    config: Option<LinkConfig>,
    tun: Tun,
    /// What `status` shows besides the engine's state.
    info: SessionInfo,
    /// This session's address and route changes.
    netconf: SessionNetconf,
    /// The MTU set while LCP is open (the first NCP to open brings the
    /// tun up).
    tun_mtu: Option<u32>,
    /// The peer's MRU: the longest packet one frame may carry.
    max_send: usize,
    /// Where [`segment_tcp`] builds segments of a too-long super-packet.
    segment_scratch: Vec<u8>,
    /// The profile's capture point.
    tap: Tap,
}

impl Session<'_> {
    async fn run(&mut self, stream: Stream) -> SessionEnd {
        let Stream {
            mut reader,
            mut writer,
            mut child,
        } = stream;
        let name = self.ctx.settings.name.clone();
        let config = self
            .config
            .take()
            .unwrap_or_else(|| self.ctx.credentials.link_config(self.ctx.settings));
        let mut link = StreamLink::new(Link::new(config, random_seed(), OsRandom::handle()));
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
        let mut ending: Option<(EndReason, Instant)> = None;
        // The stream or the device ended; becomes `ending` once the engine
        // has said what it makes of that (see below).
        let mut stream_end: Option<(EndReason, Instant)> = None;
        // Set while a Terminate-Request exchange runs (hangup, shutdown).
        let mut closing: Option<(bool, Instant)> = None;
        let mut stream_eof = false;
        let mut write_failed = false;
        // The device process is waited for in its own task: polling
        // `Child::wait` in the loop below would cost a waitpid per wake-up.
        // Dropping `_kill_device` at the end of the session kills it.
        let (_kill_device, mut device_exit) = watch_device(child.take());
        let mut child_done = device_exit.is_none();
        let mut shutdown_seen = *self.ctx.shutdown.borrow();
        if shutdown_seen {
            link.close(Instant::now(), "daemon shutting down");
            closing = Some((false, Instant::now() + CLOSE_WAIT));
        }

        loop {
            if out.len() - written < MAX_UNSENT {
                link.poll_transmit(&mut out);
            } else {
                let dropped = link.discard_transmit();
                if dropped > 0 {
                    debug!("{name}: the peer does not read: {dropped} control frames dropped");
                }
            }
            // Before the link events: a failure is logged before the
            // "link down" it causes.
            while let Some(event) = link.poll_auth_event() {
                self.info.auth_event(event, self.ctx.guard);
            }
            while let Some(event) = link.poll_event() {
                if let Event::Down(reason) = event {
                    // "stream lost" says less than why we know it was lost
                    // (the device's exit status); a Terminate-Request the
                    // peer sent before says more than either.
                    let lower = stream_end.take().map(|(why, _)| why);
                    let end = self.info.end_for(reason, lower);
                    info!("{name}: link down: {end}");
                    ending.get_or_insert((end, Instant::now() + FLUSH_WAIT));
                } else {
                    self.handle_event(event, &name, &link);
                }
            }
            if let Some(end) = stream_end.take() {
                ending.get_or_insert(end);
            }
            if let Some((end, flush_until)) = &ending {
                if written == out.len() || write_failed || Instant::now() >= *flush_until {
                    // An administrator's hangup or the daemon's shutdown
                    // is why, whatever the Terminate exchange came to.
                    let reason = match closing {
                        Some((true, _)) => EndReason::Hangup,
                        Some((false, _)) => EndReason::Shutdown,
                        None => end.clone(),
                    };
                    self.info.final_counters = Some(Counters::from(link.stats()));
                    return SessionEnd {
                        reason,
                        up_for: self.info.up_for(),
                    };
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
            let stop_timer = sleep_until(stop_at);
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
                            let tap = &self.tap;
                            let errors = &mut self.info.tun_errors;
                            let mut delivered = false;
                            link.handle_input(now, &rbuf[..n], &mut |_version, packet| {
                                tap.packet(Direction::In, packet);
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
                            stream_end.get_or_insert((EndReason::TransportLost(why), now + FLUSH_WAIT));
                        }
                        Err(e) => {
                            warn!("{name}: stream read: {e}");
                            stream_eof = true;
                            link.lower_down(now);
                            stream_end.get_or_insert((EndReason::TransportLost(format!("stream read error: {e}")), now));
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
                            stream_end.get_or_insert((EndReason::TransportLost(why), now));
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
                            self.info.tun_errors += 1;
                        }
                        Err(e) => {
                            warn!("{name}: tun read: {e}");
                            let now = Instant::now();
                            link.close(now, "tun device failed");
                            ending.get_or_insert((EndReason::TunFailed(format!("read: {e}")), now + FLUSH_WAIT));
                        }
                    }
                }
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
                    stream_end.get_or_insert((EndReason::TransportLost(format!("device {why}")), now + FLUSH_WAIT));
                }
                cmd = self.ctx.commands.recv() => {
                    match cmd {
                        Some(Command::Snapshot(reply)) => {
                            let _ = reply.send(vec![self.info.status(&link, Instant::now())]);
                        }
                        Some(Command::ServerStatus(_) | Command::IpsecStatus(_)) => {}
                        Some(Command::Hangup(reply)) => {
                            info!("{name}: hangup requested");
                            link.close(Instant::now(), "Administrative hangup");
                            closing.get_or_insert((true, Instant::now() + CLOSE_WAIT));
                            let _ = reply.send(Response::Done { message: format!("{name}: closing") });
                        }
                        Some(Command::Kick(id, reply)) if id == self.info.id => {
                            info!("{name}: session {id} kicked");
                            link.close(Instant::now(), "Administrative hangup");
                            closing.get_or_insert((true, Instant::now() + CLOSE_WAIT));
                            let _ = reply.send(Response::Done { message: format!("{name}: closing session {id}") });
                        }
                        Some(Command::Kick(id, reply)) => {
                            let _ = reply.send(Response::Refused { message: format!("no session {id} on {name}") });
                        }
                        Some(Command::Dial(reply)) => {
                            let _ = reply.send(Response::Done { message: format!("{name}: already connected") });
                        }
                        Some(Command::Attach(attach)) => {
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
                        info!("{name}: no Terminate-Ack within {}s, closing anyway", CLOSE_WAIT.as_secs());
                        // Replaced by the hangup or shutdown that closed it.
                        ending = Some((EndReason::ClosedByUs, Instant::now()));
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
                    self.info.tun_errors += 1;
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
        let tap = &self.tap;
        match got.gso {
            Some(segment) if packet.len() > self.max_send => {
                let cut = segment_tcp(
                    packet,
                    usize::from(segment),
                    &mut self.segment_scratch,
                    &mut |seg| encapsulate(link, seg, out, tap),
                );
                if cut.is_err() {
                    self.info.tun_errors += 1;
                }
            }
            _ => encapsulate(link, packet, out, tap),
        }
    }

    /// Acts on one engine event other than the link going down: the
    /// tun's MTU and TSO here, addresses, routes and hooks through netconf.
    fn handle_event(&mut self, event: Event, name: &str, link: &StreamLink) {
        let mtu = match &event {
            Event::Phase(p) => {
                debug!("{name}: phase {}", phase_name(*p));
                if !matches!(p, Phase::Authenticate | Phase::Network) {
                    // LCP may open again with other MRUs.
                    self.tun_mtu = None;
                }
                return;
            }
            Event::Ipv6Up { local_id, peer_id } => {
                info!(
                    "{name}: IPV6CP: up, local id {} peer id {}",
                    hex(local_id),
                    hex(peer_id)
                );
                self.tun_up(link.status().peer_mru)
            }
            Event::Ipv4Up { .. } => self.tun_up(link.status().peer_mru),
            _ => self.tun_mtu.unwrap_or(0),
        };
        let session = SiteSession {
            name,
            usepeerdns: self.ctx.settings.usepeerdns,
            info: &mut self.info,
            netconf: &self.netconf,
        };
        ncp_event(event, session, mtu);
    }

    /// The tun's MTU once an NCP opens (set by netconf with the tun up,
    /// the first time while LCP is open). The MTU is the configured one,
    /// else the smaller of our MRU and the peer's: a packet the peer
    /// cannot receive must not leave the tun whole; on an offload-mode tun
    /// at most [`OFFLOAD_MTU`], and TSO goes on when the peer's MRU takes
    /// super-packets (see the module docs).
    fn tun_up(&mut self, peer_mru: u16) -> u32 {
        if let Some(mtu) = self.tun_mtu {
            return mtu;
        }
        let s = self.ctx.settings;
        let name = &s.name;
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
                Ok(()) if tso => info!("{name}: {}: TSO on (peer mru {peer_mru})", self.tun.name()),
                Ok(()) => {}
                Err(e) => warn!("{name}: {}: {e}", self.tun.name()),
            }
        }
        let mtu = u32::from(mtu);
        self.netconf.send(Change::LinkUp { mtu });
        self.tun_mtu = Some(mtu);
        mtu
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

/// One packet from the tun to the stream buffer (and to `tap` once
/// framed). Anything that is not IPv4 or IPv6 (by its version nibble) is
/// dropped.
fn encapsulate(link: &mut StreamLink, packet: &[u8], out: &mut Vec<u8>, tap: &Tap) {
    let version = match packet.first().map(|b| b >> 4) {
        Some(4) => IpVersion::V4,
        Some(6) => IpVersion::V6,
        _ => return,
    };
    // false = that NCP is not open (yet); the packet is dropped, as pppd does.
    if link.encapsulate(version, packet, out) {
        tap.packet(Direction::Out, packet);
    }
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
