//! The L2TP header (RFC 2661 section 3.1), for control and data messages.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |T|L|x|x|S|x|O|P|x|x|x|x|  Ver  |          Length (opt)         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Tunnel ID           |           Session ID          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |             Ns (opt)          |             Nr (opt)          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |      Offset Size (opt)        |    Offset pad... (opt)
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! What section 3.1 requires, and what [`Header::parse`] does with it:
//!
//! - Ver "MUST be 2" ("Packets received with an unknown Ver field MUST be
//!   discarded"; 1 is L2F, RFC 2341): refused, [`HeaderError::Version`];
//! - control messages (T = 1) "MUST" have L and S set and O clear: a
//!   control header without L or S, or with O, is refused naming the bit;
//!   so a control header is always exactly [`CONTROL_HEADER_LEN`] octets;
//! - the x bits "MUST be set to 0" and are ignored on receipt;
//! - Length is the whole message, header included: shorter than the header
//!   or longer than the datagram is refused; octets after Length (padding
//!   below UDP) are not part of the message;
//! - Offset Size counts the pad octets after it; a pad past the end of the
//!   message is refused;
//! - P (priority) is for data messages; on a control message it is ignored.
//!
//! Once [`Header::parse`] returns `Ok`, the payload range it gives lies
//! inside the slice it was given.

use core::ops::Range;

/// The UDP port of L2TP (RFC 2661 section 8.1).
pub const UDP_PORT: u16 = 1701;
/// Ver: 2 for L2TP (section 3.1).
pub const VERSION: u8 = 2;
/// Size of a control message header: flags and Ver, Length, Tunnel ID,
/// Session ID, Ns, Nr.
pub const CONTROL_HEADER_LEN: usize = 12;
/// The longest data header we send: flags and Ver, Length, Tunnel ID,
/// Session ID, Ns, Nr (we send no offset). Reserve this much headroom in
/// front of a PPP frame for [`encapsulate`].
pub const DATA_HEADROOM: usize = 12;

/// Bits of the first 16 bits of the header (section 3.1).
pub mod bits {
    /// T: the message is a control message (1) or a data message (0).
    pub const T: u16 = 0x8000;
    /// L: the Length field is present.
    pub const L: u16 = 0x4000;
    /// S: the Ns and Nr fields are present.
    pub const S: u16 = 0x0800;
    /// O: the Offset Size field is present.
    pub const O: u16 = 0x0200;
    /// P: the data message is to be treated preferentially.
    pub const P: u16 = 0x0100;
    /// The x bits, reserved ("MUST be set to 0 on outgoing messages and
    /// ignored on incoming messages").
    pub const RESERVED: u16 = 0x34f0;
    /// Ver.
    pub const VERSION: u16 = 0x000f;
}

/// Control or data message (the T bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// T = 1.
    Control,
    /// T = 0.
    Data,
}

/// Ns and Nr (present when the S bit is set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Sequence {
    /// Ns: the sequence number of this message.
    pub ns: u16,
    /// Nr: the sequence number expected in the next message from the peer
    /// (control messages); reserved in data messages.
    pub nr: u16,
}

/// A parsed L2TP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// T.
    pub kind: Kind,
    /// The Length field (`None`: the L bit is clear, the message runs to the
    /// end of the datagram).
    pub length: Option<u16>,
    /// Tunnel ID: the receiver's identifier of the tunnel.
    pub tunnel_id: u16,
    /// Session ID: the receiver's identifier of the session (0 for the
    /// tunnel itself).
    pub session_id: u16,
    /// Ns and Nr (the S bit).
    pub sequence: Option<Sequence>,
    /// Offset Size (the O bit): pad octets between the header and the
    /// payload.
    pub offset: Option<u16>,
    /// P.
    pub priority: bool,
}

/// Why a header was refused. Each names the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The datagram ends inside the header.
    #[error("the {got}-octet datagram ends inside the header's {field} (needs {needed} octets)")]
    Truncated {
        /// The field that is cut.
        field: &'static str,
        /// Octets the header needs up to the end of that field.
        needed: usize,
        /// Octets there are.
        got: usize,
    },
    /// Ver is not 2.
    #[error("Ver {version} is not 2{}", if *version == 1 { " (L2F)" } else { "" })]
    Version {
        /// Ver.
        version: u8,
    },
    /// A control message without a bit section 3.1 requires.
    #[error("control message without the {bit} bit ({meaning}): RFC 2661 section 3.1 requires it")]
    ControlBitMissing {
        /// `L` or `S`.
        bit: char,
        /// What the bit says.
        meaning: &'static str,
    },
    /// A control message with the O bit.
    #[error(
        "control message with the O bit (Offset Size) set: RFC 2661 section 3.1 requires it clear"
    )]
    ControlOffset,
    /// Length is shorter than the header it belongs to.
    #[error("Length {length} is shorter than the {header}-octet {kind} header")]
    LengthTooShort {
        /// Length.
        length: u16,
        /// Octets of the header.
        header: usize,
        /// `control` or `data`.
        kind: &'static str,
    },
    /// Length is past the end of the datagram.
    #[error("Length {length} is past the end of the {got}-octet datagram")]
    LengthPastEnd {
        /// Length.
        length: u16,
        /// Octets in the datagram.
        got: usize,
    },
    /// The offset pad runs past the end of the message.
    #[error("Offset Size {offset} runs past the end of the {length}-octet message")]
    OffsetPastEnd {
        /// Offset Size.
        offset: u16,
        /// Octets of the message.
        length: usize,
    },
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

impl Header {
    /// A control message header (T, L and S set), as every control message
    /// and ZLB acknowledgement carries.
    pub fn control(tunnel_id: u16, session_id: u16, ns: u16, nr: u16, length: u16) -> Header {
        Header {
            kind: Kind::Control,
            length: Some(length),
            tunnel_id,
            session_id,
            sequence: Some(Sequence { ns, nr }),
            offset: None,
            priority: false,
        }
    }

    /// A data message header without Length (set by [`encapsulate`] when
    /// `length` is true), sequence numbers or offset.
    pub fn data(tunnel_id: u16, session_id: u16, length: bool) -> Header {
        Header {
            kind: Kind::Data,
            length: length.then_some(0),
            tunnel_id,
            session_id,
            sequence: None,
            offset: None,
            priority: false,
        }
    }

    /// Parses the header at the start of `datagram`, and returns it with
    /// the range of the payload (the AVPs of a control message, the PPP
    /// frame of a data message) in `datagram`. See the module docs for the
    /// checks.
    pub fn parse(datagram: &[u8]) -> Result<(Header, Range<usize>), HeaderError> {
        let got = datagram.len();
        let need = |field: &'static str, needed: usize| {
            if got < needed {
                Err(HeaderError::Truncated { field, needed, got })
            } else {
                Ok(())
            }
        };
        need("flags and Ver", 2)?;
        let flags = be16(datagram, 0);
        let version = (flags & bits::VERSION) as u8;
        if version != VERSION {
            return Err(HeaderError::Version { version });
        }
        let kind = if flags & bits::T != 0 {
            Kind::Control
        } else {
            Kind::Data
        };
        if kind == Kind::Control {
            if flags & bits::L == 0 {
                return Err(HeaderError::ControlBitMissing {
                    bit: 'L',
                    meaning: "Length present",
                });
            }
            if flags & bits::S == 0 {
                return Err(HeaderError::ControlBitMissing {
                    bit: 'S',
                    meaning: "Ns and Nr present",
                });
            }
            if flags & bits::O != 0 {
                return Err(HeaderError::ControlOffset);
            }
        }
        let mut at = 2;
        let length = if flags & bits::L != 0 {
            need("Length", at + 2)?;
            let l = be16(datagram, at);
            at += 2;
            Some(l)
        } else {
            None
        };
        need("Tunnel ID", at + 2)?;
        let tunnel_id = be16(datagram, at);
        need("Session ID", at + 4)?;
        let session_id = be16(datagram, at + 2);
        at += 4;
        let sequence = if flags & bits::S != 0 {
            need("Ns", at + 2)?;
            need("Nr", at + 4)?;
            let s = Sequence {
                ns: be16(datagram, at),
                nr: be16(datagram, at + 2),
            };
            at += 4;
            Some(s)
        } else {
            None
        };
        let offset = if flags & bits::O != 0 {
            need("Offset Size", at + 2)?;
            let o = be16(datagram, at);
            at += 2;
            Some(o)
        } else {
            None
        };
        let end = match length {
            Some(l) => {
                if usize::from(l) < at {
                    return Err(HeaderError::LengthTooShort {
                        length: l,
                        header: at,
                        kind: if kind == Kind::Control {
                            "control"
                        } else {
                            "data"
                        },
                    });
                }
                if usize::from(l) > got {
                    return Err(HeaderError::LengthPastEnd { length: l, got });
                }
                usize::from(l)
            }
            None => got,
        };
        let start = match offset {
            Some(o) => {
                let s = at + usize::from(o);
                if s > end {
                    return Err(HeaderError::OffsetPastEnd {
                        offset: o,
                        length: end,
                    });
                }
                s
            }
            None => at,
        };
        let header = Header {
            kind,
            length,
            tunnel_id,
            session_id,
            sequence,
            offset,
            priority: flags & bits::P != 0,
        };
        Ok((header, start..end))
    }

    /// The first 16 bits: T, L, S, O, P and Ver = 2.
    pub fn flags(&self) -> u16 {
        let mut f = u16::from(VERSION);
        if self.kind == Kind::Control {
            f |= bits::T;
        }
        if self.length.is_some() {
            f |= bits::L;
        }
        if self.sequence.is_some() {
            f |= bits::S;
        }
        if self.offset.is_some() {
            f |= bits::O;
        }
        if self.priority {
            f |= bits::P;
        }
        f
    }

    /// Octets of the header, offset pad included.
    pub fn len(&self) -> usize {
        6 + 2 * usize::from(self.length.is_some())
            + 4 * usize::from(self.sequence.is_some())
            + self.offset.map_or(0, |o| 2 + usize::from(o))
    }

    /// Never: a header has at least flags, Tunnel ID and Session ID.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the header (offset pad as zeros) into the first
    /// [`Header::len`] octets of `buf`.
    ///
    /// # Panics
    ///
    /// When `buf` is shorter than [`Header::len`] (a caller's bug, not the
    /// peer's).
    pub fn emit(&self, buf: &mut [u8]) {
        let n = self.len();
        let buf = &mut buf[..n];
        buf[0..2].copy_from_slice(&self.flags().to_be_bytes());
        let mut at = 2;
        if let Some(l) = self.length {
            buf[at..at + 2].copy_from_slice(&l.to_be_bytes());
            at += 2;
        }
        buf[at..at + 2].copy_from_slice(&self.tunnel_id.to_be_bytes());
        buf[at + 2..at + 4].copy_from_slice(&self.session_id.to_be_bytes());
        at += 4;
        if let Some(s) = self.sequence {
            buf[at..at + 2].copy_from_slice(&s.ns.to_be_bytes());
            buf[at + 2..at + 4].copy_from_slice(&s.nr.to_be_bytes());
            at += 4;
        }
        if let Some(o) = self.offset {
            buf[at..at + 2].copy_from_slice(&o.to_be_bytes());
            at += 2;
            buf[at..].fill(0);
        }
    }
}

/// Why [`encapsulate`] could not wrap a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncapError {
    /// Less room before the payload than the header needs.
    #[error("{headroom} octets of headroom before the payload; the header needs {needed}")]
    Headroom {
        /// Octets before the payload.
        headroom: usize,
        /// Octets of the header.
        needed: usize,
    },
    /// The payload range is not inside the buffer.
    #[error("payload {start}..{end} is not inside the {len}-octet buffer")]
    PayloadOutside {
        /// Start of the payload.
        start: usize,
        /// End of the payload.
        end: usize,
        /// Octets in the buffer.
        len: usize,
    },
    /// The message would be longer than Length can say.
    #[error("a {len}-octet message does not fit the 16-bit Length")]
    TooLong {
        /// Octets of header and payload.
        len: usize,
    },
}

/// Writes `header` into `buf` just before the payload at `payload`
/// (section 3.1), filling in Length when the L bit is set, and returns the
/// range of the whole message in `buf`. Nothing is allocated or copied but
/// the header: the caller reserves [`DATA_HEADROOM`] octets in front of the
/// PPP frame. The frame goes as the PPP engine gives it, address and
/// control field `ff 03` included unless the peer agreed to ACFC: section
/// 5.3 has the LAC strip only "any CRC, link framing, and transparency
/// bytes".
pub fn encapsulate(
    buf: &mut [u8],
    payload: Range<usize>,
    header: &Header,
) -> Result<Range<usize>, EncapError> {
    if payload.start > payload.end || payload.end > buf.len() {
        return Err(EncapError::PayloadOutside {
            start: payload.start,
            end: payload.end,
            len: buf.len(),
        });
    }
    let needed = header.len();
    if payload.start < needed {
        return Err(EncapError::Headroom {
            headroom: payload.start,
            needed,
        });
    }
    let total = needed + payload.len();
    let mut h = *header;
    if h.length.is_some() {
        h.length = Some(u16::try_from(total).map_err(|_| EncapError::TooLong { len: total })?);
    }
    let start = payload.start - needed;
    h.emit(&mut buf[start..payload.start]);
    Ok(start..payload.end)
}
