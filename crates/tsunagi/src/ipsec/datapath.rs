//! The SAs the engines handed out, and what the data path does with them:
//! the inbound SAs by SPI (RFC 4303 s2.1: the receiver's SPI names the
//! SA), the outbound ones by connection, chosen by the inner packet's
//! addresses against the traffic selectors; opening with the selector
//! check of RFC 4301 s5.2 step 4 (an inner packet whose addresses the SA
//! was not negotiated for is dropped), sealing into a send slot.
//!
//! Sans-IO: the driver owns the sockets and the tuns. Every refusal is a
//! [`DropKind`], counted per connection (or, when no SA is known, in the
//! table's own counters) and never a panic.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::time::Instant;

use tsunagi_ipsec::esp::{
    self, EspError, InboundSa, Mode, Opened, OutboundSa, NEXT_HEADER_IPV4, NEXT_HEADER_IPV6,
};
use tsunagi_ipsec::ike::{ChildId, ChildSa, IkeSaId, TrafficSelector};
use tsunagi_ipsec::isakmp::proposal::Algorithms;

/// A child SA across every connection's engine (each engine numbers its
/// own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChildKey {
    /// The connection (index in the driver's list).
    pub conn: usize,
    /// The engine's handle.
    pub child: ChildId,
}

/// Why a packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropKind {
    /// ESP with an SPI that names no SA of ours.
    UnknownSpi,
    /// A sequence number already received (RFC 4303 s3.4.3).
    Replayed,
    /// Left of the replay window.
    TooOld,
    /// The ICV did not verify (RFC 4303 s3.4.4).
    BadIcv,
    /// Padding or pad length wrong after a good ICV.
    BadPadding,
    /// Too short, misaligned, a next header the mode does not carry.
    Malformed,
    /// The inner addresses are not the SA's selectors.
    SelectorMismatch,
    /// A dummy packet (next header 59): dropped by design.
    Dummy,
    /// From the tun with no SA for its addresses (not up yet, or not ours
    /// to protect).
    NoSa,
    /// Not IPv4 or IPv6 from the tun.
    NotIp,
    /// Sealing failed (the sequence numbers ran out before the rekey).
    SealFailed,
    /// A datagram on 4500 that is neither IKE, keepalive nor ESP.
    BadUdpEncap,
    /// A transport-mode payload for a conn without its tun and rule.
    TransportUnclaimed,
    /// A NAT-T keepalive (RFC 3948 s2.3): counted, not an error.
    NatKeepalive,
    /// An IKE message the engine refused (bad input).
    IkeDropped,
    /// An IKE datagram from an address no connection names.
    IkeNoConn,
    /// The tun did not take an opened packet.
    TunError,
    /// The socket did not take a sealed packet.
    SendError,
}

impl DropKind {
    /// Its name in `status` and the logs.
    pub fn name(self) -> &'static str {
        match self {
            DropKind::UnknownSpi => "unknown_spi",
            DropKind::Replayed => "replayed",
            DropKind::TooOld => "too_old",
            DropKind::BadIcv => "bad_icv",
            DropKind::BadPadding => "bad_padding",
            DropKind::Malformed => "malformed",
            DropKind::SelectorMismatch => "selector_mismatch",
            DropKind::Dummy => "dummy",
            DropKind::NoSa => "no_sa",
            DropKind::NotIp => "not_ip",
            DropKind::SealFailed => "seal_failed",
            DropKind::BadUdpEncap => "bad_udp_encap",
            DropKind::TransportUnclaimed => "transport_unclaimed",
            DropKind::NatKeepalive => "nat_keepalives",
            DropKind::IkeDropped => "ike_dropped",
            DropKind::IkeNoConn => "ike_no_conn",
            DropKind::TunError => "tun_errors",
            DropKind::SendError => "send_errors",
        }
    }

    fn of(e: &EspError) -> DropKind {
        match e {
            EspError::Replayed { .. } => DropKind::Replayed,
            EspError::TooOld { .. } => DropKind::TooOld,
            EspError::IcvMismatch { .. } => DropKind::BadIcv,
            EspError::PadLength { .. } | EspError::Padding { .. } => DropKind::BadPadding,
            _ => DropKind::Malformed,
        }
    }
}

/// Counts by kind; zeros left out of [`Drops::named`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drops(BTreeMap<DropKind, u64>);

impl Drops {
    /// One more of `kind`.
    pub fn count(&mut self, kind: DropKind) {
        *self.0.entry(kind).or_default() += 1;
    }

    /// How many of `kind`.
    pub fn get(&self, kind: DropKind) -> u64 {
        self.0.get(&kind).copied().unwrap_or(0)
    }

    /// By name, for `status`.
    pub fn named(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.0.iter().map(|(k, v)| (k.name(), *v))
    }
}

/// The outbound half of a child SA, and what `status` shows of it.
#[derive(Debug)]
pub struct OutChild {
    /// The IKE SA that made it.
    pub ike: IkeSaId,
    /// Seals.
    pub sa: OutboundSa,
    /// Our address (port 4500 with NAT-T).
    pub local: SocketAddr,
    /// The peer's (its NAT-mapped port with NAT-T).
    pub remote: SocketAddr,
    /// ESP in UDP 4500 (RFC 3948).
    pub udp_encap: bool,
    /// Our selector.
    pub local_ts: TrafficSelector,
    /// The peer's.
    pub remote_ts: TrafficSelector,
    /// What was agreed.
    pub algorithms: Algorithms,
    /// When it was installed.
    pub since: Instant,
    /// The SPI of its inbound half.
    pub spi_in: u32,
    /// A rekey replaced it: no longer used to send; its inbound half stays
    /// until the engine's ChildDown.
    pub retired: bool,
    /// [`OutboundSa::needs_rekey`] was passed on to the engine.
    pub rekey_asked: bool,
    /// When ESP last arrived on its inbound half.
    pub last_in: Option<Instant>,
    /// Packets (and their payload octets) that opened but were refused by
    /// the selector check: the ESP counters count them as delivered.
    pub refused_in: (u64, u64),
}

struct InChild {
    key: ChildKey,
    sa: InboundSa,
    local_ts: TrafficSelector,
    remote_ts: TrafficSelector,
}

/// A packet opened and checked: its payload lies at `payload` in the
/// buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The child it came on.
    pub key: ChildKey,
    /// Tunnel: an IP packet for the tun; transport: the upper layer.
    pub mode: Mode,
    /// Where it lies.
    pub payload: Range<usize>,
    /// ESP's Next Header (transport mode: the upper-layer protocol).
    pub next_header: u8,
}

/// Why an SA pair could not be installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstallError {
    /// Another SA already has this inbound SPI (two engines drew the same
    /// random SPI).
    #[error("inbound SPI 0x{0:08x} is already in use")]
    SpiInUse(u32),
}

/// Every SA pair installed.
#[derive(Default)]
pub struct SaTable {
    inbound: HashMap<u32, InChild>,
    children: BTreeMap<ChildKey, OutChild>,
    /// Per connection.
    pub drops: Vec<Drops>,
    /// What belongs to no connection (unknown SPI, bad 4500 datagrams).
    pub unattributed: Drops,
}

/// Source and destination address, protocol and ports of an IP packet
/// (ports only for an unfragmented TCP or UDP first fragment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InnerAddrs {
    /// Source.
    pub src: IpAddr,
    /// Destination.
    pub dst: IpAddr,
    /// IP protocol (IPv6: the first next header).
    pub protocol: u8,
    /// Source and destination ports.
    pub ports: Option<(u16, u16)>,
}

/// The addresses of an IPv4 (RFC 791 s3.1) or IPv6 (RFC 8200 s3) packet.
pub fn inner_addrs(p: &[u8]) -> Option<InnerAddrs> {
    let ports_at = |at: usize| -> Option<(u16, u16)> {
        let b = p.get(at..at + 4)?;
        Some((
            u16::from_be_bytes([b[0], b[1]]),
            u16::from_be_bytes([b[2], b[3]]),
        ))
    };
    match p.first()? >> 4 {
        4 => {
            let ihl = usize::from(p[0] & 0x0f) * 4;
            if ihl < 20 || p.len() < ihl {
                return None;
            }
            let src: [u8; 4] = p[12..16].try_into().ok()?;
            let dst: [u8; 4] = p[16..20].try_into().ok()?;
            let protocol = p[9];
            let offset = u16::from_be_bytes([p[6], p[7]]) & 0x1fff;
            let ports = (matches!(protocol, 6 | 17) && offset == 0)
                .then(|| ports_at(ihl))
                .flatten();
            Some(InnerAddrs {
                src: IpAddr::from(src),
                dst: IpAddr::from(dst),
                protocol,
                ports,
            })
        }
        6 => {
            if p.len() < 40 {
                return None;
            }
            let src: [u8; 16] = p[8..24].try_into().ok()?;
            let dst: [u8; 16] = p[24..40].try_into().ok()?;
            let protocol = p[6];
            let ports = matches!(protocol, 6 | 17).then(|| ports_at(40)).flatten();
            Some(InnerAddrs {
                src: IpAddr::from(src),
                dst: IpAddr::from(dst),
                protocol,
                ports,
            })
        }
        _ => None,
    }
}

/// Whether `addr` lies in `ts`'s prefix.
pub fn ts_contains_addr(ts: &TrafficSelector, addr: IpAddr) -> bool {
    match (ts.addr, addr) {
        (IpAddr::V4(net), IpAddr::V4(a)) => {
            let bits = u32::from(ts.prefix.min(32));
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(net) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(net), IpAddr::V6(a)) => {
            let bits = u32::from(ts.prefix.min(128));
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(net) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// Whether one end of a packet (`addr`, its `port` if known) is inside
/// `ts` for `protocol`.
fn ts_matches(ts: &TrafficSelector, addr: IpAddr, protocol: u8, port: Option<u16>) -> bool {
    ts_contains_addr(ts, addr)
        && (ts.protocol == 0 || ts.protocol == protocol)
        && (ts.port == 0 || port == Some(ts.port))
}

impl SaTable {
    /// An empty table for `conns` connections.
    pub fn new(conns: usize) -> SaTable {
        SaTable {
            drops: vec![Drops::default(); conns],
            ..SaTable::default()
        }
    }

    /// Counts `kind` for `conn` (or unattributed).
    pub fn count(&mut self, conn: Option<usize>, kind: DropKind) {
        match conn.and_then(|c| self.drops.get_mut(c)) {
            Some(d) => d.count(kind),
            None => self.unattributed.count(kind),
        }
    }

    /// Installs `child` of connection `conn` (RFC 4301 s4.4.2): its
    /// inbound SA by SPI; its outbound SA used from now on, the one it
    /// `replaces` retired (its inbound half stays until its own
    /// ChildDown).
    pub fn install(
        &mut self,
        conn: usize,
        child: ChildSa,
        now: Instant,
    ) -> Result<ChildKey, InstallError> {
        let key = ChildKey {
            conn,
            child: child.id,
        };
        let spi_in = child.inbound.config().spi;
        if self.inbound.contains_key(&spi_in) {
            return Err(InstallError::SpiInUse(spi_in));
        }
        if let Some(old) = child.replaces {
            if let Some(o) = self.children.get_mut(&ChildKey { conn, child: old }) {
                o.retired = true;
            }
        }
        self.inbound.insert(
            spi_in,
            InChild {
                key,
                sa: child.inbound,
                local_ts: child.local_ts,
                remote_ts: child.remote_ts,
            },
        );
        self.children.insert(
            key,
            OutChild {
                ike: child.ike,
                sa: child.outbound,
                local: child.local,
                remote: child.remote,
                udp_encap: child.udp_encap,
                local_ts: child.local_ts,
                remote_ts: child.remote_ts,
                algorithms: child.algorithms,
                since: now,
                spi_in,
                retired: false,
                rekey_asked: false,
                last_in: None,
                refused_in: (0, 0),
            },
        );
        Ok(key)
    }

    /// Removes both halves of `key` (the engine's ChildDown).
    pub fn remove(&mut self, key: ChildKey) -> Option<OutChild> {
        let out = self.children.remove(&key)?;
        self.inbound.remove(&out.spi_in);
        Some(out)
    }

    /// Removes every SA of `conn` (its engine was reset).
    pub fn remove_conn(&mut self, conn: usize) -> usize {
        let keys: Vec<ChildKey> = self
            .children
            .keys()
            .filter(|k| k.conn == conn)
            .copied()
            .collect();
        for k in &keys {
            self.remove(*k);
        }
        keys.len()
    }

    /// The children of `conn`, for `status`, with their inbound counters.
    pub fn children_of(
        &self,
        conn: usize,
    ) -> impl Iterator<Item = (ChildKey, &OutChild, Option<&esp::Counters>)> + '_ {
        self.children
            .iter()
            .filter(move |(k, _)| k.conn == conn)
            .map(|(k, c)| {
                let inb = self.inbound.get(&c.spi_in).map(|i| i.sa.counters());
                (*k, c, inb)
            })
    }

    /// Every child, mutable (for the rekey check).
    pub fn children_mut(&mut self) -> impl Iterator<Item = (ChildKey, &mut OutChild)> + '_ {
        self.children.iter_mut().map(|(k, c)| (*k, c))
    }

    /// How many SA pairs are installed.
    pub fn len(&self) -> usize {
        self.children.len()
    }

    /// None installed.
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// The child of `conn` that protects `packet` (read from its tun): the
    /// newest one not retired whose selectors hold the packet's source
    /// (ours) and destination (the peer's).
    pub fn select_outbound(&mut self, conn: usize, packet: &[u8]) -> Result<ChildKey, DropKind> {
        let Some(a) = inner_addrs(packet) else {
            return Err(DropKind::NotIp);
        };
        let (sport, dport) = (a.ports.map(|p| p.0), a.ports.map(|p| p.1));
        self.children
            .iter()
            .rev()
            .filter(|(k, c)| k.conn == conn && !c.retired)
            .find(|(_, c)| {
                ts_matches(&c.remote_ts, a.dst, a.protocol, dport)
                    && ts_matches(&c.local_ts, a.src, a.protocol, sport)
            })
            .map(|(k, _)| *k)
            .ok_or(DropKind::NoSa)
    }

    /// Seals the IP `packet` with `key`'s outbound SA into `out` (cleared
    /// first): ESP header, IV, the packet, trailer and ICV, in place.
    pub fn seal(
        &mut self,
        key: ChildKey,
        packet: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), DropKind> {
        out.clear();
        self.seal_append(key, packet, out)
    }

    /// [`SaTable::seal`], appending the ESP packet to what `out` holds
    /// (a UDP GSO train); on failure `out` is as it was.
    pub fn seal_append(
        &mut self,
        key: ChildKey,
        packet: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), DropKind> {
        if !self.children.contains_key(&key) {
            return Err(DropKind::NoSa);
        }
        let next_header = match packet.first().map(|b| b >> 4) {
            Some(4) => NEXT_HEADER_IPV4,
            Some(6) => NEXT_HEADER_IPV6,
            _ => return Err(DropKind::NotIp),
        };
        self.seal_payload_append(key, packet, next_header, out)
    }

    /// Seals `payload` with `key`'s outbound SA and `next_header`,
    /// appending to what `out` holds: an IP packet (tunnel mode,
    /// [`SaTable::seal_append`]) or an upper-layer segment (transport mode,
    /// RFC 4303 s3.1.1). On failure `out` is as it was.
    pub fn seal_payload_append(
        &mut self,
        key: ChildKey,
        payload: &[u8],
        next_header: u8,
        out: &mut Vec<u8>,
    ) -> Result<(), DropKind> {
        let child = self.children.get_mut(&key).ok_or(DropKind::NoSa)?;
        let at = out.len();
        let head = child.sa.headroom();
        let tail = child.sa.tailroom(payload.len());
        out.resize(at + head, 0);
        out.extend_from_slice(payload);
        out.resize(at + head + payload.len() + tail, 0);
        let sealed = match child
            .sa
            .seal(&mut out[at..], head..head + payload.len(), next_header)
        {
            Ok(r) => r,
            Err(_) => {
                out.truncate(at);
                return Err(DropKind::SealFailed);
            }
        };
        out.truncate(at + sealed.end);
        if sealed.start > 0 {
            out.drain(at..at + sealed.start);
        }
        Ok(())
    }

    /// The conn of the SA whose SPI an ESP packet carries, if known.
    pub fn conn_of(&self, packet: &[u8]) -> Option<usize> {
        let spi = esp::parse_spi(packet).ok()?;
        self.inbound.get(&spi).map(|c| c.key.conn)
    }

    /// ESP in UDP of child `key` opened from `from`: if the peer's address
    /// or port changed (a NAT's mapping, RFC 3947 s5), its outbound ESP
    /// follows; returns where it was. Raw ESP (no port) never moves.
    pub fn follow_peer(&mut self, key: ChildKey, from: SocketAddr) -> Option<SocketAddr> {
        let child = self.children.get_mut(&key)?;
        if !child.udp_encap || child.remote == from {
            return None;
        }
        Some(std::mem::replace(&mut child.remote, from))
    }

    /// Counts a packet of `key` that opened but was refused after the
    /// selector check (the transport path's), `len` payload octets.
    pub fn refuse(&mut self, key: ChildKey, len: usize) {
        if let Some(c) = self.children.get_mut(&key) {
            c.refused_in.0 += 1;
            c.refused_in.1 += len as u64;
        }
    }

    /// The outbound child `key`.
    pub fn child(&self, key: ChildKey) -> Option<&OutChild> {
        self.children.get(&key)
    }

    /// Opens the ESP packet `buf` in place (RFC 4303 s3.4) and checks a
    /// tunnel-mode payload's addresses against the SA's selectors: the
    /// source inside the peer's, the destination inside ours. Drops are
    /// counted here.
    pub fn open(&mut self, buf: &mut [u8], now: Instant) -> Result<Delivered, DropKind> {
        let spi = match esp::parse_spi(buf) {
            Ok(spi) => spi,
            Err(_) => {
                self.unattributed.count(DropKind::Malformed);
                return Err(DropKind::Malformed);
            }
        };
        let Some(child) = self.inbound.get_mut(&spi) else {
            self.unattributed.count(DropKind::UnknownSpi);
            return Err(DropKind::UnknownSpi);
        };
        let key = child.key;
        let result = match child.sa.open(buf) {
            Err(e) => Err(DropKind::of(&e)),
            Ok(Opened::Dummy { .. }) => Err(DropKind::Dummy),
            Ok(Opened::Payload {
                payload,
                next_header,
                ..
            }) => {
                let mode = child.sa.config().mode;
                match mode {
                    Mode::Tunnel => match inner_addrs(&buf[payload.clone()]) {
                        Some(a)
                            if ts_matches(
                                &child.remote_ts,
                                a.src,
                                a.protocol,
                                a.ports.map(|p| p.0),
                            ) && ts_matches(
                                &child.local_ts,
                                a.dst,
                                a.protocol,
                                a.ports.map(|p| p.1),
                            ) =>
                        {
                            Ok(Delivered {
                                key,
                                mode,
                                payload,
                                next_header,
                            })
                        }
                        _ => {
                            let len = payload.len() as u64;
                            if let Some(c) = self.children.get_mut(&key) {
                                c.refused_in.0 += 1;
                                c.refused_in.1 += len;
                            }
                            Err(DropKind::SelectorMismatch)
                        }
                    },
                    // Transport mode: checked against the selectors by
                    // the transport path (ports are in the segment).
                    Mode::Transport => Ok(Delivered {
                        key,
                        mode,
                        payload,
                        next_header,
                    }),
                }
            }
        };
        match &result {
            Ok(_) => {
                if let Some(c) = self.children.get_mut(&key) {
                    c.last_in = Some(now);
                }
            }
            Err(kind) => self.count(Some(key.conn), *kind),
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::sync::Arc;
    use tsunagi_crypto::random::RandomSource;
    use tsunagi_ipsec::esp::{SaConfig, Transform};
    use tsunagi_ipsec::isakmp::proposal::Encryption;

    struct Zero;
    impl RandomSource for Zero {
        fn fill(&self, dest: &mut [u8]) {
            dest.fill(0);
        }
    }

    fn ts(addr: [u8; 4], prefix: u8) -> TrafficSelector {
        TrafficSelector {
            addr: IpAddr::from(addr),
            prefix,
            protocol: 0,
            port: 0,
        }
    }

    /// A child with SPI `spi` both ways and key `k`: what one gateway
    /// installs, and with swapped selectors its peer's.
    fn child(id: u64, spi: u32, k: u8, ours: TrafficSelector, theirs: TrafficSelector) -> ChildSa {
        let c = SaConfig::new(spi, Transform::AesGcm16, Mode::Tunnel);
        let key = [k; 20];
        ChildSa {
            id: ChildId(id),
            ike: IkeSaId(1),
            replaces: None,
            inbound: InboundSa::new(c, &key, &[]).unwrap(),
            outbound: OutboundSa::new(c, &key, &[], Arc::new(Zero)).unwrap(),
            local: "192.0.2.1:4500".parse().unwrap(),
            remote: "192.0.2.2:4500".parse().unwrap(),
            udp_encap: true,
            local_ts: ours,
            remote_ts: theirs,
            peer_original_addr: None,
            algorithms: Algorithms {
                encryption: Encryption::AesGcm(128, 16),
                integrity: None,
                group: None,
            },
        }
    }

    fn ipv4(src: [u8; 4], dst: [u8; 4], len: usize) -> Vec<u8> {
        let mut p = vec![0u8; len.max(28)];
        p[0] = 0x45;
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[8] = 64;
        p[9] = 17;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&dst);
        p[20..24].copy_from_slice(&[0x12, 0x34, 0x06, 0xa5]);
        p
    }

    #[test]
    fn inner_addresses_and_selectors() {
        let p = ipv4([10, 1, 0, 5], [10, 2, 0, 9], 40);
        let a = inner_addrs(&p).unwrap();
        assert_eq!(a.src, IpAddr::from([10, 1, 0, 5]));
        assert_eq!(a.ports, Some((0x1234, 1701)));
        assert!(ts_contains_addr(&ts([10, 1, 0, 0], 16), a.src));
        assert!(!ts_contains_addr(
            &ts([10, 1, 0, 0], 24),
            IpAddr::from([10, 1, 1, 0])
        ));
        assert!(ts_contains_addr(&ts([0, 0, 0, 0], 0), a.dst));
        let mut l2tp = ts([10, 2, 0, 9], 32);
        l2tp.protocol = 17;
        l2tp.port = 1701;
        assert!(ts_matches(&l2tp, a.dst, 17, Some(1701)));
        assert!(!ts_matches(&l2tp, a.dst, 17, Some(1702)));
        assert!(!ts_matches(&l2tp, a.dst, 6, Some(1701)));
        assert!(inner_addrs(&[0x45, 0, 0]).is_none());
        assert!(inner_addrs(&[0x60; 20]).is_none());
        assert!(inner_addrs(&[]).is_none());
    }

    /// Two tables as two gateways: a packet sealed by one opens at the
    /// other; a replay, a flipped octet, an unknown SPI and a packet from
    /// outside the selectors are each dropped and counted, and the SA
    /// keeps working.
    #[test]
    fn seal_open_and_every_drop_is_counted() {
        let (left, right) = (ts([10, 1, 0, 0], 24), ts([10, 2, 0, 0], 24));
        let now = Instant::now();
        let mut a = SaTable::new(1);
        let mut b = SaTable::new(1);
        let ka = a.install(0, child(1, 0x1111, 7, left, right), now).unwrap();
        let kb = b.install(0, child(1, 0x1111, 7, right, left), now).unwrap();
        let packet = ipv4([10, 1, 0, 5], [10, 2, 0, 9], 100);
        assert_eq!(a.select_outbound(0, &packet), Ok(ka));
        // Not ours to protect: the destination is in no selector.
        assert_eq!(
            a.select_outbound(0, &ipv4([10, 1, 0, 5], [10, 3, 0, 9], 60)),
            Err(DropKind::NoSa)
        );
        let mut out = Vec::new();
        a.seal(ka, &packet, &mut out).unwrap();
        let sealed = out.clone();
        let d = b.open(&mut out, now).unwrap();
        assert_eq!(d.key, kb);
        assert_eq!(&out[d.payload.clone()], &packet[..]);
        // The same packet again: a replay.
        let mut again = sealed.clone();
        assert_eq!(b.open(&mut again, now), Err(DropKind::Replayed));
        // A flipped octet in the ciphertext.
        a.seal(ka, &packet, &mut out).unwrap();
        let good = out.clone();
        out[20] ^= 1;
        assert_eq!(b.open(&mut out, now), Err(DropKind::BadIcv));
        // An unknown SPI.
        let mut unknown = good.clone();
        unknown[0] ^= 0x80;
        assert_eq!(b.open(&mut unknown, now), Err(DropKind::UnknownSpi));
        // Short.
        assert_eq!(b.open(&mut [0, 0], now), Err(DropKind::Malformed));
        assert_eq!(
            b.open(&mut good[..12].to_vec(), now),
            Err(DropKind::Malformed)
        );
        // Sealed by a peer that protects what the SA was not made for.
        let spoofed = ipv4([10, 9, 0, 5], [10, 2, 0, 9], 60);
        let mut out2 = Vec::new();
        a.seal(ka, &spoofed, &mut out2).unwrap();
        assert_eq!(b.open(&mut out2, now), Err(DropKind::SelectorMismatch));
        // Still working after all that.
        let mut ok = good.clone();
        assert!(b.open(&mut ok, now).is_ok());
        let d = &b.drops[0];
        assert_eq!(d.get(DropKind::Replayed), 1);
        assert_eq!(d.get(DropKind::BadIcv), 1);
        assert_eq!(d.get(DropKind::SelectorMismatch), 1);
        assert_eq!(b.unattributed.get(DropKind::UnknownSpi), 1);
        assert_eq!(b.unattributed.get(DropKind::Malformed), 1);
        assert_eq!(d.get(DropKind::Malformed), 1);
        assert!(b.child(kb).unwrap().last_in.is_some());
    }

    #[test]
    fn rekey_moves_outbound_and_keeps_the_old_inbound() {
        let (left, right) = (ts([10, 1, 0, 0], 24), ts([10, 2, 0, 0], 24));
        let now = Instant::now();
        let mut a = SaTable::new(1);
        let mut b = SaTable::new(1);
        let old_a = a.install(0, child(1, 0x1111, 7, left, right), now).unwrap();
        let old_b = b.install(0, child(1, 0x1111, 7, right, left), now).unwrap();
        let packet = ipv4([10, 1, 0, 5], [10, 2, 0, 9], 80);
        let mut in_flight = Vec::new();
        a.seal(old_a, &packet, &mut in_flight).unwrap();
        let mut new = child(2, 0x2222, 9, left, right);
        new.replaces = Some(ChildId(1));
        let new_a = a.install(0, new, now).unwrap();
        let mut new = child(2, 0x2222, 9, right, left);
        new.replaces = Some(ChildId(1));
        b.install(0, new, now).unwrap();
        assert_eq!(a.select_outbound(0, &packet), Ok(new_a));
        // A packet sealed with the old SA still opens.
        assert_eq!(b.open(&mut in_flight, now).map(|d| d.key), Ok(old_b));
        let mut out = Vec::new();
        a.seal(new_a, &packet, &mut out).unwrap();
        assert!(b.open(&mut out, now).is_ok());
        // A NAT's new port: ESP in UDP follows it.
        let moved: SocketAddr = "192.0.2.2:61000".parse().unwrap();
        assert_eq!(
            b.follow_peer(old_b, moved),
            Some("192.0.2.2:4500".parse().unwrap())
        );
        assert_eq!(b.follow_peer(old_b, moved), None);
        assert_eq!(b.child(old_b).unwrap().remote, moved);
        // ChildDown of the old one.
        assert!(b.remove(old_b).is_some());
        assert_eq!(b.len(), 1);
        assert!(a.install(0, child(3, 0x2222, 9, left, right), now).is_err());
        assert_eq!(a.remove_conn(0), 2);
        assert!(a.is_empty());
        let _ = Ipv4Addr::LOCALHOST;
    }
}
