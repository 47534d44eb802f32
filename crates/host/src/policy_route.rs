//! Routing policy around a tunnel: IP forwarding, source routing for an
//! address that reaches us through the tunnel, and split versus full tunnel.
//!
//! - Forwarding is the `net.ipv4.ip_forward` sysctl (seed 000 §3.4's
//!   `net.inet.ip.forwarding=1`), written under `/proc/sys` of the calling
//!   thread's network namespace.
//! - Source routing (seed 001's borrowed global address): `ip rule from ADDR
//!   lookup TABLE` plus routes in TABLE, so replies *from* that address
//!   leave through the tunnel instead of the default route (RFC 3704 §4's
//!   concern: the other way they would leave with a source the ISP drops).
//! - Full tunnel: the default route through the tunnel as two halves,
//!   `0.0.0.0/1` and `128.0.0.0/1`, which win over `0.0.0.0/0` by being more
//!   specific while the original default stays untouched (removing them
//!   restores it), plus a host route to the peer's outer address through the
//!   route it had before, so the tunnel's own packets do not enter the
//!   tunnel. Split tunnel: only the listed networks go through the tunnel
//!   ([`crate::Netlink::add_route`]).
//!
//! Everything goes over rtnetlink (RFC 3549); routes and rules carry
//! tsunagi's protocol number [`crate::ROUTE_PROTOCOL`].

use std::io;
use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol};
use netlink_packet_route::rule::RuleAction;
use rtnetlink::IpVersion;

use crate::Ipv4Net;

const MAIN_TABLE: u32 = 254;

/// Turn IPv4 forwarding on or off; returns the previous setting.
pub fn set_ip_forwarding(on: bool) -> io::Result<bool> {
    const PATH: &str = "/proc/sys/net/ipv4/ip_forward";
    let before = std::fs::read_to_string(PATH)
        .map_err(|e| io::Error::new(e.kind(), format!("{PATH}: {e}")))?;
    std::fs::write(PATH, if on { "1\n" } else { "0\n" })
        .map_err(|e| io::Error::new(e.kind(), format!("{PATH}: {e}")))?;
    Ok(before.trim() == "1")
}

/// Whether IPv4 forwarding is on.
pub fn ip_forwarding() -> io::Result<bool> {
    Ok(std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")?.trim() == "1")
}

/// A route the kernel would use: gateway (if any) and outgoing interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop {
    /// Gateway, `None` for a directly connected destination.
    pub gateway: Option<Ipv4Addr>,
    /// Outgoing interface index.
    pub oif: u32,
}

fn rtnl_err(op: &str, e: rtnetlink::Error) -> io::Error {
    match e {
        rtnetlink::Error::NetlinkError(m) if m.code.is_some() => {
            let io = m.to_io();
            io::Error::new(io.kind(), format!("{op}: {io}"))
        }
        other => io::Error::other(format!("{op}: {other}")),
    }
}

fn exists(e: &rtnetlink::Error) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.code.map(|c| c.get()) == Some(-libc::EEXIST))
}

fn absent(e: &rtnetlink::Error) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m)
        if matches!(m.code.map(|c| c.get()), Some(c) if c == -libc::ENOENT || c == -libc::ESRCH))
}

/// What a selector rule matches (a transport-mode SA's traffic): the
/// destination host, IP protocol and ports; 0 / `None` for any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectorRule {
    /// Destination host (`to ADDR/32`).
    pub to: Option<Ipv4Addr>,
    /// IP protocol (`ipproto`).
    pub protocol: u8,
    /// Source port (`sport`).
    pub sport: u16,
    /// Destination port (`dport`).
    pub dport: u16,
}

impl std::fmt::Display for SelectorRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.to {
            Some(to) => write!(f, "to {to}")?,
            None => write!(f, "to all")?,
        }
        if self.protocol != 0 {
            write!(f, " ipproto {}", self.protocol)?;
        }
        if self.sport != 0 {
            write!(f, " sport {}", self.sport)?;
        }
        if self.dport != 0 {
            write!(f, " dport {}", self.dport)?;
        }
        Ok(())
    }
}

/// Sets `net.ipv4.conf.IFNAME.rp_filter` (0 off, 1 strict, 2 loose;
/// RFC 3704's checks), in the calling thread's network namespace.
pub fn set_rp_filter(ifname: &str, value: u8) -> io::Result<()> {
    crate::tun::check_ifname(ifname)?;
    let path = format!("/proc/sys/net/ipv4/conf/{ifname}/rp_filter");
    std::fs::write(&path, format!("{value}\n"))
        .map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))
}

/// Routing policy over rtnetlink in the current network namespace.
pub struct PolicyRoutes {
    handle: rtnetlink::Handle,
}

impl std::fmt::Debug for PolicyRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyRoutes").finish_non_exhaustive()
    }
}

impl PolicyRoutes {
    /// Open a connection; must be called inside a tokio runtime.
    pub fn new() -> io::Result<PolicyRoutes> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| io::Error::other(format!("policy routes: needs a tokio runtime: {e}")))?;
        let (connection, handle, _) = rtnetlink::new_connection()?;
        runtime.spawn(connection);
        Ok(PolicyRoutes { handle })
    }

    fn rule_request(
        &self,
        from: Ipv4Addr,
        table: u32,
        priority: u32,
    ) -> rtnetlink::RuleAddRequest<Ipv4Addr> {
        self.handle
            .rule()
            .add()
            .v4()
            .source_prefix(from, 32)
            .table_id(table)
            .priority(priority)
            .action(RuleAction::ToTable)
    }

    /// `ip rule add from FROM lookup TABLE priority PRIORITY`; present
    /// already is not an error.
    pub async fn add_source_rule(
        &self,
        from: Ipv4Addr,
        table: u32,
        priority: u32,
    ) -> io::Result<()> {
        match self.rule_request(from, table, priority).execute().await {
            Ok(()) => Ok(()),
            Err(e) if exists(&e) => Ok(()),
            Err(e) => Err(rtnl_err(&format!("add rule from {from} lookup {table}"), e)),
        }
    }

    /// Remove the rule of [`PolicyRoutes::add_source_rule`]; absent is not
    /// an error.
    pub async fn del_source_rule(
        &self,
        from: Ipv4Addr,
        table: u32,
        priority: u32,
    ) -> io::Result<()> {
        let mut req = self.rule_request(from, table, priority);
        let msg = req.message_mut().clone();
        match self.handle.rule().del(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) if absent(&e) => Ok(()),
            Err(e) => Err(rtnl_err(&format!("del rule from {from} lookup {table}"), e)),
        }
    }

    /// Whether a rule `from FROM lookup TABLE` is installed.
    pub async fn has_source_rule(&self, from: Ipv4Addr, table: u32) -> io::Result<bool> {
        let mut rules = self.handle.rule().get(IpVersion::V4).execute();
        while let Some(rule) = rules
            .try_next()
            .await
            .map_err(|e| rtnl_err("list rules", e))?
        {
            use netlink_packet_route::rule::RuleAttribute;
            let src = rule
                .attributes
                .contains(&RuleAttribute::Source(IpAddr::V4(from)));
            let tab = rule.attributes.contains(&RuleAttribute::Table(table))
                || u32::from(rule.header.table) == table;
            if src && tab && rule.header.src_len == 32 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn selector_rule_request(
        &self,
        rule: &SelectorRule,
        table: u32,
        priority: u32,
    ) -> rtnetlink::RuleAddRequest<Ipv4Addr> {
        use netlink_packet_route::rule::{RuleAttribute, RulePortRange};
        let mut req = self
            .handle
            .rule()
            .add()
            .v4()
            .table_id(table)
            .priority(priority)
            .action(RuleAction::ToTable);
        if let Some(to) = rule.to {
            req = req.destination_prefix(to, 32);
        }
        let attrs = &mut req.message_mut().attributes;
        if rule.protocol != 0 {
            attrs.push(RuleAttribute::IpProtocol(
                netlink_packet_route::IpProtocol::from(i32::from(rule.protocol)),
            ));
        }
        for (port, source) in [(rule.sport, true), (rule.dport, false)] {
            if port != 0 {
                let range = RulePortRange {
                    start: port,
                    end: port,
                };
                attrs.push(if source {
                    RuleAttribute::SourcePortRange(range)
                } else {
                    RuleAttribute::DestinationPortRange(range)
                });
            }
        }
        req
    }

    /// `ip rule add [to TO/32] [ipproto P] [sport S] [dport D] lookup TABLE
    /// priority PRIORITY`; present already is not an error.
    pub async fn add_selector_rule(
        &self,
        rule: &SelectorRule,
        table: u32,
        priority: u32,
    ) -> io::Result<()> {
        match self
            .selector_rule_request(rule, table, priority)
            .execute()
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if exists(&e) => Ok(()),
            Err(e) => Err(rtnl_err(&format!("add rule {rule} lookup {table}"), e)),
        }
    }

    /// Remove the rule of [`PolicyRoutes::add_selector_rule`]; absent is
    /// not an error.
    pub async fn del_selector_rule(
        &self,
        rule: &SelectorRule,
        table: u32,
        priority: u32,
    ) -> io::Result<()> {
        let mut req = self.selector_rule_request(rule, table, priority);
        let msg = req.message_mut().clone();
        match self.handle.rule().del(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) if absent(&e) => Ok(()),
            Err(e) => Err(rtnl_err(&format!("del rule {rule} lookup {table}"), e)),
        }
    }

    /// Whether a rule for `rule` looking up `table` is installed.
    pub async fn has_selector_rule(&self, rule: &SelectorRule, table: u32) -> io::Result<bool> {
        use netlink_packet_route::rule::RuleAttribute;
        let mut rules = self.handle.rule().get(IpVersion::V4).execute();
        while let Some(r) = rules
            .try_next()
            .await
            .map_err(|e| rtnl_err("list rules", e))?
        {
            let tab = r.attributes.contains(&RuleAttribute::Table(table))
                || u32::from(r.header.table) == table;
            let to = match rule.to {
                Some(to) => {
                    r.attributes
                        .contains(&RuleAttribute::Destination(IpAddr::V4(to)))
                        && r.header.dst_len == 32
                }
                None => r.header.dst_len == 0,
            };
            if tab && to {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn route_request(
        &self,
        table: u32,
        dest: Ipv4Net,
        gateway: Option<Ipv4Addr>,
        oif: u32,
    ) -> rtnetlink::RouteAddRequest<Ipv4Addr> {
        let mut req = self
            .handle
            .route()
            .add()
            .v4()
            .destination_prefix(dest.network(), dest.prefix)
            .output_interface(oif)
            .table_id(table)
            .protocol(RouteProtocol::Other(crate::ROUTE_PROTOCOL));
        if let Some(gw) = gateway {
            req = req.gateway(gw);
        }
        req
    }

    /// Add `dest [via GATEWAY] dev OIF` to routing table `table`; present
    /// already is not an error.
    pub async fn add_route(
        &self,
        table: u32,
        dest: Ipv4Net,
        gateway: Option<Ipv4Addr>,
        oif: u32,
    ) -> io::Result<()> {
        match self
            .route_request(table, dest, gateway, oif)
            .execute()
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if exists(&e) => Ok(()),
            Err(e) => Err(rtnl_err(&format!("add route {dest} table {table}"), e)),
        }
    }

    /// Remove a route added by [`PolicyRoutes::add_route`]; absent is not
    /// an error.
    pub async fn del_route(&self, table: u32, dest: Ipv4Net, oif: u32) -> io::Result<()> {
        let mut req = self.route_request(table, dest, None, oif);
        let msg: RouteMessage = req.message_mut().clone();
        match self.handle.route().del(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) if absent(&e) => Ok(()),
            Err(e) => Err(rtnl_err(&format!("del route {dest} table {table}"), e)),
        }
    }

    /// The main-table route the kernel would pick for `dest` (longest
    /// prefix, then lowest metric); `NotFound` if none.
    pub async fn route_to(&self, dest: Ipv4Addr) -> io::Result<NextHop> {
        let mut routes = self.handle.route().get(IpVersion::V4).execute();
        let mut best: Option<(u8, u32, NextHop)> = None;
        while let Some(r) = routes
            .try_next()
            .await
            .map_err(|e| rtnl_err("list routes", e))?
        {
            let mut table = u32::from(r.header.table);
            let (mut dst, mut gateway, mut oif, mut metric) =
                (Ipv4Addr::UNSPECIFIED, None, None, 0);
            for a in &r.attributes {
                match a {
                    RouteAttribute::Table(t) => table = *t,
                    RouteAttribute::Destination(RouteAddress::Inet(d)) => dst = *d,
                    RouteAttribute::Gateway(RouteAddress::Inet(g)) => gateway = Some(*g),
                    RouteAttribute::Oif(i) => oif = Some(*i),
                    RouteAttribute::Priority(p) => metric = *p,
                    _ => {}
                }
            }
            let len = r.header.destination_prefix_length;
            let Some(oif) = oif else { continue };
            if table != MAIN_TABLE || len > 32 {
                continue;
            }
            let Ok(net) = Ipv4Net::new(dst, len) else {
                continue;
            };
            if !net.contains(dest) {
                continue;
            }
            let better = match best {
                None => true,
                Some((l, m, _)) => len > l || (len == l && metric < m),
            };
            if better {
                best = Some((len, metric, NextHop { gateway, oif }));
            }
        }
        best.map(|(_, _, hop)| hop)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no route to {dest}")))
    }

    /// Full tunnel: keep `peer_outer` on its current route (a host route),
    /// then send everything else through `tunnel_oif` (`0/1` + `128/1`).
    /// Returns the host route's next hop, for [`PolicyRoutes::end_full_tunnel`].
    pub async fn start_full_tunnel(
        &self,
        peer_outer: Ipv4Addr,
        tunnel_oif: u32,
    ) -> io::Result<NextHop> {
        let hop = self.route_to(peer_outer).await?;
        if hop.oif == tunnel_oif {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the route to the peer's outer address {peer_outer} already uses the tunnel"
                ),
            ));
        }
        self.add_route(MAIN_TABLE, Ipv4Net::host(peer_outer), hop.gateway, hop.oif)
            .await?;
        for half in [Ipv4Addr::new(0, 0, 0, 0), Ipv4Addr::new(128, 0, 0, 0)] {
            let net = Ipv4Net::new(half, 1).map_err(io::Error::other)?;
            self.add_route(MAIN_TABLE, net, None, tunnel_oif).await?;
        }
        Ok(hop)
    }

    /// Undo [`PolicyRoutes::start_full_tunnel`].
    pub async fn end_full_tunnel(
        &self,
        peer_outer: Ipv4Addr,
        hop: NextHop,
        tunnel_oif: u32,
    ) -> io::Result<()> {
        for half in [Ipv4Addr::new(0, 0, 0, 0), Ipv4Addr::new(128, 0, 0, 0)] {
            let net = Ipv4Net::new(half, 1).map_err(io::Error::other)?;
            self.del_route(MAIN_TABLE, net, tunnel_oif).await?;
        }
        self.del_route(MAIN_TABLE, Ipv4Net::host(peer_outer), hop.oif)
            .await
    }

    /// Source routing: replies from `addr` go through `tunnel_oif` (table
    /// `table`'s default route), selected by `ip rule from ADDR lookup TABLE`.
    pub async fn start_source_route(
        &self,
        addr: Ipv4Addr,
        table: u32,
        priority: u32,
        tunnel_oif: u32,
    ) -> io::Result<()> {
        let default = Ipv4Net::new(Ipv4Addr::UNSPECIFIED, 0).map_err(io::Error::other)?;
        self.add_route(table, default, None, tunnel_oif).await?;
        self.add_source_rule(addr, table, priority).await
    }

    /// Undo [`PolicyRoutes::start_source_route`].
    pub async fn end_source_route(
        &self,
        addr: Ipv4Addr,
        table: u32,
        priority: u32,
        tunnel_oif: u32,
    ) -> io::Result<()> {
        self.del_source_rule(addr, table, priority).await?;
        let default = Ipv4Net::new(Ipv4Addr::UNSPECIFIED, 0).map_err(io::Error::other)?;
        self.del_route(table, default, tunnel_oif).await
    }
}
