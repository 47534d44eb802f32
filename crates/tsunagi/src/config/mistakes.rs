//! The classic mistakes `tsunagi check` flags: settings that load, and
//! then break the link the way the seeds warn about.
//!
//! - Seed 001: the peer's global (outer) address given as the PPP remote
//!   address. The host route to the peer then points into the tunnel, and
//!   the tunnel's own packets try to go through it.
//! - A route through a link that covers the address the link itself goes
//!   to (its `outer_peer`, PPTP `server` or L2TP `lns`): the same loop.
//! - A server's address pool overlapping a LAN the config routes or
//!   protects: the pool's sessions and that LAN can no longer both be
//!   reached.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use tsunagi_host::Ipv4Net;

use super::{Config, ConnType};

/// One mistake found in a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mistake {
    /// Seed 001: a link's `remote` (the PPP peer's address) is the
    /// address the link reaches the peer at.
    RemoteIsOuterPeer {
        /// The `[link.NAME]`.
        link: String,
        /// The address.
        addr: Ipv4Addr,
    },
    /// A link's `routes` send the link's own peer into the link.
    RouteCoversOuterPeer {
        /// The `[link.NAME]`.
        link: String,
        /// The route.
        route: Ipv4Net,
        /// The peer's outer address.
        peer: Ipv4Addr,
    },
    /// A server's pool has addresses of a LAN another profile routes or
    /// an IPsec conn protects.
    PoolOverlapsLan {
        /// The `[server.NAME]`.
        server: String,
        /// The LAN.
        lan: Ipv4Net,
        /// Where the LAN is named (`link.NAME routes`, `ipsec.NAME
        /// rightsubnet`).
        named_by: String,
        /// The first pool address inside it.
        first: Ipv4Addr,
    },
}

impl fmt::Display for Mistake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mistake::RemoteIsOuterPeer { link, addr } => write!(
                f,
                "link.{link}: remote = \"{addr}\" is the address the link itself goes to: the PPP peer's address must be one of the tunnel's own (seed 001's mistake), or the route to the peer points into the tunnel"
            ),
            Mistake::RouteCoversOuterPeer { link, route, peer } => write!(
                f,
                "link.{link}: route {route} covers {peer}, the address the link itself goes to: its own packets would be sent into it"
            ),
            Mistake::PoolOverlapsLan {
                server,
                lan,
                named_by,
                first,
            } => write!(
                f,
                "server.{server}: the pool overlaps {lan} ({named_by}), from {first}: its sessions and that LAN cannot both be reached"
            ),
        }
    }
}

/// Every mistake in `config`, in section order.
pub fn mistakes(config: &Config) -> Vec<Mistake> {
    let mut found = Vec::new();
    for l in &config.links {
        let peer = l.outer_peer.or(l.server).or(l.lns);
        let Some(peer) = peer else {
            continue;
        };
        if l.remote == Some(peer) {
            found.push(Mistake::RemoteIsOuterPeer {
                link: l.name.clone(),
                addr: peer,
            });
        }
        for route in l.routes.iter().filter(|r| r.contains(peer)) {
            found.push(Mistake::RouteCoversOuterPeer {
                link: l.name.clone(),
                route: *route,
                peer,
            });
        }
    }
    let mut lans: Vec<(Ipv4Net, String)> = Vec::new();
    for l in &config.links {
        for r in l.routes.iter().filter(|r| r.prefix > 0) {
            lans.push((*r, format!("link.{} routes", l.name)));
        }
    }
    for c in config
        .ipsec
        .iter()
        .filter(|c| c.conn_type == ConnType::Tunnel)
    {
        let subnets = [
            ("leftsubnet", Some(c.leftsubnet)),
            ("rightsubnet", c.rightsubnet),
        ];
        for (key, ts) in subnets {
            let Some(ts) = ts else {
                continue;
            };
            if let (IpAddr::V4(a), true) = (ts.addr, ts.prefix > 0) {
                if let Ok(net) = Ipv4Net::new(a, ts.prefix) {
                    lans.push((net, format!("ipsec.{} {key}", c.name)));
                }
            }
        }
    }
    for s in &config.servers {
        let Ok(pool) = s.pool() else {
            continue;
        };
        for (lan, named_by) in &lans {
            let first = pool
                .remote_addresses()
                .iter()
                .copied()
                .chain(pool.local_addresses())
                .find(|a| lan.contains(*a));
            if let Some(first) = first {
                found.push(Mistake::PoolOverlapsLan {
                    server: s.name.clone(),
                    lan: *lan,
                    named_by: named_by.clone(),
                    first,
                });
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        Config::parse(std::path::Path::new("t.toml"), text).unwrap()
    }

    /// Seed 001's mistake: the PPTP server's global address as the PPP
    /// remote address; and a route that sends the server into the link.
    #[test]
    fn the_peers_own_address_as_remote_or_inside_a_route() {
        let c = parse("[link.vpn]\nmode = \"pptp\"\nserver = \"203.0.113.5\"\nuser = \"u\"\npassword = \"p\"\nremote = \"203.0.113.5\"\nroutes = [\"203.0.113.0/24\", \"10.0.0.0/8\"]\n");
        let m = mistakes(&c);
        assert_eq!(
            m,
            [
                Mistake::RemoteIsOuterPeer {
                    link: "vpn".into(),
                    addr: Ipv4Addr::new(203, 0, 113, 5)
                },
                Mistake::RouteCoversOuterPeer {
                    link: "vpn".into(),
                    route: Ipv4Net::new(Ipv4Addr::new(203, 0, 113, 0), 24).unwrap(),
                    peer: Ipv4Addr::new(203, 0, 113, 5)
                },
            ]
        );
        assert!(m[0].to_string().contains("seed 001"), "{}", m[0]);
        // The same link done right: nothing to say.
        let c = parse("[link.vpn]\nmode = \"pptp\"\nserver = \"203.0.113.5\"\nuser = \"u\"\npassword = \"p\"\nremote = \"10.255.0.1\"\nroutes = [\"10.0.0.0/8\"]\n");
        assert_eq!(mistakes(&c), []);
    }

    /// A pool inside a LAN a link routes, or a tunnel conn protects.
    #[test]
    fn a_pool_overlapping_a_lan() {
        let c = parse("[daemon]\nsecrets = \"/etc/ppp/chap-secrets\"\n[link.labs]\nmode = \"dial\"\ndevice = \"cat\"\nroutes = [\"192.168.253.0/24\"]\n[ipsec.site]\nleft = \"10.0.0.1\"\nright = \"10.0.0.2\"\nleftsubnet = \"172.16.0.0/16\"\nrightsubnet = \"10.99.0.0/24\"\n[server.pptp]\nprotocol = \"pptp\"\nlocalip = \"192.168.253.1\"\nremoteip = \"192.168.253.200-210\"\n");
        let m = mistakes(&c);
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(
            m[0],
            Mistake::PoolOverlapsLan {
                server: "pptp".into(),
                lan: Ipv4Net::new(Ipv4Addr::new(192, 168, 253, 0), 24).unwrap(),
                named_by: "link.labs routes".into(),
                first: Ipv4Addr::new(192, 168, 253, 200),
            }
        );
        let c = parse("[daemon]\nsecrets = \"/etc/ppp/chap-secrets\"\n[ipsec.site]\nleft = \"10.0.0.1\"\nright = \"10.0.0.2\"\nleftsubnet = \"172.16.0.0/16\"\nrightsubnet = \"10.99.0.0/24\"\n[server.pptp]\nprotocol = \"pptp\"\nlocalip = \"10.99.0.1\"\nremoteip = \"10.99.0.10-20\"\n");
        let m = mistakes(&c);
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(
            m[0].to_string().contains("ipsec.site rightsubnet"),
            "{}",
            m[0]
        );
    }
}
