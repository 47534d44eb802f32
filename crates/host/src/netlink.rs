//! Links, addresses and routes over rtnetlink.

use std::io;
use std::net::Ipv4Addr;

/// An IPv4 network, e.g. 192.168.253.0/24.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    /// Network address.
    pub addr: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub prefix: u8,
}

/// A handle on the current network namespace's rtnetlink.
pub struct Netlink {
    _private: (),
}

impl Netlink {
    /// Open a netlink connection (spawns its driver task on the current runtime).
    pub fn new() -> io::Result<Netlink> {
        todo!("H3")
    }

    /// Set the MTU and bring the interface up.
    pub async fn link_up(&self, ifname: &str, mtu: u32) -> io::Result<()> {
        let _ = (ifname, mtu);
        todo!("H3")
    }

    /// Point-to-point address: `local peer peer/32` (like `ip addr add L peer P dev IF`).
    pub async fn add_address_ptp(&self, ifname: &str, local: Ipv4Addr, peer: Ipv4Addr) -> io::Result<()> {
        let _ = (ifname, local, peer);
        todo!("H3")
    }

    /// Route `dest` via the interface (device route, scope link).
    /// Already-present is not an error.
    pub async fn add_route(&self, dest: Ipv4Net, ifname: &str) -> io::Result<()> {
        let _ = (dest, ifname);
        todo!("H3")
    }

    /// Remove a route added by `add_route`. Already-absent is not an error.
    pub async fn del_route(&self, dest: Ipv4Net, ifname: &str) -> io::Result<()> {
        let _ = (dest, ifname);
        todo!("H3")
    }

    /// Routes currently in the main table through `ifname`.
    pub async fn routes_via(&self, ifname: &str) -> io::Result<Vec<Ipv4Net>> {
        let _ = ifname;
        todo!("H3")
    }
}
