//! One PPTP control connection, in either role, sans-IO (RFC 2637 section 3).
//!
//! In deployments the client (pptp-linux, the built-in clients of Windows,
//! macOS, Android) is the PNS and the server (pptpd, accel-ppp, a router)
//! is the PAC: the client opens TCP port 1723, sends
//! Start-Control-Connection-Request and places one Outgoing-Call-Request;
//! the server answers both. [`Role::Pac`] is the server side, [`Role::Pns`]
//! the client side. The TCP originator is the one that sends
//! Start-Control-Connection-Request (section 3.1.1); here that is always the
//! PNS, and the PAC is the receiver (section 3.1.2).
//!
//! # Calling order
//!
//! As in quinn-proto: after [`Connection::new`] and after every `handle_*`
//! or command (`place_call`, `accept_call`, `refuse_call`, `clear_call`,
//! `set_link_info`, `stop`), drain [`Connection::poll_transmit`] (write the
//! octets to the TCP socket) and [`Connection::poll_event`] until they
//! return `false` / `None`, and re-arm the timer from
//! [`Connection::poll_timeout`]; when it fires call
//! [`Connection::handle_timeout`]. After [`ConnectionEvent::Closed`], write
//! what `poll_transmit` still gives (a last reply) and close the socket:
//! the connection is over, and so is every call on it ("all active user
//! calls are implicitly cleared", section 2.3); no per-call event follows.
//!
//! # What the peer can do to it
//!
//! Octets go through a [`ControlReader`]: a malformed message (bad Length,
//! PPTP Message Type, Magic Cookie, Control Message Type) closes the
//! connection at once with [`CloseReason::BadMessage`] naming the field
//! (section 1.4: "Loss of synchronization must result in immediate closing
//! of the control connection's TCP session"); nothing is sent back to a
//! peer that sends garbage. A well-formed message that is not expected in
//! the current state is counted ([`ConnectionCounters::unexpected_messages`])
//! and answered where the RFC gives an answer (an Outgoing-Call-Request or
//! Echo-Request before the connection is established gets the General Error
//! "Not-Connected", section 2.16; an Incoming-Call-Request gets "Do Not
//! Accept"), otherwise ignored; only a peer that has the roles backwards
//! (a Start-Control-Connection-Request to a PNS, a Reply to a PAC) is closed
//! on ([`CloseReason::UnexpectedMessage`]). Octets waiting for
//! `poll_transmit` are bounded ([`MAX_TRANSMIT_BACKLOG`]).
//!
//! # Timers (section 3.1.4 and 3.2.1)
//!
//! - Not established within `reply_timeout` (60 s in the RFC): closed.
//! - Established and nothing received for `echo_interval` (60 s): an
//!   Echo-Request; no Echo-Reply within `reply_timeout`: closed.
//! - A PNS call waiting for Outgoing-Call-Reply or Call-Disconnect-Notify
//!   longer than `reply_timeout`: "the ENTIRE CONTROL CONNECTION should be
//!   closed" (section 3.2.1): Stop-Control-Connection-Request, then closed.
//! - A PAC call the daemon has not answered (`accept_call` / `refuse_call`)
//!   within `reply_timeout`: Outgoing-Call-Reply "Time-out" (section
//!   3.2.4.1, wait_cs_ans: "If a timer expires on an outbound call, send back
//!   an Outgoing-Call-Reply with a non-zero Error Code").
//! - Stop-Control-Connection-Reply not within `reply_timeout`: closed.
//!
//! # Call IDs
//!
//! Our call ids are the caller's (the daemon draws them at random and keeps
//! them unique across connections; section 3.2.2). The engine maps the
//! peer's ids to ours, refuses an Outgoing-Call-Request whose Call ID is
//! already in use on this connection (General Error, Bad-Call ID) and one
//! beyond `max_calls` (General Error, No-Resource).
//!
//! Which Call ID a Call-Disconnect-Notify carries is not agreed in the
//! field: RFC 2637 says the PAC's (pptpd sends that), accel-ppp sends the
//! PNS's, and pptp-linux looks the PNS's up. We send the PAC's and accept
//! either; Call-Clear-Request and Set-Link-Info likewise.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use crate::control::{
    CallClearRequest, CallDisconnectNotify, ControlError, ControlReader, DisconnectResult,
    EchoReply, EchoRequest, EchoResult, GeneralError, IncomingCallReply, IncomingCallResult,
    Message, OutgoingCallReply, OutgoingCallRequest, OutgoingCallResult, SetLinkInfo,
    StartControlConnectionReply, StartControlConnectionRequest, StartResult,
    StopControlConnectionReply, StopControlConnectionRequest, StopReason, StopResult, Text128,
    Text64, WanErrors, BEARER_ANALOG, BEARER_DIGITAL, FRAMING_ASYNC, FRAMING_SYNC,
    PROTOCOL_VERSION,
};

/// Which end of the control connection we are (RFC 2637 section 1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// PPTP Access Concentrator: the server side (pptpd). Answers
    /// Start-Control-Connection-Request and Outgoing-Call-Request.
    Pac,
    /// PPTP Network Server: the client side (pptp-linux, Windows). Sends
    /// Start-Control-Connection-Request and places outgoing calls.
    Pns,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Pac => "PAC",
            Role::Pns => "PNS",
        })
    }
}

/// Octets waiting for [`Connection::poll_transmit`] at most; beyond, the
/// connection closes ([`CloseReason::TransmitBacklog`]): a driver that
/// cannot write to the peer must not let the peer's requests grow memory.
pub const MAX_TRANSMIT_BACKLOG: usize = 64 * 1024;

/// Firmware Revision we send (section 2.1: "the version of the PNS PPTP
/// driver" or the PAC's firmware).
pub const FIRMWARE_REVISION: u16 = 0x0001;

/// Minimum BPS of our Outgoing-Call-Requests (as pptp-linux).
pub const MINIMUM_BPS: u32 = 2400;
/// Maximum BPS of our Outgoing-Call-Requests.
pub const MAXIMUM_BPS: u32 = 100_000_000;

/// What a connection needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionConfig {
    /// PAC (server) or PNS (client).
    pub role: Role,
    /// Host Name we send (cut to 64 octets).
    pub host_name: String,
    /// Vendor String we send (cut to 64 octets).
    pub vendor: String,
    /// Silence after which an Echo-Request goes out (section 3.1.4: 60 s).
    /// Zero: no keepalive.
    pub echo_interval: Duration,
    /// How long a reply may take (section 3: "If an expected reply does not
    /// arrive within 60 seconds, the control connection is closed").
    pub reply_timeout: Duration,
    /// Packet Recv. Window Size we announce for each call.
    pub recv_window: u16,
    /// Calls at once on this connection (PAC: more Outgoing-Call-Requests
    /// are refused; PNS: `place_call` refuses). A PAC also sends it as
    /// Maximum Channels.
    pub max_calls: u16,
    /// Packet Processing Delay we announce, in tenths of a second.
    pub processing_delay: u16,
}

impl ConnectionConfig {
    /// The defaults for `role`: the RFC's 60 s timers, a receive window of
    /// 64 packets, one call per connection (what pptp-linux and Windows
    /// place), processing delay 0.1 s (we may hold an acknowledgement that
    /// long, [`crate::window::ACK_DELAY`]).
    pub fn new(role: Role) -> ConnectionConfig {
        ConnectionConfig {
            role,
            host_name: "tsunagi".to_string(),
            vendor: "tsunagi".to_string(),
            echo_interval: Duration::from_secs(60),
            reply_timeout: Duration::from_secs(60),
            recv_window: 64,
            max_calls: 1,
            processing_delay: 1,
        }
    }
}

impl Default for ConnectionConfig {
    /// [`ConnectionConfig::new`] for a PAC.
    fn default() -> Self {
        ConnectionConfig::new(Role::Pac)
    }
}

/// Control connection states (RFC 2637 sections 3.1.1 and 3.1.2), with the
/// RFC's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlState {
    /// idle: the PAC (receiver) waits for Start-Control-Connection-Request.
    Idle,
    /// wait_ctl_reply: the PNS (originator) sent the Request and waits for
    /// Start-Control-Connection-Reply.
    WaitCtlReply,
    /// established.
    Established,
    /// wait_stop_reply: we sent Stop-Control-Connection-Request.
    WaitStopReply,
    /// The connection is over (the RFC's idle after closing TCP).
    Closed,
}

impl fmt::Display for ControlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ControlState::Idle => "idle",
            ControlState::WaitCtlReply => "wait_ctl_reply",
            ControlState::Established => "established",
            ControlState::WaitStopReply => "wait_stop_reply",
            ControlState::Closed => "closed",
        })
    }
}

/// Outgoing call states, with the RFC's names: the PAC's of section 3.2.4.1
/// and the PNS's of section 3.2.4.2 (idle is a call that does not exist).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallState {
    /// PAC wait_cs_ans: the Outgoing-Call-Request arrived
    /// ([`ConnectionEvent::CallRequested`]) and waits for
    /// [`Connection::accept_call`] or [`Connection::refuse_call`].
    WaitCsAns,
    /// PNS wait_reply: Outgoing-Call-Request sent.
    WaitReply,
    /// established (either role).
    Established,
    /// PNS wait_disconnect: Call-Clear-Request sent, waiting for
    /// Call-Disconnect-Notify.
    WaitDisconnect,
}

impl fmt::Display for CallState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CallState::WaitCsAns => "wait_cs_ans",
            CallState::WaitReply => "wait_reply",
            CallState::Established => "established",
            CallState::WaitDisconnect => "wait_disconnect",
        })
    }
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEnd {
    /// PAC: the PNS sent Call-Clear-Request; we answered with
    /// Call-Disconnect-Notify (Result Request).
    PeerCleared,
    /// PNS: the PAC sent Call-Disconnect-Notify, on its own or (`requested`)
    /// answering our Call-Clear-Request.
    Disconnected {
        /// Result Code.
        result: DisconnectResult,
        /// Error Code.
        error: GeneralError,
        /// Cause Code.
        cause_code: u16,
        /// Call Statistics (escaped text).
        call_statistics: String,
        /// It answered our Call-Clear-Request.
        requested: bool,
    },
    /// PAC: the daemon did not answer the Outgoing-Call-Request within the
    /// reply timeout; we sent Outgoing-Call-Reply "Time-out".
    NotAnswered,
}

impl fmt::Display for CallEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallEnd::PeerCleared => f.write_str("the peer cleared the call (Call-Clear-Request)"),
            CallEnd::Disconnected {
                result,
                error,
                cause_code,
                call_statistics,
                requested,
            } => {
                if *requested {
                    f.write_str("cleared at our request: ")?;
                } else {
                    f.write_str("the peer disconnected the call: ")?;
                }
                write!(f, "result {result}")?;
                if *error != GeneralError::None {
                    write!(f, ", error {error}")?;
                }
                if *cause_code != 0 {
                    write!(f, ", cause {cause_code}")?;
                }
                if !call_statistics.is_empty() {
                    write!(f, ", statistics \"{call_statistics}\"")?;
                }
                Ok(())
            }
            CallEnd::NotAnswered => {
                f.write_str("the call request was not answered in time (Time-out sent)")
            }
        }
    }
}

/// Why the control connection closed. `Display` says it in an operator's
/// words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer sent Stop-Control-Connection-Request (we replied).
    PeerStopped {
        /// Its Reason field.
        reason: StopReason,
    },
    /// We stopped it ([`Connection::stop`]).
    WeStopped {
        /// The Reason we sent.
        reason: StopReason,
        /// The peer answered with Stop-Control-Connection-Reply (else it
        /// did not within the reply timeout, or closed TCP first).
        peer_replied: bool,
    },
    /// A malformed control message (or the stream ended inside one).
    BadMessage(ControlError),
    /// No Echo-Reply within the reply timeout.
    EchoTimeout,
    /// The peer closed the TCP connection.
    PeerClosedTcp,
    /// An expected message did not come within the reply timeout.
    ReplyTimeout {
        /// The message that did not come.
        waiting_for: &'static str,
    },
    /// The peer sent a message that cannot come in this state from a peer
    /// in its role.
    UnexpectedMessage {
        /// The message.
        what: &'static str,
        /// Our state.
        state: ControlState,
    },
    /// PNS: the PAC refused the control connection.
    StartRefused {
        /// Result Code of its Start-Control-Connection-Reply.
        result: StartResult,
        /// Error Code.
        error: GeneralError,
    },
    /// The peer speaks a protocol version we do not (section 3.1).
    UnsupportedVersion {
        /// Its Protocol Version.
        version: u16,
    },
    /// More than [`MAX_TRANSMIT_BACKLOG`] octets waited for
    /// `poll_transmit`.
    TransmitBacklog {
        /// Octets waiting.
        octets: usize,
    },
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::PeerStopped { reason } => write!(
                f,
                "the peer stopped the control connection (Stop-Control-Connection-Request, reason {reason})"
            ),
            CloseReason::WeStopped {
                reason,
                peer_replied,
            } => write!(
                f,
                "we stopped the control connection (reason {reason}); {}",
                if *peer_replied {
                    "the peer replied"
                } else {
                    "the peer did not reply"
                }
            ),
            CloseReason::BadMessage(e) => write!(f, "bad control message from the peer: {e}"),
            CloseReason::EchoTimeout => f.write_str(
                "the peer did not answer our Echo-Request: the control connection is dead",
            ),
            CloseReason::PeerClosedTcp => f.write_str("the peer closed the TCP connection"),
            CloseReason::ReplyTimeout { waiting_for } => {
                write!(f, "no {waiting_for} from the peer within the reply timeout")
            }
            CloseReason::UnexpectedMessage { what, state } => write!(
                f,
                "the peer sent {what} while the control connection was {state}"
            ),
            CloseReason::StartRefused { result, error } => {
                write!(f, "the peer refused the control connection: result {result}")?;
                if *error != GeneralError::None {
                    write!(f, ", error {error}")?;
                }
                Ok(())
            }
            CloseReason::UnsupportedVersion { version } => write!(
                f,
                "the peer speaks PPTP version {}.{}; we speak 1.0",
                version >> 8,
                version & 0xff
            ),
            CloseReason::TransmitBacklog { octets } => write!(
                f,
                "{octets} octets waited to be sent to the peer: it does not read"
            ),
        }
    }
}

/// What the connection tells its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionEvent {
    /// Start-Control-Connection-Request and -Reply were exchanged.
    Established {
        /// The peer's Host Name (escaped text).
        peer_host_name: String,
        /// The peer's Vendor String (escaped text).
        peer_vendor: String,
        /// The peer's Protocol Version.
        peer_protocol_version: u16,
        /// The peer's Firmware Revision.
        peer_firmware: u16,
    },
    /// PAC: the PNS asks for a call (Outgoing-Call-Request). Answer with
    /// [`Connection::accept_call`] or [`Connection::refuse_call`].
    CallRequested {
        /// The PNS's Call ID (what our GRE packets carry).
        peer_call_id: u16,
        /// Call Serial Number.
        serial: u16,
        /// Minimum BPS.
        min_bps: u32,
        /// Maximum BPS.
        max_bps: u32,
        /// Packet Recv. Window Size of the PNS.
        peer_recv_window: u16,
        /// Packet Processing Delay of the PNS (tenths of a second).
        peer_processing_delay: u16,
        /// Phone Number (escaped text).
        phone_number: String,
    },
    /// PNS: the PAC connected our call (Outgoing-Call-Reply, Connected).
    CallConnected {
        /// Our Call ID.
        call_id: u16,
        /// The PAC's Call ID (what our GRE packets carry).
        peer_call_id: u16,
        /// Packet Recv. Window Size of the PAC.
        peer_recv_window: u16,
    },
    /// PNS: the PAC refused our call (Outgoing-Call-Reply with another
    /// result); the call is gone.
    CallRefused {
        /// Our Call ID.
        call_id: u16,
        /// Result Code.
        result: OutgoingCallResult,
        /// Error Code.
        error: GeneralError,
        /// Cause Code.
        cause_code: u16,
    },
    /// A connected call ended by the peer's doing (PAC: Call-Clear-Request,
    /// answered; PNS: Call-Disconnect-Notify). Not sent for calls ended by
    /// [`Connection::clear_call`] on a PAC (done at once) nor when the
    /// connection closes.
    CallCleared {
        /// Our Call ID.
        call_id: u16,
        /// The peer's Call ID.
        peer_call_id: u16,
        /// How it ended.
        why: CallEnd,
    },
    /// PAC: a call the PNS requested ended before `accept_call` or
    /// `refuse_call` answered it (the PNS cleared it, or it was not
    /// answered in time); forget the request.
    CallWithdrawn {
        /// The PNS's Call ID from [`ConnectionEvent::CallRequested`].
        peer_call_id: u16,
        /// [`CallEnd::PeerCleared`] or [`CallEnd::NotAnswered`].
        why: CallEnd,
    },
    /// Set-Link-Info for one of our calls (section 2.15).
    LinkInfo {
        /// Our Call ID.
        call_id: u16,
        /// Send ACCM.
        send_accm: u32,
        /// Receive ACCM.
        recv_accm: u32,
    },
    /// PNS: WAN-Error-Notify for one of our calls (section 2.14).
    WanError {
        /// Our Call ID.
        call_id: u16,
        /// The PAC's cumulative counters.
        errors: WanErrors,
    },
    /// The connection is over, and every call on it.
    Closed {
        /// Why.
        why: CloseReason,
    },
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The control connection is not established.
    #[error("the control connection is {state}, not established")]
    NotEstablished {
        /// Its state.
        state: ControlState,
    },
    /// The other role does this.
    #[error("a {role} does not {operation}")]
    WrongRole {
        /// Our role.
        role: Role,
        /// What was asked.
        operation: &'static str,
    },
    /// The call id is already used on this connection.
    #[error("call id {call_id} is already in use")]
    CallIdInUse {
        /// The call id.
        call_id: u16,
    },
    /// `max_calls` calls exist.
    #[error("{max_calls} calls already (max_calls)")]
    TooManyCalls {
        /// The limit.
        max_calls: u16,
    },
    /// No such call.
    #[error("no call with call id {call_id}")]
    UnknownCall {
        /// The call id.
        call_id: u16,
    },
}

/// Counters for `tsunagi status` and for misbehaving peers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionCounters {
    /// Control messages received (well-formed).
    pub messages_received: u64,
    /// Control messages sent.
    pub messages_sent: u64,
    /// Well-formed messages not expected in the state or role (ignored or
    /// answered with an error).
    pub unexpected_messages: u64,
    /// Echo-Requests sent.
    pub echo_requests_sent: u64,
    /// Echo-Replies received that matched our request.
    pub echo_replies_received: u64,
    /// Echo-Requests received (answered).
    pub echo_requests_received: u64,
    /// PAC: Outgoing-Call-Requests received; PNS: sent.
    pub calls_requested: u64,
    /// Calls that reached established.
    pub calls_connected: u64,
    /// Calls refused (either side).
    pub calls_refused: u64,
    /// Established calls cleared (either side).
    pub calls_cleared: u64,
}

#[derive(Debug, Clone)]
struct Call {
    /// Ours (PAC: from accept_call; PNS: from place_call).
    call_id: Option<u16>,
    /// The peer's (PAC: from the request; PNS: from the reply).
    peer_call_id: Option<u16>,
    state: CallState,
    /// When the state must have changed.
    deadline: Option<Instant>,
    /// PAC: the request's Maximum BPS, echoed as Connect Speed.
    max_bps: u32,
}

/// One control connection (see the module docs).
#[derive(Debug)]
pub struct Connection {
    config: ConnectionConfig,
    state: ControlState,
    reader: ControlReader,
    transmit: Vec<u8>,
    events: VecDeque<ConnectionEvent>,
    calls: Vec<Call>,
    /// Idle / WaitCtlReply / WaitStopReply deadline.
    deadline: Option<Instant>,
    /// Last time a message arrived (Established: the echo timer counts from
    /// it).
    last_heard: Instant,
    /// Our outstanding Echo-Request: identifier and when it went out.
    echo_outstanding: Option<(u32, Instant)>,
    next_echo_id: u32,
    /// The reason of our Stop-Control-Connection-Request, and what to report
    /// when the connection then closes.
    stopping: Option<(StopReason, Option<CloseReason>)>,
    counters: ConnectionCounters,
}

impl Connection {
    /// A new connection over a TCP connection that just opened. A PNS
    /// queues Start-Control-Connection-Request (wait_ctl_reply); a PAC
    /// waits for one (idle). Either waits `reply_timeout` at most.
    pub fn new(config: ConnectionConfig, now: Instant) -> Connection {
        let mut c = Connection {
            state: ControlState::Idle,
            reader: ControlReader::new(),
            transmit: Vec::new(),
            events: VecDeque::new(),
            calls: Vec::new(),
            deadline: Some(now + config.reply_timeout),
            last_heard: now,
            echo_outstanding: None,
            next_echo_id: 1,
            stopping: None,
            counters: ConnectionCounters::default(),
            config,
        };
        if c.config.role == Role::Pns {
            let request = Message::StartControlConnectionRequest(StartControlConnectionRequest {
                protocol_version: PROTOCOL_VERSION,
                framing_capabilities: FRAMING_ASYNC | FRAMING_SYNC,
                bearer_capabilities: BEARER_ANALOG | BEARER_DIGITAL,
                maximum_channels: 0,
                firmware_revision: FIRMWARE_REVISION,
                host_name: Text64::new(&c.config.host_name),
                vendor_string: Text64::new(&c.config.vendor),
            });
            c.send(&request);
            c.state = ControlState::WaitCtlReply;
        }
        c
    }

    /// Octets that arrived on the TCP connection (one read, any size).
    pub fn handle_bytes(&mut self, now: Instant, bytes: &[u8]) {
        if self.state == ControlState::Closed {
            return;
        }
        self.reader.push(bytes);
        while self.state != ControlState::Closed {
            match self.reader.pop() {
                None => break,
                Some(Err(e)) => {
                    tracing::warn!("pptp {}: bad control message: {}", self.config.role, e);
                    self.close(CloseReason::BadMessage(e));
                }
                Some(Ok(message)) => self.handle_message(now, message),
            }
        }
    }

    /// The peer closed its side of the TCP connection.
    pub fn handle_eof(&mut self, _now: Instant) {
        match self.state {
            ControlState::Closed => {}
            ControlState::WaitStopReply => {
                let why = self.stop_close_reason(false);
                self.close(why);
            }
            _ => match self.reader.finish() {
                Err(e) => self.close(CloseReason::BadMessage(e)),
                Ok(()) => self.close(CloseReason::PeerClosedTcp),
            },
        }
    }

    /// A deadline from [`Connection::poll_timeout`] passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == ControlState::Closed {
            return;
        }
        if self.deadline.is_some_and(|d| d <= now) {
            self.deadline = None;
            match self.state {
                ControlState::Idle => {
                    return self.close(CloseReason::ReplyTimeout {
                        waiting_for: "Start-Control-Connection-Request",
                    })
                }
                ControlState::WaitCtlReply => {
                    return self.close(CloseReason::ReplyTimeout {
                        waiting_for: "Start-Control-Connection-Reply",
                    })
                }
                ControlState::WaitStopReply => {
                    let why = self.stop_close_reason(false);
                    return self.close(why);
                }
                ControlState::Established | ControlState::Closed => {}
            }
        }
        if self.state == ControlState::Established {
            if let Some((_, sent)) = self.echo_outstanding {
                if sent + self.config.reply_timeout <= now {
                    tracing::info!(
                        "pptp {}: no Echo-Reply within {:?}",
                        self.config.role,
                        self.config.reply_timeout
                    );
                    return self.close(CloseReason::EchoTimeout);
                }
            } else if !self.config.echo_interval.is_zero()
                && self.last_heard + self.config.echo_interval <= now
            {
                let identifier = self.next_echo_id;
                self.next_echo_id = self.next_echo_id.wrapping_add(1);
                self.echo_outstanding = Some((identifier, now));
                self.counters.echo_requests_sent += 1;
                self.send(&Message::EchoRequest(EchoRequest { identifier }));
            }
        }
        self.call_timeouts(now);
    }

    /// The next time [`Connection::handle_timeout`] must run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == ControlState::Closed {
            return None;
        }
        let mut next = self.deadline;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        if self.state == ControlState::Established {
            match self.echo_outstanding {
                Some((_, sent)) => consider(Some(sent + self.config.reply_timeout)),
                None if !self.config.echo_interval.is_zero() => {
                    consider(Some(self.last_heard + self.config.echo_interval))
                }
                None => {}
            }
        }
        for call in &self.calls {
            consider(call.deadline);
        }
        next
    }

    /// Appends the octets to write to the TCP connection to `out`; `false`
    /// when there are none.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        if self.transmit.is_empty() {
            return false;
        }
        out.extend_from_slice(&self.transmit);
        self.transmit.clear();
        true
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ConnectionEvent> {
        self.events.pop_front()
    }

    /// PNS: places an outgoing call (Outgoing-Call-Request) with our
    /// `call_id` and Call Serial Number `serial`. The answer comes as
    /// [`ConnectionEvent::CallConnected`] or [`ConnectionEvent::CallRefused`].
    pub fn place_call(&mut self, now: Instant, call_id: u16, serial: u16) -> Result<(), CallError> {
        self.check_command(Role::Pns, "place calls")?;
        if self.find_by_ours(call_id).is_some() {
            return Err(CallError::CallIdInUse { call_id });
        }
        if self.calls.len() >= usize::from(self.config.max_calls) {
            return Err(CallError::TooManyCalls {
                max_calls: self.config.max_calls,
            });
        }
        self.calls.push(Call {
            call_id: Some(call_id),
            peer_call_id: None,
            state: CallState::WaitReply,
            deadline: Some(now + self.config.reply_timeout),
            max_bps: MAXIMUM_BPS,
        });
        self.counters.calls_requested += 1;
        self.send(&Message::OutgoingCallRequest(OutgoingCallRequest {
            call_id,
            call_serial_number: serial,
            minimum_bps: MINIMUM_BPS,
            maximum_bps: MAXIMUM_BPS,
            bearer_type: BEARER_ANALOG | BEARER_DIGITAL,
            framing_type: FRAMING_ASYNC | FRAMING_SYNC,
            packet_recv_window_size: self.config.recv_window,
            packet_processing_delay: self.config.processing_delay,
            phone_number_length: 0,
            phone_number: Text64::EMPTY,
            subaddress: Text64::EMPTY,
        }));
        Ok(())
    }

    /// PAC: connects the call the PNS requested with `peer_call_id`
    /// ([`ConnectionEvent::CallRequested`]) under our `call_id`:
    /// Outgoing-Call-Reply, Result Connected. The call is then established.
    /// A request that no longer waits (withdrawn, or not ours) is ignored;
    /// a `call_id` already in use on this connection refuses the call
    /// (General Error, No-Resource) instead.
    pub fn accept_call(&mut self, now: Instant, peer_call_id: u16, call_id: u16) {
        let _ = now;
        if self.check_command(Role::Pac, "accept calls").is_err() {
            tracing::warn!(
                "pptp {}: accept_call({peer_call_id}) in state {}: ignored",
                self.config.role,
                self.state
            );
            return;
        }
        let Some(i) = self.pending_request(peer_call_id) else {
            tracing::warn!(
                "pptp {}: accept_call: no call request from peer call id {peer_call_id}",
                self.config.role
            );
            return;
        };
        if self.find_by_ours(call_id).is_some() {
            tracing::warn!(
                "pptp {}: accept_call: call id {call_id} already in use: refusing the call",
                self.config.role
            );
            return self.refuse_call(
                now,
                peer_call_id,
                OutgoingCallResult::GeneralError,
                GeneralError::NoResource,
            );
        }
        let call = &mut self.calls[i];
        call.call_id = Some(call_id);
        call.state = CallState::Established;
        call.deadline = None;
        let connect_speed = call.max_bps;
        self.counters.calls_connected += 1;
        tracing::info!(
            "pptp {}: call {call_id} connected (peer call id {peer_call_id})",
            self.config.role
        );
        self.send(&Message::OutgoingCallReply(OutgoingCallReply {
            call_id,
            peer_call_id,
            result_code: OutgoingCallResult::Connected,
            error_code: GeneralError::None,
            cause_code: 0,
            connect_speed,
            packet_recv_window_size: self.config.recv_window,
            packet_processing_delay: self.config.processing_delay,
            physical_channel_id: 0,
        }));
    }

    /// PAC: refuses the call the PNS requested with `peer_call_id`:
    /// Outgoing-Call-Reply with `result` (not Connected) and `error` (the
    /// General Error Code, for `result` General Error; else
    /// [`GeneralError::None`]).
    pub fn refuse_call(
        &mut self,
        now: Instant,
        peer_call_id: u16,
        result: OutgoingCallResult,
        error: GeneralError,
    ) {
        let _ = now;
        if self.check_command(Role::Pac, "refuse calls").is_err() {
            return;
        }
        let Some(i) = self.pending_request(peer_call_id) else {
            tracing::warn!(
                "pptp {}: refuse_call: no call request from peer call id {peer_call_id}",
                self.config.role
            );
            return;
        };
        self.calls.remove(i);
        let result = if result == OutgoingCallResult::Connected {
            OutgoingCallResult::GeneralError
        } else {
            result
        };
        self.send_refusal(peer_call_id, result, error);
    }

    /// Ends a call. PNS: Call-Clear-Request, then
    /// [`ConnectionEvent::CallCleared`] when the PAC's Call-Disconnect-Notify
    /// comes. PAC: Call-Disconnect-Notify with `reason`, and the call is gone
    /// at once (no event).
    pub fn clear_call(&mut self, now: Instant, call_id: u16, reason: ClearReason) {
        if self.state != ControlState::Established {
            return;
        }
        let Some(i) = self.find_by_ours(call_id) else {
            tracing::warn!(
                "pptp {}: clear_call: no call with call id {call_id}",
                self.config.role
            );
            return;
        };
        match self.config.role {
            Role::Pac => {
                let call = self.calls.remove(i);
                self.counters.calls_cleared += 1;
                tracing::info!(
                    "pptp {}: call {call_id} cleared by us: {}",
                    self.config.role,
                    reason.result
                );
                let _ = call;
                self.send_disconnect_notify(call_id, &reason);
            }
            Role::Pns => {
                let call = &mut self.calls[i];
                if call.state == CallState::WaitDisconnect {
                    return;
                }
                call.state = CallState::WaitDisconnect;
                call.deadline = Some(now + self.config.reply_timeout);
                self.send(&Message::CallClearRequest(CallClearRequest { call_id }));
            }
        }
    }

    /// PNS: Set-Link-Info for our call `call_id` (section 2.15): the ACCMs
    /// PPP negotiated, for a PAC that frames asynchronously.
    pub fn set_link_info(
        &mut self,
        now: Instant,
        call_id: u16,
        send_accm: u32,
        recv_accm: u32,
    ) -> Result<(), CallError> {
        let _ = now;
        self.check_command(Role::Pns, "send Set-Link-Info")?;
        let i = self
            .find_by_ours(call_id)
            .ok_or(CallError::UnknownCall { call_id })?;
        let Some(peer_call_id) = self.calls[i].peer_call_id else {
            return Err(CallError::UnknownCall { call_id });
        };
        self.send(&Message::SetLinkInfo(SetLinkInfo {
            peer_call_id,
            send_accm,
            receive_accm: recv_accm,
        }));
        Ok(())
    }

    /// Stops the control connection: established, every call is cleared
    /// (PAC: Call-Disconnect-Notify "Admin Shutdown"; PNS:
    /// Call-Clear-Request), then Stop-Control-Connection-Request, and
    /// [`ConnectionEvent::Closed`] when the peer replies or the reply
    /// timeout passes. Not yet established: closed at once.
    pub fn stop(&mut self, now: Instant, reason: StopReason) {
        match self.state {
            ControlState::Closed | ControlState::WaitStopReply => {}
            ControlState::Idle | ControlState::WaitCtlReply => self.close(CloseReason::WeStopped {
                reason,
                peer_replied: false,
            }),
            ControlState::Established => self.send_stop(now, reason, None),
        }
    }

    /// The control connection's state.
    pub fn state(&self) -> ControlState {
        self.state
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.config.role
    }

    /// The configuration.
    pub fn config(&self) -> &ConnectionConfig {
        &self.config
    }

    /// What was counted.
    pub fn counters(&self) -> &ConnectionCounters {
        &self.counters
    }

    /// The state of our call `call_id`.
    pub fn call_state(&self, call_id: u16) -> Option<CallState> {
        self.find_by_ours(call_id).map(|i| self.calls[i].state)
    }

    /// The peer's Call ID of our call `call_id`, once known.
    pub fn peer_call_id(&self, call_id: u16) -> Option<u16> {
        self.find_by_ours(call_id)
            .and_then(|i| self.calls[i].peer_call_id)
    }

    /// Calls on this connection: (our call id, the peer's, state); an id
    /// not assigned yet is `None`.
    pub fn calls(&self) -> impl Iterator<Item = (Option<u16>, Option<u16>, CallState)> + '_ {
        self.calls
            .iter()
            .map(|c| (c.call_id, c.peer_call_id, c.state))
    }

    // ---- internals ----

    fn check_command(&self, role: Role, operation: &'static str) -> Result<(), CallError> {
        if self.config.role != role {
            return Err(CallError::WrongRole {
                role: self.config.role,
                operation,
            });
        }
        if self.state != ControlState::Established {
            return Err(CallError::NotEstablished { state: self.state });
        }
        Ok(())
    }

    fn find_by_ours(&self, call_id: u16) -> Option<usize> {
        self.calls.iter().position(|c| c.call_id == Some(call_id))
    }

    fn find_by_peers(&self, peer_call_id: u16) -> Option<usize> {
        self.calls
            .iter()
            .position(|c| c.peer_call_id == Some(peer_call_id))
    }

    /// The call a message names by an id that should be the peer's but
    /// may be ours (see the module docs).
    fn find_by_peers_or_ours(&self, id: u16) -> Option<usize> {
        self.find_by_peers(id).or_else(|| self.find_by_ours(id))
    }

    /// The call a message names by an id that should be ours but may be
    /// the peer's.
    fn find_by_ours_or_peers(&self, id: u16) -> Option<usize> {
        self.find_by_ours(id).or_else(|| self.find_by_peers(id))
    }

    fn pending_request(&self, peer_call_id: u16) -> Option<usize> {
        self.calls
            .iter()
            .position(|c| c.state == CallState::WaitCsAns && c.peer_call_id == Some(peer_call_id))
    }

    fn send(&mut self, message: &Message) {
        if self.state == ControlState::Closed {
            return;
        }
        tracing::debug!("pptp {}: sent [{}]", self.config.role, message);
        message.emit(&mut self.transmit);
        self.counters.messages_sent += 1;
        if self.transmit.len() > MAX_TRANSMIT_BACKLOG {
            let octets = self.transmit.len();
            self.transmit = Vec::new();
            self.close(CloseReason::TransmitBacklog { octets });
        }
    }

    fn send_refusal(&mut self, peer_call_id: u16, result: OutgoingCallResult, error: GeneralError) {
        self.counters.calls_refused += 1;
        tracing::info!(
            "pptp {}: call from peer call id {peer_call_id} refused: {result}",
            self.config.role
        );
        self.send(&Message::OutgoingCallReply(OutgoingCallReply {
            call_id: 0,
            peer_call_id,
            result_code: result,
            error_code: error,
            cause_code: 0,
            connect_speed: 0,
            packet_recv_window_size: self.config.recv_window,
            packet_processing_delay: self.config.processing_delay,
            physical_channel_id: 0,
        }));
    }

    fn send_disconnect_notify(&mut self, call_id: u16, reason: &ClearReason) {
        self.send(&Message::CallDisconnectNotify(CallDisconnectNotify {
            call_id,
            result_code: reason.result,
            error_code: reason.error,
            cause_code: reason.cause_code,
            call_statistics: Text128::new(&reason.call_statistics),
        }));
    }

    fn send_stop(&mut self, now: Instant, reason: StopReason, why: Option<CloseReason>) {
        // Section 2.3: "all active user calls are implicitly cleared"; say
        // so to the peer for each, as pptpd and pptp-linux do.
        let calls = std::mem::take(&mut self.calls);
        for call in calls {
            match (
                self.config.role,
                call.state,
                call.call_id,
                call.peer_call_id,
            ) {
                (Role::Pac, CallState::Established, Some(call_id), _) => {
                    self.send_disconnect_notify(call_id, &ClearReason::admin_shutdown())
                }
                (Role::Pns, CallState::Established, Some(call_id), _) => {
                    self.send(&Message::CallClearRequest(CallClearRequest { call_id }))
                }
                _ => {}
            }
        }
        if self.state == ControlState::Closed {
            return;
        }
        self.send(&Message::StopControlConnectionRequest(
            StopControlConnectionRequest { reason },
        ));
        if self.state == ControlState::Closed {
            return;
        }
        self.state = ControlState::WaitStopReply;
        self.deadline = Some(now + self.config.reply_timeout);
        self.echo_outstanding = None;
        self.stopping = Some((reason, why));
    }

    fn stop_close_reason(&mut self, peer_replied: bool) -> CloseReason {
        match self.stopping.take() {
            Some((_, Some(why))) => why,
            Some((reason, None)) => CloseReason::WeStopped {
                reason,
                peer_replied,
            },
            None => CloseReason::WeStopped {
                reason: StopReason::None,
                peer_replied,
            },
        }
    }

    fn close(&mut self, why: CloseReason) {
        if self.state == ControlState::Closed {
            return;
        }
        tracing::info!(
            "pptp {}: control connection closed: {}",
            self.config.role,
            why
        );
        self.state = ControlState::Closed;
        self.calls.clear();
        self.deadline = None;
        self.echo_outstanding = None;
        self.events.push_back(ConnectionEvent::Closed { why });
    }

    /// Queues an event, unless the connection closed meanwhile (a reply
    /// that overflowed the transmit backlog): nothing follows `Closed`.
    fn event(&mut self, event: ConnectionEvent) {
        if self.state != ControlState::Closed {
            self.events.push_back(event);
        }
    }

    fn unexpected(&mut self, message: &Message) {
        self.counters.unexpected_messages += 1;
        tracing::debug!(
            "pptp {}: {} not expected in state {}: ignored",
            self.config.role,
            message.name(),
            self.state
        );
    }

    fn call_timeouts(&mut self, now: Instant) {
        if self.state != ControlState::Established {
            return;
        }
        let expired: Vec<usize> = (0..self.calls.len())
            .filter(|&i| self.calls[i].deadline.is_some_and(|d| d <= now))
            .collect();
        for i in expired.into_iter().rev() {
            let call = self.calls[i].clone();
            match call.state {
                CallState::WaitCsAns => {
                    self.calls.remove(i);
                    let peer_call_id = call.peer_call_id.unwrap_or(0);
                    self.send_refusal(
                        peer_call_id,
                        OutgoingCallResult::TimeOut,
                        GeneralError::None,
                    );
                    self.event(ConnectionEvent::CallWithdrawn {
                        peer_call_id,
                        why: CallEnd::NotAnswered,
                    });
                }
                CallState::WaitReply | CallState::WaitDisconnect => {
                    let waiting_for = if call.state == CallState::WaitReply {
                        "Outgoing-Call-Reply"
                    } else {
                        "Call-Disconnect-Notify"
                    };
                    // Section 3.2.1: the whole control connection is suspect.
                    self.send_stop(
                        now,
                        StopReason::None,
                        Some(CloseReason::ReplyTimeout { waiting_for }),
                    );
                    return;
                }
                CallState::Established => {
                    self.calls[i].deadline = None;
                }
            }
        }
    }

    fn handle_message(&mut self, now: Instant, message: Message) {
        tracing::debug!("pptp {}: rcvd [{}]", self.config.role, message);
        self.counters.messages_received += 1;
        self.last_heard = now;
        match message {
            Message::StartControlConnectionRequest(m) => self.on_start_request(now, m),
            Message::StartControlConnectionReply(m) => self.on_start_reply(now, m),
            Message::StopControlConnectionRequest(m) => {
                self.send(&Message::StopControlConnectionReply(
                    StopControlConnectionReply {
                        result_code: StopResult::Ok,
                        error_code: GeneralError::None,
                    },
                ));
                let why = if self.state == ControlState::WaitStopReply {
                    self.stop_close_reason(true)
                } else {
                    CloseReason::PeerStopped { reason: m.reason }
                };
                self.close(why);
            }
            Message::StopControlConnectionReply(_) => {
                if self.state == ControlState::WaitStopReply {
                    let why = self.stop_close_reason(true);
                    self.close(why);
                } else {
                    self.unexpected(&Message::StopControlConnectionReply(
                        StopControlConnectionReply {
                            result_code: StopResult::Ok,
                            error_code: GeneralError::None,
                        },
                    ));
                }
            }
            Message::EchoRequest(m) => {
                self.counters.echo_requests_received += 1;
                let (result_code, error_code) = match self.state {
                    ControlState::Idle | ControlState::WaitCtlReply => {
                        (EchoResult::GeneralError, GeneralError::NotConnected)
                    }
                    _ => (EchoResult::Ok, GeneralError::None),
                };
                self.send(&Message::EchoReply(EchoReply {
                    identifier: m.identifier,
                    result_code,
                    error_code,
                }));
            }
            Message::EchoReply(m) => match self.echo_outstanding {
                Some((id, _)) if id == m.identifier => {
                    self.echo_outstanding = None;
                    self.counters.echo_replies_received += 1;
                }
                _ => self.unexpected(&Message::EchoReply(m)),
            },
            Message::OutgoingCallRequest(m) => self.on_call_request(now, m),
            Message::OutgoingCallReply(m) => self.on_call_reply(m),
            Message::IncomingCallRequest(m) => {
                self.counters.unexpected_messages += 1;
                if self.config.role == Role::Pns && self.state == ControlState::Established {
                    // Section 3.2.3.2: a request not acceptable is answered
                    // with Incoming-Call-Reply; we have no incoming calls.
                    self.send(&Message::IncomingCallReply(IncomingCallReply {
                        call_id: 0,
                        peer_call_id: m.call_id,
                        result_code: IncomingCallResult::DoNotAccept,
                        error_code: GeneralError::None,
                        packet_recv_window_size: self.config.recv_window,
                        packet_transmit_delay: self.config.processing_delay,
                    }));
                } else {
                    tracing::debug!(
                        "pptp {}: Incoming-Call-Request not expected: ignored",
                        self.config.role
                    );
                }
            }
            Message::CallClearRequest(m) => self.on_call_clear(m),
            Message::CallDisconnectNotify(m) => self.on_disconnect_notify(m),
            Message::WanErrorNotify(m) => {
                let call = (self.config.role == Role::Pns
                    && self.state == ControlState::Established)
                    .then(|| self.find_by_ours_or_peers(m.peer_call_id))
                    .flatten();
                match call.and_then(|i| self.calls[i].call_id) {
                    Some(call_id) => self.event(ConnectionEvent::WanError {
                        call_id,
                        errors: m.errors,
                    }),
                    None => self.unexpected(&Message::WanErrorNotify(m)),
                }
            }
            Message::SetLinkInfo(m) => {
                // Sent by the PNS with the PAC's Call ID; some PACs send it
                // too (pptp-linux has quirks for them). Accept either way.
                let call = (self.state == ControlState::Established)
                    .then(|| self.find_by_ours_or_peers(m.peer_call_id))
                    .flatten();
                match call.and_then(|i| self.calls[i].call_id) {
                    Some(call_id) => self.event(ConnectionEvent::LinkInfo {
                        call_id,
                        send_accm: m.send_accm,
                        recv_accm: m.receive_accm,
                    }),
                    None => self.unexpected(&Message::SetLinkInfo(m)),
                }
            }
            other @ (Message::IncomingCallReply(_) | Message::IncomingCallConnected(_)) => {
                // We never send Incoming-Call-Request.
                self.unexpected(&other);
            }
        }
    }

    fn on_start_request(&mut self, _now: Instant, m: StartControlConnectionRequest) {
        match (self.config.role, self.state) {
            (Role::Pac, ControlState::Idle) => {
                // Section 3.1.2: an earlier version we cannot support gets
                // a reply saying so and the connection closes; the same or a
                // later one gets our version and the connection is
                // established (the originator then decides).
                let supported = m.protocol_version >= PROTOCOL_VERSION;
                let result_code = if supported {
                    StartResult::Success
                } else {
                    StartResult::UnsupportedVersion
                };
                self.send(&Message::StartControlConnectionReply(
                    StartControlConnectionReply {
                        protocol_version: PROTOCOL_VERSION,
                        result_code,
                        error_code: GeneralError::None,
                        framing_capabilities: FRAMING_ASYNC | FRAMING_SYNC,
                        bearer_capabilities: BEARER_ANALOG | BEARER_DIGITAL,
                        maximum_channels: self.config.max_calls,
                        firmware_revision: FIRMWARE_REVISION,
                        host_name: Text64::new(&self.config.host_name),
                        vendor_string: Text64::new(&self.config.vendor),
                    },
                ));
                if !supported {
                    return self.close(CloseReason::UnsupportedVersion {
                        version: m.protocol_version,
                    });
                }
                self.establish(
                    m.host_name.text(),
                    m.vendor_string.text(),
                    m.protocol_version,
                    m.firmware_revision,
                );
            }
            (Role::Pac, ControlState::Established) => {
                // accel-ppp does the same: the channel exists.
                self.counters.unexpected_messages += 1;
                self.send(&Message::StartControlConnectionReply(
                    StartControlConnectionReply {
                        protocol_version: PROTOCOL_VERSION,
                        result_code: StartResult::ChannelExists,
                        error_code: GeneralError::None,
                        framing_capabilities: FRAMING_ASYNC | FRAMING_SYNC,
                        bearer_capabilities: BEARER_ANALOG | BEARER_DIGITAL,
                        maximum_channels: self.config.max_calls,
                        firmware_revision: FIRMWARE_REVISION,
                        host_name: Text64::new(&self.config.host_name),
                        vendor_string: Text64::new(&self.config.vendor),
                    },
                ));
            }
            (Role::Pns, _) => self.close(CloseReason::UnexpectedMessage {
                what: "Start-Control-Connection-Request",
                state: self.state,
            }),
            (Role::Pac, _) => self.unexpected(&Message::StartControlConnectionRequest(m)),
        }
    }

    fn on_start_reply(&mut self, now: Instant, m: StartControlConnectionReply) {
        match (self.config.role, self.state) {
            (Role::Pns, ControlState::WaitCtlReply) => {
                // pptp-linux takes Result Code 0 as success too ("feature
                // found in certain ADSL modems").
                let ok = matches!(
                    m.result_code,
                    StartResult::Success | StartResult::Unknown(0)
                );
                if !ok {
                    let why = if m.result_code == StartResult::UnsupportedVersion {
                        CloseReason::UnsupportedVersion {
                            version: m.protocol_version,
                        }
                    } else {
                        CloseReason::StartRefused {
                            result: m.result_code,
                            error: m.error_code,
                        }
                    };
                    return self.close(why);
                }
                if m.protocol_version != PROTOCOL_VERSION {
                    // Section 3.1.1: a version we do not support: Stop.
                    self.state = ControlState::Established;
                    return self.send_stop(
                        now,
                        StopReason::StopProtocol,
                        Some(CloseReason::UnsupportedVersion {
                            version: m.protocol_version,
                        }),
                    );
                }
                self.establish(
                    m.host_name.text(),
                    m.vendor_string.text(),
                    m.protocol_version,
                    m.firmware_revision,
                );
            }
            (Role::Pac, _) => self.close(CloseReason::UnexpectedMessage {
                what: "Start-Control-Connection-Reply",
                state: self.state,
            }),
            (Role::Pns, _) => self.unexpected(&Message::StartControlConnectionReply(m)),
        }
    }

    fn establish(
        &mut self,
        peer_host_name: String,
        peer_vendor: String,
        peer_protocol_version: u16,
        peer_firmware: u16,
    ) {
        if self.state == ControlState::Closed {
            return;
        }
        self.state = ControlState::Established;
        self.deadline = None;
        tracing::info!(
            "pptp {}: control connection established with \"{}\" (vendor \"{}\", version {}.{})",
            self.config.role,
            peer_host_name,
            peer_vendor,
            peer_protocol_version >> 8,
            peer_protocol_version & 0xff
        );
        self.event(ConnectionEvent::Established {
            peer_host_name,
            peer_vendor,
            peer_protocol_version,
            peer_firmware,
        });
    }

    fn on_call_request(&mut self, now: Instant, m: OutgoingCallRequest) {
        let peer_call_id = m.call_id;
        if self.config.role == Role::Pns {
            // A PAC does not place calls; pptp-linux answers the same.
            self.counters.unexpected_messages += 1;
            if self.state == ControlState::Established {
                self.send_refusal(
                    peer_call_id,
                    OutgoingCallResult::DoNotAccept,
                    GeneralError::None,
                );
            }
            return;
        }
        match self.state {
            ControlState::Idle => {
                // Section 2.16, Not-Connected: "No control connection exists
                // yet for this PAC-PNS pair".
                self.counters.unexpected_messages += 1;
                self.send_refusal(
                    peer_call_id,
                    OutgoingCallResult::GeneralError,
                    GeneralError::NotConnected,
                );
                return;
            }
            ControlState::Established => {}
            _ => return self.unexpected(&Message::OutgoingCallRequest(m)),
        }
        self.counters.calls_requested += 1;
        if self.find_by_peers(peer_call_id).is_some() {
            tracing::info!(
                "pptp {}: Outgoing-Call-Request with call id {peer_call_id}, already in use",
                self.config.role
            );
            return self.send_refusal(
                peer_call_id,
                OutgoingCallResult::GeneralError,
                GeneralError::BadCallId,
            );
        }
        if self.calls.len() >= usize::from(self.config.max_calls) {
            return self.send_refusal(
                peer_call_id,
                OutgoingCallResult::GeneralError,
                GeneralError::NoResource,
            );
        }
        self.calls.push(Call {
            call_id: None,
            peer_call_id: Some(peer_call_id),
            state: CallState::WaitCsAns,
            deadline: Some(now + self.config.reply_timeout),
            max_bps: m.maximum_bps,
        });
        self.event(ConnectionEvent::CallRequested {
            peer_call_id,
            serial: m.call_serial_number,
            min_bps: m.minimum_bps,
            max_bps: m.maximum_bps,
            peer_recv_window: m.packet_recv_window_size,
            peer_processing_delay: m.packet_processing_delay,
            phone_number: m.phone_number.text(),
        });
    }

    fn on_call_reply(&mut self, m: OutgoingCallReply) {
        if self.config.role != Role::Pns || self.state != ControlState::Established {
            return self.unexpected(&Message::OutgoingCallReply(m));
        }
        // Peer's Call ID is ours.
        let Some(i) = self.find_by_ours(m.peer_call_id) else {
            return self.unexpected(&Message::OutgoingCallReply(m));
        };
        let connected = m.result_code == OutgoingCallResult::Connected;
        let call_id = m.peer_call_id;
        match self.calls[i].state {
            CallState::WaitReply if connected => {
                let call = &mut self.calls[i];
                call.peer_call_id = Some(m.call_id);
                call.state = CallState::Established;
                call.deadline = None;
                self.counters.calls_connected += 1;
                tracing::info!(
                    "pptp {}: call {call_id} connected (peer call id {}, window {})",
                    self.config.role,
                    m.call_id,
                    m.packet_recv_window_size
                );
                self.event(ConnectionEvent::CallConnected {
                    call_id,
                    peer_call_id: m.call_id,
                    peer_recv_window: m.packet_recv_window_size,
                });
            }
            CallState::WaitReply => {
                self.calls.remove(i);
                self.counters.calls_refused += 1;
                tracing::info!(
                    "pptp {}: call {call_id} refused: result {}, error {}",
                    self.config.role,
                    m.result_code,
                    m.error_code
                );
                self.event(ConnectionEvent::CallRefused {
                    call_id,
                    result: m.result_code,
                    error: m.error_code,
                    cause_code: m.cause_code,
                });
            }
            CallState::WaitDisconnect if self.calls[i].peer_call_id.is_none() => {
                // We cleared it while it was being set up: the PAC's id
                // will match its Call-Disconnect-Notify.
                if connected {
                    self.calls[i].peer_call_id = Some(m.call_id);
                }
            }
            _ => self.unexpected(&Message::OutgoingCallReply(m)),
        }
    }

    fn on_call_clear(&mut self, m: CallClearRequest) {
        if self.config.role != Role::Pac || self.state != ControlState::Established {
            return self.unexpected(&Message::CallClearRequest(m));
        }
        // The PNS's Call ID (pptp-linux as PAC looked it up among its own).
        let Some(i) = self.find_by_peers_or_ours(m.call_id) else {
            return self.unexpected(&Message::CallClearRequest(m));
        };
        let call = self.calls.remove(i);
        let peer_call_id = call.peer_call_id.unwrap_or(m.call_id);
        let reason = ClearReason::request();
        match call.call_id {
            Some(call_id) => {
                self.counters.calls_cleared += 1;
                tracing::info!(
                    "pptp {}: call {call_id} cleared by the peer",
                    self.config.role
                );
                self.send_disconnect_notify(call_id, &reason);
                self.event(ConnectionEvent::CallCleared {
                    call_id,
                    peer_call_id,
                    why: CallEnd::PeerCleared,
                });
            }
            None => {
                // Section 3.2.4.1, wait_cs_ans: "Recv. Call Clear Req. /Send
                // Disconnect Notify". We assigned no Call ID yet: the PNS's
                // is the only one it can match.
                self.send_disconnect_notify(peer_call_id, &reason);
                self.event(ConnectionEvent::CallWithdrawn {
                    peer_call_id,
                    why: CallEnd::PeerCleared,
                });
            }
        }
    }

    fn on_disconnect_notify(&mut self, m: CallDisconnectNotify) {
        if self.config.role != Role::Pns || self.state != ControlState::Established {
            return self.unexpected(&Message::CallDisconnectNotify(m));
        }
        // RFC: the PAC's Call ID; accel-ppp: ours.
        let Some(i) = self.find_by_peers_or_ours(m.call_id) else {
            return self.unexpected(&Message::CallDisconnectNotify(m));
        };
        let call = self.calls.remove(i);
        let call_id = call.call_id.unwrap_or(0);
        let peer_call_id = call.peer_call_id.unwrap_or(m.call_id);
        let why = CallEnd::Disconnected {
            result: m.result_code,
            error: m.error_code,
            cause_code: m.cause_code,
            call_statistics: m.call_statistics.text(),
            requested: call.state == CallState::WaitDisconnect,
        };
        if call.state == CallState::WaitReply {
            // Section 3.2.4.2 has no such arrow, but the PAC gave up on the
            // call before connecting it: that is a refusal.
            self.counters.calls_refused += 1;
            self.event(ConnectionEvent::CallRefused {
                call_id,
                result: OutgoingCallResult::GeneralError,
                error: m.error_code,
                cause_code: m.cause_code,
            });
            return;
        }
        self.counters.calls_cleared += 1;
        tracing::info!("pptp {}: call {call_id} ended: {why}", self.config.role);
        self.event(ConnectionEvent::CallCleared {
            call_id,
            peer_call_id,
            why,
        });
    }
}

/// What a PAC's Call-Disconnect-Notify says ([`Connection::clear_call`]; a
/// PNS's Call-Clear-Request carries no reason and ignores it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClearReason {
    /// Result Code.
    pub result: DisconnectResult,
    /// Error Code (for Result General Error).
    pub error: GeneralError,
    /// Cause Code.
    pub cause_code: u16,
    /// Call Statistics text (cut to 128 octets).
    pub call_statistics: String,
}

impl ClearReason {
    /// "Admin Shutdown": cleared for administrative reasons (the daemon is
    /// stopping, the operator took the session down).
    pub fn admin_shutdown() -> ClearReason {
        ClearReason::with_result(DisconnectResult::AdminShutdown)
    }

    /// "Lost Carrier": the session below ended (PPP went down).
    pub fn lost_carrier() -> ClearReason {
        ClearReason::with_result(DisconnectResult::LostCarrier)
    }

    /// "Request": answering a Call-Clear-Request.
    pub fn request() -> ClearReason {
        ClearReason::with_result(DisconnectResult::Request)
    }

    /// `result`, no error, no cause, no statistics.
    pub fn with_result(result: DisconnectResult) -> ClearReason {
        ClearReason {
            result,
            error: GeneralError::None,
            cause_code: 0,
            call_statistics: String::new(),
        }
    }
}

impl Default for ClearReason {
    /// [`ClearReason::admin_shutdown`].
    fn default() -> Self {
        ClearReason::admin_shutdown()
    }
}
