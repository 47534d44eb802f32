//! A PPP frame as every transport carries it: the optional address and
//! control fields, the protocol field and the information field (RFC 1661
//! section 2, RFC 1662 section 3.1), without flags, escapes or FCS.
//!
//! This is what the engine ([`crate::link::Link`]) takes and gives. Packet
//! transports carry it as it is, after a header of their own: PPTP's
//! enhanced GRE (RFC 2637 section 4.3) and L2TP data messages (RFC 2661
//! section 3.1). The SSH byte stream wraps it in async HDLC
//! ([`crate::hdlc`], [`crate::stream`]).
//!
//! - RFC 1661 section 6.6: `ff 03` is present unless the peer agreed to
//!   Address-and-Control-Field-Compression; a receiver accepts it either way.
//! - RFC 1661 section 6.5 and section 2: a protocol below `0x100` may be
//!   one octet when the peer agreed to Protocol-Field-Compression; the low
//!   octet of a protocol field is odd, the high octet even.

/// RFC 1662 section 3.1: the All-Stations address.
pub const ADDRESS: u8 = 0xff;
/// RFC 1662 section 3.1: the Unnumbered Information control field.
pub const CONTROL: u8 = 0x03;
/// The longest header: address, control and a two-octet protocol.
pub const MAX_HEADER: usize = 4;

/// The header of one outgoing frame, built on the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    bytes: [u8; MAX_HEADER],
    len: u8,
}

impl Header {
    /// The header for `protocol`, compressed as far as `acfc` and `pfc`
    /// allow and the receiver can still read it:
    /// - without `ff 03`, a compressed protocol `0x00ff` would read as an
    ///   address field, and an empty information field would make a frame
    ///   of one octet, which async HDLC receivers drop (RFC 1662 section
    ///   4.3): both keep the two-octet protocol;
    /// - only protocols whose high octet is zero are compressed (RFC 1661
    ///   section 6.5).
    pub fn new(protocol: u16, info_is_empty: bool, acfc: bool, pfc: bool) -> Header {
        let mut bytes = [0u8; MAX_HEADER];
        let mut len = 0;
        if !acfc {
            bytes[..2].copy_from_slice(&[ADDRESS, CONTROL]);
            len = 2;
        }
        let ambiguous = acfc && (info_is_empty || protocol == 0x00ff);
        if pfc && protocol < 0x100 && !ambiguous {
            bytes[len] = protocol as u8;
            len += 1;
        } else {
            bytes[len..len + 2].copy_from_slice(&protocol.to_be_bytes());
            len += 2;
        }
        Header {
            bytes,
            len: len as u8,
        }
    }

    /// The full header `ff 03` + two-octet protocol, as LCP Configure,
    /// Terminate and Code-Reject packets always travel (RFC 1661 sections
    /// 6.5 and 6.6, RFC 1662 section 7.1).
    pub fn uncompressed(protocol: u16) -> Header {
        Header::new(protocol, false, false, false)
    }

    /// The header octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// One received frame, `ff 03` and protocol compression undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The PPP protocol field (RFC 1661 section 2).
    pub protocol: u16,
    /// The information field (without padding removal: PPP padding is
    /// protocol specific, RFC 1661 section 2).
    pub info: &'a [u8],
    pub(crate) address_control_omitted: bool,
    pub(crate) protocol_compressed: bool,
}

impl Frame<'_> {
    /// The frame came without `ff 03` (ACFC, RFC 1661 section 6.6).
    pub fn address_control_omitted(&self) -> bool {
        self.address_control_omitted
    }

    /// The protocol field was one octet (PFC, RFC 1661 section 6.5).
    pub fn protocol_compressed(&self) -> bool {
        self.protocol_compressed
    }
}

/// Why a received frame was dropped (RFC 1661 section 2, and RFC 1662
/// section 4.3 for what only async HDLC can get wrong). Lengths count the
/// octets of the frame (for async HDLC: after escapes were undone, between
/// the flags, FCS included).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Async HDLC: the FCS over the frame did not check
    /// ([`crate::hdlc::FCS_GOOD`]).
    #[error(
        "frame of {len} bytes has a bad FCS: received {received:#06x}, computed {computed:#06x}"
    )]
    BadFcs {
        /// Frame length.
        len: usize,
        /// The FCS field as received.
        received: u16,
        /// The FCS computed over the frame's other octets.
        computed: u16,
    },
    /// Async HDLC, RFC 1662 section 4.3: fewer than 4 octets.
    #[error("frame of {len} bytes is shorter than protocol + FCS (4 bytes)")]
    TooShort {
        /// Frame length.
        len: usize,
    },
    /// After `ff 03`, no complete protocol field was left.
    #[error("frame of {len} bytes has no room for a protocol field after address/control")]
    NoProtocol {
        /// Frame length.
        len: usize,
    },
    /// The information field was longer than the receiver's limit (our
    /// MRU, RFC 1661 section 6.1).
    #[error("frame of {len} bytes carries more than the limit of {max_info} information bytes")]
    TooLong {
        /// Frame length.
        len: usize,
        /// The limit on the information field.
        max_info: usize,
    },
    /// The first octet was `0xff` (an address field) but the second was not
    /// the UI control field `0x03` (RFC 1662 section 3.1).
    #[error("address/control field is {address:#04x} {control:#04x}, expected 0xff 0x03")]
    BadAddressControl {
        /// The address octet.
        address: u8,
        /// The octet where the control field should be.
        control: u8,
    },
    /// The protocol field's low octet was even (RFC 1661 section 2).
    #[error("protocol field {protocol:#06x} is invalid: its low octet must be odd")]
    BadProtocol {
        /// The protocol field as received.
        protocol: u16,
    },
    /// Async HDLC: the sender aborted the frame with `0x7d 0x7e` (RFC 1662
    /// section 4.2).
    #[error("frame aborted by the sender (control escape before flag) after {len} bytes")]
    Aborted {
        /// Octets received before the abort.
        len: usize,
    },
}

/// Takes apart one frame: `ff 03` if present, the protocol field and the
/// information field, which may be at most `max_info` octets.
pub fn parse(frame: &[u8], max_info: usize) -> Result<Frame<'_>, FrameError> {
    parse_with_len(frame, frame.len(), max_info)
}

/// [`parse`] with the length to report in errors (async HDLC counts the
/// FCS too).
pub(crate) fn parse_with_len(
    body: &[u8],
    len: usize,
    max_info: usize,
) -> Result<Frame<'_>, FrameError> {
    let mut body = body;
    let mut address_control_omitted = true;
    if let [ADDRESS, control, rest @ ..] = body {
        if *control != CONTROL {
            return Err(FrameError::BadAddressControl {
                address: ADDRESS,
                control: *control,
            });
        }
        body = rest;
        address_control_omitted = false;
    }
    let (protocol, info, protocol_compressed) = match body {
        [] => return Err(FrameError::NoProtocol { len }),
        // RFC 1661 section 2: an odd first octet ends the protocol field.
        [p, info @ ..] if p & 1 == 1 => (u16::from(*p), info, true),
        [_] => return Err(FrameError::NoProtocol { len }),
        [hi, lo, info @ ..] => {
            let protocol = u16::from_be_bytes([*hi, *lo]);
            if lo & 1 == 0 {
                return Err(FrameError::BadProtocol { protocol });
            }
            (protocol, info, false)
        }
    };
    if info.len() > max_info {
        return Err(FrameError::TooLong { len, max_info });
    }
    Ok(Frame {
        protocol,
        info,
        address_control_omitted,
        protocol_compressed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_compress_as_negotiated() {
        let h = |p, empty, acfc, pfc| Header::new(p, empty, acfc, pfc).as_bytes().to_vec();
        assert_eq!(h(0x0021, false, false, false), [0xff, 0x03, 0x00, 0x21]);
        assert_eq!(h(0x0021, false, true, false), [0x00, 0x21]);
        assert_eq!(h(0x0021, false, false, true), [0xff, 0x03, 0x21]);
        assert_eq!(h(0x0021, false, true, true), [0x21]);
        // Not compressible, or ambiguous without ff 03.
        assert_eq!(h(0xc021, false, true, true), [0xc0, 0x21]);
        assert_eq!(h(0x00ff, false, true, true), [0x00, 0xff]);
        assert_eq!(h(0x0021, true, true, true), [0x00, 0x21]);
        assert_eq!(
            Header::uncompressed(0xc021).as_bytes(),
            [0xff, 0x03, 0xc0, 0x21]
        );
    }

    #[test]
    fn parse_undoes_each_compression() {
        for (bytes, protocol, acfc, pfc) in [
            (&[0xff, 0x03, 0x00, 0x21, 0x45][..], 0x0021, false, false),
            (&[0x00, 0x21, 0x45][..], 0x0021, true, false),
            (&[0xff, 0x03, 0x21, 0x45][..], 0x0021, false, true),
            (&[0x21, 0x45][..], 0x0021, true, true),
            (&[0xc0, 0x21, 0x45][..], 0xc021, true, false),
        ] {
            let f = parse(bytes, 1500).unwrap();
            assert_eq!(f.protocol, protocol);
            assert_eq!(f.info, [0x45]);
            assert_eq!(f.address_control_omitted(), acfc);
            assert_eq!(f.protocol_compressed(), pfc);
        }
    }

    #[test]
    fn parse_errors_name_the_field() {
        assert_eq!(
            parse(&[0xff, 0x05, 0x00, 0x21], 1500),
            Err(FrameError::BadAddressControl {
                address: 0xff,
                control: 0x05
            })
        );
        assert_eq!(
            parse(&[0xff, 0x03], 1500),
            Err(FrameError::NoProtocol { len: 2 })
        );
        assert_eq!(
            parse(&[0x00, 0x20, 1], 1500),
            Err(FrameError::BadProtocol { protocol: 0x0020 })
        );
        assert_eq!(
            parse(&[0x21, 1, 2, 3], 2),
            Err(FrameError::TooLong {
                len: 4,
                max_info: 2
            })
        );
        assert_eq!(parse(&[], 1500), Err(FrameError::NoProtocol { len: 0 }));
    }
}
