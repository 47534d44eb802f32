//! The enhanced GRE header that carries PPP frames (RFC 2637 section 4.1),
//! and the IPv4 header a raw `IPPROTO_GRE` socket hands over with it.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |C|R|K|S|s|Recur|A| Flags | Ver |         Protocol Type         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |    Key (HW) Payload Length    |       Key (LW) Call ID        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                  Sequence Number (Optional)                   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |               Acknowledgment Number (Optional)                |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! C, R, s and Recur are 0, K is 1, S says a payload (and a Sequence
//! Number) is present, A says an Acknowledgment Number is present; Flags
//! are 0, Ver is 1, Protocol Type is 0x880B. When S is clear the
//! Acknowledgment Number directly follows the Key: the packet is an
//! acknowledgement only.
//!
//! [`GreHeader::parse`] checks every one of those and that the payload fits
//! in what arrived; [`GreHeader::emit`] writes into a caller's buffer (the
//! headroom before a PPP frame) without allocating.

use std::net::Ipv4Addr;

/// Protocol Type of PPTP's enhanced GRE: PPP, 0x880B (RFC 2637 s4.1).
pub const PROTOCOL_PPP: u16 = 0x880B;
/// The longest header: 8 octets, Sequence Number and Acknowledgment Number.
pub const MAX_HEADER_LEN: usize = 16;
/// The shortest header (no Sequence, no Acknowledgment Number): 8 octets.
pub const MIN_HEADER_LEN: usize = 8;
/// GRE's IP protocol number.
pub const IPPROTO_GRE: u8 = 47;
/// Ver: enhanced GRE.
pub const VERSION: u8 = 1;

const FLAG_C: u8 = 0x80;
const FLAG_R: u8 = 0x40;
const FLAG_K: u8 = 0x20;
const FLAG_S: u8 = 0x10;
const FLAG_SSR: u8 = 0x08;
const RECUR: u8 = 0x07;
const FLAG_A: u8 = 0x80;
const FLAGS: u8 = 0x78;
const VER: u8 = 0x07;

/// Why a GRE packet (or the IPv4 packet around it) was dropped. Each names
/// the field and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GreError {
    /// Fewer octets than the header's flags say it has.
    #[error("GRE header needs {need} octets, {got} arrived")]
    Truncated {
        /// Octets the header needs.
        need: usize,
        /// Octets present.
        got: usize,
    },
    /// A flag that must be 0 is 1 (C, R or s).
    #[error("GRE flag {flag} is set (must be 0 in PPTP)")]
    FlagSet {
        /// "C (Checksum Present)", ...
        flag: &'static str,
    },
    /// Recur is not 0.
    #[error("GRE Recur {value} (must be 0)")]
    Recursion {
        /// The field.
        value: u8,
    },
    /// K is 0: PPTP needs the Key (Payload Length and Call ID).
    #[error("GRE flag K (Key Present) is clear (must be 1 in PPTP)")]
    NoKey,
    /// Flags (bits 9-12) are not 0.
    #[error("GRE Flags 0x{value:x} (must be 0)")]
    Flags {
        /// The four bits.
        value: u8,
    },
    /// Ver is not 1.
    #[error("GRE Ver {value} (must be 1, enhanced GRE)")]
    Version {
        /// The field.
        value: u8,
    },
    /// Protocol Type is not PPP.
    #[error("GRE Protocol Type 0x{value:04x} (must be 0x880b, PPP)")]
    Protocol {
        /// The field.
        value: u16,
    },
    /// S clear (no payload) but a Payload Length.
    #[error(
        "GRE Payload Length {payload_len} with S clear (an acknowledgement carries no payload)"
    )]
    PayloadWithoutSequence {
        /// The Payload Length.
        payload_len: u16,
    },
    /// Neither S nor A: a packet that carries nothing.
    #[error("GRE packet with neither S nor A set carries nothing")]
    Empty,
    /// Payload Length runs past the packet.
    #[error("GRE Payload Length {payload_len}, {available} octets follow the header")]
    PayloadOverrun {
        /// The Payload Length.
        payload_len: u16,
        /// Octets after the header.
        available: usize,
    },
    /// IPv4: fewer than 20 octets, or than IHL says.
    #[error("IPv4 header needs {need} octets, {got} arrived")]
    Ipv4Truncated {
        /// Octets needed.
        need: usize,
        /// Octets present.
        got: usize,
    },
    /// IPv4: Version is not 4.
    #[error("IP Version {value} (must be 4)")]
    Ipv4Version {
        /// The field.
        value: u8,
    },
    /// IPv4: IHL below 5.
    #[error("IPv4 IHL {value} (at least 5)")]
    Ipv4HeaderLength {
        /// The field, in 32-bit words.
        value: u8,
    },
    /// IPv4: Total Length below the header or above what arrived.
    #[error("IPv4 Total Length {total_length}: header {header_len} octets, {got} arrived")]
    Ipv4TotalLength {
        /// The field.
        total_length: u16,
        /// IHL in octets.
        header_len: usize,
        /// Octets present.
        got: usize,
    },
    /// IPv4: a fragment (the kernel reassembles before a raw socket).
    #[error("IPv4 fragment (offset {offset}, more fragments {more}): not reassembled")]
    Ipv4Fragment {
        /// Fragment Offset, in 8-octet units.
        offset: u16,
        /// MF.
        more: bool,
    },
    /// IPv4: Protocol is not GRE.
    #[error("IPv4 Protocol {value} (must be 47, GRE)")]
    NotGre {
        /// The field.
        value: u8,
    },
}

/// One enhanced GRE header (RFC 2637 section 4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GreHeader {
    /// Key (low 16 bits), Call ID: the receiver's ("the Peer's") Call ID.
    pub call_id: u16,
    /// Key (high 16 bits), Payload Length: the payload after the header.
    pub payload_len: u16,
    /// Sequence Number, present when S is set (a payload is present).
    pub seq: Option<u32>,
    /// Acknowledgment Number, present when A is set: the highest Sequence
    /// Number the sender received on this call.
    pub ack: Option<u32>,
}

#[allow(clippy::len_without_is_empty)] // a header is never empty
impl GreHeader {
    /// Parses the header at the start of `packet` (what follows the IPv4
    /// header) and returns it with its length (8, 12 or 16); the payload is
    /// `packet[len..len + payload_len]`. Octets after the payload are
    /// ignored (padding below the IP layer).
    pub fn parse(packet: &[u8]) -> Result<(GreHeader, usize), GreError> {
        if packet.len() < MIN_HEADER_LEN {
            return Err(GreError::Truncated {
                need: MIN_HEADER_LEN,
                got: packet.len(),
            });
        }
        let (b0, b1) = (packet[0], packet[1]);
        for (bit, flag) in [
            (FLAG_C, "C (Checksum Present)"),
            (FLAG_R, "R (Routing Present)"),
            (FLAG_SSR, "s (Strict source route)"),
        ] {
            if b0 & bit != 0 {
                return Err(GreError::FlagSet { flag });
            }
        }
        if b0 & RECUR != 0 {
            return Err(GreError::Recursion { value: b0 & RECUR });
        }
        if b0 & FLAG_K == 0 {
            return Err(GreError::NoKey);
        }
        if b1 & FLAGS != 0 {
            return Err(GreError::Flags {
                value: (b1 & FLAGS) >> 3,
            });
        }
        if b1 & VER != VERSION {
            return Err(GreError::Version { value: b1 & VER });
        }
        let protocol = u16::from_be_bytes([packet[2], packet[3]]);
        if protocol != PROTOCOL_PPP {
            return Err(GreError::Protocol { value: protocol });
        }
        let payload_len = u16::from_be_bytes([packet[4], packet[5]]);
        let call_id = u16::from_be_bytes([packet[6], packet[7]]);
        let has_seq = b0 & FLAG_S != 0;
        let has_ack = b1 & FLAG_A != 0;
        if !has_seq && !has_ack {
            return Err(GreError::Empty);
        }
        if !has_seq && payload_len != 0 {
            return Err(GreError::PayloadWithoutSequence { payload_len });
        }
        let len = MIN_HEADER_LEN + 4 * usize::from(has_seq) + 4 * usize::from(has_ack);
        if packet.len() < len {
            return Err(GreError::Truncated {
                need: len,
                got: packet.len(),
            });
        }
        let word = |at: usize| {
            u32::from_be_bytes([packet[at], packet[at + 1], packet[at + 2], packet[at + 3]])
        };
        let seq = has_seq.then(|| word(8));
        let ack = has_ack.then(|| word(if has_seq { 12 } else { 8 }));
        let available = packet.len() - len;
        if usize::from(payload_len) > available {
            return Err(GreError::PayloadOverrun {
                payload_len,
                available,
            });
        }
        Ok((
            GreHeader {
                call_id,
                payload_len,
                seq,
                ack,
            },
            len,
        ))
    }

    /// [`GreHeader::parse`] and the payload it announces.
    pub fn parse_with_payload(packet: &[u8]) -> Result<(GreHeader, &[u8]), GreError> {
        let (header, len) = GreHeader::parse(packet)?;
        Ok((header, &packet[len..len + usize::from(header.payload_len)]))
    }

    /// The header's length on the wire: 8, plus 4 with a Sequence Number,
    /// plus 4 with an Acknowledgment Number.
    pub fn len(&self) -> usize {
        MIN_HEADER_LEN + 4 * usize::from(self.seq.is_some()) + 4 * usize::from(self.ack.is_some())
    }

    /// An acknowledgement without payload (S clear).
    pub fn is_ack_only(&self) -> bool {
        self.seq.is_none()
    }

    /// Writes the header into the first [`GreHeader::len`] octets of `out`.
    ///
    /// # Panics
    ///
    /// If `out` is shorter than [`GreHeader::len`] (reserve
    /// [`MAX_HEADER_LEN`] octets of headroom).
    pub fn emit(&self, out: &mut [u8]) {
        let len = self.len();
        assert!(
            out.len() >= len,
            "GRE header of {len} octets into {} octets",
            out.len()
        );
        let mut b0 = FLAG_K;
        if self.seq.is_some() {
            b0 |= FLAG_S;
        }
        let mut b1 = VERSION;
        if self.ack.is_some() {
            b1 |= FLAG_A;
        }
        out[0] = b0;
        out[1] = b1;
        out[2..4].copy_from_slice(&PROTOCOL_PPP.to_be_bytes());
        out[4..6].copy_from_slice(&self.payload_len.to_be_bytes());
        out[6..8].copy_from_slice(&self.call_id.to_be_bytes());
        let mut at = 8;
        for word in [self.seq, self.ack].into_iter().flatten() {
            out[at..at + 4].copy_from_slice(&word.to_be_bytes());
            at += 4;
        }
    }
}

/// What a raw `IPPROTO_GRE` socket hands over is the whole IPv4 packet:
/// checks its header (Version 4, IHL, Total Length within what arrived,
/// Protocol 47, not a fragment) and returns the source address and the GRE
/// packet (the octets up to Total Length). The header checksum is not
/// checked: the kernel drops a bad one before a raw socket sees it, and
/// reassembles fragments, so a fragment here is refused.
pub fn ipv4_payload(packet: &[u8]) -> Result<(Ipv4Addr, &[u8]), GreError> {
    if packet.len() < 20 {
        return Err(GreError::Ipv4Truncated {
            need: 20,
            got: packet.len(),
        });
    }
    let version = packet[0] >> 4;
    if version != 4 {
        return Err(GreError::Ipv4Version { value: version });
    }
    let ihl = packet[0] & 0x0f;
    if ihl < 5 {
        return Err(GreError::Ipv4HeaderLength { value: ihl });
    }
    let header_len = usize::from(ihl) * 4;
    if packet.len() < header_len {
        return Err(GreError::Ipv4Truncated {
            need: header_len,
            got: packet.len(),
        });
    }
    let total_length = u16::from_be_bytes([packet[2], packet[3]]);
    if usize::from(total_length) < header_len || usize::from(total_length) > packet.len() {
        return Err(GreError::Ipv4TotalLength {
            total_length,
            header_len,
            got: packet.len(),
        });
    }
    let frag = u16::from_be_bytes([packet[6], packet[7]]);
    let more = frag & 0x2000 != 0;
    let offset = frag & 0x1fff;
    if more || offset != 0 {
        return Err(GreError::Ipv4Fragment { offset, more });
    }
    if packet[9] != IPPROTO_GRE {
        return Err(GreError::NotGre { value: packet[9] });
    }
    let source = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    Ok((source, &packet[header_len..usize::from(total_length)]))
}
