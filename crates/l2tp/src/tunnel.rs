//! One L2TP tunnel (control connection) and its sessions, in either role,
//! sans-IO (RFC 2661 sections 5 and 7).
//!
//! A [`Tunnel`] is one control connection with one peer: its reliable
//! delivery ([`crate::reliable`]), its establishment (SCCRQ, SCCRP, SCCCN,
//! section 5.1) with tunnel authentication (section 5.1.1), keepalive
//! (HELLO, section 5.5), teardown (StopCCN, section 5.7), its sessions
//! (incoming calls ICRQ/ICRP/ICCN and outgoing calls OCRQ/OCRP/OCCN,
//! section 5.2; CDN, section 5.6; WEN and SLI, sections 6.13 and 6.14) and
//! the data messages of those sessions (sections 5.3 and 5.4).
//!
//! Either end may open the tunnel ([`Tunnel::connect`], the initiator that
//! sends SCCRQ; [`Tunnel::accept`], the responder). Independently of that,
//! a LAC ([`Role::Lac`]) places incoming calls and answers outgoing call
//! requests; an LNS ([`Role::Lns`]) answers incoming calls and places
//! outgoing ones.
//!
//! # Calling order
//!
//! As in quinn-proto and crates/pptp's `Connection`: after a
//! constructor and after every `handle_*` or command, drain
//! [`Tunnel::poll_transmit`] (one UDP datagram per call, to the peer's
//! address) and [`Tunnel::poll_event`] until they return `false` / `None`,
//! and re-arm the timer from [`Tunnel::poll_timeout`]; when it fires call
//! [`Tunnel::handle_timeout`]. Once [`Tunnel::is_closed`], forget the
//! tunnel (and its entry in [`crate::Dispatch`]).
//!
//! # Events
//!
//! [`TunnelEvent::Up`] once SCCCN went or came; [`TunnelEvent::Down`]
//! once, when the tunnel ends for any reason: every session ends with it
//! and no [`TunnelEvent::SessionDown`] follows for them. A session the
//! driver opened or was told of ([`TunnelEvent::SessionRequested`]) ends
//! with exactly one [`TunnelEvent::SessionDown`], unless the tunnel goes
//! first.
//!
//! # Randomness
//!
//! Session IDs, our Challenge, the Tie Breaker and Random Vectors come from
//! the [`Random`] handed in (the OS CSPRNG in a running gateway,
//! DESIGN.md's "Randomness"): Session IDs are random, non-zero and unique
//! in the tunnel, so a blind attacker cannot guess one. Our Tunnel ID is
//! chosen by the caller: [`crate::Dispatch::connect`] and
//! [`crate::dispatch::Route::New`] draw it from the same source and keep it
//! unique among the daemon's tunnels.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::ops::Range;
use std::time::{Duration, Instant};

use tsunagi_crypto::{ct_eq, md5, Random, Secret};

use crate::avp::{
    escaped, Avp, CallErrors, Q931Cause, BEARER_ANALOG, BEARER_DIGITAL, FRAMING_ASYNC, FRAMING_SYNC,
};
use crate::header::{encapsulate, EncapError, Header, HeaderError, Kind, Sequence};
use crate::message::{
    result_code, CdnResult, ErrorCode, Hiding, Message, MessageError, MessageType, StopCcnResult,
    UnknownAvp,
};
use crate::reliable::{seq_before, Received, Reliable, ReliableConfig, ReliableCounters};
use crate::text::DatagramText;

/// Firmware Revision we send.
pub const FIRMWARE_REVISION: u16 = 0x0001;

/// The Challenge Response of section 5.1.1 (as CHAP, RFC 1994): MD5 of the
/// Message Type of the message that carries the response (one octet: 2 in
/// SCCRP, 3 in SCCCN), the shared secret and the Challenge.
pub fn challenge_response(message_type: MessageType, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    let id = [u16::from(message_type) as u8];
    md5(&[&id, secret, challenge])
}

/// Which end of the calls we are (RFC 2661 section 1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// L2TP Access Concentrator: places incoming calls (ICRQ), answers
    /// outgoing call requests (OCRQ). The client side (xl2tpd's `lac`,
    /// Windows, macOS, iOS, Android).
    Lac,
    /// L2TP Network Server: answers incoming calls, places outgoing ones.
    /// The server side (xl2tpd's `lns`).
    Lns,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Lac => "LAC",
            Role::Lns => "LNS",
        })
    }
}

/// What a tunnel needs to know.
#[derive(Debug, Clone)]
pub struct TunnelConfig {
    /// LAC or LNS.
    pub role: Role,
    /// Host Name we send.
    pub host_name: String,
    /// Vendor Name we send.
    pub vendor_name: String,
    /// The tunnel secret (section 5.1.1). With one we challenge the peer
    /// and require its response; without one a peer's Challenge or hidden
    /// AVP is refused.
    pub secret: Option<Secret>,
    /// Hide the AVPs that may be hidden (section 4.3; xl2tpd's `hidden bit
    /// = yes`). Needs `secret`.
    pub hide_avps: bool,
    /// Silence after which a HELLO goes out (section 5.5; xl2tpd's `hello
    /// = 60`). Zero: no keepalive.
    pub hello_interval: Duration,
    /// How long establishment, and a session waiting for the peer or the
    /// driver, may take.
    pub reply_timeout: Duration,
    /// How long the state of a stopped tunnel is kept to acknowledge a
    /// retransmitted StopCCN (section 5.7; the full retransmission cycle,
    /// 1 + 2 + 4 + 8 + 8 + 8 = 31 s).
    pub stop_hold: Duration,
    /// Sessions at once; more ICRQs / OCRQs are answered with CDN "lack of
    /// appropriate facilities (temporary)", error "insufficient resources".
    pub max_sessions: u16,
    /// Send a Tie Breaker AVP in our SCCRQ (section 4.4.3).
    pub tie_breaker: bool,
    /// Reliable delivery: timers, windows, queue bound.
    pub reliable: ReliableConfig,
    /// Data messages we send carry Length (xl2tpd's `length bit = yes`).
    pub data_length_bit: bool,
    /// Data messages carry Ns (section 5.4). A LAC with this asks for it
    /// with Sequencing Required in ICCN / OCCN; either side also turns it
    /// on for a session when the peer requires it or sends Ns.
    pub data_sequencing: bool,
    /// Framing Capabilities we announce.
    pub framing_capabilities: u32,
    /// Bearer Capabilities we announce.
    pub bearer_capabilities: u32,
    /// (Tx) Connect Speed we report in ICCN / OCCN.
    pub connect_speed: u32,
}

impl TunnelConfig {
    /// The defaults for `role`: xl2tpd's timers (HELLO after 60 s), the
    /// RFC's retransmission (1 s doubling to 8 s, 5 retries), a receive
    /// window of 16, 1024 sessions, no secret, Length on data messages,
    /// no data sequencing.
    pub fn new(role: Role) -> TunnelConfig {
        TunnelConfig {
            role,
            host_name: "tsunagi".to_string(),
            vendor_name: "tsunagi".to_string(),
            secret: None,
            hide_avps: false,
            hello_interval: Duration::from_secs(60),
            reply_timeout: Duration::from_secs(60),
            stop_hold: Duration::from_secs(31),
            max_sessions: 1024,
            tie_breaker: false,
            reliable: ReliableConfig::default(),
            data_length_bit: true,
            data_sequencing: false,
            framing_capabilities: FRAMING_SYNC | FRAMING_ASYNC,
            bearer_capabilities: BEARER_DIGITAL | BEARER_ANALOG,
            connect_speed: 100_000_000,
        }
    }
}

/// Control connection states (section 7.2), with the RFC's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TunnelState {
    /// idle: the responder waits for SCCRQ.
    Idle,
    /// wait-ctl-reply: the initiator sent SCCRQ.
    WaitCtlReply,
    /// wait-ctl-conn: the responder sent SCCRP.
    WaitCtlConn,
    /// established.
    Established,
    /// StopCCN sent or received: the state is held to acknowledge and
    /// retransmit (section 5.7).
    Closing,
    /// Over.
    Closed,
}

impl fmt::Display for TunnelState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TunnelState::Idle => "idle",
            TunnelState::WaitCtlReply => "wait-ctl-reply",
            TunnelState::WaitCtlConn => "wait-ctl-conn",
            TunnelState::Established => "established",
            TunnelState::Closing => "closing",
            TunnelState::Closed => "closed",
        })
    }
}

/// Incoming (ICRQ, placed by the LAC) or outgoing (OCRQ, placed by the
/// LNS) call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallDirection {
    /// ICRQ / ICRP / ICCN.
    Incoming,
    /// OCRQ / OCRP / OCCN.
    Outgoing,
}

/// Session states (section 7.4 and 7.5), by what they wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// We sent ICRQ (LAC, wait-reply) or OCRQ (LNS, wait-reply).
    WaitReply,
    /// The peer's ICRQ (LNS) or OCRQ (LAC) waits for the driver's
    /// [`Tunnel::accept_session`] or [`Tunnel::refuse_session`].
    WaitAnswer,
    /// We sent ICRP and wait for ICCN (LNS, wait-connect), or got OCRP and
    /// wait for OCCN (LNS, wait-cs-answer).
    WaitConnect,
    /// established.
    Established,
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SessionState::WaitReply => "wait-reply",
            SessionState::WaitAnswer => "wait-answer",
            SessionState::WaitConnect => "wait-connect",
            SessionState::Established => "established",
        })
    }
}

/// Why we stopped the tunnel (sent StopCCN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopCause {
    /// [`Tunnel::stop`].
    Requested,
    /// Tunnel authentication failed (section 5.1.1).
    AuthenticationFailed {
        /// What was wrong.
        detail: &'static str,
    },
    /// The peer's Protocol Version is not 1.0.
    UnsupportedVersion {
        /// Ver.
        version: u8,
        /// Rev.
        revision: u8,
    },
    /// A control message that does not parse.
    BadMessage {
        /// The parse error.
        error: MessageError,
    },
    /// An unknown AVP with the M bit in a tunnel message (section 4.2).
    UnknownMandatoryAvp {
        /// The message.
        message: MessageType,
        /// The AVP.
        avp: UnknownAvp,
    },
    /// A message that cannot come in this state.
    UnexpectedMessage {
        /// The message.
        message: MessageType,
        /// Our state.
        state: TunnelState,
    },
    /// Establishment took longer than the reply timeout.
    Timeout {
        /// What did not come.
        waiting_for: &'static str,
    },
}

impl fmt::Display for StopCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopCause::Requested => f.write_str("stopped by request"),
            StopCause::AuthenticationFailed { detail } => {
                write!(f, "tunnel authentication failed: {detail}")
            }
            StopCause::UnsupportedVersion { version, revision } => {
                write!(
                    f,
                    "the peer speaks L2TP protocol version {version}.{revision}, we speak 1.0"
                )
            }
            StopCause::BadMessage { error } => write!(f, "bad control message: {error}"),
            StopCause::UnknownMandatoryAvp { message, avp } => {
                write!(f, "unknown mandatory {avp} in {message}")
            }
            StopCause::UnexpectedMessage { message, state } => {
                write!(f, "{message} while the tunnel is {state}")
            }
            StopCause::Timeout { waiting_for } => {
                write!(f, "no {waiting_for} within the reply timeout")
            }
        }
    }
}

/// Why the tunnel went down. `Display` says it in an operator's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// The peer sent StopCCN.
    PeerStopped {
        /// Its Result Code.
        result: StopCcnResult,
        /// Its Error Code.
        error: Option<ErrorCode>,
        /// Its Error Message (escaped).
        message: String,
    },
    /// We sent StopCCN.
    WeStopped {
        /// Why.
        cause: StopCause,
        /// The Result Code we sent.
        result: StopCcnResult,
        /// The Error Code we sent.
        error: Option<ErrorCode>,
    },
    /// A control message was not acknowledged after every retransmission
    /// (section 5.8): the peer is unreachable.
    Unreachable {
        /// The message.
        message: MessageType,
    },
    /// Our HELLO was not acknowledged after every retransmission (section
    /// 5.5): the peer is dead.
    KeepaliveTimeout,
    /// More control messages waited than the queue holds.
    SendQueueFull,
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownReason::PeerStopped {
                result,
                error,
                message,
            } => {
                write!(f, "the peer stopped the tunnel (StopCCN: {result}")?;
                if let Some(e) = error {
                    write!(f, ", error {e}")?;
                }
                if !message.is_empty() {
                    write!(f, ", \"{message}\"")?;
                }
                f.write_str(")")
            }
            DownReason::WeStopped {
                cause,
                result,
                error,
            } => {
                write!(f, "we stopped the tunnel: {cause} (StopCCN: {result}")?;
                if let Some(e) = error {
                    write!(f, ", error {e}")?;
                }
                f.write_str(")")
            }
            DownReason::Unreachable { message } => {
                write!(
                    f,
                    "the peer did not acknowledge our {message} after every retransmission"
                )
            }
            DownReason::KeepaliveTimeout => {
                f.write_str("the peer did not acknowledge our HELLO: the tunnel is dead")
            }
            DownReason::SendQueueFull => {
                f.write_str("too many control messages waited for the peer")
            }
        }
    }
}

/// Why we ended a session (sent CDN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCause {
    /// [`Tunnel::close_session`].
    Requested,
    /// [`Tunnel::refuse_session`].
    Refused,
    /// The session did not get established within the reply timeout.
    Timeout {
        /// Its state then.
        state: SessionState,
    },
    /// An unknown AVP with the M bit in a message of the session (section
    /// 4.2).
    UnknownMandatoryAvp {
        /// The message.
        message: MessageType,
        /// The AVP.
        avp: UnknownAvp,
    },
    /// A message of the session that does not parse.
    BadMessage {
        /// The parse error.
        error: MessageError,
    },
}

impl fmt::Display for SessionCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionCause::Requested => f.write_str("closed by request"),
            SessionCause::Refused => f.write_str("refused"),
            SessionCause::Timeout { state } => write!(f, "not established in time ({state})"),
            SessionCause::UnknownMandatoryAvp { message, avp } => {
                write!(f, "unknown mandatory {avp} in {message}")
            }
            SessionCause::BadMessage { error } => write!(f, "bad message: {error}"),
        }
    }
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// The peer sent CDN.
    PeerDisconnected {
        /// Its Result Code.
        result: CdnResult,
        /// Its Error Code.
        error: Option<ErrorCode>,
        /// Its Error Message (escaped).
        message: String,
        /// Its Q.931 Cause Code.
        q931: Option<Q931Cause>,
    },
    /// We sent CDN.
    WeDisconnected {
        /// Why.
        cause: SessionCause,
        /// The Result Code we sent.
        result: CdnResult,
        /// The Error Code we sent.
        error: Option<ErrorCode>,
    },
}

impl fmt::Display for SessionEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionEnd::PeerDisconnected {
                result,
                error,
                message,
                q931,
            } => {
                write!(f, "the peer disconnected the session (CDN: {result}")?;
                if let Some(e) = error {
                    write!(f, ", error {e}")?;
                }
                if !message.is_empty() {
                    write!(f, ", \"{message}\"")?;
                }
                if let Some(q) = q931 {
                    write!(f, ", Q.931 cause {}", q.cause)?;
                }
                f.write_str(")")
            }
            SessionEnd::WeDisconnected {
                cause,
                result,
                error,
            } => {
                write!(f, "we disconnected the session: {cause} (CDN: {result}")?;
                if let Some(e) = error {
                    write!(f, ", error {e}")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// What the peer said about a call it asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallInfo {
    /// Call Serial Number.
    pub serial: u32,
    /// Calling Number (escaped).
    pub calling_number: String,
    /// Called Number (escaped).
    pub called_number: String,
    /// Sub-Address (escaped).
    pub sub_address: String,
    /// Bearer Type.
    pub bearer_type: Option<u32>,
    /// Framing Type.
    pub framing_type: Option<u32>,
    /// Minimum BPS (OCRQ).
    pub minimum_bps: Option<u32>,
    /// Maximum BPS (OCRQ).
    pub maximum_bps: Option<u32>,
    /// Physical Channel ID.
    pub physical_channel_id: Option<u32>,
}

/// What a call we place says (ICRQ for a LAC, OCRQ for an LNS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallParams {
    /// Calling Number (ICRQ).
    pub calling_number: String,
    /// Called Number (ICRQ, required in OCRQ).
    pub called_number: String,
    /// Minimum BPS (OCRQ).
    pub minimum_bps: u32,
    /// Maximum BPS (OCRQ).
    pub maximum_bps: u32,
    /// Bearer Type.
    pub bearer_type: u32,
    /// Framing Type (OCRQ).
    pub framing_type: u32,
}

impl Default for CallParams {
    fn default() -> Self {
        CallParams {
            calling_number: String::new(),
            called_number: String::new(),
            minimum_bps: 9600,
            maximum_bps: 100_000_000,
            bearer_type: BEARER_DIGITAL | BEARER_ANALOG,
            framing_type: FRAMING_SYNC | FRAMING_ASYNC,
        }
    }
}

/// What the tunnel tells its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelEvent {
    /// The tunnel is established (SCCCN sent or received).
    Up {
        /// The peer's Host Name (escaped).
        peer_host_name: String,
        /// The peer's Vendor Name (escaped).
        peer_vendor_name: String,
        /// The peer's Tunnel ID.
        peer_tunnel_id: u16,
        /// The peer's Receive Window Size (4 when it sent none).
        peer_receive_window: u16,
        /// The peer's Firmware Revision.
        peer_firmware_revision: Option<u16>,
        /// The peer answered our Challenge (we have a secret).
        authenticated: bool,
    },
    /// The tunnel is down, and every session on it.
    Down {
        /// Why.
        why: DownReason,
    },
    /// The peer asks for a session (LNS: ICRQ; LAC: OCRQ). Answer with
    /// [`Tunnel::accept_session`] or [`Tunnel::refuse_session`].
    SessionRequested {
        /// Our Session ID for it.
        session_id: u16,
        /// The peer's Session ID.
        peer_session_id: u16,
        /// Incoming or outgoing.
        direction: CallDirection,
        /// What the peer said.
        call: CallInfo,
    },
    /// A session is established: PPP may start (data messages flow).
    SessionUp {
        /// Our Session ID.
        session_id: u16,
        /// The peer's Session ID.
        peer_session_id: u16,
        /// Incoming or outgoing.
        direction: CallDirection,
        /// (Tx) Connect Speed of the ICCN / OCCN (ours when we sent it).
        tx_connect_speed: u32,
        /// Rx Connect Speed, if given.
        rx_connect_speed: Option<u32>,
        /// Framing Type of the ICCN / OCCN.
        framing_type: u32,
        /// Data messages of the session carry Ns.
        sequencing: bool,
        /// Proxy Authen Name of the ICCN (escaped), if the LAC proxied
        /// authentication.
        proxy_authen_name: Option<String>,
    },
    /// A session ended.
    SessionDown {
        /// Our Session ID.
        session_id: u16,
        /// The peer's Session ID (0 if never known).
        peer_session_id: u16,
        /// How.
        why: SessionEnd,
    },
    /// LAC: Set-Link-Info (section 6.14): the ACCM PPP negotiated. On a
    /// packet transport there is no HDLC to apply it to; it is reported.
    SetLinkInfo {
        /// Our Session ID.
        session_id: u16,
        /// Send ACCM.
        send_accm: u32,
        /// Receive ACCM.
        receive_accm: u32,
    },
    /// LNS: WAN-Error-Notify (section 6.13): the LAC's error counters.
    WanErrorNotify {
        /// Our Session ID.
        session_id: u16,
        /// The counters.
        errors: CallErrors,
    },
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The tunnel is not established.
    #[error("the tunnel is {state}, not established")]
    NotEstablished {
        /// Its state.
        state: TunnelState,
    },
    /// The other role does this.
    #[error("a {role} does not {operation}")]
    WrongRole {
        /// Our role.
        role: Role,
        /// What was asked.
        operation: &'static str,
    },
    /// `max_sessions` sessions exist.
    #[error("{max} sessions already (max_sessions)")]
    TooManySessions {
        /// The limit.
        max: u16,
    },
    /// No such session.
    #[error("no session with id {session_id}")]
    UnknownSession {
        /// The id.
        session_id: u16,
    },
    /// The session is not in the state the command needs.
    #[error("session {session_id} is {state}")]
    WrongState {
        /// The id.
        session_id: u16,
        /// Its state.
        state: SessionState,
    },
}

/// Why a data message could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    /// No established session with that id.
    #[error("no established session {session_id}")]
    NoSession {
        /// The id.
        session_id: u16,
    },
    /// The buffer cannot take the header.
    #[error("{0}")]
    Encap(#[from] EncapError),
}

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// The header does not parse.
    Malformed(HeaderError),
    /// Its Tunnel ID is not ours.
    WrongTunnel {
        /// The Tunnel ID.
        tunnel_id: u16,
    },
    /// The tunnel is not established (data) or closed (control).
    NotEstablished,
    /// A data message for a session that is not established.
    UnknownSession {
        /// The Session ID.
        session_id: u16,
    },
    /// A data message whose Ns is behind one already received (section
    /// 5.4: "out-of-order packets ... may be discarded").
    Late {
        /// Its Ns.
        ns: u16,
    },
}

/// What [`Tunnel::handle_input`] did with a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A control message (or ZLB), taken in.
    Control,
    /// A data message for an established session: the PPP frame is
    /// `datagram[payload]`.
    Data {
        /// Our Session ID.
        session_id: u16,
        /// Where the PPP frame lies in the datagram.
        payload: Range<usize>,
    },
    /// Dropped.
    Dropped(Dropped),
}

/// Counters for `tsunagi status` and misbehaving peers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TunnelCounters {
    /// Control datagrams received (ZLBs included).
    pub control_received: u64,
    /// Control messages sent (first transmissions).
    pub messages_sent: u64,
    /// Datagrams whose header did not parse.
    pub malformed: u64,
    /// Datagrams for another Tunnel ID.
    pub wrong_tunnel: u64,
    /// Messages whose body did not parse.
    pub bad_messages: u64,
    /// Messages not expected in the state (ignored or refused).
    pub unexpected_messages: u64,
    /// Unknown AVPs without the M bit (ignored, section 4.2).
    pub unknown_avps_ignored: u64,
    /// Unknown Message Types without the M bit (ignored).
    pub unknown_messages_ignored: u64,
    /// Session messages for a session we do not have.
    pub unknown_session: u64,
    /// HELLOs sent.
    pub hellos_sent: u64,
    /// Session requests the peer made (ICRQ on an LNS, OCRQ on a LAC).
    pub sessions_requested: u64,
    /// Session requests refused because of `max_sessions`.
    pub sessions_refused_limit: u64,
    /// Sessions that reached established.
    pub sessions_up: u64,
    /// Sessions that ended (either side).
    pub sessions_down: u64,
    /// Data messages delivered.
    pub data_received: u64,
    /// Data messages sent.
    pub data_sent: u64,
    /// Data messages dropped (unknown session, late, not established).
    pub data_dropped: u64,
}

#[derive(Debug, Clone)]
struct Session {
    peer_id: u16,
    direction: CallDirection,
    state: SessionState,
    deadline: Option<Instant>,
    /// Our data messages carry Ns.
    send_sequence: bool,
    data_ns: u16,
    /// The Ns we expect next on the peer's data messages.
    data_expected: Option<u16>,
}

/// Session IDs in use at most when drawing a new one (beyond, the draws
/// might take long); `max_sessions` is capped by it.
pub const MAX_SESSIONS: usize = 60_000;

/// One tunnel (see the module docs).
pub struct Tunnel {
    config: TunnelConfig,
    random: Random,
    state: TunnelState,
    local_id: u16,
    peer_id: u16,
    initiator: bool,
    reliable: Reliable,
    sessions: HashMap<u16, Session>,
    events: VecDeque<TunnelEvent>,
    our_challenge: Option<[u8; 16]>,
    tie_breaker: Option<[u8; 8]>,
    peer_tie_breaker: Option<[u8; 8]>,
    peer_host_name: String,
    peer_vendor: String,
    peer_firmware: Option<u16>,
    /// Establishment deadline (idle, wait-ctl-reply, wait-ctl-conn) or the
    /// end of the hold (closing).
    deadline: Option<Instant>,
    last_heard: Instant,
    next_serial: u32,
    now: Instant,
    counters: TunnelCounters,
}

impl fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tunnel")
            .field("role", &self.config.role)
            .field("state", &self.state)
            .field("local_id", &self.local_id)
            .field("peer_id", &self.peer_id)
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

impl Tunnel {
    fn new(
        config: TunnelConfig,
        local_id: u16,
        now: Instant,
        random: Random,
        initiator: bool,
    ) -> Tunnel {
        Tunnel {
            reliable: Reliable::new(config.reliable, now),
            random,
            state: TunnelState::Idle,
            local_id,
            peer_id: 0,
            initiator,
            sessions: HashMap::new(),
            events: VecDeque::new(),
            our_challenge: None,
            tie_breaker: None,
            peer_tie_breaker: None,
            peer_host_name: String::new(),
            peer_vendor: String::new(),
            peer_firmware: None,
            deadline: Some(now + config.reply_timeout),
            last_heard: now,
            next_serial: 1,
            now,
            counters: TunnelCounters::default(),
            config,
        }
    }

    /// The initiator: queues SCCRQ (with a Challenge when there is a
    /// secret, a Tie Breaker when configured) and waits for SCCRP.
    /// `local_id` must be non-zero.
    pub fn connect(config: TunnelConfig, local_id: u16, now: Instant, random: Random) -> Tunnel {
        let mut t = Tunnel::new(config, local_id, now, random, true);
        let mut m = t.start_message(MessageType::Sccrq);
        if t.config.tie_breaker {
            let mut tb = [0u8; 8];
            t.random.fill(&mut tb);
            t.tie_breaker = Some(tb);
            m = m.with(Avp::TieBreaker(tb));
        }
        if t.config.secret.is_some() {
            let mut c = [0u8; 16];
            t.random.fill(&mut c);
            t.our_challenge = Some(c);
            m = m.with(Avp::Challenge(c.to_vec()));
        }
        t.send(0, m);
        t.state = TunnelState::WaitCtlReply;
        t
    }

    /// The responder: waits for the peer's SCCRQ (hand it to
    /// [`Tunnel::handle_input`]). `local_id` must be non-zero.
    pub fn accept(config: TunnelConfig, local_id: u16, now: Instant, random: Random) -> Tunnel {
        Tunnel::new(config, local_id, now, random, false)
    }

    /// SCCRQ or SCCRP: the AVPs both carry (sections 6.1 and 6.2).
    fn start_message(&self, t: MessageType) -> Message {
        Message::new(t)
            .with(Avp::ProtocolVersion {
                version: 1,
                revision: 0,
            })
            .with(Avp::HostName(
                self.config
                    .host_name
                    .as_bytes()
                    .iter()
                    .copied()
                    .take(1000)
                    .collect(),
            ))
            .with(Avp::FramingCapabilities(self.config.framing_capabilities))
            .with(Avp::BearerCapabilities(self.config.bearer_capabilities))
            .with(Avp::FirmwareRevision(FIRMWARE_REVISION))
            .with(Avp::VendorName(
                self.config
                    .vendor_name
                    .as_bytes()
                    .iter()
                    .copied()
                    .take(1000)
                    .collect(),
            ))
            .with(Avp::AssignedTunnelId(self.local_id))
            .with(Avp::ReceiveWindowSize(self.config.reliable.receive_window))
    }

    // ----- accessors -----

    /// The state.
    pub fn state(&self) -> TunnelState {
        self.state
    }

    /// LAC or LNS.
    pub fn role(&self) -> Role {
        self.config.role
    }

    /// The configuration.
    pub fn config(&self) -> &TunnelConfig {
        &self.config
    }

    /// Our Tunnel ID (what the peer's headers carry).
    pub fn local_id(&self) -> u16 {
        self.local_id
    }

    /// The peer's Tunnel ID (0 until its SCCRQ or SCCRP).
    pub fn peer_id(&self) -> u16 {
        self.peer_id
    }

    /// We sent the SCCRQ.
    pub fn is_initiator(&self) -> bool {
        self.initiator
    }

    /// The tunnel is over: forget it.
    pub fn is_closed(&self) -> bool {
        self.state == TunnelState::Closed
    }

    /// The Tie Breaker of our SCCRQ.
    pub fn tie_breaker(&self) -> Option<[u8; 8]> {
        self.tie_breaker
    }

    /// The Tie Breaker of the peer's SCCRQ.
    pub fn peer_tie_breaker(&self) -> Option<[u8; 8]> {
        self.peer_tie_breaker
    }

    /// The peer's Host Name (escaped; empty until its SCCRQ or SCCRP).
    pub fn peer_host_name(&self) -> &str {
        &self.peer_host_name
    }

    /// The counters.
    pub fn counters(&self) -> &TunnelCounters {
        &self.counters
    }

    /// The counters of reliable delivery.
    pub fn reliable_counters(&self) -> &ReliableCounters {
        self.reliable.counters()
    }

    /// The reliable delivery state (windows, timeouts), for status views.
    pub fn reliable(&self) -> &Reliable {
        &self.reliable
    }

    /// A session's state.
    pub fn session_state(&self, session_id: u16) -> Option<SessionState> {
        self.sessions.get(&session_id).map(|s| s.state)
    }

    /// A session's peer Session ID (0 until known).
    pub fn peer_session_id(&self, session_id: u16) -> Option<u16> {
        self.sessions.get(&session_id).map(|s| s.peer_id)
    }

    /// Every session: (ours, the peer's, state).
    pub fn sessions(&self) -> impl Iterator<Item = (u16, u16, SessionState)> + '_ {
        self.sessions
            .iter()
            .map(|(&id, s)| (id, s.peer_id, s.state))
    }

    // ----- poll -----

    /// Writes the next datagram to send to the peer into `out` (cleared
    /// first); `false` when there is none.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        if self.state == TunnelState::Closed {
            return false;
        }
        if self.reliable.poll_transmit(self.peer_id, out) {
            tracing::debug!(
                "l2tp tunnel {}: sent [{}]",
                self.local_id,
                DatagramText {
                    datagram: out,
                    secret: self.secret()
                }
            );
            return true;
        }
        false
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<TunnelEvent> {
        self.events.pop_front()
    }

    /// The next time [`Tunnel::handle_timeout`] must run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == TunnelState::Closed {
            return None;
        }
        let mut next = self.reliable.poll_timeout();
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        consider(self.deadline);
        if self.state == TunnelState::Established {
            if let Some(h) = self.hello_due() {
                consider(Some(h));
            }
            for s in self.sessions.values() {
                consider(s.deadline);
            }
        }
        next
    }

    fn hello_due(&self) -> Option<Instant> {
        if self.config.hello_interval.is_zero() || self.reliable.queued() > 0 {
            return None;
        }
        Some(self.last_heard + self.config.hello_interval)
    }

    /// A deadline from [`Tunnel::poll_timeout`] passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == TunnelState::Closed {
            return;
        }
        self.now = now;
        self.reliable.set_now(now);
        if let Err(e) = self.reliable.handle_timeout(now) {
            if self.state == TunnelState::Closing {
                // Our StopCCN was not acknowledged: nothing more to do but
                // wait out the hold.
                self.reliable.drop_queue();
            } else {
                let message = MessageType::from(e.message_type.unwrap_or(0));
                tracing::info!(
                    "l2tp tunnel {}: no acknowledgement of {} after {} retransmissions",
                    self.local_id,
                    message,
                    self.config.reliable.max_retries
                );
                let why = if message == MessageType::Hello {
                    DownReason::KeepaliveTimeout
                } else {
                    DownReason::Unreachable { message }
                };
                self.down(why);
                self.close();
                return;
            }
        }
        if self.deadline.is_some_and(|d| d <= now) {
            self.deadline = None;
            match self.state {
                TunnelState::Closing => return self.close(),
                TunnelState::Idle => {
                    self.down(DownReason::WeStopped {
                        cause: StopCause::Timeout {
                            waiting_for: "SCCRQ",
                        },
                        result: StopCcnResult::GeneralError,
                        error: None,
                    });
                    return self.close();
                }
                TunnelState::WaitCtlReply => {
                    return self.stop_with(
                        StopCause::Timeout {
                            waiting_for: "SCCRP",
                        },
                        StopCcnResult::GeneralError,
                        None,
                    )
                }
                TunnelState::WaitCtlConn => {
                    return self.stop_with(
                        StopCause::Timeout {
                            waiting_for: "SCCCN",
                        },
                        StopCcnResult::GeneralError,
                        None,
                    )
                }
                TunnelState::Established | TunnelState::Closed => {}
            }
        }
        if self.state != TunnelState::Established {
            return;
        }
        if self.hello_due().is_some_and(|t| t <= now) {
            self.counters.hellos_sent += 1;
            self.last_heard = now;
            self.send(0, Message::new(MessageType::Hello));
        }
        let due: Vec<u16> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.deadline.is_some_and(|d| d <= now))
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            let Some(s) = self.sessions.get(&id) else {
                continue;
            };
            let state = s.state;
            self.disconnect(
                id,
                SessionCause::Timeout { state },
                CdnResult::Timeout,
                None,
                true,
            );
        }
    }

    // ----- input -----

    /// A datagram from the peer's address (control or data).
    pub fn handle_input(&mut self, now: Instant, datagram: &[u8]) -> Input {
        self.now = now;
        self.reliable.set_now(now);
        let (header, range) = match Header::parse(datagram) {
            Ok(x) => x,
            Err(e) => {
                self.counters.malformed += 1;
                tracing::debug!("l2tp tunnel {}: dropped a datagram: {e}", self.local_id);
                return Input::Dropped(Dropped::Malformed(e));
            }
        };
        match header.kind {
            Kind::Data => self.handle_data(&header, range),
            Kind::Control => {
                if self.state == TunnelState::Closed {
                    return Input::Dropped(Dropped::NotEstablished);
                }
                // The responder's SCCRQ (and its retransmissions) carry
                // Tunnel ID 0: the initiator does not know ours yet.
                let zero_ok = !self.initiator && header.tunnel_id == 0;
                if header.tunnel_id != self.local_id && !zero_ok {
                    self.counters.wrong_tunnel += 1;
                    return Input::Dropped(Dropped::WrongTunnel {
                        tunnel_id: header.tunnel_id,
                    });
                }
                self.counters.control_received += 1;
                self.last_heard = now;
                let seq = header.sequence.unwrap_or_default();
                let body = &datagram[range];
                tracing::debug!(
                    "l2tp tunnel {}: rcvd [{}]",
                    self.local_id,
                    DatagramText {
                        datagram,
                        secret: self.secret()
                    }
                );
                if matches!(
                    self.reliable
                        .receive(now, seq.ns, seq.nr, header.session_id, body),
                    Received::Duplicate
                ) {
                    tracing::debug!(
                        "l2tp tunnel {}: duplicate Ns {}: acknowledged again",
                        self.local_id,
                        seq.ns
                    );
                }
                while let Some(d) = self.reliable.poll_delivered() {
                    if matches!(self.state, TunnelState::Closing | TunnelState::Closed) {
                        continue;
                    }
                    self.handle_message(now, d.session_id, &d.body);
                }
                Input::Control
            }
        }
    }

    fn handle_data(&mut self, header: &Header, payload: Range<usize>) -> Input {
        if self.state != TunnelState::Established {
            self.counters.data_dropped += 1;
            return Input::Dropped(Dropped::NotEstablished);
        }
        if header.tunnel_id != self.local_id {
            self.counters.data_dropped += 1;
            return Input::Dropped(Dropped::WrongTunnel {
                tunnel_id: header.tunnel_id,
            });
        }
        let role = self.config.role;
        let Some(s) = self
            .sessions
            .get_mut(&header.session_id)
            .filter(|s| s.state == SessionState::Established)
        else {
            self.counters.data_dropped += 1;
            return Input::Dropped(Dropped::UnknownSession {
                session_id: header.session_id,
            });
        };
        if let Some(Sequence { ns, .. }) = header.sequence {
            // Section 5.4: the LNS decides; a LAC that sees Ns from the
            // LNS sends them too.
            if role == Role::Lac {
                s.send_sequence = true;
            }
            if let Some(expected) = s.data_expected {
                if seq_before(ns, expected) {
                    self.counters.data_dropped += 1;
                    return Input::Dropped(Dropped::Late { ns });
                }
            }
            s.data_expected = Some(ns.wrapping_add(1));
        }
        self.counters.data_received += 1;
        Input::Data {
            session_id: header.session_id,
            payload,
        }
    }

    /// Wraps the PPP frame at `buf[payload]` into a data message for our
    /// session `session_id`: writes the header just before it (Length when
    /// `data_length_bit`, Ns when the session sequences) and returns the
    /// datagram's range in `buf`. Reserve [`crate::header::DATA_HEADROOM`]
    /// octets before the frame. No allocation.
    pub fn encapsulate(
        &mut self,
        session_id: u16,
        buf: &mut [u8],
        payload: Range<usize>,
    ) -> Result<Range<usize>, DataError> {
        let established = self.state == TunnelState::Established;
        let s = self
            .sessions
            .get_mut(&session_id)
            .filter(|s| established && s.state == SessionState::Established)
            .ok_or(DataError::NoSession { session_id })?;
        let mut h = Header::data(self.peer_id, s.peer_id, self.config.data_length_bit);
        if s.send_sequence {
            h.sequence = Some(Sequence {
                ns: s.data_ns,
                nr: 0,
            });
        }
        let r = encapsulate(buf, payload, &h)?;
        if s.send_sequence {
            s.data_ns = s.data_ns.wrapping_add(1);
        }
        self.counters.data_sent += 1;
        Ok(r)
    }

    fn secret(&self) -> Option<&[u8]> {
        self.config
            .secret
            .as_ref()
            .map(|s| s.expose())
            .filter(|s| !s.is_empty())
    }

    fn handle_message(&mut self, now: Instant, session_id: u16, body: &[u8]) {
        let msg = match Message::parse(body, self.secret()) {
            Ok(m) => m,
            Err(MessageError::UnknownMessageType {
                value,
                mandatory: false,
            }) => {
                self.counters.unknown_messages_ignored += 1;
                tracing::debug!(
                    "l2tp tunnel {}: ignored unknown Message Type {value}",
                    self.local_id
                );
                return;
            }
            Err(error) => {
                self.counters.bad_messages += 1;
                tracing::info!(
                    "l2tp tunnel {}: bad control message: {error}",
                    self.local_id
                );
                let (result, code) = match &error {
                    MessageError::Avp(_) => (CdnResult::GeneralError, ErrorCode::BadLength),
                    _ => (CdnResult::GeneralError, ErrorCode::BadValue),
                };
                if session_id != 0 && self.sessions.contains_key(&session_id) {
                    self.disconnect(
                        session_id,
                        SessionCause::BadMessage { error },
                        result,
                        Some(code),
                        true,
                    );
                } else {
                    self.stop_with(
                        StopCause::BadMessage { error },
                        StopCcnResult::GeneralError,
                        Some(code),
                    );
                }
                return;
            }
        };
        let kind = msg.kind();
        if let Some(&avp) = msg.unknown_mandatory() {
            tracing::info!(
                "l2tp tunnel {}: unknown mandatory {avp} in {kind}",
                self.local_id
            );
            if kind.is_session_message() {
                self.refuse_unknown_avp(session_id, &msg, avp);
            } else {
                self.stop_with(
                    StopCause::UnknownMandatoryAvp { message: kind, avp },
                    StopCcnResult::GeneralError,
                    Some(ErrorCode::UnknownMandatoryAvp),
                );
            }
            return;
        }
        self.counters.unknown_avps_ignored += msg.unknown_count as u64;
        if kind == MessageType::StopCcn {
            return self.peer_stopped(now, &msg);
        }
        match (self.state, kind) {
            (TunnelState::Idle, MessageType::Sccrq) => self.on_sccrq(now, &msg),
            (TunnelState::WaitCtlReply, MessageType::Sccrp) => self.on_sccrp(&msg),
            (TunnelState::WaitCtlConn, MessageType::Scccn) => self.on_scccn(&msg),
            (TunnelState::Established, MessageType::Hello) => {}
            (TunnelState::Established, k) if k.is_session_message() => {
                self.on_session_message(now, session_id, &msg)
            }
            (state @ (TunnelState::WaitCtlReply | TunnelState::WaitCtlConn), k)
                if k != MessageType::Hello =>
            {
                self.counters.unexpected_messages += 1;
                self.stop_with(
                    StopCause::UnexpectedMessage { message: k, state },
                    StopCcnResult::FsmError,
                    None,
                );
            }
            (state, k) => {
                self.counters.unexpected_messages += 1;
                tracing::debug!("l2tp tunnel {}: ignored {k} while {state}", self.local_id);
            }
        }
    }

    /// Section 4.2: an unknown M-bit AVP in a session message ends that
    /// session (for ICRQ / OCRQ, the one the peer asked for).
    fn refuse_unknown_avp(&mut self, session_id: u16, msg: &Message, avp: UnknownAvp) {
        let cause = SessionCause::UnknownMandatoryAvp {
            message: msg.kind(),
            avp,
        };
        if self.state != TunnelState::Established {
            self.counters.unexpected_messages += 1;
            return;
        }
        if session_id != 0 && self.sessions.contains_key(&session_id) {
            self.disconnect(
                session_id,
                cause,
                CdnResult::GeneralError,
                Some(ErrorCode::UnknownMandatoryAvp),
                true,
            );
        } else if let Some(peer_sid) = msg.assigned_session_id().filter(|&p| p != 0) {
            if matches!(msg.kind(), MessageType::Icrq | MessageType::Ocrq) {
                self.send_cdn(
                    peer_sid,
                    0,
                    CdnResult::GeneralError,
                    Some(ErrorCode::UnknownMandatoryAvp),
                    "unknown mandatory AVP",
                );
            }
        } else {
            self.counters.unknown_session += 1;
        }
    }

    fn check_version(&mut self, msg: &Message) -> bool {
        match msg.protocol_version() {
            Some((1, 0)) => true,
            Some((version, revision)) => {
                self.stop_with(
                    StopCause::UnsupportedVersion { version, revision },
                    StopCcnResult::UnsupportedVersion,
                    None,
                );
                false
            }
            None => true,
        }
    }

    fn learn_peer(&mut self, msg: &Message) -> bool {
        let peer = msg.assigned_tunnel_id().unwrap_or(0);
        if peer == 0 {
            self.counters.bad_messages += 1;
            self.down(DownReason::WeStopped {
                cause: StopCause::BadMessage {
                    error: MessageError::MissingAvp {
                        message: msg.kind(),
                        avp: crate::avp::AttributeType::AssignedTunnelId,
                    },
                },
                result: StopCcnResult::GeneralError,
                error: Some(ErrorCode::BadValue),
            });
            self.close();
            return false;
        }
        self.peer_id = peer;
        self.reliable
            .set_peer_window(msg.receive_window_size().unwrap_or(4));
        self.peer_host_name = escaped(&msg.host_name().unwrap_or_default());
        self.peer_vendor = escaped(&msg.vendor_name().unwrap_or_default());
        self.peer_firmware = msg.firmware_revision();
        true
    }

    /// Our answer to the peer's Challenge, or a refusal when we have no
    /// secret.
    fn answer_challenge(
        &mut self,
        msg: &Message,
        reply: MessageType,
    ) -> Result<Option<[u8; 16]>, ()> {
        let Some(challenge) = msg.challenge() else {
            return Ok(None);
        };
        match self.secret() {
            Some(secret) => Ok(Some(challenge_response(reply, secret, &challenge))),
            None => {
                self.stop_with(
                    StopCause::AuthenticationFailed {
                        detail: "the peer sent a Challenge and no secret is configured",
                    },
                    StopCcnResult::NotAuthorized,
                    None,
                );
                Err(())
            }
        }
    }

    /// Checks the peer's Challenge Response to our Challenge, carried in
    /// `msg` of type `kind`.
    fn check_response(&mut self, msg: &Message, kind: MessageType) -> bool {
        let (Some(challenge), Some(secret)) = (self.our_challenge, self.secret()) else {
            return true;
        };
        let expected = challenge_response(kind, secret, &challenge);
        let detail = match msg.challenge_response() {
            None => "the peer sent no Challenge Response",
            Some(r) if ct_eq(&r, &expected) => return true,
            Some(_) => "the peer's Challenge Response is wrong (a different secret?)",
        };
        self.stop_with(
            StopCause::AuthenticationFailed { detail },
            StopCcnResult::NotAuthorized,
            None,
        );
        false
    }

    fn on_sccrq(&mut self, now: Instant, msg: &Message) {
        if !self.learn_peer(msg) {
            return;
        }
        self.peer_tie_breaker = msg.tie_breaker();
        if !self.check_version(msg) {
            return;
        }
        let Ok(response) = self.answer_challenge(msg, MessageType::Sccrp) else {
            return;
        };
        let mut m = self.start_message(MessageType::Sccrp);
        if let Some(r) = response {
            m = m.with(Avp::ChallengeResponse(r));
        }
        if self.secret().is_some() {
            let mut c = [0u8; 16];
            self.random.fill(&mut c);
            self.our_challenge = Some(c);
            m = m.with(Avp::Challenge(c.to_vec()));
        }
        self.send(0, m);
        self.state = TunnelState::WaitCtlConn;
        self.deadline = Some(now + self.config.reply_timeout);
    }

    fn on_sccrp(&mut self, msg: &Message) {
        if !self.learn_peer(msg)
            || !self.check_version(msg)
            || !self.check_response(msg, MessageType::Sccrp)
        {
            return;
        }
        let Ok(response) = self.answer_challenge(msg, MessageType::Scccn) else {
            return;
        };
        let mut m = Message::new(MessageType::Scccn);
        if let Some(r) = response {
            m = m.with(Avp::ChallengeResponse(r));
        }
        self.send(0, m);
        self.established(msg);
    }

    fn on_scccn(&mut self, msg: &Message) {
        if !self.check_response(msg, MessageType::Scccn) {
            return;
        }
        self.established(msg);
    }

    fn established(&mut self, msg: &Message) {
        // The SCCRQ / SCCRP had the peer's details; SCCCN has none.
        let _ = msg;
        self.state = TunnelState::Established;
        self.deadline = None;
        tracing::info!(
            "l2tp tunnel {}: established with \"{}\" (peer tunnel {}, window {})",
            self.local_id,
            self.peer_host_name,
            self.peer_id,
            self.reliable.peer_window()
        );
        self.events.push_back(TunnelEvent::Up {
            peer_host_name: self.peer_host_name.clone(),
            peer_vendor_name: self.peer_vendor.clone(),
            peer_tunnel_id: self.peer_id,
            peer_receive_window: self.reliable.peer_window(),
            peer_firmware_revision: self.peer_firmware,
            authenticated: self.our_challenge.is_some() && self.secret().is_some(),
        });
    }
}

impl Tunnel {
    // ----- sessions -----

    fn new_session_id(&mut self) -> u16 {
        loop {
            let mut b = [0u8; 2];
            self.random.fill(&mut b);
            let id = u16::from_be_bytes(b);
            if id != 0 && !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }

    fn session_limit(&self) -> usize {
        usize::from(self.config.max_sessions).min(MAX_SESSIONS)
    }

    fn on_session_message(&mut self, now: Instant, session_id: u16, msg: &Message) {
        let kind = msg.kind();
        match kind {
            MessageType::Icrq | MessageType::Ocrq => return self.on_call_request(now, msg),
            MessageType::Cdn => return self.on_cdn(session_id, msg),
            _ => {}
        }
        let role = self.config.role;
        let Some(s) = self.sessions.get_mut(&session_id) else {
            self.counters.unknown_session += 1;
            tracing::debug!(
                "l2tp tunnel {}: {kind} for unknown session {session_id}",
                self.local_id
            );
            return;
        };
        match (role, kind, s.direction, s.state) {
            (Role::Lac, MessageType::Icrp, CallDirection::Incoming, SessionState::WaitReply) => {
                let Some(peer) = msg.assigned_session_id().filter(|&p| p != 0) else {
                    return self.disconnect(
                        session_id,
                        SessionCause::BadMessage {
                            error: MessageError::MissingAvp {
                                message: kind,
                                avp: crate::avp::AttributeType::AssignedSessionId,
                            },
                        },
                        CdnResult::GeneralError,
                        Some(ErrorCode::BadValue),
                        true,
                    );
                };
                s.peer_id = peer;
                let mut m = Message::new(MessageType::Iccn)
                    .with(Avp::TxConnectSpeed(self.config.connect_speed))
                    .with(Avp::FramingType(FRAMING_SYNC));
                if self.config.data_sequencing {
                    m = m.with(Avp::SequencingRequired);
                    s.send_sequence = true;
                }
                self.send(peer, m);
                let up = TunnelEvent::SessionUp {
                    session_id,
                    peer_session_id: peer,
                    direction: CallDirection::Incoming,
                    tx_connect_speed: self.config.connect_speed,
                    rx_connect_speed: None,
                    framing_type: FRAMING_SYNC,
                    sequencing: self.config.data_sequencing,
                    proxy_authen_name: None,
                };
                self.session_up(session_id, up);
            }
            (Role::Lns, MessageType::Ocrp, CallDirection::Outgoing, SessionState::WaitReply) => {
                let Some(peer) = msg.assigned_session_id().filter(|&p| p != 0) else {
                    self.counters.bad_messages += 1;
                    return;
                };
                s.peer_id = peer;
                s.state = SessionState::WaitConnect;
                s.deadline = Some(now + self.config.reply_timeout);
            }
            (Role::Lns, MessageType::Iccn, CallDirection::Incoming, SessionState::WaitConnect)
            | (Role::Lns, MessageType::Occn, CallDirection::Outgoing, SessionState::WaitConnect) => {
                let sequencing = msg.sequencing_required() || self.config.data_sequencing;
                s.send_sequence = sequencing;
                let up = TunnelEvent::SessionUp {
                    session_id,
                    peer_session_id: s.peer_id,
                    direction: s.direction,
                    tx_connect_speed: msg.tx_connect_speed().unwrap_or(0),
                    rx_connect_speed: msg.rx_connect_speed(),
                    framing_type: msg.framing_type().unwrap_or(0),
                    sequencing,
                    proxy_authen_name: msg.proxy_authen_name().map(|n| escaped(&n)),
                };
                self.session_up(session_id, up);
            }
            (Role::Lns, MessageType::Wen, _, SessionState::Established) => {
                if let Some(errors) = msg.call_errors() {
                    self.events
                        .push_back(TunnelEvent::WanErrorNotify { session_id, errors });
                }
            }
            (Role::Lac, MessageType::Sli, _, _) => {
                if let Some((send_accm, receive_accm)) = msg.accm() {
                    self.events.push_back(TunnelEvent::SetLinkInfo {
                        session_id,
                        send_accm,
                        receive_accm,
                    });
                }
            }
            (_, k, _, state) => {
                self.counters.unexpected_messages += 1;
                tracing::debug!(
                    "l2tp tunnel {}: ignored {k} for session {session_id} ({state}) as {role}",
                    self.local_id
                );
            }
        }
    }

    fn session_up(&mut self, session_id: u16, event: TunnelEvent) {
        if let Some(s) = self.sessions.get_mut(&session_id) {
            s.state = SessionState::Established;
            s.deadline = None;
        }
        self.counters.sessions_up += 1;
        tracing::info!(
            "l2tp tunnel {}: session {session_id} established",
            self.local_id
        );
        self.events.push_back(event);
    }

    fn on_call_request(&mut self, now: Instant, msg: &Message) {
        let kind = msg.kind();
        let direction = if kind == MessageType::Icrq {
            CallDirection::Incoming
        } else {
            CallDirection::Outgoing
        };
        let peer_sid = msg.assigned_session_id().unwrap_or(0);
        let answerer = match direction {
            CallDirection::Incoming => Role::Lns,
            CallDirection::Outgoing => Role::Lac,
        };
        if peer_sid == 0 {
            self.counters.bad_messages += 1;
            return;
        }
        if self.config.role != answerer {
            self.counters.unexpected_messages += 1;
            return self.send_cdn(
                peer_sid,
                0,
                CdnResult::GeneralError,
                Some(ErrorCode::BadValue),
                "wrong role for this call",
            );
        }
        if self.sessions.values().any(|s| s.peer_id == peer_sid) {
            // The same call asked for twice (a new Ns, not a
            // retransmission): the first request stands.
            self.counters.unexpected_messages += 1;
            return;
        }
        self.counters.sessions_requested += 1;
        if self.sessions.len() >= self.session_limit() {
            self.counters.sessions_refused_limit += 1;
            tracing::info!(
                "l2tp tunnel {}: refused {kind} (peer session {peer_sid}): {} sessions already",
                self.local_id,
                self.sessions.len()
            );
            return self.send_cdn(
                peer_sid,
                0,
                CdnResult::NoFacilitiesTemporary,
                Some(ErrorCode::NoResources),
                "too many sessions",
            );
        }
        let session_id = self.new_session_id();
        self.sessions.insert(
            session_id,
            Session {
                peer_id: peer_sid,
                direction,
                state: SessionState::WaitAnswer,
                deadline: Some(now + self.config.reply_timeout),
                send_sequence: false,
                data_ns: 0,
                data_expected: None,
            },
        );
        let call = CallInfo {
            serial: msg.call_serial_number().unwrap_or(0),
            calling_number: escaped(&msg.calling_number().unwrap_or_default()),
            called_number: escaped(&msg.called_number().unwrap_or_default()),
            sub_address: escaped(&msg.sub_address().unwrap_or_default()),
            bearer_type: msg.bearer_type(),
            framing_type: msg.framing_type(),
            minimum_bps: msg.minimum_bps(),
            maximum_bps: msg.maximum_bps(),
            physical_channel_id: msg.physical_channel_id(),
        };
        self.events.push_back(TunnelEvent::SessionRequested {
            session_id,
            peer_session_id: peer_sid,
            direction,
            call,
        });
    }

    fn on_cdn(&mut self, session_id: u16, msg: &Message) {
        // The header carries our Session ID; a peer that never learnt it
        // (it refuses our request at once) may send 0 and its own id.
        let id = if self.sessions.contains_key(&session_id) {
            Some(session_id)
        } else if session_id == 0 {
            let peer = msg.assigned_session_id().unwrap_or(0);
            self.sessions
                .iter()
                .find(|(_, s)| peer != 0 && s.peer_id == peer)
                .map(|(&id, _)| id)
        } else {
            None
        };
        let Some(id) = id else {
            self.counters.unknown_session += 1;
            return;
        };
        let Some(s) = self.sessions.remove(&id) else {
            return;
        };
        let rc = msg.result_code().unwrap_or_default();
        let peer_session_id = if s.peer_id != 0 {
            s.peer_id
        } else {
            msg.assigned_session_id().unwrap_or(0)
        };
        self.counters.sessions_down += 1;
        let why = SessionEnd::PeerDisconnected {
            result: CdnResult::from(rc.result),
            error: rc.error.map(ErrorCode::from),
            message: escaped(&rc.message),
            q931: msg.q931_cause(),
        };
        tracing::info!("l2tp tunnel {}: session {id}: {why}", self.local_id);
        self.events.push_back(TunnelEvent::SessionDown {
            session_id: id,
            peer_session_id,
            why,
        });
    }

    /// Ends our session `id` with CDN; `event`: report SessionDown.
    fn disconnect(
        &mut self,
        id: u16,
        cause: SessionCause,
        result: CdnResult,
        error: Option<ErrorCode>,
        event: bool,
    ) {
        let Some(s) = self.sessions.remove(&id) else {
            return;
        };
        self.counters.sessions_down += 1;
        let text = cause.to_string();
        if s.peer_id != 0 {
            self.send_cdn(s.peer_id, id, result, error, &text);
        }
        let why = SessionEnd::WeDisconnected {
            cause,
            result,
            error,
        };
        tracing::info!("l2tp tunnel {}: session {id}: {why}", self.local_id);
        if event {
            self.events.push_back(TunnelEvent::SessionDown {
                session_id: id,
                peer_session_id: s.peer_id,
                why,
            });
        }
    }

    fn send_cdn(
        &mut self,
        peer_sid: u16,
        our_sid: u16,
        result: CdnResult,
        error: Option<ErrorCode>,
        text: &str,
    ) {
        let m = Message::new(MessageType::Cdn)
            .with(Avp::ResultCode(result_code(result.into(), error, text)))
            .with(Avp::AssignedSessionId(our_sid));
        self.send(peer_sid, m);
    }

    fn check_command(
        &self,
        role: Option<Role>,
        operation: &'static str,
    ) -> Result<(), SessionError> {
        if self.state != TunnelState::Established {
            return Err(SessionError::NotEstablished { state: self.state });
        }
        match role {
            Some(r) if r != self.config.role => Err(SessionError::WrongRole {
                role: self.config.role,
                operation,
            }),
            _ => Ok(()),
        }
    }

    /// Places a call: a LAC sends ICRQ (an incoming call, section 5.2.1),
    /// an LNS sends OCRQ (an outgoing call, section 5.2.2). Returns our new
    /// Session ID; [`TunnelEvent::SessionUp`] or
    /// [`TunnelEvent::SessionDown`] follows.
    pub fn open_session(&mut self, now: Instant, call: &CallParams) -> Result<u16, SessionError> {
        self.now = now;
        self.reliable.set_now(now);
        self.check_command(None, "open sessions")?;
        if self.sessions.len() >= self.session_limit() {
            return Err(SessionError::TooManySessions {
                max: self.config.max_sessions,
            });
        }
        let session_id = self.new_session_id();
        let serial = self.next_serial;
        self.next_serial = self.next_serial.wrapping_add(1);
        let (direction, m) = match self.config.role {
            Role::Lac => {
                let mut m = Message::new(MessageType::Icrq)
                    .with(Avp::AssignedSessionId(session_id))
                    .with(Avp::CallSerialNumber(serial))
                    .with(Avp::BearerType(call.bearer_type));
                if !call.calling_number.is_empty() {
                    m = m.with(Avp::CallingNumber(
                        call.calling_number
                            .as_bytes()
                            .iter()
                            .copied()
                            .take(1000)
                            .collect(),
                    ));
                }
                if !call.called_number.is_empty() {
                    m = m.with(Avp::CalledNumber(
                        call.called_number
                            .as_bytes()
                            .iter()
                            .copied()
                            .take(1000)
                            .collect(),
                    ));
                }
                (CallDirection::Incoming, m)
            }
            Role::Lns => (
                CallDirection::Outgoing,
                Message::new(MessageType::Ocrq)
                    .with(Avp::AssignedSessionId(session_id))
                    .with(Avp::CallSerialNumber(serial))
                    .with(Avp::MinimumBps(call.minimum_bps))
                    .with(Avp::MaximumBps(call.maximum_bps))
                    .with(Avp::BearerType(call.bearer_type))
                    .with(Avp::FramingType(call.framing_type))
                    .with(Avp::CalledNumber(
                        call.called_number
                            .as_bytes()
                            .iter()
                            .copied()
                            .take(1000)
                            .collect(),
                    )),
            ),
        };
        self.sessions.insert(
            session_id,
            Session {
                peer_id: 0,
                direction,
                state: SessionState::WaitReply,
                deadline: Some(now + self.config.reply_timeout),
                send_sequence: false,
                data_ns: 0,
                data_expected: None,
            },
        );
        self.send(0, m);
        Ok(session_id)
    }

    /// Accepts the session the peer asked for
    /// ([`TunnelEvent::SessionRequested`]): an LNS answers ICRP and waits
    /// for ICCN; a LAC answers OCRP and, having no line to dial, OCCN at
    /// once (the session is then up).
    pub fn accept_session(&mut self, now: Instant, session_id: u16) -> Result<(), SessionError> {
        self.now = now;
        self.reliable.set_now(now);
        self.check_command(None, "accept sessions")?;
        let role = self.config.role;
        let s = self
            .sessions
            .get_mut(&session_id)
            .ok_or(SessionError::UnknownSession { session_id })?;
        if s.state != SessionState::WaitAnswer {
            return Err(SessionError::WrongState {
                session_id,
                state: s.state,
            });
        }
        let peer = s.peer_id;
        match role {
            Role::Lns => {
                s.state = SessionState::WaitConnect;
                s.deadline = Some(now + self.config.reply_timeout);
                self.send(
                    peer,
                    Message::new(MessageType::Icrp).with(Avp::AssignedSessionId(session_id)),
                );
            }
            Role::Lac => {
                let sequencing = self.config.data_sequencing;
                s.send_sequence = sequencing;
                self.send(
                    peer,
                    Message::new(MessageType::Ocrp).with(Avp::AssignedSessionId(session_id)),
                );
                let mut m = Message::new(MessageType::Occn)
                    .with(Avp::TxConnectSpeed(self.config.connect_speed))
                    .with(Avp::FramingType(FRAMING_SYNC));
                if sequencing {
                    m = m.with(Avp::SequencingRequired);
                }
                self.send(peer, m);
                let up = TunnelEvent::SessionUp {
                    session_id,
                    peer_session_id: peer,
                    direction: CallDirection::Outgoing,
                    tx_connect_speed: self.config.connect_speed,
                    rx_connect_speed: None,
                    framing_type: FRAMING_SYNC,
                    sequencing,
                    proxy_authen_name: None,
                };
                self.session_up(session_id, up);
            }
        }
        Ok(())
    }

    /// Refuses the session the peer asked for with CDN `result` / `error`.
    pub fn refuse_session(
        &mut self,
        now: Instant,
        session_id: u16,
        result: CdnResult,
        error: Option<ErrorCode>,
    ) -> Result<(), SessionError> {
        self.now = now;
        self.reliable.set_now(now);
        self.check_command(None, "refuse sessions")?;
        let s = self
            .sessions
            .get(&session_id)
            .ok_or(SessionError::UnknownSession { session_id })?;
        if s.state != SessionState::WaitAnswer {
            return Err(SessionError::WrongState {
                session_id,
                state: s.state,
            });
        }
        self.disconnect(session_id, SessionCause::Refused, result, error, true);
        Ok(())
    }

    /// Ends a session with CDN `result` / `error` (section 5.6).
    pub fn close_session(
        &mut self,
        now: Instant,
        session_id: u16,
        result: CdnResult,
        error: Option<ErrorCode>,
    ) -> Result<(), SessionError> {
        self.now = now;
        self.reliable.set_now(now);
        self.check_command(None, "close sessions")?;
        if !self.sessions.contains_key(&session_id) {
            return Err(SessionError::UnknownSession { session_id });
        }
        self.disconnect(session_id, SessionCause::Requested, result, error, true);
        Ok(())
    }

    fn established_session(&self, session_id: u16) -> Result<u16, SessionError> {
        let s = self
            .sessions
            .get(&session_id)
            .ok_or(SessionError::UnknownSession { session_id })?;
        if s.state != SessionState::Established {
            return Err(SessionError::WrongState {
                session_id,
                state: s.state,
            });
        }
        Ok(s.peer_id)
    }

    /// LNS: Set-Link-Info (section 6.14), the ACCM PPP negotiated.
    pub fn set_link_info(
        &mut self,
        now: Instant,
        session_id: u16,
        send_accm: u32,
        receive_accm: u32,
    ) -> Result<(), SessionError> {
        self.now = now;
        self.reliable.set_now(now);
        self.check_command(Some(Role::Lns), "send Set-Link-Info")?;
        let peer = self.established_session(session_id)?;
        self.send(
            peer,
            Message::new(MessageType::Sli).with(Avp::Accm {
                send: send_accm,
                receive: receive_accm,
            }),
        );
        Ok(())
    }

    /// LAC: WAN-Error-Notify (section 6.13), our error counters.
    pub fn wan_error_notify(
        &mut self,
        now: Instant,
        session_id: u16,
        errors: CallErrors,
    ) -> Result<(), SessionError> {
        self.now = now;
        self.reliable.set_now(now);
        self.check_command(Some(Role::Lac), "send WAN-Error-Notify")?;
        let peer = self.established_session(session_id)?;
        self.send(
            peer,
            Message::new(MessageType::Wen).with(Avp::CallErrors(errors)),
        );
        Ok(())
    }

    /// Stops the tunnel (section 5.7): StopCCN with `result` / `error`,
    /// [`TunnelEvent::Down`] at once, the state held `stop_hold` to
    /// retransmit and acknowledge.
    pub fn stop(&mut self, now: Instant, result: StopCcnResult, error: Option<ErrorCode>) {
        self.now = now;
        self.reliable.set_now(now);
        self.stop_with(StopCause::Requested, result, error);
    }

    // ----- internals -----

    fn stop_with(&mut self, cause: StopCause, result: StopCcnResult, error: Option<ErrorCode>) {
        if matches!(self.state, TunnelState::Closing | TunnelState::Closed) {
            return;
        }
        let text = cause.to_string();
        tracing::info!("l2tp tunnel {}: stopping: {text}", self.local_id);
        let sent = self.state != TunnelState::Idle;
        self.sessions.clear();
        self.down(DownReason::WeStopped {
            cause,
            result,
            error,
        });
        if sent {
            let m = Message::new(MessageType::StopCcn)
                .with(Avp::AssignedTunnelId(self.local_id))
                .with(Avp::ResultCode(result_code(result.into(), error, &text)));
            self.state = TunnelState::Closing;
            self.send(0, m);
        }
        if self.state == TunnelState::Closing {
            self.deadline = Some(self.now + self.config.stop_hold);
        } else {
            self.close();
        }
    }

    fn peer_stopped(&mut self, now: Instant, msg: &Message) {
        if matches!(self.state, TunnelState::Closing | TunnelState::Closed) {
            return;
        }
        let rc = msg.result_code().unwrap_or_default();
        self.sessions.clear();
        // Section 5.7: acknowledge at once, keep the state to acknowledge a
        // retransmission; nothing of ours matters now.
        self.reliable.drop_queue();
        self.reliable.ack_now(now);
        self.down(DownReason::PeerStopped {
            result: StopCcnResult::from(rc.result),
            error: rc.error.map(ErrorCode::from),
            message: escaped(&rc.message),
        });
        self.state = TunnelState::Closing;
        self.deadline = Some(now + self.config.stop_hold);
    }

    fn down(&mut self, why: DownReason) {
        tracing::info!("l2tp tunnel {}: down: {why}", self.local_id);
        self.events.push_back(TunnelEvent::Down { why });
    }

    fn close(&mut self) {
        self.state = TunnelState::Closed;
        self.sessions.clear();
        self.reliable.clear();
        self.deadline = None;
    }

    /// Queues `m` for the peer's session `peer_session` (0: the tunnel).
    fn send(&mut self, peer_session: u16, m: Message) {
        let mut body = Vec::new();
        let hide = self.config.hide_avps && self.secret().is_some();
        if hide {
            let mut rv = [0u8; 16];
            self.random.fill(&mut rv);
            let secret = self.secret().unwrap_or_default();
            m.emit(
                &mut body,
                Some(Hiding {
                    secret,
                    random_vector: &rv,
                }),
            );
        } else {
            m.emit(&mut body, None);
        }
        tracing::debug!(
            "l2tp tunnel {}: queued [session {peer_session} {m}]",
            self.local_id
        );
        match self.reliable.queue(self.peer_id, peer_session, body) {
            Ok(_) => self.counters.messages_sent += 1,
            Err(e) => {
                tracing::warn!("l2tp tunnel {}: {e}: giving up the tunnel", self.local_id);
                if !matches!(self.state, TunnelState::Closing | TunnelState::Closed) {
                    self.down(DownReason::SendQueueFull);
                }
                self.close();
            }
        }
    }
}
