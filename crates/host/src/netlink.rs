//! Links, addresses and routes over rtnetlink (RFC 3549, `rtnetlink(7)`).
//!
//! Each operation is one request on the `NETLINK_ROUTE` socket opened by
//! [`Netlink::new`]; the socket belongs to the network namespace the calling
//! thread was in at that moment, and so do all the changes made through it.
//!
//! Routes added here carry the protocol number [`ROUTE_PROTOCOL`] (shown by
//! `ip route` as `proto 84`), so that they can be told apart from routes an
//! operator added by hand: [`Netlink::del_route`] removes only ours.
//!
//! Errors are `io::Error`s whose message names the interface and the
//! operation, e.g. `ts-labs: add route 10.1.0.0/24: Network is unreachable`.
//!
//! IPv6 on a PPP link (RFC 5072 section 5): once IPV6CP has agreed the two
//! interface identifiers, the link-local pair goes on the tun as a
//! point-to-point address ([`Netlink::add_address6_ptp`]), after
//! [`enable_ipv6`] and [`Netlink::set_addrgenmode_none`] have made sure the
//! kernel takes IPv6 on the device without inventing a link-local of its own.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use futures::StreamExt;
use netlink_packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::AddressHeaderFlag;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{AfSpecInet6, AfSpecUnspec, LinkAttribute, LinkFlag, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

/// The `rtm_protocol` of routes tsunagi installs. Numbers below 5 belong to
/// the kernel (`RTPROT_*` in `linux/rtnetlink.h`); 84 (`'T'`) is not taken
/// by any routing daemon in iproute2's `rt_protos`.
pub const ROUTE_PROTOCOL: u8 = 84;

/// An IPv4 network, e.g. 192.168.253.0/24.
///
/// Parsing (`"192.168.253.0/24".parse()`) is strict: host bits set after the
/// prefix (`192.168.253.1/24`) are an error rather than silently masked,
/// because in a config file they are almost always a typo for a host or for
/// another prefix length. A bare address (`10.0.0.1`) means `/32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    /// Network address.
    pub addr: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub prefix: u8,
}

/// Why a string or a pair (address, prefix) is not an [`Ipv4Net`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Ipv4NetError {
    /// The part before `/` is not a dotted-quad IPv4 address.
    #[error("network {input:?}: address {address:?} is not an IPv4 address")]
    BadAddress { input: String, address: String },
    /// The part after `/` is not a decimal number.
    #[error("network {input:?}: prefix length {prefix:?} is not a number")]
    BadPrefix { input: String, prefix: String },
    /// The prefix length is above 32.
    #[error("network {input:?}: prefix length {prefix} is longer than 32")]
    PrefixTooLong { input: String, prefix: u32 },
    /// Bits are set in the address beyond the prefix length.
    #[error("network {input:?}: host bits set after the prefix; the network is {network}")]
    HostBitsSet { input: String, network: Ipv4Net },
}

impl Ipv4Net {
    /// A network from its address and prefix length, with the same checks
    /// as parsing: prefix at most 32, no host bits set.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Ipv4Net, Ipv4NetError> {
        let input = || format!("{addr}/{prefix}");
        if prefix > 32 {
            return Err(Ipv4NetError::PrefixTooLong {
                input: input(),
                prefix: prefix.into(),
            });
        }
        let net = Ipv4Net { addr, prefix };
        if net.network() != addr {
            return Err(Ipv4NetError::HostBitsSet {
                input: input(),
                network: Ipv4Net {
                    addr: net.network(),
                    prefix,
                },
            });
        }
        Ok(net)
    }

    /// A single host, `addr/32`.
    pub fn host(addr: Ipv4Addr) -> Ipv4Net {
        Ipv4Net { addr, prefix: 32 }
    }

    /// The netmask, e.g. 255.255.255.0 for /24 (0.0.0.0 for /0).
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(mask_bits(self.prefix))
    }

    /// The address with the host bits cleared.
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & mask_bits(self.prefix))
    }

    /// Whether `ip` lies inside this network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask_bits(self.prefix) == u32::from(self.network())
    }

    /// Checked form for the kernel: prefix ≤ 32 and no host bits, since the
    /// fields are public and may have been filled in by hand.
    fn check(&self) -> io::Result<()> {
        Ipv4Net::new(self.addr, self.prefix)
            .map(|_| ())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
    }
}

fn mask_bits(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p if p >= 32 => u32::MAX,
        p => u32::MAX << (32 - u32::from(p)),
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = Ipv4NetError;

    fn from_str(input: &str) -> Result<Ipv4Net, Ipv4NetError> {
        let (address, prefix) = match input.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (input, None),
        };
        let addr: Ipv4Addr = address.parse().map_err(|_| Ipv4NetError::BadAddress {
            input: input.to_owned(),
            address: address.to_owned(),
        })?;
        let prefix: u32 = match prefix {
            None => 32,
            // u32::from_str accepts a leading '+'; a prefix never has one.
            Some(p) if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(Ipv4NetError::BadPrefix {
                    input: input.to_owned(),
                    prefix: p.to_owned(),
                })
            }
            Some(p) => p.parse().map_err(|_| Ipv4NetError::BadPrefix {
                input: input.to_owned(),
                prefix: p.to_owned(),
            })?,
        };
        let prefix = u8::try_from(prefix)
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| Ipv4NetError::PrefixTooLong {
                input: input.to_owned(),
                prefix,
            })?;
        Ipv4Net::new(addr, prefix).map_err(|e| match e {
            Ipv4NetError::HostBitsSet { network, .. } => Ipv4NetError::HostBitsSet {
                input: input.to_owned(),
                network,
            },
            other => other,
        })
    }
}

/// An IPv4 address on an interface, as `ip -4 addr show` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceAddress {
    /// `IFA_LOCAL`: our address.
    pub local: Ipv4Addr,
    /// `IFA_ADDRESS`: the peer on a point-to-point link, else equal to `local`.
    pub address: Ipv4Addr,
    /// Prefix length of `address`.
    pub prefix: u8,
}

/// `IN6_ADDR_GEN_MODE_NONE` (`linux/if_link.h`): the kernel generates no
/// link-local address of its own on the device (`ip link set IF addrgenmode
/// none`).
const IN6_ADDR_GEN_MODE_NONE: u8 = 1;

/// Turn IPv6 on for `ifname` if the kernel has it off there: writes 0 to
/// `/proc/sys/net/ipv6/conf/IF/disable_ipv6` when it reads 1 (as
/// `sysctl -w net.ipv6.conf.IF.disable_ipv6=0`), in the network namespace
/// of the calling thread. Whether it had to (`true`) or IPv6 was on
/// already (`false`).
///
/// A new device copies `net.ipv6.conf.default.disable_ipv6`, which some
/// hosts set to 1; without IPv6 on the device the kernel refuses its
/// addresses. An interface name that is not one (`/`, `.`, `..`, longer
/// than `IFNAMSIZ - 1`) is `InvalidInput`: it becomes a path.
pub fn enable_ipv6(ifname: &str) -> io::Result<bool> {
    if ifname.is_empty()
        || ifname.len() >= libc::IFNAMSIZ
        || ifname == "."
        || ifname == ".."
        || ifname.contains('/')
        || ifname.contains(char::is_whitespace)
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{ifname:?}: not an interface name"),
        ));
    }
    let path = format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6");
    let op = |e: io::Error, what: &str| {
        io::Error::new(e.kind(), format!("{ifname}: {what} {path}: {e}"))
    };
    let current = std::fs::read_to_string(&path).map_err(|e| op(e, "read"))?;
    if current.trim() == "0" {
        return Ok(false);
    }
    std::fs::write(&path, "0\n").map_err(|e| op(e, "write 0 to"))?;
    Ok(true)
}

/// An IPv6 address on an interface, as `ip -6 addr show` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceAddress6 {
    /// `IFA_LOCAL` (or `IFA_ADDRESS` when there is no `IFA_LOCAL`): our address.
    pub local: Ipv6Addr,
    /// The peer on a point-to-point address (`IFA_ADDRESS` differing from
    /// `IFA_LOCAL`), else `None`.
    pub peer: Option<Ipv6Addr>,
    /// Prefix length.
    pub prefix: u8,
}

/// One route of the main table, as far as tsunagi cares.
#[derive(Debug, Clone, Copy)]
struct MainRoute {
    dest: Ipv4Net,
    gateway: Option<Ipv4Addr>,
    oif: u32,
}

/// A handle on the current network namespace's rtnetlink.
///
/// Share it by reference between tasks; each call is one request (plus an
/// interface-name lookup). The socket's driver task runs on the runtime
/// that called [`Netlink::new`]; once that runtime is gone, calls fail with
/// `BrokenPipe`.
pub struct Netlink {
    handle: rtnetlink::Handle,
}

impl fmt::Debug for Netlink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Netlink").finish_non_exhaustive()
    }
}

/// Wrap an error with the interface and the operation it came from.
pub(crate) fn context(ifname: &str, op: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{ifname}: {op}: {e}"))
}

impl Netlink {
    /// Open a netlink connection (spawns its driver task on the current runtime).
    ///
    /// Must be called inside a tokio runtime; outside one it is an error,
    /// not a panic.
    pub fn new() -> io::Result<Netlink> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| io::Error::other(format!("netlink: open: needs a tokio runtime: {e}")))?;
        let (connection, handle, _multicast) = rtnetlink::new_connection()
            .map_err(|e| io::Error::new(e.kind(), format!("netlink: open NETLINK_ROUTE: {e}")))?;
        runtime.spawn(connection);
        Ok(Netlink { handle })
    }

    /// Send one request and collect the answers. A NACK becomes the errno
    /// as an `io::Error`; the ACK (error code 0) ends the exchange.
    pub(crate) async fn request(
        &self,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        let mut request = NetlinkMessage::from(message);
        request.header.flags = flags;
        let mut responses = self
            .handle
            .clone()
            .request(request)
            .map_err(|e| io::Error::new(io::ErrorKind::BrokenPipe, e.to_string()))?;
        let mut answers = Vec::new();
        while let Some(response) = responses.next().await {
            match response.payload {
                NetlinkPayload::InnerMessage(inner) => answers.push(inner),
                NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io()),
                NetlinkPayload::Error(_ack) => break,
                NetlinkPayload::Done(_) => break,
                NetlinkPayload::Overrun(_) => {
                    return Err(io::Error::other("netlink answer overran the socket buffer"))
                }
                _ => {}
            }
        }
        Ok(answers)
    }

    /// The interface index of `ifname`; `ErrorKind::NotFound` if there is none.
    pub async fn ifindex(&self, ifname: &str) -> io::Result<u32> {
        let mut message = LinkMessage::default();
        message
            .attributes
            .push(LinkAttribute::IfName(ifname.to_owned()));
        let answers = self
            .request(RouteNetlinkMessage::GetLink(message), NLM_F_REQUEST)
            .await
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::ENODEV) {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{ifname}: no such interface"),
                    )
                } else {
                    context(ifname, "look up interface", e)
                }
            })?;
        answers
            .into_iter()
            .find_map(|m| match m {
                RouteNetlinkMessage::NewLink(link) if link.header.index != 0 => {
                    Some(link.header.index)
                }
                _ => None,
            })
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{ifname}: no such interface"),
                )
            })
    }

    /// Whether an interface called `ifname` exists in this namespace.
    pub async fn link_exists(&self, ifname: &str) -> io::Result<bool> {
        match self.ifindex(ifname).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Set the MTU and bring the interface up (`ip link set IF mtu M up`).
    pub async fn link_up(&self, ifname: &str, mtu: u32) -> io::Result<()> {
        let index = self.ifindex(ifname).await?;
        let mut message = LinkMessage::default();
        message.header.index = index;
        message.header.flags = vec![LinkFlag::Up];
        message.header.change_mask = vec![LinkFlag::Up];
        message.attributes.push(LinkAttribute::Mtu(mtu));
        self.request(
            RouteNetlinkMessage::SetLink(message),
            NLM_F_REQUEST | NLM_F_ACK,
        )
        .await
        .map_err(|e| context(ifname, &format!("set mtu {mtu} and up"), e))?;
        Ok(())
    }

    /// The length of the interface's transmit queue (`ip link set IF
    /// txqueuelen N`): what a tun holds before the kernel drops, while
    /// its reader is busy.
    pub async fn set_txqueuelen(&self, ifname: &str, len: u32) -> io::Result<()> {
        let index = self.ifindex(ifname).await?;
        let mut message = LinkMessage::default();
        message.header.index = index;
        message.attributes.push(LinkAttribute::TxQueueLen(len));
        self.request(
            RouteNetlinkMessage::SetLink(message),
            NLM_F_REQUEST | NLM_F_ACK,
        )
        .await
        .map_err(|e| context(ifname, &format!("set txqueuelen {len}"), e))?;
        Ok(())
    }

    /// Bring the interface down (`ip link set IF down`).
    pub async fn link_down(&self, ifname: &str) -> io::Result<()> {
        let index = self.ifindex(ifname).await?;
        let mut message = LinkMessage::default();
        message.header.index = index;
        message.header.change_mask = vec![LinkFlag::Up];
        self.request(
            RouteNetlinkMessage::SetLink(message),
            NLM_F_REQUEST | NLM_F_ACK,
        )
        .await
        .map_err(|e| context(ifname, "set down", e))?;
        Ok(())
    }

    /// Point-to-point address: `local peer peer/32` (like `ip addr add L peer P dev IF`).
    ///
    /// The kernel then adds the device route to `peer/32` by itself
    /// (`proto kernel scope link`). The same address already present is not
    /// an error, so a redial can call this again.
    pub async fn add_address_ptp(
        &self,
        ifname: &str,
        local: Ipv4Addr,
        peer: Ipv4Addr,
    ) -> io::Result<()> {
        self.add_ptp(ifname, IpAddr::V4(local), IpAddr::V4(peer))
            .await
    }

    /// Remove an address added by `add_address_ptp`. Already-absent (or the
    /// interface gone) is not an error.
    pub async fn del_address_ptp(
        &self,
        ifname: &str,
        local: Ipv4Addr,
        peer: Ipv4Addr,
    ) -> io::Result<()> {
        self.del_ptp(ifname, IpAddr::V4(local), IpAddr::V4(peer))
            .await
    }

    /// `local peer peer/32` or `local/128 peer peer/128`: `IFA_LOCAL` is
    /// ours, `IFA_ADDRESS` the peer's (`rtnetlink(7)`, and for IPv6
    /// `inet6_rtm_newaddr`'s `extract_addr` in the kernel). IPv6 without
    /// duplicate address detection: the identifiers were agreed with the
    /// only other node on the link (RFC 5072 section 4.1).
    fn ptp_address_message(index: u32, local: IpAddr, peer: IpAddr) -> AddressMessage {
        let mut message = AddressMessage::default();
        message.header.index = index;
        if local.is_ipv4() {
            message.header.family = AddressFamily::Inet;
            message.header.prefix_len = 32;
        } else {
            message.header.family = AddressFamily::Inet6;
            message.header.prefix_len = 128;
            message.header.flags = vec![AddressHeaderFlag::Nodad];
        }
        message.attributes.push(AddressAttribute::Local(local));
        message.attributes.push(AddressAttribute::Address(peer));
        message
    }

    /// Adds [`Netlink::ptp_address_message`]; EEXIST (a redial or a
    /// renegotiation adding it again) is success.
    async fn add_ptp(&self, ifname: &str, local: IpAddr, peer: IpAddr) -> io::Result<()> {
        let index = self.ifindex(ifname).await?;
        let message = Self::ptp_address_message(index, local, peer);
        let prefix = message.header.prefix_len;
        match self
            .request(
                RouteNetlinkMessage::NewAddress(message),
                NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(context(
                ifname,
                &format!("add address {local} peer {peer}/{prefix}"),
                e,
            )),
        }
    }

    /// Deletes what [`Netlink::add_ptp`] added. Not an error: the interface
    /// gone, no such address (EADDRNOTAVAIL), or no state for the family on
    /// the device any more (ENODEV: IPv6 turned off, MTU below 1280), so
    /// neither has it the address.
    async fn del_ptp(&self, ifname: &str, local: IpAddr, peer: IpAddr) -> io::Result<()> {
        let index = match self.ifindex(ifname).await {
            Ok(index) => index,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let message = Self::ptp_address_message(index, local, peer);
        let prefix = message.header.prefix_len;
        match self
            .request(
                RouteNetlinkMessage::DelAddress(message),
                NLM_F_REQUEST | NLM_F_ACK,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.raw_os_error() == Some(libc::EADDRNOTAVAIL)
                    || e.raw_os_error() == Some(libc::ENODEV) =>
            {
                Ok(())
            }
            Err(e) => Err(context(
                ifname,
                &format!("delete address {local} peer {peer}/{prefix}"),
                e,
            )),
        }
    }

    /// Stop the kernel from adding a link-local address of its own to
    /// `ifname` (`ip link set IF addrgenmode none`).
    ///
    /// On a tun (no hardware address) the kernel otherwise invents a random
    /// `fe80::/64` address when the device comes up; on a PPP link the
    /// link-local addresses are the ones IPV6CP agreed (RFC 5072 section 5),
    /// and a second, random one would be picked as the source of some
    /// packets. Takes effect when the device next comes up or has IPv6
    /// turned on; call it before [`Netlink::link_up`].
    pub async fn set_addrgenmode_none(&self, ifname: &str) -> io::Result<()> {
        let index = self.ifindex(ifname).await?;
        let mut message = LinkMessage::default();
        message.header.index = index;
        message
            .attributes
            .push(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
                vec![AfSpecInet6::AddrGenMode(IN6_ADDR_GEN_MODE_NONE)],
            )]));
        self.request(
            RouteNetlinkMessage::SetLink(message),
            NLM_F_REQUEST | NLM_F_ACK,
        )
        .await
        .map_err(|e| context(ifname, "set addrgenmode none", e))?;
        Ok(())
    }

    /// Point-to-point IPv6 address: `local peer peer/128` (like `ip -6 addr
    /// add fe80::1 peer fe80::2 dev IF`), for the link-local pair of an
    /// opened IPV6CP.
    ///
    /// The kernel then routes `peer/128` through the device by itself, so
    /// `ping fe80::2%IF` works. The same address already present is not an
    /// error (a renegotiation may call this again). IPv6 must be on for the
    /// device ([`enable_ipv6`]) and its MTU at least 1280 (RFC 8200 section
    /// 5), else the kernel has no IPv6 state for it and refuses.
    pub async fn add_address6_ptp(
        &self,
        ifname: &str,
        local: Ipv6Addr,
        peer: Ipv6Addr,
    ) -> io::Result<()> {
        self.add_ptp(ifname, IpAddr::V6(local), IpAddr::V6(peer))
            .await
    }

    /// Remove an address added by [`Netlink::add_address6_ptp`].
    /// Already-absent (or the interface gone) is not an error.
    pub async fn del_address6_ptp(
        &self,
        ifname: &str,
        local: Ipv6Addr,
        peer: Ipv6Addr,
    ) -> io::Result<()> {
        self.del_ptp(ifname, IpAddr::V6(local), IpAddr::V6(peer))
            .await
    }

    /// The IPv6 addresses on `ifname` (the kernel's own among them).
    pub async fn addresses6(&self, ifname: &str) -> io::Result<Vec<InterfaceAddress6>> {
        let index = self.ifindex(ifname).await?;
        let mut message = AddressMessage::default();
        message.header.family = AddressFamily::Inet6;
        let answers = self
            .request(
                RouteNetlinkMessage::GetAddress(message),
                NLM_F_REQUEST | NLM_F_DUMP,
            )
            .await
            .map_err(|e| context(ifname, "list IPv6 addresses", e))?;
        let mut found = Vec::new();
        for answer in answers {
            let RouteNetlinkMessage::NewAddress(a) = answer else {
                continue;
            };
            if a.header.index != index || a.header.family != AddressFamily::Inet6 {
                continue;
            }
            let mut local = None;
            let mut address = None;
            for attribute in &a.attributes {
                match attribute {
                    AddressAttribute::Local(IpAddr::V6(l)) => local = Some(*l),
                    AddressAttribute::Address(IpAddr::V6(p)) => address = Some(*p),
                    _ => {}
                }
            }
            let (local, peer) = match (local, address) {
                (Some(l), Some(p)) if l != p => (l, Some(p)),
                (Some(l), _) => (l, None),
                (None, Some(p)) => (p, None),
                (None, None) => continue,
            };
            found.push(InterfaceAddress6 {
                local,
                peer,
                prefix: a.header.prefix_len,
            });
        }
        Ok(found)
    }

    /// The IPv4 addresses on `ifname`.
    pub async fn addresses(&self, ifname: &str) -> io::Result<Vec<InterfaceAddress>> {
        let index = self.ifindex(ifname).await?;
        let all = self
            .all_addresses()
            .await
            .map_err(|e| context(ifname, "list addresses", e))?;
        Ok(all
            .into_iter()
            .filter(|(i, _)| *i == index)
            .map(|(_, a)| a)
            .collect())
    }

    /// What the peer of the link on `ifname` must not take as its address
    /// (RFC 1332 leaves it to the implementation which addresses it
    /// accepts): every network the main table routes through another
    /// interface (connected and routed LANs, other links' peers; default
    /// routes aside) and every address of this host. A peer on one of
    /// them would draw that host's or network's traffic into the tunnel.
    pub async fn reserved_for_peer_of(&self, ifname: &str) -> io::Result<Vec<Ipv4Net>> {
        let index = self.ifindex(ifname).await?;
        let routes = self
            .main_routes()
            .await
            .map_err(|e| context(ifname, "list routes", e))?;
        let mut reserved: Vec<Ipv4Net> = routes
            .into_iter()
            .filter(|r| r.oif != index && r.dest.prefix > 0)
            .map(|r| r.dest)
            .collect();
        let addresses = self
            .all_addresses()
            .await
            .map_err(|e| context(ifname, "list addresses", e))?;
        reserved.extend(
            addresses
                .into_iter()
                .flat_map(|(_, a)| [Ipv4Net::host(a.local), Ipv4Net::host(a.address)]),
        );
        reserved.sort_by_key(|n| (n.addr, n.prefix));
        reserved.dedup();
        Ok(reserved)
    }

    /// Every IPv4 address of this namespace, with its interface's index.
    pub(crate) async fn all_addresses(&self) -> io::Result<Vec<(u32, InterfaceAddress)>> {
        let mut message = AddressMessage::default();
        message.header.family = AddressFamily::Inet;
        let answers = self
            .request(
                RouteNetlinkMessage::GetAddress(message),
                NLM_F_REQUEST | NLM_F_DUMP,
            )
            .await?;
        let mut found = Vec::new();
        for answer in answers {
            let RouteNetlinkMessage::NewAddress(a) = answer else {
                continue;
            };
            if a.header.family != AddressFamily::Inet {
                continue;
            }
            let mut local = None;
            let mut address = None;
            for attribute in &a.attributes {
                match attribute {
                    AddressAttribute::Local(IpAddr::V4(l)) => local = Some(*l),
                    AddressAttribute::Address(IpAddr::V4(p)) => address = Some(*p),
                    _ => {}
                }
            }
            if let Some(address) = address.or(local) {
                found.push((
                    a.header.index,
                    InterfaceAddress {
                        local: local.unwrap_or(address),
                        address,
                        prefix: a.header.prefix_len,
                    },
                ));
            }
        }
        Ok(found)
    }

    /// A route message: `dest [via GW] dev IF proto 84 table main`, scope
    /// link for a device route, universe for one through a gateway.
    fn route_message(
        dest: Ipv4Net,
        gateway: Option<Ipv4Addr>,
        index: u32,
        scope: RouteScope,
    ) -> RouteMessage {
        let mut message = RouteMessage::default();
        message.header.address_family = AddressFamily::Inet;
        message.header.destination_prefix_length = dest.prefix;
        message.header.table = RouteHeader::RT_TABLE_MAIN;
        message.header.protocol = RouteProtocol::Other(ROUTE_PROTOCOL);
        message.header.scope = scope;
        message.header.kind = RouteType::Unicast;
        if dest.prefix > 0 {
            message
                .attributes
                .push(RouteAttribute::Destination(RouteAddress::Inet(dest.addr)));
        }
        if let Some(gateway) = gateway {
            message
                .attributes
                .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        }
        message.attributes.push(RouteAttribute::Oif(index));
        message
    }

    /// Route `dest` via the interface (device route, scope link).
    /// Already-present is not an error.
    ///
    /// "Already present" means a route to `dest` in the main table through
    /// this same interface (ours, or the kernel's route to a ptp peer). A
    /// route to `dest` through another interface is a conflict and an error
    /// (`AlreadyExists`) naming it: taking it over silently could cut off
    /// the host.
    pub async fn add_route(&self, dest: Ipv4Net, ifname: &str) -> io::Result<()> {
        self.add_route_inner(dest, None, ifname).await
    }

    /// Route `dest` through `gateway` on `ifname` (`ip route add DEST via GW
    /// dev IF`), for a LAN behind a router on a broadcast interface. The
    /// same route already present is not an error; a route to `dest`
    /// through another interface or gateway is (`AlreadyExists`).
    /// [`Netlink::del_route`] removes it.
    pub async fn add_route_via_gateway(
        &self,
        dest: Ipv4Net,
        gateway: Ipv4Addr,
        ifname: &str,
    ) -> io::Result<()> {
        self.add_route_inner(dest, Some(gateway), ifname).await
    }

    async fn add_route_inner(
        &self,
        dest: Ipv4Net,
        gateway: Option<Ipv4Addr>,
        ifname: &str,
    ) -> io::Result<()> {
        let op = || match gateway {
            Some(gateway) => format!("add route {dest} via {gateway}"),
            None => format!("add route {dest}"),
        };
        dest.check().map_err(|e| context(ifname, &op(), e))?;
        let index = self.ifindex(ifname).await?;
        let scope = match gateway {
            Some(_) => RouteScope::Universe,
            None => RouteScope::Link,
        };
        let message = Self::route_message(dest, gateway, index, scope);
        let e = match self
            .request(
                RouteNetlinkMessage::NewRoute(message),
                NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            )
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => e,
            Err(e) => return Err(context(ifname, &op(), e)),
        };
        // EEXIST: some route to `dest` with the same metric is in the table.
        // Ours (same interface, same gateway) is fine; anything else is not.
        let existing: Vec<MainRoute> = self
            .main_routes()
            .await
            .map_err(|e| context(ifname, &op(), e))?
            .into_iter()
            .filter(|r| r.dest == dest)
            .collect();
        if existing
            .iter()
            .any(|r| r.oif == index && (gateway.is_none() || r.gateway == gateway))
        {
            return Ok(());
        }
        let mut through = Vec::new();
        for route in &existing {
            let name = self
                .ifname_of(route.oif)
                .await
                .unwrap_or_else(|_| format!("ifindex {}", route.oif));
            through.push(match route.gateway {
                Some(gw) => format!("via {gw} dev {name}"),
                None => format!("dev {name}"),
            });
        }
        let through = if through.is_empty() {
            e.to_string()
        } else {
            format!("a route to {dest} already exists {}", through.join(", "))
        };
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{ifname}: {}: {through}", op()),
        ))
    }

    /// The name of the interface with index `index`.
    async fn ifname_of(&self, index: u32) -> io::Result<String> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        let answers = self
            .request(RouteNetlinkMessage::GetLink(message), NLM_F_REQUEST)
            .await?;
        answers
            .into_iter()
            .find_map(|m| match m {
                RouteNetlinkMessage::NewLink(link) => {
                    link.attributes.into_iter().find_map(|a| match a {
                        LinkAttribute::IfName(name) => Some(name),
                        _ => None,
                    })
                }
                _ => None,
            })
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such interface"))
    }

    /// Remove a route added by `add_route`. Already-absent is not an error.
    ///
    /// Only a route with tsunagi's protocol number ([`ROUTE_PROTOCOL`]) is
    /// removed, never an operator's or the kernel's route to the same place.
    /// If the interface is gone, so are its routes: that is not an error.
    /// A route from [`Netlink::add_route_via_gateway`] is removed too (the
    /// kernel matches any gateway when none is given).
    pub async fn del_route(&self, dest: Ipv4Net, ifname: &str) -> io::Result<()> {
        let op = || format!("delete route {dest}");
        dest.check().map_err(|e| context(ifname, &op(), e))?;
        let index = match self.ifindex(ifname).await {
            Ok(index) => index,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        // Scope "nowhere" is the wildcard for deletion (as `ip route del`).
        let message = Self::route_message(dest, None, index, RouteScope::NoWhere);
        match self
            .request(
                RouteNetlinkMessage::DelRoute(message),
                NLM_F_REQUEST | NLM_F_ACK,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            Err(e) => Err(context(ifname, &op(), e)),
        }
    }

    /// All IPv4 unicast single-path routes in the main table.
    async fn main_routes(&self) -> io::Result<Vec<MainRoute>> {
        let mut message = RouteMessage::default();
        message.header.address_family = AddressFamily::Inet;
        let answers = self
            .request(
                RouteNetlinkMessage::GetRoute(message),
                NLM_F_REQUEST | NLM_F_DUMP,
            )
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("list routes: {e}")))?;
        let mut routes = Vec::new();
        for answer in answers {
            let RouteNetlinkMessage::NewRoute(route) = answer else {
                continue;
            };
            if route.header.address_family != AddressFamily::Inet
                || route.header.kind != RouteType::Unicast
            {
                continue;
            }
            let mut table = u32::from(route.header.table);
            let mut dest = Ipv4Addr::UNSPECIFIED;
            let mut oif = None;
            let mut gateway = None;
            for attribute in &route.attributes {
                match attribute {
                    RouteAttribute::Table(t) => table = *t,
                    RouteAttribute::Destination(RouteAddress::Inet(d)) => dest = *d,
                    RouteAttribute::Gateway(RouteAddress::Inet(g)) => gateway = Some(*g),
                    RouteAttribute::Oif(o) => oif = Some(*o),
                    _ => {}
                }
            }
            if table != u32::from(RouteHeader::RT_TABLE_MAIN) {
                continue;
            }
            let Some(oif) = oif else { continue };
            let prefix = route.header.destination_prefix_length.min(32);
            routes.push(MainRoute {
                dest: Ipv4Net { addr: dest, prefix },
                gateway,
                oif,
            });
        }
        Ok(routes)
    }

    /// Routes currently in the main table through `ifname`.
    ///
    /// All IPv4 unicast routes through it, whoever added them (the kernel's
    /// route to a ptp peer is among them); multipath routes are not listed.
    pub async fn routes_via(&self, ifname: &str) -> io::Result<Vec<Ipv4Net>> {
        let index = self.ifindex(ifname).await?;
        let routes = self
            .main_routes()
            .await
            .map_err(|e| context(ifname, "list routes", e))?;
        Ok(routes
            .into_iter()
            .filter(|r| r.oif == index)
            .map(|r| r.dest)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn parses_networks() {
        assert_eq!(
            net("192.168.253.0/24"),
            Ipv4Net {
                addr: Ipv4Addr::new(192, 168, 253, 0),
                prefix: 24
            }
        );
        assert_eq!(net("0.0.0.0/0").prefix, 0);
        assert_eq!(net("10.0.0.1/32").addr, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(net("10.0.0.1"), Ipv4Net::host(Ipv4Addr::new(10, 0, 0, 1)));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "192.168.253.0/24",
            "0.0.0.0/0",
            "10.0.0.1/32",
            "172.16.0.0/12",
        ] {
            assert_eq!(net(s).to_string(), s);
        }
    }

    #[test]
    fn prefix_too_long_names_the_prefix() {
        let err = "10.0.0.0/33".parse::<Ipv4Net>().unwrap_err();
        assert!(matches!(
            err,
            Ipv4NetError::PrefixTooLong { prefix: 33, .. }
        ));
        let msg = err.to_string();
        assert!(msg.contains("33") && msg.contains("prefix"), "{msg}");
        let err = "10.0.0.0/4294967296".parse::<Ipv4Net>().unwrap_err();
        assert!(matches!(err, Ipv4NetError::BadPrefix { .. }), "{err}");
        assert!(Ipv4Net::new(Ipv4Addr::UNSPECIFIED, 33).is_err());
    }

    #[test]
    fn host_bits_are_an_error_naming_the_network() {
        let err = "192.168.253.1/24".parse::<Ipv4Net>().unwrap_err();
        assert_eq!(
            err,
            Ipv4NetError::HostBitsSet {
                input: "192.168.253.1/24".into(),
                network: net("192.168.253.0/24"),
            }
        );
        assert!(err.to_string().contains("192.168.253.0/24"), "{err}");
        assert!(Ipv4Net::new(Ipv4Addr::new(10, 0, 0, 1), 0).is_err());
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "/24",
            "10.0.0/24",
            "10.0.0.256/24",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/-1",
            "10.0.0.0/8/8",
            "10.0.0.0 /8",
            "::1/128",
            "hello",
        ] {
            assert!(bad.parse::<Ipv4Net>().is_err(), "{bad:?} parsed");
        }
        let err = "10.0.0.0/x".parse::<Ipv4Net>().unwrap_err();
        assert!(matches!(err, Ipv4NetError::BadPrefix { ref prefix, .. } if prefix == "x"));
        let err = "10.0.0.300/8".parse::<Ipv4Net>().unwrap_err();
        assert!(
            matches!(err, Ipv4NetError::BadAddress { ref address, .. } if address == "10.0.0.300")
        );
    }

    #[test]
    fn enable_ipv6_refuses_what_is_not_an_interface_name() {
        for bad in ["", ".", "..", "../all", "a/b", "tun 0", "sixteen_chars_xx"] {
            let e = enable_ipv6(bad).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad:?}: {e}");
        }
    }

    #[test]
    fn masks_and_contains() {
        let n = net("172.16.0.0/12");
        assert_eq!(n.netmask(), Ipv4Addr::new(255, 240, 0, 0));
        assert!(n.contains(Ipv4Addr::new(172, 31, 255, 255)));
        assert!(!n.contains(Ipv4Addr::new(172, 32, 0, 0)));
        assert_eq!(net("0.0.0.0/0").netmask(), Ipv4Addr::UNSPECIFIED);
        assert!(net("0.0.0.0/0").contains(Ipv4Addr::new(8, 8, 8, 8)));
        assert_eq!(net("1.2.3.4/32").netmask(), Ipv4Addr::BROADCAST);
    }
}
