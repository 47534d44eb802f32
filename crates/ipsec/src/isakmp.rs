//! ISAKMP (RFC 2408) messages and payloads as typed views, for IKEv1
//! (RFC 2409) with the IPsec DOI (RFC 2407), NAT traversal (RFC 3947 and
//! its drafts) and Dead Peer Detection (RFC 3706).
//!
//! The layers, from the wire up:
//!
//! - [`Packet`]: a view over the 28-octet header (RFC 2408 s3.1).
//!   [`Packet::new_checked`] refuses what is shorter than the header, a
//!   version other than 1.0, a Length shorter than the header or longer
//!   than the datagram; after it, no accessor panics.
//! - [`Header`], [`Message`], [`Payload`]: the owned representation.
//!   [`parse`] walks the payload chain (RFC 2408 s3.2) with every length
//!   checked against its parent, the number of payloads bounded
//!   ([`MAX_PAYLOADS`], [`payload::MAX_PROPOSALS`],
//!   [`payload::MAX_TRANSFORMS`], [`attr::MAX_ATTRIBUTES`]) and the nesting
//!   fixed by the types (SA → Proposal → Transform → attributes: no
//!   recursion). Every step of a chain moves at least four octets forward,
//!   so a chain cannot loop.
//! - [`Builder`] and [`Message::emit`] write into a caller's `Vec`; what
//!   they write parses back to the same [`Message`].
//! - [`Message::log`]: the strongSwan-like log line,
//!   `parsed ID_PROT request 0 [ SA V V V V ]`.
//! - [`proposal`]: strongSwan's proposal strings (`3des-sha1-modp1024!`)
//!   and the responder's choice of a transform from a peer's SA payload.
//! - [`vendor`]: the Vendor IDs this gateway knows by name.
//!
//! Left out: the exchanges themselves (the engine), the Labeled Domain
//! Identifier of SIT_SECRECY / SIT_INTEGRITY situations (refused, naming
//! the field), AH-specific attribute checks, ISAKMP Mode Config attributes
//! (payload 14, kept as an unknown payload).
//!
//! Trailing octets: RFC 2408 s3.1 defines Length as the "Length of total
//! message (header + payloads) in octets", so the message is the first
//! Length octets of the datagram; octets after it are not part of the
//! message and are not parsed ([`Packet::trailing_len`] counts them for a
//! log line). Inside the message every octet must belong to a payload,
//! except in a decrypted body, where RFC 2409 s5.3 lets the encryption
//! padding follow the last payload ([`parse_decrypted`]).

use std::fmt;

pub mod attr;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod payload;
pub mod proposal;
pub mod vendor;

pub use attr::Attribute;
pub use payload::{Payload, PayloadType, Proposal, SaPayload, Transform};

/// Length of the ISAKMP header (RFC 2408 s3.1).
pub const HEADER_LEN: usize = 28;

/// Length of the generic payload header (RFC 2408 s3.2).
pub const GENERIC_HEADER_LEN: usize = 4;

/// The most top-level payloads a message may carry. A Main Mode message
/// with an SA and a dozen Vendor IDs has about 15; anything past this is
/// refused with [`Error::TooMany`] before it costs an allocation each.
pub const MAX_PAYLOADS: usize = 32;

/// Defines an open registry enum: the known values by name, anything else
/// as `Unknown(n)` (a value to refuse politely, not a parse failure).
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident($ty:ty) {
            $( $(#[$vmeta:meta])* $var:ident = $val:expr => $text:expr, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $var, )*
            /// A value this implementation has no name for.
            Unknown($ty),
        }

        impl From<$ty> for $name {
            fn from(value: $ty) -> Self {
                match value {
                    $( $val => $name::$var, )*
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for $ty {
            fn from(value: $name) -> $ty {
                match value {
                    $( $name::$var => $val, )*
                    $name::Unknown(other) => other,
                }
            }
        }

        impl $name {
            /// The registry name, `None` for an unknown value.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $( $name::$var => Some($text), )*
                    $name::Unknown(_) => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self.name() {
                    Some(text) => f.write_str(text),
                    None => write!(f, "{}({})", stringify!($name), <$ty>::from(*self)),
                }
            }
        }
    };
}
pub(crate) use open_enum;

/// What is wrong with a message, naming the field (RFC 2408 s5 says which
/// notification a peer gets for it; the engine decides whether to send
/// one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Fewer octets than the 28-octet ISAKMP header (RFC 2408 s3.1).
    #[error("ISAKMP header truncated: {have} octets, {HEADER_LEN} needed")]
    HeaderTruncated {
        /// Octets that arrived.
        have: usize,
    },
    /// Version is not 1.0 (RFC 2408 s3.1, s5.1: INVALID-MAJOR-VERSION or
    /// INVALID-MINOR-VERSION); 2.0 is IKEv2.
    #[error("ISAKMP header: Version {major}.{minor} refused, only 1.0 is ISAKMP (RFC 2408 s3.1)")]
    Version {
        /// MjVer.
        major: u8,
        /// MnVer.
        minor: u8,
    },
    /// The header's Length is shorter than the header itself.
    #[error("ISAKMP header: Length {length} is shorter than the {HEADER_LEN}-octet header")]
    LengthTooShort {
        /// The Length field.
        length: u32,
    },
    /// The header's Length is longer than the datagram that arrived.
    #[error("ISAKMP header: Length {length} is longer than the {datagram}-octet datagram")]
    LengthPastDatagram {
        /// The Length field.
        length: u32,
        /// Octets that arrived.
        datagram: usize,
    },
    /// A structure is cut short inside its parent.
    #[error("{what}: truncated, {have} octets where {need} are needed")]
    Truncated {
        /// The structure (a payload name, "Proposal", "attribute", ...).
        what: &'static str,
        /// Octets needed.
        need: usize,
        /// Octets there.
        have: usize,
    },
    /// A Payload Length below the four octets of the generic header, or
    /// below the payload's fixed part (RFC 2408 s3.2).
    #[error("{what}: Payload Length {length} is shorter than {min}")]
    PayloadLengthTooShort {
        /// The payload.
        what: &'static str,
        /// The Payload Length field.
        length: u16,
        /// The least this payload can be.
        min: usize,
    },
    /// A Payload Length that runs past the message or enclosing payload.
    #[error("{what}: Payload Length {length} runs past its {parent} ({room} octets left)")]
    PayloadPastParent {
        /// The payload.
        what: &'static str,
        /// The Payload Length field.
        length: u16,
        /// The message or enclosing payload.
        parent: &'static str,
        /// Octets left in the parent.
        room: usize,
    },
    /// More of something than this implementation accepts in one parent.
    #[error("too many {what} in one {parent}: more than {limit}")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// Where.
        parent: &'static str,
        /// The bound.
        limit: usize,
    },
    /// A Next Payload inside an SA or Proposal naming anything but the
    /// next Proposal (2) or Transform (3) or the end (0) (RFC 2408 s3.5,
    /// s3.6).
    #[error("{what}: Next Payload {value}, only {allowed} or 0 may follow inside a {parent}")]
    NestedNextPayload {
        /// The nested payload.
        what: &'static str,
        /// Its Next Payload field.
        value: u8,
        /// The type allowed.
        allowed: u8,
        /// The enclosing payload.
        parent: &'static str,
    },
    /// A data attribute whose length runs past its transform (RFC 2408
    /// s3.3).
    #[error("attribute type {attribute_type}: Attribute Length {length} runs past its {parent} ({room} octets left)")]
    AttributePastParent {
        /// The Attribute Type.
        attribute_type: u16,
        /// The Attribute Length field.
        length: u16,
        /// The enclosing structure.
        parent: &'static str,
        /// Octets left in it.
        room: usize,
    },
    /// Octets inside a message or payload that belong to nothing.
    #[error("{parent}: {left} octets after the last {what}")]
    Leftover {
        /// What was expected there.
        what: &'static str,
        /// The message or enclosing payload.
        parent: &'static str,
        /// How many octets.
        left: usize,
    },
    /// A field whose value contradicts the rest.
    #[error("{what}: {field} {value} {reason}")]
    Field {
        /// The structure.
        what: &'static str,
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Something to emit does not fit its length field.
    #[error("{what}: {len} octets do not fit a {bits}-bit length field")]
    TooLong {
        /// The structure.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The width of the field.
        bits: u8,
    },
}

open_enum! {
    /// Exchange Type (RFC 2408 s3.1, RFC 2409 s4, draft Mode Config's
    /// Transaction); names as strongSwan logs them.
    pub enum ExchangeType(u8) {
        /// Base (RFC 2408 s4.4).
        Base = 1 => "BASE",
        /// Identity Protection, IKEv1 Main Mode (RFC 2409 s5).
        IdentityProtection = 2 => "ID_PROT",
        /// Authentication Only (RFC 2408 s4.6).
        AuthenticationOnly = 3 => "AUTH_ONLY",
        /// Aggressive Mode (RFC 2409 s5).
        Aggressive = 4 => "AGGRESSIVE",
        /// Informational (RFC 2408 s4.8, RFC 2409 s5.7).
        Informational = 5 => "INFORMATIONAL_V1",
        /// Transaction (Mode Config, XAUTH).
        Transaction = 6 => "TRANSACTION",
        /// Quick Mode (RFC 2409 s5.5).
        QuickMode = 32 => "QUICK_MODE",
        /// New Group Mode (RFC 2409 s5.6).
        NewGroupMode = 33 => "NEW_GROUP_MODE",
    }
}

/// The Flags octet (RFC 2408 s3.1), kept whole so that it emits back as
/// it arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// E(ncryption): the payloads after the header are encrypted.
    pub const ENCRYPTION: u8 = 0x01;
    /// C(ommit): key exchange synchronisation (RFC 2408 s3.1).
    pub const COMMIT: u8 = 0x02;
    /// A(uthentication Only): integrity without encryption.
    pub const AUTHENTICATION_ONLY: u8 = 0x04;

    /// The Encryption bit.
    pub fn encryption(self) -> bool {
        self.0 & Self::ENCRYPTION != 0
    }
    /// The Commit bit.
    pub fn commit(self) -> bool {
        self.0 & Self::COMMIT != 0
    }
    /// The Authentication Only bit.
    pub fn authentication_only(self) -> bool {
        self.0 & Self::AUTHENTICATION_ONLY != 0
    }
}

mod field {
    use std::ops::Range;
    pub const INITIATOR_SPI: Range<usize> = 0..8;
    pub const RESPONDER_SPI: Range<usize> = 8..16;
    pub const NEXT_PAYLOAD: usize = 16;
    pub const VERSION: usize = 17;
    pub const EXCHANGE_TYPE: usize = 18;
    pub const FLAGS: usize = 19;
    pub const MESSAGE_ID: Range<usize> = 20..24;
    pub const LENGTH: Range<usize> = 24..28;
}

/// A view over an ISAKMP header and what follows (RFC 2408 s3.1).
///
/// Once [`Packet::new_checked`] (or [`Packet::check`]) is `Ok`, no
/// accessor panics.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// The view without checks (for a buffer being built).
    pub fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// The view over bytes from the network, checked as [`Packet::check`]
    /// says.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, Error> {
        let packet = Packet { buffer };
        packet.check()?;
        Ok(packet)
    }

    /// RFC 2408 s3.1 and s5.1: at least the header, Version 1.0, a Length
    /// of at least the header and at most the datagram.
    pub fn check(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::HeaderTruncated { have: b.len() });
        }
        let (major, minor) = (self.major_version(), self.minor_version());
        if (major, minor) != (1, 0) {
            return Err(Error::Version { major, minor });
        }
        let length = self.length();
        if (length as usize) < HEADER_LEN {
            return Err(Error::LengthTooShort { length });
        }
        if length as usize > b.len() {
            return Err(Error::LengthPastDatagram {
                length,
                datagram: b.len(),
            });
        }
        Ok(())
    }

    /// The Initiator Cookie (SPI).
    pub fn initiator_spi(&self) -> [u8; 8] {
        let mut v = [0; 8];
        v.copy_from_slice(&self.buffer.as_ref()[field::INITIATOR_SPI]);
        v
    }
    /// The Responder Cookie (SPI).
    pub fn responder_spi(&self) -> [u8; 8] {
        let mut v = [0; 8];
        v.copy_from_slice(&self.buffer.as_ref()[field::RESPONDER_SPI]);
        v
    }
    /// Next Payload: the type of the first payload.
    pub fn next_payload(&self) -> PayloadType {
        PayloadType::from(self.buffer.as_ref()[field::NEXT_PAYLOAD])
    }
    /// MjVer.
    pub fn major_version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION] >> 4
    }
    /// MnVer.
    pub fn minor_version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION] & 0x0f
    }
    /// Exchange Type.
    pub fn exchange_type(&self) -> ExchangeType {
        ExchangeType::from(self.buffer.as_ref()[field::EXCHANGE_TYPE])
    }
    /// Flags.
    pub fn flags(&self) -> Flags {
        Flags(self.buffer.as_ref()[field::FLAGS])
    }
    /// Message ID.
    pub fn message_id(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::MESSAGE_ID])
    }
    /// Length of the whole message.
    pub fn length(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::LENGTH])
    }
    /// The octets after the header, up to Length.
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.length() as usize]
    }
    /// Octets of the datagram after Length: not part of the message.
    pub fn trailing_len(&self) -> usize {
        self.buffer.as_ref().len() - self.length() as usize
    }
    /// The header as a [`Header`].
    pub fn header(&self) -> Header {
        Header {
            initiator_spi: self.initiator_spi(),
            responder_spi: self.responder_spi(),
            exchange: self.exchange_type(),
            flags: self.flags(),
            message_id: self.message_id(),
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the Next Payload field.
    pub fn set_next_payload(&mut self, value: PayloadType) {
        self.buffer.as_mut()[field::NEXT_PAYLOAD] = value.into();
    }
    /// Sets the Length field.
    pub fn set_length(&mut self, value: u32) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&value.to_be_bytes());
    }
}

pub(crate) fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

pub(crate) fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The ISAKMP header's fields, less Next Payload and Length, which come
/// from the payloads when the message is emitted (RFC 2408 s3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Initiator Cookie.
    pub initiator_spi: [u8; 8],
    /// Responder Cookie (zero in the first message).
    pub responder_spi: [u8; 8],
    /// Exchange Type.
    pub exchange: ExchangeType,
    /// Flags.
    pub flags: Flags,
    /// Message ID (zero in Phase 1).
    pub message_id: u32,
}

impl Header {
    /// Appends the header with `next` and `length` to `buf`.
    fn emit(&self, next: PayloadType, length: u32, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.initiator_spi);
        buf.extend_from_slice(&self.responder_spi);
        buf.push(next.into());
        buf.push(0x10);
        buf.push(self.exchange.into());
        buf.push(self.flags.0);
        buf.extend_from_slice(&self.message_id.to_be_bytes());
        buf.extend_from_slice(&length.to_be_bytes());
    }
}

/// A message whose payloads are in the clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The header.
    pub header: Header,
    /// The payloads, in order.
    pub payloads: Vec<Payload>,
}

/// What [`parse`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A message in the clear, payloads parsed.
    Message(Message),
    /// The Encryption flag is set (RFC 2408 s3.1): the payload chain is
    /// the engine's to decrypt, then to hand to [`parse_decrypted`].
    Encrypted(Encrypted<'a>),
}

/// An encrypted message, split for the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encrypted<'a> {
    /// The header (the IV of RFC 2409 Appendix B hashes its octets, see
    /// [`Encrypted::header_octets`]).
    pub header: Header,
    /// The header's Next Payload: the type of the first encrypted payload.
    pub first_payload: PayloadType,
    /// The 28 octets of the header as they arrived.
    pub header_octets: &'a [u8],
    /// Everything after the header up to Length.
    pub ciphertext: &'a [u8],
}

/// Whether the engine should act on a message (RFC 2408 s5.1, s5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Every payload type is known: process the message.
    Process,
    /// A payload type this implementation does not know: RFC 2408 s5.2
    /// says to discard the message, log INVALID-PAYLOAD-TYPE, and it may
    /// send that notification.
    Discard {
        /// The first unknown Next Payload value.
        payload_type: u8,
        /// What may be sent back.
        notify: payload::NotifyType,
    },
}

/// Parses a datagram (UDP 500, or 4500 after the non-ESP marker) as an
/// ISAKMP message (RFC 2408 s3.1, s3.2, s5.1).
pub fn parse(datagram: &[u8]) -> Result<Parsed<'_>, Error> {
    let packet = Packet::new_checked(datagram)?;
    let header = packet.header();
    let first = packet.next_payload();
    let body = &datagram[HEADER_LEN..packet.length() as usize];
    if header.flags.encryption() {
        return Ok(Parsed::Encrypted(Encrypted {
            header,
            first_payload: first,
            header_octets: &datagram[..HEADER_LEN],
            ciphertext: body,
        }));
    }
    let payloads = parse_chain(first, body, false)?.0;
    Ok(Parsed::Message(Message { header, payloads }))
}

/// Parses the payloads of a decrypted body (RFC 2409 s5.3): the chain
/// starts with `header`'s Next Payload (`first`), and the octets after the
/// last payload are the encryption padding; their count is returned.
pub fn parse_decrypted(
    header: Header,
    first: PayloadType,
    plaintext: &[u8],
) -> Result<(Message, usize), Error> {
    let (payloads, padding) = parse_chain(first, plaintext, true)?;
    Ok((Message { header, payloads }, padding))
}

/// One payload of a [`Chain`]: its type, its Next Payload, its body.
pub(crate) type ChainItem<'a> = (u8, u8, &'a [u8]);

/// Steps through a chain of generic payload headers (RFC 2408 s3.2). Each
/// step moves at least [`GENERIC_HEADER_LEN`] octets forward, so a chain
/// ends after at most `len / 4` steps whatever its Next Payload values.
pub(crate) struct Chain<'a> {
    rest: &'a [u8],
    next: u8,
    count: usize,
    limit: usize,
    level: Level,
}

/// Which chain: the message's payloads, an SA's proposals or a proposal's
/// transforms (the nesting is these three levels, fixed by the types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// Top-level payloads of a message.
    Message,
    /// Proposal payloads inside an SA payload.
    Sa,
    /// Transform payloads inside a Proposal payload.
    Proposal,
}

impl Level {
    /// The name of the payloads at this level, for errors.
    fn what(self, ty: u8) -> &'static str {
        match self {
            Level::Message => PayloadType::from(ty).name().unwrap_or("payload"),
            Level::Sa => "Proposal",
            Level::Proposal => "Transform",
        }
    }

    /// The plural, for [`Error::TooMany`].
    fn plural(self) -> &'static str {
        match self {
            Level::Message => "payloads",
            Level::Sa => "Proposals",
            Level::Proposal => "Transforms",
        }
    }

    /// The parent, for errors.
    fn parent(self) -> &'static str {
        match self {
            Level::Message => "message",
            Level::Sa => "SA",
            Level::Proposal => "Proposal",
        }
    }
}

impl<'a> Chain<'a> {
    pub(crate) fn new(level: Level, first: u8, bytes: &'a [u8], limit: usize) -> Chain<'a> {
        Chain {
            rest: bytes,
            next: first,
            count: 0,
            limit,
            level,
        }
    }

    /// The octets after the last payload (once [`Chain::step`] gave
    /// `None`).
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// The next payload: (its type, its Next Payload, its body).
    pub(crate) fn step(&mut self) -> Result<Option<ChainItem<'a>>, Error> {
        if self.next == 0 {
            return Ok(None);
        }
        let ty = self.next;
        let what = self.level.what(ty);
        if self.rest.len() < GENERIC_HEADER_LEN {
            return Err(Error::Truncated {
                what,
                need: GENERIC_HEADER_LEN,
                have: self.rest.len(),
            });
        }
        self.count += 1;
        if self.count > self.limit {
            return Err(Error::TooMany {
                what: self.level.plural(),
                parent: self.level.parent(),
                limit: self.limit,
            });
        }
        let length = be16(&self.rest[2..4]);
        if (length as usize) < GENERIC_HEADER_LEN {
            return Err(Error::PayloadLengthTooShort {
                what,
                length,
                min: GENERIC_HEADER_LEN,
            });
        }
        if length as usize > self.rest.len() {
            return Err(Error::PayloadPastParent {
                what,
                length,
                parent: self.level.parent(),
                room: self.rest.len(),
            });
        }
        let next = self.rest[0];
        let body = &self.rest[GENERIC_HEADER_LEN..length as usize];
        self.rest = &self.rest[length as usize..];
        self.next = next;
        Ok(Some((ty, next, body)))
    }
}

fn parse_chain(
    first: PayloadType,
    bytes: &[u8],
    padding_allowed: bool,
) -> Result<(Vec<Payload>, usize), Error> {
    let mut chain = Chain::new(Level::Message, first.into(), bytes, MAX_PAYLOADS);
    let mut payloads = Vec::new();
    while let Some((ty, _next, body)) = chain.step()? {
        payloads.push(Payload::parse(PayloadType::from(ty), body)?);
    }
    let left = chain.rest().len();
    if left != 0 && !padding_allowed {
        return Err(Error::Leftover {
            what: "payload",
            parent: "message",
            left,
        });
    }
    Ok((payloads, left))
}

impl Message {
    /// A message with no payloads yet.
    pub fn new(header: Header) -> Message {
        Message {
            header,
            payloads: Vec::new(),
        }
    }

    /// Adds a payload (builder style).
    pub fn with(mut self, payload: Payload) -> Message {
        self.payloads.push(payload);
        self
    }

    /// Appends the message to `buf`; it parses back to `self`.
    pub fn emit(&self, buf: &mut Vec<u8>) -> Result<(), Error> {
        let mut b = Builder::new(buf, self.header);
        for p in &self.payloads {
            b.payload(p)?;
        }
        b.finish()?;
        Ok(())
    }

    /// The octets of the message.
    pub fn to_vec(&self) -> Result<Vec<u8>, Error> {
        let mut v = Vec::new();
        self.emit(&mut v)?;
        Ok(v)
    }

    /// RFC 2408 s5.2: an unknown payload type means discard, and maybe
    /// notify INVALID-PAYLOAD-TYPE.
    pub fn disposition(&self) -> Disposition {
        for p in &self.payloads {
            if let Payload::Unknown { payload_type, .. } = p {
                return Disposition::Discard {
                    payload_type: *payload_type,
                    notify: payload::NotifyType::InvalidPayloadType,
                };
            }
        }
        Disposition::Process
    }

    /// The strongSwan-like log line, e.g. `parsed ID_PROT request 0 [ SA V
    /// V V V ]`.
    pub fn log(&self, verb: Verb, role: Role) -> LogLine<'_> {
        LogLine {
            message: self,
            verb,
            role,
        }
    }
}

/// The header and then the payload mnemonics: `ID_PROT 0 [ SA V ]`.
impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} [", self.header.exchange, self.header.message_id)?;
        for p in &self.payloads {
            write!(f, " {}", p.mnemonic())?;
        }
        f.write_str(" ]")
    }
}

/// Whether a log line is about a message received or sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Received and parsed.
    Parsed,
    /// About to be sent.
    Generating,
}

/// Whether a message is a request or a response in its exchange (IKEv1
/// has no flag for it; the engine knows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sent by the party that started the exchange.
    Request,
    /// Sent by the other one.
    Response,
}

/// See [`Message::log`].
#[derive(Debug, Clone, Copy)]
pub struct LogLine<'a> {
    message: &'a Message,
    verb: Verb,
    role: Role,
}

impl fmt::Display for LogLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.verb {
            Verb::Parsed => "parsed",
            Verb::Generating => "generating",
        };
        let role = match self.role {
            Role::Request => "request",
            Role::Response => "response",
        };
        let m = self.message;
        write!(
            f,
            "{verb} {} {role} {} [",
            m.header.exchange, m.header.message_id
        )?;
        for p in &m.payloads {
            write!(f, " {}", p.mnemonic())?;
        }
        f.write_str(" ]")
    }
}

/// Writes a message into a caller's `Vec`, payload by payload: the header
/// first, then each payload with its generic header; the previous Next
/// Payload and the Length are filled in as it goes.
#[derive(Debug)]
pub struct Builder<'b> {
    buf: &'b mut Vec<u8>,
    start: usize,
    /// Where the Next Payload of the last thing written is.
    next_at: usize,
}

impl<'b> Builder<'b> {
    /// Starts a message with `header` at the end of `buf`.
    pub fn new(buf: &'b mut Vec<u8>, header: Header) -> Builder<'b> {
        let start = buf.len();
        header.emit(PayloadType::None, 0, buf);
        Builder {
            buf,
            start,
            next_at: start + field::NEXT_PAYLOAD,
        }
    }

    /// Appends a payload.
    pub fn payload(&mut self, payload: &Payload) -> Result<&mut Self, Error> {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0, 0, 0]);
        payload.emit_body(self.buf)?;
        let len = self.buf.len() - at;
        let len16 = u16::try_from(len).map_err(|_| Error::TooLong {
            what: payload.payload_type().name().unwrap_or("payload"),
            len,
            bits: 16,
        })?;
        self.buf[at + 2..at + 4].copy_from_slice(&len16.to_be_bytes());
        self.buf[self.next_at] = payload.payload_type().into();
        self.next_at = at;
        Ok(self)
    }

    /// Fills in the Length; returns the message's length.
    pub fn finish(self) -> Result<usize, Error> {
        let len = self.buf.len() - self.start;
        let len32 = u32::try_from(len).map_err(|_| Error::TooLong {
            what: "message",
            len,
            bits: 32,
        })?;
        self.buf[self.start + 24..self.start + 28].copy_from_slice(&len32.to_be_bytes());
        Ok(len)
    }
}

/// Appends an encrypted message: `header` with the Encryption flag set,
/// `first` as Next Payload, then `ciphertext` (RFC 2408 s3.1).
pub fn emit_encrypted(
    header: Header,
    first: PayloadType,
    ciphertext: &[u8],
    buf: &mut Vec<u8>,
) -> Result<(), Error> {
    let len = HEADER_LEN + ciphertext.len();
    let len32 = u32::try_from(len).map_err(|_| Error::TooLong {
        what: "message",
        len,
        bits: 32,
    })?;
    let mut header = header;
    header.flags.0 |= Flags::ENCRYPTION;
    header.emit(first, len32, buf);
    buf.extend_from_slice(ciphertext);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// RFC 2408 s3.2 chains by Next Payload and Payload Length; every
        /// step here consumes at least the 4-octet generic header, so a
        /// chain over `n` octets ends (with a payload list or an error)
        /// within `n / 4` steps, whatever the Next Payload values: it
        /// cannot loop.
        #[test]
        fn a_chain_ends_within_len_over_4_steps(
            first in 1u8..=255,
            bytes in prop::collection::vec(any::<u8>(), 0..400),
        ) {
            let mut chain = Chain::new(Level::Message, first, &bytes, usize::MAX);
            let mut steps = 0;
            let mut consumed = 0;
            while let Ok(Some((_, _, body))) = chain.step() {
                steps += 1;
                consumed += GENERIC_HEADER_LEN + body.len();
                prop_assert_eq!(chain.rest().len(), bytes.len() - consumed);
            }
            prop_assert!(steps <= bytes.len() / GENERIC_HEADER_LEN);
        }
    }
}
