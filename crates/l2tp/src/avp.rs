//! Attribute-Value Pairs (RFC 2661 sections 4.1 to 4.4).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |M|H| rsvd  |      Length       |           Vendor ID           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Attribute Type        |        Attribute Value...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! [`AvpReader`] walks the AVPs of a control message: a Length below the
//! 6-octet AVP header (0 to 5 would make a reader loop or go backwards) or
//! past the end of the message is an [`AvpError`] naming the offset. The
//! ten-bit Length caps an AVP at 1023 octets (section 4.1).
//!
//! [`Avp`] is every AVP of section 4.4 as a typed value; a value of the
//! wrong size for its attribute is refused naming the attribute. Hidden
//! AVPs (section 4.3) are revealed with [`unhide`] and made with [`hide`].

use core::fmt;

use tsunagi_crypto::md5;

/// Octets of the AVP header (M, H, reserved, Length, Vendor ID, Attribute
/// Type).
pub const AVP_HEADER_LEN: usize = 6;
/// The largest Length (ten bits, section 4.1).
pub const MAX_AVP_LEN: usize = 1023;
/// The Vendor ID of the IETF's AVPs (section 4.1: "AVPs defined in this
/// document have a Vendor ID of 0").
pub const IETF_VENDOR: u16 = 0;

/// The M bit (section 4.1).
pub const M_BIT: u16 = 0x8000;
/// The H bit (section 4.1).
pub const H_BIT: u16 = 0x4000;
/// The four reserved bits (section 4.1: "an AVP received with a reserved
/// bit set to 1 MUST be treated as an unrecognized AVP").
pub const RESERVED_BITS: u16 = 0x3c00;
/// The ten Length bits.
pub const LENGTH_MASK: u16 = 0x03ff;

enum_with_unknown! {
    /// Attribute Type of an IETF AVP (RFC 2661 section 4.4), with the
    /// RFC's names.
    pub enum AttributeType(u16) {
        /// Section 4.4.1.
        MessageType = 0 => "Message Type",
        /// Section 4.4.2.
        ResultCode = 1 => "Result Code",
        /// Section 4.4.3.
        ProtocolVersion = 2 => "Protocol Version",
        /// Section 4.4.3.
        FramingCapabilities = 3 => "Framing Capabilities",
        /// Section 4.4.3.
        BearerCapabilities = 4 => "Bearer Capabilities",
        /// Section 4.4.3.
        TieBreaker = 5 => "Tie Breaker",
        /// Section 4.4.3.
        FirmwareRevision = 6 => "Firmware Revision",
        /// Section 4.4.3.
        HostName = 7 => "Host Name",
        /// Section 4.4.3.
        VendorName = 8 => "Vendor Name",
        /// Section 4.4.3.
        AssignedTunnelId = 9 => "Assigned Tunnel ID",
        /// Section 4.4.3.
        ReceiveWindowSize = 10 => "Receive Window Size",
        /// Section 4.4.3.
        Challenge = 11 => "Challenge",
        /// Section 4.4.4.
        Q931CauseCode = 12 => "Q.931 Cause Code",
        /// Section 4.4.3.
        ChallengeResponse = 13 => "Challenge Response",
        /// Section 4.4.4.
        AssignedSessionId = 14 => "Assigned Session ID",
        /// Section 4.4.4.
        CallSerialNumber = 15 => "Call Serial Number",
        /// Section 4.4.4.
        MinimumBps = 16 => "Minimum BPS",
        /// Section 4.4.4.
        MaximumBps = 17 => "Maximum BPS",
        /// Section 4.4.4.
        BearerType = 18 => "Bearer Type",
        /// Section 4.4.4.
        FramingType = 19 => "Framing Type",
        /// Section 4.4.4.
        CalledNumber = 21 => "Called Number",
        /// Section 4.4.4.
        CallingNumber = 22 => "Calling Number",
        /// Section 4.4.4.
        SubAddress = 23 => "Sub-Address",
        /// Section 4.4.4.
        TxConnectSpeed = 24 => "(Tx) Connect Speed",
        /// Section 4.4.4.
        PhysicalChannelId = 25 => "Physical Channel ID",
        /// Section 4.4.5.
        InitialReceivedLcpConfreq = 26 => "Initial Received LCP CONFREQ",
        /// Section 4.4.5.
        LastSentLcpConfreq = 27 => "Last Sent LCP CONFREQ",
        /// Section 4.4.5.
        LastReceivedLcpConfreq = 28 => "Last Received LCP CONFREQ",
        /// Section 4.4.5.
        ProxyAuthenType = 29 => "Proxy Authen Type",
        /// Section 4.4.5.
        ProxyAuthenName = 30 => "Proxy Authen Name",
        /// Section 4.4.5.
        ProxyAuthenChallenge = 31 => "Proxy Authen Challenge",
        /// Section 4.4.5.
        ProxyAuthenId = 32 => "Proxy Authen ID",
        /// Section 4.4.5.
        ProxyAuthenResponse = 33 => "Proxy Authen Response",
        /// Section 4.4.6.
        CallErrors = 34 => "Call Errors",
        /// Section 4.4.6.
        Accm = 35 => "ACCM",
        /// Section 4.4.7.
        RandomVector = 36 => "Random Vector",
        /// Section 4.4.5.
        PrivateGroupId = 37 => "Private Group ID",
        /// Section 4.4.4.
        RxConnectSpeed = 38 => "Rx Connect Speed",
        /// Section 4.4.4.
        SequencingRequired = 39 => "Sequencing Required",
    }
}

impl AttributeType {
    /// Whether the RFC lets this AVP be hidden (section 4.4: each AVP says
    /// "This AVP may be hidden" or "MUST NOT be hidden").
    pub fn may_hide(self) -> bool {
        use AttributeType::*;
        !matches!(
            self,
            MessageType
                | ResultCode
                | ProtocolVersion
                | TieBreaker
                | HostName
                | ReceiveWindowSize
                | Q931CauseCode
                | RandomVector
                | SequencingRequired
                | Unknown(_)
        )
    }
}

/// Why an AVP was refused. Each names the offset in the message (from the
/// first AVP) or the attribute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AvpError {
    /// Fewer octets left than an AVP header.
    #[error("AVP at offset {offset}: {remaining} octets left, the AVP header needs 6")]
    HeaderTruncated {
        /// Offset of the AVP.
        offset: usize,
        /// Octets left in the message.
        remaining: usize,
    },
    /// Length below the AVP header (0 to 5).
    #[error("AVP at offset {offset}: Length {length} is shorter than the 6-octet AVP header")]
    LengthTooShort {
        /// Offset of the AVP.
        offset: usize,
        /// Length.
        length: u16,
    },
    /// Length past the end of the message.
    #[error("AVP at offset {offset}: Length {length} runs past the end of the message ({remaining} octets left)")]
    LengthPastEnd {
        /// Offset of the AVP.
        offset: usize,
        /// Length.
        length: u16,
        /// Octets left in the message.
        remaining: usize,
    },
    /// The value does not have the size or form the attribute has.
    #[error("{attribute} AVP: a {len}-octet value, expected {expected}")]
    Value {
        /// The attribute.
        attribute: AttributeType,
        /// Octets of the value.
        len: usize,
        /// What section 4.4 says.
        expected: &'static str,
    },
    /// A hidden AVP and no shared secret to reveal it.
    #[error("{attribute} AVP is hidden (H bit) and no shared secret is configured to reveal it")]
    HiddenWithoutSecret {
        /// The attribute.
        attribute: AttributeType,
    },
    /// A hidden AVP before any Random Vector AVP.
    #[error("{attribute} AVP is hidden (H bit) but no Random Vector AVP precedes it (RFC 2661 section 4.3)")]
    HiddenWithoutRandomVector {
        /// The attribute.
        attribute: AttributeType,
    },
    /// The hidden value is shorter than its Original Attribute Value Length
    /// field, or than the length it names: the secret is wrong or the AVP
    /// is damaged.
    #[error("{attribute} AVP is hidden and its Original Attribute Value Length {original} does not fit the {available} octets (wrong shared secret?)")]
    HiddenLength {
        /// The attribute.
        attribute: AttributeType,
        /// The revealed Original Attribute Value Length (0 when even the
        /// field is missing).
        original: u16,
        /// Octets of hidden value after that field.
        available: usize,
    },
}

/// One AVP as it travels: the header fields and the (possibly hidden)
/// value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawAvp<'a> {
    /// M: the receiver must understand it (section 4.2).
    pub mandatory: bool,
    /// H: the value is hidden (section 4.3).
    pub hidden: bool,
    /// The four reserved bits (must be 0).
    pub reserved: u8,
    /// Vendor ID.
    pub vendor_id: u16,
    /// Attribute Type.
    pub attribute_type: u16,
    /// Attribute Value (hidden or not).
    pub value: &'a [u8],
    /// Offset of the AVP in the message body.
    pub offset: usize,
}

impl RawAvp<'_> {
    /// An IETF AVP with no reserved bit set, that is one whose Attribute
    /// Type this implementation can know.
    pub fn is_ietf(&self) -> bool {
        self.vendor_id == IETF_VENDOR && self.reserved == 0
    }
}

/// Walks the AVPs of a control message body (the octets after the
/// header). Yields each AVP, or one error and then nothing.
#[derive(Debug, Clone)]
pub struct AvpReader<'a> {
    body: &'a [u8],
    at: usize,
    failed: bool,
}

impl<'a> AvpReader<'a> {
    /// A reader over `body`.
    pub fn new(body: &'a [u8]) -> AvpReader<'a> {
        AvpReader {
            body,
            at: 0,
            failed: false,
        }
    }
}

impl<'a> Iterator for AvpReader<'a> {
    type Item = Result<RawAvp<'a>, AvpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.at >= self.body.len() {
            return None;
        }
        let offset = self.at;
        let rest = &self.body[offset..];
        if rest.len() < AVP_HEADER_LEN {
            self.failed = true;
            return Some(Err(AvpError::HeaderTruncated {
                offset,
                remaining: rest.len(),
            }));
        }
        let first = u16::from_be_bytes([rest[0], rest[1]]);
        let length = first & LENGTH_MASK;
        if usize::from(length) < AVP_HEADER_LEN {
            self.failed = true;
            return Some(Err(AvpError::LengthTooShort { offset, length }));
        }
        if usize::from(length) > rest.len() {
            self.failed = true;
            return Some(Err(AvpError::LengthPastEnd {
                offset,
                length,
                remaining: rest.len(),
            }));
        }
        self.at += usize::from(length);
        Some(Ok(RawAvp {
            mandatory: first & M_BIT != 0,
            hidden: first & H_BIT != 0,
            reserved: ((first & RESERVED_BITS) >> 10) as u8,
            vendor_id: u16::from_be_bytes([rest[2], rest[3]]),
            attribute_type: u16::from_be_bytes([rest[4], rest[5]]),
            value: &rest[AVP_HEADER_LEN..usize::from(length)],
            offset,
        }))
    }
}

/// Writes one AVP (header and value) to `out`.
///
/// # Panics
///
/// When the value is longer than an AVP can carry (1017 octets): the
/// engine never builds one, so this is a caller's bug.
pub fn write_avp(
    out: &mut Vec<u8>,
    mandatory: bool,
    hidden: bool,
    vendor: u16,
    attr: u16,
    value: &[u8],
) {
    let len = AVP_HEADER_LEN + value.len();
    assert!(len <= MAX_AVP_LEN, "an AVP of {len} octets (at most 1023)");
    let mut first = len as u16;
    if mandatory {
        first |= M_BIT;
    }
    if hidden {
        first |= H_BIT;
    }
    out.extend_from_slice(&first.to_be_bytes());
    out.extend_from_slice(&vendor.to_be_bytes());
    out.extend_from_slice(&attr.to_be_bytes());
    out.extend_from_slice(value);
}

/// Hides an AVP value (RFC 2661 section 4.3).
///
/// The Hidden AVP Subformat is the 2-octet Original Attribute Value Length,
/// the value, then `padding` ("to obscure the length"). It is cut into
/// 16-octet chunks p1, p2, ... and
///
/// ```text
/// b1 = MD5(Attribute Type + secret + Random Vector)   c(1) = p1 xor b1
/// b2 = MD5(secret + c(1))                             c(2) = p2 xor b2
/// bi = MD5(secret + c(i-1))                           c(i) = pi xor bi
/// ```
///
/// where the Attribute Type is the two octets of the AVP's header and the
/// Random Vector is the value of the last Random Vector AVP before it in
/// the message. A last chunk shorter than 16 octets is xored with as much
/// of its b as it has octets.
pub fn hide(
    attribute_type: u16,
    value: &[u8],
    secret: &[u8],
    random_vector: &[u8],
    padding: &[u8],
) -> Vec<u8> {
    let mut sub = Vec::with_capacity(2 + value.len() + padding.len());
    sub.extend_from_slice(&(value.len() as u16).to_be_bytes());
    sub.extend_from_slice(value);
    sub.extend_from_slice(padding);
    let mut b = md5(&[&attribute_type.to_be_bytes(), secret, random_vector]);
    for chunk in sub.chunks_mut(16) {
        for (p, k) in chunk.iter_mut().zip(b) {
            *p ^= k;
        }
        // chunk is now c(i).
        b = md5(&[secret, chunk]);
    }
    sub
}

/// Reveals a hidden AVP value (the inverse of [`hide`], section 4.3) and
/// returns the Original Attribute Value (padding dropped).
pub fn unhide(
    attribute_type: u16,
    hidden: &[u8],
    secret: &[u8],
    random_vector: &[u8],
) -> Result<Vec<u8>, AvpError> {
    let attribute = AttributeType::from(attribute_type);
    let mut sub = hidden.to_vec();
    let mut b = md5(&[&attribute_type.to_be_bytes(), secret, random_vector]);
    for chunk in sub.chunks_mut(16) {
        let next = md5(&[secret, chunk]);
        for (c, k) in chunk.iter_mut().zip(b) {
            *c ^= k;
        }
        b = next;
    }
    if sub.len() < 2 {
        return Err(AvpError::HiddenLength {
            attribute,
            original: 0,
            available: sub.len(),
        });
    }
    let original = u16::from_be_bytes([sub[0], sub[1]]);
    if usize::from(original) > sub.len() - 2 {
        return Err(AvpError::HiddenLength {
            attribute,
            original,
            available: sub.len() - 2,
        });
    }
    sub.truncate(2 + usize::from(original));
    sub.drain(..2);
    Ok(sub)
}

/// Result Code AVP value (section 4.4.2): a result code, an optional error
/// code and an optional error message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ResultCode {
    /// Result Code (its meaning depends on the message: StopCCN or CDN).
    pub result: u16,
    /// Error Code (present when the value has at least 4 octets).
    pub error: Option<u16>,
    /// Error Message (octets, "human readable").
    pub message: Vec<u8>,
}

/// Q.931 Cause Code AVP value (section 4.4.4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Q931Cause {
    /// Cause Code.
    pub cause: u16,
    /// Cause Msg.
    pub message: u8,
    /// Advisory Msg.
    pub advisory: Vec<u8>,
}

/// Call Errors AVP value (section 4.4.6): the LAC's cumulative counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CallErrors {
    /// CRC Errors.
    pub crc_errors: u32,
    /// Framing Errors.
    pub framing_errors: u32,
    /// Hardware Overruns.
    pub hardware_overruns: u32,
    /// Buffer Overruns.
    pub buffer_overruns: u32,
    /// Time-out Errors.
    pub timeout_errors: u32,
    /// Alignment Errors.
    pub alignment_errors: u32,
}

/// Framing Capabilities / Framing Type: synchronous framing (section 4.4.3).
pub const FRAMING_SYNC: u32 = 1;
/// Framing Capabilities / Framing Type: asynchronous framing.
pub const FRAMING_ASYNC: u32 = 2;
/// Bearer Capabilities / Bearer Type: digital access.
pub const BEARER_DIGITAL: u32 = 1;
/// Bearer Capabilities / Bearer Type: analog access.
pub const BEARER_ANALOG: u32 = 2;

/// Every AVP of RFC 2661 section 4.4 as a typed value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Avp {
    /// Message Type (4.4.1), the first AVP of every message.
    MessageType(u16),
    /// Result Code (4.4.2), in StopCCN and CDN.
    ResultCode(ResultCode),
    /// Protocol Version (4.4.3): version and revision, 1.0.
    ProtocolVersion {
        /// Ver.
        version: u8,
        /// Rev.
        revision: u8,
    },
    /// Framing Capabilities (4.4.3): [`FRAMING_SYNC`] | [`FRAMING_ASYNC`].
    FramingCapabilities(u32),
    /// Bearer Capabilities (4.4.3): [`BEARER_DIGITAL`] | [`BEARER_ANALOG`].
    BearerCapabilities(u32),
    /// Tie Breaker (4.4.3): eight octets, the lower wins.
    TieBreaker([u8; 8]),
    /// Firmware Revision (4.4.3).
    FirmwareRevision(u16),
    /// Host Name (4.4.3), at least one octet.
    HostName(Vec<u8>),
    /// Vendor Name (4.4.3).
    VendorName(Vec<u8>),
    /// Assigned Tunnel ID (4.4.3).
    AssignedTunnelId(u16),
    /// Receive Window Size (4.4.3).
    ReceiveWindowSize(u16),
    /// Challenge (4.4.3), at least one octet.
    Challenge(Vec<u8>),
    /// Q.931 Cause Code (4.4.4).
    Q931CauseCode(Q931Cause),
    /// Challenge Response (4.4.3): 16 octets.
    ChallengeResponse([u8; 16]),
    /// Assigned Session ID (4.4.4).
    AssignedSessionId(u16),
    /// Call Serial Number (4.4.4).
    CallSerialNumber(u32),
    /// Minimum BPS (4.4.4).
    MinimumBps(u32),
    /// Maximum BPS (4.4.4).
    MaximumBps(u32),
    /// Bearer Type (4.4.4).
    BearerType(u32),
    /// Framing Type (4.4.4).
    FramingType(u32),
    /// Called Number (4.4.4).
    CalledNumber(Vec<u8>),
    /// Calling Number (4.4.4).
    CallingNumber(Vec<u8>),
    /// Sub-Address (4.4.4).
    SubAddress(Vec<u8>),
    /// (Tx) Connect Speed (4.4.4).
    TxConnectSpeed(u32),
    /// Physical Channel ID (4.4.4).
    PhysicalChannelId(u32),
    /// Initial Received LCP CONFREQ (4.4.5): the LCP options.
    InitialReceivedLcpConfreq(Vec<u8>),
    /// Last Sent LCP CONFREQ (4.4.5).
    LastSentLcpConfreq(Vec<u8>),
    /// Last Received LCP CONFREQ (4.4.5).
    LastReceivedLcpConfreq(Vec<u8>),
    /// Proxy Authen Type (4.4.5).
    ProxyAuthenType(u16),
    /// Proxy Authen Name (4.4.5).
    ProxyAuthenName(Vec<u8>),
    /// Proxy Authen Challenge (4.4.5).
    ProxyAuthenChallenge(Vec<u8>),
    /// Proxy Authen ID (4.4.5): the CHAP identifier (the first octet is
    /// reserved).
    ProxyAuthenId(u8),
    /// Proxy Authen Response (4.4.5).
    ProxyAuthenResponse(Vec<u8>),
    /// Call Errors (4.4.6).
    CallErrors(CallErrors),
    /// ACCM (4.4.6).
    Accm {
        /// Send ACCM.
        send: u32,
        /// Receive ACCM.
        receive: u32,
    },
    /// Random Vector (4.4.7).
    RandomVector(Vec<u8>),
    /// Private Group ID (4.4.5).
    PrivateGroupId(Vec<u8>),
    /// Rx Connect Speed (4.4.4).
    RxConnectSpeed(u32),
    /// Sequencing Required (4.4.4): no value.
    SequencingRequired,
}

fn exact<const N: usize>(
    attribute: AttributeType,
    v: &[u8],
    expected: &'static str,
) -> Result<[u8; N], AvpError> {
    v.try_into().map_err(|_| AvpError::Value {
        attribute,
        len: v.len(),
        expected,
    })
}

fn u16v(a: AttributeType, v: &[u8]) -> Result<u16, AvpError> {
    exact::<2>(a, v, "2 octets").map(u16::from_be_bytes)
}

fn u32v(a: AttributeType, v: &[u8]) -> Result<u32, AvpError> {
    exact::<4>(a, v, "4 octets").map(u32::from_be_bytes)
}

fn nonempty(a: AttributeType, v: &[u8]) -> Result<Vec<u8>, AvpError> {
    if v.is_empty() {
        return Err(AvpError::Value {
            attribute: a,
            len: 0,
            expected: "at least 1 octet",
        });
    }
    Ok(v.to_vec())
}

impl Avp {
    /// The AVP's Attribute Type.
    pub fn attribute_type(&self) -> AttributeType {
        use AttributeType as T;
        match self {
            Avp::MessageType(_) => T::MessageType,
            Avp::ResultCode(_) => T::ResultCode,
            Avp::ProtocolVersion { .. } => T::ProtocolVersion,
            Avp::FramingCapabilities(_) => T::FramingCapabilities,
            Avp::BearerCapabilities(_) => T::BearerCapabilities,
            Avp::TieBreaker(_) => T::TieBreaker,
            Avp::FirmwareRevision(_) => T::FirmwareRevision,
            Avp::HostName(_) => T::HostName,
            Avp::VendorName(_) => T::VendorName,
            Avp::AssignedTunnelId(_) => T::AssignedTunnelId,
            Avp::ReceiveWindowSize(_) => T::ReceiveWindowSize,
            Avp::Challenge(_) => T::Challenge,
            Avp::Q931CauseCode(_) => T::Q931CauseCode,
            Avp::ChallengeResponse(_) => T::ChallengeResponse,
            Avp::AssignedSessionId(_) => T::AssignedSessionId,
            Avp::CallSerialNumber(_) => T::CallSerialNumber,
            Avp::MinimumBps(_) => T::MinimumBps,
            Avp::MaximumBps(_) => T::MaximumBps,
            Avp::BearerType(_) => T::BearerType,
            Avp::FramingType(_) => T::FramingType,
            Avp::CalledNumber(_) => T::CalledNumber,
            Avp::CallingNumber(_) => T::CallingNumber,
            Avp::SubAddress(_) => T::SubAddress,
            Avp::TxConnectSpeed(_) => T::TxConnectSpeed,
            Avp::PhysicalChannelId(_) => T::PhysicalChannelId,
            Avp::InitialReceivedLcpConfreq(_) => T::InitialReceivedLcpConfreq,
            Avp::LastSentLcpConfreq(_) => T::LastSentLcpConfreq,
            Avp::LastReceivedLcpConfreq(_) => T::LastReceivedLcpConfreq,
            Avp::ProxyAuthenType(_) => T::ProxyAuthenType,
            Avp::ProxyAuthenName(_) => T::ProxyAuthenName,
            Avp::ProxyAuthenChallenge(_) => T::ProxyAuthenChallenge,
            Avp::ProxyAuthenId(_) => T::ProxyAuthenId,
            Avp::ProxyAuthenResponse(_) => T::ProxyAuthenResponse,
            Avp::CallErrors(_) => T::CallErrors,
            Avp::Accm { .. } => T::Accm,
            Avp::RandomVector(_) => T::RandomVector,
            Avp::PrivateGroupId(_) => T::PrivateGroupId,
            Avp::RxConnectSpeed(_) => T::RxConnectSpeed,
            Avp::SequencingRequired => T::SequencingRequired,
        }
    }

    /// Parses the (revealed) value of an IETF AVP of type `attribute`.
    /// `None` for an Attribute Type section 4.4 does not define.
    pub fn parse(attribute: AttributeType, v: &[u8]) -> Option<Result<Avp, AvpError>> {
        use AttributeType as T;
        let a = attribute;
        let bytes = || v.to_vec();
        Some(match attribute {
            T::MessageType => u16v(a, v).map(Avp::MessageType),
            T::ResultCode => {
                if v.len() < 2 || v.len() == 3 {
                    Err(AvpError::Value {
                        attribute: a,
                        len: v.len(),
                        expected: "2 octets, or 4 and an optional message",
                    })
                } else {
                    Ok(Avp::ResultCode(ResultCode {
                        result: u16::from_be_bytes([v[0], v[1]]),
                        error: (v.len() >= 4).then(|| u16::from_be_bytes([v[2], v[3]])),
                        message: v.get(4..).unwrap_or_default().to_vec(),
                    }))
                }
            }
            T::ProtocolVersion => exact::<2>(a, v, "2 octets")
                .map(|[version, revision]| Avp::ProtocolVersion { version, revision }),
            T::FramingCapabilities => u32v(a, v).map(Avp::FramingCapabilities),
            T::BearerCapabilities => u32v(a, v).map(Avp::BearerCapabilities),
            T::TieBreaker => exact::<8>(a, v, "8 octets").map(Avp::TieBreaker),
            T::FirmwareRevision => u16v(a, v).map(Avp::FirmwareRevision),
            T::HostName => nonempty(a, v).map(Avp::HostName),
            T::VendorName => Ok(Avp::VendorName(bytes())),
            T::AssignedTunnelId => u16v(a, v).map(Avp::AssignedTunnelId),
            T::ReceiveWindowSize => u16v(a, v).map(Avp::ReceiveWindowSize),
            T::Challenge => nonempty(a, v).map(Avp::Challenge),
            T::Q931CauseCode => {
                if v.len() < 3 {
                    Err(AvpError::Value {
                        attribute: a,
                        len: v.len(),
                        expected: "at least 3 octets",
                    })
                } else {
                    Ok(Avp::Q931CauseCode(Q931Cause {
                        cause: u16::from_be_bytes([v[0], v[1]]),
                        message: v[2],
                        advisory: v[3..].to_vec(),
                    }))
                }
            }
            T::ChallengeResponse => exact::<16>(a, v, "16 octets").map(Avp::ChallengeResponse),
            T::AssignedSessionId => u16v(a, v).map(Avp::AssignedSessionId),
            T::CallSerialNumber => u32v(a, v).map(Avp::CallSerialNumber),
            T::MinimumBps => u32v(a, v).map(Avp::MinimumBps),
            T::MaximumBps => u32v(a, v).map(Avp::MaximumBps),
            T::BearerType => u32v(a, v).map(Avp::BearerType),
            T::FramingType => u32v(a, v).map(Avp::FramingType),
            T::CalledNumber => Ok(Avp::CalledNumber(bytes())),
            T::CallingNumber => Ok(Avp::CallingNumber(bytes())),
            T::SubAddress => Ok(Avp::SubAddress(bytes())),
            T::TxConnectSpeed => u32v(a, v).map(Avp::TxConnectSpeed),
            T::PhysicalChannelId => u32v(a, v).map(Avp::PhysicalChannelId),
            T::InitialReceivedLcpConfreq => Ok(Avp::InitialReceivedLcpConfreq(bytes())),
            T::LastSentLcpConfreq => Ok(Avp::LastSentLcpConfreq(bytes())),
            T::LastReceivedLcpConfreq => Ok(Avp::LastReceivedLcpConfreq(bytes())),
            T::ProxyAuthenType => u16v(a, v).map(Avp::ProxyAuthenType),
            T::ProxyAuthenName => Ok(Avp::ProxyAuthenName(bytes())),
            T::ProxyAuthenChallenge => Ok(Avp::ProxyAuthenChallenge(bytes())),
            T::ProxyAuthenId => exact::<2>(a, v, "2 octets").map(|[_, id]| Avp::ProxyAuthenId(id)),
            T::ProxyAuthenResponse => Ok(Avp::ProxyAuthenResponse(bytes())),
            T::CallErrors => exact::<26>(a, v, "26 octets").map(|v| {
                let w = |i: usize| u32::from_be_bytes([v[i], v[i + 1], v[i + 2], v[i + 3]]);
                Avp::CallErrors(CallErrors {
                    crc_errors: w(2),
                    framing_errors: w(6),
                    hardware_overruns: w(10),
                    buffer_overruns: w(14),
                    timeout_errors: w(18),
                    alignment_errors: w(22),
                })
            }),
            T::Accm => exact::<10>(a, v, "10 octets").map(|v| Avp::Accm {
                send: u32::from_be_bytes([v[2], v[3], v[4], v[5]]),
                receive: u32::from_be_bytes([v[6], v[7], v[8], v[9]]),
            }),
            T::RandomVector => nonempty(a, v).map(Avp::RandomVector),
            T::PrivateGroupId => Ok(Avp::PrivateGroupId(bytes())),
            T::RxConnectSpeed => u32v(a, v).map(Avp::RxConnectSpeed),
            T::SequencingRequired => {
                if v.is_empty() {
                    Ok(Avp::SequencingRequired)
                } else {
                    Err(AvpError::Value {
                        attribute: a,
                        len: v.len(),
                        expected: "no value",
                    })
                }
            }
            T::Unknown(_) => return None,
        })
    }

    /// Appends the Attribute Value to `out`.
    pub fn write_value(&self, out: &mut Vec<u8>) {
        match self {
            Avp::MessageType(n)
            | Avp::FirmwareRevision(n)
            | Avp::AssignedTunnelId(n)
            | Avp::ReceiveWindowSize(n)
            | Avp::AssignedSessionId(n)
            | Avp::ProxyAuthenType(n) => out.extend_from_slice(&n.to_be_bytes()),
            Avp::ResultCode(r) => {
                out.extend_from_slice(&r.result.to_be_bytes());
                if let Some(e) = r.error {
                    out.extend_from_slice(&e.to_be_bytes());
                    out.extend_from_slice(&r.message);
                }
            }
            Avp::ProtocolVersion { version, revision } => {
                out.extend_from_slice(&[*version, *revision])
            }
            Avp::FramingCapabilities(n)
            | Avp::BearerCapabilities(n)
            | Avp::CallSerialNumber(n)
            | Avp::MinimumBps(n)
            | Avp::MaximumBps(n)
            | Avp::BearerType(n)
            | Avp::FramingType(n)
            | Avp::TxConnectSpeed(n)
            | Avp::PhysicalChannelId(n)
            | Avp::RxConnectSpeed(n) => out.extend_from_slice(&n.to_be_bytes()),
            Avp::TieBreaker(t) => out.extend_from_slice(t),
            Avp::ChallengeResponse(r) => out.extend_from_slice(r),
            Avp::HostName(b)
            | Avp::VendorName(b)
            | Avp::Challenge(b)
            | Avp::CalledNumber(b)
            | Avp::CallingNumber(b)
            | Avp::SubAddress(b)
            | Avp::InitialReceivedLcpConfreq(b)
            | Avp::LastSentLcpConfreq(b)
            | Avp::LastReceivedLcpConfreq(b)
            | Avp::ProxyAuthenName(b)
            | Avp::ProxyAuthenChallenge(b)
            | Avp::ProxyAuthenResponse(b)
            | Avp::RandomVector(b)
            | Avp::PrivateGroupId(b) => out.extend_from_slice(b),
            Avp::Q931CauseCode(q) => {
                out.extend_from_slice(&q.cause.to_be_bytes());
                out.push(q.message);
                out.extend_from_slice(&q.advisory);
            }
            Avp::ProxyAuthenId(id) => out.extend_from_slice(&[0, *id]),
            Avp::CallErrors(c) => {
                out.extend_from_slice(&[0, 0]);
                for n in [
                    c.crc_errors,
                    c.framing_errors,
                    c.hardware_overruns,
                    c.buffer_overruns,
                    c.timeout_errors,
                    c.alignment_errors,
                ] {
                    out.extend_from_slice(&n.to_be_bytes());
                }
            }
            Avp::Accm { send, receive } => {
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&send.to_be_bytes());
                out.extend_from_slice(&receive.to_be_bytes());
            }
            Avp::SequencingRequired => {}
        }
    }

    /// The M bit we send: set except on the AVPs section 4.4 marks
    /// optional to understand (Firmware Revision, Vendor Name, Tie Breaker),
    /// as xl2tpd and rp-l2tp send them.
    pub fn mandatory(&self) -> bool {
        !matches!(
            self,
            Avp::FirmwareRevision(_) | Avp::VendorName(_) | Avp::TieBreaker(_)
        )
    }
}

/// Octets a peer sent, for logs: printable ASCII as it is, `\` and `"`
/// escaped, every other octet as `\xNN`.
pub struct Escaped<'a>(pub &'a [u8]);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0 {
            match b {
                b'\\' => f.write_str("\\\\")?,
                b'"' => f.write_str("\\\"")?,
                0x20..=0x7e => write!(f, "{}", b as char)?,
                _ => write!(f, "\\x{b:02x}")?,
            }
        }
        Ok(())
    }
}

/// [`Escaped`] as a `String` (host names in events).
pub fn escaped(bytes: &[u8]) -> String {
    Escaped(bytes).to_string()
}
