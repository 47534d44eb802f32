//! One PPP link: LCP, authentication, CCP, the NCPs and the data path, on
//! whole PPP frames ([`crate::frame`]).
//!
//! Phases (RFC 1661 s3): LCP opens (Establish), then PAP/CHAP/MS-CHAPv2 run
//! in each direction that was negotiated (Authenticate; skipped when none
//! was), then CCP and the NCPs start (Network). With MPPE required the
//! NCPs wait for CCP, and no IP goes out or is accepted unencrypted.
//!
//! The link takes and gives frames: `ff 03` unless ACFC, the protocol
//! field, the information field, no flags, escapes or FCS. Packet
//! transports (PPTP's GRE, L2TP) carry them as they are, after the header
//! they reserve room for; the SSH byte stream puts async HDLC around them
//! ([`crate::stream::StreamLink`]). Which LCP options make sense depends on
//! that ([`crate::lcp::Framing`]).
//!
//! Calling order (as in quinn-proto): after every `handle_*` or `encapsulate`
//! call, drain `poll_transmit` (one control frame per call), `poll_event`
//! and `poll_auth_event` until `None`, and re-arm the timer from
//! `poll_timeout`. When the timer fires call `handle_timeout(now)`.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::auth::{AuthConfig, AuthMethod, AuthOutcome, AuthOutput, AuthPeer, Authenticator};
use crate::ccp::{CcpConfig, CcpMethod, CcpNegotiator, DeflateRx, DeflateTx, MppeRx, MppeTx};
use crate::display::describe;
use crate::frame::{FrameError, Header};
use crate::fsm::{Fsm, Output, Signal, State};
use crate::ipcp::IpcpNegotiator;
use crate::ipv6cp::{link_local_text, Ipv6cpNegotiator};
use crate::lcp::LcpNegotiator;
use crate::rng::Rng;
use crate::wire::{peer_text, Code, ControlRepr, FcsMode, Protocol, DEFAULT_ACCM};
use tsunagi_crypto::Random;

pub use crate::fsm::FsmTimers;
pub use crate::ipcp::IpcpConfig;
pub use crate::ipv6cp::Ipv6cpConfig;
pub use crate::lcp::{EchoConfig, Framing, LcpConfig};

/// Which network protocol a datagram carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpVersion {
    /// PPP protocol 0x0021.
    V4,
    /// PPP protocol 0x0057.
    V6,
}

/// RFC 1661 section 3.2 link phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Link Dead.
    Dead,
    /// Link Establishment (LCP negotiating).
    Establish,
    /// Authentication (RFC 1661 s3.5): PAP, CHAP-MD5, MS-CHAPv2.
    Authenticate,
    /// Network-Layer Protocol (NCPs negotiating or open).
    Network,
    /// Link Termination.
    Terminate,
}

/// Everything a link needs to know.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// Name used in every log line of this link (e.g. "labs").
    pub name: String,
    /// LCP settings.
    pub lcp: LcpConfig,
    /// IPCP settings.
    pub ipcp: IpcpConfig,
    /// IPV6CP settings; `None` disables IPV6CP (user-ppp `disable ipv6cp`):
    /// a peer's IPV6CP is then answered with Protocol-Reject.
    pub ipv6cp: Option<Ipv6cpConfig>,
    /// RFC 1661 timers and counters.
    pub timers: FsmTimers,
    /// Authentication (default: none either way, pppd `noauth`).
    pub auth: AuthConfig,
    /// CCP: Deflate and MPPE (default: off; a peer's CCP is
    /// Protocol-Rejected).
    pub ccp: CcpConfig,
    /// How many control packets the peer may make us handle.
    pub control_budget: ControlBudget,
}

/// How many control packets (everything but IP data: LCP, the NCPs, CCP,
/// PAP/CHAP, and unknown protocols, which each cost a Protocol-Reject) a
/// peer may make the link handle: a token bucket. Beyond it packets are
/// dropped unread and counted ([`LinkStats::rx_control_dropped`]), which
/// bounds the CPU and the replies a flooding peer can cause; a peer that
/// keeps flooding is cut off ([`DownReason::ControlFlood`]).
///
/// A PPP negotiation takes tens of packets, a renegotiation a handful,
/// echoes one every few seconds: the defaults never touch a peer that
/// follows RFC 1661.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlBudget {
    /// Packets taken at once (the bucket's size).
    pub burst: u32,
    /// Packets per second after the burst (0: no limit).
    pub per_second: u32,
    /// Dropped packets within `window` that end the link.
    pub flood_drops: u32,
    /// The window `flood_drops` counts in.
    pub window: Duration,
}

impl Default for ControlBudget {
    /// 64 at once, 32 a second; 512 dropped within 10 s end the link.
    fn default() -> Self {
        ControlBudget {
            burst: 64,
            per_second: 32,
            flood_drops: 512,
            window: Duration::from_secs(10),
        }
    }
}

/// Control frames waiting for `poll_transmit` at most; more are dropped
/// and counted ([`LinkStats::tx_control_dropped`]): a transport that does
/// not drain the link must not make it grow.
pub const MAX_TX_QUEUE: usize = 256;

/// What the authentication phase tells the driver (a queue of its own,
/// [`Link::poll_auth_event`], so that drivers matching [`Event`]
/// exhaustively keep compiling).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthEvent {
    /// The peer authenticated to us.
    Authenticated {
        /// The peer's name.
        user: String,
        /// The method.
        method: AuthMethod,
        /// The per-user fixed address from the secrets' 4th column; the
        /// link already uses it as the peer's IPCP address.
        address: Option<Ipv4Addr>,
    },
    /// We authenticated to the peer.
    AuthenticatedToPeer {
        /// Our name.
        user: String,
        /// The method.
        method: AuthMethod,
    },
    /// Authentication failed (either direction); the link terminates.
    AuthFailed {
        /// The name that failed (the peer's, or ours when `ours`).
        user: String,
        /// The method.
        method: AuthMethod,
        /// Why (never contains a secret).
        reason: String,
        /// We failed to authenticate ourselves to the peer.
        ours: bool,
    },
    /// The peer refused to authenticate (rejected the LCP option).
    PeerRefusedAuth,
    /// CCP opened: what each direction uses.
    CcpUp {
        /// What we send with.
        tx: Option<CcpMethod>,
        /// What the peer sends with.
        rx: Option<CcpMethod>,
    },
}

/// What the link tells its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The phase changed.
    Phase(Phase),
    /// IPCP reached Opened: addresses agreed (`myaddr`/`hisaddr`).
    Ipv4Up {
        /// Our address.
        local: Ipv4Addr,
        /// The peer's address.
        peer: Ipv4Addr,
        /// DNS servers the peer gave us.
        dns: [Option<Ipv4Addr>; 2],
    },
    /// IPCP left Opened.
    Ipv4Down,
    /// IPV6CP reached Opened.
    Ipv6Up {
        /// Our interface identifier.
        local_id: [u8; 8],
        /// The peer's interface identifier.
        peer_id: [u8; 8],
    },
    /// IPV6CP left Opened.
    Ipv6Down,
    /// The peer identified itself (RFC 1570; the text escaped and bounded:
    /// [`crate::wire::peer_text`]).
    PeerIdent(String),
    /// IPCP waits for the peer's address ([`IpcpConfig::remote_from_driver`]):
    /// answer with [`Link::set_peer_address`] or
    /// [`Link::refuse_peer_address`].
    PeerAddressNeeded {
        /// The name the peer authenticated with, if it did.
        user: Option<String>,
        /// The per-user address from the secrets' 4th column, which wins
        /// over a pool (pppd, pptpd).
        fixed: Option<Ipv4Addr>,
    },
    /// The link is finished (LCP reached Initial/Closed/Stopped for good);
    /// the driver should close the byte stream and may redial.
    Down(DownReason),
}

/// Why a link went down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// The peer sent Terminate-Request (with its text, escaped and bounded:
    /// [`crate::wire::peer_text`]).
    PeerTerminated(String),
    /// `failures` Echo-Requests went unanswered.
    EchoTimeout,
    /// The peer's Magic-Number kept equal to ours (RFC 1661 section 6.4).
    LoopbackDetected,
    /// Max-Configure or Max-Failure reached for the named protocol, or a
    /// requirement (MPPE) the peer did not meet.
    NegotiationFailed(&'static str),
    /// Authentication failed in one direction (RFC 1661 s3.5: the link
    /// goes to Terminate).
    AuthFailed {
        /// The method.
        method: AuthMethod,
        /// Why, in words (never a secret).
        reason: String,
        /// We failed to authenticate ourselves (else the peer failed).
        ours: bool,
    },
    /// We require authentication and the peer would not agree to any
    /// method we accept.
    PeerRefusedAuth,
    /// The driver had no address for the peer (a pool exhausted, a fixed
    /// address in use): [`Link::refuse_peer_address`].
    NoPeerAddress(String),
    /// The peer kept sending control packets beyond the link's
    /// [`ControlBudget`]: `dropped` of them within the budget's window.
    ControlFlood {
        /// Packets dropped within the window.
        dropped: u32,
    },
    /// `close()` was called and Terminate completed or timed out.
    AdminClose,
    /// The byte stream ended (`lower_down()`).
    LowerDown,
}

/// Counters for `tsunagi status` and for bad input.
#[derive(Debug, Clone, Default)]
pub struct LinkStats {
    /// IP packets delivered to the driver.
    pub rx_packets: u64,
    /// Bytes of those IP packets.
    pub rx_bytes: u64,
    /// IP packets encapsulated.
    pub tx_packets: u64,
    /// Bytes of those IP packets.
    pub tx_bytes: u64,
    /// Frames dropped for a bad FCS.
    pub rx_bad_fcs: u64,
    /// Frames dropped as too short, too long, or otherwise malformed.
    pub rx_malformed: u64,
    /// Frames for protocols we do not speak (answered with Protocol-Reject
    /// while LCP is Opened, discarded before).
    pub rx_unknown_protocol: u64,
    /// Control packets that failed to parse (bad length, bad option).
    pub rx_bad_control: u64,
    /// Frames with a good FCS.
    pub rx_frames: u64,
    /// Frames sent (control and data).
    pub tx_frames: u64,
    /// Control packets discarded as not matching (wrong identifier, an Ack
    /// that differs from our request, not expected in this state).
    pub rx_discarded_control: u64,
    /// IP packets or NCP packets dropped because LCP or that NCP was not open.
    pub rx_not_open: u64,
    /// Code-Rejects we sent (unknown codes received).
    pub tx_code_rejects: u64,
    /// Protocol-Rejects we sent.
    pub tx_protocol_rejects: u64,
    /// Echo-Requests sent.
    pub tx_echo_requests: u64,
    /// Echo-Replies received.
    pub rx_echo_replies: u64,
    /// PAP/CHAP packets that did not parse (bad lengths, empty names).
    pub rx_bad_auth: u64,
    /// PAP/CHAP packets discarded (unknown identifier, unexpected code).
    pub rx_discarded_auth: u64,
    /// Compressed datagrams dropped (late, lost, corrupt, before CCP).
    pub rx_ccp_dropped: u64,
    /// CCP Reset-Requests we sent.
    pub tx_ccp_resets: u64,
    /// Control packets dropped unread beyond the [`ControlBudget`].
    pub rx_control_dropped: u64,
    /// Control frames dropped because the transport did not drain the
    /// queue ([`MAX_TX_QUEUE`]).
    pub tx_control_dropped: u64,
}

impl LinkConfig {
    /// The weak algorithms this link enables (MS-CHAPv2, MPPE), for the
    /// daemon's start-up warning (DESIGN.md "Weak algorithms").
    pub fn weak_algorithms(&self) -> Vec<&'static str> {
        let mut out = self.auth.weak_algorithms();
        out.extend(self.ccp.weak_algorithms());
        out
    }
}

impl Default for LinkConfig {
    /// Link "ppp", LCP/IPCP/timer defaults, IPV6CP off.
    fn default() -> Self {
        LinkConfig {
            name: "ppp".to_string(),
            lcp: LcpConfig::default(),
            ipcp: IpcpConfig::default(),
            ipv6cp: None,
            timers: FsmTimers::default(),
            auth: AuthConfig::default(),
            ccp: CcpConfig::default(),
            control_budget: ControlBudget::default(),
        }
    }
}

/// What was negotiated, for `tsunagi status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkStatus {
    /// Phase.
    pub phase: Phase,
    /// LCP automaton state.
    pub lcp: State,
    /// IPCP automaton state.
    pub ipcp: State,
    /// IPV6CP automaton state (`None` when disabled).
    pub ipv6cp: Option<State>,
    /// Our MRU as the peer acked it.
    pub mru: u16,
    /// The peer's MRU (the largest frame we send).
    pub peer_mru: u16,
    /// Our Magic-Number (0 if not negotiated).
    pub magic: u32,
    /// The peer's Magic-Number.
    pub peer_magic: Option<u32>,
    /// ACCM we escape with when sending (the peer's wish).
    pub tx_accm: u32,
    /// ACCM the peer agreed to use towards us.
    pub rx_accm: u32,
    /// We send with Protocol-Field-Compression.
    pub tx_pfc: bool,
    /// We send with Address-and-Control-Field-Compression.
    pub tx_acfc: bool,
    /// The FCS we send ordinary frames with (RFC 1570 s2.1).
    pub tx_fcs: FcsMode,
    /// The FCS the peer agreed to send us.
    pub rx_fcs: FcsMode,
    /// The peer's Identification text (RFC 1570).
    pub peer_ident: Option<String>,
    /// Our IPv4 address (IPCP opened).
    pub local_ip: Option<Ipv4Addr>,
    /// The peer's IPv4 address (IPCP opened).
    pub peer_ip: Option<Ipv4Addr>,
    /// DNS servers the peer gave us.
    pub dns: [Option<Ipv4Addr>; 2],
    /// Interface identifiers (ours, peer's) when IPV6CP opened.
    pub ipv6_ids: Option<([u8; 8], [u8; 8])>,
    /// The name the peer authenticated with, and how.
    pub peer_auth: Option<(String, AuthMethod)>,
    /// How we authenticated ourselves to the peer.
    pub our_auth: Option<AuthMethod>,
    /// CCP state (`None` when CCP is off).
    pub ccp: Option<State>,
    /// What we send with after CCP opened.
    pub ccp_tx: Option<CcpMethod>,
    /// What the peer sends with after CCP opened.
    pub ccp_rx: Option<CcpMethod>,
}

/// Our sending half of the CCP data path.
#[derive(Debug)]
enum TxPath {
    Deflate(DeflateTx),
    Mppe(Box<MppeTx>),
}

/// The peer's sending half of the CCP data path.
#[derive(Debug)]
enum RxPath {
    Deflate(DeflateRx),
    Mppe(Box<MppeRx>),
}

/// One PPP link engine.
///
/// Owns LCP, IPCP and (optionally) IPV6CP automata and the HDLC framing of
/// the byte stream. See the module documentation for the calling order.
pub struct Link {
    name: String,
    config: LinkConfig,
    phase: Phase,
    lcp: Fsm<LcpNegotiator>,
    ipcp: Fsm<IpcpNegotiator>,
    ipv6cp: Option<Fsm<Ipv6cpNegotiator>>,
    /// Control frames waiting for `poll_transmit`.
    tx: VecDeque<ControlFrame>,
    events: VecDeque<Event>,
    stats: LinkStats,
    echo_deadline: Option<Instant>,
    echo_pending: u32,
    peer_ident: Option<String>,
    down_reason: Option<DownReason>,
    /// Down was reported; nothing more happens until `start`.
    finished: bool,
    started: bool,
    ipv4_up: bool,
    ipv6_up: bool,
    ccp: Option<Fsm<CcpNegotiator>>,
    authenticator: Option<Authenticator>,
    auth_peer: Option<AuthPeer>,
    /// Authentication passed (or was not needed): Network phase.
    network: bool,
    auth_events: VecDeque<AuthEvent>,
    /// Challenges come from here (the kernel's CSPRNG in a daemon), never
    /// from the generator of magic numbers and interface identifiers.
    random: Random,
    peer_auth: Option<(String, AuthMethod)>,
    tx_path: Option<TxPath>,
    rx_path: Option<RxPath>,
    /// NCPs are held until CCP opens (MPPE required).
    ncps_waiting: bool,
    /// Where the peer's IPCP address stands in this LCP session.
    peer_address: PeerAddress,
    /// The secrets file's address for the authenticated peer.
    fixed_address: Option<Ipv4Addr>,
    /// The last peer address refused, logged once.
    last_refused: Option<crate::ipcp::RefusedAddress>,
    /// The last PAP identifier we sent, carried into the next
    /// authentication (see `AuthPeer::start_after`).
    last_pap_id: u8,
    /// Our outstanding CCP Reset-Request: identifier and when to repeat it
    /// (pppd repeats it every second until the Reset-Ack).
    ccp_reset: Option<(u8, Instant)>,
    /// Compressed/encrypted datagram scratch space (no allocation per packet).
    ccp_buf: Vec<u8>,
    /// The longest information field we accept (our MRU, at least 1500).
    max_info: usize,
    /// Control packets the peer may still make us handle now, and when
    /// the bucket was last filled.
    control_tokens: f64,
    control_filled: Option<Instant>,
    /// Control packets dropped since `flood_since`.
    flood_drops: u32,
    flood_since: Option<Instant>,
}

/// The peer's address when the driver supplies it
/// ([`IpcpConfig::remote_from_driver`]).
#[derive(Debug, Clone, PartialEq, Eq)]
enum PeerAddress {
    /// Not asked for yet in this LCP session.
    NotAsked,
    /// Asked for ([`Event::PeerAddressNeeded`]); IPCP is held. The peer's
    /// latest IPCP Configure-Request meanwhile, answered once the address
    /// is known (rather than after the peer's restart timer).
    Waiting(Option<Vec<u8>>),
    /// Supplied; IPCP runs with it.
    Supplied(Ipv4Addr),
}

/// One queued control frame.
#[derive(Debug)]
struct ControlFrame {
    header: Header,
    packet: Vec<u8>,
    lcp_defaults: bool,
}

/// What [`Link::poll_transmit`] appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Octets of the frame (header and information field).
    pub len: usize,
    /// An LCP Configure, Terminate or Code-Reject packet (codes 1..7):
    /// async HDLC sends it with ACCM `0xffffffff` and the 16-bit FCS
    /// whatever was agreed (RFC 1662 s7.1, RFC 1570 s2.1). Its header is
    /// never compressed (RFC 1661 s6.5, s6.6).
    pub lcp_defaults: bool,
}

/// What LCP agreed for async HDLC framing, per direction (RFC 1662 s7.1,
/// RFC 1570 s2.1): the defaults while LCP is not Opened. Only the byte
/// stream layer ([`crate::stream`]) applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsyncFraming {
    /// The control characters we escape (the peer's ACCM).
    pub tx_accm: u32,
    /// The ACCM the peer agreed to send us with.
    pub rx_accm: u32,
    /// The FCS we send with.
    pub tx_fcs: FcsMode,
    /// The FCS the peer sends us with.
    pub rx_fcs: FcsMode,
}

impl Default for AsyncFraming {
    /// RFC 1662 s7.1: ACCM `0xffffffff` and the 16-bit FCS both ways.
    fn default() -> Self {
        AsyncFraming {
            tx_accm: DEFAULT_ACCM,
            rx_accm: DEFAULT_ACCM,
            tx_fcs: FcsMode::Fcs16,
            rx_fcs: FcsMode::Fcs16,
        }
    }
}

/// Which automaton produced an [`Output`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer {
    Lcp,
    Ipcp,
    Ipv6cp,
    Ccp,
}

impl Layer {
    fn protocol(self) -> Protocol {
        match self {
            Layer::Lcp => Protocol::Lcp,
            Layer::Ipcp => Protocol::Ipcp,
            Layer::Ipv6cp => Protocol::Ipv6cp,
            Layer::Ccp => Protocol::Ccp,
        }
    }
}

/// An NCP is negotiating or open (RFC 1661 states 6..=9).
fn alive(state: State) -> bool {
    matches!(
        state,
        State::ReqSent | State::AckRcvd | State::AckSent | State::Opened
    )
}

impl Link {
    /// A new link in the Dead phase.
    ///
    /// `seed` seeds the cheap generator of magic numbers and interface
    /// identifiers, values the peer sees in clear (pass a draw from the
    /// kernel in production). `random` gives everything an attacker must
    /// not predict, CHAP and MS-CHAPv2 challenges, each a fresh draw: it
    /// shares no state with `seed`'s generator, so an interface identifier
    /// seen on the wire tells nothing about a challenge (DESIGN.md,
    /// "Randomness").
    pub fn new(config: LinkConfig, seed: u64, random: Random) -> Link {
        let mut seeds = Rng::new(seed);
        let mut lcp = Fsm::new(
            LcpNegotiator::new(config.lcp.clone(), seeds.next_u64()),
            config.timers.clone(),
        );
        let can: Vec<AuthMethod> = config
            .auth
            .accept
            .iter()
            .copied()
            .filter(|m| config.auth.can_authenticate_with(*m))
            .collect();
        lcp.negotiator.set_auth(config.auth.require.clone(), can);
        let ipcp = Fsm::new(
            IpcpNegotiator::new(config.ipcp.clone()),
            config.timers.clone(),
        );
        let ipv6_seed = seeds.next_u64();
        let ipv6cp = config
            .ipv6cp
            .clone()
            .map(|c| Fsm::new(Ipv6cpNegotiator::new(c, ipv6_seed), config.timers.clone()));
        let ccp = config.ccp.enabled().then(|| {
            Fsm::new(
                CcpNegotiator::new(config.ccp.clone()),
                config.timers.clone(),
            )
        });
        let max_info = config.lcp.mru.max(crate::lcp::DEFAULT_MRU) as usize;
        let mut link = Link {
            name: config.name.clone(),
            phase: Phase::Dead,
            lcp,
            ipcp,
            ipv6cp,
            max_info,
            control_tokens: f64::from(config.control_budget.burst),
            control_filled: None,
            flood_drops: 0,
            flood_since: None,
            tx: VecDeque::new(),
            events: VecDeque::new(),
            stats: LinkStats::default(),
            echo_deadline: None,
            echo_pending: 0,
            peer_ident: None,
            down_reason: None,
            finished: false,
            started: false,
            ipv4_up: false,
            ipv6_up: false,
            ccp,
            authenticator: None,
            auth_peer: None,
            network: false,
            auth_events: VecDeque::new(),
            random,
            peer_auth: None,
            tx_path: None,
            rx_path: None,
            ncps_waiting: false,
            peer_address: PeerAddress::NotAsked,
            fixed_address: None,
            last_pap_id: 0,
            last_refused: None,
            ccp_reset: None,
            ccp_buf: Vec::new(),
            config,
        };
        link.sync_phase();
        link
    }

    /// The byte stream is connected: LCP Up + Open (RFC 1661 events Up, Open).
    pub fn start(&mut self, now: Instant) {
        // A link that went down may be started again (redial): bring LCP
        // back to Initial/Starting first, so Open and Up act.
        if self.lcp.state() != State::Initial {
            let mut out = Output::default();
            self.lcp.down(now, &mut out);
            self.process(now, Layer::Lcp, out);
        }
        self.finished = false;
        self.started = true;
        self.down_reason = None;
        self.echo_pending = 0;
        self.lcp.negotiator.loops = 0;
        self.lcp.set_terminate_text("");
        tracing::info!("{}: Connect: starting LCP", self.name);
        let mut out = Output::default();
        self.ipcp.open(now, &mut out);
        self.process(now, Layer::Ipcp, out);
        if let Some(ipv6cp) = &mut self.ipv6cp {
            let mut out = Output::default();
            ipv6cp.open(now, &mut out);
            self.process(now, Layer::Ipv6cp, out);
        }
        if let Some(ccp) = &mut self.ccp {
            let mut out = Output::default();
            ccp.open(now, &mut out);
            self.process(now, Layer::Ccp, out);
        }
        let mut out = Output::default();
        self.lcp.open(now, &mut out);
        self.process(now, Layer::Lcp, out);
        let mut out = Output::default();
        self.lcp.up(now, &mut out);
        self.process(now, Layer::Lcp, out);
        self.sync_phase();
    }

    /// Administrative Close: send Terminate-Request with `reason`.
    pub fn close(&mut self, now: Instant, reason: &str) {
        if self.finished || !self.started {
            return;
        }
        tracing::info!("{}: Closing link: {}", self.name, reason);
        self.down_reason.get_or_insert(DownReason::AdminClose);
        self.lcp.set_terminate_text(reason);
        let mut out = Output::default();
        self.lcp.close(now, &mut out);
        self.process(now, Layer::Lcp, out);
        // Closed or Initial without tlf (e.g. from Stopped): nothing left
        // to wait for.
        if matches!(self.lcp.state(), State::Initial | State::Closed) && !self.finished {
            let reason = self.down_reason.take().unwrap_or(DownReason::AdminClose);
            self.report_down(reason);
        }
        self.sync_phase();
    }

    /// The peer's IPCP address, from the driver
    /// ([`IpcpConfig::remote_from_driver`]): IPCP starts with it, answering
    /// a Configure-Request the peer sent meanwhile. May come before
    /// [`Event::PeerAddressNeeded`] (then IPCP does not wait); holds until
    /// LCP goes down.
    pub fn set_peer_address(&mut self, now: Instant, addr: Ipv4Addr) {
        tracing::info!("{}: peer address {} assigned", self.name, addr);
        self.ipcp.negotiator.set_remote(addr);
        let waiting = std::mem::replace(&mut self.peer_address, PeerAddress::Supplied(addr));
        if let PeerAddress::Waiting(held) = waiting {
            let mut out = Output::default();
            self.ipcp.up(now, &mut out);
            self.process(now, Layer::Ipcp, out);
            if let Some(request) = held {
                let mut ignore = |_: IpVersion, _: &[u8]| {};
                self.dispatch(now, Protocol::Ipcp.into(), &request, &mut ignore);
            }
        }
        self.sync_phase();
    }

    /// Our own IPCP address, from the driver (a pool pairs it with the
    /// peer's: pptpd's `localip`). Takes effect when IPCP next starts:
    /// call it before [`Link::set_peer_address`].
    pub fn set_local_address(&mut self, addr: Ipv4Addr) {
        self.ipcp.negotiator.set_local(addr);
    }

    /// The driver has no address for the peer (`why`: a pool exhausted, a
    /// fixed address in use): the link terminates with `why` as the text.
    pub fn refuse_peer_address(&mut self, now: Instant, why: &str) {
        tracing::warn!("{}: no address for the peer: {}", self.name, why);
        self.fail_with(now, why, DownReason::NoPeerAddress(why.to_string()));
        self.sync_phase();
    }

    /// The byte stream ended (RFC 1661 event Down).
    pub fn lower_down(&mut self, now: Instant) {
        let mut out = Output::default();
        self.lcp.down(now, &mut out);
        self.process(now, Layer::Lcp, out);
        if !self.finished && self.started {
            let reason = self.down_reason.take().unwrap_or(DownReason::LowerDown);
            self.report_down(reason);
        }
        self.sync_phase();
    }

    /// One frame from the transport (`ff 03` unless ACFC, protocol,
    /// information field). IP datagrams in it are passed to `deliver` (no
    /// allocation per packet); control packets are processed. A frame that
    /// does not parse is counted and dropped.
    pub fn handle_frame(
        &mut self,
        now: Instant,
        frame: &[u8],
        deliver: &mut dyn FnMut(IpVersion, &[u8]),
    ) {
        match crate::frame::parse(frame, self.max_info) {
            Ok(f) => self.handle_packet(now, f.protocol, f.info, deliver),
            Err(e) => self.frame_error(&e),
        }
    }

    /// One frame whose header the transport already took apart (the async
    /// HDLC decoder does, to tell LCP packets apart under the Null FCS).
    pub fn handle_packet(
        &mut self,
        now: Instant,
        protocol: u16,
        info: &[u8],
        deliver: &mut dyn FnMut(IpVersion, &[u8]),
    ) {
        self.stats.rx_frames += 1;
        self.dispatch(now, protocol, info, deliver);
        self.sync_phase();
    }

    /// Counts a frame the transport could not take apart (a bad FCS, a
    /// bad header, too long).
    pub fn frame_error(&mut self, error: &FrameError) {
        match error {
            FrameError::BadFcs { .. } => self.stats.rx_bad_fcs += 1,
            _ => self.stats.rx_malformed += 1,
        }
        tracing::debug!("{}: dropped frame: {}", self.name, error);
    }

    /// Frames one IP datagram: the frame (header, then the datagram or its
    /// CCP form) is appended to `out`, after whatever the caller put there
    /// (the headroom for its own header). Returns false (and counts
    /// nothing) when that NCP is not open.
    pub fn encapsulate(&mut self, version: IpVersion, packet: &[u8], out: &mut Vec<u8>) -> bool {
        self.encapsulate_with(version, packet, |header, info| {
            out.reserve(header.len() + info.len());
            out.extend_from_slice(header);
            out.extend_from_slice(info);
        })
    }

    /// [`Link::encapsulate`] for a transport that writes the frame itself:
    /// `emit` gets the header and the information field (the datagram, or
    /// its compressed or encrypted form), not yet joined.
    pub fn encapsulate_with(
        &mut self,
        version: IpVersion,
        packet: &[u8],
        emit: impl FnOnce(&[u8], &[u8]),
    ) -> bool {
        let (open, protocol) = match version {
            IpVersion::V4 => (self.ipcp.state() == State::Opened, Protocol::Ipv4),
            IpVersion::V6 => (
                self.ipv6cp
                    .as_ref()
                    .is_some_and(|f| f.state() == State::Opened),
                Protocol::Ipv6,
            ),
        };
        if !open || self.lcp.state() != State::Opened {
            return false;
        }
        let proto = u16::from(protocol);
        let (acfc, pfc) = (self.lcp.negotiator.peer.acfc, self.lcp.negotiator.peer.pfc);
        let fd = u16::from(Protocol::CompressedDatagram);
        let mppe_required = self.mppe_required();
        // Whether the frame carries `ccp_buf` (a Compressed Datagram,
        // RFC 1962 s3) instead of the datagram itself.
        let transformed = match &mut self.tx_path {
            Some(TxPath::Mppe(tx)) => {
                self.ccp_buf.clear();
                tx.encrypt_into(proto, packet, &mut self.ccp_buf);
                true
            }
            // Incompressible datagrams go as they are.
            Some(TxPath::Deflate(tx)) => tx.compress_into(proto, packet, &mut self.ccp_buf),
            // Never plaintext when MPPE is required.
            None if mppe_required => return false,
            None => false,
        };
        if transformed {
            let header = Header::new(fd, self.ccp_buf.is_empty(), acfc, pfc);
            emit(header.as_bytes(), &self.ccp_buf);
        } else {
            let header = Header::new(proto, packet.is_empty(), acfc, pfc);
            emit(header.as_bytes(), packet);
        }
        self.stats.tx_packets += 1;
        self.stats.tx_bytes += packet.len() as u64;
        self.stats.tx_frames += 1;
        true
    }

    /// Appends the next control frame to `out` (after the caller's
    /// headroom), or returns `None` when none is waiting.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> Option<Transmit> {
        let frame = self.tx.pop_front()?;
        let header = frame.header.as_bytes();
        out.extend_from_slice(header);
        out.extend_from_slice(&frame.packet);
        Some(Transmit {
            len: header.len() + frame.packet.len(),
            lcp_defaults: frame.lcp_defaults,
        })
    }

    /// [`Link::poll_transmit`] for a layer that frames it itself: `emit`
    /// gets the header, the information field and whether the LCP defaults
    /// apply. Returns false when no frame was waiting.
    pub fn poll_transmit_with(&mut self, emit: impl FnOnce(&[u8], &[u8], bool)) -> bool {
        match self.tx.pop_front() {
            Some(frame) => {
                emit(frame.header.as_bytes(), &frame.packet, frame.lcp_defaults);
                true
            }
            None => false,
        }
    }

    /// Drops the control frames waiting for `poll_transmit`, counting them
    /// ([`LinkStats::tx_control_dropped`]): for a transport whose peer does
    /// not read what it is sent. Returns how many.
    pub fn discard_transmit(&mut self) -> usize {
        let n = self.tx.len();
        self.tx.clear();
        self.count_discarded(n);
        n
    }

    /// Counts `n` control frames the layer below dropped.
    pub fn count_discarded(&mut self, n: usize) {
        self.stats.tx_control_dropped += n as u64;
    }

    /// Whether control frames wait for `poll_transmit`.
    pub fn has_transmit(&self) -> bool {
        !self.tx.is_empty()
    }

    /// How frames cross the transport: async HDLC over a byte stream,
    /// or one frame per datagram (PPTP, L2TP).
    pub fn framing(&self) -> Framing {
        self.lcp.negotiator.config().framing
    }

    /// What LCP agreed for async HDLC (the defaults while it is not
    /// Opened); see [`AsyncFraming`].
    pub fn async_framing(&self) -> AsyncFraming {
        if self.lcp.state() != State::Opened {
            return AsyncFraming::default();
        }
        let n = &self.lcp.negotiator;
        AsyncFraming {
            tx_accm: n.peer.accm,
            rx_accm: n.ours.accm,
            tx_fcs: n.peer.fcs,
            rx_fcs: n.ours.fcs,
        }
    }

    /// The longest information field this link accepts: our MRU, at least
    /// the 1500 octets every peer may send before LCP agrees (RFC 1661
    /// s6.1).
    pub fn max_info(&self) -> usize {
        self.max_info
    }

    /// The link's configuration.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// Timers expired.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut out = Output::default();
        self.lcp.handle_timeout(now, &mut out);
        self.process(now, Layer::Lcp, out);
        let mut out = Output::default();
        self.ipcp.handle_timeout(now, &mut out);
        self.process(now, Layer::Ipcp, out);
        if let Some(ipv6cp) = &mut self.ipv6cp {
            let mut out = Output::default();
            ipv6cp.handle_timeout(now, &mut out);
            self.process(now, Layer::Ipv6cp, out);
        }
        if let Some(ccp) = &mut self.ccp {
            let mut out = Output::default();
            ccp.handle_timeout(now, &mut out);
            self.process(now, Layer::Ccp, out);
        }
        let mut out = AuthOutput::default();
        if let Some(a) = &mut self.authenticator {
            a.handle_timeout(now, &mut out);
        }
        if let Some(p) = &mut self.auth_peer {
            p.handle_timeout(now, &mut out);
        }
        self.after_auth(now, out);
        self.ccp_reset_timer(now);
        if self.echo_deadline.is_some_and(|d| d <= now) {
            self.echo_timer(now);
        }
        self.sync_phase();
    }

    /// The next deadline, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.lcp.deadline(),
            self.ipcp.deadline(),
            self.ipv6cp.as_ref().and_then(|f| f.deadline()),
            self.ccp.as_ref().and_then(|f| f.deadline()),
            self.authenticator.as_ref().and_then(|a| a.deadline()),
            self.auth_peer.as_ref().and_then(|p| p.deadline()),
            self.ccp_reset.map(|(_, due)| due),
            self.echo_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next authentication or CCP event, if any (drain it like
    /// `poll_event`).
    pub fn poll_auth_event(&mut self) -> Option<AuthEvent> {
        self.auth_events.pop_front()
    }

    /// Current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Counters.
    pub fn stats(&self) -> &LinkStats {
        &self.stats
    }

    /// What was negotiated.
    pub fn status(&self) -> LinkStatus {
        let lcp = &self.lcp.negotiator;
        let ipcp_open = self.ipcp.state() == State::Opened;
        LinkStatus {
            phase: self.phase,
            lcp: self.lcp.state(),
            ipcp: self.ipcp.state(),
            ipv6cp: self.ipv6cp.as_ref().map(|f| f.state()),
            mru: lcp.ours.mru,
            peer_mru: lcp.peer.mru,
            magic: lcp.magic(),
            peer_magic: lcp.peer.magic,
            tx_accm: self.async_framing().tx_accm,
            rx_accm: lcp.ours.accm,
            tx_pfc: lcp.peer.pfc && self.lcp.state() == State::Opened,
            tx_acfc: lcp.peer.acfc && self.lcp.state() == State::Opened,
            tx_fcs: self.async_framing().tx_fcs,
            rx_fcs: self.async_framing().rx_fcs,
            peer_ident: self.peer_ident.clone(),
            local_ip: ipcp_open.then_some(self.ipcp.negotiator.local),
            peer_ip: ipcp_open.then_some(self.ipcp.negotiator.peer),
            dns: if ipcp_open {
                self.ipcp.negotiator.dns
            } else {
                [None; 2]
            },
            ipv6_ids: self
                .ipv6cp
                .as_ref()
                .filter(|f| f.state() == State::Opened)
                .map(|f| (f.negotiator.local_id, f.negotiator.peer_id)),
            peer_auth: self.peer_auth.clone(),
            our_auth: self.auth_peer.as_ref().and_then(|p| match p.outcome() {
                AuthOutcome::Success { method, .. } => Some(*method),
                _ => None,
            }),
            ccp: self.ccp.as_ref().map(|f| f.state()),
            ccp_tx: self
                .ccp
                .as_ref()
                .filter(|f| f.state() == State::Opened)
                .and_then(|f| f.negotiator.tx),
            ccp_rx: self
                .ccp
                .as_ref()
                .filter(|f| f.state() == State::Opened)
                .and_then(|f| f.negotiator.rx),
        }
    }

    /// Test hook: the next LCP negotiation uses this Magic-Number (to
    /// replay a recorded peer, whose Acks name the magic they acked).
    #[doc(hidden)]
    pub fn pin_magic(&mut self, magic: u32) {
        self.lcp.negotiator.pin_magic(magic);
    }

    /// The link's name, as used in its log lines.
    pub fn name(&self) -> &str {
        &self.name
    }

    // ----- internals -----

    /// One received packet to the layer its protocol names.
    fn dispatch(
        &mut self,
        now: Instant,
        protocol: u16,
        info: &[u8],
        deliver: &mut dyn FnMut(IpVersion, &[u8]),
    ) {
        let lcp_open = self.lcp.state() == State::Opened;
        let data = matches!(
            Protocol::from(protocol),
            Protocol::Ipv4 | Protocol::Ipv6 | Protocol::CompressedDatagram
        );
        if !data && !self.take_control_token(now) {
            return;
        }
        match Protocol::from(protocol) {
            Protocol::Lcp => self.handle_lcp(now, info),
            p @ (Protocol::Ipv4 | Protocol::Ipv6)
                if p == Protocol::Ipv4 || self.ipv6cp.is_some() =>
            {
                let mppe_required = self.mppe_required();
                match &mut self.rx_path {
                    Some(RxPath::Mppe(_)) => {
                        // RFC 3078 s1: with MPPE on, unencrypted data is
                        // not accepted.
                        self.stats.rx_ccp_dropped += 1;
                        tracing::debug!("{}: dropped unencrypted {} packet", self.name, p);
                        return;
                    }
                    Some(RxPath::Deflate(rx)) => rx.incompressible(protocol, info),
                    None if mppe_required => {
                        self.stats.rx_not_open += 1;
                        return;
                    }
                    None => {}
                }
                self.deliver_ip(protocol, info, deliver);
            }
            Protocol::Pap | Protocol::Chap => self.handle_auth(now, protocol, info),
            Protocol::CompressedDatagram if self.ccp.is_some() => {
                self.handle_compressed(now, info, deliver)
            }
            Protocol::Ccp if self.ccp.is_some() => {
                if !self.network {
                    self.stats.rx_not_open += 1;
                    tracing::debug!(
                        "{}: discarded CCP packet before the Network phase",
                        self.name
                    );
                    return;
                }
                self.handle_ccp(now, info);
            }
            p @ (Protocol::Ipcp | Protocol::Ipv6cp)
                if p != Protocol::Ipv6cp || self.ipv6cp.is_some() =>
            {
                if !lcp_open {
                    // RFC 1661 s3.4/s12: NCP packets before LCP opens are
                    // silently discarded.
                    self.stats.rx_not_open += 1;
                    tracing::debug!(
                        "{}: rcvd [{}]: discarded non-LCP packet when LCP not open",
                        self.name,
                        describe(protocol, info)
                    );
                    return;
                }
                tracing::debug!("{}: rcvd [{}]", self.name, describe(protocol, info));
                let packet = match ControlRepr::parse_bytes(info) {
                    Ok(p) => p,
                    Err(e) => {
                        self.stats.rx_bad_control += 1;
                        tracing::debug!("{}: bad {} packet: {}", self.name, p, e);
                        return;
                    }
                };
                if p == Protocol::Ipcp {
                    if let PeerAddress::Waiting(held) = &mut self.peer_address {
                        // Kept until the address is known; anything else
                        // the peer sends IPCP before its Configure-Request
                        // is answered makes no sense yet.
                        if packet.code == Code::ConfigureRequest {
                            *held = Some(info.to_vec());
                        } else {
                            self.stats.rx_not_open += 1;
                        }
                        return;
                    }
                }
                let mut out = Output::default();
                let (layer, result) = if p == Protocol::Ipcp {
                    (Layer::Ipcp, self.ipcp.receive(now, packet, info, &mut out))
                } else {
                    let Some(fsm) = self.ipv6cp.as_mut() else {
                        return;
                    };
                    (Layer::Ipv6cp, fsm.receive(now, packet, info, &mut out))
                };
                self.count_discard(p, result);
                if let Some(why) = self.ipcp.negotiator.refused.take() {
                    // Once per address: a peer that insists is Nak'd up to
                    // Max-Failure times.
                    if self.last_refused.as_ref() != Some(&why) {
                        tracing::warn!("{}: IPCP: peer's address refused: {why}", self.name);
                        self.last_refused = Some(why);
                    }
                }
                self.process(now, layer, out);
            }
            other => {
                // RFC 1661 s5.7: unknown protocols are rejected only while
                // LCP is Opened; otherwise silently discarded.
                self.stats.rx_unknown_protocol += 1;
                if lcp_open {
                    tracing::debug!(
                        "{}: rcvd [{}]: sending Protocol-Reject",
                        self.name,
                        describe(protocol, info)
                    );
                    let mut data = Vec::with_capacity(info.len() + 2);
                    data.extend_from_slice(&protocol.to_be_bytes());
                    let room = (self.lcp.negotiator.peer.mru as usize).saturating_sub(6);
                    data.extend_from_slice(&info[..info.len().min(room)]);
                    let id = self.lcp.next_identifier();
                    self.stats.tx_protocol_rejects += 1;
                    self.send_control(
                        Protocol::Lcp,
                        crate::fsm::packet(Code::ProtocolReject, id, &data),
                    );
                } else {
                    tracing::debug!("{}: discarded {} frame: LCP not open", self.name, other);
                }
            }
        }
    }

    /// Takes one control packet's worth of the [`ControlBudget`]; false
    /// (the packet dropped, counted, and a flooding peer cut off) when
    /// none is left.
    fn take_control_token(&mut self, now: Instant) -> bool {
        let budget = self.config.control_budget;
        if budget.per_second == 0 {
            return true;
        }
        let since = self
            .control_filled
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        self.control_filled = Some(now);
        self.control_tokens = (self.control_tokens
            + since.as_secs_f64() * f64::from(budget.per_second))
        .min(f64::from(budget.burst));
        if self.control_tokens >= 1.0 {
            self.control_tokens -= 1.0;
            return true;
        }
        self.stats.rx_control_dropped += 1;
        let window_start = *self.flood_since.get_or_insert(now);
        if now.saturating_duration_since(window_start) > budget.window {
            self.flood_since = Some(now);
            self.flood_drops = 0;
        }
        self.flood_drops += 1;
        if self.flood_drops == 1 {
            tracing::warn!(
                "{}: peer sends control packets beyond {} a second: dropping them",
                self.name,
                budget.per_second
            );
        }
        if self.flood_drops >= budget.flood_drops && !self.finished {
            let dropped = self.flood_drops;
            tracing::warn!(
                "{}: peer flooded control packets ({dropped} dropped within {}s): ending the link",
                self.name,
                budget.window.as_secs()
            );
            self.finish_now(now, DownReason::ControlFlood { dropped });
        }
        false
    }

    /// An IP datagram (after CCP) for its NCP.
    fn deliver_ip(
        &mut self,
        protocol: u16,
        info: &[u8],
        deliver: &mut dyn FnMut(IpVersion, &[u8]),
    ) {
        let lcp_open = self.lcp.state() == State::Opened;
        let (version, open) = match Protocol::from(protocol) {
            Protocol::Ipv4 => (IpVersion::V4, self.ipcp.state() == State::Opened),
            Protocol::Ipv6 => (
                IpVersion::V6,
                self.ipv6cp
                    .as_ref()
                    .is_some_and(|f| f.state() == State::Opened),
            ),
            other => {
                self.stats.rx_unknown_protocol += 1;
                tracing::debug!("{}: discarded decompressed {} packet", self.name, other);
                return;
            }
        };
        if lcp_open && open {
            self.stats.rx_packets += 1;
            self.stats.rx_bytes += info.len() as u64;
            deliver(version, info);
        } else {
            self.stats.rx_not_open += 1;
            tracing::debug!(
                "{}: discarded {:?} packet: NCP not open",
                self.name,
                version
            );
        }
    }

    fn mppe_required(&self) -> bool {
        self.config.ccp.mppe.as_ref().is_some_and(|m| m.required)
    }

    /// A Compressed Datagram (RFC 1962 s3, protocol 0x00fd).
    fn handle_compressed(
        &mut self,
        now: Instant,
        info: &[u8],
        deliver: &mut dyn FnMut(IpVersion, &[u8]),
    ) {
        let mut packet = std::mem::take(&mut self.ccp_buf);
        let result = match &mut self.rx_path {
            Some(RxPath::Mppe(rx)) => rx.decrypt_into(info, &mut packet),
            Some(RxPath::Deflate(rx)) => rx.decompress_into(info, &mut packet),
            None => {
                self.ccp_buf = packet;
                self.stats.rx_ccp_dropped += 1;
                tracing::debug!("{}: compressed datagram before CCP opened", self.name);
                return;
            }
        };
        match result {
            Ok(protocol) => {
                // MPPE resynchronises on a flushed packet without waiting
                // for the Reset-Ack.
                if matches!(self.rx_path, Some(RxPath::Mppe(_))) {
                    self.ccp_reset = None;
                }
                self.deliver_ip(protocol, &packet, deliver);
                self.ccp_buf = packet;
            }
            Err(e) => {
                self.ccp_buf = packet;
                self.stats.rx_ccp_dropped += 1;
                tracing::debug!("{}: dropped compressed datagram: {}", self.name, e);
                if e.needs_reset() {
                    self.send_ccp_reset_request(now);
                }
            }
        }
    }

    /// RFC 1962 s2.1: asks the peer to reset its compressor; repeated
    /// every second until the matching Reset-Ack.
    fn send_ccp_reset_request(&mut self, now: Instant) {
        if self.ccp_reset.is_some() {
            return;
        }
        let Some(ccp) = &mut self.ccp else { return };
        let id = ccp.next_identifier();
        self.ccp_reset = Some((id, now));
        self.ccp_reset_timer(now);
    }

    fn ccp_reset_timer(&mut self, now: Instant) {
        let Some((id, due)) = self.ccp_reset else {
            return;
        };
        if due > now {
            return;
        }
        if self.ccp.as_ref().is_none_or(|f| f.state() != State::Opened) {
            self.ccp_reset = None;
            return;
        }
        self.ccp_reset = Some((id, now + Duration::from_secs(1)));
        self.stats.tx_ccp_resets += 1;
        self.send_control(
            Protocol::Ccp,
            crate::auth::build(crate::ccp::code::RESET_REQUEST, id, &[]),
        );
    }

    fn handle_ccp(&mut self, now: Instant, info: &[u8]) {
        tracing::debug!(
            "{}: rcvd [{}]",
            self.name,
            describe(Protocol::Ccp.into(), info)
        );
        let packet = match ControlRepr::parse_bytes(info) {
            Ok(p) => p,
            Err(e) => {
                self.stats.rx_bad_control += 1;
                tracing::debug!("{}: bad CCP packet: {}", self.name, e);
                return;
            }
        };
        let opened = self
            .ccp
            .as_ref()
            .is_some_and(|f| f.state() == State::Opened);
        match u8::from(packet.code) {
            crate::ccp::code::RESET_REQUEST => {
                if !opened {
                    self.stats.rx_discarded_control += 1;
                    return;
                }
                // RFC 1962 s2.1: reset our compressor, then Reset-Ack.
                match &mut self.tx_path {
                    Some(TxPath::Deflate(tx)) => tx.reset(),
                    Some(TxPath::Mppe(tx)) => tx.reset(),
                    None => {}
                }
                self.send_control(
                    Protocol::Ccp,
                    crate::auth::build(crate::ccp::code::RESET_ACK, packet.identifier, &[]),
                );
            }
            crate::ccp::code::RESET_ACK => {
                // Only the Ack of our outstanding request resets: a late
                // duplicate must not break a stream that resumed.
                // MPPE is back in step only once a flushed packet
                // decrypts: until then the request keeps being repeated.
                if self
                    .ccp_reset
                    .is_some_and(|(id, _)| id == packet.identifier)
                {
                    if let Some(RxPath::Deflate(rx)) = &mut self.rx_path {
                        rx.reset();
                        self.ccp_reset = None;
                    }
                } else {
                    self.stats.rx_discarded_control += 1;
                }
            }
            _ => {
                let Some(fsm) = self.ccp.as_mut() else { return };
                let mut out = Output::default();
                let result = fsm.receive(now, packet, info, &mut out);
                self.count_discard(Protocol::Ccp, result);
                self.process(now, Layer::Ccp, out);
            }
        }
    }

    fn handle_auth(&mut self, now: Instant, protocol: u16, info: &[u8]) {
        if self.lcp.state() != State::Opened {
            self.stats.rx_not_open += 1;
            return;
        }
        tracing::debug!("{}: rcvd [{}]", self.name, describe(protocol, info));
        let protocol = Protocol::from(protocol);
        let code = info.first().copied().unwrap_or(0);
        // Requests/Responses go to the authenticator, the rest to our peer
        // side (RFC 1334 s2.2, RFC 1994 s4, RFC 2759 s7).
        let to_authenticator = match protocol {
            Protocol::Pap => code == crate::auth::pap_code::REQUEST,
            _ => matches!(
                code,
                crate::auth::chap_code::RESPONSE | crate::auth::chap_code::CHANGE_PASSWORD
            ),
        };
        let mut out = AuthOutput::default();
        let handled = if to_authenticator {
            self.authenticator.as_mut().map(|a| {
                let before = a.stats.clone();
                a.handle_packet(now, protocol, info, &mut out);
                (before, a.stats.clone())
            })
        } else {
            self.auth_peer.as_mut().map(|p| {
                let before = p.stats.clone();
                p.handle_packet(now, protocol, info, &mut out);
                (before, p.stats.clone())
            })
        };
        match handled {
            Some((before, after)) => {
                self.stats.rx_bad_auth += after.rx_malformed - before.rx_malformed;
                self.stats.rx_discarded_auth += after.rx_discarded - before.rx_discarded;
            }
            None => {
                self.stats.rx_discarded_auth += 1;
                tracing::debug!("{}: {} packet not expected", self.name, protocol);
            }
        }
        self.after_auth(now, out);
    }

    /// Sends what the auth engines produced and acts on their outcomes.
    fn after_auth(&mut self, now: Instant, out: AuthOutput) {
        for (protocol, packet) in out.packets {
            self.send_control(protocol, packet);
        }
        if self.lcp.state() != State::Opened || self.finished {
            return;
        }
        let mut failure = None;
        if let Some(a) = &self.authenticator {
            match a.outcome().clone() {
                AuthOutcome::Failure {
                    user,
                    method,
                    reason,
                } => failure = Some((user, method, reason, false)),
                AuthOutcome::Success {
                    user,
                    method,
                    address,
                } if self.peer_auth.is_none() => {
                    self.fixed_address = address;
                    // With the driver choosing, the fixed address goes to it
                    // (`PeerAddressNeeded`) and it decides.
                    if let Some(addr) = address.filter(|_| !self.config.ipcp.remote_from_driver) {
                        tracing::info!(
                            "{}: peer {} gets its fixed address {}",
                            self.name,
                            user,
                            addr
                        );
                        self.ipcp.negotiator.set_remote(addr);
                    }
                    // pppd: "PAP peer authentication succeeded for alice".
                    tracing::info!(
                        "{}: {} peer authentication succeeded for {}",
                        self.name,
                        method.name(),
                        user
                    );
                    self.peer_auth = Some((user.clone(), method));
                    self.auth_events.push_back(AuthEvent::Authenticated {
                        user,
                        method,
                        address,
                    });
                }
                _ => {}
            }
        }
        if let Some(p) = &self.auth_peer {
            if let AuthOutcome::Failure {
                user,
                method,
                reason,
            } = p.outcome().clone()
            {
                failure.get_or_insert((user, method, reason, true));
            }
        }
        if let Some((user, method, reason, ours)) = failure {
            if ours {
                tracing::warn!(
                    "{}: {} authentication failed: {}",
                    self.name,
                    method.name(),
                    reason
                );
            } else {
                // pppd: "Peer alice failed CHAP authentication".
                tracing::warn!(
                    "{}: Peer {} failed {} authentication: {}",
                    self.name,
                    user,
                    method.name(),
                    reason
                );
            }
            self.auth_events.push_back(AuthEvent::AuthFailed {
                user,
                method,
                reason: reason.clone(),
                ours,
            });
            // pppd's Terminate texts.
            let text = if ours {
                "Failed to authenticate ourselves to peer"
            } else {
                "Authentication failed"
            };
            self.authenticator = None;
            if let Some(peer) = self.auth_peer.take() {
                self.last_pap_id = peer.last_pap_id();
            }
            self.down_reason.get_or_insert(DownReason::AuthFailed {
                method,
                reason,
                ours,
            });
            self.lcp.set_terminate_text(text);
            let mut out = Output::default();
            self.lcp.close(now, &mut out);
            self.process(now, Layer::Lcp, out);
            return;
        }
        if self.network {
            return;
        }
        let authenticator_done = self
            .authenticator
            .as_ref()
            .is_none_or(|a| matches!(a.outcome(), AuthOutcome::Success { .. }));
        let peer_done = match &self.auth_peer {
            None => true,
            Some(p) => match p.outcome() {
                AuthOutcome::Success { user, method, .. } => {
                    let (user, method) = (user.clone(), *method);
                    if authenticator_done {
                        tracing::info!("{}: {} authentication succeeded", self.name, method.name());
                        self.auth_events
                            .push_back(AuthEvent::AuthenticatedToPeer { user, method });
                    }
                    true
                }
                _ => false,
            },
        };
        if authenticator_done && peer_done {
            self.enter_network(now);
        }
    }

    /// RFC 1661 s3.5 -> s3.6: authentication is over; CCP and the NCPs start.
    fn enter_network(&mut self, now: Instant) {
        self.network = true;
        self.sync_phase();
        let mppe_keys = self
            .authenticator
            .as_ref()
            .is_some_and(|a| a.mppe_keys.is_some())
            || self
                .auth_peer
                .as_ref()
                .is_some_and(|p| p.mppe_keys.is_some());
        if let Some(ccp) = &mut self.ccp {
            ccp.negotiator.set_mppe_available(mppe_keys);
            let mut out = Output::default();
            ccp.up(now, &mut out);
            self.process(now, Layer::Ccp, out);
        }
        if self.mppe_required() {
            if !mppe_keys {
                tracing::warn!(
                    "{}: MPPE required but no MS-CHAPv2 keys (MPPE needs MS-CHAPv2)",
                    self.name
                );
                self.fail_link(now, "MPPE required but not available", "MPPE");
                return;
            }
            self.ncps_waiting = true;
            return;
        }
        self.start_ncps(now);
    }

    fn start_ncps(&mut self, now: Instant) {
        self.ncps_waiting = false;
        if self.config.ipcp.remote_from_driver
            && !matches!(self.peer_address, PeerAddress::Supplied(_))
        {
            // IPCP waits for the driver (pool, secrets, RADIUS); IPV6CP
            // needs no address from it.
            if self.peer_address == PeerAddress::NotAsked {
                self.peer_address = PeerAddress::Waiting(None);
                let user = self.peer_auth.as_ref().map(|(u, _)| u.clone());
                tracing::debug!("{}: IPCP waits for the peer's address", self.name);
                self.events.push_back(Event::PeerAddressNeeded {
                    user,
                    fixed: self.fixed_address,
                });
            }
        } else {
            let mut out = Output::default();
            self.ipcp.up(now, &mut out);
            self.process(now, Layer::Ipcp, out);
        }
        if let Some(fsm) = &mut self.ipv6cp {
            let mut out = Output::default();
            fsm.up(now, &mut out);
            self.process(now, Layer::Ipv6cp, out);
        }
    }

    /// Closes LCP with `text` and reports `what` as the failed protocol.
    fn fail_link(&mut self, now: Instant, text: &str, what: &'static str) {
        self.fail_with(now, text, DownReason::NegotiationFailed(what));
    }

    /// Closes LCP with `text`; the link goes down for `reason`.
    fn fail_with(&mut self, now: Instant, text: &str, reason: DownReason) {
        self.down_reason.get_or_insert(reason);
        self.lcp.set_terminate_text(text);
        let mut out = Output::default();
        self.lcp.close(now, &mut out);
        self.process(now, Layer::Lcp, out);
    }

    fn ccp_signal(&mut self, now: Instant, signal: Signal) {
        match signal {
            Signal::Up => {
                let Some(ccp) = &self.ccp else { return };
                let (tx, rx) = (ccp.negotiator.tx, ccp.negotiator.rx);
                let keys = self
                    .authenticator
                    .as_ref()
                    .and_then(|a| a.mppe_keys.clone())
                    .or_else(|| self.auth_peer.as_ref().and_then(|p| p.mppe_keys.clone()));
                self.tx_path = match tx {
                    Some(CcpMethod::Deflate { .. }) => Some(TxPath::Deflate(DeflateTx::new())),
                    Some(CcpMethod::Mppe {
                        strength,
                        stateless,
                    }) => keys
                        .as_ref()
                        .map(|k| TxPath::Mppe(Box::new(MppeTx::new(k, strength, stateless)))),
                    None => None,
                };
                self.rx_path = match rx {
                    Some(CcpMethod::Deflate { .. }) => Some(RxPath::Deflate(DeflateRx::new())),
                    Some(CcpMethod::Mppe {
                        strength,
                        stateless,
                    }) => keys
                        .as_ref()
                        .map(|k| RxPath::Mppe(Box::new(MppeRx::new(k, strength, stateless)))),
                    None => None,
                };
                let show = |m: Option<CcpMethod>| m.map_or("none".to_string(), |m| m.to_string());
                tracing::info!(
                    "{}: CCP: send {} / receive {}",
                    self.name,
                    show(tx),
                    show(rx)
                );
                self.auth_events.push_back(AuthEvent::CcpUp { tx, rx });
                if self.mppe_required() {
                    let both = matches!(self.tx_path, Some(TxPath::Mppe(_)))
                        && matches!(self.rx_path, Some(RxPath::Mppe(_)));
                    if !both {
                        self.fail_link(now, "MPPE required but peer negotiated without", "MPPE");
                        return;
                    }
                    if self.ncps_waiting {
                        self.start_ncps(now);
                    }
                }
            }
            Signal::Down => {
                self.tx_path = None;
                self.rx_path = None;
                self.ccp_reset = None;
                if self.mppe_required() && self.lcp.state() == State::Opened {
                    // As pppd: no encryption, no link.
                    tracing::info!("{}: MPPE disabled", self.name);
                    self.fail_link(now, "MPPE disabled", "MPPE");
                }
            }
            Signal::Started => {}
            Signal::Finished => {
                self.tx_path = None;
                self.rx_path = None;
                if self.mppe_required() && self.lcp.state() == State::Opened {
                    self.fail_link(now, "MPPE required but peer refused", "MPPE");
                }
            }
        }
    }

    fn count_discard(&mut self, protocol: Protocol, result: Result<(), crate::fsm::Discard>) {
        match result {
            Ok(()) => {}
            Err(crate::fsm::Discard::Malformed(e)) => {
                self.stats.rx_bad_control += 1;
                tracing::debug!("{}: bad {} packet: {}", self.name, protocol, e);
            }
            Err(e) => {
                self.stats.rx_discarded_control += 1;
                tracing::debug!("{}: discarded {} packet: {}", self.name, protocol, e);
            }
        }
    }

    fn handle_lcp(&mut self, now: Instant, info: &[u8]) {
        let packet = match ControlRepr::parse_bytes(info) {
            Ok(p) => p,
            Err(e) => {
                self.stats.rx_bad_control += 1;
                tracing::debug!("{}: bad LCP packet: {}", self.name, e);
                return;
            }
        };
        tracing::debug!(
            "{}: rcvd [{}]",
            self.name,
            describe(Protocol::Lcp.into(), info)
        );
        let opened = self.lcp.state() == State::Opened;
        let mut out = Output::default();
        match packet.code {
            Code::ProtocolReject => {
                let [hi, lo, ..] = *packet.data else {
                    self.stats.rx_bad_control += 1;
                    tracing::debug!("{}: bad LCP Protocol-Reject: no protocol field", self.name);
                    return;
                };
                if !opened {
                    self.stats.rx_discarded_control += 1;
                    return;
                }
                let rejected = Protocol::from(u16::from_be_bytes([hi, lo]));
                tracing::info!("{}: Protocol-Reject for {} received", self.name, rejected);
                match rejected {
                    Protocol::Lcp => self.lcp.reject_received(now, true, &mut out),
                    Protocol::Ipcp => {
                        let mut ncp = Output::default();
                        self.ipcp.reject_received(now, true, &mut ncp);
                        self.process(now, Layer::Ipcp, ncp);
                    }
                    Protocol::Ipv6cp => {
                        if let Some(fsm) = &mut self.ipv6cp {
                            let mut ncp = Output::default();
                            fsm.reject_received(now, true, &mut ncp);
                            self.process(now, Layer::Ipv6cp, ncp);
                        }
                    }
                    // The peer has no CCP: stop asking (RFC 1661 s5.7).
                    Protocol::Ccp if self.ccp.is_some() => {
                        if let Some(fsm) = &mut self.ccp {
                            let mut ccp = Output::default();
                            fsm.reject_received(now, true, &mut ccp);
                            self.process(now, Layer::Ccp, ccp);
                        }
                    }
                    _ => self.lcp.reject_received(now, false, &mut out),
                }
            }
            Code::EchoRequest | Code::EchoReply | Code::DiscardRequest => {
                if packet.data.len() < 4 {
                    self.stats.rx_bad_control += 1;
                    tracing::debug!("{}: bad LCP {:?}: no magic number", self.name, packet.code);
                    return;
                }
                self.lcp.echo_or_discard_received(now, &mut out);
                if packet.code == Code::EchoReply && opened {
                    self.stats.rx_echo_replies += 1;
                    self.echo_pending = 0;
                }
                // RXR covers Echo-Reply and Discard-Request too; only an
                // Echo-Request is answered (RFC 1661 s5.8).
                if std::mem::take(&mut out.send_echo_reply) && packet.code == Code::EchoRequest {
                    let magic = self.lcp.negotiator.magic();
                    let room = (self.lcp.negotiator.peer.mru as usize).saturating_sub(8);
                    let rest = &packet.data[4..];
                    let mut data = Vec::with_capacity(4 + rest.len());
                    data.extend_from_slice(&magic.to_be_bytes());
                    data.extend_from_slice(&rest[..rest.len().min(room)]);
                    out.packets.push(crate::fsm::packet(
                        Code::EchoReply,
                        packet.identifier,
                        &data,
                    ));
                }
            }
            Code::Identification => {
                if packet.data.len() < 4 {
                    self.stats.rx_bad_control += 1;
                    tracing::debug!("{}: bad LCP Identification: no magic number", self.name);
                    return;
                }
                let text = peer_text(&packet.data[4..]);
                // Logged and reported once per new text: a peer repeating
                // it must not flood the log.
                if self.peer_ident.as_deref() != Some(text.as_str()) {
                    tracing::info!("{}: LCP: TEXT {}", self.name, text);
                    self.peer_ident = Some(text.clone());
                    self.events.push_back(Event::PeerIdent(text));
                }
            }
            // RFC 1570 s2.2: informational only (logged above at debug).
            Code::TimeRemaining => {}
            Code::TerminateRequest => {
                if matches!(
                    self.lcp.state(),
                    State::Opened | State::ReqSent | State::AckRcvd | State::AckSent
                ) {
                    let text = peer_text(packet.data);
                    tracing::info!("{}: LCP terminated by peer ({})", self.name, text);
                    self.down_reason
                        .get_or_insert(DownReason::PeerTerminated(text));
                }
                let result = self.lcp.receive(now, packet, info, &mut out);
                self.count_discard(Protocol::Lcp, result);
            }
            code => {
                let result = self.lcp.receive(now, packet, info, &mut out);
                self.count_discard(Protocol::Lcp, result);
                if code == Code::ConfigureRequest
                    && self.lcp.negotiator.loops >= self.config.timers.max_failure.max(1)
                {
                    tracing::warn!("{}: Serial line is looped back", self.name);
                    self.process(now, Layer::Lcp, out);
                    self.finish_now(now, DownReason::LoopbackDetected);
                    return;
                }
            }
        }
        self.process(now, Layer::Lcp, out);
    }

    fn echo_timer(&mut self, now: Instant) {
        self.echo_deadline = None;
        let Some(echo) = self.config.lcp.echo.clone() else {
            return;
        };
        if self.lcp.state() != State::Opened || self.finished {
            return;
        }
        if self.echo_pending >= echo.failures {
            tracing::info!(
                "{}: No response to {} echo-requests",
                self.name,
                self.echo_pending
            );
            self.finish_now(now, DownReason::EchoTimeout);
            return;
        }
        let magic = self.lcp.negotiator.magic();
        let id = self.lcp.next_identifier();
        self.echo_pending += 1;
        self.stats.tx_echo_requests += 1;
        self.send_control(
            Protocol::Lcp,
            crate::fsm::packet(Code::EchoRequest, id, &magic.to_be_bytes()),
        );
        self.echo_deadline = Some(now + echo.interval);
    }

    /// Ends the link at once: Terminate-Request (best effort), then
    /// Down. Used when waiting for the peer makes no sense (it is silent,
    /// or it is ourselves).
    fn finish_now(&mut self, now: Instant, reason: DownReason) {
        let text = match &reason {
            DownReason::EchoTimeout => "Peer not responding",
            DownReason::LoopbackDetected => "Loopback detected",
            DownReason::ControlFlood { .. } => "Too many control packets",
            _ => "",
        };
        self.lcp.set_terminate_text(text);
        let mut out = Output::default();
        self.lcp.close(now, &mut out);
        self.process(now, Layer::Lcp, out);
        let mut out = Output::default();
        self.lcp.down(now, &mut out);
        self.process(now, Layer::Lcp, out);
        if !self.finished {
            self.down_reason = None;
            self.report_down(reason);
        }
    }

    fn report_down(&mut self, reason: DownReason) {
        self.finished = true;
        self.echo_deadline = None;
        self.sync_phase();
        tracing::info!("{}: Connection terminated: {:?}", self.name, reason);
        self.events.push_back(Event::Down(reason));
    }

    fn wanted_phase(&self) -> Phase {
        if self.finished || !self.started {
            return Phase::Dead;
        }
        match self.lcp.state() {
            State::Opened if self.network => Phase::Network,
            State::Opened => Phase::Authenticate,
            State::Closing | State::Stopping => Phase::Terminate,
            State::Initial => Phase::Dead,
            _ => Phase::Establish,
        }
    }

    fn sync_phase(&mut self) {
        let phase = self.wanted_phase();
        if phase != self.phase {
            self.phase = phase;
            tracing::info!("{}: Phase: {:?}", self.name, phase);
            self.events.push_back(Event::Phase(phase));
        }
    }

    fn send_control(&mut self, protocol: Protocol, packet: Vec<u8>) {
        tracing::debug!(
            "{}: sent [{}]",
            self.name,
            describe(protocol.into(), &packet)
        );
        // RFC 1662 s7.1 / RFC 1661 s6: LCP Configure, Terminate and
        // Code-Reject packets always go with the default framing.
        let lcp_defaults =
            protocol == Protocol::Lcp && (1..=7).contains(packet.first().unwrap_or(&0));
        let header = if lcp_defaults {
            Header::uncompressed(protocol.into())
        } else {
            // As negotiated while LCP is Opened (what the peer acked of its
            // request is how we send, RFC 1661 s6.5, s6.6).
            let opened = self.lcp.state() == State::Opened;
            let n = &self.lcp.negotiator.peer;
            Header::new(
                protocol.into(),
                packet.is_empty(),
                opened && n.acfc,
                opened && n.pfc,
            )
        };
        if self.tx.len() >= MAX_TX_QUEUE {
            self.stats.tx_control_dropped += 1;
            return;
        }
        self.tx.push_back(ControlFrame {
            header,
            packet,
            lcp_defaults,
        });
        self.stats.tx_frames += 1;
    }

    /// Sends the packets and acts on the layer signals of one automaton.
    fn process(&mut self, now: Instant, layer: Layer, out: Output) {
        for packet in out.packets {
            if packet.first() == Some(&u8::from(Code::CodeReject)) {
                self.stats.tx_code_rejects += 1;
            }
            self.send_control(layer.protocol(), packet);
        }
        for signal in out.signals {
            match layer {
                Layer::Lcp => self.lcp_signal(now, signal),
                Layer::Ipcp => self.ipcp_signal(now, signal),
                Layer::Ipv6cp => self.ipv6cp_signal(now, signal),
                Layer::Ccp => self.ccp_signal(now, signal),
            }
        }
    }

    fn lcp_signal(&mut self, now: Instant, signal: Signal) {
        match signal {
            Signal::Up => {
                let n = &self.lcp.negotiator;
                let (peer, ours) = (n.peer, n.ours);
                // What the peer acked of ours is how it sends to us; what we
                // acked of its request is how we send (RFC 1662 s7.1); the
                // framing follows from the negotiator while LCP is Opened
                // (`async_framing`, the headers in `send_control`). RFC
                // 1570 s2.1: each direction's FCS is the one its receiver
                // asked for and the sender acked.
                if ours.fcs != FcsMode::Fcs16 || peer.fcs != FcsMode::Fcs16 {
                    tracing::info!(
                        "{}: LCP: FCSALT rx {} tx {}",
                        self.name,
                        fcs_text(ours.fcs),
                        fcs_text(peer.fcs)
                    );
                }
                if let Some(magic) = peer.magic {
                    tracing::info!("{}: LCP: MAGICNUM {:08x}", self.name, magic);
                }
                tracing::info!(
                    "{}: LCP opened: mru {} peer mru {} asyncmap {:#x} peer asyncmap {:#x} pcomp {} accomp {}",
                    self.name,
                    ours.mru,
                    peer.mru,
                    ours.accm,
                    peer.accm,
                    peer.pfc,
                    peer.acfc
                );
                // Without authentication LCP goes straight to the Network
                // phase (RFC 1661 s3.5), with no Authenticate phase event.
                self.network = peer.auth.is_none()
                    && ours.auth.is_none()
                    && self.config.auth.require.is_empty();
                self.sync_phase();
                if let Some(text) = self.config.lcp.ident.clone() {
                    let mut data = self.lcp.negotiator.magic().to_be_bytes().to_vec();
                    let room = (peer.mru as usize).saturating_sub(8);
                    data.extend_from_slice(&text.as_bytes()[..text.len().min(room)]);
                    let id = self.lcp.next_identifier();
                    self.send_control(
                        Protocol::Lcp,
                        crate::fsm::packet(Code::Identification, id, &data),
                    );
                }
                self.echo_pending = 0;
                self.echo_deadline = self.config.lcp.echo.as_ref().map(|e| now + e.interval);
                self.begin_auth(now);
            }
            Signal::Down => {
                self.echo_deadline = None;
                self.authenticator = None;
                if let Some(peer) = self.auth_peer.take() {
                    self.last_pap_id = peer.last_pap_id();
                }
                self.network = false;
                self.ncps_waiting = false;
                self.peer_auth = None;
                self.peer_address = PeerAddress::NotAsked;
                self.fixed_address = None;
                self.tx_path = None;
                self.rx_path = None;
                self.ipcp.negotiator.restore_remote(self.config.ipcp.remote);
                if let Some(fsm) = &mut self.ccp {
                    let mut out = Output::default();
                    fsm.down(now, &mut out);
                    self.process(now, Layer::Ccp, out);
                }
                let mut out = Output::default();
                self.ipcp.down(now, &mut out);
                self.process(now, Layer::Ipcp, out);
                if let Some(fsm) = &mut self.ipv6cp {
                    let mut out = Output::default();
                    fsm.down(now, &mut out);
                    self.process(now, Layer::Ipv6cp, out);
                }
                self.sync_phase();
            }
            Signal::Started => self.sync_phase(),
            Signal::Finished => {
                if !self.finished {
                    let reason = self
                        .down_reason
                        .take()
                        .unwrap_or(DownReason::NegotiationFailed("LCP"));
                    self.report_down(reason);
                }
            }
        }
    }

    /// LCP opened: RFC 1661 s3.5, authenticate in both directions as
    /// negotiated, or go straight to the Network phase.
    fn begin_auth(&mut self, now: Instant) {
        let (ours, theirs) = (self.lcp.negotiator.ours.auth, self.lcp.negotiator.peer.auth);
        if !self.config.auth.require.is_empty() && ours.is_none() {
            // pppd: "peer refused to authenticate".
            tracing::warn!("{}: peer refused to authenticate", self.name);
            self.auth_events.push_back(AuthEvent::PeerRefusedAuth);
            self.fail_with(
                now,
                "Peer refused to authenticate",
                DownReason::PeerRefusedAuth,
            );
            return;
        }
        if ours.is_none() && theirs.is_none() {
            self.enter_network(now);
            return;
        }
        // Every challenge is a fresh draw from `random`: a redial never
        // repeats one (a recorded response would be replayable).
        let mut out = AuthOutput::default();
        if let Some(method) = ours {
            tracing::info!("{}: authenticating peer with {}", self.name, method.name());
            self.authenticator = Some(Authenticator::start(
                method,
                self.config.auth.clone(),
                self.random.clone(),
                now,
                &mut out,
            ));
        }
        if let Some(method) = theirs {
            tracing::info!(
                "{}: authenticating to peer with {}",
                self.name,
                method.name()
            );
            self.auth_peer = Some(AuthPeer::start_after(
                method,
                self.config.auth.clone(),
                self.random.clone(),
                self.last_pap_id,
                now,
                &mut out,
            ));
        }
        self.sync_phase();
        self.after_auth(now, out);
    }

    fn ncp_finished(&mut self, now: Instant, name: &'static str) {
        let others_alive =
            alive(self.ipcp.state()) || self.ipv6cp.as_ref().is_some_and(|f| alive(f.state()));
        if !others_alive && self.lcp.state() == State::Opened {
            tracing::info!(
                "{}: {} finished: no network protocols running",
                self.name,
                name
            );
            self.down_reason
                .get_or_insert(DownReason::NegotiationFailed(name));
            self.lcp.set_terminate_text("No network protocols running");
            let mut out = Output::default();
            self.lcp.close(now, &mut out);
            self.process(now, Layer::Lcp, out);
        }
    }

    fn ipcp_signal(&mut self, now: Instant, signal: Signal) {
        match signal {
            Signal::Up => {
                let n = &self.ipcp.negotiator;
                let (local, peer, dns) = (n.local, n.peer, n.dns);
                if peer.is_unspecified() {
                    // Neither configured nor agreed (a peer whose address
                    // was refused dropped the option): no route could
                    // reach it (pppd closes IPCP the same way).
                    tracing::warn!(
                        "{}: IPCP: could not determine the peer's address",
                        self.name
                    );
                    self.ipcp
                        .set_terminate_text("Could not determine remote IP address");
                    let mut out = Output::default();
                    self.ipcp.close(now, &mut out);
                    self.process(now, Layer::Ipcp, out);
                    return;
                }
                tracing::info!("{}: IPCP: myaddr {} hisaddr = {}", self.name, local, peer);
                tracing::info!("{}: local  IP address {}", self.name, local);
                tracing::info!("{}: remote IP address {}", self.name, peer);
                if let Some(d) = dns[0] {
                    tracing::info!("{}: primary   DNS address {}", self.name, d);
                }
                if let Some(d) = dns[1] {
                    tracing::info!("{}: secondary DNS address {}", self.name, d);
                }
                self.ipv4_up = true;
                self.events.push_back(Event::Ipv4Up { local, peer, dns });
            }
            Signal::Down => {
                if self.ipv4_up {
                    self.ipv4_up = false;
                    tracing::info!("{}: IPCP: down", self.name);
                    self.events.push_back(Event::Ipv4Down);
                }
            }
            Signal::Started => {}
            Signal::Finished => self.ncp_finished(now, "IPCP"),
        }
    }

    fn ipv6cp_signal(&mut self, now: Instant, signal: Signal) {
        match signal {
            Signal::Up => {
                let Some(fsm) = &self.ipv6cp else { return };
                let (local_id, peer_id) = (fsm.negotiator.local_id, fsm.negotiator.peer_id);
                tracing::info!(
                    "{}: local  LL address {}",
                    self.name,
                    link_local_text(&local_id)
                );
                tracing::info!(
                    "{}: remote LL address {}",
                    self.name,
                    link_local_text(&peer_id)
                );
                self.ipv6_up = true;
                self.events.push_back(Event::Ipv6Up { local_id, peer_id });
            }
            Signal::Down => {
                if self.ipv6_up {
                    self.ipv6_up = false;
                    tracing::info!("{}: IPV6CP: down", self.name);
                    self.events.push_back(Event::Ipv6Down);
                }
            }
            Signal::Started => {}
            Signal::Finished => self.ncp_finished(now, "IPV6CP"),
        }
    }
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("name", &self.name)
            .field("phase", &self.phase)
            .field("lcp", &self.lcp.state())
            .field("ipcp", &self.ipcp.state())
            .field("ipv6cp", &self.ipv6cp.as_ref().map(|f| f.state()))
            .finish()
    }
}

/// The FCS as user-ppp names it in its FCSALT lines.
fn fcs_text(mode: FcsMode) -> &'static str {
    match mode {
        FcsMode::Fcs16 => "16-bit",
        FcsMode::Null => "null",
    }
}
