//! LCP options and negotiation (RFC 1661 section 6, RFC 1662 section 7.1).
//!
//! We ask for: Maximum-Receive-Unit (when not 1500), Async-Control-Character-Map,
//! Magic-Number, Protocol-Field-Compression, Address-and-Control-Field-Compression.
//! We accept the same from the peer. Authentication-Protocol (s6.2) is
//! asked for when we require the peer to authenticate, and accepted when
//! the peer asks for a method we have credentials for (else Nak'd with
//! one we can do, or rejected when we can do none). Quality-Protocol and
//! every unknown option are rejected.
//!
//! On packet transports ([`Framing::Packet`]: PPTP, L2TP) there is no
//! async HDLC: no ACCM is asked for, the peer's is acknowledged but not
//! applied, and FCS-Alternatives is rejected.
//!
//! FCS-Alternatives (RFC 1570 section 2.1) is asked for with the Null FCS
//! when the configuration says `fcs = null`; the option names the FCS its
//! sender wants to receive, so each direction is agreed on its own. We can
//! receive and send the Null FCS and the 16-bit FCS, not the 32-bit one: a
//! request for 0x01 (when allowed) or 0x02 is acked, other non-zero values
//! are Nak'd with one we can do, zero is rejected. A peer that rejects the
//! option (pppd does) leaves both directions on the 16-bit FCS.

use std::fmt;
use std::time::Duration;

use crate::auth::AuthMethod;
use crate::fsm::{Negotiator, OptionVerdict};
use crate::rng::Rng;
use crate::wire::{
    emit_option, exact, write_unknown_option, FcsMode, OptionIter, Protocol, RawOption, WireError,
    DEFAULT_ACCM,
};

/// LCP option types (RFC 1661 s6, IANA "PPP LCP Configuration Option Types").
pub mod kind {
    /// Maximum-Receive-Unit (s6.1).
    pub const MRU: u8 = 1;
    /// Async-Control-Character-Map (RFC 1662 s7.1).
    pub const ACCM: u8 = 2;
    /// Authentication-Protocol (s6.2).
    pub const AUTH: u8 = 3;
    /// Quality-Protocol (s6.3).
    pub const QUALITY: u8 = 4;
    /// Magic-Number (s6.4).
    pub const MAGIC: u8 = 5;
    /// Protocol-Field-Compression (s6.5).
    pub const PFC: u8 = 7;
    /// Address-and-Control-Field-Compression (s6.6).
    pub const ACFC: u8 = 8;
    /// FCS-Alternatives (RFC 1570 s2.1).
    pub const FCS_ALTERNATIVES: u8 = 9;
}

/// Bits of the FCS-Alternatives option value (RFC 1570 s2.1).
pub mod fcs_bits {
    /// Null FCS (s2.1.2).
    pub const NULL: u8 = 0x01;
    /// CCITT 16-bit FCS (RFC 1662 s3.1), the default.
    pub const CCITT_16: u8 = 0x02;
    /// CCITT 32-bit FCS (RFC 1662 appendix C.3); we do not implement it.
    pub const CCITT_32: u8 = 0x04;
}

/// The FCS-Alternatives value that asks for `mode`.
pub fn fcs_mode_bits(mode: FcsMode) -> u8 {
    match mode {
        FcsMode::Fcs16 => fcs_bits::CCITT_16,
        FcsMode::Null => fcs_bits::NULL,
    }
}

/// The smallest MRU we agree to send with (pppd's MINMRU).
pub const MIN_MRU: u16 = 128;
/// The MRU every implementation must accept (RFC 1661 s6.1).
pub const DEFAULT_MRU: u16 = 1500;

/// What carries the link's frames, which decides the options that apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    /// Async HDLC on a byte stream (RFC 1662 section 4: PPP over SSH, a
    /// serial line): the ACCM (RFC 1662 section 7.1) and FCS-Alternatives
    /// (RFC 1570 section 2.1) are negotiated.
    #[default]
    AsyncHdlc,
    /// Whole frames in datagrams with no flags, escapes or FCS (PPTP's
    /// enhanced GRE, RFC 2637 section 4.3; L2TP, RFC 2661 section 3.1): we
    /// ask for no ACCM, acknowledge the peer's without applying it (the
    /// ACCM matters only on the PAC's or LAC's async side, which learns it
    /// from Set-Link-Info: RFC 2637 section 2.15, RFC 2661 section 6.14),
    /// and reject FCS-Alternatives, as there is no FCS to choose.
    Packet,
}

/// LCP settings for our side.
#[derive(Debug, Clone)]
pub struct LcpConfig {
    /// What carries the frames (default: async HDLC).
    pub framing: Framing,
    /// MRU we announce (default 1500; not sent when 1500).
    pub mru: u16,
    /// ACCM we ask the peer to use towards us (default 0).
    pub accm: u32,
    /// Extra bytes we always escape when sending (user-ppp `set escape 0xff`).
    pub escape: Vec<u8>,
    /// Ask for / accept Protocol-Field-Compression.
    pub pfc: bool,
    /// Ask for / accept Address-and-Control-Field-Compression.
    pub acfc: bool,
    /// FCS-Alternatives (RFC 1570 s2.1): [`FcsMode::Null`] asks the peer to
    /// send without FCS and agrees to send without FCS when asked; the
    /// default [`FcsMode::Fcs16`] asks nothing and keeps the 16-bit FCS.
    /// Only for links whose lower layer protects the bytes (SSH).
    pub fcs: FcsMode,
    /// Identification text (RFC 1570) sent once LCP is opened.
    pub ident: Option<String>,
    /// Keepalive: send Echo-Request every `interval`, link down after
    /// `failures` unanswered ones. `None` disables.
    pub echo: Option<EchoConfig>,
}

/// LCP Echo keepalive (pppd lcp-echo-interval / lcp-echo-failure).
#[derive(Debug, Clone)]
pub struct EchoConfig {
    /// Interval between Echo-Requests.
    pub interval: Duration,
    /// Unanswered Echo-Requests before the link is declared dead.
    pub failures: u32,
}

impl Default for EchoConfig {
    /// Debian's /etc/ppp/options: lcp-echo-interval 30, lcp-echo-failure 4.
    fn default() -> Self {
        EchoConfig {
            interval: Duration::from_secs(30),
            failures: 4,
        }
    }
}

impl Default for LcpConfig {
    /// MRU 1500, ACCM 0 (as pppd asks), PFC and ACFC on, no ident,
    /// echo every 30 s with 4 failures.
    fn default() -> Self {
        LcpConfig {
            framing: Framing::AsyncHdlc,
            mru: DEFAULT_MRU,
            accm: 0,
            escape: Vec::new(),
            pfc: true,
            acfc: true,
            fcs: FcsMode::Fcs16,
            ident: None,
            echo: Some(EchoConfig::default()),
        }
    }
}

/// One decoded LCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LcpOption<'a> {
    /// Maximum-Receive-Unit (s6.1).
    Mru(u16),
    /// Async-Control-Character-Map (RFC 1662 s7.1).
    Accm(u32),
    /// Authentication-Protocol (s6.2): protocol and its data.
    AuthProtocol {
        /// PAP 0xc023, CHAP 0xc223...
        protocol: u16,
        /// E.g. the CHAP algorithm.
        data: &'a [u8],
    },
    /// Quality-Protocol (s6.3).
    QualityProtocol {
        /// E.g. LQR 0xc025.
        protocol: u16,
        /// Protocol data.
        data: &'a [u8],
    },
    /// Magic-Number (s6.4).
    MagicNumber(u32),
    /// Protocol-Field-Compression (s6.5).
    Pfc,
    /// Address-and-Control-Field-Compression (s6.6).
    Acfc,
    /// FCS-Alternatives (RFC 1570 s2.1): the FCS bits the sender wants to
    /// receive.
    FcsAlternatives(u8),
    /// Anything else.
    Unknown(RawOption<'a>),
}

impl<'a> LcpOption<'a> {
    /// Decodes one option, checking its length for its type.
    pub fn parse(option: &RawOption<'a>) -> Result<LcpOption<'a>, WireError> {
        Ok(match option.kind {
            kind::MRU => LcpOption::Mru(u16::from_be_bytes(exact("LCP", option, "MRU", "4")?)),
            kind::ACCM => LcpOption::Accm(u32::from_be_bytes(exact("LCP", option, "ACCM", "6")?)),
            kind::AUTH | kind::QUALITY => {
                if option.data.len() < 2 {
                    return Err(WireError::OptionBadLength {
                        protocol: "LCP",
                        kind: option.kind,
                        name: if option.kind == kind::AUTH {
                            "auth"
                        } else {
                            "quality"
                        },
                        length: option.data.len() as u8 + 2,
                        expected: ">= 4",
                    });
                }
                let protocol = u16::from_be_bytes([option.data[0], option.data[1]]);
                let data = &option.data[2..];
                if option.kind == kind::AUTH {
                    LcpOption::AuthProtocol { protocol, data }
                } else {
                    LcpOption::QualityProtocol { protocol, data }
                }
            }
            kind::MAGIC => {
                LcpOption::MagicNumber(u32::from_be_bytes(exact("LCP", option, "magic", "6")?))
            }
            kind::PFC => {
                exact::<0>("LCP", option, "pcomp", "2")?;
                LcpOption::Pfc
            }
            kind::ACFC => {
                exact::<0>("LCP", option, "accomp", "2")?;
                LcpOption::Acfc
            }
            kind::FCS_ALTERNATIVES => {
                let [bits] = exact("LCP", option, "fcs-alternatives", "3")?;
                LcpOption::FcsAlternatives(bits)
            }
            _ => LcpOption::Unknown(*option),
        })
    }
}

/// Parses the option list of an LCP Configure-* packet (for fuzzing and
/// tests; the engine iterates without allocating a list).
pub fn parse_options(data: &[u8]) -> Result<Vec<LcpOption<'_>>, WireError> {
    OptionIter::new("LCP", data)
        .map(|option| LcpOption::parse(&option?))
        .collect()
}

/// pppd's text for one LCP option ("asyncmap 0x0", "magic 0x804044b9").
pub fn describe_option(f: &mut fmt::Formatter<'_>, option: &RawOption<'_>) -> fmt::Result {
    match LcpOption::parse(option) {
        Ok(LcpOption::Mru(mru)) => write!(f, "mru {mru}"),
        Ok(LcpOption::Accm(accm)) => write!(f, "asyncmap {accm:#x}"),
        Ok(LcpOption::AuthProtocol { protocol, data }) => match (protocol, data) {
            (0xc023, _) => f.write_str("auth pap"),
            (0xc223, [5]) => f.write_str("auth chap MD5"),
            (0xc223, [0x80]) => f.write_str("auth chap MS"),
            (0xc223, [0x81]) => f.write_str("auth chap MS-v2"),
            (0xc227, _) => f.write_str("auth eap"),
            _ => write!(f, "auth {protocol:#06x}"),
        },
        Ok(LcpOption::QualityProtocol { protocol, .. }) => write!(f, "quality {protocol:#06x}"),
        Ok(LcpOption::MagicNumber(magic)) => write!(f, "magic {magic:#x}"),
        Ok(LcpOption::Pfc) => f.write_str("pcomp"),
        Ok(LcpOption::Acfc) => f.write_str("accomp"),
        // pppd prints options it knows by name; this one as user-ppp's
        // FCSALT does, with the bits in hex.
        Ok(LcpOption::FcsAlternatives(bits)) => write!(f, "fcs-alternatives {bits:#x}"),
        Ok(LcpOption::Unknown(raw)) => write_unknown_option(f, &raw),
        Err(e) => write!(f, "malformed: {e}"),
    }
}

/// What one side uses after LCP opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LcpValues {
    /// Maximum-Receive-Unit.
    pub mru: u16,
    /// Async-Control-Character-Map.
    pub accm: u32,
    /// Magic-Number, if negotiated.
    pub magic: Option<u32>,
    /// Protocol-Field-Compression.
    pub pfc: bool,
    /// Address-and-Control-Field-Compression.
    pub acfc: bool,
    /// Authentication-Protocol: in `ours`, the method the peer agreed to
    /// authenticate with; in `peer`, the one it wants from us.
    pub auth: Option<AuthMethod>,
    /// FCS-Alternatives (RFC 1570 s2.1): in `ours`, the FCS the peer agreed
    /// to send us; in `peer`, the one we send.
    pub fcs: FcsMode,
}

impl Default for LcpValues {
    /// RFC 1661/1662 values without negotiation.
    fn default() -> Self {
        LcpValues {
            mru: DEFAULT_MRU,
            accm: DEFAULT_ACCM,
            magic: None,
            pfc: false,
            acfc: false,
            auth: None,
            fcs: FcsMode::Fcs16,
        }
    }
}

/// The LCP half of the automaton.
#[derive(Debug)]
pub struct LcpNegotiator {
    config: LcpConfig,
    rng: Rng,
    /// What we ask for now (Naks and Rejects change it).
    want: Wants,
    /// What the peer acked of ours: how the peer sends to us.
    pub ours: LcpValues,
    /// What we acked of the peer's: how we send to the peer.
    pub peer: LcpValues,
    /// Peer Configure-Requests that carried our own Magic-Number (s6.4).
    pub loops: u32,
    /// Test hook: use this Magic-Number instead of a random one.
    pinned_magic: Option<u32>,
    /// Methods we require the peer to authenticate with (preference order).
    auth_require: Vec<AuthMethod>,
    /// Methods we can authenticate ourselves with.
    auth_can: Vec<AuthMethod>,
    /// The peer rejected our Authentication-Protocol option.
    pub auth_refused: bool,
}

#[derive(Debug, Clone, Copy)]
struct Wants {
    mru: Option<u16>,
    accm: Option<u32>,
    magic: Option<u32>,
    pfc: bool,
    acfc: bool,
    auth: Option<AuthMethod>,
    /// The FCS-Alternatives value we ask for (RFC 1570 s2.1).
    fcs: Option<u8>,
}

impl LcpNegotiator {
    /// From our configuration and a seed for magic numbers.
    pub fn new(config: LcpConfig, seed: u64) -> Self {
        let mut n = LcpNegotiator {
            want: Wants {
                mru: None,
                accm: None,
                magic: None,
                pfc: false,
                acfc: false,
                auth: None,
                fcs: None,
            },
            config,
            rng: Rng::new(seed),
            ours: LcpValues::default(),
            peer: LcpValues::default(),
            loops: 0,
            pinned_magic: None,
            auth_require: Vec::new(),
            auth_can: Vec::new(),
            auth_refused: false,
        };
        n.reset();
        n
    }

    /// The Magic-Number we currently use (0 when not negotiated).
    pub fn magic(&self) -> u32 {
        self.want.magic.unwrap_or(0)
    }

    /// Test hook: the next negotiation uses `magic` (to replay recorded
    /// peers, whose Acks carry the magic they were sent).
    #[doc(hidden)]
    pub fn pin_magic(&mut self, magic: u32) {
        self.pinned_magic = Some(magic);
    }

    /// Authentication wishes: `require` the peer to authenticate with one
    /// of these (in order), and authenticate ourselves with one of `can`.
    pub fn set_auth(&mut self, require: Vec<AuthMethod>, can: Vec<AuthMethod>) {
        self.auth_require = require;
        self.auth_can = can;
        self.reset();
    }

    /// Our configuration.
    pub fn config(&self) -> &LcpConfig {
        &self.config
    }

    /// The largest MRU we can receive: the decoder is sized for it.
    fn max_receive(&self) -> u16 {
        self.config.mru.max(DEFAULT_MRU)
    }
}

impl Negotiator for LcpNegotiator {
    const PROTOCOL: Protocol = Protocol::Lcp;
    const NAME: &'static str = "LCP";

    fn reset(&mut self) {
        self.want = Wants {
            mru: (self.config.mru != DEFAULT_MRU).then_some(self.config.mru),
            accm: (self.config.framing == Framing::AsyncHdlc && self.config.accm != DEFAULT_ACCM)
                .then_some(self.config.accm),
            magic: Some(
                self.pinned_magic
                    .take()
                    .unwrap_or_else(|| self.rng.nonzero_u32()),
            ),
            pfc: self.config.pfc,
            acfc: self.config.acfc,
            auth: self.auth_require.first().copied(),
            // Asking for the default 16-bit FCS would change nothing.
            fcs: (self.config.framing == Framing::AsyncHdlc && self.config.fcs == FcsMode::Null)
                .then_some(fcs_bits::NULL),
        };
        self.auth_refused = false;
        self.ours = LcpValues::default();
        // `peer` is what we acked of the peer's last request: reset by
        // `begin_request` only. A peer's Configure-Request in Opened is
        // checked before its Scr resets our wishes (RFC 1661 s4.1, Opened
        // + RCR: tld, scr, sca); wiping it here would open LCP on the
        // defaults, without the authentication the peer asked for.
    }

    fn build_request(&mut self, out: &mut Vec<u8>) {
        if let Some(mru) = self.want.mru {
            emit_option(out, kind::MRU, &mru.to_be_bytes());
        }
        if let Some(accm) = self.want.accm {
            emit_option(out, kind::ACCM, &accm.to_be_bytes());
        }
        if let Some(method) = self.want.auth {
            let (protocol, data) = method.option_data();
            let mut value = protocol.to_be_bytes().to_vec();
            value.extend_from_slice(data);
            emit_option(out, kind::AUTH, &value);
        }
        if let Some(magic) = self.want.magic {
            emit_option(out, kind::MAGIC, &magic.to_be_bytes());
        }
        if self.want.pfc {
            emit_option(out, kind::PFC, &[]);
        }
        if self.want.acfc {
            emit_option(out, kind::ACFC, &[]);
        }
        if let Some(bits) = self.want.fcs {
            emit_option(out, kind::FCS_ALTERNATIVES, &[bits]);
        }
    }

    fn begin_request(&mut self) {
        self.peer = LcpValues::default();
    }

    fn check_option(
        &mut self,
        option: &RawOption<'_>,
        nak: &mut Vec<u8>,
    ) -> Result<OptionVerdict, WireError> {
        // A known option with a wrong length is rejected, as pppd does,
        // rather than dropping the whole request.
        let Ok(parsed) = LcpOption::parse(option) else {
            return Ok(OptionVerdict::Reject);
        };
        Ok(match parsed {
            LcpOption::Mru(mru) if mru < MIN_MRU => {
                emit_option(nak, kind::MRU, &MIN_MRU.to_be_bytes());
                OptionVerdict::Nak
            }
            LcpOption::Mru(mru) => {
                self.peer.mru = mru;
                OptionVerdict::Ack
            }
            LcpOption::Accm(accm) => {
                self.peer.accm = accm;
                OptionVerdict::Ack
            }
            LcpOption::MagicNumber(magic) => {
                if magic == 0 || Some(magic) == self.want.magic {
                    if magic != 0 {
                        // RFC 1661 s6.4: possibly looped back; Nak with a
                        // different number and count it.
                        self.loops += 1;
                    }
                    let mut suggestion = self.rng.nonzero_u32();
                    if Some(suggestion) == self.want.magic {
                        suggestion = suggestion.wrapping_add(1).max(1);
                    }
                    emit_option(nak, kind::MAGIC, &suggestion.to_be_bytes());
                    OptionVerdict::Nak
                } else {
                    self.peer.magic = Some(magic);
                    OptionVerdict::Ack
                }
            }
            LcpOption::Pfc if self.config.pfc => {
                self.peer.pfc = true;
                OptionVerdict::Ack
            }
            LcpOption::Acfc if self.config.acfc => {
                self.peer.acfc = true;
                OptionVerdict::Ack
            }
            // RFC 1570 s2.1: the peer names the FCS it wants to receive.
            // We send one FCS per frame, so only a single bit we can do is
            // acked; the Null FCS only when our configuration allows it.
            LcpOption::FcsAlternatives(_) if self.config.framing == Framing::Packet => {
                OptionVerdict::Reject
            }
            LcpOption::FcsAlternatives(0) => OptionVerdict::Reject,
            LcpOption::FcsAlternatives(bits) => {
                let null_ok = self.config.fcs == FcsMode::Null;
                match bits {
                    fcs_bits::NULL if null_ok => {
                        self.peer.fcs = FcsMode::Null;
                        OptionVerdict::Ack
                    }
                    fcs_bits::CCITT_16 => {
                        self.peer.fcs = FcsMode::Fcs16;
                        OptionVerdict::Ack
                    }
                    _ => {
                        // Several bits, the 32-bit FCS, unknown bits, or a
                        // Null FCS we do not allow: suggest the one we can
                        // do, the Null FCS if the peer can take it.
                        let suggestion = if null_ok && bits & fcs_bits::NULL != 0 {
                            fcs_bits::NULL
                        } else {
                            fcs_bits::CCITT_16
                        };
                        emit_option(nak, kind::FCS_ALTERNATIVES, &[suggestion]);
                        OptionVerdict::Nak
                    }
                }
            }
            LcpOption::AuthProtocol { protocol, data } => {
                match AuthMethod::from_option(protocol, data) {
                    Some(m) if self.auth_can.contains(&m) => {
                        self.peer.auth = Some(m);
                        OptionVerdict::Ack
                    }
                    _ => match self.auth_can.first() {
                        // RFC 1661 s6.2: Nak with the method we prefer.
                        Some(m) => {
                            let (protocol, data) = m.option_data();
                            let mut value = protocol.to_be_bytes().to_vec();
                            value.extend_from_slice(data);
                            emit_option(nak, kind::AUTH, &value);
                            OptionVerdict::Nak
                        }
                        None => OptionVerdict::Reject,
                    },
                }
            }
            _ => OptionVerdict::Reject,
        })
    }

    fn handle_ack(&mut self) {
        self.ours = LcpValues {
            mru: self.want.mru.unwrap_or(DEFAULT_MRU),
            accm: self.want.accm.unwrap_or(DEFAULT_ACCM),
            magic: self.want.magic,
            pfc: self.want.pfc,
            acfc: self.want.acfc,
            auth: self.want.auth,
            fcs: match self.want.fcs {
                Some(fcs_bits::NULL) => FcsMode::Null,
                _ => FcsMode::Fcs16,
            },
        };
    }

    fn handle_nak(&mut self, option: &RawOption<'_>) -> Result<(), WireError> {
        match LcpOption::parse(option)? {
            // Take a smaller MRU; a larger one only up to what the decoder holds.
            LcpOption::Mru(mru) if (MIN_MRU..=self.max_receive()).contains(&mru) => {
                self.want.mru = Some(mru);
            }
            // The peer needs more characters escaped: add them (RFC 1662 s7.1).
            LcpOption::Accm(accm) if self.want.accm.is_some() => {
                self.want.accm = Some(self.want.accm.unwrap_or(0) | accm);
            }
            LcpOption::MagicNumber(suggested) if self.want.magic.is_some() => {
                // s6.4: on a Nak of the Magic-Number pick a new random one,
                // not the one suggested.
                let mut magic = self.rng.nonzero_u32();
                if magic == suggested {
                    magic = magic.wrapping_add(1).max(1);
                }
                self.want.magic = Some(magic);
            }
            // The peer prefers another method: take it if we require it,
            // else try our next one.
            LcpOption::AuthProtocol { protocol, data } if self.want.auth.is_some() => {
                let suggested = AuthMethod::from_option(protocol, data);
                if let Some(m) = suggested.filter(|m| self.auth_require.contains(m)) {
                    self.want.auth = Some(m);
                } else if let Some(current) = self.want.auth {
                    let next = self
                        .auth_require
                        .iter()
                        .skip_while(|m| **m != current)
                        .nth(1)
                        .copied();
                    match next {
                        Some(next) => self.want.auth = Some(next),
                        // Nothing left that we accept: stop asking (no
                        // endless Nak loop); the link engine ends the link
                        // when LCP opens without authentication.
                        None => {
                            self.want.auth = None;
                            self.auth_refused = true;
                        }
                    }
                }
            }
            // RFC 1570 s2.1: the peer cannot send the Null FCS. Anything
            // else it offers that we can receive is the 16-bit FCS, the
            // default: stop asking.
            LcpOption::FcsAlternatives(_) if self.want.fcs.is_some() => {
                self.want.fcs = None;
            }
            // Nak'd options we did not ask for (e.g. a prompt for
            // authentication) are not followed.
            _ => {}
        }
        Ok(())
    }

    fn handle_reject(&mut self, option: &RawOption<'_>) -> Result<(), WireError> {
        match option.kind {
            kind::MRU => self.want.mru = None,
            kind::ACCM => self.want.accm = None,
            kind::MAGIC => self.want.magic = None,
            kind::PFC => self.want.pfc = false,
            kind::ACFC => self.want.acfc = false,
            // pppd does not know FCS-Alternatives: stay on the 16-bit FCS.
            kind::FCS_ALTERNATIVES => self.want.fcs = None,
            kind::AUTH if self.want.auth.is_some() => {
                // We require authentication: the link cannot go on; the
                // link engine closes it when LCP opens without it.
                self.want.auth = None;
                self.auth_refused = true;
            }
            _ => {}
        }
        Ok(())
    }

    fn validate_option(option: &RawOption<'_>) -> Result<(), WireError> {
        LcpOption::parse(option).map(|_| ())
    }

    fn describe_option(f: &mut fmt::Formatter<'_>, option: &RawOption<'_>) -> fmt::Result {
        describe_option(f, option)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_pppd_request() {
        // 02-asyncmap0-mtu1410: <mru 1410> <asyncmap 0x0> <magic 0x3cdecdb6> <pcomp> <accomp>
        let data = [
            1, 4, 0x05, 0x82, 2, 6, 0, 0, 0, 0, 5, 6, 0x3c, 0xde, 0xcd, 0xb6, 7, 2, 8, 2,
        ];
        let options = parse_options(&data).unwrap();
        assert_eq!(
            options,
            vec![
                LcpOption::Mru(1410),
                LcpOption::Accm(0),
                LcpOption::MagicNumber(0x3cdecdb6),
                LcpOption::Pfc,
                LcpOption::Acfc
            ]
        );
    }

    #[test]
    fn wrong_lengths_name_the_option() {
        let e = parse_options(&[1, 3, 5]).unwrap_err();
        assert_eq!(e.to_string(), "LCP option 1 (MRU) length 3 != 4");
        let e = parse_options(&[5, 4, 0, 0]).unwrap_err();
        assert_eq!(e.to_string(), "LCP option 5 (magic) length 4 != 6");
    }
}
