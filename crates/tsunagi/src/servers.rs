//! Starting the server profiles (`[server.NAME]`): for each, its shared
//! tun, its address pool, its port (PPTP: TCP 1723 and GRE; L2TP: UDP
//! 1701), its holes in
//! tsunagi's nftables table, and the server transport's task
//! ([`crate::transport::datagram::Server`]).
//!
//! A server that cannot start (the port is taken, no raw socket, a bad
//! pool) stops the daemon from starting, with the reason: an operator who
//! configured a VPN server wants to know at once, not from the first
//! client that cannot connect.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};
use tsunagi_host::Tun;

use crate::auth::{AuthGuard, Credentials};
use crate::config::{ServerProfile, ServerProtocol};
use crate::netconf::Netconf;
use crate::policy::{Hole, Holes};
use crate::registry::{ProfileKind, ProfileState, Registry};
use crate::transport::datagram::{Server, ServerSettings};
use crate::transport::l2tp::server::L2tpPort;
use crate::transport::pptp::server::{PptpLimits, PptpPort};

/// What a server needs from the daemon.
pub struct ServerCtx<'a> {
    /// The config file (a password written there makes it a secrets file).
    pub config_path: &'a Path,
    /// Every profile and session.
    pub registry: &'a Registry,
    /// Address and route changes, hooks.
    pub netconf: &'a Netconf,
    /// The daemon-wide authentication failure limiter.
    pub guard: &'a AuthGuard,
    /// Becomes true when the daemon stops.
    pub shutdown: &'a watch::Receiver<bool>,
    /// The servers' holes in tsunagi's nftables table.
    pub holes: &'a Holes,
    /// L2TP/IPsec: the conn whose tun the LNS's socket is bound to.
    pub lower: Option<crate::ipsec::bridge::Lower>,
}

/// Logs what `profile` will do and what is weak about it.
pub fn log_server(profile: &ServerProfile) {
    info!(
        "server {}: {} on {} tun {} localip {} remoteip {} connections {}{}",
        profile.name,
        profile.protocol.name(),
        profile
            .listen
            .map_or_else(|| "every address".to_string(), |a| a.to_string()),
        profile.tun,
        profile.localip,
        profile.remoteip,
        profile.connections,
        if profile.proxyarp { " proxyarp" } else { "" }
    );
    for w in profile.weak_settings() {
        warn!("server {}: weak setting: {w}", profile.name);
    }
}

/// Starts `profile`: its task runs until the daemon stops.
pub async fn start_server(
    profile: ServerProfile,
    credentials: Arc<Credentials>,
    ctx: ServerCtx<'_>,
) -> anyhow::Result<JoinHandle<()>> {
    let name = profile.name.clone();
    let mut lower = ctx.lower;
    let pool = profile
        .pool()
        .with_context(|| format!("server {name}: address pool"))?;
    for w in pool.warnings() {
        warn!("server {name}: {w}");
    }
    // Offload mode: TCP super-packets from the kernel (cut per session),
    // coalesced segments to it (one GSO write for a run); see
    // transport::datagram.
    let tun = match Tun::create_offload(&profile.tun) {
        Ok(tun) => {
            tun.set_gso_mtu(usize::from(profile.mru));
            if let Err(e) = tun.set_tso(true) {
                warn!("server {name}: {}: {e}", profile.tun);
            }
            tun
        }
        Err(e) => {
            warn!(
                "server {name}: tun {} in offload mode: {e}; without offload",
                profile.tun
            );
            Tun::create(&profile.tun)
                .with_context(|| format!("server {name}: cannot create tun {}", profile.tun))?
        }
    };
    let mut link = profile.link_config();
    link.auth.secrets = credentials.secrets.clone();
    let settings = ServerSettings {
        name: name.clone(),
        link,
        pool,
        tty: profile.protocol.name(),
        ip_up: profile.ip_up.clone(),
        ip_down: profile.ip_down.clone(),
        proxyarp: profile.proxyarp,
        listen: format!(
            "{}:{}",
            profile
                .listen
                .map_or_else(|| "*".to_string(), |a| a.to_string()),
            profile.protocol.port()
        ),
    };
    let (tx, rx) = mpsc::channel(8);
    enum Port {
        Pptp(Box<PptpPort>),
        L2tp(Box<L2tpPort>),
    }
    let port = match profile.protocol {
        ServerProtocol::Pptp => Port::Pptp(Box::new(
            PptpPort::bind(
                &name,
                profile.listen,
                PptpLimits::for_sessions(profile.connections),
            )
            .await
            .with_context(|| format!("server {name}"))?,
        )),
        ServerProtocol::L2tp => {
            let mut port = L2tpPort::bind(
                &name,
                profile.listen,
                profile.protocol.port(),
                &profile.l2tp,
                profile.connections,
                lower.as_ref().map(|l| l.tun.as_str()),
            )
            .with_context(|| format!("server {name}"))?;
            if let Some(gone) = lower.as_mut().and_then(|l| l.take_gone()) {
                port.set_ipsec_gone(gone);
            }
            Port::L2tp(Box::new(port))
        }
    };
    // Seed 004 had to let TCP 1723 and GRE in by hand; the server opens
    // them itself while it runs (firewall = false leaves the filter to
    // the operator). An LNS opens UDP 1701.
    let holes = match (profile.firewall, profile.protocol) {
        (false, _) => None,
        (true, ServerProtocol::Pptp) => Some(Hole::pptp(profile.listen).to_vec()),
        (true, ServerProtocol::L2tp) => Some(vec![Hole::l2tp(profile.listen)]),
    };
    if let Some(list) = &holes {
        let (set, server) = (ctx.holes.clone(), name.clone());
        let list = list.clone();
        tokio::task::spawn_blocking(move || set.open_holes(&server, &list))
            .await
            .context("the nft task failed")?
            .with_context(|| format!("server {name}: cannot open its firewall holes"))?;
    }
    let hole_set = ctx.holes.clone();
    ctx.registry.add_profile(
        &name,
        ProfileKind::Server,
        &profile.tun,
        tx,
        ProfileState {
            phase: "serving",
            peer: profile.protocol.name().to_string(),
            ..ProfileState::default()
        },
    );
    let (registry, netconf, guard) = (ctx.registry.clone(), ctx.netconf.clone(), ctx.guard.clone());
    let shutdown = ctx.shutdown.clone();
    Ok(tokio::spawn(async move {
        let counters = match port {
            Port::Pptp(port) => {
                Server::new(settings, *port, tun, registry, netconf, guard)
                    .run(rx, shutdown)
                    .await
            }
            Port::L2tp(port) => {
                Server::new(settings, *port, tun, registry, netconf, guard)
                    .run(rx, shutdown)
                    .await
            }
        };
        info!("server {name}: stopped ({counters:?})");
        if holes.is_some() {
            let server = name.clone();
            let closed = tokio::task::spawn_blocking(move || hole_set.close_holes(&server)).await;
            if let Ok(Err(e)) = closed {
                warn!("server {name}: cannot close its firewall holes: {e:#}");
            }
        }
    }))
}
