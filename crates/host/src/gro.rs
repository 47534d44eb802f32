//! Receive coalescing for an offload-mode tun: what the kernel's GRO does
//! for a network card (Linux `tcp_gro_receive`), done in userland before
//! the packets out of a tunnel are written to the tun. Consecutive
//! full-sized IPv4 TCP segments of one flow become one super-packet, which
//! [`crate::Tun`] writes as one GSO packet: one `write`, and one pass of
//! the forwarding path and of the receiver's TCP for up to 64 KiB instead
//! of one per 1400 octets.
//!
//! A segment joins the packet being built only when it could have come out
//! of that packet's segmentation (RFC 9293 section 3.1 fields, as
//! `tcp_gro_receive` checks them):
//! - IPv4 without options or fragments, TCP, the total length the packet's;
//! - flags ACK, and PSH only on the last segment (it ends the packet);
//!   anything else (SYN, FIN, RST, URG, ECE, CWR) is written alone;
//! - the same addresses, TOS, TTL, DF, ports, acknowledgement number,
//!   window, urgent pointer and options (timestamps included);
//! - its sequence number follows the last segment's, every segment but the
//!   last is full (the first's length), the IPv4 identification increments
//!   (unless DF is set), and the whole stays within 65535 octets.
//!
//! Every segment's checksums are checked before it is merged: what comes
//! out of a PPTP tunnel has no integrity check of its own, and the GSO
//! write makes the kernel compute new checksums, which would hide a
//! corrupted segment. One that fails is written alone, for the receiver to
//! drop.

use crate::offload::tcp_checksums_valid;

/// The IPv4 header coalesced packets have (no options).
const IP_HDR: usize = 20;
/// The largest IPv4 packet.
const MAX_IP: usize = 65535;
/// TCP flags (RFC 9293 section 3.1).
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;
/// IPv4 flags: Don't Fragment, More Fragments; and the fragment offset.
const DF: u16 = 0x4000;
const MF_AND_OFFSET: u16 = 0x3fff;

/// What a segment that may be merged looks like.
#[derive(Debug, Clone, Copy)]
struct Segment {
    /// IPv4 and TCP header octets.
    headers: usize,
    /// Payload octets.
    len: usize,
    seq: u32,
    id: u16,
    df: bool,
    psh: bool,
}

/// The segment `p` could be merged, if it is one (see the module docs).
fn segment(p: &[u8]) -> Option<Segment> {
    if p.len() < IP_HDR + 20 || p[0] != 0x45 || p[9] != 6 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
    let frag = u16::from_be_bytes([p[6], p[7]]);
    if total != p.len() || frag & MF_AND_OFFSET != 0 {
        return None;
    }
    let tcp_len = usize::from(p[IP_HDR + 12] >> 4) * 4;
    let headers = IP_HDR + tcp_len;
    if tcp_len < 20 || headers >= p.len() {
        return None;
    }
    let flags = p[IP_HDR + 13];
    if flags & !PSH != ACK {
        return None;
    }
    Some(Segment {
        headers,
        len: p.len() - headers,
        seq: u32::from_be_bytes([p[24], p[25], p[26], p[27]]),
        id: u16::from_be_bytes([p[4], p[5]]),
        df: frag & DF != 0,
        psh: flags & PSH != 0,
    })
}

/// The super-packet being built (see the module docs).
#[derive(Debug, Default)]
pub struct Coalescer {
    buf: Vec<u8>,
    /// Segments in `buf` (0: nothing is being built).
    segments: usize,
    /// The first segment's: every other segment must match it.
    first: Option<Segment>,
    /// The last segment's payload length.
    last_len: usize,
    next_seq: u32,
    next_id: u16,
    /// Segments merged into an earlier one.
    merged: u64,
}

impl Coalescer {
    /// A coalescer with nothing pending.
    pub fn new() -> Coalescer {
        Coalescer::default()
    }

    /// Takes `packet` for the tun: merged into the packet being built, or
    /// that one is written first (`write`) and this one starts the next;
    /// a packet that cannot be merged is written as it is.
    pub fn push(&mut self, packet: &[u8], write: &mut dyn FnMut(&[u8])) {
        let Some(seg) = segment(packet).filter(|_| tcp_checksums_valid(packet)) else {
            self.flush(write);
            write(packet);
            return;
        };
        if self.fits(packet, &seg) {
            self.buf.extend_from_slice(&packet[seg.headers..]);
            self.segments += 1;
            self.merged += 1;
            self.last_len = seg.len;
            self.next_seq = seg.seq.wrapping_add(seg.len as u32);
            self.next_id = seg.id.wrapping_add(1);
            if seg.psh {
                self.buf[IP_HDR + 13] |= PSH;
                self.flush(write);
            }
            return;
        }
        self.flush(write);
        self.buf.clear();
        self.buf.extend_from_slice(packet);
        self.segments = 1;
        self.first = Some(seg);
        self.last_len = seg.len;
        self.next_seq = seg.seq.wrapping_add(seg.len as u32);
        self.next_id = seg.id.wrapping_add(1);
        if seg.psh {
            self.flush(write);
        }
    }

    /// Whether `p` (whose shape is `seg`) continues the packet being built.
    fn fits(&self, p: &[u8], seg: &Segment) -> bool {
        let Some(first) = &self.first else {
            return false;
        };
        let b = &self.buf;
        let h = first.headers;
        self.segments > 0
            && seg.headers == h
            && seg.seq == self.next_seq
            && self.last_len == first.len
            && seg.len <= first.len
            && b.len() + seg.len <= MAX_IP
            && seg.df == first.df
            && (seg.df || seg.id == self.next_id)
            // TOS; TTL and protocol; addresses.
            && p[1] == b[1]
            && p[8..10] == b[8..10]
            && p[12..20] == b[12..20]
            // Ports; acknowledgement number; data offset; flags but PSH;
            // window; urgent pointer and options.
            && p[20..24] == b[20..24]
            && p[28..33] == b[28..33]
            && p[33] & !PSH == b[33] & !PSH
            && p[34..36] == b[34..36]
            && p[38..h] == b[38..h]
    }

    /// Writes the packet being built, if any: one segment as it came,
    /// several as one packet with its IPv4 length and header checksum set
    /// (the TCP checksum is the tun's to set for the GSO write).
    pub fn flush(&mut self, write: &mut dyn FnMut(&[u8])) {
        if self.segments == 0 {
            return;
        }
        if self.segments > 1 {
            let total = u16::try_from(self.buf.len()).unwrap_or(u16::MAX);
            self.buf[2..4].copy_from_slice(&total.to_be_bytes());
            self.buf[10..12].copy_from_slice(&[0, 0]);
            let sum = crate::offload::fold(crate::offload::sum_words(&self.buf[..IP_HDR], 0));
            self.buf[10..12].copy_from_slice(&(!sum).to_be_bytes());
        }
        write(&self.buf);
        self.segments = 0;
        self.first = None;
    }

    /// Nothing is being built.
    pub fn is_empty(&self) -> bool {
        self.segments == 0
    }

    /// Segments merged into an earlier one so far.
    pub fn merged(&self) -> u64 {
        self.merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offload::segment_tcp;

    /// An IPv4 TCP segment 10.0.0.1:1000 -> 10.0.0.2:2000 with `payload`,
    /// sequence `seq`, identification `id`, flags `flags`, valid
    /// checksums, and a timestamp option.
    fn tcp(seq: u32, id: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
        let headers = 20 + 32;
        let mut p = vec![0u8; headers + payload.len()];
        p[0] = 0x45;
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[4..6].copy_from_slice(&id.to_be_bytes());
        p[8] = 64;
        p[9] = 6;
        p[12..16].copy_from_slice(&[10, 0, 0, 1]);
        p[16..20].copy_from_slice(&[10, 0, 0, 2]);
        p[20..22].copy_from_slice(&1000u16.to_be_bytes());
        p[22..24].copy_from_slice(&2000u16.to_be_bytes());
        p[24..28].copy_from_slice(&seq.to_be_bytes());
        p[28..32].copy_from_slice(&77u32.to_be_bytes());
        p[32] = 8 << 4;
        p[33] = flags;
        p[34..36].copy_from_slice(&512u16.to_be_bytes());
        // NOP NOP Timestamp (RFC 7323 section 3).
        p[40..52].copy_from_slice(&[1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 8]);
        p[headers..].copy_from_slice(payload);
        fix_checksums(&mut p);
        p
    }

    fn fix_checksums(p: &mut [u8]) {
        use crate::offload::{fold, sum_words};
        p[10..12].copy_from_slice(&[0, 0]);
        let ip = !fold(sum_words(&p[..20], 0));
        p[10..12].copy_from_slice(&ip.to_be_bytes());
        p[36..38].copy_from_slice(&[0, 0]);
        let tcp_len = p.len() - 20;
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&p[12..20]);
        pseudo.extend_from_slice(&[0, 6]);
        pseudo.extend_from_slice(&(tcp_len as u16).to_be_bytes());
        let sum = !fold(sum_words(&p[20..], sum_words(&pseudo, 0)));
        p[36..38].copy_from_slice(&sum.to_be_bytes());
    }

    fn run(packets: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut c = Coalescer::new();
        let mut out = Vec::new();
        for p in packets {
            c.push(p, &mut |w| out.push(w.to_vec()));
        }
        c.flush(&mut |w| out.push(w.to_vec()));
        out
    }

    #[test]
    fn a_run_of_full_segments_becomes_one_packet_that_segments_back() {
        let data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let segs: Vec<Vec<u8>> = data
            .chunks(1000)
            .enumerate()
            .map(|(i, c)| tcp(100 + 1000 * i as u32, 7 + i as u16, ACK, c))
            .collect();
        let out = run(&segs);
        assert_eq!(out.len(), 1);
        let big = &out[0];
        assert_eq!(big.len(), 52 + 5000);
        assert_eq!(&big[52..], &data[..]);
        assert_eq!(u16::from_be_bytes([big[2], big[3]]) as usize, big.len());
        // The IPv4 header checksum holds; cut again (as the kernel's GSO
        // would), the segments are the originals.
        let mut back = Vec::new();
        let mut scratch = Vec::new();
        let mut big = big.clone();
        fix_checksums(&mut big);
        segment_tcp(&big, 1000, &mut scratch, &mut |s| back.push(s.to_vec())).unwrap();
        assert_eq!(back, segs);
    }

    #[test]
    fn what_cannot_be_merged_goes_alone_and_in_order() {
        let a = tcp(100, 1, ACK, &[1; 1000]);
        let b = tcp(1100, 2, ACK, &[2; 1000]);
        // A gap in the sequence.
        let gap = tcp(3100, 3, ACK, &[3; 1000]);
        assert_eq!(run(&[a.clone(), gap.clone()]), [a.clone(), gap.clone()]);
        // A short segment ends a run: nothing may follow it.
        let short = tcp(1100, 2, ACK, &[2; 500]);
        let after = tcp(1600, 3, ACK, &[3; 1000]);
        let out = run(&[a.clone(), short.clone(), after.clone()]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1], after);
        // PSH ends the packet; FIN and SYN are never merged.
        let psh = tcp(1100, 2, ACK | PSH, &[2; 1000]);
        let out = run(&[a.clone(), psh, b.clone()]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0][33] & PSH, PSH);
        let fin = tcp(1100, 2, ACK | 0x01, &[2; 1000]);
        assert_eq!(run(&[a.clone(), fin.clone()]), [a.clone(), fin]);
        // Another flow.
        let mut other = b.clone();
        other[22..24].copy_from_slice(&2001u16.to_be_bytes());
        fix_checksums(&mut other);
        assert_eq!(run(&[a.clone(), other.clone()]), [a.clone(), other]);
        // A pure ACK is written as it is.
        let ack = tcp(100, 1, ACK, &[]);
        assert_eq!(run(std::slice::from_ref(&ack)), [ack]);
        // The identification must increment without DF.
        let bad_id = tcp(1100, 9, ACK, &[2; 1000]);
        assert_eq!(run(&[a.clone(), bad_id.clone()]), [a.clone(), bad_id]);
        // Not IPv4 TCP: as it is.
        let udp = {
            let mut u = a.clone();
            u[9] = 17;
            u
        };
        assert_eq!(run(std::slice::from_ref(&udp)), [udp]);
    }

    #[test]
    fn a_corrupted_segment_is_never_merged() {
        let a = tcp(100, 1, ACK, &[1; 1000]);
        let mut b = tcp(1100, 2, ACK, &[2; 1000]);
        b[600] ^= 0x40;
        let c = tcp(2100, 3, ACK, &[3; 1000]);
        let out = run(&[a.clone(), b.clone(), c.clone()]);
        assert_eq!(out, [a, b, c]);
    }

    #[test]
    fn the_packet_stays_within_64_kib() {
        let segs: Vec<Vec<u8>> = (0..80u32)
            .map(|i| tcp(1000 * i, i as u16, ACK, &[i as u8; 1000]))
            .collect();
        let out = run(&segs);
        assert!(out.iter().all(|p| p.len() <= MAX_IP));
        let payload: usize = out.iter().map(|p| p.len() - 52).sum();
        assert_eq!(payload, 80_000);
        assert_eq!(out.len(), 2);
    }
}
