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

use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;

use tsunagi_host::policy_route::{PolicyRoutes, SelectorRule};
use tsunagi_host::Ipv4Net;
use tsunagi_ipsec::ike::TrafficSelector;
use tsunagi_ipsec::transport::{self, IPV6_HEADER_LEN};

use super::datapath::{ChildKey, Delivered, DropKind, SaTable};
use crate::config::IpsecConn;

/// The routing table of the transport conn at index `i` among the
/// `[ipsec]` sections is this plus `i` (links' `route_table` defaults are
/// 100 + their index; the kernel's own are 253..=255).
pub const TRANSPORT_TABLE_BASE: u32 = 200;

/// The routing table of the transport conn at `index` among the `[ipsec]`
/// sections.
pub fn table_of(index: usize) -> u32 {
    TRANSPORT_TABLE_BASE.saturating_add(u32::try_from(index).unwrap_or(u32::MAX))
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
    /// The steering of transport conn `settings`, index `index`.
    pub fn of(settings: &IpsecConn, index: usize) -> anyhow::Result<Steering> {
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
            table: table_of(index),
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
}

/// The child of transport conn `conn` that protects `packet` (read from
/// its tun): the newest one not retired whose peer is the packet's
/// destination and whose selectors hold its protocol and ports.
pub fn select(table: &SaTable, conn: usize, packet: &[u8]) -> Result<Outbound, DropKind> {
    let s = transport::split(packet).map_err(|e| match e {
        transport::TransportError::Version(_) => DropKind::NotIp,
        _ => DropKind::Malformed,
    })?;
    let mut found = None;
    for (key, child, _) in table.children_of(conn) {
        if child.retired {
            continue;
        }
        let peer = child.remote.ip();
        if peer == s.dst
            && protoport_matches(&child.remote_ts, s.protocol, s.dst_port)
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
) -> Result<&'s [u8], DropKind> {
    let result = rebuild_checked(table, d, buf, scratch);
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
        let c = SaConfig::new(
            0x1234,
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
        let o = select(&ours, 0, &p).unwrap();
        assert_eq!((o.key, o.next_header, o.segment.clone()), (k, 17, 20..33));
        assert_eq!(
            select(
                &ours,
                0,
                &udp([192, 168, 1, 10], [203, 0, 113, 5], 1702, 1701)
            ),
            Err(DropKind::NoSa)
        );
        assert_eq!(
            select(
                &ours,
                0,
                &udp([192, 168, 1, 10], [203, 0, 113, 6], 1701, 1701)
            ),
            Err(DropKind::NoSa)
        );
        let mut sealed = Vec::new();
        seal(&mut ours, &p, &o, &mut sealed).unwrap();
        let d = theirs.open(&mut sealed, now).unwrap();
        assert_eq!((d.key, d.mode, d.next_header), (kt, Mode::Transport, 17));
        let mut scratch = Vec::new();
        let rebuilt = inbound(&mut theirs, &d, &sealed, &mut scratch)
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
        };
        let mut sealed = Vec::new();
        seal(&mut ours, &p, &o, &mut sealed).unwrap();
        let d = theirs.open(&mut sealed, now).unwrap();
        let mut scratch = Vec::new();
        assert_eq!(
            inbound(&mut theirs, &d, &sealed, &mut scratch).map(|_| ()),
            Err(DropKind::SelectorMismatch)
        );
        assert_eq!(theirs.drops[0].get(DropKind::SelectorMismatch), 1);
        // Not IP at all from the tun.
        assert_eq!(select(&ours, 0, &[0x50; 40]), Err(DropKind::NotIp));
    }

    #[test]
    fn steering_of_seed_002s_conn() {
        let text = "[ipsec.l2tp]\nleft = \"10.200.0.1\"\nright = \"10.200.0.2\"\ntype = \"transport\"\nleftprotoport = \"17/1701\"\nrightprotoport = \"17/1701\"\n";
        let config = crate::config::Config::parse(std::path::Path::new("t.toml"), text).unwrap();
        let s = Steering::of(&config.ipsec[0], 0).unwrap();
        assert_eq!(s.table, TRANSPORT_TABLE_BASE);
        assert_eq!(
            s.rule.to_string(),
            "to 10.200.0.2 ipproto 17 sport 1701 dport 1701"
        );
        assert_eq!(s.tun, "ipsec-l2tp");
        // A server's conn: any peer, the ports still matched.
        let any = text.replace("\"10.200.0.2\"", "\"%any\"");
        let config = crate::config::Config::parse(std::path::Path::new("t.toml"), &any).unwrap();
        let s = Steering::of(&config.ipsec[0], 3).unwrap();
        assert_eq!(s.table, TRANSPORT_TABLE_BASE + 3);
        assert_eq!(
            s.rule.to_string(),
            "to all ipproto 17 sport 1701 dport 1701"
        );
    }
}
