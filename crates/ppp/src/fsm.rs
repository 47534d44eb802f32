//! The RFC 1661 option negotiation automaton (section 4), shared by LCP and
//! the NCPs.
//!
//! [`transition`] is the state transition table of section 4.1, written with
//! the RFC's own state, event and action names. [`Fsm`] runs it: it owns
//! the restart timer and counters of section 4.6 (Max-Configure,
//! Max-Terminate, Max-Failure), identifiers, and builds the packets the
//! actions send. What is negotiated is left to a [`Negotiator`] (LCP, IPCP,
//! IPV6CP options).
//!
//! Left out: the optional "restart" (`r`), "passive" (`p`) and crossed
//! connection (`x`) refinements of the table's footnotes; the plain
//! transitions are used.

use std::fmt;
use std::time::{Duration, Instant};

use crate::wire::{Code, ControlRepr, OptionIter, Protocol, RawOption, WireError};

/// RFC 1661 restart timer and counters (section 4.6).
#[derive(Debug, Clone)]
pub struct FsmTimers {
    /// Restart timer, default 3 s.
    pub restart: Duration,
    /// Max-Configure, default 10.
    pub max_configure: u32,
    /// Max-Terminate, default 2.
    pub max_terminate: u32,
    /// Max-Failure, default 5.
    pub max_failure: u32,
}

impl Default for FsmTimers {
    /// RFC 1661 s4.6: Restart 3 s, Max-Terminate 2, Max-Configure 10, Max-Failure 5.
    fn default() -> Self {
        FsmTimers {
            restart: Duration::from_secs(3),
            max_configure: 10,
            max_terminate: 2,
            max_failure: 5,
        }
    }
}

/// RFC 1661 section 4.2 states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// 0: lower layer down, no Open.
    Initial,
    /// 1: Open, waiting for the lower layer.
    Starting,
    /// 2: lower layer up, no Open.
    Closed,
    /// 3: waiting for the peer after a finished negotiation or Terminate-Ack.
    Stopped,
    /// 4: Terminate-Request sent after Close.
    Closing,
    /// 5: Terminate-Request sent (or received) without Close.
    Stopping,
    /// 6: Configure-Request sent.
    ReqSent,
    /// 7: Configure-Ack received, not yet sent.
    AckRcvd,
    /// 8: Configure-Ack sent, not yet received.
    AckSent,
    /// 9: both sides acked.
    Opened,
}

impl State {
    /// All states in the RFC's numbering order.
    pub const ALL: [State; 10] = [
        State::Initial,
        State::Starting,
        State::Closed,
        State::Stopped,
        State::Closing,
        State::Stopping,
        State::ReqSent,
        State::AckRcvd,
        State::AckSent,
        State::Opened,
    ];

    /// The RFC's number for the state (0..=9).
    pub fn number(self) -> usize {
        self as usize
    }

    /// The RFC's name ("Req-Sent").
    pub fn rfc_name(self) -> &'static str {
        match self {
            State::Initial => "Initial",
            State::Starting => "Starting",
            State::Closed => "Closed",
            State::Stopped => "Stopped",
            State::Closing => "Closing",
            State::Stopping => "Stopping",
            State::ReqSent => "Req-Sent",
            State::AckRcvd => "Ack-Rcvd",
            State::AckSent => "Ack-Sent",
            State::Opened => "Opened",
        }
    }

    /// States in which the restart timer runs (RFC 1661 s4.6).
    fn timer_runs(self) -> bool {
        matches!(
            self,
            State::Closing | State::Stopping | State::ReqSent | State::AckRcvd | State::AckSent
        )
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.rfc_name())
    }
}

/// RFC 1661 section 4.3 events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FsmEvent {
    /// Up: lower layer is Up.
    Up,
    /// Down: lower layer is Down.
    Down,
    /// Open: administrative Open.
    Open,
    /// Close: administrative Close.
    Close,
    /// TO+: Timeout with counter > 0.
    ToPlus,
    /// TO-: Timeout with counter expired.
    ToMinus,
    /// RCR+: Receive-Configure-Request (Good).
    RcrPlus,
    /// RCR-: Receive-Configure-Request (Bad).
    RcrMinus,
    /// RCA: Receive-Configure-Ack.
    Rca,
    /// RCN: Receive-Configure-Nak/Rej.
    Rcn,
    /// RTR: Receive-Terminate-Request.
    Rtr,
    /// RTA: Receive-Terminate-Ack.
    Rta,
    /// RUC: Receive-Unknown-Code.
    Ruc,
    /// RXJ+: Receive-Code-Reject (permitted) or Receive-Protocol-Reject.
    RxjPlus,
    /// RXJ-: Receive-Code-Reject (catastrophic) or Receive-Protocol-Reject.
    RxjMinus,
    /// RXR: Receive-Echo-Request, Receive-Echo-Reply or Receive-Discard-Request.
    Rxr,
}

impl FsmEvent {
    /// All events in the order of the RFC's table.
    pub const ALL: [FsmEvent; 16] = [
        FsmEvent::Up,
        FsmEvent::Down,
        FsmEvent::Open,
        FsmEvent::Close,
        FsmEvent::ToPlus,
        FsmEvent::ToMinus,
        FsmEvent::RcrPlus,
        FsmEvent::RcrMinus,
        FsmEvent::Rca,
        FsmEvent::Rcn,
        FsmEvent::Rtr,
        FsmEvent::Rta,
        FsmEvent::Ruc,
        FsmEvent::RxjPlus,
        FsmEvent::RxjMinus,
        FsmEvent::Rxr,
    ];

    /// The RFC's name ("RCR+").
    pub fn rfc_name(self) -> &'static str {
        match self {
            FsmEvent::Up => "Up",
            FsmEvent::Down => "Down",
            FsmEvent::Open => "Open",
            FsmEvent::Close => "Close",
            FsmEvent::ToPlus => "TO+",
            FsmEvent::ToMinus => "TO-",
            FsmEvent::RcrPlus => "RCR+",
            FsmEvent::RcrMinus => "RCR-",
            FsmEvent::Rca => "RCA",
            FsmEvent::Rcn => "RCN",
            FsmEvent::Rtr => "RTR",
            FsmEvent::Rta => "RTA",
            FsmEvent::Ruc => "RUC",
            FsmEvent::RxjPlus => "RXJ+",
            FsmEvent::RxjMinus => "RXJ-",
            FsmEvent::Rxr => "RXR",
        }
    }
}

/// RFC 1661 section 4.4 actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// tlu: This-Layer-Up.
    Tlu,
    /// tld: This-Layer-Down.
    Tld,
    /// tls: This-Layer-Started.
    Tls,
    /// tlf: This-Layer-Finished.
    Tlf,
    /// irc: Initialize-Restart-Count.
    Irc,
    /// zrc: Zero-Restart-Count.
    Zrc,
    /// scr: Send-Configure-Request.
    Scr,
    /// sca: Send-Configure-Ack.
    Sca,
    /// scn: Send-Configure-Nak/Rej.
    Scn,
    /// str: Send-Terminate-Request.
    Str,
    /// sta: Send-Terminate-Ack.
    Sta,
    /// scj: Send-Code-Reject.
    Scj,
    /// ser: Send-Echo-Reply.
    Ser,
}

impl Action {
    /// The RFC's abbreviation ("scr").
    pub fn rfc_name(self) -> &'static str {
        match self {
            Action::Tlu => "tlu",
            Action::Tld => "tld",
            Action::Tls => "tls",
            Action::Tlf => "tlf",
            Action::Irc => "irc",
            Action::Zrc => "zrc",
            Action::Scr => "scr",
            Action::Sca => "sca",
            Action::Scn => "scn",
            Action::Str => "str",
            Action::Sta => "sta",
            Action::Scj => "scj",
            Action::Ser => "ser",
        }
    }
}

/// One cell of the table: actions in order, then the new state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// Actions, in the order the RFC lists them.
    pub actions: &'static [Action],
    /// The state after the actions.
    pub next: State,
}

const fn t(actions: &'static [Action], next: State) -> Option<Transition> {
    Some(Transition { actions, next })
}

use Action::*;
use State::*;

/// `-`: the event cannot happen in that state (RFC 1661 s4.1).
const NO: Option<Transition> = None;

/// RFC 1661 section 4.1, one row per event, one column per state
/// (Initial, Starting, Closed, Stopped, Closing, Stopping, Req-Sent,
/// Ack-Rcvd, Ack-Sent, Opened).
#[rustfmt::skip]
static TABLE: [[Option<Transition>; 10]; 16] = [
    // Up
    [t(&[], Closed), t(&[Irc, Scr], ReqSent), NO, NO, NO, NO, NO, NO, NO, NO],
    // Down
    [NO, NO, t(&[], Initial), t(&[Tls], Starting), t(&[], Initial), t(&[], Starting),
     t(&[], Starting), t(&[], Starting), t(&[], Starting), t(&[Tld], Starting)],
    // Open
    [t(&[Tls], Starting), t(&[], Starting), t(&[Irc, Scr], ReqSent), t(&[], Stopped),
     t(&[], Stopping), t(&[], Stopping), t(&[], ReqSent), t(&[], AckRcvd), t(&[], AckSent),
     t(&[], Opened)],
    // Close
    [t(&[], Initial), t(&[Tlf], Initial), t(&[], Closed), t(&[], Closed), t(&[], Closing),
     t(&[], Closing), t(&[Irc, Str], Closing), t(&[Irc, Str], Closing), t(&[Irc, Str], Closing),
     t(&[Tld, Irc, Str], Closing)],
    // TO+
    [NO, NO, NO, NO, t(&[Str], Closing), t(&[Str], Stopping), t(&[Scr], ReqSent),
     t(&[Scr], ReqSent), t(&[Scr], AckSent), NO],
    // TO-
    [NO, NO, NO, NO, t(&[Tlf], Closed), t(&[Tlf], Stopped), t(&[Tlf], Stopped),
     t(&[Tlf], Stopped), t(&[Tlf], Stopped), NO],
    // RCR+
    [NO, NO, t(&[Sta], Closed), t(&[Irc, Scr, Sca], AckSent), t(&[], Closing), t(&[], Stopping),
     t(&[Sca], AckSent), t(&[Sca, Tlu], Opened), t(&[Sca], AckSent), t(&[Tld, Scr, Sca], AckSent)],
    // RCR-
    [NO, NO, t(&[Sta], Closed), t(&[Irc, Scr, Scn], ReqSent), t(&[], Closing), t(&[], Stopping),
     t(&[Scn], ReqSent), t(&[Scn], AckRcvd), t(&[Scn], ReqSent), t(&[Tld, Scr, Scn], ReqSent)],
    // RCA
    [NO, NO, t(&[Sta], Closed), t(&[Sta], Stopped), t(&[], Closing), t(&[], Stopping),
     t(&[Irc], AckRcvd), t(&[Scr], ReqSent), t(&[Irc, Tlu], Opened), t(&[Tld, Scr], ReqSent)],
    // RCN
    [NO, NO, t(&[Sta], Closed), t(&[Sta], Stopped), t(&[], Closing), t(&[], Stopping),
     t(&[Irc, Scr], ReqSent), t(&[Scr], ReqSent), t(&[Irc, Scr], AckSent), t(&[Tld, Scr], ReqSent)],
    // RTR
    [NO, NO, t(&[Sta], Closed), t(&[Sta], Stopped), t(&[Sta], Closing), t(&[Sta], Stopping),
     t(&[Sta], ReqSent), t(&[Sta], ReqSent), t(&[Sta], ReqSent), t(&[Tld, Zrc, Sta], Stopping)],
    // RTA
    [NO, NO, t(&[], Closed), t(&[], Stopped), t(&[Tlf], Closed), t(&[Tlf], Stopped),
     t(&[], ReqSent), t(&[], ReqSent), t(&[], AckSent), t(&[Tld, Scr], ReqSent)],
    // RUC
    [NO, NO, t(&[Scj], Closed), t(&[Scj], Stopped), t(&[Scj], Closing), t(&[Scj], Stopping),
     t(&[Scj], ReqSent), t(&[Scj], AckRcvd), t(&[Scj], AckSent), t(&[Scj], Opened)],
    // RXJ+
    [NO, NO, t(&[], Closed), t(&[], Stopped), t(&[], Closing), t(&[], Stopping),
     t(&[], ReqSent), t(&[], ReqSent), t(&[], AckSent), t(&[], Opened)],
    // RXJ-
    [NO, NO, t(&[Tlf], Closed), t(&[Tlf], Stopped), t(&[Tlf], Closed), t(&[Tlf], Stopped),
     t(&[Tlf], Stopped), t(&[Tlf], Stopped), t(&[Tlf], Stopped), t(&[Tld, Irc, Str], Stopping)],
    // RXR
    [NO, NO, t(&[], Closed), t(&[], Stopped), t(&[], Closing), t(&[], Stopping),
     t(&[], ReqSent), t(&[], AckRcvd), t(&[], AckSent), t(&[Ser], Opened)],
];

/// The RFC 1661 s4.1 table: what `event` does in `state`. `None` is the
/// RFC's `-` (cannot happen); the runtime logs and ignores it.
pub fn transition(state: State, event: FsmEvent) -> Option<Transition> {
    // Rows are in the order of `FsmEvent`'s variants, columns in that of
    // `State`'s (both the RFC's order).
    TABLE[event as usize][state.number()]
}

/// What a Negotiator says about one option of the peer's Configure-Request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionVerdict {
    /// Acceptable as is.
    Ack,
    /// Not acceptable; the negotiator appended the value it wants (a whole
    /// option, type and length included) to the Nak list.
    Nak,
    /// Not recognised or not negotiable.
    Reject,
}

/// What we answer a Configure-Request with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Configure-Ack: RCR+.
    Ack,
    /// Configure-Nak: RCR-.
    Nak,
    /// Configure-Reject: RCR-.
    Reject,
}

/// The protocol-specific half of a control protocol: which options we ask
/// for and which the peer may have.
pub trait Negotiator {
    /// The PPP protocol number.
    const PROTOCOL: Protocol;
    /// "LCP", "IPCP"... for logs and errors.
    const NAME: &'static str;

    /// A new negotiation starts (RFC 1661 irc before the first scr): go back
    /// to the configured wishes.
    fn reset(&mut self);

    /// Appends the options of our Configure-Request.
    fn build_request(&mut self, out: &mut Vec<u8>);

    /// A Configure-Request from the peer is being checked; forget what the
    /// previous one said.
    fn begin_request(&mut self) {}

    /// Checks one option of the peer's Configure-Request. For a Nak, append
    /// the wanted option to `nak`.
    fn check_option(
        &mut self,
        option: &RawOption<'_>,
        nak: &mut Vec<u8>,
    ) -> Result<OptionVerdict, WireError>;

    /// The peer acked exactly our last request.
    fn handle_ack(&mut self) {}

    /// The peer Nak'd some of our options.
    fn handle_nak(&mut self, option: &RawOption<'_>) -> Result<(), WireError>;

    /// The peer rejected some of our options.
    fn handle_reject(&mut self, option: &RawOption<'_>) -> Result<(), WireError>;

    /// Checks one option of a Configure-Nak or -Reject before any is
    /// applied, so a malformed reply is discarded whole (RFC 1661 s5).
    fn validate_option(option: &RawOption<'_>) -> Result<(), WireError>;

    /// pppd-style text for one option ("mru 1410").
    fn describe_option(f: &mut fmt::Formatter<'_>, option: &RawOption<'_>) -> fmt::Result;
}

/// A layer signal from the actions tlu/tld/tls/tlf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// tlu.
    Up,
    /// tld.
    Down,
    /// tls.
    Started,
    /// tlf.
    Finished,
}

/// What running the automaton produced: control packets to send (without
/// the PPP protocol field) and layer signals, in order.
#[derive(Debug, Default)]
pub struct Output {
    /// Control packets for the protocol of the FSM.
    pub packets: Vec<Vec<u8>>,
    /// Layer signals.
    pub signals: Vec<Signal>,
    /// ser ran: the caller (LCP) answers the Echo-Request.
    pub send_echo_reply: bool,
    /// The actions run, in order (for logs and tests).
    pub actions: Vec<Action>,
}

/// Why a received control packet was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Discard {
    /// The packet or its options did not parse.
    #[error(transparent)]
    Malformed(#[from] WireError),
    /// An Ack/Nak/Reject whose identifier is not that of our last request.
    #[error("{code:?} id={id:#x} does not match our request id={expected:#x}")]
    BadIdentifier {
        /// The code.
        code: Code,
        /// The identifier received.
        id: u8,
        /// The identifier of our outstanding request.
        expected: u8,
    },
    /// A Configure-Ack whose options differ from what we sent (s5.2).
    #[error("Configure-Ack options differ from our request")]
    AckMismatch,
    /// A Configure-Reject naming an option we did not send (s5.4).
    #[error("Configure-Reject of option {0}, which is not in our request")]
    RejectMismatch(u8),
    /// The packet cannot be used in this state.
    #[error("{0} not expected in state {1}")]
    NotExpected(&'static str, State),
}

/// Context the receive path hands to the actions.
#[derive(Default)]
struct Ctx<'a> {
    /// sca/scn: the reply code and options.
    reply: Option<(Code, u8, Vec<u8>)>,
    /// sta: identifier of the Terminate-Request.
    term_id: u8,
    /// scj: the rejected packet.
    rejected: &'a [u8],
}

/// One running automaton.
#[derive(Debug)]
pub struct Fsm<N: Negotiator> {
    /// The protocol half.
    pub negotiator: N,
    state: State,
    timers: FsmTimers,
    restart_count: u32,
    /// Configure-Naks sent without an Ack in between (Max-Failure, s4.6).
    naks_sent: u32,
    deadline: Option<Instant>,
    next_id: u8,
    request_id: u8,
    request_acked: bool,
    last_request: Vec<u8>,
    terminate_text: Vec<u8>,
    /// Set when TO- ended a negotiation (Max-Configure).
    pub max_configure_reached: bool,
}

impl<N: Negotiator> Fsm<N> {
    /// A new automaton in Initial.
    pub fn new(negotiator: N, timers: FsmTimers) -> Self {
        Fsm {
            negotiator,
            state: State::Initial,
            timers,
            restart_count: 0,
            naks_sent: 0,
            deadline: None,
            next_id: 1,
            request_id: 0,
            request_acked: false,
            last_request: Vec::new(),
            terminate_text: Vec::new(),
            max_configure_reached: false,
        }
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The restart timer deadline.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// A fresh identifier for a packet that is not a Configure-Request.
    pub fn next_identifier(&mut self) -> u8 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    /// The text our Terminate-Requests carry.
    pub fn set_terminate_text(&mut self, text: &str) {
        self.terminate_text = text.as_bytes().to_vec();
    }

    /// Event Up.
    pub fn up(&mut self, now: Instant, out: &mut Output) {
        self.naks_sent = 0;
        self.run(now, FsmEvent::Up, &mut Ctx::default(), out);
    }

    /// Event Down.
    pub fn down(&mut self, now: Instant, out: &mut Output) {
        self.run(now, FsmEvent::Down, &mut Ctx::default(), out);
    }

    /// Event Open.
    pub fn open(&mut self, now: Instant, out: &mut Output) {
        self.naks_sent = 0;
        self.max_configure_reached = false;
        self.run(now, FsmEvent::Open, &mut Ctx::default(), out);
    }

    /// Event Close.
    pub fn close(&mut self, now: Instant, out: &mut Output) {
        self.run(now, FsmEvent::Close, &mut Ctx::default(), out);
    }

    /// Event RXJ+ or RXJ- (from a Code-Reject or a Protocol-Reject).
    pub fn reject_received(&mut self, now: Instant, catastrophic: bool, out: &mut Output) {
        let event = if catastrophic {
            FsmEvent::RxjMinus
        } else {
            FsmEvent::RxjPlus
        };
        self.run(now, event, &mut Ctx::default(), out);
    }

    /// Event RXR (Echo-Request, Echo-Reply, Discard-Request).
    pub fn echo_or_discard_received(&mut self, now: Instant, out: &mut Output) {
        self.run(now, FsmEvent::Rxr, &mut Ctx::default(), out);
    }

    /// Unknown code: RUC (sends Code-Reject with `packet` where the table says so).
    pub fn unknown_code_received(&mut self, now: Instant, packet: &[u8], out: &mut Output) {
        let mut ctx = Ctx {
            rejected: packet,
            ..Ctx::default()
        };
        self.run(now, FsmEvent::Ruc, &mut ctx, out);
    }

    /// The restart timer, if due at `now`: TO+ or TO-.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Output) {
        match self.deadline {
            Some(deadline) if deadline <= now => {}
            _ => return,
        }
        self.deadline = None;
        if self.restart_count > 0 {
            self.run(now, FsmEvent::ToPlus, &mut Ctx::default(), out);
        } else {
            if matches!(self.state, State::ReqSent | State::AckRcvd | State::AckSent) {
                self.max_configure_reached = true;
            }
            self.run(now, FsmEvent::ToMinus, &mut Ctx::default(), out);
        }
    }

    /// The restart counter (RFC 1661 s4.6).
    pub fn restart_count(&self) -> u32 {
        self.restart_count
    }

    /// Test and fuzzing hook: put the automaton in `state` directly.
    #[doc(hidden)]
    pub fn force_state(&mut self, state: State) {
        self.state = state;
    }

    /// Test and fuzzing hook: run one RFC event as is, without a received
    /// packet (sca/scn answer an empty request with identifier 0, scj
    /// rejects an empty packet).
    #[doc(hidden)]
    pub fn inject(&mut self, now: Instant, event: FsmEvent, out: &mut Output) {
        let reply = match event {
            FsmEvent::RcrPlus => Some((Code::ConfigureAck, 0, Vec::new())),
            FsmEvent::RcrMinus => Some((Code::ConfigureNak, 0, Vec::new())),
            _ => None,
        };
        let mut ctx = Ctx {
            reply,
            ..Ctx::default()
        };
        self.run(now, event, &mut ctx, out);
    }

    /// A control packet (codes 1..=7, or an unknown code) for this protocol.
    /// `raw` is the whole packet (for Code-Reject). RFC 1661 s5: packets
    /// that do not parse or do not match our request are discarded (`Err`)
    /// without any event.
    pub fn receive(
        &mut self,
        now: Instant,
        packet: ControlRepr<'_>,
        raw: &[u8],
        out: &mut Output,
    ) -> Result<(), Discard> {
        match packet.code {
            Code::ConfigureRequest => {
                if matches!(self.state, State::Initial | State::Starting) {
                    return Err(Discard::NotExpected("Configure-Request", self.state));
                }
                let (verdict, reply) = self.check_request(packet.data)?;
                let (event, code) = match verdict {
                    Verdict::Ack => (FsmEvent::RcrPlus, Code::ConfigureAck),
                    Verdict::Nak => (FsmEvent::RcrMinus, Code::ConfigureNak),
                    Verdict::Reject => (FsmEvent::RcrMinus, Code::ConfigureReject),
                };
                let mut ctx = Ctx {
                    reply: Some((code, packet.identifier, reply)),
                    ..Ctx::default()
                };
                self.run(now, event, &mut ctx, out);
            }
            Code::ConfigureAck | Code::ConfigureNak | Code::ConfigureReject => {
                if matches!(self.state, State::Initial | State::Starting) {
                    return Err(Discard::NotExpected("Configure reply", self.state));
                }
                if packet.identifier != self.request_id || self.request_acked {
                    return Err(Discard::BadIdentifier {
                        code: packet.code,
                        id: packet.identifier,
                        expected: self.request_id,
                    });
                }
                let event = match packet.code {
                    Code::ConfigureAck => {
                        if packet.data != self.last_request.as_slice() {
                            return Err(Discard::AckMismatch);
                        }
                        self.negotiator.handle_ack();
                        FsmEvent::Rca
                    }
                    Code::ConfigureNak => {
                        for option in OptionIter::new(N::NAME, packet.data) {
                            N::validate_option(&option?)?;
                        }
                        for option in OptionIter::new(N::NAME, packet.data) {
                            self.negotiator.handle_nak(&option?)?;
                        }
                        FsmEvent::Rcn
                    }
                    _ => {
                        // s5.4: a Configure-Reject lists only options of
                        // our request, unchanged; anything else is invalid.
                        for option in OptionIter::new(N::NAME, packet.data) {
                            let option = option?;
                            if !self.requested(&option) {
                                return Err(Discard::RejectMismatch(option.kind));
                            }
                        }
                        for option in OptionIter::new(N::NAME, packet.data) {
                            self.negotiator.handle_reject(&option?)?;
                        }
                        FsmEvent::Rcn
                    }
                };
                self.request_acked = true;
                self.run(now, event, &mut Ctx::default(), out);
            }
            Code::TerminateRequest => {
                let mut ctx = Ctx {
                    term_id: packet.identifier,
                    ..Ctx::default()
                };
                self.run(now, FsmEvent::Rtr, &mut ctx, out);
            }
            Code::TerminateAck => self.run(now, FsmEvent::Rta, &mut Ctx::default(), out),
            Code::CodeReject => {
                let Some(&rejected) = packet.data.first() else {
                    return Err(WireError::Truncated {
                        what: "Code-Reject rejected packet",
                        need: 1,
                        got: 0,
                    }
                    .into());
                };
                // Rejecting one of the codes every implementation must know
                // means the peer cannot talk this protocol (RFC 1661 s5.6).
                let catastrophic = (1..=7).contains(&rejected);
                self.reject_received(now, catastrophic, out);
            }
            _ => self.unknown_code_received(now, raw, out),
        }
        Ok(())
    }

    /// Whether `option` appears unchanged in our last Configure-Request.
    fn requested(&self, option: &RawOption<'_>) -> bool {
        OptionIter::new(N::NAME, &self.last_request)
            .flatten()
            .any(|ours| ours == *option)
    }

    /// Checks a Configure-Request: Reject beats Nak beats Ack (RFC 1661
    /// s5.3/s5.4); after Max-Failure Naks, Naks turn into Rejects (s4.6).
    fn check_request(&mut self, data: &[u8]) -> Result<(Verdict, Vec<u8>), WireError> {
        crate::wire::check_options(N::NAME, data)?;
        self.negotiator.begin_request();
        let mut naks = Vec::new();
        let mut rejects = Vec::new();
        let convert_naks = self.naks_sent >= self.timers.max_failure;
        for option in OptionIter::new(N::NAME, data) {
            let option = option?;
            match self.negotiator.check_option(&option, &mut naks)? {
                OptionVerdict::Ack => {}
                OptionVerdict::Nak if convert_naks => option.emit(&mut rejects),
                OptionVerdict::Nak => {}
                OptionVerdict::Reject => option.emit(&mut rejects),
            }
        }
        if !rejects.is_empty() {
            Ok((Verdict::Reject, rejects))
        } else if !naks.is_empty() && !convert_naks {
            self.naks_sent += 1;
            Ok((Verdict::Nak, naks))
        } else {
            self.naks_sent = 0;
            Ok((Verdict::Ack, data.to_vec()))
        }
    }

    fn run(&mut self, now: Instant, event: FsmEvent, ctx: &mut Ctx<'_>, out: &mut Output) {
        let Some(transition) = transition(self.state, event) else {
            tracing::debug!(
                "{}: event {} ignored in state {}",
                N::NAME,
                event.rfc_name(),
                self.state
            );
            return;
        };
        let from = self.state;
        for action in transition.actions {
            out.actions.push(*action);
            match action {
                Tlu => out.signals.push(Signal::Up),
                Tld => out.signals.push(Signal::Down),
                Tls => out.signals.push(Signal::Started),
                Tlf => out.signals.push(Signal::Finished),
                Irc => {
                    self.restart_count = if transition.actions.contains(&Str) {
                        self.timers.max_terminate
                    } else {
                        self.timers.max_configure
                    };
                }
                Zrc => {
                    self.restart_count = 0;
                    self.deadline = Some(now + self.timers.restart);
                }
                Scr => self.send_configure_request(now, from, out),
                Sca | Scn => {
                    if let Some((code, id, options)) = ctx.reply.take() {
                        out.packets.push(packet(code, id, &options));
                    }
                }
                Str => {
                    self.restart_count = self.restart_count.saturating_sub(1);
                    self.deadline = Some(now + self.timers.restart);
                    let id = self.next_identifier();
                    out.packets
                        .push(packet(Code::TerminateRequest, id, &self.terminate_text));
                }
                Sta => out
                    .packets
                    .push(packet(Code::TerminateAck, ctx.term_id, &[])),
                Scj => {
                    let id = self.next_identifier();
                    // Keep the Code-Reject within the default MRU (s5.6).
                    let cut = &ctx.rejected[..ctx.rejected.len().min(1500 - 4)];
                    out.packets.push(packet(Code::CodeReject, id, cut));
                }
                Ser => out.send_echo_reply = true,
            }
        }
        self.state = transition.next;
        if !self.state.timer_runs() {
            self.deadline = None;
        }
        if from != self.state {
            tracing::debug!(
                "{}: {} -> {} on {}",
                N::NAME,
                from,
                self.state,
                event.rfc_name()
            );
        }
    }

    fn send_configure_request(&mut self, now: Instant, from: State, out: &mut Output) {
        // As pppd: a request from outside the negotiating states starts a
        // new negotiation with the configured wishes.
        if !matches!(from, State::ReqSent | State::AckRcvd | State::AckSent) {
            self.negotiator.reset();
        }
        self.restart_count = self.restart_count.saturating_sub(1);
        self.deadline = Some(now + self.timers.restart);
        // The identifier changes with every request (s5.1), so a late
        // Ack of an older request cannot be mistaken for this one.
        self.request_id = self.next_identifier();
        self.request_acked = false;
        self.last_request.clear();
        self.negotiator.build_request(&mut self.last_request);
        out.packets.push(packet(
            Code::ConfigureRequest,
            self.request_id,
            &self.last_request,
        ));
    }
}

/// Builds one control packet.
pub fn packet(code: Code, identifier: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + data.len());
    ControlRepr {
        code,
        identifier,
        data,
    }
    .emit(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_event_has_a_cell() {
        let mut defined = 0;
        for event in FsmEvent::ALL {
            for state in State::ALL {
                if transition(state, event).is_some() {
                    defined += 1;
                }
            }
        }
        // 160 cells, of which the RFC marks 40 as "-".
        assert_eq!(defined, 160 - 40);
    }
}
