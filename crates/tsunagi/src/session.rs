//! A session: one PPP instance with an id, owned by a transport (the SSH
//! stream of a site link, or one of the many sessions on a server's socket).
//!
//! What every transport does the same way is here: the session's
//! bookkeeping ([`SessionInfo`]), what `status` shows of it
//! ([`SessionInfo::status`], taken from the engine when asked, so counters
//! are current), the authentication and CCP outcomes (logged, shown, fed to
//! the failure limiter: [`SessionInfo::auth_event`]), and how a session
//! ended ([`EndReason`]: an enum, for the log, `status`, the `direct`
//! caller's exit status, the audit trail and the metrics, which take its
//! [`EndReason::kind`]), and the session's audit records
//! ([`SessionInfo::ipv4_up`] writes the start, [`SessionInfo::audit_end`]
//! the end).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing::{info, warn};
use tsunagi_ppp::auth::AuthMethod;
use tsunagi_ppp::link::{AuthEvent, DownReason, Link, Phase};
use tsunagi_ppp::wire::FcsMode;

use crate::audit::{Audit, Event as AuditEvent, Record};
use crate::auth::{AuthGuard, AuthSource};
use crate::control::{Counters, SessionStatus, EXIT_LINK_FAILED, EXIT_NORMAL, EXIT_REFUSED};

/// A session's number, unique while the daemon runs (never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// An administrator hung up (`tsunagi hangup`, or the session was
    /// kicked): a site link is not redialled.
    Hangup,
    /// The daemon is stopping.
    Shutdown,
    /// `tsunagi reload` (or SIGHUP) stopped the session's link or server:
    /// its settings changed, or it left the config.
    Reconfigured,
    /// The peer sent LCP Terminate-Request, with its text.
    PeerTerminated(String),
    /// We closed the link for a reason of our own (a tun that failed) and
    /// the peer acknowledged.
    ClosedByUs,
    /// LCP Echo-Requests went unanswered.
    EchoTimeout,
    /// The peer kept sending our own magic number (RFC 1661 s6.4).
    Loopback,
    /// A protocol's negotiation did not converge, or a requirement (MPPE)
    /// was not met.
    NegotiationFailed(&'static str),
    /// Authentication failed in one direction.
    AuthFailed {
        /// The name that failed (the peer's, or ours when `ours`).
        user: String,
        /// The method.
        method: AuthMethod,
        /// Why (never a secret).
        reason: String,
        /// We failed to prove ourselves to the peer.
        ours: bool,
    },
    /// We require authentication and the peer would not.
    PeerRefusedAuth,
    /// No address for the peer (a pool exhausted, a fixed address in use).
    NoAddress(String),
    /// Refused before PPP ran: authentication failures from this key hold
    /// it off for a while.
    HeldOff {
        /// What is held off (an address, `uid N`).
        key: String,
        /// For how many more seconds.
        secs: u64,
    },
    /// The peer kept sending control packets beyond the link's budget.
    ControlFlood {
        /// Packets dropped within the budget's window.
        dropped: u32,
    },
    /// What carried the session went away (the stream closed, the device
    /// exited, a read or write failed), in words.
    TransportLost(String),
    /// The tun device failed.
    TunFailed(String),
    /// The session could not start (no tun, no device), in words.
    SetupFailed(String),
}

impl EndReason {
    /// A stable keyword for the kind of end, whatever its words: the audit
    /// trail's `kind=` and the metrics' `kind` label.
    pub fn kind(&self) -> &'static str {
        match self {
            EndReason::Hangup => "hangup",
            EndReason::Shutdown => "shutdown",
            EndReason::Reconfigured => "reconfigured",
            EndReason::PeerTerminated(_) => "peer-terminated",
            EndReason::ClosedByUs => "closed-by-us",
            EndReason::EchoTimeout => "echo-timeout",
            EndReason::Loopback => "loopback",
            EndReason::NegotiationFailed(_) => "negotiation-failed",
            EndReason::AuthFailed { ours: false, .. } => "auth-failed",
            EndReason::AuthFailed { ours: true, .. } => "auth-refused-by-peer",
            EndReason::PeerRefusedAuth => "peer-refused-auth",
            EndReason::NoAddress(_) => "no-address",
            EndReason::HeldOff { .. } => "held-off",
            EndReason::ControlFlood { .. } => "control-flood",
            EndReason::TransportLost(_) => "transport-lost",
            EndReason::TunFailed(_) => "tun-failed",
            EndReason::SetupFailed(_) => "setup-failed",
        }
    }

    /// An authentication failure, either way (the metrics' auth
    /// failures).
    pub fn is_auth_failure(&self) -> bool {
        matches!(
            self,
            EndReason::AuthFailed { .. } | EndReason::PeerRefusedAuth | EndReason::HeldOff { .. }
        )
    }

    /// A negotiation that did not converge (the metrics' negotiation
    /// failures).
    pub fn is_negotiation_failure(&self) -> bool {
        matches!(
            self,
            EndReason::NegotiationFailed(_) | EndReason::Loopback | EndReason::NoAddress(_)
        )
    }

    /// The exit status of `tsunagi direct` for a session that ended so:
    /// 0 terminated normally, 1 refused or failed before PPP ran, 2 the
    /// link failed.
    pub fn exit_code(&self) -> i32 {
        match self {
            EndReason::Hangup
            | EndReason::Shutdown
            | EndReason::Reconfigured
            | EndReason::PeerTerminated(_)
            | EndReason::ClosedByUs => EXIT_NORMAL,
            EndReason::AuthFailed { .. }
            | EndReason::PeerRefusedAuth
            | EndReason::NoAddress(_)
            | EndReason::HeldOff { .. }
            | EndReason::SetupFailed(_) => EXIT_REFUSED,
            EndReason::EchoTimeout
            | EndReason::Loopback
            | EndReason::NegotiationFailed(_)
            | EndReason::ControlFlood { .. }
            | EndReason::TransportLost(_)
            | EndReason::TunFailed(_) => EXIT_LINK_FAILED,
        }
    }

    /// Why the engine went down. `lower` says why the stream ended when
    /// that is all the engine knows ([`DownReason::LowerDown`]).
    pub fn from_link(reason: DownReason, lower: Option<EndReason>) -> EndReason {
        match reason {
            DownReason::PeerTerminated(text) => EndReason::PeerTerminated(text),
            DownReason::EchoTimeout => EndReason::EchoTimeout,
            DownReason::LoopbackDetected => EndReason::Loopback,
            DownReason::NegotiationFailed(what) => EndReason::NegotiationFailed(what),
            DownReason::AdminClose => EndReason::ClosedByUs,
            DownReason::LowerDown => {
                lower.unwrap_or_else(|| EndReason::TransportLost("stream lost".into()))
            }
            DownReason::AuthFailed {
                method,
                reason,
                ours,
            } => EndReason::AuthFailed {
                user: String::new(),
                method,
                reason,
                ours,
            },
            DownReason::PeerRefusedAuth => EndReason::PeerRefusedAuth,
            DownReason::NoPeerAddress(why) => EndReason::NoAddress(why),
            DownReason::ControlFlood { dropped } => EndReason::ControlFlood { dropped },
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndReason::Hangup => f.write_str("administrative hangup"),
            EndReason::Shutdown => f.write_str("daemon shutdown"),
            EndReason::Reconfigured => f.write_str("reconfigured by a reload"),
            EndReason::PeerTerminated(text) if text.is_empty() => f.write_str("peer terminated"),
            EndReason::PeerTerminated(text) => write!(f, "peer terminated: {text}"),
            EndReason::ClosedByUs => f.write_str("closed by us"),
            EndReason::EchoTimeout => f.write_str("LCP echo timeout: peer not answering"),
            EndReason::Loopback => f.write_str("loopback detected (peer echoes our magic number)"),
            EndReason::NegotiationFailed(what) => write!(f, "{what} negotiation failed"),
            EndReason::AuthFailed {
                user,
                method,
                reason,
                ours: true,
            } => write!(
                f,
                "peer refused our authentication as \"{user}\" by {}: {reason}",
                method.name()
            ),
            EndReason::AuthFailed {
                user,
                method,
                reason,
                ours: false,
            } => write!(
                f,
                "authentication of peer \"{user}\" by {} failed: {reason}",
                method.name()
            ),
            EndReason::PeerRefusedAuth => f.write_str("peer refused to authenticate"),
            EndReason::NoAddress(why) => write!(f, "no address for the peer: {why}"),
            EndReason::HeldOff { key, secs } => write!(
                f,
                "too many authentication failures from {key}: refused for {secs}s"
            ),
            EndReason::ControlFlood { dropped } => write!(
                f,
                "peer flooded control packets ({dropped} dropped beyond the budget)"
            ),
            EndReason::TransportLost(why) => f.write_str(why),
            EndReason::TunFailed(why) => write!(f, "tun failed: {why}"),
            EndReason::SetupFailed(why) => f.write_str(why),
        }
    }
}

/// How a session ended, for its owner (the supervisor redials, the
/// `direct` caller is answered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEnd {
    /// Why.
    pub reason: EndReason,
    /// How long IPCP was up (None if it never came up): the redial
    /// backoff asks how long the link was good.
    pub up_for: Option<Duration>,
}

impl SessionEnd {
    /// A session that ended for `reason` with IPCP never up.
    pub fn new(reason: EndReason) -> SessionEnd {
        SessionEnd {
            reason,
            up_for: None,
        }
    }
}

/// 64 bits from the kernel for the cheap generator of magic numbers and
/// interface identifiers; a draw of its own, so it shares nothing with the
/// challenges the link draws from [`OsRandom`](tsunagi_crypto::OsRandom).
pub fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    tsunagi_crypto::RandomSource::fill(&tsunagi_crypto::OsRandom, &mut b);
    u64::from_ne_bytes(b)
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

/// What a transport keeps of each session besides its engine.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// The session's id.
    pub id: SessionId,
    /// The profile it belongs to.
    pub profile: String,
    /// How log lines name it: the profile for a site link,
    /// `profile[id]` for a server's session.
    pub log_name: String,
    /// Who is at the other end: the ssh target, the ssh client's address
    /// or `uid N` of a direct caller, a server's peer address.
    pub outer_peer: String,
    /// Whom its authentication failures count against.
    pub source: AuthSource,
    /// The interface its packets use.
    pub tun: String,
    /// When it started.
    pub started: Instant,
    /// When IPCP came up (while it is up).
    pub up_since: Option<Instant>,
    /// When IPCP first came up in this session.
    pub first_up: Option<Instant>,
    /// The name the peer authenticated with.
    pub user: Option<String>,
    /// Authentication in words ("peer alice by CHAP; us as home by PAP").
    pub auth: Option<String>,
    /// CCP in words.
    pub ccp: Option<String>,
    /// The authentication failure, to say why the link went down.
    pub auth_failure: Option<EndReason>,
    /// Packets the transport could not write to or read from the tun.
    pub tun_errors: u64,
    /// The IPv6 link-local pair goes on the tun (IPV6CP open on an MTU
    /// IPv6 runs on): `status` shows it.
    pub ipv6_on_tun: bool,
    /// The tunnel under PPP in words, for `status` (the transport keeps it
    /// current).
    pub tunnel: Option<String>,
    /// What carries it, for the audit trail: "ssh", "direct", "pptp",
    /// "l2tp", "l2tp/ipsec".
    pub protocol: &'static str,
    /// Where the peer is for the audit trail, with the port where the
    /// transport knows it (defaults to `outer_peer`).
    pub from: Option<String>,
    /// When it started, by the wall clock (the audit trail's).
    pub started_at: SystemTime,
    /// The addresses IPCP agreed on last (ours, the peer's): the audit
    /// trail's inner address, kept after IPCP went down.
    pub inner: Option<(Ipv4Addr, Ipv4Addr)>,
    /// The engine's counters when it ended (the end record's bytes), for a
    /// transport whose engine is gone by the time the session is closed.
    pub final_counters: Option<Counters>,
    /// The audit trail ([`SessionInfo::audited`]); `None`: not audited.
    pub audit: Option<Arc<Audit>>,
}

impl SessionInfo {
    /// A session of `profile` from `source` starting now.
    pub fn new(
        id: SessionId,
        profile: &str,
        log_name: String,
        source: AuthSource,
        tun: &str,
    ) -> SessionInfo {
        SessionInfo {
            id,
            profile: profile.to_string(),
            log_name,
            outer_peer: source.to_string(),
            source,
            tun: tun.to_string(),
            started: Instant::now(),
            up_since: None,
            first_up: None,
            user: None,
            auth: None,
            ccp: None,
            auth_failure: None,
            tun_errors: 0,
            ipv6_on_tun: false,
            tunnel: None,
            protocol: "ppp",
            from: None,
            started_at: SystemTime::now(),
            inner: None,
            final_counters: None,
            audit: None,
        }
    }

    /// The session with its audit trail (the registry's) and what carries
    /// it (see [`SessionInfo::protocol`]).
    pub fn audited(mut self, audit: Option<Arc<Audit>>, protocol: &'static str) -> SessionInfo {
        self.audit = audit;
        self.protocol = protocol;
        self
    }

    /// IPCP came up with these addresses: the first time in the session,
    /// the audit trail's start record.
    pub fn ipv4_up(&mut self, local: Ipv4Addr, peer: Ipv4Addr) {
        self.inner = Some((local, peer));
        let first = self.first_up.is_none();
        self.ipv4(true);
        if first {
            if let Some(audit) = &self.audit {
                audit.write(&self.audit_record(AuditEvent::SessionStart, SystemTime::now(), None));
            }
        }
    }

    /// The session ended for `reason` with the engine's final `counters`
    /// (else [`SessionInfo::final_counters`]): the audit trail's end
    /// record, written whether or not IPCP came up (an authentication
    /// failure is who tried, from where).
    pub fn audit_end(&self, reason: &EndReason, counters: Option<Counters>) {
        let Some(audit) = &self.audit else {
            return;
        };
        let now = SystemTime::now();
        let counters = counters
            .or_else(|| self.final_counters.clone())
            .unwrap_or_default();
        let connected = now
            .duration_since(self.started_at)
            .unwrap_or_default()
            .as_secs_f64();
        let tried = match reason {
            EndReason::AuthFailed {
                user, ours: false, ..
            } if !user.is_empty() => Some(user.as_str()),
            _ => None,
        };
        let record = self
            .audit_record(AuditEvent::SessionEnd, now, tried)
            .field("start", crate::audit::rfc3339(self.started_at))
            .field("duration", format_args!("{connected:.1}"))
            .maybe(
                "ipcp_up",
                self.up_for().map(|d| format!("{:.1}", d.as_secs_f64())),
            )
            .field("bytes_in", counters.rx_bytes)
            .field("bytes_out", counters.tx_bytes)
            .field("packets_in", counters.rx_packets)
            .field("packets_out", counters.tx_packets)
            .field("kind", reason.kind())
            .text("reason", &reason.to_string());
        audit.write(&record);
    }

    /// The fields both records have: who (the name the peer
    /// authenticated with, the local uid of a `direct` caller, the
    /// authentication in words), from where, which inner addresses, on
    /// which profile and protocol.
    /// `tried`: the name a failed authentication was for, when no name
    /// succeeded (who tried matters to an audit).
    fn audit_record(&self, event: AuditEvent, at: SystemTime, tried: Option<&str>) -> Record {
        let uid = match &self.source {
            AuthSource::Direct { uid, .. } => Some(*uid),
            AuthSource::Peer(_) => None,
        };
        let mut r = Record::new(event, at)
            .field("id", self.id)
            .field("profile", &self.profile)
            .field("protocol", self.protocol);
        if let Some(user) = self.user.as_deref().or(tried) {
            r = r.text("user", user);
        }
        if let Some(auth) = &self.auth {
            r = r.text("auth", auth);
        }
        r.maybe("uid", uid)
            .field("from", self.from.as_deref().unwrap_or(&self.outer_peer))
            .maybe("inner", self.inner.map(|(_, peer)| peer))
            .maybe("local", self.inner.map(|(local, _)| local))
            .field("tun", &self.tun)
    }

    /// IPCP came up or went down.
    pub fn ipv4(&mut self, up: bool) {
        if up {
            let now = Instant::now();
            self.up_since = Some(now);
            self.first_up.get_or_insert(now);
        } else {
            self.up_since = None;
        }
    }

    /// How long IPCP was up, for [`SessionEnd::up_for`].
    pub fn up_for(&self) -> Option<Duration> {
        self.first_up.map(|t| t.elapsed())
    }

    /// The session's end for the engine's `reason`, with the
    /// authentication failure it had (the engine only knows the method
    /// and reason, not whom it concerned).
    pub fn end_for(&self, reason: DownReason, lower: Option<EndReason>) -> EndReason {
        match (&self.auth_failure, reason) {
            (Some(failure), DownReason::AuthFailed { .. } | DownReason::PeerRefusedAuth) => {
                failure.clone()
            }
            (_, reason) => EndReason::from_link(reason, lower),
        }
    }

    /// What `status` shows of this session, read from the engine now.
    pub fn status(&self, link: &Link, now: Instant) -> SessionStatus {
        let st = link.status();
        // FCS is async HDLC's: a datagram transport has none to show.
        let lcp_open = matches!(st.phase, Phase::Authenticate | Phase::Network)
            && link.framing() == tsunagi_ppp::lcp::Framing::AsyncHdlc;
        let (local6, peer6) = match st.ipv6_ids.filter(|_| self.ipv6_on_tun) {
            Some((local, peer)) => (
                Some(link_local_address(&local).to_string()),
                Some(link_local_address(&peer).to_string()),
            ),
            None => (None, None),
        };
        SessionStatus {
            id: self.id.0,
            profile: self.profile.clone(),
            user: self.user.clone(),
            outer_peer: self.outer_peer.clone(),
            tun: self.tun.clone(),
            phase: phase_name(st.phase).to_string(),
            local: st.local_ip.map(|a| a.to_string()),
            peer_addr: st.peer_ip.map(|a| a.to_string()),
            uptime_secs: self
                .up_since
                .map(|t| now.saturating_duration_since(t).as_secs()),
            connected_secs: now.saturating_duration_since(self.started).as_secs(),
            counters: Counters::from(link.stats()),
            auth: self.auth.clone(),
            ccp: self.ccp.clone(),
            local6,
            peer_addr6: peer6,
            fcs_tx: lcp_open.then(|| fcs_name(st.tx_fcs).to_string()),
            fcs_rx: lcp_open.then(|| fcs_name(st.rx_fcs).to_string()),
            tunnel: self.tunnel.clone(),
        }
    }

    /// Logs an authentication or CCP outcome, keeps it for `status`, and
    /// feeds the failure limiter (with `self.source`, whose keys a hold-off
    /// names). Never logs a secret: the engine's reasons do not carry them.
    pub fn auth_event(&mut self, event: AuthEvent, guard: &AuthGuard) {
        let name = &self.log_name;
        let source = self.outer_peer.as_str();
        let mut add_auth = |text: String| {
            self.auth = Some(match self.auth.take() {
                Some(prev) => format!("{prev}; {text}"),
                None => text,
            });
        };
        match event {
            AuthEvent::Authenticated {
                user,
                method,
                address,
            } => {
                let fixed = address.map_or_else(String::new, |a| format!(", fixed address {a}"));
                info!(
                    "{name}: peer \"{user}\" from {source} authenticated with {}{fixed}",
                    method.name()
                );
                guard.succeeded(&self.source);
                add_auth(format!("peer {user} by {}", method.name()));
                self.user = Some(user);
            }
            AuthEvent::AuthenticatedToPeer { user, method } => {
                info!(
                    "{name}: we authenticated to {source} as \"{user}\" with {}",
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
                let held = guard
                    .failed(Instant::now(), &self.source)
                    .map_or_else(String::new, |hold| format!("; {hold}"));
                warn!(
                    "{name}: authentication failed: user \"{user}\" from {source} by {}: {reason}{held}",
                    method.name()
                );
                self.auth_failure = Some(EndReason::AuthFailed {
                    user,
                    method,
                    reason,
                    ours: false,
                });
            }
            AuthEvent::AuthFailed {
                user,
                method,
                reason,
                ours: true,
            } => {
                warn!(
                    "{name}: {source} refused our authentication as \"{user}\" by {}: {reason}",
                    method.name()
                );
                self.auth_failure = Some(EndReason::AuthFailed {
                    user,
                    method,
                    reason,
                    ours: true,
                });
            }
            AuthEvent::PeerRefusedAuth => {
                let held = guard
                    .failed(Instant::now(), &self.source)
                    .map_or_else(String::new, |hold| format!(" ({hold})"));
                warn!(
                    "{name}: authentication failed: peer at {source} refused to authenticate{held}"
                );
                self.auth_failure = Some(EndReason::PeerRefusedAuth);
            }
            AuthEvent::CcpUp { tx, rx } => {
                let show = |m: Option<tsunagi_ppp::ccp::CcpMethod>| {
                    m.map_or_else(|| "none".to_string(), |m| m.to_string())
                };
                let text = format!("send {}, receive {}", show(tx), show(rx));
                info!("{name}: CCP up: {text}");
                self.ccp = Some(text);
            }
        }
    }
}

/// Addresses while IPCP is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Pair {
    /// Ours.
    pub local: Ipv4Addr,
    /// The peer's.
    pub peer: Ipv4Addr,
    /// DNS servers the peer gave us (for the hooks' DNS1/DNS2).
    pub dns: [Option<Ipv4Addr>; 2],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_reasons_name_themselves_and_map_to_exit_codes() {
        let cases = [
            (
                EndReason::PeerTerminated("Administrative hangup".into()),
                "peer terminated: Administrative hangup",
                EXIT_NORMAL,
            ),
            (
                EndReason::PeerTerminated(String::new()),
                "peer terminated",
                0,
            ),
            (EndReason::Hangup, "administrative hangup", EXIT_NORMAL),
            (
                EndReason::EchoTimeout,
                "LCP echo timeout: peer not answering",
                EXIT_LINK_FAILED,
            ),
            (
                EndReason::NegotiationFailed("IPCP"),
                "IPCP negotiation failed",
                EXIT_LINK_FAILED,
            ),
            (
                EndReason::AuthFailed {
                    user: "bob".into(),
                    method: AuthMethod::ChapMd5,
                    reason: "wrong secret".into(),
                    ours: true,
                },
                "peer refused our authentication as \"bob\" by CHAP: wrong secret",
                EXIT_REFUSED,
            ),
            (
                EndReason::TransportLost("device exited with status 3".into()),
                "device exited with status 3",
                EXIT_LINK_FAILED,
            ),
            (
                EndReason::NoAddress("pool \"vpn\" exhausted: all 50 addresses in use".into()),
                "no address for the peer: pool \"vpn\" exhausted: all 50 addresses in use",
                EXIT_REFUSED,
            ),
        ];
        for (reason, text, code) in cases {
            assert_eq!(reason.to_string(), text);
            assert_eq!(reason.exit_code(), code, "{reason}");
        }
        assert_eq!(
            EndReason::from_link(DownReason::LowerDown, None),
            EndReason::TransportLost("stream lost".into())
        );
        assert_eq!(
            EndReason::from_link(
                DownReason::LowerDown,
                Some(EndReason::TransportLost(
                    "the peer closed the stream".into()
                ))
            )
            .to_string(),
            "the peer closed the stream"
        );
    }

    #[test]
    fn link_local_address_from_interface_identifier() {
        // pppd's log of a real session: "local  LL address fe80::6441:6fd5:c640:6ccf".
        let id = [0x64, 0x41, 0x6f, 0xd5, 0xc6, 0x40, 0x6c, 0xcf];
        let addr = link_local_address(&id);
        assert_eq!(addr.to_string(), "fe80::6441:6fd5:c640:6ccf");
        assert!(addr.is_unicast_link_local());
        // The engine's pppd-style text writes every group with four
        // digits ("0487"); ip(8) and `status` show the RFC 5952 form.
        let id = [0xd9, 0x11, 0x45, 0xf9, 0x04, 0x87, 0x4f, 0x84];
        let text = tsunagi_ppp::ipv6cp::link_local_text(&id);
        assert_eq!(text, "fe80::d911:45f9:0487:4f84");
        assert_eq!(text.parse::<Ipv6Addr>().unwrap(), link_local_address(&id));
        assert_eq!(
            link_local_address(&[0, 0, 0, 0, 0, 0, 0, 1]).to_string(),
            "fe80::1"
        );
    }

    #[test]
    fn audit_records_of_a_session_that_failed_authentication_and_of_one_that_ran() {
        let dir =
            std::env::temp_dir().join(format!("tsunagi-session-audit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let file = dir.join("audit.log");
        let audit = Arc::new(Audit::open_with(Some(&file), None).unwrap());
        let source = AuthSource::Peer("192.0.2.5".into());
        let mut info =
            SessionInfo::new(SessionId(7), "vpn", "vpn[7]".into(), source.clone(), "ppp0")
                .audited(Some(audit.clone()), "pptp");
        info.outer_peer = "192.0.2.5:50000".into();
        // No IPCP: no start record; the end record still says who tried.
        info.audit_end(
            &EndReason::AuthFailed {
                user: "mallory\" id=1\nx".into(),
                method: AuthMethod::MsChapV2,
                reason: "wrong password".into(),
                ours: false,
            },
            None,
        );
        let mut ran = SessionInfo::new(SessionId(8), "vpn", "vpn[8]".into(), source, "ppp0")
            .audited(Some(audit), "pptp");
        ran.outer_peer = "192.0.2.5:50000".into();
        ran.user = Some("alice".into());
        ran.ipv4_up(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        ran.ipv4(false);
        ran.ipv4_up(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        ran.audit_end(
            &EndReason::PeerTerminated("bye".into()),
            Some(Counters {
                rx_bytes: 10,
                tx_bytes: 20,
                rx_packets: 1,
                tx_packets: 2,
                ..Counters::default()
            }),
        );
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].contains(" session-end id=7 profile=vpn protocol=pptp user=\"mallory\\\" id=1\\nx\" from=192.0.2.5:50000 tun=ppp0 start="), "{text}");
        assert!(lines[0].contains(" bytes_in=0 bytes_out=0 packets_in=0 packets_out=0 kind=auth-failed reason=\"authentication of peer \\\"mallory"), "{text}");
        assert!(!lines[0].contains("ipcp_up="), "{text}");
        // One start record, though IPCP came up twice.
        assert!(lines[1].contains(" session-start id=8 profile=vpn protocol=pptp user=\"alice\" from=192.0.2.5:50000 inner=10.0.0.2 local=10.0.0.1 tun=ppp0"), "{text}");
        assert!(lines[2].contains(" session-end id=8 "), "{text}");
        assert!(lines[2].contains(" bytes_in=10 bytes_out=20 packets_in=1 packets_out=2 kind=peer-terminated reason=\"peer terminated: bye\""), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn fcs_names_are_the_config_values() {
        assert_eq!(fcs_name(FcsMode::Fcs16), "16");
        assert_eq!(fcs_name(FcsMode::Null), "null");
    }
}
