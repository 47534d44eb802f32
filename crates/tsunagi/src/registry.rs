//! The registry: one place that knows every profile and every live
//! session (DESIGN.md, "Registry").
//!
//! A profile is a `[link.NAME]` (a site link, one session at a time) or a
//! server (many sessions on one transport). Each has a command channel to
//! the task that owns its sessions: the site link's supervisor, or the
//! server's transport. The registry holds, behind one lock taken only when
//! a session starts or ends and when `status` is asked (never per packet):
//! - the profiles, with what `status` shows of a site link between
//!   sessions (connecting, waiting for a redial, why it last went down);
//! - the live sessions: their profile.
//!
//! `status` asks each profile's owner for its sessions
//! ([`Command::Snapshot`]), which it reads from the engines there and then:
//! the counters are current when asked.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::audit::Audit;
use crate::capture::{ProfileTap, Tap};
use crate::config::Mode;
use crate::control::{
    Counters, IpsecConnStatus, LinkStatus, Response, ServerStatus, SessionStatus,
};
use crate::session::{EndReason, SessionId, SessionInfo};

/// How long `status` waits for a profile's owner to answer.
pub const SNAPSHOT_WAIT: Duration = Duration::from_secs(2);

/// Sends the command `make` builds around a reply channel to a profile's
/// owner and waits for the answer, each step at most [`SNAPSHOT_WAIT`];
/// `None` when the owner is gone or too slow (status then shows what the
/// others said).
async fn ask<T>(
    commands: &mpsc::Sender<Command>,
    make: impl FnOnce(oneshot::Sender<T>) -> Command,
) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    commands.send_timeout(make(tx), SNAPSHOT_WAIT).await.ok()?;
    tokio::time::timeout(SNAPSHOT_WAIT, rx).await.ok()?.ok()
}

/// A stream handed over by `tsunagi direct`.
#[derive(Debug)]
pub struct Attach {
    /// The caller's stdin: bytes from the peer.
    pub from_peer: OwnedFd,
    /// The caller's stdout: bytes to the peer.
    pub to_peer: OwnedFd,
    /// The caller's uid.
    pub uid: u32,
    /// The caller's pid.
    pub pid: i32,
    /// The ssh client address the caller reported (`SSH_CONNECTION`).
    pub ssh_client: Option<String>,
    /// Where the final answer goes.
    pub reply: oneshot::Sender<Response>,
}

/// Requests to the task that owns a profile's sessions.
#[derive(Debug)]
pub enum Command {
    /// The live sessions as `status` shows them, read now.
    Snapshot(oneshot::Sender<Vec<SessionStatus>>),
    /// Dial now (a site link in dial mode).
    Dial(oneshot::Sender<Response>),
    /// Close the site link and stop redialling it.
    Hangup(oneshot::Sender<Response>),
    /// Close one session.
    Kick(SessionId, oneshot::Sender<Response>),
    /// Run a direct session over these fds (a site link in direct mode).
    Attach(Attach),
    /// A server's own view for `status` (not its sessions').
    ServerStatus(oneshot::Sender<ServerStatus>),
    /// The IPsec connections' SAs for `status`.
    IpsecStatus(oneshot::Sender<Vec<IpsecConnStatus>>),
}

/// What kind of profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileKind {
    /// A `[link.NAME]`: one session at a time, dialled or answered.
    Site(Mode),
    /// A server: many sessions, each with an address from a pool.
    Server,
    /// The IPsec driver: every `[ipsec.NAME]`.
    Ipsec,
}

/// What `status` shows of a site link besides its session.
#[derive(Debug, Clone, Default)]
pub struct ProfileState {
    /// "idle", "connecting", "waiting" (for a redial), "stopped", or the
    /// session's phase while one runs.
    pub phase: &'static str,
    /// Who is at the other end.
    pub peer: String,
    /// Sessions after the first.
    pub redials: u64,
    /// When the next dial happens.
    pub next_redial: Option<Instant>,
    /// Why the last session ended.
    pub last_down: Option<String>,
}

struct Profile {
    kind: ProfileKind,
    tun: String,
    commands: mpsc::Sender<Command>,
    state: ProfileState,
    /// Its capture point: a capture ends when the profile goes.
    tap: ProfileTap,
}

#[derive(Default)]
struct Inner {
    profiles: BTreeMap<String, Profile>,
    /// Live sessions and their profiles.
    sessions: BTreeMap<SessionId, String>,
    next_session: u64,
    /// The audit trail, handed to each session ([`Registry::audit`]).
    audit: Option<Arc<Audit>>,
    /// What ended sessions leave behind, per profile: the metrics'
    /// counters, which must not go down when a session ends.
    ended: BTreeMap<String, Ended>,
    /// The last sessions ended, newest last: a metrics scrape that saw one
    /// in `status` and in `ended` counts it once.
    recently_ended: std::collections::VecDeque<u64>,
    /// Profiles being stopped for a reason other than the daemon's
    /// shutdown (a reload): what their sessions' ends are put down to.
    stopping: BTreeMap<String, EndReason>,
}

/// How many ended session ids [`Registry::ended`] remembers.
const RECENTLY_ENDED: usize = 256;

/// Per profile, the sessions that ended ([`Registry::ended`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ended {
    /// Sessions ended, by [`EndReason::kind`].
    pub by_kind: BTreeMap<&'static str, u64>,
    /// Of those, authentication failures ([`EndReason::is_auth_failure`]).
    pub auth_failures: u64,
    /// Of those, negotiation failures
    /// ([`EndReason::is_negotiation_failure`]).
    pub negotiation_failures: u64,
    /// Their engines' counters, summed (sessions closed through
    /// [`Registry::end_session`]).
    pub counters: Counters,
}

/// Every profile and live session; cheap to clone (shared).
#[derive(Clone, Default)]
pub struct Registry(Arc<Mutex<Inner>>);

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// An empty registry whose sessions write to the audit trail `audit`.
    pub fn with_audit(audit: Arc<Audit>) -> Registry {
        let registry = Registry::default();
        registry.lock().audit = Some(audit);
        registry
    }

    /// The audit trail sessions write to (`None`: none).
    pub fn audit(&self) -> Option<Arc<Audit>> {
        self.lock().audit.clone()
    }

    /// Session `info` ended for `reason`, its engine's last `counters`
    /// (else the ones `info` kept): its audit record, its counters added
    /// to its profile's, then [`Registry::close_session`].
    pub fn end_session(&self, info: &SessionInfo, reason: &EndReason, counters: Option<Counters>) {
        let reason = &self.end_reason(&info.profile, reason);
        let counters = counters.or_else(|| info.final_counters.clone());
        info.audit_end(reason, counters.clone());
        if let Some(c) = counters {
            let mut inner = self.lock();
            let sum = &mut inner
                .ended
                .entry(info.profile.clone())
                .or_default()
                .counters;
            add_counters(sum, &c);
            if inner.recently_ended.len() == RECENTLY_ENDED {
                inner.recently_ended.pop_front();
            }
            inner.recently_ended.push_back(info.id.0);
        }
        self.close_session(info.id, reason);
    }

    /// Per profile, what its ended sessions left ([`Ended`]), and the ids
    /// of the last sessions ended (whose counters are in there).
    pub fn ended(&self) -> (BTreeMap<String, Ended>, Vec<u64>) {
        let inner = self.lock();
        (
            inner.ended.clone(),
            inner.recently_ended.iter().copied().collect(),
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a profile whose sessions are owned by the task reading
    /// `commands`.
    pub fn add_profile(
        &self,
        name: &str,
        kind: ProfileKind,
        tun: &str,
        commands: mpsc::Sender<Command>,
        state: ProfileState,
    ) {
        let mut inner = self.lock();
        inner.profiles.insert(
            name.to_string(),
            Profile {
                kind,
                tun: tun.to_string(),
                commands,
                state,
                tap: ProfileTap::default(),
            },
        );
        // Started (again): no longer being stopped.
        inner.stopping.remove(name);
    }

    /// Forgets a profile the config no longer has (`tsunagi reload`), once
    /// its owner has stopped.
    pub fn remove_profile(&self, name: &str) {
        let mut inner = self.lock();
        inner.profiles.remove(name);
        inner.stopping.remove(name);
    }

    /// The daemon is about to stop `profile` for `why` (a reload), not for
    /// its own shutdown: the sessions it ends are put down to `why`.
    pub fn stopping(&self, profile: &str, why: EndReason) {
        self.lock().stopping.insert(profile.to_string(), why);
    }

    /// Why a session of `profile` that its transport says ended for
    /// `reason` really ended: a transport told to stop says
    /// [`EndReason::Shutdown`], which a reload's stop turns into its own
    /// reason ([`Registry::stopping`]).
    pub fn end_reason(&self, profile: &str, reason: &EndReason) -> EndReason {
        match (reason, self.lock().stopping.get(profile)) {
            (EndReason::Shutdown, Some(why)) => why.clone(),
            _ => reason.clone(),
        }
    }

    /// The profile's capture point, for its transport and `capture`;
    /// `None` for the IPsec driver, which carries no PPP of its own.
    pub fn tap(&self, name: &str) -> Option<Tap> {
        self.lock()
            .profiles
            .get(name)
            .filter(|p| p.kind != ProfileKind::Ipsec)
            .map(|p| p.tap.handle())
    }

    /// Changes what `status` shows of a site link between sessions.
    pub fn update_profile(&self, name: &str, f: impl FnOnce(&mut ProfileState)) {
        if let Some(p) = self.lock().profiles.get_mut(name) {
            f(&mut p.state);
        }
    }

    /// The profile's kind and command channel.
    pub fn profile(&self, name: &str) -> Option<(ProfileKind, mpsc::Sender<Command>)> {
        self.lock()
            .profiles
            .get(name)
            .map(|p| (p.kind, p.commands.clone()))
    }

    /// A new session of `profile`: its id.
    pub fn open_session(&self, profile: &str) -> SessionId {
        let mut inner = self.lock();
        inner.next_session += 1;
        let id = SessionId(inner.next_session);
        inner.sessions.insert(id, profile.to_string());
        id
    }

    /// The session ended (for `reason`; the owner logs it). Its end is
    /// counted by kind against its profile ([`Registry::ended`]).
    pub fn close_session(&self, id: SessionId, reason: &EndReason) {
        let mut inner = self.lock();
        if let Some(profile) = inner.sessions.remove(&id) {
            let ended = inner.ended.entry(profile).or_default();
            *ended.by_kind.entry(reason.kind()).or_default() += 1;
            ended.auth_failures += u64::from(reason.is_auth_failure());
            ended.negotiation_failures += u64::from(reason.is_negotiation_failure());
        }
    }

    /// The profile a live session belongs to.
    pub fn session_profile(&self, id: SessionId) -> Option<String> {
        self.lock().sessions.get(&id).cloned()
    }

    /// How many sessions are live.
    pub fn session_count(&self) -> usize {
        self.lock().sessions.len()
    }

    /// The status answer: the site links' view, and every live session as
    /// its owner reads it now (an owner that does not answer within
    /// [`SNAPSHOT_WAIT`] is left out of `sessions`, and its link shows no
    /// session data).
    pub async fn status(&self) -> Response {
        // Ask every profile that has sessions, all at once.
        let asks: Vec<(String, mpsc::Sender<Command>)> = {
            let inner = self.lock();
            let mut with_sessions: Vec<&String> = inner.sessions.values().collect();
            with_sessions.sort();
            with_sessions.dedup();
            with_sessions
                .into_iter()
                .filter_map(|p| {
                    inner
                        .profiles
                        .get(p)
                        .map(|e| (p.clone(), e.commands.clone()))
                })
                .collect()
        };
        let servers: Vec<mpsc::Sender<Command>> = {
            let inner = self.lock();
            inner
                .profiles
                .values()
                .filter(|p| p.kind == ProfileKind::Server)
                .map(|p| p.commands.clone())
                .collect()
        };
        let ipsec_owners: Vec<mpsc::Sender<Command>> = {
            let inner = self.lock();
            inner
                .profiles
                .values()
                .filter(|p| p.kind == ProfileKind::Ipsec)
                .map(|p| p.commands.clone())
                .collect()
        };
        let ipsec_waits = ipsec_owners.into_iter().map(|commands| async move {
            ask(&commands, Command::IpsecStatus)
                .await
                .unwrap_or_default()
        });
        let ipsec: Vec<IpsecConnStatus> = futures::future::join_all(ipsec_waits)
            .await
            .into_iter()
            .flatten()
            .collect();
        let server_waits = servers
            .into_iter()
            .map(|commands| async move { ask(&commands, Command::ServerStatus).await });
        let waits = asks.into_iter().map(|(_, commands)| async move {
            ask(&commands, Command::Snapshot).await.unwrap_or_default()
        });
        let mut sessions: Vec<SessionStatus> = futures::future::join_all(waits)
            .await
            .into_iter()
            .flatten()
            .collect();
        sessions.sort_by_key(|s| s.id);
        let mut servers: Vec<ServerStatus> = futures::future::join_all(server_waits)
            .await
            .into_iter()
            .flatten()
            .collect();
        servers.sort_by(|a, b| a.name.cmp(&b.name));
        let inner = self.lock();
        let now = Instant::now();
        let links = inner
            .profiles
            .iter()
            .filter_map(|(name, p)| match p.kind {
                ProfileKind::Site(mode) => {
                    let session = sessions.iter().find(|s| &s.profile == name);
                    Some(link_view(name, mode, &p.tun, &p.state, session, now))
                }
                ProfileKind::Server | ProfileKind::Ipsec => None,
            })
            .collect();
        Response::Status {
            links,
            sessions,
            servers,
            ipsec,
        }
    }
}

/// Adds `c` to `sum`, field by field.
pub fn add_counters(sum: &mut Counters, c: &Counters) {
    sum.rx_packets += c.rx_packets;
    sum.rx_bytes += c.rx_bytes;
    sum.tx_packets += c.tx_packets;
    sum.tx_bytes += c.tx_bytes;
    sum.rx_bad_fcs += c.rx_bad_fcs;
    sum.rx_malformed += c.rx_malformed;
    sum.rx_unknown_protocol += c.rx_unknown_protocol;
    sum.rx_bad_control += c.rx_bad_control;
    sum.rx_control_dropped += c.rx_control_dropped;
    sum.tx_control_dropped += c.tx_control_dropped;
}

/// A site link as `status` shows it: its state between sessions, and its
/// session's if one runs.
fn link_view(
    name: &str,
    mode: Mode,
    tun: &str,
    state: &ProfileState,
    session: Option<&SessionStatus>,
    now: Instant,
) -> LinkStatus {
    let mut view = LinkStatus {
        name: name.to_string(),
        mode: mode.to_string(),
        phase: state.phase.to_string(),
        tun: tun.to_string(),
        peer: state.peer.clone(),
        redials: state.redials,
        next_redial_secs: state
            .next_redial
            .map(|t| t.saturating_duration_since(now).as_secs()),
        last_down: state.last_down.clone(),
        ..LinkStatus::default()
    };
    if let Some(s) = session {
        view.phase = s.phase.clone();
        view.local = s.local.clone();
        view.peer_addr = s.peer_addr.clone();
        view.uptime_secs = s.uptime_secs;
        view.counters = s.counters.clone();
        view.auth = s.auth.clone();
        view.ccp = s.ccp.clone();
        view.local6 = s.local6.clone();
        view.peer_addr6 = s.peer_addr6.clone();
        view.fcs_tx = s.fcs_tx.clone();
        view.fcs_rx = s.fcs_rx.clone();
        view.tunnel = s.tunnel.clone();
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn status_asks_each_owner_and_builds_the_link_view() {
        let registry = Registry::new();
        let (tx, mut rx) = mpsc::channel(4);
        registry.add_profile(
            "labs",
            ProfileKind::Site(Mode::Dial),
            "tun0",
            tx,
            ProfileState {
                phase: "connecting",
                peer: "pppossh@198.51.100.1".into(),
                ..ProfileState::default()
            },
        );
        let (idle_tx, _idle_rx) = mpsc::channel(4);
        registry.add_profile(
            "home",
            ProfileKind::Site(Mode::Direct),
            "tun1",
            idle_tx,
            ProfileState {
                phase: "idle",
                last_down: Some("peer terminated".into()),
                ..ProfileState::default()
            },
        );
        let id = registry.open_session("labs");
        // The owner answers with its session, read now.
        let owner = tokio::spawn(async move {
            let Some(Command::Snapshot(reply)) = rx.recv().await else {
                panic!("no snapshot request");
            };
            let _ = reply.send(vec![SessionStatus {
                id: id.0,
                profile: "labs".into(),
                phase: "network".into(),
                local: Some("10.224.1.2".into()),
                ..SessionStatus::default()
            }]);
        });
        let Response::Status {
            links, sessions, ..
        } = registry.status().await
        else {
            panic!("not a status answer");
        };
        owner.await.unwrap();
        assert_eq!(sessions.len(), 1);
        assert_eq!(links.len(), 2);
        let labs = links.iter().find(|l| l.name == "labs").unwrap();
        assert_eq!(labs.phase, "network");
        assert_eq!(labs.local.as_deref(), Some("10.224.1.2"));
        assert_eq!(labs.peer, "pppossh@198.51.100.1");
        let home = links.iter().find(|l| l.name == "home").unwrap();
        assert_eq!(home.phase, "idle");
        assert_eq!(home.last_down.as_deref(), Some("peer terminated"));
        registry.close_session(id, &EndReason::Hangup);
        assert_eq!(registry.session_count(), 0);
        let Response::Status { sessions, .. } = registry.status().await else {
            panic!("not a status answer");
        };
        assert!(sessions.is_empty());
    }
}
