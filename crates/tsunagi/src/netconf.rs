//! Netconf: the address, route, policy-route and hook changes of each
//! session, carried out in a task of its own (DESIGN.md, "Netconf").
//!
//! A transport hands each change to its session's [`SessionNetconf`] and
//! goes on: a change never blocks, and a slow netlink answer (or a slow
//! hook) stalls neither that session's data path nor any other session.
//! Each session has one worker task, so its changes are carried out in the
//! order they were made; different sessions' workers run side by side.
//! When the session ends, [`SessionNetconf::finish`] takes back whatever is
//! still installed (addresses, routes, policy routes; ip-down runs) and
//! returns once that is done, before the transport drops the tun.
//!
//! A site link's session owns its tun: the worker sets its MTU and brings
//! it up, adds the point-to-point addresses (IPv4 from IPCP, the IPv6
//! link-local pair from IPV6CP, RFC 5072 s5), the routes to the far LAN,
//! and the link's policy routing (full tunnel, source routes). A server's
//! sessions share one tun that the transport sets up once, routed by inner
//! address: their workers only run the hooks, so a session costs no
//! netlink work and no interface.
//!
//! Failures are logged with the session's name and leave the link up.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};
use tsunagi_host::netlink::Ipv4Net;
use tsunagi_host::policy_route::{NextHop, PolicyRoutes};
use tsunagi_host::Netlink;

use crate::config::LinkSettings;
use crate::hooks;
use crate::session::{link_local_address, Ipv4Pair};

/// Priority of the `ip rule from ADDR lookup TABLE` rules of
/// `source_routes`: before the main table's rule (32766), after local (0).
pub const SOURCE_RULE_PRIORITY: u32 = 1000;

/// The smallest MTU IPv6 runs on (RFC 8200 section 5); below it the
/// kernel drops the device's IPv6 state and refuses its addresses.
pub const IPV6_MIN_MTU: u32 = 1280;

/// What a session's network configuration needs, fixed when it starts.
#[derive(Debug, Clone)]
pub struct SessionNet {
    /// How log lines name the session.
    pub name: String,
    /// The interface.
    pub ifname: String,
    /// pppd's tty argument of the hooks ("ssh", "direct", "pptp", ...).
    pub tty: &'static str,
    /// The hooks' ipparam (the profile's name).
    pub ipparam: String,
    /// The session owns its interface (a site link's tun): MTU, up and
    /// addresses are its worker's; else the interface is shared and set
    /// up by the transport.
    pub owns_interface: bool,
    /// Routes through the interface while IPCP is open.
    pub routes: Vec<Ipv4Net>,
    /// Full tunnel (`default_route`): with the peer's outer address, kept
    /// on its old next hop.
    pub full_tunnel: Option<Option<Ipv4Addr>>,
    /// `source_routes` and their table.
    pub source_routes: Vec<Ipv4Addr>,
    /// The table of `source_routes`.
    pub route_table: u32,
    /// Hook run when IPCP comes up.
    pub ip_up: Option<PathBuf>,
    /// Hook run when IPCP goes down.
    pub ip_down: Option<PathBuf>,
    /// IPV6CP runs: the kernel must not add a link-local address of its own.
    pub ipv6: bool,
    /// pppd `proxyarp`: while IPCP is open, answer ARP for the peer's
    /// address on the LAN interface whose network holds it.
    pub proxyarp: bool,
}

impl SessionNet {
    /// A site link's session on its own tun `ifname`. `outer_peer` is the
    /// SSH server (dial) or client (direct) address when known: a full
    /// tunnel keeps it on its old next hop.
    pub fn site(
        settings: &LinkSettings,
        ifname: &str,
        tty: &'static str,
        outer_peer: Option<Ipv4Addr>,
    ) -> SessionNet {
        SessionNet {
            name: settings.name.clone(),
            ifname: ifname.to_string(),
            tty,
            ipparam: settings.name.clone(),
            owns_interface: true,
            routes: settings.routes.clone(),
            full_tunnel: settings
                .default_route
                .then_some(settings.outer_peer.or(outer_peer)),
            source_routes: settings.source_routes.clone(),
            route_table: settings.route_table,
            ip_up: settings.ip_up.clone(),
            ip_down: settings.ip_down.clone(),
            ipv6: settings.ipv6cp,
            proxyarp: false,
        }
    }
}

/// One change of a session's network configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// MTU, and up: the first NCP opened (or LCP agreed other MRUs).
    LinkUp {
        /// The MTU.
        mtu: u32,
    },
    /// IPCP opened: address, routes, policy routing, ip-up.
    Ipv4Up(Ipv4Pair),
    /// IPCP went down: everything `Ipv4Up` did, undone; ip-down.
    Ipv4Down,
    /// IPV6CP opened: the link-local pair (RFC 5072 s5) on an interface of
    /// at least [`IPV6_MIN_MTU`].
    Ipv6Up {
        /// Our interface identifier.
        local_id: [u8; 8],
        /// The peer's.
        peer_id: [u8; 8],
        /// The interface's MTU.
        mtu: u32,
    },
    /// IPV6CP went down.
    Ipv6Down,
}

enum Job {
    Change(Change),
    Finish(oneshot::Sender<()>),
}

/// Starts netconf workers; cheap to clone.
#[derive(Clone)]
pub struct Netconf {
    netlink: Arc<Netlink>,
}

impl Netconf {
    /// Netconf over `netlink`.
    pub fn new(netlink: Arc<Netlink>) -> Netconf {
        Netconf { netlink }
    }

    /// The rtnetlink handle (for a transport's own one-time set-up).
    pub fn netlink(&self) -> &Arc<Netlink> {
        &self.netlink
    }

    /// Starts the worker of a new session.
    pub fn open(&self, net: SessionNet) -> SessionNetconf {
        let (tx, rx) = mpsc::unbounded_channel();
        let worker = Worker {
            netlink: self.netlink.clone(),
            net,
            ipv4: None,
            ipv6: None,
            routing: None,
            prepared: false,
            mtu: None,
            proxy_arp: None,
        };
        tokio::spawn(worker.run(rx));
        SessionNetconf { tx }
    }
}

/// One session's handle on its netconf worker.
#[derive(Debug)]
pub struct SessionNetconf {
    tx: mpsc::UnboundedSender<Job>,
}

impl SessionNetconf {
    /// Queues `change`; never waits.
    pub fn send(&self, change: Change) {
        // The worker only stops after `finish`.
        let _ = self.tx.send(Job::Change(change));
    }

    /// Undoes what is still installed and waits until that is done.
    pub async fn finish(self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Job::Finish(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

/// Policy routing installed for an open IPCP, to undo on down.
struct InstalledRouting {
    routes: PolicyRoutes,
    /// The interface's index.
    oif: u32,
    /// `default_route`: the peer's outer address and its kept next hop.
    full_tunnel: Option<(Ipv4Addr, NextHop)>,
    /// `source_routes` whose rule and table route went in.
    sources: Vec<Ipv4Addr>,
}

/// The link-local pair on the interface while IPV6CP is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ipv6Pair {
    local: Ipv6Addr,
    peer: Ipv6Addr,
}

struct Worker {
    netlink: Arc<Netlink>,
    net: SessionNet,
    ipv4: Option<Ipv4Pair>,
    ipv6: Option<Ipv6Pair>,
    routing: Option<InstalledRouting>,
    prepared: bool,
    /// The MTU set by the last `LinkUp`.
    mtu: Option<u32>,
    /// The proxy ARP entry installed for the peer: (address, interface).
    proxy_arp: Option<(Ipv4Addr, String)>,
}

impl Worker {
    async fn run(mut self, mut jobs: mpsc::UnboundedReceiver<Job>) {
        while let Some(job) = jobs.recv().await {
            match job {
                Job::Change(change) => self.apply(change).await,
                Job::Finish(done) => {
                    self.ipv6_down().await;
                    self.ipv4_down().await;
                    let _ = done.send(());
                    return;
                }
            }
        }
        // The session dropped its handle without `finish` (it panicked):
        // take back what is installed all the same.
        self.ipv6_down().await;
        self.ipv4_down().await;
    }

    async fn apply(&mut self, change: Change) {
        if !self.prepared {
            self.prepared = true;
            self.ipv6_prepare().await;
        }
        match change {
            Change::LinkUp { mtu } => self.link_up(mtu).await,
            Change::Ipv4Up(pair) => self.ipv4_up(pair).await,
            Change::Ipv4Down => self.ipv4_down().await,
            Change::Ipv6Up {
                local_id,
                peer_id,
                mtu,
            } => self.ipv6_up(&local_id, &peer_id, mtu).await,
            Change::Ipv6Down => self.ipv6_down().await,
        }
    }

    /// The IPv6 side of the interface, before it first comes up: the
    /// kernel must not add a random link-local address of its own
    /// (`addrgenmode none`); a PPP link's link-local addresses are the ones
    /// IPV6CP agrees (RFC 5072 section 5). A failure (a kernel without
    /// IPv6) is logged.
    async fn ipv6_prepare(&self) {
        let net = &self.net;
        if !net.ipv6 || !net.owns_interface {
            return;
        }
        if let Err(e) = self.netlink.set_addrgenmode_none(&net.ifname).await {
            warn!(
                "{}: {e}; the kernel may add a link-local address of its own",
                net.name
            );
        }
    }

    async fn link_up(&mut self, mtu: u32) {
        let net = &self.net;
        if !net.owns_interface {
            return;
        }
        self.mtu = Some(mtu);
        if let Err(e) = self.netlink.link_up(&net.ifname, mtu).await {
            warn!(
                "{}: {}: cannot set mtu {mtu} and up: {e}",
                net.name, net.ifname
            );
        }
    }

    /// Address, routes, policy routing and ip-up for an opened IPCP.
    async fn ipv4_up(&mut self, pair: Ipv4Pair) {
        // IPCP opening again without a close in between (a
        // renegotiation): take the old routing away first, its next hop
        // may have changed.
        if let Some(old) = self.routing.take() {
            self.policy_routing_down(old).await;
        }
        let net = &self.net;
        let (name, ifname) = (&net.name, &net.ifname);
        let Ipv4Pair { local, peer, dns } = pair;
        if net.owns_interface {
            match self.netlink.add_address_ptp(ifname, local, peer).await {
                Ok(()) => match self.mtu {
                    Some(mtu) => info!("{name}: {ifname} up: mtu {mtu}, {local} peer {peer}"),
                    None => info!("{name}: {ifname} up: {local} peer {peer}"),
                },
                Err(e) => warn!("{name}: {ifname}: cannot add address {local} peer {peer}: {e}"),
            }
            for route in &net.routes {
                match self.netlink.add_route(*route, ifname).await {
                    Ok(()) => info!("{name}: route {route} via {ifname} added"),
                    Err(e) => warn!("{name}: route {route} via {ifname}: {e}"),
                }
            }
            self.routing = self.policy_routing_up().await;
        }
        if net.proxyarp {
            self.proxy_arp_up(peer).await;
        }
        self.ipv4 = Some(pair);
        let net = &self.net;
        if let Some(hook) = &net.ip_up {
            hooks::spawn(hook, &net.ifname, net.tty, local, peer, &net.ipparam, dns);
        }
    }

    /// `default_route` (full tunnel) and `source_routes`; a failure is
    /// logged and leaves the link up (split tunnel then).
    async fn policy_routing_up(&self) -> Option<InstalledRouting> {
        let net = &self.net;
        let (name, ifname) = (&net.name, &net.ifname);
        if net.full_tunnel.is_none() && net.source_routes.is_empty() {
            return None;
        }
        let routes = match PolicyRoutes::new() {
            Ok(r) => r,
            Err(e) => {
                warn!("{name}: policy routing: {e}");
                return None;
            }
        };
        let oif = match self.netlink.ifindex(ifname).await {
            Ok(i) => i,
            Err(e) => {
                warn!("{name}: policy routing: {ifname}: {e}");
                return None;
            }
        };
        let mut installed = InstalledRouting {
            routes,
            oif,
            full_tunnel: None,
            sources: Vec::new(),
        };
        match net.full_tunnel {
            None => {}
            Some(None) => warn!(
                "{name}: default_route: no outer_peer and no SSH client address; split tunnel only"
            ),
            Some(Some(outer)) => {
                let before = installed.routes.route_to(outer).await;
                match installed.routes.start_full_tunnel(outer, oif).await {
                    Ok(hop) => {
                        info!(
                            "{name}: default route via {ifname} (0/1, 128/1); {outer} kept via {}",
                            describe_hop(hop)
                        );
                        installed.full_tunnel = Some((outer, hop));
                    }
                    Err(e) => {
                        warn!("{name}: default_route via {ifname}: {e}; split tunnel only");
                        // Take back whatever half went in.
                        if let Some(hop) = before.ok().filter(|h| h.oif != oif) {
                            let _ = installed.routes.end_full_tunnel(outer, hop, oif).await;
                        }
                    }
                }
            }
        }
        for &addr in &net.source_routes {
            match installed
                .routes
                .start_source_route(addr, net.route_table, SOURCE_RULE_PRIORITY, oif)
                .await
            {
                Ok(()) => {
                    info!(
                        "{name}: replies from {addr} via {ifname} (rule from {addr} lookup {})",
                        net.route_table
                    );
                    installed.sources.push(addr);
                }
                Err(e) => warn!(
                    "{name}: source route from {addr} via {ifname} (table {}): {e}",
                    net.route_table
                ),
            }
        }
        Some(installed)
    }

    /// Undoes [`Worker::policy_routing_up`]; failures are logged.
    async fn policy_routing_down(&self, routing: InstalledRouting) {
        let net = &self.net;
        let (name, ifname) = (&net.name, &net.ifname);
        let InstalledRouting {
            routes,
            oif,
            full_tunnel,
            sources,
        } = routing;
        if let Some((outer, hop)) = full_tunnel {
            match routes.end_full_tunnel(outer, hop, oif).await {
                Ok(()) => {
                    info!("{name}: default route via {ifname} and host route to {outer} removed")
                }
                Err(e) => warn!("{name}: default route via {ifname}: cannot remove: {e}"),
            }
        }
        for addr in sources {
            match routes
                .end_source_route(addr, net.route_table, SOURCE_RULE_PRIORITY, oif)
                .await
            {
                Ok(()) => info!("{name}: source route from {addr} via {ifname} removed"),
                Err(e) => {
                    warn!("{name}: source route from {addr} via {ifname}: cannot remove: {e}")
                }
            }
        }
    }

    /// pppd's `proxyarp`: the LAN interface whose network holds `peer`
    /// answers ARP for it (a proxy neighbour entry), so hosts there reach
    /// the client without a route. No such interface: logged, nothing done
    /// (pppd: "Cannot determine ethernet address for proxy ARP").
    async fn proxy_arp_up(&mut self, peer: Ipv4Addr) {
        let (name, ifname) = (&self.net.name, &self.net.ifname);
        match self.netlink.proxy_arp_interface(peer, ifname).await {
            Ok(Some(lan)) => match self.netlink.add_proxy_arp(peer, &lan).await {
                Ok(()) => {
                    info!("{name}: proxy ARP for {peer} on {lan}");
                    self.proxy_arp = Some((peer, lan));
                }
                Err(e) => warn!("{name}: cannot add proxy ARP for {peer} on {lan}: {e}"),
            },
            Ok(None) => info!(
                "{name}: proxyarp: no LAN interface has a network holding {peer}; no proxy ARP"
            ),
            Err(e) => warn!("{name}: proxyarp: cannot list the interfaces: {e}"),
        }
    }

    /// Removes the proxy ARP entry of [`Worker::proxy_arp_up`].
    async fn proxy_arp_down(&mut self) {
        let Some((peer, lan)) = self.proxy_arp.take() else {
            return;
        };
        let name = &self.net.name;
        match self.netlink.del_proxy_arp(peer, &lan).await {
            Ok(()) => info!("{name}: proxy ARP for {peer} on {lan} removed"),
            Err(e) => warn!("{name}: cannot remove proxy ARP for {peer} on {lan}: {e}"),
        }
    }

    /// Undoes [`Worker::ipv4_up`]; failures are logged.
    async fn ipv4_down(&mut self) {
        let Some(pair) = self.ipv4.take() else {
            return;
        };
        if let Some(routing) = self.routing.take() {
            self.policy_routing_down(routing).await;
        }
        self.proxy_arp_down().await;
        let net = &self.net;
        let (name, ifname) = (&net.name, &net.ifname);
        if net.owns_interface {
            for route in &net.routes {
                match self.netlink.del_route(*route, ifname).await {
                    Ok(()) => info!("{name}: route {route} via {ifname} removed"),
                    Err(e) => warn!("{name}: route {route} via {ifname}: cannot remove: {e}"),
                }
            }
        }
        if let Some(hook) = &net.ip_down {
            hooks::spawn(
                hook,
                ifname,
                net.tty,
                pair.local,
                pair.peer,
                &net.ipparam,
                pair.dns,
            );
        }
    }

    /// The link-local pair of an opened IPV6CP: `fe80::LOCAL_ID peer
    /// fe80::PEER_ID` (RFC 5072 section 5), as pppd configures it. Turns
    /// IPv6 on for the interface if the kernel has it off. A failure is
    /// logged and leaves the link up; so does an MTU below IPv6's minimum,
    /// without addresses.
    async fn ipv6_up(&mut self, local_id: &[u8; 8], peer_id: &[u8; 8], mtu: u32) {
        if !self.net.owns_interface {
            return;
        }
        let pair = Ipv6Pair {
            local: link_local_address(local_id),
            peer: link_local_address(peer_id),
        };
        // IPV6CP opening again without a close in between: other
        // identifiers mean other addresses; the old pair goes first.
        if self.ipv6.is_some_and(|old| old != pair) {
            self.ipv6_down().await;
        }
        let net = &self.net;
        let (name, ifname) = (&net.name, &net.ifname);
        if mtu < IPV6_MIN_MTU {
            warn!(
                "{name}: {ifname}: mtu {mtu} is below IPv6's minimum {IPV6_MIN_MTU} (RFC 8200 s5): no IPv6 addresses"
            );
            return;
        }
        // After the MTU: below 1280 the kernel has no IPv6 state (and no
        // sysctl directory) for the device at all.
        match tsunagi_host::netlink::enable_ipv6(ifname) {
            Ok(true) => info!("{name}: {ifname}: IPv6 turned on (disable_ipv6 was set)"),
            Ok(false) => {}
            Err(e) => warn!("{name}: cannot turn IPv6 on: {e}"),
        }
        let Ipv6Pair { local, peer } = pair;
        match self.netlink.add_address6_ptp(ifname, local, peer).await {
            Ok(()) => {
                info!("{name}: {ifname} IPv6 up: {local} peer {peer}");
                self.ipv6 = Some(pair);
            }
            Err(e) => warn!("{name}: {ifname}: cannot add address {local} peer {peer}: {e}"),
        }
    }

    /// Undoes [`Worker::ipv6_up`]; a failure is logged.
    async fn ipv6_down(&mut self) {
        let Some(Ipv6Pair { local, peer }) = self.ipv6.take() else {
            return;
        };
        let net = &self.net;
        let (name, ifname) = (&net.name, &net.ifname);
        match self.netlink.del_address6_ptp(ifname, local, peer).await {
            Ok(()) => info!("{name}: {ifname} IPv6 down: {local} peer {peer} removed"),
            Err(e) => warn!("{name}: {ifname}: cannot remove address {local} peer {peer}: {e}"),
        }
    }
}

/// The kept next hop for log lines: `GW (ifindex N)` or `ifindex N directly`.
fn describe_hop(hop: NextHop) -> String {
    match hop.gateway {
        Some(gw) => format!("{gw} (ifindex {})", hop.oif),
        None => format!("ifindex {} directly", hop.oif),
    }
}
