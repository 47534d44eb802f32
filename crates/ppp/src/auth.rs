//! The Authenticate phase (RFC 1661 s3.5): PAP (RFC 1334), CHAP with MD5
//! (RFC 1994) and MS-CHAPv2 (RFC 2759), each as authenticator (we check
//! the peer) and as peer (we prove who we are).
//!
//! [`Authenticator`] and [`AuthPeer`] are sans-IO: packets in, packets and
//! an [`AuthOutcome`] out, deadlines polled. Secrets come through the
//! [`Secrets`] trait; a secret never reaches a log line or a `Debug`.
//!
//! Leaves out: MS-CHAPv1 (RFC 2433), EAP, MS-CHAPv2 retry and
//! Change-Password (RFC 2759 s7/s8: a Failure carries R=0, and a
//! Change-Password packet, code 7, ends the authentication).
//!
//! # For the daemon
//!
//! Everything but the I/O is here, so the daemon's part is thin:
//! - read the secrets file, refuse it with
//!   [`crate::secrets::check_permissions`]'s error when group/others can
//!   read it or someone but root or the daemon owns it, parse it with
//!   [`crate::secrets::ChapSecrets::parse`] (errors name the line) and
//!   share it as a [`SecretsHandle`];
//! - build [`AuthConfig`] from pppd's words: `noauth` = empty `require`,
//!   `require-pap`/`require-chap`/`require-mschap-v2` = entries of
//!   `require`, `name`/`user`/`password`, `chap-interval` = `rechallenge`;
//!   MS-CHAPv2 and MPPE only when named ([`crate::ccp::MppeConfig`]);
//! - warn at start-up for each of `LinkConfig::weak_algorithms()`;
//! - drain `Link::poll_auth_event` like `poll_event`: `AuthFailed` gives
//!   user and reason for the log line (with the peer's address the daemon
//!   knows), and is what feeds a [`crate::secrets::FailureLimiter`] keyed
//!   by the peer's address, to hold off that source's next attempts;
//!   `Authenticated` carries the secrets file's fixed address, which the
//!   link already uses for IPCP.

use std::fmt;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tsunagi_crypto::mppe::StartKeys;
use tsunagi_crypto::{ct_eq, md5, mschapv2, Random, Secret};

use crate::secrets::{SecretEntry, Secrets};
use crate::wire::{peer_text, Protocol, WireError};

/// An authentication protocol as named in the LCP Authentication-Protocol
/// option (RFC 1661 s6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// PAP, c023 (RFC 1334): the password crosses the link in clear.
    Pap,
    /// CHAP with MD5, c223 05 (RFC 1994).
    ChapMd5,
    /// MS-CHAPv2, c223 81 (RFC 2759). Weak: only when the config names it.
    MsChapV2,
}

impl AuthMethod {
    /// The option's protocol and data.
    pub fn option_data(self) -> (u16, &'static [u8]) {
        match self {
            AuthMethod::Pap => (0xc023, &[]),
            AuthMethod::ChapMd5 => (0xc223, &[5]),
            AuthMethod::MsChapV2 => (0xc223, &[0x81]),
        }
    }

    /// From an Authentication-Protocol option's protocol and data.
    pub fn from_option(protocol: u16, data: &[u8]) -> Option<AuthMethod> {
        match (protocol, data) {
            (0xc023, []) => Some(AuthMethod::Pap),
            (0xc223, [5]) => Some(AuthMethod::ChapMd5),
            (0xc223, [0x81]) => Some(AuthMethod::MsChapV2),
            _ => None,
        }
    }

    /// The name pppd uses in its logs.
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::Pap => "PAP",
            AuthMethod::ChapMd5 => "CHAP",
            AuthMethod::MsChapV2 => "MS-CHAP-v2",
        }
    }

    /// Broken or weak (DESIGN.md "Weak algorithms").
    pub fn is_weak(self) -> bool {
        self == AuthMethod::MsChapV2
    }

    fn protocol(self) -> Protocol {
        match self {
            AuthMethod::Pap => Protocol::Pap,
            _ => Protocol::Chap,
        }
    }
}

/// A shared handle on the secrets (the daemon's parsed chap-secrets, or
/// a RADIUS-backed store later).
#[derive(Clone)]
pub struct SecretsHandle(pub Arc<dyn Secrets + Send + Sync>);

impl fmt::Debug for SecretsHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretsHandle(<redacted>)")
    }
}

/// Authentication settings (pppd: `auth`/`noauth`, `require-pap`,
/// `require-chap`, `require-mschap-v2`, `name`, `user`, `password`,
/// `chap-interval`, `refuse-*`).
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Methods the peer must authenticate with, in our order of
    /// preference. Empty is pppd's `noauth`: we do not demand auth.
    pub require: Vec<AuthMethod>,
    /// Methods we agree to authenticate ourselves with when the peer asks
    /// (and we have credentials). MS-CHAPv2 is used only when listed.
    pub accept: Vec<AuthMethod>,
    /// Our name: sent in CHAP Challenges, and the `server` of secrets
    /// lookups when we authenticate the peer (pppd `name`).
    pub name: String,
    /// The name we authenticate ourselves with (pppd `user`).
    pub user: Option<String>,
    /// Our password (pppd `password`); without it our secret is looked up
    /// as `secrets(user, peer's name)`.
    pub password: Option<Secret>,
    /// The secrets file.
    pub secrets: Option<SecretsHandle>,
    /// Rechallenge the peer this often with CHAP (pppd `chap-interval`).
    pub rechallenge: Option<Duration>,
    /// Retransmission interval of Challenges and Authenticate-Requests
    /// (pppd `chap-restart`/`pap-restart`, 3 s).
    pub restart: Duration,
    /// Transmissions before giving up (pppd `chap-max-challenge`/
    /// `pap-max-authreq`, 10).
    pub max_transmits: u32,
    /// How long we wait for the peer's first PAP request or CHAP
    /// challenge (pppd `pap-timeout`; 30 s).
    pub wait: Duration,
}

impl Default for AuthConfig {
    /// pppd's `noauth` with no credentials: no authentication either way
    /// (today's behaviour); CHAP-MD5 and PAP accepted if credentials are
    /// added.
    fn default() -> Self {
        AuthConfig {
            require: Vec::new(),
            accept: vec![AuthMethod::ChapMd5, AuthMethod::Pap],
            name: "tsunagi".to_string(),
            user: None,
            password: None,
            secrets: None,
            rechallenge: None,
            restart: Duration::from_secs(3),
            max_transmits: 10,
            wait: Duration::from_secs(30),
        }
    }
}

impl AuthConfig {
    /// Weak algorithms this config enables, for the start-up warning.
    pub fn weak_algorithms(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.require.contains(&AuthMethod::MsChapV2)
            || self.accept.contains(&AuthMethod::MsChapV2)
        {
            out.push("MS-CHAPv2");
        }
        out
    }

    /// Whether we could answer the peer's request to authenticate with
    /// `method`: it is accepted and we have a user name.
    pub fn can_authenticate_with(&self, method: AuthMethod) -> bool {
        self.accept.contains(&method)
            && self.user.is_some()
            && (self.password.is_some() || self.secrets.is_some())
    }

    fn our_secret(&self, peer_name: &str) -> Option<Secret> {
        if let Some(p) = &self.password {
            return Some(p.clone());
        }
        let user = self.user.as_deref()?;
        self.secrets
            .as_ref()?
            .0
            .lookup(user, peer_name)
            .map(|e| e.secret)
            .filter(|s| !s.is_empty())
    }
}

/// Errors in PAP/CHAP packets, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthWireError {
    /// The packet header did not parse.
    #[error(transparent)]
    Header(#[from] WireError),
    /// A length byte runs past the data.
    #[error("{protocol} {field} length {length} > remaining {remaining}")]
    FieldOverrun {
        /// "PAP" or "CHAP".
        protocol: &'static str,
        /// The field.
        field: &'static str,
        /// The length byte.
        length: usize,
        /// Bytes left.
        remaining: usize,
    },
    /// A field is missing entirely.
    #[error("{protocol} {field} missing")]
    Missing {
        /// "PAP" or "CHAP".
        protocol: &'static str,
        /// The field.
        field: &'static str,
    },
    /// A field has a length not allowed for this method.
    #[error("{protocol} {field} length {length}, expected {expected}")]
    BadLength {
        /// "PAP" or "CHAP".
        protocol: &'static str,
        /// The field.
        field: &'static str,
        /// Its length.
        length: usize,
        /// What is allowed.
        expected: &'static str,
    },
}

/// PAP codes (RFC 1334 s2.2).
pub mod pap_code {
    /// Authenticate-Request.
    pub const REQUEST: u8 = 1;
    /// Authenticate-Ack.
    pub const ACK: u8 = 2;
    /// Authenticate-Nak.
    pub const NAK: u8 = 3;
}

/// CHAP codes (RFC 1994 s4, RFC 2759 s7 for Change-Password).
pub mod chap_code {
    /// Challenge.
    pub const CHALLENGE: u8 = 1;
    /// Response.
    pub const RESPONSE: u8 = 2;
    /// Success.
    pub const SUCCESS: u8 = 3;
    /// Failure.
    pub const FAILURE: u8 = 4;
    /// MS-CHAPv2 Change-Password (RFC 2759 s7), never accepted.
    pub const CHANGE_PASSWORD: u8 = 7;
}

/// A PAP or CHAP packet header: code, identifier, data (Length checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthPacket<'a> {
    /// Code.
    pub code: u8,
    /// Identifier.
    pub identifier: u8,
    /// Data after the 4-byte header, cut to Length.
    pub data: &'a [u8],
}

impl<'a> AuthPacket<'a> {
    /// Parses the header; the Length field must fit.
    pub fn parse(bytes: &'a [u8]) -> Result<AuthPacket<'a>, AuthWireError> {
        if bytes.len() < 4 {
            return Err(WireError::Truncated {
                what: "auth header",
                need: 4,
                got: bytes.len(),
            }
            .into());
        }
        let length = u16::from_be_bytes([bytes[2], bytes[3]]);
        if length < 4 {
            return Err(WireError::LengthTooSmall { length }.into());
        }
        if usize::from(length) > bytes.len() {
            return Err(WireError::LengthOverrun {
                length,
                received: bytes.len(),
            }
            .into());
        }
        Ok(AuthPacket {
            code: bytes[0],
            identifier: bytes[1],
            data: &bytes[4..usize::from(length)],
        })
    }
}

/// Builds a PAP/CHAP packet.
pub fn build(code: u8, identifier: u8, parts: &[&[u8]]) -> Vec<u8> {
    let len = 4 + parts.iter().map(|p| p.len()).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.push(code);
    out.push(identifier);
    out.extend_from_slice(&(len.min(0xffff) as u16).to_be_bytes());
    for p in parts {
        out.extend_from_slice(p);
    }
    out.truncate(0xffff);
    out
}

/// Reads a length-prefixed field.
fn counted<'a>(
    protocol: &'static str,
    field: &'static str,
    data: &'a [u8],
) -> Result<(&'a [u8], &'a [u8]), AuthWireError> {
    let (&n, rest) = data
        .split_first()
        .ok_or(AuthWireError::Missing { protocol, field })?;
    let n = usize::from(n);
    if n > rest.len() {
        return Err(AuthWireError::FieldOverrun {
            protocol,
            field,
            length: n,
            remaining: rest.len(),
        });
    }
    Ok(rest.split_at(n))
}

/// A PAP Authenticate-Request (RFC 1334 s2.2.1).
#[derive(Clone, PartialEq, Eq)]
pub struct PapRequest<'a> {
    /// Peer-ID.
    pub peer_id: &'a [u8],
    /// Password (never printed).
    pub password: &'a [u8],
}

impl fmt::Debug for PapRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PapRequest")
            .field("peer_id", &String::from_utf8_lossy(self.peer_id))
            .field("password", &"<redacted>")
            .finish()
    }
}

impl<'a> PapRequest<'a> {
    /// Parses the data of an Authenticate-Request.
    pub fn parse(data: &'a [u8]) -> Result<PapRequest<'a>, AuthWireError> {
        let (peer_id, rest) = counted("PAP", "Peer-ID", data)?;
        let (password, _) = counted("PAP", "Passwd", rest)?;
        Ok(PapRequest { peer_id, password })
    }
}

/// A CHAP Challenge or Response (RFC 1994 s4.1): value and name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChapValue<'a> {
    /// Value.
    pub value: &'a [u8],
    /// Name.
    pub name: &'a [u8],
}

impl<'a> ChapValue<'a> {
    /// Parses the data of a Challenge or Response.
    pub fn parse(data: &'a [u8]) -> Result<ChapValue<'a>, AuthWireError> {
        let (value, name) = counted("CHAP", "Value", data)?;
        if value.is_empty() {
            return Err(AuthWireError::BadLength {
                protocol: "CHAP",
                field: "Value",
                length: 0,
                expected: ">= 1",
            });
        }
        Ok(ChapValue { value, name })
    }
}

/// The 49-octet MS-CHAPv2 Response value (RFC 2759 s4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsChapV2Response {
    /// Peer-Challenge.
    pub peer_challenge: [u8; 16],
    /// NT-Response.
    pub nt_response: [u8; 24],
    /// Flags (0).
    pub flags: u8,
}

impl MsChapV2Response {
    /// Parses a Response value; it must be 49 octets.
    pub fn parse(value: &[u8]) -> Result<MsChapV2Response, AuthWireError> {
        if value.len() != 49 {
            return Err(AuthWireError::BadLength {
                protocol: "CHAP",
                field: "MS-CHAPv2 Response value",
                length: value.len(),
                expected: "49",
            });
        }
        let mut peer_challenge = [0; 16];
        peer_challenge.copy_from_slice(&value[..16]);
        let mut nt_response = [0; 24];
        nt_response.copy_from_slice(&value[24..48]);
        Ok(MsChapV2Response {
            peer_challenge,
            nt_response,
            flags: value[48],
        })
    }

    /// The 49 octets.
    pub fn emit(&self) -> [u8; 49] {
        let mut out = [0; 49];
        out[..16].copy_from_slice(&self.peer_challenge);
        out[24..48].copy_from_slice(&self.nt_response);
        out[48] = self.flags;
        out
    }
}

/// pppd-style text of a PAP or CHAP packet. PAP passwords print as
/// `<hidden>` (pppd's default without `show-password`).
pub fn describe(protocol: u16, info: &[u8], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let (name, pap) = match protocol {
        0xc023 => ("PAP", true),
        _ => ("CHAP", false),
    };
    let p = match AuthPacket::parse(info) {
        Ok(p) => p,
        Err(e) => return write!(f, "{name} <malformed: {e}>"),
    };
    let code = match (pap, p.code) {
        (true, 1) => "AuthReq",
        (true, 2) => "AuthAck",
        (true, 3) => "AuthNak",
        (false, 1) => "Challenge",
        (false, 2) => "Response",
        (false, 3) => "Success",
        (false, 4) => "Failure",
        (false, 7) => "ChangePassword",
        _ => return write!(f, "{name} code={:#x} id={:#x}", p.code, p.identifier),
    };
    write!(f, "{name} {code} id={:#x}", p.identifier)?;
    match (pap, p.code) {
        (true, 1) => match PapRequest::parse(p.data) {
            Ok(r) => {
                f.write_str(" user=")?;
                crate::wire::write_quoted(f, r.peer_id)?;
                f.write_str(" password=<hidden>")
            }
            Err(e) => write!(f, " <malformed: {e}>"),
        },
        (true, _) => match counted("PAP", "Msg", p.data) {
            Ok((msg, _)) if !msg.is_empty() => {
                f.write_str(" ")?;
                crate::wire::write_quoted(f, msg)
            }
            Ok(_) => Ok(()),
            Err(e) => write!(f, " <malformed: {e}>"),
        },
        (false, 1) | (false, 2) => match ChapValue::parse(p.data) {
            Ok(v) => {
                f.write_str(" <")?;
                for b in v.value {
                    write!(f, "{b:02x}")?;
                }
                f.write_str(">, name = ")?;
                crate::wire::write_quoted(f, v.name)
            }
            Err(e) => write!(f, " <malformed: {e}>"),
        },
        _ if !p.data.is_empty() => {
            f.write_str(" ")?;
            crate::wire::write_quoted(f, p.data)
        }
        _ => Ok(()),
    }
}

/// Where challenges come from: every one is a fresh draw of 16 octets
/// (128 bits, RFC 1994 s2.3's "unique and unpredictable") from the
/// injected source, in a running daemon the kernel's CSPRNG (DESIGN.md,
/// "Randomness"). Nothing is derived from an earlier draw or from the
/// link's magic numbers, so what the peer saw predicts nothing.
#[derive(Clone)]
pub struct ChallengeSource {
    random: Random,
}

impl fmt::Debug for ChallengeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChallengeSource")
    }
}

impl ChallengeSource {
    /// Draws from `random`.
    pub fn new(random: Random) -> ChallengeSource {
        ChallengeSource { random }
    }

    /// The next 16 octets: one draw.
    pub fn next16(&mut self) -> [u8; 16] {
        let mut out = [0; 16];
        self.random.fill(&mut out);
        out
    }

    /// The next identifier octet (RFC 1994 s4.1: it only has to change
    /// with each Challenge; drawn so it says nothing of the others).
    pub fn next_id(&mut self) -> u8 {
        let mut id = [0; 1];
        self.random.fill(&mut id);
        id[0]
    }
}

/// How one side of authentication ended (or progressed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Still going.
    Pending,
    /// Done and good. `user` is the peer's name (authenticator) or ours
    /// (peer).
    Success {
        /// The authenticated name.
        user: String,
        /// The method.
        method: AuthMethod,
        /// The per-user fixed address from the secrets' 4th column.
        address: Option<Ipv4Addr>,
    },
    /// Failed: the link must go down.
    Failure {
        /// The name that failed (peer's, or ours).
        user: String,
        /// The method.
        method: AuthMethod,
        /// Why, for the log (never contains a secret).
        reason: String,
    },
}

/// Counters of authentication packets that were not used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthStats {
    /// Packets that did not parse (bad lengths, empty name).
    pub rx_malformed: u64,
    /// Packets with an identifier we did not send, or unexpected codes.
    pub rx_discarded: u64,
}

/// Packets to send, produced by [`Authenticator`] and [`AuthPeer`].
#[derive(Debug, Default)]
pub struct AuthOutput {
    /// (protocol, packet) pairs.
    pub packets: Vec<(Protocol, Vec<u8>)>,
}

const MAX_NAME: usize = 255;

#[derive(Debug)]
enum AuthState {
    /// Waiting for the peer's PAP request (until `deadline`).
    WaitPap,
    /// A Challenge is out.
    Challenged {
        id: u8,
        challenge: [u8; 16],
        transmits: u32,
    },
    /// The peer passed; `last` answers a repeated Response/Request.
    Passed { id: u8, reply: Vec<u8> },
    /// The peer failed.
    Failed,
}

/// We authenticate the peer with one method.
#[derive(Debug)]
pub struct Authenticator {
    method: AuthMethod,
    config: AuthConfig,
    rng: ChallengeSource,
    state: AuthState,
    deadline: Option<Instant>,
    outcome: AuthOutcome,
    /// MPPE start keys after a successful MS-CHAPv2 (server side).
    pub mppe_keys: Option<StartKeys>,
    /// Counters.
    pub stats: AuthStats,
    peer_name: String,
}

impl Authenticator {
    /// Starts: a Challenge goes out (CHAP) or we wait for the request (PAP).
    pub fn start(
        method: AuthMethod,
        config: AuthConfig,
        random: Random,
        now: Instant,
        out: &mut AuthOutput,
    ) -> Authenticator {
        let mut a = Authenticator {
            method,
            rng: ChallengeSource::new(random),
            state: AuthState::Failed,
            deadline: None,
            outcome: AuthOutcome::Pending,
            mppe_keys: None,
            stats: AuthStats::default(),
            peer_name: String::new(),
            config,
        };
        match method {
            AuthMethod::Pap => {
                a.state = AuthState::WaitPap;
                a.deadline = Some(now + a.config.wait);
            }
            _ => a.challenge(now, out),
        }
        a
    }

    /// The method.
    pub fn method(&self) -> AuthMethod {
        self.method
    }

    /// The current outcome.
    pub fn outcome(&self) -> &AuthOutcome {
        &self.outcome
    }

    /// The next deadline.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Test hook: the outstanding Challenge becomes `id`/`challenge` (to
    /// replay a recorded peer's Response). Never use outside tests: a
    /// fixed challenge makes responses replayable.
    #[doc(hidden)]
    pub fn pin_challenge(&mut self, id: u8, challenge: [u8; 16]) {
        if let AuthState::Challenged { transmits, .. } = self.state {
            self.state = AuthState::Challenged {
                id,
                challenge,
                transmits,
            };
        }
    }

    fn challenge(&mut self, now: Instant, out: &mut AuthOutput) {
        // RFC 1994 s4.1: the Identifier changes with every Challenge; a
        // rechallenge reusing the last one would read as its late
        // duplicate to the peer, which answers it with its last Response.
        let last = match &self.state {
            AuthState::Passed { id, .. } | AuthState::Challenged { id, .. } => Some(*id),
            _ => None,
        };
        let mut id = self.rng.next_id();
        if Some(id) == last {
            id = id.wrapping_add(1);
        }
        let challenge = self.rng.next16();
        self.state = AuthState::Challenged {
            id,
            challenge,
            transmits: 0,
        };
        self.send_challenge(now, out);
    }

    fn send_challenge(&mut self, now: Instant, out: &mut AuthOutput) {
        let AuthState::Challenged {
            id,
            challenge,
            transmits,
        } = &mut self.state
        else {
            return;
        };
        *transmits += 1;
        let name = self.config.name.as_bytes();
        let name = &name[..name.len().min(MAX_NAME)];
        out.packets.push((
            Protocol::Chap,
            build(chap_code::CHALLENGE, *id, &[&[16], challenge, name]),
        ));
        self.deadline = Some(now + self.config.restart);
    }

    fn fail(&mut self, user: String, reason: String) {
        // The name is the peer's: shown escaped and bounded.
        let user = peer_text(user.as_bytes());
        tracing::debug!(
            "{} peer authentication failed for {:?}: {}",
            self.method.name(),
            user,
            reason
        );
        self.state = AuthState::Failed;
        self.deadline = None;
        self.outcome = AuthOutcome::Failure {
            user,
            method: self.method,
            reason,
        };
    }

    /// Timers.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut AuthOutput) {
        if self.deadline.is_none_or(|d| d > now) {
            return;
        }
        self.deadline = None;
        match &self.state {
            AuthState::WaitPap => {
                self.fail(String::new(), "timed out waiting for PAP request".into());
            }
            AuthState::Challenged { transmits, .. } => {
                if *transmits >= self.config.max_transmits.max(1) {
                    self.fail(
                        self.peer_name.clone(),
                        format!("no response to {transmits} challenges"),
                    );
                } else {
                    self.send_challenge(now, out);
                }
            }
            AuthState::Passed { .. } => {
                // Rechallenge (RFC 1994 s2.2: at random intervals).
                if self.method != AuthMethod::Pap && self.config.rechallenge.is_some() {
                    self.challenge(now, out);
                }
            }
            AuthState::Failed => {}
        }
    }

    fn lookup(&self, name: &str) -> Option<SecretEntry> {
        self.config
            .secrets
            .as_ref()?
            .0
            .lookup(name, &self.config.name)
            .filter(|e| !e.secret.is_empty())
    }

    /// A PAP or CHAP packet from the peer.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        protocol: Protocol,
        info: &[u8],
        out: &mut AuthOutput,
    ) {
        if protocol != self.method.protocol() {
            self.stats.rx_discarded += 1;
            return;
        }
        let p = match AuthPacket::parse(info) {
            Ok(p) => p,
            Err(e) => {
                self.stats.rx_malformed += 1;
                tracing::debug!("bad {} packet: {}", self.method.name(), e);
                return;
            }
        };
        match self.method {
            AuthMethod::Pap => self.handle_pap(p, out),
            _ => self.handle_chap(now, p, out),
        }
    }

    fn handle_pap(&mut self, p: AuthPacket<'_>, out: &mut AuthOutput) {
        if p.code != pap_code::REQUEST {
            self.stats.rx_discarded += 1;
            return;
        }
        if let AuthState::Passed { reply, .. } = &self.state {
            // Our Ack was lost: answer the same, with the request's
            // identifier (RFC 1334 s2.2.2).
            let mut again = reply.clone();
            if let Some(b) = again.get_mut(1) {
                *b = p.identifier;
            }
            out.packets.push((Protocol::Pap, again));
            return;
        }
        if !matches!(self.state, AuthState::WaitPap) {
            self.stats.rx_discarded += 1;
            return;
        }
        let request = match PapRequest::parse(p.data) {
            Ok(r) if !r.peer_id.is_empty() => r,
            Ok(_) => {
                self.stats.rx_malformed += 1;
                tracing::debug!("PAP request with an empty Peer-ID");
                return;
            }
            Err(e) => {
                self.stats.rx_malformed += 1;
                tracing::debug!("bad PAP request: {e}");
                return;
            }
        };
        let user = String::from_utf8_lossy(request.peer_id).into_owned();
        let entry = self.lookup(&user);
        let good = entry
            .as_ref()
            .is_some_and(|e| e.secret.ct_eq(request.password));
        if good {
            let reply = build(pap_code::ACK, p.identifier, &[&[8], b"Login ok"]);
            out.packets.push((Protocol::Pap, reply.clone()));
            self.succeed(user, entry, p.identifier, reply);
        } else {
            out.packets.push((
                Protocol::Pap,
                build(pap_code::NAK, p.identifier, &[&[15], b"Login incorrect"]),
            ));
            let reason = if entry.is_none() {
                "no secret for this user"
            } else {
                "wrong password"
            };
            self.fail(user, reason.into());
        }
    }

    fn succeed(&mut self, user: String, entry: Option<SecretEntry>, id: u8, reply: Vec<u8>) {
        let address = entry.as_ref().and_then(|e| e.fixed_address());
        // The name is the peer's: shown escaped and bounded.
        let user = peer_text(user.as_bytes());
        tracing::debug!(
            "{} peer authentication succeeded for {:?}",
            self.method.name(),
            user
        );
        self.peer_name = user.clone();
        self.state = AuthState::Passed { id, reply };
        self.deadline = None;
        self.outcome = AuthOutcome::Success {
            user,
            method: self.method,
            address,
        };
    }

    fn handle_chap(&mut self, now: Instant, p: AuthPacket<'_>, out: &mut AuthOutput) {
        if p.code == chap_code::CHANGE_PASSWORD && self.method == AuthMethod::MsChapV2 {
            // RFC 2759 s7: we never offer retry, so this is not expected;
            // refuse cleanly by ending the authentication.
            self.stats.rx_discarded += 1;
            if !matches!(self.state, AuthState::Passed { .. }) {
                self.fail(
                    self.peer_name.clone(),
                    "peer sent MS-CHAPv2 Change-Password (not supported)".into(),
                );
            }
            return;
        }
        if p.code != chap_code::RESPONSE {
            self.stats.rx_discarded += 1;
            return;
        }
        match &self.state {
            AuthState::Passed { id, reply } if *id == p.identifier => {
                // Our Success was lost (RFC 1994 s4.2): send it again.
                out.packets.push((Protocol::Chap, reply.clone()));
                return;
            }
            AuthState::Challenged { id, .. } if *id == p.identifier => {}
            _ => {
                // RFC 1994 s4.1: a Response whose identifier does not
                // match the outstanding Challenge is silently discarded.
                self.stats.rx_discarded += 1;
                tracing::debug!("CHAP Response id={:#x} matches no challenge", p.identifier);
                return;
            }
        }
        let AuthState::Challenged { challenge, .. } = self.state else {
            return;
        };
        let response = match ChapValue::parse(p.data) {
            Ok(v) if !v.name.is_empty() && v.name.len() <= MAX_NAME => v,
            Ok(_) => {
                self.stats.rx_malformed += 1;
                tracing::debug!("CHAP Response with an empty name");
                return;
            }
            Err(e) => {
                self.stats.rx_malformed += 1;
                tracing::debug!("bad CHAP Response: {e}");
                return;
            }
        };
        let user = String::from_utf8_lossy(response.name).into_owned();
        let entry = self.lookup(&user);
        let id = p.identifier;
        match self.method {
            AuthMethod::ChapMd5 => {
                if response.value.len() != 16 {
                    self.stats.rx_malformed += 1;
                    tracing::debug!("CHAP-MD5 Response value of {} octets", response.value.len());
                    return;
                }
                let good = entry.as_ref().is_some_and(|e| {
                    let expected = md5(&[&[id], e.secret.expose(), &challenge]);
                    ct_eq(&expected, response.value)
                });
                if good {
                    let reply = build(chap_code::SUCCESS, id, &[b"Access granted"]);
                    out.packets.push((Protocol::Chap, reply.clone()));
                    self.succeed(user, entry, id, reply);
                    self.schedule_rechallenge(now);
                } else {
                    out.packets.push((
                        Protocol::Chap,
                        build(chap_code::FAILURE, id, &[b"Access denied"]),
                    ));
                    self.fail(user, md_reason(entry.is_some()));
                }
            }
            AuthMethod::MsChapV2 => {
                let r = match MsChapV2Response::parse(response.value) {
                    Ok(r) => r,
                    Err(e) => {
                        self.stats.rx_malformed += 1;
                        tracing::debug!("bad MS-CHAPv2 Response: {e}");
                        return;
                    }
                };
                let good = entry.as_ref().is_some_and(|e| {
                    mschapv2::check_nt_response(
                        &challenge,
                        &r.peer_challenge,
                        mschap_hash_name(response.name),
                        &e.secret,
                        &r.nt_response,
                    )
                });
                match (good, entry) {
                    (true, Some(e)) => {
                        let s = mschapv2::generate_authenticator_response(
                            &e.secret,
                            &r.nt_response,
                            &r.peer_challenge,
                            &challenge,
                            mschap_hash_name(response.name),
                        );
                        let msg = format!("{s} M=Access granted");
                        let reply = build(chap_code::SUCCESS, id, &[msg.as_bytes()]);
                        out.packets.push((Protocol::Chap, reply.clone()));
                        let hash = mschapv2::nt_password_hash(&e.secret);
                        self.mppe_keys =
                            Some(StartKeys::from_mschapv2(&hash, &r.nt_response, true));
                        self.succeed(user, Some(e), id, reply);
                        self.schedule_rechallenge(now);
                    }
                    (_, entry) => {
                        // RFC 2759 s6: E=691 authentication failure, R=0 no
                        // retry, C= a new challenge (required by the
                        // format even without retry), V=3.
                        let next = self.rng.next16();
                        let msg = format!(
                            "E=691 R=0 C={} V=3 M=Authentication failed",
                            tsunagi_crypto::hex_upper(&next)
                        );
                        out.packets.push((
                            Protocol::Chap,
                            build(chap_code::FAILURE, id, &[msg.as_bytes()]),
                        ));
                        self.fail(user, md_reason(entry.is_some()));
                    }
                }
            }
            AuthMethod::Pap => {}
        }
    }

    fn schedule_rechallenge(&mut self, now: Instant) {
        if let Some(every) = self.config.rechallenge {
            self.deadline = Some(now + every);
        }
    }
}

/// RFC 2759 s8.2: "Only the user name (as presented by the peer and
/// excluding any prepended domain name) is used as input to SHAHash":
/// `DOMAIN\user` hashes as `user` (Windows clients send the domain).
pub fn mschap_hash_name(name: &[u8]) -> &[u8] {
    match name.iter().rposition(|&b| b == b'\\') {
        Some(i) => &name[i + 1..],
        None => name,
    }
}

fn md_reason(had_secret: bool) -> String {
    if had_secret {
        "wrong secret".into()
    } else {
        "no secret for this user".into()
    }
}

#[derive(Debug)]
enum PeerState {
    /// PAP: requests going out.
    PapSent { id: u8, transmits: u32 },
    /// CHAP: waiting for a Challenge (until `deadline`).
    WaitChallenge,
    /// CHAP: Response sent; waiting for Success/Failure.
    Responded {
        id: u8,
        response: Vec<u8>,
        /// MS-CHAPv2: what the Success must prove.
        mschap: Option<MsChapPending>,
        /// Times the Response went out.
        transmits: u32,
        /// When we stop waiting (`None` on a rechallenge: the link is up).
        give_up: Option<Instant>,
    },
    /// Done.
    Done,
}

struct MsChapPending {
    auth_challenge: [u8; 16],
    peer_challenge: [u8; 16],
    nt_response: [u8; 24],
}

impl fmt::Debug for MsChapPending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MsChapPending(<redacted>)")
    }
}

/// We authenticate ourselves to the peer with one method.
#[derive(Debug)]
pub struct AuthPeer {
    method: AuthMethod,
    config: AuthConfig,
    rng: ChallengeSource,
    state: PeerState,
    deadline: Option<Instant>,
    outcome: AuthOutcome,
    /// MPPE start keys after a successful MS-CHAPv2 (client side).
    pub mppe_keys: Option<StartKeys>,
    /// Counters.
    pub stats: AuthStats,
    /// The authenticator's name from its last Challenge.
    challenger: String,
    /// The identifier and Response of the last Challenge we answered, kept
    /// after Success: the same Challenge arriving again (a late duplicate,
    /// or a retransmission that crossed our Response) gets the same
    /// Response, not a new one (RFC 1994 s4.1: a rechallenge carries a new
    /// identifier). A new MS-CHAPv2 Response would carry a new peer
    /// challenge that the Success already sent cannot prove.
    answered: Option<(u8, Vec<u8>)>,
    /// The Challenge answered before the current one while no
    /// Success/Failure came: a Challenge that crossed ours on a lossy or
    /// reordering transport (a retransmission from before the
    /// authenticator's LCP renegotiated) replaces the state, and the
    /// Success may still name the other one.
    /// Its Response is repeated with the current one.
    earlier: Option<(u8, Vec<u8>, Option<MsChapPending>)>,
    /// The identifier of the last PAP request sent.
    last_pap_id: u8,
}

impl AuthPeer {
    /// Starts: a PAP request goes out, or we wait for a Challenge.
    pub fn start(
        method: AuthMethod,
        config: AuthConfig,
        random: Random,
        now: Instant,
        out: &mut AuthOutput,
    ) -> AuthPeer {
        AuthPeer::start_after(method, config, random, 0, now, out)
    }

    /// [`AuthPeer::start`] for a link authenticating again: PAP requests
    /// continue from identifier `last_pap_id` + 1 (pppd keeps counting
    /// across LCP sessions), so that a late Authenticate-Ack from an
    /// earlier session cannot match a request of this one.
    pub fn start_after(
        method: AuthMethod,
        config: AuthConfig,
        random: Random,
        last_pap_id: u8,
        now: Instant,
        out: &mut AuthOutput,
    ) -> AuthPeer {
        let first_pap_id = last_pap_id.wrapping_add(1);
        let mut p = AuthPeer {
            method,
            rng: ChallengeSource::new(random),
            state: PeerState::WaitChallenge,
            deadline: Some(now + config.wait),
            outcome: AuthOutcome::Pending,
            mppe_keys: None,
            stats: AuthStats::default(),
            challenger: String::new(),
            answered: None,
            earlier: None,
            last_pap_id,
            config,
        };
        if method == AuthMethod::Pap {
            // As pppd: the first request has identifier 1, each
            // retransmission the next one (RFC 1334 s2.2.1 leaves it open).
            // A link that authenticates again continues the count
            // ([`AuthPeer::start_after`]).
            p.state = PeerState::PapSent {
                id: first_pap_id.wrapping_sub(1),
                transmits: 0,
            };
            p.send_pap(now, out);
        }
        p
    }

    /// The method.
    pub fn method(&self) -> AuthMethod {
        self.method
    }

    /// The current outcome.
    pub fn outcome(&self) -> &AuthOutcome {
        &self.outcome
    }

    /// The next deadline.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    fn user(&self) -> String {
        self.config.user.clone().unwrap_or_default()
    }

    /// The identifier of the last PAP request sent (0 before any).
    pub fn last_pap_id(&self) -> u8 {
        self.last_pap_id
    }

    fn send_pap(&mut self, now: Instant, out: &mut AuthOutput) {
        let PeerState::PapSent { id, transmits } = &mut self.state else {
            return;
        };
        *transmits += 1;
        *id = id.wrapping_add(1);
        let id = *id;
        self.last_pap_id = id;
        let user = self.config.user.clone().unwrap_or_default();
        let user = &user.as_bytes()[..user.len().min(MAX_NAME)];
        let Some(secret) = self.config.our_secret("") else {
            self.fail("no password to authenticate ourselves with PAP".into());
            return;
        };
        let pw = &secret.expose()[..secret.expose().len().min(MAX_NAME)];
        let packet = build(
            pap_code::REQUEST,
            id,
            &[&[user.len() as u8], user, &[pw.len() as u8], pw],
        );
        out.packets.push((Protocol::Pap, packet));
        self.deadline = Some(now + self.config.restart);
    }

    fn fail(&mut self, reason: String) {
        tracing::debug!("{} authentication failed: {}", self.method.name(), reason);
        self.state = PeerState::Done;
        self.deadline = None;
        self.outcome = AuthOutcome::Failure {
            user: self.user(),
            method: self.method,
            reason,
        };
    }

    fn succeed(&mut self) {
        tracing::debug!("{} authentication succeeded", self.method.name());
        self.state = PeerState::Done;
        self.deadline = None;
        self.outcome = AuthOutcome::Success {
            user: self.user(),
            method: self.method,
            address: None,
        };
    }

    /// Timers.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut AuthOutput) {
        if self.deadline.is_none_or(|d| d > now) {
            return;
        }
        self.deadline = None;
        match &self.state {
            PeerState::PapSent { transmits, .. } => {
                if *transmits >= self.config.max_transmits.max(1) {
                    let n = *transmits;
                    self.fail(format!("no response to {n} PAP requests"));
                } else {
                    self.send_pap(now, out);
                }
            }
            PeerState::WaitChallenge => self.fail("timed out waiting for a CHAP challenge".into()),
            PeerState::Responded {
                transmits, give_up, ..
            } if give_up.is_some_and(|g| now >= g)
                || *transmits >= self.config.max_transmits.max(1) =>
            {
                if give_up.is_some() {
                    self.fail("timed out waiting for CHAP Success/Failure".into());
                }
            }
            PeerState::Responded { .. } => {
                // A lost Response is answered by the authenticator's
                // retransmitted Challenge, but a lost Success/Failure by
                // nothing: send the Response again (same identifier), which
                // the authenticator answers with the same Success or
                // Failure (RFC 1994 s4.2; pppd does). On packet transports
                // (GRE, L2TP data) frames are lost.
                let restart = self.config.restart;
                if let PeerState::Responded {
                    response,
                    transmits,
                    give_up,
                    ..
                } = &mut self.state
                {
                    *transmits += 1;
                    out.packets.push((Protocol::Chap, response.clone()));
                    if let Some((_, earlier, _)) = &self.earlier {
                        out.packets.push((Protocol::Chap, earlier.clone()));
                    }
                    let next = now + restart;
                    self.deadline = Some(give_up.map_or(next, |g| next.min(g)));
                }
            }
            PeerState::Done => {}
        }
    }

    /// A PAP or CHAP packet from the peer.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        protocol: Protocol,
        info: &[u8],
        out: &mut AuthOutput,
    ) {
        if protocol != self.method.protocol() {
            self.stats.rx_discarded += 1;
            return;
        }
        let p = match AuthPacket::parse(info) {
            Ok(p) => p,
            Err(e) => {
                self.stats.rx_malformed += 1;
                tracing::debug!("bad {} packet: {}", self.method.name(), e);
                return;
            }
        };
        if self.method == AuthMethod::Pap {
            let PeerState::PapSent { id, .. } = self.state else {
                self.stats.rx_discarded += 1;
                return;
            };
            if p.identifier != id || !(p.code == pap_code::ACK || p.code == pap_code::NAK) {
                self.stats.rx_discarded += 1;
                return;
            }
            let msg = counted("PAP", "Msg", p.data)
                .map(|(m, _)| peer_text(m))
                .unwrap_or_default();
            if p.code == pap_code::ACK {
                self.succeed();
            } else {
                self.fail(format!("peer refused: \"{msg}\""));
            }
            return;
        }
        match p.code {
            chap_code::CHALLENGE => self.handle_challenge(now, p, out),
            chap_code::SUCCESS | chap_code::FAILURE => {
                let PeerState::Responded { id, .. } = &self.state else {
                    self.stats.rx_discarded += 1;
                    return;
                };
                let current = *id == p.identifier;
                let earlier = self
                    .earlier
                    .as_ref()
                    .is_some_and(|(e, _, _)| *e == p.identifier);
                if !current && !earlier {
                    self.stats.rx_discarded += 1;
                    return;
                }
                let PeerState::Responded { mschap, .. } =
                    std::mem::replace(&mut self.state, PeerState::Done)
                else {
                    return;
                };
                let earlier = self.earlier.take();
                // What the Success must prove: the Response it answers.
                let mschap = if current {
                    mschap
                } else {
                    earlier.and_then(|(_, _, m)| m)
                };
                if p.code == chap_code::FAILURE {
                    let msg = peer_text(p.data);
                    // MS-CHAPv2 R=1 would let us retry; we do not (the
                    // password would not change) and never change it.
                    self.fail(format!("peer refused: \"{msg}\""));
                    return;
                }
                match mschap {
                    None => self.succeed(),
                    Some(m) => {
                        let Some(secret) = self.secret_for_response() else {
                            self.fail("lost our secret".into());
                            return;
                        };
                        let text = p.data;
                        let s = text.split(|&b| b == b' ').next().unwrap_or(&[]);
                        let user = self.user();
                        if mschapv2::check_authenticator_response(
                            &secret,
                            &m.nt_response,
                            &m.peer_challenge,
                            &m.auth_challenge,
                            mschap_hash_name(user.as_bytes()),
                            s,
                        ) {
                            let hash = mschapv2::nt_password_hash(&secret);
                            self.mppe_keys =
                                Some(StartKeys::from_mschapv2(&hash, &m.nt_response, false));
                            self.succeed();
                        } else {
                            self.fail(
                                "the authenticator's Success did not prove it knows our password"
                                    .into(),
                            );
                        }
                    }
                }
            }
            _ => self.stats.rx_discarded += 1,
        }
    }

    /// The secret for the challenger last named (kept for the Success check).
    fn secret_for_response(&self) -> Option<Secret> {
        self.config.our_secret(&self.challenger)
    }

    fn handle_challenge(&mut self, now: Instant, p: AuthPacket<'_>, out: &mut AuthOutput) {
        let challenge = match ChapValue::parse(p.data) {
            Ok(v) => v,
            Err(e) => {
                self.stats.rx_malformed += 1;
                tracing::debug!("bad CHAP Challenge: {e}");
                return;
            }
        };
        // A repeated Challenge (our Response was lost) gets the same
        // Response; a new one (rechallenge) a new Response.
        if let PeerState::Responded { id, response, .. } = &self.state {
            if *id == p.identifier {
                out.packets.push((Protocol::Chap, response.clone()));
                return;
            }
        }
        if let (PeerState::Done, Some((id, response))) = (&self.state, &self.answered) {
            if *id == p.identifier {
                self.stats.rx_discarded += 1;
                out.packets.push((Protocol::Chap, response.clone()));
                return;
            }
        }
        self.challenger = String::from_utf8_lossy(challenge.name).into_owned();
        let Some(secret) = self.secret_for_response() else {
            self.fail(format!(
                "no secret to authenticate ourselves to {:?}",
                self.challenger
            ));
            return;
        };
        let user = self.user();
        let name = &user.as_bytes()[..user.len().min(MAX_NAME)];
        let (value, mschap): (Vec<u8>, Option<MsChapPending>) = match self.method {
            AuthMethod::MsChapV2 => {
                let Ok(auth_challenge) = <[u8; 16]>::try_from(challenge.value) else {
                    self.stats.rx_malformed += 1;
                    tracing::debug!(
                        "MS-CHAPv2 Challenge of {} octets, expected 16",
                        challenge.value.len()
                    );
                    return;
                };
                let peer_challenge = self.rng.next16();
                let nt_response = mschapv2::generate_nt_response(
                    &auth_challenge,
                    &peer_challenge,
                    mschap_hash_name(name),
                    &secret,
                );
                let r = MsChapV2Response {
                    peer_challenge,
                    nt_response,
                    flags: 0,
                };
                (
                    r.emit().to_vec(),
                    Some(MsChapPending {
                        auth_challenge,
                        peer_challenge,
                        nt_response,
                    }),
                )
            }
            _ => (
                md5(&[&[p.identifier], secret.expose(), challenge.value]).to_vec(),
                None,
            ),
        };
        let response = build(
            chap_code::RESPONSE,
            p.identifier,
            &[&[value.len() as u8], &value, name],
        );
        out.packets.push((Protocol::Chap, response.clone()));
        self.answered = Some((p.identifier, response.clone()));
        let rechallenge = matches!(self.state, PeerState::Done)
            && matches!(self.outcome, AuthOutcome::Success { .. });
        let give_up = (!rechallenge).then(|| now + self.config.wait);
        let previous = std::mem::replace(&mut self.state, PeerState::Done);
        self.earlier = match previous {
            PeerState::Responded {
                id,
                response,
                mschap,
                ..
            } => Some((id, response, mschap)),
            _ => None,
        };
        self.state = PeerState::Responded {
            id: p.identifier,
            response,
            mschap,
            transmits: 1,
            give_up,
        };
        let next = now + self.config.restart;
        self.deadline = Some(give_up.map_or(next, |g| next.min(g)));
    }
}
