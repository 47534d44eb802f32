//! Pure packet work for tun offload mode: the virtio_net_hdr, checksum
//! completion of what the kernel hands over, the GSO header for what we
//! write, and software segmentation of a TCP super-packet.
//!
//! - `struct virtio_net_hdr`: virtio specification 1.1 section 5.1.6 (the
//!   legacy 10-byte layout, host byte order, as tun uses it without
//!   `TUNSETVNETLE`).
//! - Internet checksum: RFC 1071; IPv4 header checksum RFC 791 section 3.1;
//!   TCP pseudo-header RFC 9293 section 3.1 (IPv4) and RFC 8200 section 8.1
//!   (IPv6).
//! - Segmentation follows what Linux's `tcp_gso_segment` does: every segment
//!   gets the headers of the super-packet, its own sequence number, IPv4
//!   identification + 1 per segment, FIN and PSH only on the last, CWR only
//!   on the first.
//!
//! Not handled: UDP GSO (we never enable `TUN_F_USO*`/`TUN_F_UFO`, so the
//! kernel segments UDP itself), IPv6 extension headers in front of TCP on
//! the write path (such packets are written without GSO), and IPv6 jumbo
//! packets (RFC 2675; the tun's GSO limit keeps packets under 64 KiB).
//!
//! Every function here takes bytes that may come from the peer: lengths are
//! checked, and a packet that does not parse is an [`OffloadError`].

use thiserror::Error;

/// Size of the legacy `struct virtio_net_hdr`.
pub const VNET_HDR_LEN: usize = 10;

/// Room a read buffer needs in offload mode: the kernel's GSO limit for tun
/// (`GSO_LEGACY_MAX_SIZE`, 64 KiB) plus slack.
pub const MAX_OFFLOAD_PACKET: usize = 65536 + 256;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum from `csum_start` is left to do.
pub const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksum was checked.
pub const F_DATA_VALID: u8 = 2;
/// `VIRTIO_NET_HDR_GSO_NONE`.
pub const GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`.
pub const GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_UDP` (UFO; never enabled here).
pub const GSO_UDP: u8 = 3;
/// `VIRTIO_NET_HDR_GSO_TCPV6`.
pub const GSO_TCPV6: u8 = 4;
/// `VIRTIO_NET_HDR_GSO_ECN`: the sender set CWR; segments after the first
/// must not carry it.
pub const GSO_ECN: u8 = 0x80;

const IPPROTO_TCP: u8 = 6;
/// Offset of the checksum in the TCP header (RFC 9293 section 3.1).
const TCP_CHECKSUM_AT: usize = 16;

/// The legacy `struct virtio_net_hdr` (virtio 1.1 section 5.1.6).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VnetHdr {
    /// `F_NEEDS_CSUM`, `F_DATA_VALID`.
    pub flags: u8,
    /// `GSO_*`, possibly with `GSO_ECN`.
    pub gso_type: u8,
    /// Length of the headers to copy into every segment.
    pub hdr_len: u16,
    /// Payload bytes per segment.
    pub gso_size: u16,
    /// Where the checksum to complete starts.
    pub csum_start: u16,
    /// Where, from `csum_start`, the result goes.
    pub csum_offset: u16,
}

impl VnetHdr {
    /// Read the header (host byte order).
    pub fn parse(b: &[u8; VNET_HDR_LEN]) -> VnetHdr {
        let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        }
    }

    /// The header's bytes (host byte order).
    pub fn emit(&self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        b
    }
}

/// A packet read from a tun: `len` bytes at the start of the caller's
/// buffer, checksums complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Length of the IP packet.
    pub len: usize,
    /// Set for a TCP super-packet: the payload size of the segments the
    /// kernel would have made ([`segment_tcp`] cuts it the same way).
    pub gso: Option<u16>,
}

/// A packet handed over in offload mode that we cannot make whole.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum OffloadError {
    /// `csum_start`/`csum_offset` point outside the packet.
    #[error(
        "virtio_net_hdr csum_start {start} + csum_offset {offset} outside the {len}-byte packet"
    )]
    ChecksumOutside {
        /// `csum_start`.
        start: u16,
        /// `csum_offset`.
        offset: u16,
        /// Packet length.
        len: usize,
    },
    /// A GSO type we never enable.
    #[error("virtio_net_hdr gso_type {0:#x} not enabled")]
    GsoType(u8),
    /// A GSO packet whose headers are not plain IPv4/IPv6 + TCP.
    #[error("GSO packet: {0}")]
    NotTcp(TcpError),
    /// Segment size 0.
    #[error("GSO packet with gso_size 0")]
    ZeroGsoSize,
}

/// Why bytes are not a plain IP + TCP packet.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TcpError {
    /// Shorter than the headers it declares.
    #[error("{field} needs {need} bytes, packet has {have}")]
    Truncated {
        /// The header field that runs past the end.
        field: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes there.
        have: usize,
    },
    /// IP version nibble not 4 or 6.
    #[error("IP version {0}")]
    Version(u8),
    /// IPv4 IHL below 5.
    #[error("IPv4 IHL {0} < 5")]
    Ihl(u8),
    /// The IP length field disagrees with the packet.
    #[error("IP length field says {declared} bytes, packet has {have}")]
    Length {
        /// What the header says.
        declared: usize,
        /// What there is.
        have: usize,
    },
    /// Not TCP right behind the IP header.
    #[error("protocol {0} is not TCP")]
    Protocol(u8),
    /// An IPv4 fragment.
    #[error("IPv4 fragment")]
    Fragment,
    /// TCP data offset below 5.
    #[error("TCP data offset {0} < 5")]
    DataOffset(u8),
}

/// Where the headers of a plain IPv4/IPv6 + TCP packet end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpLayout {
    /// 4 or 6.
    pub version: u8,
    /// IP header length (the TCP header starts here).
    pub ip_len: usize,
    /// TCP header length, options included.
    pub tcp_len: usize,
}

impl TcpLayout {
    /// Headers of IP and TCP together.
    pub fn headers(&self) -> usize {
        self.ip_len + self.tcp_len
    }
}

/// Parse `packet` as IPv4 (RFC 791, not a fragment) or IPv6 (RFC 8200, no
/// extension header) carrying TCP (RFC 9293), its length field matching.
pub fn tcp_layout(packet: &[u8]) -> Result<TcpLayout, TcpError> {
    let need = |field, need: usize| {
        if packet.len() < need {
            Err(TcpError::Truncated {
                field,
                need,
                have: packet.len(),
            })
        } else {
            Ok(())
        }
    };
    need("IP version", 1)?;
    let version = packet[0] >> 4;
    let (ip_len, protocol, declared) = match version {
        4 => {
            need("IPv4 header", 20)?;
            let ihl = packet[0] & 0x0f;
            if ihl < 5 {
                return Err(TcpError::Ihl(ihl));
            }
            let ip_len = usize::from(ihl) * 4;
            need("IPv4 options", ip_len)?;
            let flags_frag = u16::from_be_bytes([packet[6], packet[7]]);
            // MF set or a fragment offset: not a whole TCP segment.
            if flags_frag & 0x3fff != 0 {
                return Err(TcpError::Fragment);
            }
            let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
            (ip_len, packet[9], total)
        }
        6 => {
            need("IPv6 header", 40)?;
            let payload = usize::from(u16::from_be_bytes([packet[4], packet[5]]));
            (40, packet[6], 40 + payload)
        }
        v => return Err(TcpError::Version(v)),
    };
    if declared != packet.len() {
        return Err(TcpError::Length {
            declared,
            have: packet.len(),
        });
    }
    if protocol != IPPROTO_TCP {
        return Err(TcpError::Protocol(protocol));
    }
    need("TCP header", ip_len + 20)?;
    let doff = packet[ip_len + 12] >> 4;
    if doff < 5 {
        return Err(TcpError::DataOffset(doff));
    }
    let tcp_len = usize::from(doff) * 4;
    need("TCP options", ip_len + tcp_len)?;
    Ok(TcpLayout {
        version,
        ip_len,
        tcp_len,
    })
}

/// One's complement sum of `data` as big-endian 16-bit words (a trailing
/// odd byte padded with zero), added to `initial`, not folded (RFC 1071
/// section 4.1, summed 32 bits at a time into a 64-bit accumulator; read
/// 8 octets at a time, both halves added: a 64 KiB packet adds less than
/// 2^46, far from overflowing).
pub fn sum_words(data: &[u8], initial: u64) -> u64 {
    let mut sum = initial;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        sum += (w >> 32) + (w & 0xffff_ffff);
    }
    let rest = chunks.remainder();
    let mut tail = [0u8; 8];
    tail[..rest.len()].copy_from_slice(rest);
    let w = u64::from_be_bytes(tail);
    sum + (w >> 32) + (w & 0xffff_ffff)
}

/// Fold a [`sum_words`] accumulator to 16 bits (end-around carry).
pub fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The TCP pseudo-header sum (not complemented) for a TCP segment of
/// `tcp_len` bytes in `packet` (RFC 9293 section 3.1, RFC 8200 section 8.1).
/// `layout` must come from [`tcp_layout`] of the same packet.
fn pseudo_header_sum(packet: &[u8], layout: &TcpLayout, tcp_len: usize) -> u64 {
    let addrs = if layout.version == 4 {
        &packet[12..20]
    } else {
        &packet[8..40]
    };
    sum_words(addrs, u64::from(IPPROTO_TCP) + tcp_len as u64)
}

/// Recompute the IPv4 header checksum in place (RFC 791 section 3.1).
fn fix_ipv4_header_checksum(packet: &mut [u8], ip_len: usize) {
    packet[10] = 0;
    packet[11] = 0;
    let c = !fold(sum_words(&packet[..ip_len], 0));
    packet[10..12].copy_from_slice(&c.to_be_bytes());
}

/// Recompute the TCP checksum in place from scratch, pseudo-header
/// included. `layout` must come from [`tcp_layout`] of the same packet.
fn fix_tcp_checksum(packet: &mut [u8], layout: &TcpLayout) {
    let at = layout.ip_len + TCP_CHECKSUM_AT;
    packet[at] = 0;
    packet[at + 1] = 0;
    let tcp = &packet[layout.ip_len..];
    let sum = sum_words(tcp, pseudo_header_sum(packet, layout, tcp.len()));
    let c = !fold(sum);
    packet[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

/// Make a packet the kernel handed over in offload mode whole: a TCP
/// super-packet (gso_type TCPV4/TCPV6) gets its IPv4 header checksum and
/// its TCP checksum recomputed from scratch (we do not rely on what the
/// kernel left in the field); a `NEEDS_CSUM` packet otherwise gets the
/// checksum at `csum_start + csum_offset` completed over `csum_start..`
/// (the field holds the pseudo-header sum, as for CHECKSUM_PARTIAL).
/// Returns the segment size of a super-packet.
pub fn complete_offloaded(hdr: &VnetHdr, packet: &mut [u8]) -> Result<Option<u16>, OffloadError> {
    match hdr.gso_type & !GSO_ECN {
        GSO_NONE => {}
        GSO_TCPV4 | GSO_TCPV6 => {
            if hdr.gso_size == 0 {
                return Err(OffloadError::ZeroGsoSize);
            }
            let layout = tcp_layout(packet).map_err(OffloadError::NotTcp)?;
            if layout.version == 4 {
                fix_ipv4_header_checksum(packet, layout.ip_len);
            }
            fix_tcp_checksum(packet, &layout);
            return Ok(Some(hdr.gso_size));
        }
        other => return Err(OffloadError::GsoType(other)),
    }
    if hdr.flags & F_NEEDS_CSUM != 0 {
        let start = usize::from(hdr.csum_start);
        let at = start + usize::from(hdr.csum_offset);
        if at + 2 > packet.len() {
            return Err(OffloadError::ChecksumOutside {
                start: hdr.csum_start,
                offset: hdr.csum_offset,
                len: packet.len(),
            });
        }
        // 0 and 0xffff are the same one's complement number; UDP reads 0
        // as "no checksum" (RFC 768), so 0xffff is the one to write, as
        // the kernel's CSUM_MANGLED_0.
        let c = match !fold(sum_words(&packet[start..], 0)) {
            0 => 0xffff,
            c => c,
        };
        packet[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }
    Ok(None)
}

/// The virtio_net_hdr and TCP checksum field for writing `packet` (longer
/// than `mtu`) as a GSO packet whose segments fit `mtu`; `None` when it is
/// not a plain TCP packet with payload (write it as it is then).
///
/// The header says NEEDS_CSUM from the TCP header, gso_type TCPV4/TCPV6
/// (with ECN when CWR is set), gso_size = `mtu` minus both headers. The
/// returned field value is the pseudo-header sum over the whole TCP
/// length, folded and not complemented, as Linux's `tcp_v4_send_check`
/// leaves it for CHECKSUM_PARTIAL (its `tcp_gso_segment` adjusts it per
/// segment).
pub fn gso_plan(packet: &[u8], mtu: usize) -> Option<(VnetHdr, u16)> {
    let layout = tcp_layout(packet).ok()?;
    let headers = layout.headers();
    let gso_size = u16::try_from(mtu.checked_sub(headers)?).ok()?;
    if gso_size == 0 || packet.len() <= headers {
        return None;
    }
    let cwr = packet[layout.ip_len + 13] & 0x80 != 0;
    let mut gso_type = if layout.version == 4 {
        GSO_TCPV4
    } else {
        GSO_TCPV6
    };
    if cwr {
        gso_type |= GSO_ECN;
    }
    let tcp_len = packet.len() - layout.ip_len;
    let pseudo = fold(pseudo_header_sum(packet, &layout, tcp_len));
    Some((
        VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type,
            hdr_len: headers as u16,
            gso_size,
            csum_start: layout.ip_len as u16,
            csum_offset: TCP_CHECKSUM_AT as u16,
        },
        pseudo,
    ))
}

/// Cut a TCP super-packet into packets of at most `segment_payload` payload
/// bytes each, as the kernel would (see the module docs), each with valid
/// checksums, handed to `emit` one by one from `scratch` (reused, so no
/// allocation once it has grown). A packet with no more payload than that
/// is emitted unchanged.
pub fn segment_tcp(
    packet: &[u8],
    segment_payload: usize,
    scratch: &mut Vec<u8>,
    emit: &mut dyn FnMut(&[u8]),
) -> Result<(), OffloadError> {
    if segment_payload == 0 {
        return Err(OffloadError::ZeroGsoSize);
    }
    let layout = tcp_layout(packet).map_err(OffloadError::NotTcp)?;
    let headers = layout.headers();
    let payload = &packet[headers..];
    if payload.len() <= segment_payload {
        emit(packet);
        return Ok(());
    }
    let tcp = layout.ip_len;
    let seq0 = u32::from_be_bytes([
        packet[tcp + 4],
        packet[tcp + 5],
        packet[tcp + 6],
        packet[tcp + 7],
    ]);
    let flags0 = packet[tcp + 13];
    let id0 = u16::from_be_bytes([packet[4], packet[5]]);
    let count = payload.len().div_ceil(segment_payload);
    for (i, chunk) in payload.chunks(segment_payload).enumerate() {
        scratch.clear();
        scratch.extend_from_slice(&packet[..headers]);
        scratch.extend_from_slice(chunk);
        let len = scratch.len();
        let seq = seq0.wrapping_add((i * segment_payload) as u32);
        scratch[tcp + 4..tcp + 8].copy_from_slice(&seq.to_be_bytes());
        let mut flags = flags0;
        if i + 1 < count {
            flags &= !(0x01 | 0x08); // FIN, PSH: last segment only
        }
        if i > 0 {
            flags &= !0x80; // CWR: first segment only
        }
        scratch[tcp + 13] = flags;
        if layout.version == 4 {
            scratch[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            let id = id0.wrapping_add(i as u16);
            scratch[4..6].copy_from_slice(&id.to_be_bytes());
            fix_ipv4_header_checksum(scratch, layout.ip_len);
        } else {
            scratch[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
        }
        fix_tcp_checksum(scratch, &layout);
        emit(scratch);
    }
    Ok(())
}

/// True when the IPv4 header checksum (if IPv4) and the TCP checksum of
/// `packet` verify (RFC 1071 section 4: the sum over the data with the
/// checksum field is all ones). For tests and debugging.
pub fn tcp_checksums_valid(packet: &[u8]) -> bool {
    let Ok(layout) = tcp_layout(packet) else {
        return false;
    };
    if layout.version == 4 && fold(sum_words(&packet[..layout.ip_len], 0)) != 0xffff {
        return false;
    }
    let tcp = &packet[layout.ip_len..];
    fold(sum_words(
        tcp,
        pseudo_header_sum(packet, &layout, tcp.len()),
    )) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 s4.1 word by word, against the 8-octet loop, for every
    /// length up to 40 and starting sums (odd lengths padded with zero).
    #[test]
    fn sum_words_is_the_sum_of_16_bit_words() {
        let data: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(97) ^ 0xa5).collect();
        for len in 0..=data.len() {
            for initial in [0u64, 0xffff, 0x1_2345] {
                let reference = data[..len].chunks(2).fold(initial, |sum, w| {
                    sum + u64::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]))
                });
                assert_eq!(
                    fold(sum_words(&data[..len], initial)),
                    fold(reference),
                    "length {len}, initial {initial:#x}"
                );
            }
        }
    }

    /// IPv4 + TCP, 10.0.0.2:40000 -> 10.1.0.2:5001, seq 1000, ack 77,
    /// PSH|ACK, "hello, tsunagi!\n"; checksums computed independently
    /// (IPv4 header 0x1488, TCP 0x18fd, pseudo-header sum 0x142f).
    const KNOWN: [u8; 56] = [
        0x45, 0x00, 0x00, 0x38, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x14, 0x88, 0x0a, 0x00, 0x00,
        0x02, 0x0a, 0x01, 0x00, 0x02, 0x9c, 0x40, 0x13, 0x89, 0x00, 0x00, 0x03, 0xe8, 0x00, 0x00,
        0x00, 0x4d, 0x50, 0x18, 0xff, 0xff, 0x18, 0xfd, 0x00, 0x00, 0x68, 0x65, 0x6c, 0x6c, 0x6f,
        0x2c, 0x20, 0x74, 0x73, 0x75, 0x6e, 0x61, 0x67, 0x69, 0x21, 0x0a,
    ];

    #[test]
    fn known_packet_verifies() {
        assert!(tcp_checksums_valid(&KNOWN));
        let mut bad = KNOWN;
        bad[50] ^= 1;
        assert!(!tcp_checksums_valid(&bad));
    }

    #[test]
    fn needs_csum_completion_matches_known_packet() {
        // What the kernel hands over for CHECKSUM_PARTIAL: the field holds
        // the pseudo-header sum.
        let mut p = KNOWN;
        p[36..38].copy_from_slice(&0x142fu16.to_be_bytes());
        let hdr = VnetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: 20,
            csum_offset: 16,
            ..VnetHdr::default()
        };
        assert_eq!(complete_offloaded(&hdr, &mut p), Ok(None));
        assert_eq!(p, KNOWN);
    }

    #[test]
    fn gso_completion_recomputes_both_checksums() {
        let mut p = KNOWN;
        p[10..12].copy_from_slice(&[0xde, 0xad]);
        p[36..38].copy_from_slice(&[0xbe, 0xef]);
        let hdr = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            hdr_len: 40,
            gso_size: 8,
            csum_start: 20,
            csum_offset: 16,
        };
        assert_eq!(complete_offloaded(&hdr, &mut p), Ok(Some(8)));
        assert_eq!(p, KNOWN);
    }

    #[test]
    fn bad_offload_headers_are_errors() {
        let mut p = KNOWN;
        let outside = VnetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: 50,
            csum_offset: 16,
            ..VnetHdr::default()
        };
        assert!(matches!(
            complete_offloaded(&outside, &mut p),
            Err(OffloadError::ChecksumOutside { len: 56, .. })
        ));
        let udp = VnetHdr {
            gso_type: GSO_UDP,
            gso_size: 8,
            ..VnetHdr::default()
        };
        assert_eq!(
            complete_offloaded(&udp, &mut p),
            Err(OffloadError::GsoType(GSO_UDP))
        );
        let mut short = [0x45u8, 0, 0, 10, 0, 0, 0, 0, 64, 6];
        let gso = VnetHdr {
            gso_type: GSO_TCPV4,
            gso_size: 8,
            ..VnetHdr::default()
        };
        assert!(matches!(
            complete_offloaded(&gso, &mut short),
            Err(OffloadError::NotTcp(TcpError::Truncated { .. }))
        ));
        assert_eq!(p, KNOWN, "a refused packet is left alone");
    }

    #[test]
    fn vnet_hdr_round_trip() {
        let h = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV6 | GSO_ECN,
            hdr_len: 72,
            gso_size: 1428,
            csum_start: 40,
            csum_offset: 16,
        };
        assert_eq!(VnetHdr::parse(&h.emit()), h);
    }

    #[test]
    fn gso_plan_for_known_packet() {
        // 16 payload bytes, "MTU" 48: segments of 8.
        let (hdr, pseudo) = gso_plan(&KNOWN, 48).expect("plain TCP");
        assert_eq!(
            hdr,
            VnetHdr {
                flags: F_NEEDS_CSUM,
                gso_type: GSO_TCPV4,
                hdr_len: 40,
                gso_size: 8,
                csum_start: 20,
                csum_offset: 16,
            }
        );
        assert_eq!(pseudo, 0x142f);
        // Not TCP: written as it is.
        let mut udp = KNOWN;
        udp[9] = 17;
        assert_eq!(gso_plan(&udp, 48), None);
        // No room for payload at that MTU.
        assert_eq!(gso_plan(&KNOWN, 40), None);
    }

    #[test]
    fn segmentation_like_the_kernel() {
        let mut p = KNOWN;
        p[33] = 0x18 | 0x01 | 0x80; // PSH ACK FIN CWR
        let layout = tcp_layout(&p).unwrap();
        fix_tcp_checksum(&mut p, &layout);
        let mut scratch = Vec::new();
        let mut segs: Vec<Vec<u8>> = Vec::new();
        segment_tcp(&p, 6, &mut scratch, &mut |s| segs.push(s.to_vec())).unwrap();
        assert_eq!(segs.len(), 3);
        let mut payload = Vec::new();
        for (i, s) in segs.iter().enumerate() {
            assert!(tcp_checksums_valid(s), "segment {i}");
            let seq = u32::from_be_bytes(s[24..28].try_into().unwrap());
            assert_eq!(seq, 1000 + 6 * i as u32);
            assert_eq!(u16::from_be_bytes([s[4], s[5]]), 0x1234 + i as u16);
            assert_eq!(usize::from(u16::from_be_bytes([s[2], s[3]])), s.len());
            let flags = s[33];
            assert_eq!(flags & 0x80 != 0, i == 0, "CWR only first");
            assert_eq!(flags & 0x09 != 0, i == 2, "FIN/PSH only last");
            payload.extend_from_slice(&s[40..]);
        }
        assert_eq!(payload, &KNOWN[40..]);
        // Small enough already: unchanged.
        let mut once = Vec::new();
        segment_tcp(&KNOWN, 16, &mut scratch, &mut |s| once.push(s.to_vec())).unwrap();
        assert_eq!(once, vec![KNOWN.to_vec()]);
    }

    #[test]
    fn odd_lengths_sum_like_rfc_1071() {
        // RFC 1071 section 3's example words 0001 f203 f4f5 f6f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum_words(&data, 0)), 0xddf2);
        // A trailing odd byte is the high half of a last word.
        assert_eq!(fold(sum_words(&[0x12, 0x34, 0x56], 0)), 0x6834);
    }
}
