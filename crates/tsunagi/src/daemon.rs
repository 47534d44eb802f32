//! `tsunagi run`: the daemon.
//!
//! One supervisor task per configured link, one listener on the control
//! socket (see [`crate::control`] for the protocol), signals. Every
//! profile and session is in the [`Registry`]; address and route changes
//! go through [`Netconf`].
//!
//! - A dial link is dialled at start: its `device` runs under `sh -c` in its
//!   own process group, stdin/stdout carry PPP, stderr goes to our log.
//!   When the session ends it is redialled (with `persist`) after a backoff
//!   that starts at `redial_min`, doubles up to `redial_max`, and starts
//!   over once a link has stayed up for [`STABLE_UP`].
//! - A direct link waits for `tsunagi direct NAME`, whose caller must be one
//!   of `allow_users` (checked by uid from `SO_PEERCRED`). One stream at a
//!   time; a second is refused while the first runs.
//! - SIGTERM/SIGINT: every link sends LCP Terminate-Request and gets up to
//!   3 s for the Ack; routes are removed, tuns closed, the socket unlinked.
//! - SIGHUP or `tsunagi reload`: the config is read again and only what
//!   changed is stopped and started ([`crate::reload`]); each link and
//!   server has its own stop for that. A server whose task fails is started
//!   again after a backoff.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};
use tsunagi_host::Netlink;

use tokio::signal::unix::{signal, SignalKind};

use crate::auth::{AuthGuard, AuthSource, Credentials, SecretsFiles};
use crate::config::{Config, LinkSettings, Mode, ServerProfile};
use crate::control::{self, Request, Response};
use crate::limits::{
    self, AcceptBackoff, ConnectionLimits, ConnectionPermit, ControlWarning, ControlWarnings,
    WarningKey, REQUEST_TIMEOUT,
};
use crate::netconf::Netconf;
use crate::registry::{Attach, Command, ProfileKind, ProfileState, Registry};
use crate::reload::{Change, NotApplied, ReloadPlan, ReloadReport};
use crate::session::{EndReason, SessionEnd, SessionId};
use crate::transport::stream::{self, SessionCtx, Stream};
use crate::users;

/// A link that stayed up this long resets its redial backoff.
pub const STABLE_UP: Duration = Duration::from_secs(30);
/// How long the daemon waits for its links at shutdown before it exits anyway.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// Send buffer asked for each end of the device socketpair: room for a
/// burst of frames per wake-up, like the 1 MiB pipes of `direct`.
const DEVICE_SOCKET_BUFFER: usize = 1024 * 1024;

/// A connected pair of Unix stream sockets for a device command: ours
/// (non-blocking, for the reactor) and the child's (blocking, as programs
/// expect their stdio).
fn device_socketpair() -> std::io::Result<(UnixStream, OwnedFd)> {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    for end in [&ours, &theirs] {
        // Capped by net.core.wmem_max; the default is enough to work.
        let _ = rustix::net::sockopt::set_socket_send_buffer_size(end, DEVICE_SOCKET_BUFFER);
    }
    ours.set_nonblocking(true)?;
    Ok((UnixStream::from_std(ours)?, OwnedFd::from(theirs)))
}

/// The site links' settings by name, for `direct`'s checks.
pub type LinkMap = BTreeMap<String, Arc<LinkSettings>>;

/// Where `tsunagi reload` is carried out: the daemon's main loop, which
/// answers on the enclosed channel.
pub type ReloadSender = mpsc::Sender<oneshot::Sender<Response>>;

/// What the control socket answers from.
#[derive(Clone)]
pub struct ControlContext {
    /// Every profile and session.
    pub registry: Registry,
    /// The site links' settings, for `direct`'s checks; replaced whole by
    /// a reload.
    links: Arc<std::sync::RwLock<Arc<LinkMap>>>,
    /// The daemon's main loop, for `reload` (`None`: not offered).
    reload: Option<ReloadSender>,
    /// Warnings about control connections, rate-limited by cause and uid.
    pub warnings: Arc<ControlWarnings>,
    /// Control connections open, by uid, against their caps.
    pub connections: ConnectionLimits,
}

impl ControlContext {
    /// Answers from `registry` and `links`, with a fresh warning limiter
    /// and connection counts.
    pub fn new(registry: Registry, links: Arc<LinkMap>) -> Self {
        ControlContext {
            registry,
            links: Arc::new(std::sync::RwLock::new(links)),
            reload: None,
            warnings: Arc::default(),
            connections: ConnectionLimits::default(),
        }
    }

    /// The same, with `reload` carried out by the daemon's loop behind
    /// `reload`.
    pub fn with_reload(mut self, reload: ReloadSender) -> Self {
        self.reload = Some(reload);
        self
    }

    /// The site links' settings now.
    pub fn links(&self) -> Arc<LinkMap> {
        self.links.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// After a reload: the links' new settings.
    pub fn set_links(&self, links: Arc<LinkMap>) {
        *self.links.write().unwrap_or_else(|e| e.into_inner()) = links;
    }

    /// A warning about uid `uid`'s connection (`None`: not known yet),
    /// through the limiter.
    fn warn(&self, warning: ControlWarning, uid: Option<u32>, detail: impl std::fmt::Display) {
        self.warnings.warn(WarningKey { warning, uid }, detail);
    }
}

/// Run the daemon until SIGTERM/SIGINT.
pub fn run(config: Config, socket: PathBuf) -> anyhow::Result<()> {
    // The error names the file and what is wrong with it.
    crate::logging::init(config.daemon.log_file.as_deref())?;
    info!("{}", limits::raise_open_files_limit());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let result = rt.block_on(serve(config, socket));
    // Hook scripts still running are not waited for.
    rt.shutdown_timeout(Duration::from_millis(100));
    result
}

/// Credentials by link or server name.
type CredentialsByName = BTreeMap<String, Arc<Credentials>>;

/// What a running link was started with.
type LinkStart = (Arc<LinkSettings>, Arc<Credentials>);

/// Loads every link's and server's credentials through `files` (a file
/// named by several is read once and shared); the first failure names its
/// section.
fn load_credentials(
    config: &Config,
    files: &SecretsFiles,
) -> anyhow::Result<(CredentialsByName, CredentialsByName)> {
    let mut links = BTreeMap::new();
    for settings in &config.links {
        let c = Credentials::load(settings, &config.path, files)
            .with_context(|| format!("link {}: cannot use its credentials", settings.name))?;
        links.insert(settings.name.clone(), Arc::new(c));
    }
    let mut servers = BTreeMap::new();
    for profile in &config.servers {
        let c = Credentials::load_auth(&profile.auth, &config.path, files)
            .with_context(|| format!("server {}: cannot use its credentials", profile.name))?;
        servers.insert(profile.name.clone(), Arc::new(c));
    }
    Ok((links, servers))
}

async fn serve(config: Config, socket: PathBuf) -> anyhow::Result<()> {
    // Secrets first: a secrets file (or a config holding a password) that
    // others can read or change is a reason not to start at all (as ssh
    // refuses such a key), before any socket exists.
    let secrets = SecretsFiles::new();
    let (mut credentials, mut server_credentials) = match load_credentials(&config, &secrets) {
        Ok(c) => c,
        Err(e) => {
            // In the log as well: a daemon started by an init system
            // may have nobody reading its stderr.
            error!("refusing to start: {e:#}");
            return Err(e);
        }
    };
    // The IPsec PSKs, with the same permission check.
    let ipsec_psks = match crate::ipsec::driver::load_psks(&config.ipsec) {
        Ok(psks) => psks,
        Err(e) => {
            error!("refusing to start: {e:#}");
            return Err(e.context("cannot use the IPsec secrets"));
        }
    };
    // Challenges are drawn from the kernel; a kernel that refuses now
    // would make the first authentication fail instead.
    if let Err(e) = tsunagi_crypto::OsRandom::check() {
        error!("refusing to start: {e}");
        bail!("cannot draw randomness for challenges: {e}");
    }
    // The audit trail before anything can start a session; an audit_file
    // that cannot be used safely is a reason not to start, as log_file is.
    let audit = crate::audit::Audit::open(&config.daemon)
        .map_err(|e| anyhow::anyhow!("[daemon] audit_file: {e}"))
        .inspect_err(|e| error!("refusing to start: {e}"))?;
    let guard = AuthGuard::new();
    // Before anything else: a SIGTERM from now on is a clean shutdown, a
    // SIGHUP a reload.
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sighup = signal(SignalKind::hangup())?;
    // The filter before the control socket and any link: once the daemon
    // answers, the gateway does not run open.
    // The servers' firewall holes (crate::policy::Holes), kept across
    // the policy's start and stop.
    let holes = crate::policy::Holes::new();
    let policy = config
        .policy
        .as_ref()
        .map(|settings| crate::policy::start(settings, &holes))
        .transpose()?;
    let stop_policy = |policy: Option<crate::policy::RunningPolicy>| {
        if let Some(p) = policy {
            p.stop();
        }
        holes.shutdown();
    };
    let listener = match bind_control_socket(&socket) {
        Ok(l) => l,
        Err(e) => {
            stop_policy(policy);
            return Err(e);
        }
    };
    let netlink = match Netlink::new() {
        Ok(n) => Arc::new(n),
        Err(e) => {
            let _ = std::fs::remove_file(&socket);
            stop_policy(policy);
            return Err(e).context("cannot open rtnetlink");
        }
    };
    let registry = Registry::with_audit(Arc::new(audit));
    let netconf = Netconf::new(netlink);
    info!(
        "tsunagi {} started: config {}, control socket {}, {} links, {} servers, {} ipsec conns",
        env!("CARGO_PKG_VERSION"),
        config.path.display(),
        socket.display(),
        config.links.len(),
        config.servers.len(),
        config.ipsec.len()
    );
    for m in crate::config::mistakes(&config) {
        warn!("{m}");
    }
    // IPsec stops after the servers and links: their goodbyes (PPP's
    // Terminate-Request, L2TP's CDN and StopCCN) to L2TP/IPsec peers go
    // through its transport conns, and would be lost with the SAs.
    let (ipsec_stop_tx, ipsec_stop_rx) = watch::channel(false);
    let mut ipsec_task = None;
    let mut ipsec_keys = None;
    // IPsec before the servers and links: an L2TP/IPsec LNS binds its
    // socket to its conn's tun, and an L2TP/IPsec link drives its conn.
    let (mut lowers, bridge) = crate::ipsec::bridge::bridges(&config.ipsec);
    if !config.ipsec.is_empty() {
        crate::ipsec::driver::log_conns(&config.ipsec);
        let ctx = crate::ipsec::driver::IpsecCtx {
            registry: &registry,
            netlink: netconf.netlink().clone(),
            holes: &holes,
            shutdown: &ipsec_stop_rx,
            bridge,
        };
        let (tx, rx) = watch::channel(config.ipsec.iter().cloned().zip(ipsec_psks).collect());
        ipsec_keys = Some(tx);
        match crate::ipsec::driver::start(rx, ctx).await {
            Ok(task) => ipsec_task = Some(task),
            Err(e) => {
                error!("ipsec: refusing to start: {e:#}");
                let _ = std::fs::remove_file(&socket);
                stop_policy(policy);
                return Err(e);
            }
        }
    }
    let mut daemon = Daemon {
        config_path: config.path.clone(),
        registry: registry.clone(),
        netconf,
        guard,
        holes: holes.clone(),
        secrets,
        policy,
        ipsec_keys,
        links: BTreeMap::new(),
        servers: BTreeMap::new(),
        control: ControlContext::new(registry, Arc::default()),
        config: config.clone(),
    };
    let stop_ipsec = |task: Option<tokio::task::JoinHandle<()>>| async move {
        let _ = ipsec_stop_tx.send(true);
        if let Some(task) = task {
            if tokio::time::timeout(SHUTDOWN_WAIT, task).await.is_err() {
                warn!(
                    "ipsec did not finish within {}s; exiting anyway",
                    SHUTDOWN_WAIT.as_secs()
                );
            }
        }
    };
    for profile in config.servers {
        crate::servers::log_server(&profile);
        let name = profile.name.clone();
        let credentials = server_credentials.remove(&name).unwrap_or_default();
        let lower = lowers.remove(&name);
        if let Err(e) = daemon
            .start_server(profile, credentials, lower, false)
            .await
        {
            error!("server {name}: refusing to start: {e:#}");
            // The servers already started stop with the daemon.
            daemon.stop_all().await;
            stop_ipsec(ipsec_task).await;
            let _ = std::fs::remove_file(&socket);
            stop_policy(daemon.policy.take());
            return Err(e);
        }
    }
    for settings in config.links {
        log_link(&settings);
        let name = settings.name.clone();
        let credentials = credentials.remove(&name).unwrap_or_default();
        let lower = lowers.remove(&name);
        daemon.start_link(Arc::new(settings), credentials, lower);
    }
    let (reload_tx, mut reload_rx) = mpsc::channel(4);
    daemon.control = daemon.control.clone().with_reload(reload_tx);
    daemon.publish_links();
    crate::metrics::spawn(config.daemon.metrics_listen, daemon.registry.clone());
    let control = daemon.control.clone();
    let warnings = control.warnings.clone();
    let server = tokio::spawn(serve_control(listener, control));

    loop {
        tokio::select! {
            _ = sigterm.recv() => {
                info!("SIGTERM: closing every link");
                break;
            }
            _ = sigint.recv() => {
                info!("SIGINT: closing every link");
                break;
            }
            _ = sighup.recv() => {
                info!("SIGHUP: reloading {}", daemon.config_path.display());
                let _ = daemon.reload().await;
            }
            Some(reply) = reload_rx.recv() => {
                let _ = reply.send(daemon.reload().await);
            }
        }
    }
    daemon.stop_all().await;
    stop_ipsec(ipsec_task).await;
    server.abort();
    // What was only counted is not lost with the daemon.
    warnings.write_all_summaries();
    let _ = std::fs::remove_file(&socket);
    stop_policy(daemon.policy.take());
    info!("tsunagi stopped");
    Ok(())
}

/// A link or server the daemon runs.
struct Running<S> {
    /// What it was started with.
    settings: S,
    /// Its own stop: set by a reload that removes or changes it, and at
    /// shutdown.
    stop: watch::Sender<bool>,
    /// Its supervisor.
    task: tokio::task::JoinHandle<()>,
}

impl<S> Running<S> {
    /// Tells it to stop (its peers are told as at shutdown).
    fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Waits for it to finish, at most [`SHUTDOWN_WAIT`]; past that it is
    /// aborted (its tun and sockets close with it).
    async fn finished(self, what: &str) {
        let abort = self.task.abort_handle();
        if tokio::time::timeout(SHUTDOWN_WAIT, self.task)
            .await
            .is_err()
        {
            warn!(
                "{what} did not finish within {}s; stopped anyway",
                SHUTDOWN_WAIT.as_secs()
            );
            abort.abort();
        }
    }
}

/// What the daemon runs from its config, and what starting and stopping a
/// link or server needs: the state `tsunagi reload` works on.
struct Daemon {
    config_path: PathBuf,
    /// The config in force (what the last reload applied).
    config: Config,
    registry: Registry,
    netconf: Netconf,
    guard: AuthGuard,
    holes: crate::policy::Holes,
    secrets: SecretsFiles,
    policy: Option<crate::policy::RunningPolicy>,
    /// The IPsec conns and their pre-shared keys, in conn order, as the
    /// driver has them (`None`: no `[ipsec]`).
    ipsec_keys: Option<watch::Sender<crate::ipsec::driver::ConnsWithKeys>>,
    links: BTreeMap<String, Running<LinkStart>>,
    servers: BTreeMap<String, Running<ServerProfile>>,
    control: ControlContext,
}

/// First wait before a server that failed is started again; it doubles up
/// to [`SERVER_RESTART_MAX`], and starts over after [`STABLE_UP`] of
/// running.
pub const SERVER_RESTART_MIN: Duration = Duration::from_secs(1);
/// Longest wait between a server's restarts.
pub const SERVER_RESTART_MAX: Duration = Duration::from_secs(60);

impl Daemon {
    /// Starts a link's supervisor.
    fn start_link(
        &mut self,
        settings: Arc<LinkSettings>,
        credentials: Arc<Credentials>,
        lower: Option<crate::ipsec::bridge::Lower>,
    ) {
        let (tx, rx) = mpsc::channel(8);
        self.registry.add_profile(
            &settings.name,
            ProfileKind::Site(settings.mode),
            &settings.tun,
            tx,
            ProfileState {
                phase: "idle",
                peer: match settings.mode {
                    Mode::Dial | Mode::Pptp | Mode::L2tp => settings.dial_peer(),
                    Mode::Direct => String::new(),
                },
                ..ProfileState::default()
            },
        );
        let (stop, stop_rx) = watch::channel(false);
        let sup = Supervisor {
            lower,
            credentials: credentials.clone(),
            guard: self.guard.clone(),
            settings: settings.clone(),
            registry: self.registry.clone(),
            netconf: self.netconf.clone(),
            commands: rx,
            shutdown: stop_rx,
        };
        let task = tokio::spawn(sup.run());
        self.links.insert(
            settings.name.clone(),
            Running {
                settings: (settings, credentials),
                stop,
                task,
            },
        );
    }

    /// Starts a server under a supervisor that starts it again (after a
    /// backoff) whenever it ends without being told to. A first start
    /// that fails is the error here; with `retry` the supervisor keeps
    /// trying anyway (a reload: the daemon runs on), without it gives up.
    async fn start_server(
        &mut self,
        profile: ServerProfile,
        credentials: Arc<Credentials>,
        lower: Option<crate::ipsec::bridge::Lower>,
        retry: bool,
    ) -> anyhow::Result<()> {
        let (stop, stop_rx) = watch::channel(false);
        let (first_tx, first_rx) = oneshot::channel();
        let deps = ServerDeps {
            config_path: self.config_path.clone(),
            registry: self.registry.clone(),
            netconf: self.netconf.clone(),
            guard: self.guard.clone(),
            holes: self.holes.clone(),
        };
        let task = tokio::spawn(supervise_server(
            profile.clone(),
            credentials,
            lower,
            deps,
            stop_rx,
            first_tx,
            retry,
        ));
        let first = first_rx
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("its supervisor ended")));
        self.servers.insert(
            profile.name.clone(),
            Running {
                settings: profile,
                stop,
                task,
            },
        );
        first
    }

    /// The links' settings for `direct`'s checks, after a change.
    fn publish_links(&self) {
        let map: LinkMap = self
            .links
            .iter()
            .map(|(name, r)| (name.clone(), r.settings.0.clone()))
            .collect();
        self.control.set_links(Arc::new(map));
    }

    /// Stops every link and server, at once, and waits for them.
    async fn stop_all(&mut self) {
        let links = std::mem::take(&mut self.links);
        let servers = std::mem::take(&mut self.servers);
        for r in links.values() {
            r.stop();
        }
        for r in servers.values() {
            r.stop();
        }
        // They stop side by side; this waits for each in turn.
        for (name, r) in links {
            r.finished(&format!("link {name}")).await;
        }
        for (name, r) in servers {
            r.finished(&format!("server {name}")).await;
        }
    }

    /// `tsunagi reload` / SIGHUP: reads the config again and applies what
    /// changed ([`ReloadPlan`]). A config that does not load changes
    /// nothing; the answer says why.
    async fn reload(&mut self) -> Response {
        let new = match Config::load(&self.config_path) {
            Ok(c) => c,
            Err(e) => {
                let message = format!("reload refused, nothing changed: {e}");
                error!("{message}");
                return Response::Refused { message };
            }
        };
        for m in crate::config::mistakes(&new) {
            warn!("{m}");
        }
        let plan = ReloadPlan::between(&self.config, &new);
        let mut report = ReloadReport {
            not_applied: plan.not_applied.clone(),
            ..ReloadReport::default()
        };
        // Every secrets file in use, again: what sessions look peers up
        // in from now on.
        for (path, result) in self.secrets.reread() {
            match result {
                Ok(n) => report
                    .secrets
                    .push(format!("{} ({n} entries)", path.display())),
                Err(e) => report
                    .errors
                    .push(format!("{e}; the file's previous contents stay in use")),
            }
        }
        // The IPsec conns: what they negotiate (keys from ipsec.secrets,
        // proposals, lifetimes, ...) from their next negotiation; a change
        // to their plumbing is not applied (NotApplied::Ipsec).
        let mut ipsec_kept = plan.not_applied.contains(&NotApplied::Ipsec);
        if let (Some(running), false) = (&self.ipsec_keys, ipsec_kept) {
            match crate::ipsec::driver::load_psks(&new.ipsec) {
                Ok(new_keys) => {
                    let changed = running
                        .borrow()
                        .iter()
                        .zip(&new_keys)
                        .filter(|((_, a), b)| a.expose() != b.expose())
                        .count();
                    report
                        .secrets
                        .push(format!("ipsec.secrets ({changed} conns' keys changed)"));
                    for name in &plan.ipsec {
                        report
                            .done
                            .push(format!("ipsec.{name} changed (from its next negotiation)"));
                    }
                    if changed > 0 || !plan.ipsec.is_empty() {
                        let _ = running.send(new.ipsec.iter().cloned().zip(new_keys).collect());
                    }
                }
                Err(e) => {
                    ipsec_kept = true;
                    report
                        .errors
                        .push(format!("{e:#}; the IPsec conns and keys in force stay"));
                }
            }
        }
        // New credentials for what starts, before anything stops: a link
        // that cannot have its credentials keeps running as it was.
        let mut link_credentials = BTreeMap::new();
        let mut link_changes = Vec::new();
        for (name, change) in &plan.links {
            let settings = new.links.iter().find(|l| &l.name == name);
            let mut change = *change;
            if let (Change::Unchanged, Some(settings)) = (change, settings) {
                // The same settings, but its own password file may say
                // something else now.
                if let (Ok(c), Some(running)) = (
                    Credentials::load(settings, &new.path, &self.secrets),
                    self.links.get(name),
                ) {
                    let old = running.settings.1.password.as_ref().map(|p| p.expose());
                    if c.password.as_ref().map(|p| p.expose()) != old {
                        change = Change::Changed;
                    }
                }
            }
            if matches!(change, Change::Added | Change::Changed) {
                let settings = settings.expect("an added or changed link is in the new config");
                match Credentials::load(settings, &new.path, &self.secrets) {
                    Ok(c) => {
                        link_credentials.insert(name.clone(), Arc::new(c));
                    }
                    Err(e) => {
                        report
                            .errors
                            .push(format!("link {name}: {e}; left as it was"));
                        continue;
                    }
                }
            }
            link_changes.push((name.clone(), change));
        }
        let mut server_credentials = BTreeMap::new();
        let mut server_changes = Vec::new();
        for (name, change) in &plan.servers {
            if matches!(change, Change::Added | Change::Changed) {
                let profile = new.servers.iter().find(|s| &s.name == name);
                let profile = profile.expect("an added or changed server is in the new config");
                match Credentials::load_auth(&profile.auth, &new.path, &self.secrets) {
                    Ok(c) => {
                        server_credentials.insert(name.clone(), Arc::new(c));
                    }
                    Err(e) => {
                        report
                            .errors
                            .push(format!("server {name}: {e}; left as it was"));
                        continue;
                    }
                }
            }
            server_changes.push((name.clone(), *change));
        }
        // Stop what goes or changes, side by side, and wait for each: a
        // changed one's tun and port are free again before it restarts.
        let stops = |changes: &[(String, Change)]| -> Vec<String> {
            changes
                .iter()
                .filter(|(_, c)| matches!(c, Change::Removed | Change::Changed))
                .map(|(n, _)| n.clone())
                .collect()
        };
        let stopping_links: Vec<_> = stops(&link_changes)
            .into_iter()
            .filter_map(|n| self.links.remove(&n).map(|r| (n, r)))
            .collect();
        let stopping_servers: Vec<_> = stops(&server_changes)
            .into_iter()
            .filter_map(|n| self.servers.remove(&n).map(|r| (n, r)))
            .collect();
        for (name, r) in &stopping_links {
            self.registry.stopping(name, EndReason::Reconfigured);
            r.stop();
        }
        for (name, r) in &stopping_servers {
            self.registry.stopping(name, EndReason::Reconfigured);
            r.stop();
        }
        for (name, r) in stopping_links {
            r.finished(&format!("link {name}")).await;
        }
        for (name, r) in stopping_servers {
            r.finished(&format!("server {name}")).await;
        }
        // Then start what comes or changed.
        for (name, change) in server_changes {
            match change {
                Change::Removed => self.registry.remove_profile(&name),
                Change::Added | Change::Changed => {
                    let profile = new.servers.iter().find(|s| s.name == name).cloned();
                    let profile = profile.expect("in the new config");
                    crate::servers::log_server(&profile);
                    let credentials = server_credentials.remove(&name).unwrap_or_default();
                    if let Err(e) = self.start_server(profile, credentials, None, true).await {
                        report
                            .errors
                            .push(format!("server {name}: {e:#}; retried with a backoff"));
                    }
                }
                Change::Unchanged => {
                    report.unchanged += 1;
                    continue;
                }
            }
            report.done.push(format!("server.{name} {change}"));
        }
        for (name, change) in link_changes {
            match change {
                Change::Removed => self.registry.remove_profile(&name),
                Change::Added | Change::Changed => {
                    let settings = new.links.iter().find(|l| l.name == name).cloned();
                    let settings = settings.expect("in the new config");
                    log_link(&settings);
                    let credentials = link_credentials.remove(&name).unwrap_or_default();
                    self.start_link(Arc::new(settings), credentials, None);
                }
                Change::Unchanged => {
                    report.unchanged += 1;
                    continue;
                }
            }
            report.done.push(format!("link.{name} {change}"));
        }
        self.publish_links();
        report.policy = self.reload_policy(&new);
        // What was not applied stays as it was in the config in force, so
        // that the next reload sees it as a change again.
        let mut kept = new;
        if ipsec_kept {
            kept.ipsec = self.config.ipsec.clone();
        }
        for n in &report.not_applied {
            match n {
                NotApplied::DaemonKey(_) => {
                    let old = &self.config.daemon;
                    kept.daemon.control_socket = old.control_socket.clone();
                    kept.daemon.log_file = old.log_file.clone();
                    kept.daemon.audit_file = old.audit_file.clone();
                    kept.daemon.audit_syslog = old.audit_syslog;
                    kept.daemon.metrics_listen = old.metrics_listen;
                }
                NotApplied::IpsecProfile(section) => {
                    keep_section(&mut kept, &self.config, section);
                }
                NotApplied::Ipsec => {}
            }
        }
        for e in &report.errors {
            if let Some(name) = e.strip_prefix("link ").and_then(|r| r.split(':').next()) {
                keep_section(&mut kept, &self.config, &format!("link.{name}"));
            }
        }
        self.config = kept;
        let message = report.to_string();
        info!("{message}");
        if !report.not_applied.is_empty() {
            warn!("reload: not applied until a restart: {}", {
                let list: Vec<String> = report.not_applied.iter().map(|n| n.to_string()).collect();
                list.join(", ")
            });
        }
        Response::Done { message }
    }

    /// `[policy]` compiled from the new config and its files and swapped
    /// in; what happened, for the report.
    fn reload_policy(&mut self, new: &Config) -> Option<String> {
        match (&mut self.policy, &new.policy) {
            (None, None) => None,
            (Some(running), Some(settings)) => Some(match running.reload(settings) {
                Ok(()) => "re-applied".to_string(),
                Err(e) => {
                    error!("reload: policy: {e:#}; the rules in force stay");
                    format!("not re-applied ({e:#}); the rules in force stay")
                }
            }),
            (None, Some(settings)) => Some(match crate::policy::start(settings, &self.holes) {
                Ok(p) => {
                    self.policy = Some(p);
                    "applied".to_string()
                }
                Err(e) => {
                    error!("reload: policy: {e:#}");
                    format!("not applied ({e:#})")
                }
            }),
            (Some(_), None) => {
                if let Some(p) = self.policy.take() {
                    p.stop();
                }
                Some("removed".to_string())
            }
        }
    }
}

/// In `kept`, puts back `section` (`link.NAME` or `server.NAME`) as the
/// config in force `current` has it (or leaves it out if it has none).
fn keep_section(kept: &mut Config, current: &Config, section: &str) {
    if let Some(name) = section.strip_prefix("link.") {
        kept.links.retain(|l| l.name != name);
        kept.links
            .extend(current.links.iter().filter(|l| l.name == name).cloned());
        kept.links.sort_by(|a, b| a.name.cmp(&b.name));
    } else if let Some(name) = section.strip_prefix("server.") {
        kept.servers.retain(|s| s.name != name);
        kept.servers
            .extend(current.servers.iter().filter(|s| s.name == name).cloned());
        kept.servers.sort_by(|a, b| a.name.cmp(&b.name));
    }
}

/// What a server's supervisor needs to start it again.
struct ServerDeps {
    config_path: PathBuf,
    registry: Registry,
    netconf: Netconf,
    guard: AuthGuard,
    holes: crate::policy::Holes,
}

/// Runs a server: started now (the outcome goes to `first`), and again
/// after a backoff whenever its task ends without `stop` (a panic).
/// An L2TP/IPsec server's conn handle is used once: such a server is not
/// started again (its IPsec side would be missing); it says so.
async fn supervise_server(
    profile: ServerProfile,
    credentials: Arc<Credentials>,
    mut lower: Option<crate::ipsec::bridge::Lower>,
    deps: ServerDeps,
    mut stop: watch::Receiver<bool>,
    first: oneshot::Sender<anyhow::Result<()>>,
    retry: bool,
) {
    let name = profile.name.clone();
    let bound = profile.l2tp.ipsec.is_some();
    let mut first = Some(first);
    let mut backoff = SERVER_RESTART_MIN;
    loop {
        let ctx = crate::servers::ServerCtx {
            config_path: &deps.config_path,
            registry: &deps.registry,
            netconf: &deps.netconf,
            guard: &deps.guard,
            shutdown: &stop,
            holes: &deps.holes,
            lower: lower.take(),
        };
        let started = Instant::now();
        match crate::servers::start_server(profile.clone(), credentials.clone(), ctx).await {
            Ok(task) => {
                if let Some(tx) = first.take() {
                    let _ = tx.send(Ok(()));
                }
                let ended = task.await;
                if *stop.borrow() {
                    return;
                }
                match ended {
                    Err(e) if e.is_panic() => error!("server {name}: failed (panic)"),
                    _ => error!("server {name}: stopped by itself"),
                }
                if started.elapsed() >= STABLE_UP {
                    backoff = SERVER_RESTART_MIN;
                }
            }
            Err(e) => {
                let give_up = !retry && first.is_some();
                if let Some(tx) = first.take() {
                    let _ = tx.send(Err(e));
                    if give_up {
                        return;
                    }
                } else {
                    error!("server {name}: cannot start again: {e:#}");
                }
            }
        }
        if bound {
            error!("server {name}: its IPsec conn's handle is gone with it: restart the daemon to serve L2TP/IPsec again");
            deps.registry.update_profile(&name, |s| s.phase = "failed");
            return;
        }
        warn!("server {name}: starting again in {}s", backoff.as_secs());
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        backoff = (backoff * 2).min(SERVER_RESTART_MAX);
    }
}

fn log_link(s: &LinkSettings) {
    let routes: Vec<String> = s.routes.iter().map(|r| r.to_string()).collect();
    let addr =
        |a: Option<Ipv4Addr>| a.map_or_else(|| "(peer's choice)".to_string(), |a| a.to_string());
    match s.mode {
        Mode::Dial => info!(
            "link {}: dial {:?} tun {} local {} remote {} routes [{}] persist {}",
            s.name,
            s.device.as_deref().unwrap_or_default(),
            s.tun,
            addr(s.local),
            addr(s.remote),
            routes.join(", "),
            s.persist
        ),
        Mode::Direct => info!(
            "link {}: direct for users [{}] tun {} local {} remote {} routes [{}]",
            s.name,
            s.allow_users.join(", "),
            s.tun,
            addr(s.local),
            addr(s.remote),
            routes.join(", ")
        ),
        Mode::Pptp => info!(
            "link {}: pptp to {} as {} tun {} routes [{}]{} persist {}",
            s.name,
            s.dial_peer(),
            s.auth.user.as_deref().unwrap_or("-"),
            s.tun,
            routes.join(", "),
            if s.default_route {
                " default route"
            } else {
                ""
            },
            s.persist
        ),
        Mode::L2tp => info!(
            "link {}: l2tp to LNS {}{} as {} tun {} routes [{}]{} persist {} redial {}-{}s max redials {}",
            s.name,
            s.dial_peer(),
            s.l2tp
                .ipsec
                .as_ref()
                .map(|c| format!(" through ipsec {c}"))
                .unwrap_or_default(),
            s.auth.user.as_deref().unwrap_or("-"),
            s.tun,
            routes.join(", "),
            if s.default_route {
                " default route"
            } else {
                ""
            },
            s.persist,
            s.redial_min.as_secs(),
            s.redial_max.as_secs(),
            if s.max_redials == 0 {
                "unlimited".to_string()
            } else {
                s.max_redials.to_string()
            }
        ),
    }
    for w in s.weak_settings() {
        warn!("link {}: weak setting: {w}", s.name);
    }
}

/// Bind the control socket: parent directory created 0755, a stale socket
/// removed (one that nobody answers on), the socket made 0666 since every
/// request is checked by the caller's uid.
pub fn bind_control_socket(path: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("cannot chmod {}", dir.display()))?;
        }
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            bail!(
                "{} exists and is not a socket; not removing it",
                path.display()
            );
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!("another daemon is listening on {}", path.display());
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove stale socket {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("cannot bind {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
        .with_context(|| format!("cannot chmod {}", path.display()))?;
    Ok(listener)
}

/// Answers the control socket until the task is dropped: one task per
/// connection, each request checked by the caller's uid; the summaries of
/// rate-limited warnings written as their windows end.
pub async fn serve_control(listener: UnixListener, control: ControlContext) {
    let warnings = control.warnings.clone();
    tokio::select! {
        () = accept_connections(listener, control) => {}
        () = warnings.write_summaries() => {}
    }
}

/// Accepts connections, each counted against its uid's caps (one over
/// them is closed at once) and handled by a task of its own; accept
/// failures (out of fds) back off.
async fn accept_connections(listener: UnixListener, control: ControlContext) {
    let mut backoff = AcceptBackoff::default();
    loop {
        let conn = match listener.accept().await {
            Ok((conn, _)) => conn,
            Err(e) => {
                // The connection stays queued: without a wait, accept
                // would fail again at once, as long as the fds are gone.
                let wait = backoff.failed();
                control.warn(
                    ControlWarning::Accept,
                    None,
                    format_args!("{e}; next try in {} ms", wait.as_millis()),
                );
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        backoff.succeeded();
        let cred = match conn.peer_cred() {
            Ok(cred) => cred,
            Err(e) => {
                control.warn(ControlWarning::Io, None, format_args!("credentials: {e}"));
                continue;
            }
        };
        let (uid, pid) = (cred.uid(), cred.pid().unwrap_or(0));
        let permit = match control.connections.admit(uid) {
            Ok(permit) => permit,
            Err(over) => {
                control.warn(
                    ControlWarning::OverCap,
                    Some(uid),
                    format_args!("pid {pid}: {over}; closed"),
                );
                // Why, in one write that cannot wait (the socket's buffer
                // is empty), then closed without reading the request.
                let why = Response::Refused {
                    message: over.to_string(),
                };
                let _ = rustix::io::write(&conn, why.to_line().as_bytes());
                continue;
            }
        };
        let control = control.clone();
        tokio::spawn(async move { handle_connection(conn, &control, uid, pid, permit).await });
    }
}

/// One connection of uid `uid`: its request read, answered and closed;
/// whatever went wrong is a rate-limited warning naming the uid. `permit`
/// counts it until it ends (or its `direct` stream is queued).
async fn handle_connection(
    mut conn: UnixStream,
    control: &ControlContext,
    uid: u32,
    pid: i32,
    mut permit: ConnectionPermit,
) {
    let warn = |warning, detail: std::fmt::Arguments| control.warn(warning, Some(uid), detail);
    let received = match tokio::time::timeout(REQUEST_TIMEOUT, control::receive(&conn)).await {
        Err(_) => return warn(ControlWarning::Timeout, format_args!("pid {pid}")),
        Ok(Err(e)) => return warn(ControlWarning::Io, format_args!("pid {pid}: reading: {e}")),
        Ok(Ok(None)) => return warn(ControlWarning::NoRequest, format_args!("pid {pid}")),
        Ok(Ok(Some(received))) => received,
    };
    let response = match received.request {
        Err(message) => {
            // The client's own bytes may be quoted in it: escaped, so that
            // they cannot forge log lines.
            warn(
                ControlWarning::Malformed,
                format_args!("pid {pid}: {}", message.escape_debug()),
            );
            Response::Error { message }
        }
        // Streams answer on the connection themselves while it stays
        // open; root's only (others are refused in `dispatch`), and not
        // counted against the cap, as a queued `direct` stream is not.
        Ok(Request::Capture { link, count }) if uid == 0 => {
            permit.release();
            let tap = control.registry.tap(&link);
            return crate::capture::serve(conn, link, tap, count, received.fds, pid).await;
        }
        Ok(Request::Log { follow, lines }) if uid == 0 => {
            permit.release();
            return crate::live_log::serve(conn, follow, lines).await;
        }
        Ok(request) => dispatch(control, uid, pid, request, received.fds, &mut permit).await,
    };
    // A client that does not read a long answer must not hold the
    // connection for ever either.
    let answered = tokio::time::timeout(REQUEST_TIMEOUT, async {
        conn.write_all(response.to_line().as_bytes()).await?;
        conn.shutdown().await
    });
    match answered.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warn(
            ControlWarning::Io,
            format_args!("pid {pid}: answering: {e}"),
        ),
        Err(_) => warn(
            ControlWarning::Io,
            format_args!(
                "pid {pid}: answer not taken within {} s",
                REQUEST_TIMEOUT.as_secs()
            ),
        ),
    }
}

/// Carry out one request from uid `uid`; a `direct` stream, once queued to
/// its profile, releases the connection's `permit`.
async fn dispatch(
    control: &ControlContext,
    uid: u32,
    pid: i32,
    request: Request,
    fds: Vec<OwnedFd>,
    permit: &mut ConnectionPermit,
) -> Response {
    let refused = |message: String| Response::Refused { message };
    // Refused for who the caller is: answered, and logged by uid.
    let not_allowed = |message: String| {
        control.warn(
            ControlWarning::Refused,
            Some(uid),
            format_args!("pid {pid}: {message}"),
        );
        refused(message)
    };
    let registry = &control.registry;
    match request {
        Request::Status {} => registry.status().await,
        Request::Dial { link } | Request::Hangup { link } if uid != 0 => not_allowed(format!(
            "uid {uid} may not dial or hang up {link:?}: root only"
        )),
        Request::Kick { session } if uid != 0 => not_allowed(format!(
            "uid {uid} may not kick session {session}: root only"
        )),
        Request::Reload {} if uid != 0 => {
            not_allowed(format!("uid {uid} may not reload the config: root only"))
        }
        Request::Reload {} => match &control.reload {
            None => refused("reload is not offered here".into()),
            Some(tx) => {
                let (reply, answer) = oneshot::channel();
                if tx.send(reply).await.is_err() {
                    return refused("the daemon is stopping".into());
                }
                answer
                    .await
                    .unwrap_or_else(|_| refused("the daemon is stopping".into()))
            }
        },
        // Root's are streams, served by `handle_connection`.
        Request::Capture { link, .. } => {
            not_allowed(format!("uid {uid} may not capture {link:?}: root only"))
        }
        Request::Log { .. } => not_allowed(format!("uid {uid} may not read the log: root only")),
        Request::Dial { link } => match registry.profile(&link) {
            // Not a link: an IPsec conn, perhaps (`ipsec up`).
            None => match registry.profile(crate::ipsec::driver::PROFILE) {
                None => refused(format!("no link named {link:?}")),
                Some((_, driver)) => ask(&driver, |reply| Command::ConnUp(link, reply)).await,
            },
            Some((ProfileKind::Site(Mode::Direct), _)) => {
                refused(format!("{link} is a direct link: the peer dials it"))
            }
            Some((_, commands)) => ask(&commands, Command::Dial).await,
        },
        Request::Hangup { link } => match registry.profile(&link) {
            None => match registry.profile(crate::ipsec::driver::PROFILE) {
                None => refused(format!("no link named {link:?}")),
                Some((_, driver)) => ask(&driver, |reply| Command::ConnDown(link, reply)).await,
            },
            Some((_, commands)) => ask(&commands, Command::Hangup).await,
        },
        Request::Kick { session } => {
            let id = SessionId(session);
            match registry
                .session_profile(id)
                .and_then(|p| registry.profile(&p))
            {
                None => refused(format!("no session {session}")),
                Some((_, commands)) => ask(&commands, |reply| Command::Kick(id, reply)).await,
            }
        }
        Request::Direct {
            profile,
            ssh_client,
            ssh_client_port,
        } => {
            let verdict = check_direct(&control.links(), uid, &profile, fds.len());
            if let Err(why) = verdict {
                control.warn(
                    ControlWarning::Refused,
                    Some(uid),
                    format_args!("pid {pid}: direct {profile:?}: {why}"),
                );
                return refused(why);
            }
            let Some((_, commands)) = registry.profile(&profile) else {
                return refused(format!("no profile named {profile:?}"));
            };
            let mut fds = fds.into_iter();
            let (Some(from_peer), Some(to_peer)) = (fds.next(), fds.next()) else {
                return Response::Error {
                    message: "direct needs stdin and stdout".into(),
                };
            };
            info!("{profile}: direct stream from uid {uid} pid {pid}");
            let (tx, rx) = oneshot::channel();
            let attach = Attach {
                from_peer,
                to_peer,
                uid,
                pid,
                ssh_client,
                ssh_client_port,
                reply: tx,
            };
            if commands.send(Command::Attach(attach)).await.is_err() {
                return refused(format!("{profile}: the daemon is stopping"));
            }
            // The profile runs one stream at a time and queues a few: the
            // stream is bounded by the config now, and may run for days.
            permit.release();
            rx.await
                .unwrap_or_else(|_| refused(format!("{profile}: the daemon is stopping")))
        }
    }
}

/// Whether uid `uid` may hand a stream to `profile`: the profile exists,
/// is `mode = "direct"`, lists the uid's user in `allow_users`, and the
/// request carried exactly stdin and stdout.
fn check_direct(
    links: &BTreeMap<String, Arc<LinkSettings>>,
    uid: u32,
    profile: &str,
    nfds: usize,
) -> Result<(), String> {
    let Some(settings) = links.get(profile) else {
        return Err(format!("no profile named {profile:?}"));
    };
    check_direct_settings(settings, uid, nfds)
}

/// The settings part of [`check_direct`].
pub fn check_direct_settings(settings: &LinkSettings, uid: u32, nfds: usize) -> Result<(), String> {
    let profile = &settings.name;
    if settings.mode != Mode::Direct {
        return Err(format!("profile {profile} is not mode = \"direct\""));
    }
    if !users::uid_allowed(uid, &settings.allow_users) {
        return Err(format!(
            "uid {uid} is not in allow_users of profile {profile}"
        ));
    }
    if nfds != 2 {
        return Err(format!("expected stdin and stdout (2 fds), got {nfds}"));
    }
    Ok(())
}

async fn ask(
    commands: &mpsc::Sender<Command>,
    make: impl FnOnce(oneshot::Sender<Response>) -> Command,
) -> Response {
    let (tx, rx) = oneshot::channel();
    if commands.send(make(tx)).await.is_err() {
        return Response::Refused {
            message: "the daemon is stopping".into(),
        };
    }
    rx.await.unwrap_or_else(|_| Response::Refused {
        message: "the daemon is stopping".into(),
    })
}

struct Supervisor {
    settings: Arc<LinkSettings>,
    /// L2TP/IPsec: the conn under the link, which it drives.
    lower: Option<crate::ipsec::bridge::Lower>,
    credentials: Arc<Credentials>,
    guard: AuthGuard,
    registry: Registry,
    netconf: Netconf,
    commands: mpsc::Receiver<Command>,
    shutdown: watch::Receiver<bool>,
}

/// The wait before the next dial and the backoff after it: `current`,
/// doubled each time up to `max`; back to `min` once a session kept IPCP
/// up for [`STABLE_UP`].
pub fn redial_delay(
    current: Duration,
    up_for: Option<Duration>,
    min: Duration,
    max: Duration,
) -> (Duration, Duration) {
    let delay = if up_for.is_some_and(|d| d >= STABLE_UP) {
        min
    } else {
        current.clamp(min, max)
    };
    (delay, (delay * 2).min(max))
}

/// What a supervisor does while no session runs.
enum Idle {
    /// Go on (dial now).
    Proceed,
    /// A direct stream arrived.
    Attach(Attach),
    /// Stop dialling until `dial`.
    Hangup,
    /// The daemon stops.
    Shutdown,
}

impl Supervisor {
    fn set_status(&self, f: impl FnOnce(&mut ProfileState)) {
        self.registry.update_profile(&self.settings.name, f);
    }

    async fn run(self) {
        match self.settings.mode {
            Mode::Dial | Mode::Pptp | Mode::L2tp => self.run_dial().await,
            Mode::Direct => self.run_direct().await,
        }
    }

    /// Wait up to `delay` (forever if `None`) for a command or shutdown.
    async fn idle(&mut self, delay: Option<Duration>) -> Idle {
        let name = self.settings.name.clone();
        let sleep = async {
            match delay {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(sleep);
        loop {
            if *self.shutdown.borrow() {
                return Idle::Shutdown;
            }
            tokio::select! {
                () = &mut sleep => return Idle::Proceed,
                _ = self.shutdown.changed() => {
                    if *self.shutdown.borrow() {
                        return Idle::Shutdown;
                    }
                }
                cmd = self.commands.recv() => match cmd {
                    None => return Idle::Shutdown,
                    // No session: nothing to show but the profile's state.
                    Some(Command::Snapshot(reply)) => {
                        let _ = reply.send(Vec::new());
                    }
                    // Only servers and the IPsec driver answer them; the
                    // asker sees no answer.
                    Some(
                        Command::ServerStatus(_)
                        | Command::IpsecStatus(_)
                        | Command::ConnUp(..)
                        | Command::ConnDown(..),
                    ) => {}
                    Some(Command::Kick(id, reply)) => {
                        let _ = reply.send(Response::Refused { message: format!("no session {id} on {name}") });
                    }
                    Some(Command::Dial(reply)) => {
                        if self.settings.mode != Mode::Direct {
                            let _ = reply.send(Response::Done { message: format!("{name}: dialling") });
                            return Idle::Proceed;
                        }
                        let _ = reply.send(Response::Refused { message: format!("{name} is a direct link") });
                    }
                    Some(Command::Hangup(reply)) => {
                        let _ = reply.send(Response::Done { message: format!("{name}: not connected; redial stopped") });
                        if self.settings.mode != Mode::Direct {
                            return Idle::Hangup;
                        }
                    }
                    Some(Command::Attach(a)) => {
                        if self.settings.mode == Mode::Direct {
                            return Idle::Attach(a);
                        }
                        let _ = a.reply.send(Response::Refused { message: format!("profile {name} is not mode = \"direct\"") });
                    }
                },
            }
        }
    }

    async fn run_dial(mut self) {
        let name = self.settings.name.clone();
        let mut backoff = self.settings.redial_min;
        let mut sessions = 0u64;
        // Redials since the last session that brought IPCP up
        // (`max_redials`).
        let mut redials = 0u32;
        let mut wanted = true;
        loop {
            if !wanted {
                self.set_status(|s| {
                    s.phase = "stopped";
                    s.next_redial = None;
                });
                match self.idle(None).await {
                    Idle::Proceed => {
                        wanted = true;
                        redials = 0;
                        backoff = self.settings.redial_min;
                    }
                    Idle::Shutdown => return,
                    Idle::Hangup | Idle::Attach(_) => continue,
                }
            }
            if *self.shutdown.borrow() {
                return;
            }
            // Authentication failures against this peer hold off the
            // next dial (the limiter is keyed by the dial target).
            let source = AuthSource::Peer(self.settings.dial_peer());
            if let Some(hold) = self.guard.hold_for(Instant::now(), &source) {
                warn!(
                    "{name}: authentication failures with {}: next dial held off {}s",
                    hold.key,
                    hold.secs()
                );
                self.set_status(|s| {
                    s.phase = "waiting";
                    s.next_redial = Some(Instant::now() + hold.wait);
                });
                match self.idle(Some(hold.wait)).await {
                    Idle::Proceed | Idle::Attach(_) => {}
                    Idle::Hangup => {
                        wanted = false;
                        continue;
                    }
                    Idle::Shutdown => return,
                }
            }
            sessions += 1;
            self.set_status(|s| {
                s.phase = "connecting";
                s.next_redial = None;
                s.redials = sessions - 1;
            });
            let end = self.dial_once().await;
            let why = self.registry.end_reason(&name, &end.reason);
            info!("{name}: session ended: {why}");
            self.set_status(|s| s.last_down = Some(why.to_string()));
            if end.reason == EndReason::Shutdown || *self.shutdown.borrow() {
                return;
            }
            if end.reason == EndReason::Hangup {
                wanted = false;
                continue;
            }
            if !self.settings.persist {
                info!("{name}: persist is off: not redialling");
                wanted = false;
                continue;
            }
            if end.up_for.is_some() {
                redials = 0;
            }
            let max = self.settings.max_redials;
            if max > 0 && redials >= max {
                warn!("{name}: {redials} redials without a session: max_redials {max} reached, not redialling");
                wanted = false;
                continue;
            }
            redials += 1;
            let (delay, next) = redial_delay(
                backoff,
                end.up_for,
                self.settings.redial_min,
                self.settings.redial_max,
            );
            backoff = next;
            info!("{name}: redial in {}s", delay.as_secs());
            let at = Instant::now() + delay;
            self.set_status(|s| {
                s.phase = "waiting";
                s.next_redial = Some(at);
            });
            match self.idle(Some(delay)).await {
                Idle::Proceed | Idle::Attach(_) => {}
                Idle::Hangup => wanted = false,
                Idle::Shutdown => return,
            }
        }
    }

    async fn dial_once(&mut self) -> SessionEnd {
        if let (Mode::L2tp, Some(lns)) = (self.settings.mode, self.settings.lns) {
            let ctx = SessionCtx {
                settings: &self.settings,
                credentials: &self.credentials,
                guard: &self.guard,
                source: AuthSource::Peer(lns.to_string()),
                outer_ip: Some(lns),
                registry: &self.registry,
                netconf: &self.netconf,
                commands: &mut self.commands,
                shutdown: self.shutdown.clone(),
                tty: "l2tp",
            };
            let lower = self.lower.as_mut();
            let end = crate::transport::l2tp::client::run_session(ctx, lns, lower).await;
            if let Some(lower) = &self.lower {
                // L2TP/IPsec redials as one: whatever ended the session,
                // the next dial starts again from IKE (no IKE SA is left
                // with nothing above it).
                lower.down();
            }
            return end;
        }
        if let (Mode::Pptp, Some(server)) = (self.settings.mode, self.settings.server) {
            let ctx = SessionCtx {
                settings: &self.settings,
                credentials: &self.credentials,
                guard: &self.guard,
                source: AuthSource::Peer(server.to_string()),
                outer_ip: Some(server),
                registry: &self.registry,
                netconf: &self.netconf,
                commands: &mut self.commands,
                shutdown: self.shutdown.clone(),
                tty: "pptp",
            };
            return crate::transport::pptp::client::run_session(ctx, server).await;
        }
        let name = self.settings.name.clone();
        let device = self.settings.device.clone().unwrap_or_default();
        info!("{name}: dialling: {device}");
        // The device's stdin and stdout are one end of a socketpair, as
        // user-ppp gives its `!command` devices: a Unix stream socket moves
        // bytes for about a third of the CPU a pipe costs (no page
        // allocated and charged per 4 KiB written), and that is on the
        // data path of every byte.
        let (ours, theirs) = match device_socketpair() {
            Ok(pair) => pair,
            Err(e) => {
                warn!("{name}: cannot create the device socketpair: {e}");
                return SessionEnd::new(EndReason::SetupFailed(format!(
                    "cannot create the device socketpair: {e}"
                )));
            }
        };
        let theirs_out = match theirs.try_clone() {
            Ok(fd) => fd,
            Err(e) => {
                warn!("{name}: cannot duplicate the device socket: {e}");
                return SessionEnd::new(EndReason::SetupFailed(format!(
                    "cannot duplicate the device socket: {e}"
                )));
            }
        };
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(&device)
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::from(theirs_out))
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group, so that ending the session reaches
            // ssh even when the shell did not exec it.
            .process_group(0);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                warn!("{name}: cannot run device: {e}");
                return SessionEnd::new(EndReason::SetupFailed(format!("cannot run device: {e}")));
            }
        };
        // Our copies of the child's ends must go, or the child's exit
        // would not end the stream.
        drop(cmd);
        let (reader, writer) = ours.into_split();
        if let Some(stderr) = child.stderr.take() {
            let name = name.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    info!("{name}: device: {line}");
                }
            });
        }
        let stream = Stream {
            reader: Box::new(reader),
            writer: Box::new(writer),
            child: Some(child),
        };
        let ctx = SessionCtx {
            settings: &self.settings,
            credentials: &self.credentials,
            guard: &self.guard,
            source: AuthSource::Peer(self.settings.dial_peer()),
            outer_ip: None,
            registry: &self.registry,
            netconf: &self.netconf,
            commands: &mut self.commands,
            shutdown: self.shutdown.clone(),
            tty: "ssh",
        };
        stream::run_session(ctx, stream).await
    }

    async fn run_direct(mut self) {
        let name = self.settings.name.clone();
        loop {
            self.set_status(|s| s.phase = "idle");
            let attach = match self.idle(None).await {
                Idle::Attach(a) => a,
                Idle::Shutdown => return,
                Idle::Proceed | Idle::Hangup => continue,
            };
            // Failures are counted against the ssh client's address when
            // the caller reported one (several sites may share one ssh
            // account) and against its uid: the address is the caller's
            // claim, which it may change at every attempt; the uid is not.
            // Either one held off refuses the stream, naming which.
            let source = AuthSource::Direct {
                ssh_client: attach.ssh_client.clone(),
                ssh_port: attach.ssh_client_port,
                uid: attach.uid,
            };
            if let Some(hold) = self.guard.hold_for(Instant::now(), &source) {
                let why = format!(
                    "{name}: too many authentication failures from {}: refused for {}s",
                    hold.key,
                    hold.secs()
                );
                warn!("{why}");
                let _ = attach.reply.send(Response::Refused { message: why });
                continue;
            }
            self.set_status(|s| {
                s.phase = "connecting";
                s.peer = format!("direct via uid {} pid {}", attach.uid, attach.pid);
            });
            let end = match Stream::from_fds(attach.from_peer, attach.to_peer) {
                Err(e) => {
                    warn!("{name}: direct stream unusable: {e}");
                    SessionEnd::new(EndReason::SetupFailed(format!("unusable stream: {e}")))
                }
                Ok(stream) => {
                    let ctx = SessionCtx {
                        settings: &self.settings,
                        credentials: &self.credentials,
                        guard: &self.guard,
                        source: source.clone(),
                        outer_ip: attach
                            .ssh_client
                            .as_deref()
                            .and_then(|a| a.parse::<Ipv4Addr>().ok()),
                        registry: &self.registry,
                        netconf: &self.netconf,
                        commands: &mut self.commands,
                        shutdown: self.shutdown.clone(),
                        tty: "direct",
                    };
                    stream::run_session(ctx, stream).await
                }
            };
            let why = self.registry.end_reason(&name, &end.reason);
            info!("{name}: session ended: {why}");
            self.set_status(|s| s.last_down = Some(why.to_string()));
            let _ = attach.reply.send(Response::Ended {
                reason: why.to_string(),
                exit_code: why.exit_code(),
            });
            if end.reason == EndReason::Shutdown || *self.shutdown.borrow() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn settings(text: &str) -> LinkSettings {
        Config::parse(Path::new("t.toml"), text)
            .unwrap()
            .links
            .remove(0)
    }

    /// The device gets one socket as stdin and stdout: what we write
    /// comes back through `cat`, and its exit reads as the end of the
    /// stream.
    #[test]
    fn device_socketpair_carries_both_directions_to_a_child() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (ours, theirs) = device_socketpair().unwrap();
            let theirs_out = theirs.try_clone().unwrap();
            let mut cmd = tokio::process::Command::new("sh");
            cmd.arg("-c")
                .arg("[ -S /dev/stdin ] && [ -S /dev/stdout ] && head -c 5")
                .stdin(Stdio::from(theirs))
                .stdout(Stdio::from(theirs_out));
            let mut child = cmd.spawn().unwrap();
            drop(cmd);
            let (mut reader, mut writer) = ours.into_split();
            writer.write_all(b"hello").await.unwrap();
            let mut got = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut got)
                .await
                .unwrap();
            assert_eq!(got, b"hello");
            assert!(child.wait().await.unwrap().success());
        });
    }

    #[test]
    fn redial_backoff_doubles_and_resets_after_a_stable_link() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(30));
        let mut backoff = min;
        let mut delays = Vec::new();
        for _ in 0..7 {
            let (d, next) = redial_delay(backoff, Some(Duration::from_secs(5)), min, max);
            delays.push(d.as_secs());
            backoff = next;
        }
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
        let (d, next) = redial_delay(backoff, Some(STABLE_UP), min, max);
        assert_eq!((d, next), (min, 2 * min));
        let (d, _) = redial_delay(backoff, None, min, max);
        assert_eq!(d, max);
    }

    #[test]
    fn direct_checks() {
        let direct = settings("[link.home]\nmode = \"direct\"\nallow_users = [\"root\"]\n");
        assert_eq!(check_direct_settings(&direct, 0, 2), Ok(()));
        assert_eq!(
            check_direct_settings(&direct, 65534, 2),
            Err("uid 65534 is not in allow_users of profile home".into())
        );
        assert!(check_direct_settings(&direct, 0, 1)
            .unwrap_err()
            .contains("2 fds"));
        let dial =
            settings("[link.labs]\nmode = \"dial\"\ndevice = \"cat\"\nallow_users = [\"root\"]\n");
        assert_eq!(
            check_direct_settings(&dial, 0, 2),
            Err("profile labs is not mode = \"direct\"".into())
        );
    }

    #[tokio::test]
    async fn stale_socket_is_replaced_live_one_is_not() {
        let dir = std::env::temp_dir().join(format!("tsunagi-bind-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub/s.sock");
        let l = bind_control_socket(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666);
        let dmode = std::fs::metadata(dir.join("sub"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o755);
        let e = bind_control_socket(&path).unwrap_err().to_string();
        assert!(e.contains("another daemon"), "{e}");
        drop(l);
        // The socket file stays behind after the listener is gone: stale.
        bind_control_socket(&path).unwrap();
        std::fs::write(dir.join("file"), b"x").unwrap();
        assert!(bind_control_socket(&dir.join("file"))
            .unwrap_err()
            .to_string()
            .contains("not a socket"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
