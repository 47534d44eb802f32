//! Proxy ARP for a peer's address: pppd's `proxyarp` option (pppd(8)),
//! which pptpd configurations use so that LAN hosts reach a VPN client
//! with an address of their own subnet without any route of their own.
//!
//! # What pppd does (sys-linux.c, `sifproxyarp` and `get_ether_addr`)
//!
//! It looks for the interface that shares a subnet with the peer's address:
//! among the interfaces with an IPv4 address whose flags are `UP` and
//! `BROADCAST` and neither `POINTOPOINT`, `LOOPBACK` nor `NOARP`, those
//! whose network (address and netmask) contains the peer's address; the one
//! with the longest netmask wins. Then it publishes the address there
//! (`SIOCSARP` with `ATF_PERM | ATF_PUBL`, which on Linux makes a proxy
//! neighbour entry), and with `ktune` turns on `ip_forward`. At the end of
//! the link it deletes the entry (`SIOCDARP`).
//!
//! Here the same search and entry go over rtnetlink (RFC 3549,
//! `rtnetlink(7)`): [`Netlink::proxy_arp_interface`] reads the links and
//! addresses (the tunnel's own interface is skipped by name as well as by
//! its flags), and [`Netlink::add_proxy_arp`] is `RTM_NEWNEIGH` with
//! `NTF_PROXY` (`ip neigh add proxy ADDR dev IF`), [`Netlink::del_proxy_arp`]
//! `RTM_DELNEIGH` likewise. Ties between equally long netmasks go to the
//! lowest interface index.
//!
//! # What else the kernel needs (tested in tests/proxy_arp_netns.rs)
//!
//! The kernel answers an ARP request for the address on that interface
//! (`arp_process` in net/ipv4/arp.c) only when all of these hold:
//!
//! - forwarding is on for the interface the request arrives on
//!   (`net.ipv4.conf.IF.forwarding`, which `net.ipv4.ip_forward=1` turns on
//!   for every interface). Off: no answer. The packets then need
//!   forwarding on the tunnel's interface too, so in practice
//!   `ip_forward=1` ([`crate::policy_route::set_ip_forwarding`]);
//! - a unicast route to the address exists and leads out of *another*
//!   interface (the tunnel's: the peer's host route on the tun). With no
//!   route, or with the route through the LAN interface itself, no answer;
//!   a tun that is down has lost its routes, so no answer either.
//!
//! The per-interface `net.ipv4.conf.IF.proxy_arp` sysctl is *not* needed:
//! it makes the kernel answer for every address routed through another
//! interface, which the entry does for one address only. Reverse-path
//! filtering (`rp_filter=1`) does not get in the way.
//!
//! A broadcast ARP request (the usual kind) is answered after a random
//! delay of up to `net.ipv4.neigh.IF.proxy_delay` (80 hundredths of a
//! second by default): the LAN host's first packet to the peer waits up to
//! 0.8 s. Setting it to 0 answers at once; pppd leaves it alone, and so
//! does this module.

use std::io;
use std::net::Ipv4Addr;

use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST};
use netlink_packet_route::link::{LinkAttribute, LinkFlag, LinkMessage};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlag, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::netlink::context;
use crate::{Ipv4Net, Netlink};

/// One interface as the search sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidate {
    index: u32,
    name: String,
    /// `UP | BROADCAST`, not `POINTOPOINT | LOOPBACK | NOARP`.
    arp_capable: bool,
}

/// pppd's test on the interface flags (`FLAGS_GOOD` / `FLAGS_MASK`).
fn arp_capable(flags: &[LinkFlag]) -> bool {
    let has = |f: LinkFlag| flags.contains(&f);
    has(LinkFlag::Up)
        && has(LinkFlag::Broadcast)
        && !has(LinkFlag::Pointopoint)
        && !has(LinkFlag::Loopback)
        && !has(LinkFlag::Noarp)
}

/// The interface for `addr` among `links` with `addresses` (ifindex,
/// network of an address on it): the longest network containing `addr` on
/// an ARP-capable interface other than `exclude`; the lowest index among
/// equals. A /0 network (pppd would take it) is not a subnet and is skipped.
fn choose(
    addr: Ipv4Addr,
    exclude: &str,
    links: &[Candidate],
    addresses: &[(u32, Ipv4Net)],
) -> Option<String> {
    let mut best: Option<(u8, u32, &str)> = None;
    for (index, net) in addresses {
        if net.prefix == 0 || !net.contains(addr) {
            continue;
        }
        let Some(link) = links
            .iter()
            .find(|l| l.index == *index && l.arp_capable && l.name != exclude)
        else {
            continue;
        };
        let better = match best {
            None => true,
            Some((prefix, best_index, _)) => {
                net.prefix > prefix || (net.prefix == prefix && link.index < best_index)
            }
        };
        if better {
            best = Some((net.prefix, link.index, &link.name));
        }
    }
    best.map(|(_, _, name)| name.to_owned())
}

/// `ndmsg` for a proxy entry of `addr` on interface `index`.
fn proxy_message(addr: Ipv4Addr, index: u32) -> NeighbourMessage {
    let mut message = NeighbourMessage::default();
    message.header.family = AddressFamily::Inet;
    message.header.ifindex = index;
    message.header.flags = vec![NeighbourFlag::Proxy];
    message.header.state = NeighbourState::Permanent;
    message
        .attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
            addr,
        )));
    message
}

impl Netlink {
    /// The interface on which to answer ARP for `addr` (see the module
    /// docs: pppd's choice), never `exclude` (the tunnel's own interface);
    /// `None` if no LAN interface shares a subnet with `addr`.
    pub async fn proxy_arp_interface(
        &self,
        addr: Ipv4Addr,
        exclude: &str,
    ) -> io::Result<Option<String>> {
        let op = format!("find the interface for proxy ARP of {addr}");
        let answers = self
            .request(
                RouteNetlinkMessage::GetLink(LinkMessage::default()),
                NLM_F_REQUEST | NLM_F_DUMP,
            )
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("{op}: list links: {e}")))?;
        let links: Vec<Candidate> = answers
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(link) => {
                    let name = link.attributes.iter().find_map(|a| match a {
                        LinkAttribute::IfName(n) => Some(n.clone()),
                        _ => None,
                    })?;
                    Some(Candidate {
                        index: link.header.index,
                        name,
                        arp_capable: arp_capable(&link.header.flags),
                    })
                }
                _ => None,
            })
            .collect();
        let addresses: Vec<(u32, Ipv4Net)> = self
            .all_addresses()
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("{op}: list addresses: {e}")))?
            .into_iter()
            .map(|(index, a)| {
                (
                    index,
                    Ipv4Net {
                        addr: a.local,
                        prefix: a.prefix.min(32),
                    },
                )
            })
            .collect();
        Ok(choose(addr, exclude, &links, &addresses))
    }

    /// Answer ARP for `addr` on `ifname` (`ip neigh add proxy ADDR dev
    /// IF`). Present already is not an error. The kernel answers only when
    /// forwarding is on and `addr` is routed out of another interface (see
    /// the module docs).
    pub async fn add_proxy_arp(&self, addr: Ipv4Addr, ifname: &str) -> io::Result<()> {
        let op = format!("add proxy ARP for {addr}");
        let index = self
            .ifindex(ifname)
            .await
            .map_err(|e| context(ifname, &op, e))?;
        match self
            .request(
                RouteNetlinkMessage::NewNeighbour(proxy_message(addr, index)),
                NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(context(ifname, &op, e)),
        }
    }

    /// Stop answering ARP for `addr` on `ifname` (`ip neigh del proxy ADDR
    /// dev IF`). Already absent, or the interface gone, is not an error.
    pub async fn del_proxy_arp(&self, addr: Ipv4Addr, ifname: &str) -> io::Result<()> {
        let op = format!("delete proxy ARP for {addr}");
        let index = match self.ifindex(ifname).await {
            Ok(index) => index,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(context(ifname, &op, e)),
        };
        match self
            .request(
                RouteNetlinkMessage::DelNeighbour(proxy_message(addr, index)),
                NLM_F_REQUEST | NLM_F_ACK,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            Err(e) => Err(context(ifname, &op, e)),
        }
    }

    /// The IPv4 proxy entries of this namespace, as (address, interface
    /// index) (`ip -4 neigh show proxy`).
    pub async fn proxy_arp_entries(&self) -> io::Result<Vec<(Ipv4Addr, u32)>> {
        let mut request = NeighbourMessage::default();
        request.header.family = AddressFamily::Inet;
        // NTF_PROXY in a dump request asks for the proxy table
        // (neigh_dump_info in net/core/neighbour.c).
        request.header.flags = vec![NeighbourFlag::Proxy];
        let answers = self
            .request(
                RouteNetlinkMessage::GetNeighbour(request),
                NLM_F_REQUEST | NLM_F_DUMP,
            )
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("list proxy ARP entries: {e}")))?;
        Ok(answers
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewNeighbour(n)
                    if n.header.flags.contains(&NeighbourFlag::Proxy) =>
                {
                    n.attributes.iter().find_map(|a| match a {
                        NeighbourAttribute::Destination(NeighbourAddress::Inet(addr)) => {
                            Some((*addr, n.header.ifindex))
                        }
                        _ => None,
                    })
                }
                _ => None,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32, name: &str, arp_capable: bool) -> Candidate {
        Candidate {
            index,
            name: name.to_owned(),
            arp_capable,
        }
    }

    fn net(s: &str) -> Ipv4Net {
        // Interface addresses have host bits set: build by hand.
        let (a, p) = s.split_once('/').unwrap();
        Ipv4Net {
            addr: a.parse().unwrap(),
            prefix: p.parse().unwrap(),
        }
    }

    #[test]
    fn flags_as_pppd_tests_them() {
        use LinkFlag::*;
        assert!(arp_capable(&[Up, Broadcast, Multicast, Running]));
        assert!(!arp_capable(&[Broadcast, Multicast]), "down");
        assert!(!arp_capable(&[Up, Pointopoint, Noarp]), "a tun");
        assert!(!arp_capable(&[Up, Loopback]));
        assert!(!arp_capable(&[Up, Broadcast, Noarp]), "a dummy");
        assert!(!arp_capable(&[Up]), "no broadcast");
    }

    #[test]
    fn longest_subnet_on_an_arp_interface_wins() {
        let links = [
            link(1, "lo", false),
            link(2, "eth0", true),
            link(3, "eth1", true),
            link(4, "tun0", false),
            link(5, "eth2", true),
            link(6, "down0", false),
        ];
        let addresses = [
            (1, net("127.0.0.1/8")),
            (2, net("192.168.77.1/24")),
            (3, net("192.168.0.1/16")),
            (4, net("192.168.77.1/32")),
            (5, net("10.0.0.1/8")),
            (6, net("192.168.77.129/25")),
        ];
        let peer: Ipv4Addr = "192.168.77.200".parse().unwrap();
        assert_eq!(
            choose(peer, "tun0", &links, &addresses).as_deref(),
            Some("eth0")
        );
        // The /25 of a down interface and the tun's /32 never count.
        assert_eq!(
            choose(peer, "eth0", &links, &addresses).as_deref(),
            Some("eth1"),
            "excluded by name, the next longest"
        );
        assert_eq!(
            choose("172.16.0.9".parse().unwrap(), "tun0", &links, &addresses),
            None
        );
        assert_eq!(
            choose("127.0.0.2".parse().unwrap(), "tun0", &links, &addresses),
            None,
            "loopback"
        );
        // Equal networks: the lower index.
        let twins = [(5, net("192.168.1.2/24")), (3, net("192.168.1.3/24"))];
        assert_eq!(
            choose("192.168.1.9".parse().unwrap(), "", &links, &twins).as_deref(),
            Some("eth1")
        );
        // A default-sized network is not a subnet.
        let everything = [(2, net("0.0.0.0/0"))];
        assert_eq!(choose(peer, "", &links, &everything), None);
    }

    #[test]
    fn proxy_entries_carry_ntf_proxy() {
        let m = proxy_message("192.168.77.50".parse().unwrap(), 7);
        assert_eq!(m.header.ifindex, 7);
        assert_eq!(m.header.family, AddressFamily::Inet);
        assert_eq!(m.header.flags, vec![NeighbourFlag::Proxy]);
        assert_eq!(
            m.attributes,
            vec![NeighbourAttribute::Destination(NeighbourAddress::Inet(
                "192.168.77.50".parse().unwrap()
            ))]
        );
    }
}
