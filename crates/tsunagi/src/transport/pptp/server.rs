//! The PPTP server's port (what pptpd does): the TCP 1723 listener, the
//! control connections on it, and one raw GRE socket shared by every call,
//! behind [`PacketPort`] so that the server transport
//! ([`crate::transport::datagram`]) runs the PPP sessions, the pool and the
//! shared tun.
//!
//! In RFC 2637's terms the server is the PAC: a client (the PNS: Windows,
//! pptp-linux) opens a control connection and places an outgoing call;
//! each call the server accepts becomes one session ([`PortEvent::Open`]).
//!
//! - Control connections: each has a reader task that only moves bytes
//!   (into one bounded queue shared by all) and a writer task behind a
//!   small bounded queue; the engines ([`Connection`]) live here, in the
//!   server's task. A message that does not parse (the PoPToP bug class,
//!   CVE-2003-0213: a Length of 0, 1 or 0xffff) closes that connection with
//!   a log line naming the field, and only its calls end.
//! - GRE: datagrams are read by the batch (`recvmmsg`) and demultiplexed
//!   by Call ID (ours, unique across the server, drawn at random) and then
//!   checked against the call's peer address: an unknown call id or a
//!   datagram from another address is dropped and counted, as are
//!   datagrams that do not parse. Frames leave by the batch (`sendmmsg`),
//!   flushed once per wake-up of the server.
//! - Limits against peers that never authenticate: control connections in
//!   total ([`PptpLimits::connections`]) and per address, a connection
//!   must place its call within [`CALL_WAIT`], and one whose calls are over
//!   is closed after [`IDLE_WAIT`]; a peer that does not read its control
//!   connection is cut off rather than buffered for.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tracing::{debug, info, warn};
use tsunagi_host::gre::{GreSocket, RecvBatch, SendBatch};
use tsunagi_pptp::connection::{
    ClearReason, CloseReason, Connection, ConnectionConfig, ConnectionEvent, ControlState, Role,
};
use tsunagi_pptp::control::{DisconnectResult, GeneralError, OutgoingCallResult, StopReason};
use tsunagi_pptp::gre::GreHeader;
use tsunagi_pptp::window::{CallWindow, Received};

use super::gre_path::{describe, push_ack, push_frame, GRE_RCVBUF};
use crate::logging::{Admit, RateLimit, LOG_BUDGET, LOG_KEYS, LOG_WINDOW};
use crate::session::{random_seed, EndReason};
use crate::transport::datagram::{PacketPort, PortEvent};
use crate::transport::timers::{fired, sleep_until, TimerHeap};

/// A fresh control connection must have placed its call by then.
pub const CALL_WAIT: Duration = Duration::from_secs(30);
/// A control connection whose calls are all over is closed after this.
pub const IDLE_WAIT: Duration = Duration::from_secs(10);
/// Control messages queued to one connection's writer before the peer is
/// taken as not reading (it is then cut off).
pub const WRITE_QUEUE: usize = 16;
/// Reads queued from all control connections together.
pub const READ_QUEUE: usize = 256;
/// Octets read from a control connection at a time.
const CONTROL_READ: usize = 4096;
/// How long a call whose session ended stays up before its
/// Call-Disconnect-Notify: the session's last frames (the Terminate-Ack to
/// the client's Terminate-Request) travel on GRE, the notification on TCP,
/// and pptp-linux, on the notification, stops copying GRE to its pppd. A
/// pppd that misses the Terminate-Ack reports a modem hangup instead of
/// what ended the link (an authentication failure exits with 19, a hangup
/// with 16). pptpd waits about as long: its pppd exits, then pptpctrl
/// notices.
pub const CLEAR_LINGER: Duration = Duration::from_millis(800);
/// Control octets one connection may send within [`FLOOD_WINDOW`]: a
/// client sends a few hundred in its life (Start-Control-Connection, the
/// call, an Echo-Request a minute); past this it is flooding, and it is
/// cut off before it takes the server's time from the other sessions.
pub const FLOOD_BYTES: usize = 64 * 1024;
/// The window of [`FLOOD_BYTES`].
pub const FLOOD_WINDOW: Duration = Duration::from_secs(10);

/// How many control connections the port takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PptpLimits {
    /// Control connections at once (pptpd's `connections` plus room for
    /// clients still authenticating).
    pub connections: usize,
    /// Control connections at once from one address (clients behind one
    /// NAT share it).
    pub per_address: usize,
    /// Calls at once (pptpd `connections`).
    pub calls: usize,
}

impl PptpLimits {
    /// The limits for pptpd's `connections`.
    pub fn for_sessions(sessions: usize) -> PptpLimits {
        PptpLimits {
            connections: sessions.saturating_add(32),
            per_address: 32,
            calls: sessions,
        }
    }
}

/// How the server transport names a call: the client's address and our
/// Call ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallKey {
    /// The client (the outer source address of its GRE).
    pub peer: Ipv4Addr,
    /// Our Call ID: the GRE Key of what the client sends.
    pub call_id: u16,
}

impl fmt::Display for CallKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} call {}", self.peer, self.call_id)
    }
}

/// What the port counted (not per session).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PptpCounters {
    /// Control connections accepted.
    pub connections: u64,
    /// Control connections refused at once (over a limit).
    pub refused: u64,
    /// Control connections closed for a message that did not parse.
    pub bad_messages: u64,
    /// Control connections cut off for sending too much ([`FLOOD_BYTES`]).
    pub floods: u64,
    /// Calls refused (over the limit).
    pub calls_refused: u64,
    /// GRE datagrams that did not parse.
    pub gre_malformed: u64,
    /// GRE datagrams for a Call ID no call has.
    pub gre_unknown_call: u64,
    /// GRE datagrams for a call, from another address than its client's.
    pub gre_wrong_peer: u64,
    /// GRE datagrams dropped because the kernel would not take them.
    pub gre_send_dropped: u64,
}

/// Bytes (or the end) from a control connection's reader task.
enum Inbound {
    Bytes(Vec<u8>),
    Eof,
    Error(io::Error),
}

/// One control connection.
struct Control {
    conn: Connection,
    peer: SocketAddrV4,
    writer: mpsc::Sender<Vec<u8>>,
    reader: AbortHandle,
    /// Our Call IDs of its calls.
    calls: Vec<u16>,
    /// When it had no call left (or was opened): it is closed once this is
    /// [`IDLE_WAIT`] (or [`CALL_WAIT`]) old.
    idle_since: Option<Instant>,
    /// Its call was ever connected (the first wait is [`CALL_WAIT`]).
    had_call: bool,
    /// The deadline in the timer heap.
    deadline: Option<Instant>,
    /// Control octets received since the start of the current
    /// [`FLOOD_WINDOW`].
    received: (Instant, usize),
}

/// One call.
struct Call {
    conn: u64,
    peer: Ipv4Addr,
    window: CallWindow,
    deadline: Option<Instant>,
}

/// What a rate-limited log line is about: its cause and the client's
/// address (a client that connects and sends garbage in a loop gets
/// [`LOG_BUDGET`] lines per [`LOG_WINDOW`], then a summary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct LogKey {
    cause: LogCause,
    peer: Ipv4Addr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum LogCause {
    Opened,
    Closed,
    BadMessage,
}

impl fmt::Display for LogKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.cause {
            LogCause::Opened => "control connections opened",
            LogCause::Closed => "control connections closed",
            LogCause::BadMessage => "control connections closed for bad messages or floods",
        };
        write!(f, "PPTP: {what} by {}", self.peer)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Conn(u64),
    Call(u16),
    /// A call's Call-Disconnect-Notify is due ([`CLEAR_LINGER`]).
    Clear(u16),
}

/// The port: see the module documentation.
pub struct PptpPort {
    name: String,
    listener: TcpListener,
    gre: GreSocket,
    limits: PptpLimits,
    host_name: String,
    conns: HashMap<u64, Control>,
    calls: HashMap<u16, Call>,
    /// Calls whose session ended, by Call ID: their control connection and
    /// the Call-Disconnect-Notify due after [`CLEAR_LINGER`].
    clearing: HashMap<u16, (u64, ClearReason)>,
    next_conn: u64,
    inbox_tx: mpsc::Sender<(u64, Inbound)>,
    inbox: mpsc::Receiver<(u64, Inbound)>,
    events: VecDeque<PortEvent<CallKey>>,
    recv: RecvBatch,
    /// The next datagram of `recv` to look at, and how many it holds.
    recv_at: usize,
    recv_len: usize,
    send: SendBatch,
    timers: TimerHeap<Timer>,
    counters: PptpCounters,
    log_limit: RateLimit<LogKey>,
}

impl PptpPort {
    /// Listens on TCP `listen`:1723 (all addresses when `None`) and opens
    /// the GRE socket (bound to `listen` when given). Needs root (a raw
    /// socket, a port below 1024).
    pub async fn bind(
        name: &str,
        listen: Option<Ipv4Addr>,
        limits: PptpLimits,
    ) -> io::Result<PptpPort> {
        let at = SocketAddrV4::new(listen.unwrap_or(Ipv4Addr::UNSPECIFIED), super::PPTP_PORT);
        let listener = TcpListener::bind(at)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on TCP {at}: {e}")))?;
        let gre = GreSocket::open()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot open the GRE socket: {e}")))?;
        if let Err(e) = gre.set_recv_buffer_size_force(GRE_RCVBUF) {
            warn!("{name}: PPTP: {e}");
        }
        if let Some(addr) = listen {
            gre.bind(addr).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot bind the GRE socket to {addr}: {e}"),
                )
            })?;
        }
        let (inbox_tx, inbox) = mpsc::channel(READ_QUEUE);
        Ok(PptpPort {
            name: name.to_string(),
            listener,
            gre,
            limits,
            host_name: super::host_name(),
            conns: HashMap::new(),
            calls: HashMap::new(),
            clearing: HashMap::new(),
            next_conn: 0,
            inbox_tx,
            inbox,
            events: VecDeque::new(),
            recv: RecvBatch::default(),
            recv_at: 0,
            recv_len: 0,
            send: SendBatch::default(),
            timers: TimerHeap::new(),
            counters: PptpCounters::default(),
            log_limit: RateLimit::new(LOG_BUDGET, LOG_WINDOW, LOG_KEYS),
        })
    }

    /// The TCP address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// What it counted so far.
    pub fn counters(&self) -> PptpCounters {
        let mut c = self.counters;
        c.gre_send_dropped = self.send.dropped();
        c
    }

    /// Writes `line` about `peer` unless its cause used its budget; the
    /// summaries of windows that ended first.
    fn log(&mut self, cause: LogCause, peer: Ipv4Addr, line: fmt::Arguments<'_>) {
        let now = Instant::now();
        self.log_summaries(now);
        if self.log_limit.admit(now, LogKey { cause, peer }) == Admit::Write {
            match cause {
                LogCause::BadMessage => warn!("{}: {line}", self.name),
                LogCause::Opened | LogCause::Closed => info!("{}: {line}", self.name),
            }
        }
    }

    fn log_summaries(&mut self, now: Instant) {
        for summary in self.log_limit.expire(now) {
            warn!("{}: {summary}", self.name);
        }
    }

    fn config(&self) -> ConnectionConfig {
        ConnectionConfig {
            host_name: self.host_name.clone(),
            ..ConnectionConfig::new(Role::Pac)
        }
    }

    /// A new TCP connection: counted against the limits, then its engine
    /// and its reader and writer tasks.
    fn accept(&mut self, stream: TcpStream, from: SocketAddr, now: Instant) {
        let SocketAddr::V4(peer) = from else {
            return;
        };
        let from_peer = self
            .conns
            .values()
            .filter(|c| c.peer.ip() == peer.ip())
            .count();
        if self.conns.len() >= self.limits.connections || from_peer >= self.limits.per_address {
            self.counters.refused += 1;
            debug!(
                "{}: PPTP: control connection from {peer} refused: {} open, {from_peer} from {}",
                self.name,
                self.conns.len(),
                peer.ip()
            );
            return;
        }
        let _ = stream.set_nodelay(true);
        let id = self.next_conn;
        self.next_conn += 1;
        self.counters.connections += 1;
        let (mut rd, mut wr) = stream.into_split();
        let inbox = self.inbox_tx.clone();
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; CONTROL_READ];
            loop {
                let msg = match rd.read(&mut buf).await {
                    Ok(0) => Inbound::Eof,
                    Ok(n) => Inbound::Bytes(buf[..n].to_vec()),
                    Err(e) => Inbound::Error(e),
                };
                let last = !matches!(msg, Inbound::Bytes(_));
                if inbox.send((id, msg)).await.is_err() || last {
                    return;
                }
            }
        })
        .abort_handle();
        let (writer, mut queue) = mpsc::channel::<Vec<u8>>(WRITE_QUEUE);
        tokio::spawn(async move {
            while let Some(bytes) = queue.recv().await {
                if wr.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            // The engine is done with it: FIN after the last message.
            let _ = wr.shutdown().await;
        });
        self.log(
            LogCause::Opened,
            *peer.ip(),
            format_args!("PPTP: control connection from {peer}"),
        );
        let conn = Connection::new(self.config(), now);
        self.conns.insert(
            id,
            Control {
                conn,
                peer,
                writer,
                reader,
                calls: Vec::new(),
                idle_since: Some(now),
                had_call: false,
                deadline: None,
                received: (now, 0),
            },
        );
        self.service_conn(id, now);
    }

    /// Input from a control connection's reader.
    fn inbound(&mut self, id: u64, msg: Inbound, now: Instant) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        match msg {
            Inbound::Bytes(bytes) => {
                if now.duration_since(c.received.0) >= FLOOD_WINDOW {
                    c.received = (now, 0);
                }
                c.received.1 += bytes.len();
                if c.received.1 > FLOOD_BYTES {
                    self.counters.floods += 1;
                    let why = format!(
                        "the client sent more than {} KiB of control messages within {} s (a flood): cut off",
                        FLOOD_BYTES / 1024,
                        FLOOD_WINDOW.as_secs()
                    );
                    self.close_conn(id, &why, true);
                    return;
                }
                c.conn.handle_bytes(now, &bytes)
            }
            Inbound::Eof => c.conn.handle_eof(now),
            Inbound::Error(e) => {
                debug!("{}: PPTP: {}: read: {e}", self.name, c.peer);
                c.conn.handle_eof(now);
            }
        }
        self.service_conn(id, now);
    }

    /// After a control engine was fed: act on its events, write what it
    /// queued, re-arm its timer; forget it once it closed.
    fn service_conn(&mut self, id: u64, now: Instant) {
        let name = self.name.clone();
        let mut closed = None;
        loop {
            let Some(c) = self.conns.get_mut(&id) else {
                return;
            };
            let Some(event) = c.conn.poll_event() else {
                break;
            };
            let peer = c.peer;
            match event {
                ConnectionEvent::Established {
                    peer_host_name,
                    peer_vendor,
                    ..
                } => info!(
                    "{name}: PPTP: {peer}: control connection up: client {peer_host_name:?} vendor {peer_vendor:?}"
                ),
                ConnectionEvent::CallRequested {
                    peer_call_id,
                    peer_recv_window,
                    ..
                } => self.call_requested(id, peer_call_id, peer_recv_window, now),
                ConnectionEvent::CallCleared { call_id, why, .. } => {
                    self.clearing.remove(&call_id);
                    info!("{name}: PPTP: {peer}: call {call_id} cleared by the client: {why}");
                    self.end_call(call_id, format!("PPTP: the client cleared the call: {why}"));
                }
                ConnectionEvent::Closed { why } => {
                    closed = Some((why.to_string(), matches!(why, CloseReason::BadMessage(_))));
                    break;
                }
                other => debug!("{name}: PPTP: {peer}: {other:?}"),
            }
        }
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let mut out = Vec::new();
        c.conn.poll_transmit(&mut out);
        if !out.is_empty() && c.writer.try_send(out).is_err() {
            // Its writer's queue is full: the peer does not read.
            closed.get_or_insert_with(|| {
                (
                    "the client does not read its control connection".into(),
                    false,
                )
            });
        }
        if let Some((why, bad)) = closed {
            self.close_conn(id, &why, bad);
            return;
        }
        let deadline = [
            c.conn.poll_timeout(),
            c.idle_since
                .map(|t| t + if c.had_call { IDLE_WAIT } else { CALL_WAIT }),
        ]
        .into_iter()
        .flatten()
        .min();
        self.timers.arm(&mut c.deadline, deadline, Timer::Conn(id));
    }

    /// A client asked for a call: accepted with a fresh Call ID, or
    /// refused when the server is full.
    fn call_requested(&mut self, id: u64, peer_call_id: u16, peer_window: u16, now: Instant) {
        let name = self.name.clone();
        let full = self.calls.len() >= self.limits.calls;
        let call_id = (!full).then(|| self.fresh_call_id());
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let peer = c.peer;
        let Some(call_id) = call_id else {
            self.counters.calls_refused += 1;
            warn!(
                "{name}: PPTP: {peer}: call refused: {} calls, the limit",
                self.calls.len()
            );
            c.conn.refuse_call(
                now,
                peer_call_id,
                OutgoingCallResult::Busy,
                GeneralError::None,
            );
            return;
        };
        c.conn.accept_call(now, peer_call_id, call_id);
        c.calls.push(call_id);
        c.idle_since = None;
        c.had_call = true;
        info!(
            "{name}: PPTP: {peer}: call {call_id} accepted (client call {peer_call_id}, its window {peer_window})"
        );
        self.calls.insert(
            call_id,
            Call {
                conn: id,
                peer: *peer.ip(),
                window: CallWindow::new(peer_call_id, c.conn.config().recv_window, peer_window),
                deadline: None,
            },
        );
        self.events.push_back(PortEvent::Open {
            key: CallKey {
                peer: *peer.ip(),
                call_id,
            },
            peer: IpAddr::V4(*peer.ip()),
            outer: peer.to_string(),
        });
    }

    /// A Call ID no call has: random (the GRE Key a blind sender must
    /// guess), never 0.
    fn fresh_call_id(&self) -> u16 {
        loop {
            let id = random_seed() as u16;
            if id != 0 && !self.calls.contains_key(&id) && !self.clearing.contains_key(&id) {
                return id;
            }
        }
    }

    /// The call is over from the control side: its session is told.
    fn end_call(&mut self, call_id: u16, why: String) {
        let Some(call) = self.calls.remove(&call_id) else {
            return;
        };
        if let Some(c) = self.conns.get_mut(&call.conn) {
            c.calls.retain(|&x| x != call_id);
            if c.calls.is_empty() {
                c.idle_since = Some(Instant::now());
            }
        }
        self.events.push_back(PortEvent::Closed {
            key: CallKey {
                peer: call.peer,
                call_id,
            },
            why,
        });
    }

    /// Forgets a control connection (its tasks end, TCP closes) and ends
    /// its calls.
    fn close_conn(&mut self, id: u64, why: &str, bad_message: bool) {
        let Some(c) = self.conns.remove(&id) else {
            return;
        };
        let cause = if bad_message {
            self.counters.bad_messages += 1;
            LogCause::BadMessage
        } else {
            LogCause::Closed
        };
        self.log(
            cause,
            *c.peer.ip(),
            format_args!("PPTP: {}: control connection closed: {why}", c.peer),
        );
        c.reader.abort();
        // Dropping the writer's queue ends its task after what it holds.
        drop(c.writer);
        for call_id in c.calls {
            if let Some(call) = self.calls.remove(&call_id) {
                self.events.push_back(PortEvent::Closed {
                    key: CallKey {
                        peer: call.peer,
                        call_id,
                    },
                    why: format!("PPTP: control connection closed: {why}"),
                });
            }
        }
    }

    /// Sends the Call-Disconnect-Notify of a call whose session ended.
    fn clear_call(&mut self, conn: u64, call_id: u16, clear: ClearReason, now: Instant) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.calls.retain(|&x| x != call_id);
        if c.calls.is_empty() {
            c.idle_since = Some(now);
        }
        c.conn.clear_call(now, call_id, clear);
        self.service_conn(conn, now);
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some((at, timer)) = self.timers.pop_due(now) {
            match timer {
                Timer::Conn(id) => {
                    let Some(c) = self.conns.get_mut(&id) else {
                        continue;
                    };
                    if !fired(&mut c.deadline, at) {
                        continue;
                    }
                    if c.conn.poll_timeout().is_some_and(|t| t <= now) {
                        c.conn.handle_timeout(now);
                    }
                    if let Some(since) = c.idle_since {
                        let wait = if c.had_call { IDLE_WAIT } else { CALL_WAIT };
                        if now >= since + wait && c.conn.state() != ControlState::Closed {
                            debug!(
                                "{}: PPTP: {}: no call for {}s: stopping the control connection",
                                self.name,
                                c.peer,
                                wait.as_secs()
                            );
                            c.conn.stop(now, StopReason::None);
                            c.idle_since = None;
                        }
                    }
                    self.service_conn(id, now);
                }
                Timer::Call(call_id) => {
                    let Some(call) = self.calls.get_mut(&call_id) else {
                        continue;
                    };
                    if !fired(&mut call.deadline, at) {
                        continue;
                    }
                    if let Some(ack) = call.window.poll_ack(now) {
                        push_ack(&mut self.send, call.peer, &ack);
                    }
                    self.arm_call(call_id);
                }
                Timer::Clear(call_id) => {
                    if let Some((conn, clear)) = self.clearing.remove(&call_id) {
                        self.clear_call(conn, call_id, clear, now);
                    }
                }
            }
        }
    }

    fn arm_call(&mut self, call_id: u16) {
        if let Some(call) = self.calls.get_mut(&call_id) {
            arm(&mut self.timers, call_id, call);
        }
    }

    /// The next GRE datagram of the batch that carries a frame for a
    /// session (copied to the start of `buf`), if any.
    fn next_frame(&mut self, buf: &mut [u8], now: Instant) -> Option<PortEvent<CallKey>> {
        while self.recv_at < self.recv_len {
            let i = self.recv_at;
            self.recv_at += 1;
            let Some(datagram) = self.recv.get(i) else {
                continue;
            };
            let source = datagram.source;
            let parsed = datagram
                .payload()
                .and_then(|gre| GreHeader::parse_with_payload(gre).ok());
            let Some((header, payload)) = parsed else {
                self.counters.gre_malformed += 1;
                debug!("{}: GRE from {source}: malformed", self.name);
                continue;
            };
            let Some(call) = self.calls.get_mut(&header.call_id) else {
                self.counters.gre_unknown_call += 1;
                debug!(
                    "{}: GRE from {source} for unknown call {}",
                    self.name, header.call_id
                );
                continue;
            };
            if call.peer != source {
                self.counters.gre_wrong_peer += 1;
                debug!(
                    "{}: GRE from {source} for call {} of {}: dropped",
                    self.name, header.call_id, call.peer
                );
                continue;
            }
            let verdict = call.window.receive(now, &header);
            let call_id = header.call_id;
            let peer = call.peer;
            arm(&mut self.timers, call_id, call);
            if let Received::Deliver { .. } = verdict {
                let len = payload.len().min(buf.len());
                buf[..len].copy_from_slice(&payload[..len]);
                return Some(PortEvent::Frame {
                    key: CallKey { peer, call_id },
                    len,
                });
            }
        }
        None
    }
}

/// Puts `call`'s next acknowledgement deadline in the timer heap.
fn arm(timers: &mut TimerHeap<Timer>, call_id: u16, call: &mut Call) {
    timers.arm(
        &mut call.deadline,
        call.window.poll_timeout(),
        Timer::Call(call_id),
    );
}

impl PacketPort for PptpPort {
    type Key = CallKey;

    fn headroom(&self) -> usize {
        // The GRE header's length depends on the acknowledgement riding
        // along: the frame is copied into the send batch behind it.
        0
    }

    async fn recv(&mut self, buf: &mut [u8]) -> io::Result<PortEvent<CallKey>> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Ok(event);
            }
            let now = Instant::now();
            if let Some(event) = self.next_frame(buf, now) {
                return Ok(event);
            }
            // Acknowledgements due from the datagrams just read.
            self.flush();
            let next = self
                .timers
                .peek()
                .into_iter()
                .chain(self.log_limit.poll_at())
                .min();
            let sleep = sleep_until(next);
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, from)) => self.accept(stream, from, Instant::now()),
                    Err(e) => {
                        warn!("{}: PPTP: accept: {e}", self.name);
                        // Out of descriptors: the connection stays queued;
                        // do not spin on it.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some((id, msg)) = self.inbox.recv() => self.inbound(id, msg, Instant::now()),
                got = self.gre.recv_batch(&mut self.recv) => {
                    self.recv_at = 0;
                    self.recv_len = got?;
                }
                () = sleep => {
                    let now = Instant::now();
                    self.log_summaries(now);
                    self.fire_timers(now);
                }
            }
        }
    }

    fn send(&mut self, key: &CallKey, datagram: &mut [u8]) -> io::Result<()> {
        let Some(call) = self.calls.get_mut(&key.call_id) else {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                format!("no call {}", key.call_id),
            ));
        };
        push_frame(
            &mut self.send,
            call.peer,
            &mut call.window,
            Instant::now(),
            &[],
            datagram,
        );
        if self.send.is_full() {
            self.flush();
        }
        Ok(())
    }

    fn closed(&mut self, key: &CallKey, reason: &EndReason) {
        let Some(call) = self.calls.remove(&key.call_id) else {
            return;
        };
        let now = Instant::now();
        let conn = call.conn;
        // The session's last frames leave before the notification.
        self.flush();
        // Call-Disconnect-Notify (RFC 2637 section 2.13), the session's
        // end as its Call Statistics text.
        let result = match reason {
            EndReason::Hangup | EndReason::Shutdown | EndReason::Reconfigured => {
                DisconnectResult::AdminShutdown
            }
            _ => DisconnectResult::LostCarrier,
        };
        let clear = ClearReason {
            call_statistics: reason.to_string(),
            ..ClearReason::with_result(result)
        };
        if matches!(reason, EndReason::Shutdown) {
            self.clear_call(conn, key.call_id, clear, now);
        } else {
            self.clearing.insert(key.call_id, (conn, clear));
            self.timers
                .push(now + CLEAR_LINGER, Timer::Clear(key.call_id));
        }
    }

    fn has_pending(&self) -> bool {
        self.recv_at < self.recv_len
    }

    fn flush(&mut self) {
        if self.send.is_empty() {
            return;
        }
        if let Err(e) = self.gre.flush(&mut self.send) {
            debug!("{}: {e}", self.name);
        }
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let c = self.counters();
        vec![
            ("control_connections", c.connections),
            ("control_refused", c.refused),
            ("control_bad_messages", c.bad_messages),
            ("control_floods", c.floods),
            ("calls_refused", c.calls_refused),
            ("gre_malformed", c.gre_malformed),
            ("gre_unknown_call", c.gre_unknown_call),
            ("gre_wrong_peer", c.gre_wrong_peer),
            ("gre_send_dropped", c.gre_send_dropped),
        ]
    }

    fn describe(&self, key: &CallKey) -> Option<String> {
        let call = self.calls.get(&key.call_id)?;
        Some(describe(key.call_id, &call.window))
    }
}
