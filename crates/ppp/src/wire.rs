//! PPP control packets as typed views over byte slices (RFC 1661 section 5).
//!
//! Every LCP-like protocol (LCP, IPCP, IPV6CP, CCP...) shares one packet
//! format:
//!
//! ```text
//!  0                   1                   2                   3
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Code      |  Identifier   |            Length             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |    Data ...
//! ```
//!
//! and Configure-* packets carry a list of options (RFC 1661 section 6):
//! type (1 byte), length (1 byte, including the two header bytes), data.
//!
//! The promise of this module (as in smoltcp): once [`ControlPacket::new_checked`]
//! returned `Ok`, no accessor panics. Untrusted bytes always go through it.
//! Bytes after `Length` are padding and are ignored (RFC 1661 section 5).

use core::fmt;

/// RFC 1662 section 7.1: the ACCM until LCP agreed on another one.
pub const DEFAULT_ACCM: u32 = 0xffff_ffff;

/// Which Frame Check Sequence a direction uses (RFC 1570 section 2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FcsMode {
    /// The 16-bit FCS of RFC 1662 section 3.1, the default.
    #[default]
    Fcs16,
    /// No FCS field (RFC 1570 section 2.1.2, "Null FCS"): only for links
    /// whose lower layer already protects the bytes (SSH's MAC).
    Null,
}

/// Errors from parsing PPP control packets and option lists. Each names the
/// field that was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Fewer bytes than a fixed-size header needs.
    #[error("{what} needs {need} bytes, received {got}")]
    Truncated {
        /// What was being parsed.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        got: usize,
    },
    /// The Length field is smaller than the 4-byte header.
    #[error("packet length {length} < 4")]
    LengthTooSmall {
        /// The Length field.
        length: u16,
    },
    /// The Length field claims more than was received.
    #[error("packet length {length} > received {received}")]
    LengthOverrun {
        /// The Length field.
        length: u16,
        /// Bytes received.
        received: usize,
    },
    /// An option's length is below 2 (0 or 1 would loop forever).
    #[error("{protocol} option {kind} length {length} < 2")]
    OptionTooShort {
        /// "LCP", "IPCP"...
        protocol: &'static str,
        /// Option type.
        kind: u8,
        /// Option length field.
        length: u8,
    },
    /// An option's length runs past the end of the packet.
    #[error("{protocol} option {kind} length {length} > remaining {remaining}")]
    OptionOverrun {
        /// "LCP", "IPCP"...
        protocol: &'static str,
        /// Option type.
        kind: u8,
        /// Option length field.
        length: u8,
        /// Bytes left in the packet.
        remaining: usize,
    },
    /// A known option has the wrong length for its type.
    #[error("{protocol} option {kind} ({name}) length {length} != {expected}")]
    OptionBadLength {
        /// "LCP", "IPCP"...
        protocol: &'static str,
        /// Option type.
        kind: u8,
        /// Option name.
        name: &'static str,
        /// Option length field.
        length: u8,
        /// The length this option must have.
        expected: &'static str,
    },
    /// The option list ends with one byte: no room for a length.
    #[error("{protocol} option {kind} has no length byte")]
    OptionNoLength {
        /// "LCP", "IPCP"...
        protocol: &'static str,
        /// Option type.
        kind: u8,
    },
}

macro_rules! enum_with_unknown {
    (
        $(#[$attr:meta])* pub enum $name:ident($ty:ty) {
            $( $(#[$vattr:meta])* $variant:ident = $value:expr ),+ $(,)?
        }
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vattr])* $variant, )+
            /// A value this implementation does not know.
            Unknown($ty),
        }
        impl From<$ty> for $name {
            fn from(value: $ty) -> Self {
                match value {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }
        impl From<$name> for $ty {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}

enum_with_unknown! {
    /// PPP control packet codes (RFC 1661 section 5, RFC 1570 for 12 and 13).
    pub enum Code(u8) {
        /// Configure-Request (s5.1).
        ConfigureRequest = 1,
        /// Configure-Ack (s5.2).
        ConfigureAck = 2,
        /// Configure-Nak (s5.3).
        ConfigureNak = 3,
        /// Configure-Reject (s5.4).
        ConfigureReject = 4,
        /// Terminate-Request (s5.5).
        TerminateRequest = 5,
        /// Terminate-Ack (s5.5).
        TerminateAck = 6,
        /// Code-Reject (s5.6).
        CodeReject = 7,
        /// Protocol-Reject (s5.7), LCP only.
        ProtocolReject = 8,
        /// Echo-Request (s5.8), LCP only.
        EchoRequest = 9,
        /// Echo-Reply (s5.8), LCP only.
        EchoReply = 10,
        /// Discard-Request (s5.9), LCP only.
        DiscardRequest = 11,
        /// Identification (RFC 1570 s2.1), LCP only.
        Identification = 12,
        /// Time-Remaining (RFC 1570 s2.2), LCP only.
        TimeRemaining = 13,
    }
}

impl Code {
    /// The abbreviation pppd prints ("ConfReq", "TermAck"...).
    pub fn pppd_name(self) -> Option<&'static str> {
        Some(match self {
            Code::ConfigureRequest => "ConfReq",
            Code::ConfigureAck => "ConfAck",
            Code::ConfigureNak => "ConfNak",
            Code::ConfigureReject => "ConfRej",
            Code::TerminateRequest => "TermReq",
            Code::TerminateAck => "TermAck",
            Code::CodeReject => "CodeRej",
            Code::ProtocolReject => "ProtRej",
            Code::EchoRequest => "EchoReq",
            Code::EchoReply => "EchoRep",
            Code::DiscardRequest => "DiscReq",
            Code::Identification => "Ident",
            Code::TimeRemaining => "TimeRem",
            Code::Unknown(_) => return None,
        })
    }
}

enum_with_unknown! {
    /// PPP protocol numbers (IANA "PPP DLL Protocol Numbers").
    pub enum Protocol(u16) {
        /// Internet Protocol version 4.
        Ipv4 = 0x0021,
        /// Van Jacobson compressed TCP/IP (RFC 1144).
        VjCompressed = 0x002d,
        /// Van Jacobson uncompressed TCP/IP (RFC 1144).
        VjUncompressed = 0x002f,
        /// Internet Protocol version 6.
        Ipv6 = 0x0057,
        /// Compressed datagram (RFC 1962, CCP).
        CompressedDatagram = 0x00fd,
        /// IP Control Protocol (RFC 1332).
        Ipcp = 0x8021,
        /// IPv6 Control Protocol (RFC 5072).
        Ipv6cp = 0x8057,
        /// Compression Control Protocol (RFC 1962).
        Ccp = 0x80fd,
        /// Link Control Protocol (RFC 1661).
        Lcp = 0xc021,
        /// Password Authentication Protocol (RFC 1334).
        Pap = 0xc023,
        /// Challenge Handshake Authentication Protocol (RFC 1994).
        Chap = 0xc223,
    }
}

impl Protocol {
    /// The name pppd uses in its logs.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Ipv4 => "IP",
            Protocol::VjCompressed => "VJC",
            Protocol::VjUncompressed => "VJUC",
            Protocol::Ipv6 => "IPv6",
            Protocol::CompressedDatagram => "Compressed data",
            Protocol::Ipcp => "IPCP",
            Protocol::Ipv6cp => "IPV6CP",
            Protocol::Ccp => "CCP",
            Protocol::Lcp => "LCP",
            Protocol::Pap => "PAP",
            Protocol::Chap => "CHAP",
            Protocol::Unknown(_) => "unknown",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::Unknown(n) => write!(f, "protocol 0x{n:04x}"),
            p => f.write_str(p.name()),
        }
    }
}

mod field {
    pub type Field = core::ops::Range<usize>;
    pub const CODE: usize = 0;
    pub const IDENTIFIER: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const HEADER_LEN: usize = 4;
}

/// Size of the control packet header (code, identifier, length).
pub const HEADER_LEN: usize = field::HEADER_LEN;

/// A read/write view of one PPP control packet (RFC 1661 section 5).
#[derive(Debug, Clone)]
pub struct ControlPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ControlPacket<T> {
    /// Wraps a buffer without checking it; accessors may panic until
    /// [`Self::check_len`] returned `Ok`.
    pub fn new_unchecked(buffer: T) -> Self {
        ControlPacket { buffer }
    }

    /// Wraps a buffer and checks the header and Length field (RFC 1661 s5:
    /// a Length above the received size is an error, bytes after it are
    /// padding).
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that accessors cannot panic.
    pub fn check_len(&self) -> Result<(), WireError> {
        let data = self.buffer.as_ref();
        if data.len() < field::HEADER_LEN {
            return Err(WireError::Truncated {
                what: "control packet header",
                need: field::HEADER_LEN,
                got: data.len(),
            });
        }
        let length = u16::from_be_bytes([data[2], data[3]]);
        if (length as usize) < field::HEADER_LEN {
            return Err(WireError::LengthTooSmall { length });
        }
        if length as usize > data.len() {
            return Err(WireError::LengthOverrun {
                length,
                received: data.len(),
            });
        }
        Ok(())
    }

    /// The Code field.
    pub fn code(&self) -> Code {
        Code::from(self.buffer.as_ref()[field::CODE])
    }

    /// The Identifier field.
    pub fn identifier(&self) -> u8 {
        self.buffer.as_ref()[field::IDENTIFIER]
    }

    /// The Length field (header included).
    pub fn length(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::LENGTH];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The Data field: the bytes between the header and `Length`.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::HEADER_LEN..self.length() as usize]
    }

    /// Consumes the view.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ControlPacket<T> {
    /// Sets the Code field.
    pub fn set_code(&mut self, code: Code) {
        self.buffer.as_mut()[field::CODE] = code.into();
    }
    /// Sets the Identifier field.
    pub fn set_identifier(&mut self, id: u8) {
        self.buffer.as_mut()[field::IDENTIFIER] = id;
    }
    /// Sets the Length field.
    pub fn set_length(&mut self, length: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&length.to_be_bytes());
    }
}

/// A parsed control packet: code, identifier and data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlRepr<'a> {
    /// Code.
    pub code: Code,
    /// Identifier.
    pub identifier: u8,
    /// Data (options for Configure-*, text for Terminate-*...).
    pub data: &'a [u8],
}

impl<'a> ControlRepr<'a> {
    /// Parses a checked packet.
    pub fn parse(packet: &ControlPacket<&'a [u8]>) -> ControlRepr<'a> {
        let buf: &'a [u8] = packet.buffer;
        let length = packet.length() as usize;
        ControlRepr {
            code: packet.code(),
            identifier: packet.identifier(),
            data: &buf[field::HEADER_LEN..length],
        }
    }

    /// Parses untrusted bytes.
    pub fn parse_bytes(bytes: &'a [u8]) -> Result<ControlRepr<'a>, WireError> {
        let packet = ControlPacket::new_checked(bytes)?;
        Ok(Self::parse(&packet))
    }

    /// Bytes [`Self::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        field::HEADER_LEN + self.data.len()
    }

    /// Appends the packet to `out`. Data longer than 65531 bytes is cut (it
    /// never happens: the MRU bounds everything we build).
    pub fn emit(&self, out: &mut Vec<u8>) {
        let data = &self.data[..self.data.len().min(u16::MAX as usize - field::HEADER_LEN)];
        out.push(self.code.into());
        out.push(self.identifier);
        out.extend_from_slice(&((data.len() + field::HEADER_LEN) as u16).to_be_bytes());
        out.extend_from_slice(data);
    }
}

/// One raw configuration option (RFC 1661 section 6): type and data (the
/// data excludes the two header bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawOption<'a> {
    /// The Type field.
    pub kind: u8,
    /// The Data field.
    pub data: &'a [u8],
}

impl RawOption<'_> {
    /// Appends the option (type, length, data) to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        emit_option(out, self.kind, self.data);
    }
}

/// Appends one option. Data is cut at 253 bytes (cannot happen with the
/// options we build).
pub fn emit_option(out: &mut Vec<u8>, kind: u8, data: &[u8]) {
    let data = &data[..data.len().min(253)];
    out.push(kind);
    out.push((data.len() + 2) as u8);
    out.extend_from_slice(data);
}

/// Iterates over the options of a Configure-* packet. Yields an error (and
/// then stops) on an option length of 0 or 1 or one that runs past the end.
#[derive(Debug, Clone)]
pub struct OptionIter<'a> {
    protocol: &'static str,
    rest: &'a [u8],
    failed: bool,
}

impl<'a> OptionIter<'a> {
    /// Options of `data`, errors naming `protocol`.
    pub fn new(protocol: &'static str, data: &'a [u8]) -> Self {
        OptionIter {
            protocol,
            rest: data,
            failed: false,
        }
    }
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = Result<RawOption<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let kind = self.rest[0];
        let Some(&length) = self.rest.get(1) else {
            self.failed = true;
            return Some(Err(WireError::OptionNoLength {
                protocol: self.protocol,
                kind,
            }));
        };
        if length < 2 {
            self.failed = true;
            return Some(Err(WireError::OptionTooShort {
                protocol: self.protocol,
                kind,
                length,
            }));
        }
        if length as usize > self.rest.len() {
            self.failed = true;
            return Some(Err(WireError::OptionOverrun {
                protocol: self.protocol,
                kind,
                length,
                remaining: self.rest.len(),
            }));
        }
        let (option, rest) = self.rest.split_at(length as usize);
        self.rest = rest;
        Some(Ok(RawOption {
            kind,
            data: &option[2..],
        }))
    }
}

/// Checks a whole option list without allocating.
pub fn check_options(protocol: &'static str, data: &[u8]) -> Result<(), WireError> {
    for option in OptionIter::new(protocol, data) {
        option?;
    }
    Ok(())
}

/// An option's data as exactly `N` bytes, or an error naming the option
/// and the length it must have.
pub(crate) fn exact<const N: usize>(
    protocol: &'static str,
    option: &RawOption<'_>,
    name: &'static str,
    expected: &'static str,
) -> Result<[u8; N], WireError> {
    option
        .data
        .try_into()
        .map_err(|_| WireError::OptionBadLength {
            protocol,
            kind: option.kind,
            name,
            length: (option.data.len() + 2).min(255) as u8,
            expected,
        })
}

/// Writes bytes as lowercase hex separated by spaces (pppd style).
pub(crate) fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            f.write_str(" ")?;
        }
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

/// Writes peer text quoted, with control and non-ASCII bytes escaped, so a
/// log line stays one line whatever the peer sends.
pub(crate) fn write_quoted(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    f.write_str("\"")?;
    write_escaped(f, bytes)?;
    f.write_str("\"")
}

/// The most octets of a peer-chosen string kept where it is shown.
pub const PEER_TEXT_MAX: usize = 256;

/// A string the peer chose (a Terminate-Request's text, an Identification,
/// a PAP or CHAP name or message), made safe to show in a log line,
/// `status` or `tsunagi direct`'s output: control and non-ASCII octets
/// escaped as `\xNN` (and the backslash as `\\`, so an escape is never
/// ambiguous), so a newline in it cannot start a line of its own, and at
/// most [`PEER_TEXT_MAX`] octets of it kept (`...` marks a cut).
pub fn peer_text(bytes: &[u8]) -> String {
    use fmt::Write;
    let kept = &bytes[..bytes.len().min(PEER_TEXT_MAX)];
    let mut text = String::with_capacity(kept.len());
    for &b in kept {
        match b {
            b'\\' => text.push_str("\\\\"),
            0x20..=0x7e => text.push(char::from(b)),
            _ => {
                let _ = write!(text, "\\x{b:02x}");
            }
        }
    }
    if kept.len() < bytes.len() {
        text.push_str("...");
    }
    text
}

/// Escapes control and non-printable bytes.
pub(crate) fn write_escaped(f: &mut dyn fmt::Write, bytes: &[u8]) -> fmt::Result {
    for &b in bytes {
        match b {
            b'"' => f.write_str("\\\"")?,
            b'\\' => f.write_str("\\\\")?,
            0x20..=0x7e => f.write_char(b as char)?,
            _ => write!(f, "\\x{b:02x}")?,
        }
    }
    Ok(())
}

/// Text of an option list for logs, using `describe` for each option.
pub(crate) fn write_options(
    f: &mut fmt::Formatter<'_>,
    protocol: &'static str,
    data: &[u8],
    describe: fn(&mut fmt::Formatter<'_>, &RawOption<'_>) -> fmt::Result,
) -> fmt::Result {
    for option in OptionIter::new(protocol, data) {
        match option {
            Ok(option) => {
                f.write_str(" <")?;
                describe(f, &option)?;
                f.write_str(">")?;
            }
            Err(e) => return write!(f, " <malformed: {e}>"),
        }
    }
    Ok(())
}

/// Fallback text for an option this implementation does not decode.
pub(crate) fn write_unknown_option(
    f: &mut fmt::Formatter<'_>,
    option: &RawOption<'_>,
) -> fmt::Result {
    write!(f, "option {:#x}", option.kind)?;
    if !option.data.is_empty() {
        f.write_str(" ")?;
        write_hex(f, option.data)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_text_is_one_bounded_line() {
        assert_eq!(peer_text(b"User request"), "User request");
        assert_eq!(
            peer_text(b"bye\nNov 25 16:02:11 tsunagi[1]: fake"),
            "bye\\x0aNov 25 16:02:11 tsunagi[1]: fake"
        );
        assert_eq!(
            peer_text(b"a\\x0a\r\x1b[2J\xff\"q\""),
            "a\\\\x0a\\x0d\\x1b[2J\\xff\"q\""
        );
        let long = vec![b'x'; PEER_TEXT_MAX + 10];
        let text = peer_text(&long);
        assert_eq!(text.len(), PEER_TEXT_MAX + 3);
        assert!(text.ends_with("..."));
    }

    #[test]
    fn header_errors_name_the_field() {
        assert_eq!(
            ControlPacket::new_checked(&[1u8, 1, 0][..])
                .unwrap_err()
                .to_string(),
            "control packet header needs 4 bytes, received 3"
        );
        let e =
            ControlPacket::new_checked(&[1u8, 1, 0, 40, 0, 0, 0, 0, 0, 0, 0, 0][..]).unwrap_err();
        assert_eq!(e.to_string(), "packet length 40 > received 12");
        let e = ControlPacket::new_checked(&[1u8, 1, 0, 3][..]).unwrap_err();
        assert_eq!(e.to_string(), "packet length 3 < 4");
    }

    #[test]
    fn padding_after_length_is_ignored() {
        let p = ControlPacket::new_checked(&[9u8, 7, 0, 8, 1, 2, 3, 4, 0xee, 0xee][..]).unwrap();
        assert_eq!(p.code(), Code::EchoRequest);
        assert_eq!(p.identifier(), 7);
        assert_eq!(p.data(), &[1, 2, 3, 4]);
    }

    #[test]
    fn option_lengths() {
        let e = check_options("LCP", &[3, 1, 0, 0]).unwrap_err();
        assert_eq!(e.to_string(), "LCP option 3 length 1 < 2");
        let e = check_options("LCP", &[3, 0]).unwrap_err();
        assert_eq!(e.to_string(), "LCP option 3 length 0 < 2");
        let e = check_options("IPCP", &[3, 6, 10, 0]).unwrap_err();
        assert_eq!(e.to_string(), "IPCP option 3 length 6 > remaining 4");
        let e = check_options("LCP", &[7]).unwrap_err();
        assert_eq!(e.to_string(), "LCP option 7 has no length byte");
        assert!(check_options("LCP", &[7, 2, 8, 2]).is_ok());
    }

    #[test]
    fn repr_round_trip() {
        let bytes = [
            5u8, 2, 0, 16, b'U', b's', b'e', b'r', b' ', b'r', b'e', b'q', b'u', b'e', b's', b't',
        ];
        let repr = ControlRepr::parse_bytes(&bytes).unwrap();
        assert_eq!(repr.code, Code::TerminateRequest);
        assert_eq!(repr.data, b"User request");
        let mut out = Vec::new();
        repr.emit(&mut out);
        assert_eq!(out, bytes);
        assert_eq!(repr.buffer_len(), 16);
    }

    #[test]
    fn open_enums() {
        assert_eq!(Code::from(42), Code::Unknown(42));
        assert_eq!(u8::from(Code::Unknown(42)), 42);
        assert_eq!(Protocol::from(0x80fd), Protocol::Ccp);
        assert_eq!(Protocol::from(0x1234).to_string(), "protocol 0x1234");
    }
}
