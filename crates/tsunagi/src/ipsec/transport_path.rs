//! Transport mode (RFC 4303 s3.1.1) for the host's own traffic, done by a
//! userland ESP: the kernel's packets for a transport-mode conn's
//! selectors are steered into the conn's tun by a policy-routing rule,
//! taken apart there ([`tsunagi_ipsec::transport::split`]) and their
//! upper-layer segment sealed with the upper protocol as ESP's Next
//! Header; an opened transport-mode segment is checked against the SA's
//! selectors and given an IP header again
//! ([`tsunagi_ipsec::transport::rebuild`]) for the tun, the peer's address
//! as we see it as its source.
//!
//! The steering, per transport conn (`TABLE` = [`TRANSPORT_TABLE_BASE`] +
//! the conn's index among the `[ipsec]` sections):
//!
//! ```text
//! ip rule add to RIGHT/32 ipproto P sport LEFTPORT dport RIGHTPORT lookup TABLE priority 900
//! ip route add default dev TUN table TABLE
//! sysctl net.ipv4.conf.TUN.rp_filter=2
//! ```
//!
//! IKE (UDP 500/4500) and ESP (protocol 50) never match a selector for
//! another protocol or other ports, so the driver's own packets are not
//! looped into the tun. The tun's reverse-path filter is loose: a rebuilt
//! packet comes from the peer's address, which the kernel routes out of
//! another interface. Behind a NAT, the peer's checksum covered addresses
//! that are not the ones the rebuilt header carries: `rebuild` computes
//! UDP and TCP checksums again (RFC 3948 s3.1.2).
//!
//! A conn with `right = "%any"` has no destination to match: its rule
//! sends every packet with the selector's protocol and ports into the
//! tun, and those for no SA's peer are dropped (`no_sa`), never sent in
//! the clear.
//!
//! Such a conn serves clients behind NATs, and two clients behind one NAT
//! may have the same private address and ports (two Windows laptops on
//! two home networks behind one carrier-grade NAT, both 192.168.1.10
//! with L2TP from port 1701): rebuilt with the NAT's address as their
//! source, their datagrams would look the same to the host's sockets,
//! and the answers could not be told apart. [`PeerPorts`] gives each
//! client (its outer address and port, its inner port) a source port of
//! its own as the host sees it: its own port while no other client of
//! that address has it, another one else; answers to that port are sealed
//! for that client with its own port put back (libreswan #322 and xl2tpd
//! #82 are what happens without).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::{Range, RangeInclusive};

use tsunagi_host::policy_route::{PolicyRoutes, SelectorRule};
use tsunagi_host::Ipv4Net;
use tsunagi_ipsec::ike::TrafficSelector;
use tsunagi_ipsec::transport::{self, IPV6_HEADER_LEN};

use super::datapath::{ChildKey, Delivered, DropKind, SaTable};
use crate::config::IpsecConn;

/// Transport conns' routing tables are this plus a number from the conn's
/// name (links' `route_table` defaults are 10000..=19999; the kernel's own
/// are 253..=255).
pub const TRANSPORT_TABLE_BASE: u32 = 20_000;

/// The routing table of the transport conn named `name`: from its name
/// only, so that adding a conn renumbers none
/// ([`crate::config::stable_table`]).
pub fn table_of(name: &str) -> u32 {
    crate::config::stable_table(TRANSPORT_TABLE_BASE, name)
}

/// Priority of the selector rules: before the links' source rules
/// (netconf's 1000) and the main table's (32766), after local (0).
pub const TRANSPORT_RULE_PRIORITY: u32 = 900;

/// The rule and table route of one transport conn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Steering {
    /// What goes into the tun.
    pub rule: SelectorRule,
    /// The table with the default route into the tun.
    pub table: u32,
    /// The tun.
    pub tun: String,
}

impl Steering {
    /// The steering of transport conn `settings`.
    pub fn of(settings: &IpsecConn) -> anyhow::Result<Steering> {
        let to = match settings.right {
            Some(IpAddr::V4(r)) => Some(r),
            None => None,
            Some(IpAddr::V6(r)) => {
                anyhow::bail!("right {r}: IPv6 transport mode is not supported yet")
            }
        };
        let (remote_protocol, dport) = settings.rightprotoport;
        let protocol = if settings.leftsubnet.protocol != 0 {
            settings.leftsubnet.protocol
        } else {
            remote_protocol
        };
        Ok(Steering {
            rule: SelectorRule {
                to,
                protocol,
                sport: settings.leftsubnet.port,
                dport,
            },
            table: table_of(&settings.name),
            tun: settings.tun.clone(),
        })
    }

    /// Installs the table's default route into the tun (`oif`), then the
    /// rule, and sets the tun's reverse-path filter loose.
    pub async fn install(&self, routes: &PolicyRoutes, oif: u32) -> std::io::Result<()> {
        tsunagi_host::policy_route::set_rp_filter(&self.tun, 2)?;
        routes
            .add_route(self.table, default_net(), None, oif)
            .await?;
        routes
            .add_selector_rule(&self.rule, self.table, TRANSPORT_RULE_PRIORITY)
            .await
    }

    /// Removes the rule, then the route.
    pub async fn remove(&self, routes: &PolicyRoutes, oif: u32) -> std::io::Result<()> {
        let rule = routes
            .del_selector_rule(&self.rule, self.table, TRANSPORT_RULE_PRIORITY)
            .await;
        let route = routes.del_route(self.table, default_net(), oif).await;
        rule.and(route)
    }
}

fn default_net() -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::UNSPECIFIED, 0).expect("0.0.0.0/0 is a network")
}

/// Whether one end (`port`) of a segment of `protocol` is inside `ts`'s
/// protocol and port (its address is the SA's, checked by the caller).
fn protoport_matches(ts: &TrafficSelector, protocol: u8, port: u16) -> bool {
    (ts.protocol == 0 || ts.protocol == protocol) && (ts.port == 0 || ts.port == port)
}

/// What an outgoing packet of a transport conn is sealed as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// The child that protects it.
    pub key: ChildKey,
    /// The upper-layer segment in the packet.
    pub segment: Range<usize>,
    /// ESP's Next Header: the upper protocol.
    pub next_header: u8,
    /// The peer's own destination port, where [`PeerPorts`] gave it
    /// another one as the host sees it: written back before sealing.
    pub peer_port: Option<u16>,
}

/// The source ports a `right = "%any"` transport conn's clients have as
/// the host's sockets see them (see the module's text).
#[derive(Debug, Default)]
pub struct PeerPorts {
    /// (outer address and port, inner port) -> the port the host sees.
    seen: HashMap<(SocketAddr, u16), u16>,
    /// (address, port the host sees) -> (outer address and port, inner port).
    peers: HashMap<(IpAddr, u16), (SocketAddr, u16)>,
}

/// Where a client's port comes from when its own is another's: the
/// dynamic ports (RFC 6335 s6), which no client's L2TP uses as its own.
const OTHER_PORTS: RangeInclusive<u16> = 49152..=65535;

impl PeerPorts {
    /// The port the host sees for inner port `inner` of the client at
    /// `outer` (given now if it has none); `None` when every port of
    /// [`OTHER_PORTS`] is taken for that address.
    pub fn seen_port(&mut self, outer: SocketAddr, inner: u16) -> Option<u16> {
        if let Some(p) = self.seen.get(&(outer, inner)) {
            return Some(*p);
        }
        let ip = outer.ip();
        let port = if self.peers.contains_key(&(ip, inner)) {
            OTHER_PORTS
                .clone()
                .find(|p| !self.peers.contains_key(&(ip, *p)))?
        } else {
            inner
        };
        self.seen.insert((outer, inner), port);
        self.peers.insert((ip, port), (outer, inner));
        Some(port)
    }

    /// The client (outer address and port, inner port) the host knows as
    /// `ip`, `port`.
    pub fn peer(&self, ip: IpAddr, port: u16) -> Option<(SocketAddr, u16)> {
        self.peers.get(&(ip, port)).copied()
    }

    /// The address and port the host sees for the client at `outer` (its
    /// first inner port's), for status.
    pub fn seen_as(&self, outer: SocketAddr) -> Option<SocketAddr> {
        self.seen
            .iter()
            .filter(|((o, _), _)| *o == outer)
            .map(|(_, p)| SocketAddr::new(outer.ip(), *p))
            .min()
    }

    /// Forgets the clients for which `alive` is false (no SA left); what
    /// the host knew them by.
    pub fn retain(&mut self, alive: impl Fn(SocketAddr) -> bool) -> Vec<SocketAddr> {
        let mut gone = Vec::new();
        self.seen.retain(|(outer, _), _| alive(*outer));
        self.peers.retain(|(ip, port), (outer, _)| {
            let keep = alive(*outer);
            if !keep {
                gone.push(SocketAddr::new(*ip, *port));
            }
            keep
        });
        gone
    }

    /// Clients known.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// No client known.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// RFC 1624 eqn. 3: a 16-bit field of a checksummed segment changed from
/// `old` to `new`; the checksum at `sum` follows.
fn checksum_adjust(sum: [u8; 2], old: u16, new: u16) -> [u8; 2] {
    let hc = u32::from(u16::from_be_bytes(sum));
    let mut acc = u32::from(!(hc as u16)) + u32::from(!old) + u32::from(new);
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    (!(acc as u16)).to_be_bytes()
}

/// Puts the peer's own destination port back into `packet` (from the tun,
/// as [`select`] chose it), the UDP or TCP checksum adjusted.
pub fn restore_peer_port(packet: &mut [u8], o: &Outbound) {
    let Some(port) = o.peer_port else {
        return;
    };
    let seg = o.segment.start;
    let Some(field) = packet.get(seg + 2..seg + 4) else {
        return;
    };
    let old = u16::from_be_bytes([field[0], field[1]]);
    packet[seg + 2..seg + 4].copy_from_slice(&port.to_be_bytes());
    let at = match o.next_header {
        17 => seg + 6,
        6 => seg + 16,
        _ => return,
    };
    if let Some(sum) = packet.get(at..at + 2) {
        let sum = [sum[0], sum[1]];
        // UDP over IPv4: zero is "no checksum" and stays so; a computed
        // zero is sent as all ones (RFC 768).
        if o.next_header == 17 && sum == [0, 0] {
            return;
        }
        let mut new = checksum_adjust(sum, old, port);
        if o.next_header == 17 && new == [0, 0] {
            new = [0xff, 0xff];
        }
        packet[at..at + 2].copy_from_slice(&new);
    }
}

/// The child of transport conn `conn` that protects `packet` (read from
/// its tun): the newest one not retired whose peer is the packet's
/// destination and whose selectors hold its protocol and ports. With
/// `ports` (a `right = "%any"` conn), a UDP or TCP packet goes to the
/// client the host knows by its destination address and port, and to no
/// other.
pub fn select(
    table: &SaTable,
    conn: usize,
    packet: &[u8],
    ports: Option<&PeerPorts>,
) -> Result<Outbound, DropKind> {
    let s = transport::split(packet).map_err(|e| match e {
        transport::TransportError::Version(_) => DropKind::NotIp,
        _ => DropKind::Malformed,
    })?;
    let (peer, dst_port) = match ports {
        Some(ports) if matches!(s.protocol, 6 | 17) => {
            let (outer, inner) = ports.peer(s.dst, s.dst_port).ok_or(DropKind::NoSa)?;
            (Some(outer), inner)
        }
        _ => (None, s.dst_port),
    };
    let mut found = None;
    for (key, child, _) in table.children_of(conn) {
        if child.retired {
            continue;
        }
        let to_peer = match peer {
            Some(outer) => child.remote == outer,
            None => child.remote.ip() == s.dst,
        };
        if to_peer
            && protoport_matches(&child.remote_ts, s.protocol, dst_port)
            && protoport_matches(&child.local_ts, s.protocol, s.src_port)
        {
            found = Some(key);
        }
    }
    found
        .map(|key| Outbound {
            key,
            segment: s.segment.clone(),
            next_header: s.protocol,
            peer_port: (dst_port != s.dst_port).then_some(dst_port),
        })
        .ok_or(DropKind::NoSa)
}

/// Seals what [`select`] chose into `out` (cleared first).
#[cfg(test)]
pub fn seal(
    table: &mut SaTable,
    packet: &[u8],
    o: &Outbound,
    out: &mut Vec<u8>,
) -> Result<(), DropKind> {
    out.clear();
    seal_append(table, packet, o, out)
}

/// Seals what [`select`] chose, appending to what `out` holds (a UDP GSO
/// train); on failure `out` is as it was.
pub fn seal_append(
    table: &mut SaTable,
    packet: &[u8],
    o: &Outbound,
    out: &mut Vec<u8>,
) -> Result<(), DropKind> {
    table.seal_payload_append(o.key, &packet[o.segment.clone()], o.next_header, out)
}

/// The IP packet for the tun from an opened transport-mode segment
/// (`buf[d.payload]`), built in `scratch`: the segment's protocol and
/// ports checked against the SA's selectors (RFC 4301 s5.2), then an IP
/// header from the peer's address as we see it to ours. Refusals are
/// counted.
pub fn inbound<'s>(
    table: &mut SaTable,
    d: &Delivered,
    buf: &[u8],
    scratch: &'s mut Vec<u8>,
    ports: Option<&mut PeerPorts>,
) -> Result<&'s [u8], DropKind> {
    let result = rebuild_checked(table, d, buf, scratch, ports);
    match result {
        Ok(range) => Ok(&scratch[range]),
        Err(kind) => {
            if kind == DropKind::SelectorMismatch {
                table.refuse(d.key, d.payload.len());
            }
            table.count(Some(d.key.conn), kind);
            Err(kind)
        }
    }
}

fn rebuild_checked(
    table: &SaTable,
    d: &Delivered,
    buf: &[u8],
    scratch: &mut Vec<u8>,
    ports: Option<&mut PeerPorts>,
) -> Result<Range<usize>, DropKind> {
    let child = table.child(d.key).ok_or(DropKind::NoSa)?;
    let segment = buf.get(d.payload.clone()).ok_or(DropKind::Malformed)?;
    let protocol = d.next_header;
    let (sport, dport) = if matches!(protocol, 6 | 17) {
        let p = segment.get(..4).ok_or(DropKind::Malformed)?;
        (
            u16::from_be_bytes([p[0], p[1]]),
            u16::from_be_bytes([p[2], p[3]]),
        )
    } else {
        (0, 0)
    };
    if !protoport_matches(&child.remote_ts, protocol, sport)
        || !protoport_matches(&child.local_ts, protocol, dport)
    {
        return Err(DropKind::SelectorMismatch);
    }
    scratch.clear();
    scratch.resize(IPV6_HEADER_LEN, 0);
    scratch.extend_from_slice(segment);
    if let (Some(ports), 6 | 17) = (ports, protocol) {
        // The source port the host knows this client by (its own, unless
        // another client of its address has that one).
        let seen = ports.seen_port(child.remote, sport).ok_or(DropKind::NoSa)?;
        scratch[IPV6_HEADER_LEN..IPV6_HEADER_LEN + 2].copy_from_slice(&seen.to_be_bytes());
    }
    let seg = IPV6_HEADER_LEN..scratch.len();
    transport::rebuild(scratch, seg, child.remote.ip(), child.local.ip(), protocol)
        .map_err(|_| DropKind::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;
    use tsunagi_crypto::random::RandomSource;
    use tsunagi_ipsec::esp::{
        InboundSa, Integrity as EspIntegrity, Mode, OutboundSa, SaConfig, Transform,
    };
    use tsunagi_ipsec::ike::{ChildId, ChildSa, IkeSaId};
    use tsunagi_ipsec::isakmp::proposal::{Algorithms, Encryption, Integrity};

    struct Zero;
    impl RandomSource for Zero {
        fn fill(&self, dest: &mut [u8]) {
            dest.fill(0);
        }
    }

    fn l2tp_ts(addr: [u8; 4]) -> TrafficSelector {
        TrafficSelector {
            addr: IpAddr::from(addr),
            prefix: 32,
            protocol: 17,
            port: 1701,
        }
    }

    /// A transport child from `local` to `remote` (as seen: a NAT's
    /// address behind NAT), seed 002's 3DES/SHA1.
    fn child(local: [u8; 4], remote: [u8; 4], ts_remote: [u8; 4]) -> ChildSa {
        child_spi(local, remote, ts_remote, 0x1234)
    }

    /// [`child`] with SPI `spi` both ways.
    fn child_spi(local: [u8; 4], remote: [u8; 4], ts_remote: [u8; 4], spi: u32) -> ChildSa {
        let c = SaConfig::new(
            spi,
            Transform::TripleDesCbc(EspIntegrity::HmacSha1_96),
            Mode::Transport,
        );
        ChildSa {
            id: ChildId(1),
            ike: IkeSaId(1),
            replaces: None,
            inbound: InboundSa::new(c, &[3; 24], &[4; 20]).unwrap(),
            outbound: OutboundSa::new(c, &[3; 24], &[4; 20], Arc::new(Zero)).unwrap(),
            local: (IpAddr::from(local), 4500).into(),
            remote: (IpAddr::from(remote), 4500).into(),
            udp_encap: true,
            local_ts: l2tp_ts(local),
            remote_ts: l2tp_ts(ts_remote),
            peer_original_addr: Some(IpAddr::from(ts_remote)),
            algorithms: Algorithms {
                encryption: Encryption::TripleDes,
                integrity: Some(Integrity::Sha1),
                group: None,
            },
        }
    }

    /// src:sport -> dst:dport, "hello", checksum valid.
    fn udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mut seg = Vec::new();
        seg.extend_from_slice(&sport.to_be_bytes());
        seg.extend_from_slice(&dport.to_be_bytes());
        seg.extend_from_slice(&13u16.to_be_bytes());
        // Not 0 ("no checksum" over IPv4): rebuild computes it.
        seg.extend_from_slice(&[0x12, 0x34]);
        seg.extend_from_slice(b"hello");
        let mut buf = vec![0u8; 20];
        buf.extend_from_slice(&seg);
        let n = buf.len();
        transport::rebuild(&mut buf, 20..n, src.into(), dst.into(), 17).unwrap();
        buf
    }

    fn udp_checksum_ok(p: &[u8]) -> bool {
        let mut acc: u32 = 0;
        let mut add = |b: &[u8]| {
            for c in b.chunks(2) {
                acc += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
            }
        };
        add(&p[12..20]);
        add(&[0, 17]);
        add(&((p.len() - 20) as u16).to_be_bytes());
        add(&p[20..]);
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc == 0xffff
    }

    /// A datagram from our 1701 to the peer's 1701 is sealed with Next
    /// Header 17; the peer's table opens it and rebuilds it from the
    /// address it sees us as (a NAT's), checksum recomputed; other ports
    /// and other destinations are no SA's.
    #[test]
    fn a_udp_1701_datagram_crosses_in_transport_mode_behind_nat() {
        let now = Instant::now();
        // We are 192.168.1.10 behind a NAT that shows us as 198.51.100.7;
        // the server is 203.0.113.5.
        let mut ours = SaTable::new(1);
        let k = ours
            .install(
                0,
                child([192, 168, 1, 10], [203, 0, 113, 5], [203, 0, 113, 5]),
                now,
            )
            .unwrap();
        let mut theirs = SaTable::new(1);
        let kt = theirs
            .install(
                0,
                child([203, 0, 113, 5], [198, 51, 100, 7], [192, 168, 1, 10]),
                now,
            )
            .unwrap();
        let p = udp([192, 168, 1, 10], [203, 0, 113, 5], 1701, 1701);
        assert!(udp_checksum_ok(&p), "{p:02x?}");
        let o = select(&ours, 0, &p, None).unwrap();
        assert_eq!((o.key, o.next_header, o.segment.clone()), (k, 17, 20..33));
        assert_eq!(
            select(
                &ours,
                0,
                &udp([192, 168, 1, 10], [203, 0, 113, 5], 1702, 1701),
                None
            ),
            Err(DropKind::NoSa)
        );
        assert_eq!(
            select(
                &ours,
                0,
                &udp([192, 168, 1, 10], [203, 0, 113, 6], 1701, 1701),
                None
            ),
            Err(DropKind::NoSa)
        );
        let mut sealed = Vec::new();
        seal(&mut ours, &p, &o, &mut sealed).unwrap();
        let d = theirs.open(&mut sealed, now).unwrap();
        assert_eq!((d.key, d.mode, d.next_header), (kt, Mode::Transport, 17));
        let mut scratch = Vec::new();
        let rebuilt = inbound(&mut theirs, &d, &sealed, &mut scratch, None)
            .unwrap()
            .to_vec();
        assert_eq!(rebuilt.len(), p.len());
        assert_eq!(&rebuilt[12..16], &[198, 51, 100, 7], "the source as seen");
        assert_eq!(&rebuilt[16..20], &[203, 0, 113, 5]);
        assert_eq!(&rebuilt[28..], b"hello");
        assert!(udp_checksum_ok(&rebuilt), "checksum for the NAT's address");
        assert_ne!(rebuilt[26..28], p[26..28], "the checksum changed");
    }

    /// A segment whose ports the SA was not negotiated for is refused and
    /// counted, not delivered.
    #[test]
    fn a_segment_outside_the_selectors_is_refused() {
        let now = Instant::now();
        let mut ours = SaTable::new(1);
        let k = ours
            .install(0, child([10, 0, 0, 1], [10, 0, 0, 2], [10, 0, 0, 2]), now)
            .unwrap();
        let mut theirs = SaTable::new(1);
        theirs
            .install(0, child([10, 0, 0, 2], [10, 0, 0, 1], [10, 0, 0, 1]), now)
            .unwrap();
        // Sealed by hand: a peer that protects port 53 with the 1701 SA.
        let p = udp([10, 0, 0, 1], [10, 0, 0, 2], 53, 1701);
        let o = Outbound {
            key: k,
            segment: 20..p.len(),
            next_header: 17,
            peer_port: None,
        };
        let mut sealed = Vec::new();
        seal(&mut ours, &p, &o, &mut sealed).unwrap();
        let d = theirs.open(&mut sealed, now).unwrap();
        let mut scratch = Vec::new();
        assert_eq!(
            inbound(&mut theirs, &d, &sealed, &mut scratch, None).map(|_| ()),
            Err(DropKind::SelectorMismatch)
        );
        assert_eq!(theirs.drops[0].get(DropKind::SelectorMismatch), 1);
        // Not IP at all from the tun.
        assert_eq!(select(&ours, 0, &[0x50; 40], None), Err(DropKind::NotIp));
    }

    /// Two clients behind one NAT, both 192.168.1.10 and both from port
    /// 1701: the host sees the first from the NAT's address and 1701, the
    /// second from another port; answers to each reach its own SA with
    /// 1701 put back, checksum still right; a third client's port is its
    /// own again once the second is gone.
    #[test]
    fn two_clients_of_one_nat_with_the_same_address_and_ports_are_told_apart() {
        let now = Instant::now();
        let nat = [198, 51, 100, 7];
        let mut server = SaTable::new(1);
        let mut a = child_spi([203, 0, 113, 5], nat, [192, 168, 1, 10], 0x1001);
        a.remote = (IpAddr::from(nat), 4500).into();
        let mut b = child_spi([203, 0, 113, 5], nat, [192, 168, 1, 10], 0x1002);
        b.id = ChildId(2);
        b.remote = (IpAddr::from(nat), 1024).into();
        let ka = server.install(0, a, now).unwrap();
        let kb = server.install(0, b, now).unwrap();
        let mut clients: Vec<SaTable> = Vec::new();
        for (spi, port) in [(0x1001, 4500u16), (0x1002, 1024)] {
            let mut t = SaTable::new(1);
            let mut c = child_spi([192, 168, 1, 10], [203, 0, 113, 5], [203, 0, 113, 5], spi);
            c.local = (IpAddr::from([192, 168, 1, 10]), port).into();
            t.install(0, c, now).unwrap();
            clients.push(t);
        }
        let mut ports = PeerPorts::default();
        let mut seen = Vec::new();
        for (i, key) in [(0, ka), (1, kb)] {
            let p = udp([192, 168, 1, 10], [203, 0, 113, 5], 1701, 1701);
            let o = select(&clients[i], 0, &p, None).unwrap();
            let mut sealed = Vec::new();
            seal(&mut clients[i], &p, &o, &mut sealed).unwrap();
            let d = server.open(&mut sealed, now).unwrap();
            assert_eq!(d.key, key);
            let mut scratch = Vec::new();
            let rebuilt = inbound(&mut server, &d, &sealed, &mut scratch, Some(&mut ports))
                .unwrap()
                .to_vec();
            assert_eq!(&rebuilt[12..16], &nat);
            assert!(udp_checksum_ok(&rebuilt), "{rebuilt:02x?}");
            seen.push(u16::from_be_bytes([rebuilt[20], rebuilt[21]]));
        }
        assert_eq!(seen, [1701, 49152]);
        assert_eq!(ports.len(), 2);
        // The LNS answers each from 1701 to the port it saw.
        for (port, key) in [(1701, ka), (49152, kb)] {
            let mut answer = udp([203, 0, 113, 5], nat, 1701, port);
            let o = select(&server, 0, &answer, Some(&ports)).unwrap();
            assert_eq!(o.key, key);
            assert_eq!(o.peer_port, (port != 1701).then_some(1701));
            restore_peer_port(&mut answer, &o);
            assert_eq!(&answer[22..24], &1701u16.to_be_bytes());
            assert!(udp_checksum_ok(&answer), "{answer:02x?}");
        }
        // No client known by that port: never sealed for someone else.
        assert_eq!(
            select(
                &server,
                0,
                &udp([203, 0, 113, 5], nat, 1701, 50000),
                Some(&ports)
            ),
            Err(DropKind::NoSa)
        );
        assert_eq!(
            ports.seen_as((IpAddr::from(nat), 1024).into()),
            Some((IpAddr::from(nat), 49152).into())
        );
        let gone = ports.retain(|outer| outer.port() == 4500);
        assert_eq!(gone, [SocketAddr::from((nat, 49152))]);
        assert_eq!(ports.len(), 1);
        assert_eq!(
            ports.seen_port((IpAddr::from(nat), 2048).into(), 1701),
            Some(49152)
        );
    }

    #[test]
    fn checksum_adjust_is_rfc_1624s() {
        // RFC 1624 s4's example: 0xdd2f checksum, 0x5555 -> 0x3285.
        let p = udp([10, 0, 0, 1], [10, 0, 0, 2], 1701, 1701);
        let mut q = udp([10, 0, 0, 1], [10, 0, 0, 2], 1701, 40000);
        let o = Outbound {
            key: ChildKey {
                conn: 0,
                child: ChildId(1),
            },
            segment: 20..q.len(),
            next_header: 17,
            peer_port: Some(1701),
        };
        restore_peer_port(&mut q, &o);
        assert_eq!(q, p, "back to the original, checksum too");
        assert_eq!(checksum_adjust([0xdd, 0x2f], 0x5555, 0x3285), [0x00, 0x00]);
    }

    #[test]
    fn steering_of_seed_002s_conn() {
        let text = "[ipsec.l2tp]\nleft = \"10.200.0.1\"\nright = \"10.200.0.2\"\ntype = \"transport\"\nleftprotoport = \"17/1701\"\nrightprotoport = \"17/1701\"\n";
        let config = crate::config::Config::parse(std::path::Path::new("t.toml"), text).unwrap();
        let s = Steering::of(&config.ipsec[0]).unwrap();
        assert_eq!(s.table, table_of("l2tp"));
        assert!((TRANSPORT_TABLE_BASE..TRANSPORT_TABLE_BASE + 10_000).contains(&s.table));
        assert_eq!(
            s.rule.to_string(),
            "to 10.200.0.2 ipproto 17 sport 1701 dport 1701"
        );
        assert_eq!(s.tun, "ipsec-l2tp");
        // A server's conn: any peer, the ports still matched.
        let any = text.replace("\"10.200.0.2\"", "\"%any\"");
        let config = crate::config::Config::parse(std::path::Path::new("t.toml"), &any).unwrap();
        let s = Steering::of(&config.ipsec[0]).unwrap();
        assert_eq!(s.table, table_of("l2tp"));
        assert_eq!(
            s.rule.to_string(),
            "to all ipproto 17 sport 1701 dport 1701"
        );
    }
}
