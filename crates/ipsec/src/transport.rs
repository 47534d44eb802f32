//! Transport mode (RFC 4303 s3.1.1) for a gateway that does ESP in
//! userland: the host's own packets for a transport-mode SA reach the
//! driver whole (through a tun and a policy-routing rule); [`split`] finds
//! the upper-layer segment that ESP protects, and on the way in
//! [`rebuild`] puts an IP header back in front of the decrypted segment
//! for the tun.
//!
//! Behind a NAT the addresses the peer's checksum covered are not the
//! ones the rebuilt header carries, so [`rebuild`] computes the UDP and TCP
//! checksums again over the new pseudo-header: RFC 3948 s3.1.2's
//! "incrementally update" or "recompute" choice, taking the second since
//! the whole segment is at hand.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

/// The IPv4 header this module writes (no options).
pub const IPV4_HEADER_LEN: usize = 20;
/// The IPv6 header this module writes (no extension headers).
pub const IPV6_HEADER_LEN: usize = 40;

/// Why a packet cannot go through transport mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// Shorter than its IP header says.
    #[error("IP packet of {len} octets is truncated (header says {needed})")]
    Truncated {
        /// What arrived.
        len: usize,
        /// What the header needs.
        needed: usize,
    },
    /// Not IPv4 or IPv6.
    #[error("IP version {0} (only 4 and 6)")]
    Version(u8),
    /// An IPv4 fragment: transport mode protects whole segments here.
    #[error("IPv4 fragment (offset {offset}, more {more}): not sent in transport mode")]
    Fragment {
        /// Fragment offset in 8-octet units.
        offset: u16,
        /// More Fragments.
        more: bool,
    },
    /// An IPv6 extension header before the upper layer.
    #[error("IPv6 next header {0}: extension headers are not sent in transport mode")]
    Extension(u8),
    /// Not enough room before the segment for the header.
    #[error("{needed} octets of headroom needed, {have} available")]
    Headroom {
        /// Needed.
        needed: usize,
        /// Available.
        have: usize,
    },
    /// The addresses are of two families.
    #[error("source and destination of different IP versions")]
    Family,
    /// A segment too long for one IP packet.
    #[error("segment of {0} octets too long for one IP packet")]
    TooLong(usize),
}

/// An IP packet taken apart for transport mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// The upper-layer protocol (ESP's Next Header).
    pub protocol: u8,
    /// Where the upper-layer segment lies.
    pub segment: Range<usize>,
    /// Source port (UDP, TCP), 0 otherwise.
    pub src_port: u16,
    /// Destination port (UDP, TCP), 0 otherwise.
    pub dst_port: u16,
}

fn ports(protocol: u8, seg: &[u8]) -> (u16, u16) {
    if matches!(protocol, 6 | 17) && seg.len() >= 4 {
        (
            u16::from_be_bytes([seg[0], seg[1]]),
            u16::from_be_bytes([seg[2], seg[3]]),
        )
    } else {
        (0, 0)
    }
}

/// Takes an outgoing IP packet apart (RFC 4303 s3.1.1: ESP goes after the
/// IP header, before the upper layer).
pub fn split(packet: &[u8]) -> Result<Split, TransportError> {
    let first = *packet
        .first()
        .ok_or(TransportError::Truncated { len: 0, needed: 1 })?;
    match first >> 4 {
        4 => {
            if packet.len() < IPV4_HEADER_LEN {
                return Err(TransportError::Truncated {
                    len: packet.len(),
                    needed: IPV4_HEADER_LEN,
                });
            }
            let ihl = usize::from(first & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
            if ihl < IPV4_HEADER_LEN || total < ihl || packet.len() < total {
                return Err(TransportError::Truncated {
                    len: packet.len(),
                    needed: total.max(ihl),
                });
            }
            let frag = u16::from_be_bytes([packet[6], packet[7]]);
            let (more, offset) = (frag & 0x2000 != 0, frag & 0x1fff);
            if more || offset != 0 {
                return Err(TransportError::Fragment { offset, more });
            }
            let protocol = packet[9];
            let src = IpAddr::V4(Ipv4Addr::new(
                packet[12], packet[13], packet[14], packet[15],
            ));
            let dst = IpAddr::V4(Ipv4Addr::new(
                packet[16], packet[17], packet[18], packet[19],
            ));
            let (src_port, dst_port) = ports(protocol, &packet[ihl..total]);
            Ok(Split {
                src,
                dst,
                protocol,
                segment: ihl..total,
                src_port,
                dst_port,
            })
        }
        6 => {
            if packet.len() < IPV6_HEADER_LEN {
                return Err(TransportError::Truncated {
                    len: packet.len(),
                    needed: IPV6_HEADER_LEN,
                });
            }
            let payload = usize::from(u16::from_be_bytes([packet[4], packet[5]]));
            let total = IPV6_HEADER_LEN + payload;
            if packet.len() < total {
                return Err(TransportError::Truncated {
                    len: packet.len(),
                    needed: total,
                });
            }
            let protocol = packet[6];
            if matches!(protocol, 0 | 43 | 44 | 60 | 51 | 50) {
                return Err(TransportError::Extension(protocol));
            }
            let addr = |b: &[u8]| {
                let mut o = [0u8; 16];
                o.copy_from_slice(b);
                IpAddr::V6(Ipv6Addr::from(o))
            };
            let (src_port, dst_port) = ports(protocol, &packet[IPV6_HEADER_LEN..total]);
            Ok(Split {
                src: addr(&packet[8..24]),
                dst: addr(&packet[24..40]),
                protocol,
                segment: IPV6_HEADER_LEN..total,
                src_port,
                dst_port,
            })
        }
        v => Err(TransportError::Version(v)),
    }
}

/// The Internet checksum's running sum over `data` (RFC 1071).
fn sum(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Puts an IP header in front of the decrypted segment at `segment` (the
/// buffer needs 20 or 40 octets of headroom before it), with `src` and
/// `dst` as the SA's addresses (the peer's as we see it, ours), and
/// recomputes a UDP or TCP checksum for them. Returns the packet's range.
pub fn rebuild(
    buf: &mut [u8],
    segment: Range<usize>,
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
) -> Result<Range<usize>, TransportError> {
    let seg_len = segment.len();
    let (pseudo, header_len) = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut p = Vec::with_capacity(12);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&[0, protocol]);
            p.extend_from_slice(&(seg_len as u16).to_be_bytes());
            (p, IPV4_HEADER_LEN)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut p = Vec::with_capacity(40);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&(seg_len as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, protocol]);
            (p, IPV6_HEADER_LEN)
        }
        _ => return Err(TransportError::Family),
    };
    if segment.start < header_len {
        return Err(TransportError::Headroom {
            needed: header_len,
            have: segment.start,
        });
    }
    if seg_len + header_len > usize::from(u16::MAX) {
        return Err(TransportError::TooLong(seg_len));
    }
    // The upper layer's checksum over the new pseudo-header (RFC 768,
    // RFC 9293 s3.1, RFC 8200 s8.1).
    let at = match protocol {
        17 if seg_len >= 8 => Some(6),
        6 if seg_len >= 20 => Some(16),
        _ => None,
    };
    if let Some(at) = at {
        let seg = &mut buf[segment.clone()];
        // UDP over IPv4 with a zero checksum means "none" (RFC 768); keep
        // it so.
        let none = protocol == 17 && header_len == IPV4_HEADER_LEN && seg[6] == 0 && seg[7] == 0;
        if !none {
            seg[at] = 0;
            seg[at + 1] = 0;
            let mut c = fold(sum(seg, sum(&pseudo, 0)));
            if protocol == 17 && c == 0 {
                c = 0xffff;
            }
            seg[at..at + 2].copy_from_slice(&c.to_be_bytes());
        }
    }
    let start = segment.start - header_len;
    let h = &mut buf[start..segment.start];
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = (seg_len + header_len) as u16;
            h[0] = 0x45;
            h[1] = 0;
            h[2..4].copy_from_slice(&total.to_be_bytes());
            h[4..8].copy_from_slice(&[0, 0, 0x40, 0]);
            h[8] = 64;
            h[9] = protocol;
            h[10..12].copy_from_slice(&[0, 0]);
            h[12..16].copy_from_slice(&s.octets());
            h[16..20].copy_from_slice(&d.octets());
            let c = fold(sum(h, 0));
            h[10..12].copy_from_slice(&c.to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            h[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
            h[4..6].copy_from_slice(&(seg_len as u16).to_be_bytes());
            h[6] = protocol;
            h[7] = 64;
            h[8..24].copy_from_slice(&s.octets());
            h[24..40].copy_from_slice(&d.octets());
        }
        _ => unreachable!("checked above"),
    }
    Ok(start..segment.end)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A UDP datagram as Linux sends it: 192.168.1.10:1701 ->
    /// 203.0.113.5:1701, "hello", checksum 0x8a1b computed by hand from
    /// RFC 768's pseudo-header.
    fn udp_v4() -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 33, 0x12, 0x34, 0x40, 0, 64, 17, 0, 0, 192, 168, 1, 10, 203, 0, 113, 5,
        ];
        p.extend_from_slice(&[0x06, 0xa5, 0x06, 0xa5, 0, 13, 0, 0]);
        p.extend_from_slice(b"hello");
        let c = fold(sum(&p[0..20], 0));
        p[10..12].copy_from_slice(&c.to_be_bytes());
        let mut pseudo = vec![192, 168, 1, 10, 203, 0, 113, 5, 0, 17, 0, 13];
        pseudo.truncate(12);
        let c = fold(sum(&p[20..], sum(&pseudo, 0)));
        p[26..28].copy_from_slice(&c.to_be_bytes());
        p
    }

    fn valid_udp(packet: &[u8]) -> bool {
        let s = split(packet).unwrap();
        let seg = &packet[s.segment.clone()];
        let mut pseudo = Vec::new();
        match (s.src, s.dst) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                pseudo.extend_from_slice(&a.octets());
                pseudo.extend_from_slice(&b.octets());
                pseudo.extend_from_slice(&[0, 17]);
                pseudo.extend_from_slice(&(seg.len() as u16).to_be_bytes());
            }
            _ => unreachable!(),
        }
        fold(sum(seg, sum(&pseudo, 0))) == 0
    }

    #[test]
    fn split_finds_the_udp_segment_and_ports() {
        let p = udp_v4();
        let s = split(&p).unwrap();
        assert_eq!(s.protocol, 17);
        assert_eq!(s.segment, 20..33);
        assert_eq!((s.src_port, s.dst_port), (1701, 1701));
        assert_eq!(s.dst, IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5)));
        assert!(valid_udp(&p));
    }

    #[test]
    fn rebuild_behind_nat_recomputes_the_checksum() {
        // The peer sent from its private address; we see its NAT's.
        let p = udp_v4();
        let mut buf = vec![0u8; 40];
        buf.extend_from_slice(&p[20..]);
        let seg = 40..buf.len();
        let nat = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
        let us = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5));
        let r = rebuild(&mut buf, seg, nat, us, 17).unwrap();
        let packet = &buf[r];
        assert_eq!(packet.len(), 33);
        assert_eq!(split(packet).unwrap().src, nat);
        assert!(
            valid_udp(packet),
            "UDP checksum valid for the new addresses"
        );
        assert_eq!(fold(sum(&packet[..20], 0)), 0, "IPv4 header checksum valid");
    }

    #[test]
    fn fragments_options_and_truncation_are_refused() {
        let mut p = udp_v4();
        p[6] = 0x20;
        assert!(matches!(
            split(&p),
            Err(TransportError::Fragment { more: true, .. })
        ));
        let p = udp_v4();
        assert!(matches!(
            split(&p[..30]),
            Err(TransportError::Truncated { .. })
        ));
        assert!(matches!(
            split(&[0x50; 40]),
            Err(TransportError::Version(5))
        ));
        let mut buf = vec![0u8; 30];
        assert!(matches!(
            rebuild(
                &mut buf,
                10..30,
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                17
            ),
            Err(TransportError::Headroom { .. })
        ));
    }
}
