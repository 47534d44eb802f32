//! Control messages (RFC 2661 section 6): the Message Type, the AVPs in
//! order, and the check of the AVPs each message requires.
//!
//! [`Message::parse`] reads the AVPs of a control message body:
//!
//! - the first AVP MUST be Message Type (section 4.4.1), not hidden;
//! - an unknown Message Type is [`MessageError::UnknownMessageType`] with
//!   its M bit: with M set "the tunnel MUST be cleared", with M clear the
//!   message is ignored (section 4.4.1, the engine does both);
//! - an AVP this implementation does not know (another Vendor ID, an
//!   Attribute Type section 4.4 does not define, a reserved bit set) is kept
//!   in [`Message::unknown`] with its M bit: the engine tears down the
//!   session or the tunnel when M is set and counts it otherwise (section
//!   4.2);
//! - hidden AVPs are revealed with the shared secret and the Random Vector
//!   before them (section 4.3); without a secret the message is refused
//!   ([`AvpError::HiddenWithoutSecret`]);
//! - Random Vector AVPs are consumed there and not kept: [`Message::emit`]
//!   writes a fresh one when it hides;
//! - every AVP section 6 lists as required for the message type must be
//!   present, else [`MessageError::MissingAvp`] names both.

use core::fmt;

use crate::avp::{
    hide, unhide, write_avp, AttributeType, Avp, AvpError, AvpReader, CallErrors, Q931Cause,
    ResultCode, IETF_VENDOR,
};

enum_with_unknown! {
    /// Message Type AVP values (RFC 2661 section 3.2), named as the RFC
    /// abbreviates them.
    pub enum MessageType(u16) {
        /// Start-Control-Connection-Request (6.1).
        Sccrq = 1 => "SCCRQ",
        /// Start-Control-Connection-Reply (6.2).
        Sccrp = 2 => "SCCRP",
        /// Start-Control-Connection-Connected (6.3).
        Scccn = 3 => "SCCCN",
        /// Stop-Control-Connection-Notification (6.4).
        StopCcn = 4 => "StopCCN",
        /// Hello (6.5).
        Hello = 6 => "HELLO",
        /// Outgoing-Call-Request (6.6).
        Ocrq = 7 => "OCRQ",
        /// Outgoing-Call-Reply (6.7).
        Ocrp = 8 => "OCRP",
        /// Outgoing-Call-Connected (6.8).
        Occn = 9 => "OCCN",
        /// Incoming-Call-Request (6.9).
        Icrq = 10 => "ICRQ",
        /// Incoming-Call-Reply (6.10).
        Icrp = 11 => "ICRP",
        /// Incoming-Call-Connected (6.11).
        Iccn = 12 => "ICCN",
        /// Call-Disconnect-Notify (6.12).
        Cdn = 14 => "CDN",
        /// WAN-Error-Notify (6.13).
        Wen = 15 => "WEN",
        /// Set-Link-Info (6.14).
        Sli = 16 => "SLI",
    }
}

impl MessageType {
    /// Whether the message belongs to a session (call management and
    /// session messages, sections 3.2 and 6.6 to 6.14) rather than to the
    /// control connection.
    pub fn is_session_message(self) -> bool {
        use MessageType::*;
        matches!(
            self,
            Ocrq | Ocrp | Occn | Icrq | Icrp | Iccn | Cdn | Wen | Sli
        )
    }

    /// The AVPs section 6 requires in this message besides Message Type.
    pub fn required_avps(self) -> &'static [AttributeType] {
        use AttributeType as A;
        use MessageType::*;
        match self {
            // 6.1 and 6.2.
            Sccrq | Sccrp => &[
                A::ProtocolVersion,
                A::HostName,
                A::FramingCapabilities,
                A::AssignedTunnelId,
            ],
            // 6.4.
            StopCcn => &[A::AssignedTunnelId, A::ResultCode],
            // 6.6.
            Ocrq => &[
                A::AssignedSessionId,
                A::CallSerialNumber,
                A::MinimumBps,
                A::MaximumBps,
                A::BearerType,
                A::FramingType,
                A::CalledNumber,
            ],
            // 6.7 and 6.10.
            Ocrp | Icrp => &[A::AssignedSessionId],
            // 6.8 and 6.11.
            Occn | Iccn => &[A::TxConnectSpeed, A::FramingType],
            // 6.9.
            Icrq => &[A::AssignedSessionId, A::CallSerialNumber],
            // 6.12.
            Cdn => &[A::ResultCode, A::AssignedSessionId],
            // 6.13.
            Wen => &[A::CallErrors],
            // 6.14.
            Sli => &[A::Accm],
            Scccn | Hello | Unknown(_) => &[],
        }
    }
}

/// An AVP this implementation does not know (section 4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UnknownAvp {
    /// M: "the entire tunnel (or session) MUST be terminated" when set.
    pub mandatory: bool,
    /// H.
    pub hidden: bool,
    /// Vendor ID.
    pub vendor_id: u16,
    /// Attribute Type.
    pub attribute_type: u16,
    /// Octets of the value.
    pub len: usize,
}

impl fmt::Display for UnknownAvp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.vendor_id == IETF_VENDOR {
            write!(f, "AVP type {}", self.attribute_type)?;
        } else {
            write!(
                f,
                "vendor {} AVP type {}",
                self.vendor_id, self.attribute_type
            )?;
        }
        write!(
            f,
            " ({} octets{}{})",
            self.len,
            if self.mandatory { ", M" } else { "" },
            if self.hidden { ", H" } else { "" }
        )
    }
}

/// Why a control message body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// An AVP's header or value is malformed.
    #[error("{0}")]
    Avp(AvpError),
    /// The first AVP is not Message Type.
    #[error("the first AVP is {first}, not Message Type (RFC 2661 section 4.4.1)")]
    FirstNotMessageType {
        /// What it is.
        first: String,
    },
    /// The Message Type AVP is hidden.
    #[error("the Message Type AVP is hidden (RFC 2661 section 4.4.1: it MUST NOT be)")]
    MessageTypeHidden,
    /// A Message Type this implementation does not know.
    #[error("unknown Message Type {value}{}", if *mandatory { " with the M bit: the tunnel must be cleared" } else { " (M bit clear: ignored)" })]
    UnknownMessageType {
        /// The value.
        value: u16,
        /// Its M bit.
        mandatory: bool,
    },
    /// A required AVP is missing.
    #[error("{} without the required {} AVP (RFC 2661 section 6)", message.name().unwrap_or("message"), avp.name().unwrap_or("unknown"))]
    MissingAvp {
        /// The message.
        message: MessageType,
        /// The AVP.
        avp: AttributeType,
    },
}

impl From<AvpError> for MessageError {
    fn from(e: AvpError) -> Self {
        MessageError::Avp(e)
    }
}

/// Most AVPs a message may carry (a 64 KiB datagram has at most 10922).
/// Unknown AVPs beyond [`MAX_UNKNOWN_KEPT`] are counted, not kept.
pub const MAX_UNKNOWN_KEPT: usize = 16;

/// A control message: its type and its AVPs (Message Type and Random
/// Vector excluded), in the order they came.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// Message Type.
    pub message_type: u16,
    /// The known AVPs, revealed when they were hidden.
    pub avps: Vec<Avp>,
    /// The first unknown AVPs ([`MAX_UNKNOWN_KEPT`] at most).
    pub unknown: Vec<UnknownAvp>,
    /// How many unknown AVPs there were in all.
    pub unknown_count: usize,
    /// How many AVPs were hidden.
    pub hidden_count: usize,
}

/// Hiding for [`Message::emit`]: the shared secret and the Random Vector
/// to put before the hidden AVPs (the engine draws it from the OS CSPRNG).
#[derive(Debug, Clone, Copy)]
pub struct Hiding<'a> {
    /// The tunnel's shared secret.
    pub secret: &'a [u8],
    /// The Random Vector.
    pub random_vector: &'a [u8],
}

impl Message {
    /// A message of type `t` without AVPs.
    pub fn new(t: MessageType) -> Message {
        Message {
            message_type: t.into(),
            ..Message::default()
        }
    }

    /// Adds an AVP (builder style).
    pub fn with(mut self, avp: Avp) -> Message {
        self.avps.push(avp);
        self
    }

    /// The Message Type.
    pub fn kind(&self) -> MessageType {
        MessageType::from(self.message_type)
    }

    /// Parses a control message body (the octets after the header; not
    /// empty: an empty body is a ZLB acknowledgement). `secret` reveals
    /// hidden AVPs. See the module docs.
    pub fn parse(body: &[u8], secret: Option<&[u8]>) -> Result<Message, MessageError> {
        let mut reader = AvpReader::new(body);
        let first = match reader.next() {
            None => {
                return Err(MessageError::FirstNotMessageType {
                    first: "nothing (a ZLB)".to_string(),
                })
            }
            Some(r) => r?,
        };
        if !first.is_ietf() || first.attribute_type != 0 {
            return Err(MessageError::FirstNotMessageType {
                first: if first.vendor_id == IETF_VENDOR {
                    format!("{}", AttributeType::from(first.attribute_type))
                } else {
                    format!("vendor {} type {}", first.vendor_id, first.attribute_type)
                },
            });
        }
        if first.hidden {
            return Err(MessageError::MessageTypeHidden);
        }
        let value = match Avp::parse(AttributeType::MessageType, first.value) {
            Some(Ok(Avp::MessageType(v))) => v,
            Some(Err(e)) => return Err(e.into()),
            _ => unreachable!("Message Type parses to Avp::MessageType"),
        };
        if let MessageType::Unknown(v) = MessageType::from(value) {
            return Err(MessageError::UnknownMessageType {
                value: v,
                mandatory: first.mandatory,
            });
        }
        let mut m = Message {
            message_type: value,
            ..Message::default()
        };
        let mut random_vector: Option<Vec<u8>> = None;
        for raw in reader {
            let raw = raw?;
            let attribute = AttributeType::from(raw.attribute_type);
            let known = raw.is_ietf() && !matches!(attribute, AttributeType::Unknown(_));
            if !known {
                m.unknown_count += 1;
                if m.unknown.len() < MAX_UNKNOWN_KEPT {
                    m.unknown.push(UnknownAvp {
                        mandatory: raw.mandatory,
                        hidden: raw.hidden,
                        vendor_id: raw.vendor_id,
                        attribute_type: raw.attribute_type,
                        len: raw.value.len(),
                    });
                }
                continue;
            }
            let revealed;
            let value = if raw.hidden {
                let secret = secret.ok_or(AvpError::HiddenWithoutSecret { attribute })?;
                let rv = random_vector
                    .as_deref()
                    .ok_or(AvpError::HiddenWithoutRandomVector { attribute })?;
                revealed = unhide(raw.attribute_type, raw.value, secret, rv)?;
                m.hidden_count += 1;
                &revealed[..]
            } else {
                raw.value
            };
            match Avp::parse(attribute, value) {
                Some(Ok(Avp::RandomVector(rv))) => random_vector = Some(rv),
                Some(Ok(avp)) => m.avps.push(avp),
                Some(Err(e)) => return Err(e.into()),
                None => unreachable!("a known attribute parses"),
            }
        }
        for &avp in m.kind().required_avps() {
            if m.get(avp).is_none() {
                return Err(MessageError::MissingAvp {
                    message: m.kind(),
                    avp,
                });
            }
        }
        Ok(m)
    }

    /// Appends the message body (Message Type AVP first, then the AVPs in
    /// order) to `out`. With `hiding`, a Random Vector AVP goes first and
    /// every AVP that may be hidden is (section 4.3), with no padding.
    /// Unknown AVPs are not written.
    pub fn emit(&self, out: &mut Vec<u8>, hiding: Option<Hiding<'_>>) {
        write_avp(
            out,
            true,
            false,
            IETF_VENDOR,
            0,
            &self.message_type.to_be_bytes(),
        );
        let hiding = hiding.filter(|_| self.avps.iter().any(|a| a.attribute_type().may_hide()));
        if let Some(h) = hiding {
            write_avp(
                out,
                true,
                false,
                IETF_VENDOR,
                AttributeType::RandomVector.into(),
                h.random_vector,
            );
        }
        let mut value = Vec::new();
        for avp in &self.avps {
            value.clear();
            avp.write_value(&mut value);
            let t = avp.attribute_type();
            match hiding {
                Some(h) if t.may_hide() => {
                    let hidden = hide(t.into(), &value, h.secret, h.random_vector, &[]);
                    write_avp(out, avp.mandatory(), true, IETF_VENDOR, t.into(), &hidden);
                }
                _ => write_avp(out, avp.mandatory(), false, IETF_VENDOR, t.into(), &value),
            }
        }
    }

    /// The first AVP of type `t`.
    pub fn get(&self, t: AttributeType) -> Option<&Avp> {
        self.avps.iter().find(|a| a.attribute_type() == t)
    }

    /// The first unknown AVP with the M bit set.
    pub fn unknown_mandatory(&self) -> Option<&UnknownAvp> {
        self.unknown.iter().find(|u| u.mandatory)
    }
}

macro_rules! getter {
    ($(#[$doc:meta])* $name:ident, $variant:ident, $ty:ty) => {
        $(#[$doc])*
        pub fn $name(&self) -> Option<$ty> {
            self.avps.iter().find_map(|a| match a {
                Avp::$variant(v) => Some(v.clone()),
                _ => None,
            })
        }
    };
}

impl Message {
    getter!(
        /// Host Name.
        host_name, HostName, Vec<u8>);
    getter!(
        /// Vendor Name.
        vendor_name, VendorName, Vec<u8>);
    getter!(
        /// Assigned Tunnel ID.
        assigned_tunnel_id, AssignedTunnelId, u16);
    getter!(
        /// Assigned Session ID.
        assigned_session_id, AssignedSessionId, u16);
    getter!(
        /// Receive Window Size.
        receive_window_size, ReceiveWindowSize, u16);
    getter!(
        /// Challenge.
        challenge, Challenge, Vec<u8>);
    getter!(
        /// Challenge Response.
        challenge_response, ChallengeResponse, [u8; 16]);
    getter!(
        /// Tie Breaker.
        tie_breaker, TieBreaker, [u8; 8]);
    getter!(
        /// Firmware Revision.
        firmware_revision, FirmwareRevision, u16);
    getter!(
        /// Framing Capabilities.
        framing_capabilities, FramingCapabilities, u32);
    getter!(
        /// Bearer Capabilities.
        bearer_capabilities, BearerCapabilities, u32);
    getter!(
        /// Result Code.
        result_code, ResultCode, ResultCode);
    getter!(
        /// Q.931 Cause Code.
        q931_cause, Q931CauseCode, Q931Cause);
    getter!(
        /// Call Serial Number.
        call_serial_number, CallSerialNumber, u32);
    getter!(
        /// Minimum BPS.
        minimum_bps, MinimumBps, u32);
    getter!(
        /// Maximum BPS.
        maximum_bps, MaximumBps, u32);
    getter!(
        /// Bearer Type.
        bearer_type, BearerType, u32);
    getter!(
        /// Framing Type.
        framing_type, FramingType, u32);
    getter!(
        /// Called Number.
        called_number, CalledNumber, Vec<u8>);
    getter!(
        /// Calling Number.
        calling_number, CallingNumber, Vec<u8>);
    getter!(
        /// Sub-Address.
        sub_address, SubAddress, Vec<u8>);
    getter!(
        /// (Tx) Connect Speed.
        tx_connect_speed, TxConnectSpeed, u32);
    getter!(
        /// Rx Connect Speed.
        rx_connect_speed, RxConnectSpeed, u32);
    getter!(
        /// Physical Channel ID.
        physical_channel_id, PhysicalChannelId, u32);
    getter!(
        /// Call Errors.
        call_errors, CallErrors, CallErrors);
    getter!(
        /// Proxy Authen Name.
        proxy_authen_name, ProxyAuthenName, Vec<u8>);
    getter!(
        /// Proxy Authen Type.
        proxy_authen_type, ProxyAuthenType, u16);
    getter!(
        /// Private Group ID.
        private_group_id, PrivateGroupId, Vec<u8>);

    /// Protocol Version: (version, revision).
    pub fn protocol_version(&self) -> Option<(u8, u8)> {
        self.avps.iter().find_map(|a| match a {
            Avp::ProtocolVersion { version, revision } => Some((*version, *revision)),
            _ => None,
        })
    }

    /// ACCM: (send, receive).
    pub fn accm(&self) -> Option<(u32, u32)> {
        self.avps.iter().find_map(|a| match a {
            Avp::Accm { send, receive } => Some((*send, *receive)),
            _ => None,
        })
    }

    /// Whether Sequencing Required is present.
    pub fn sequencing_required(&self) -> bool {
        self.avps
            .iter()
            .any(|a| matches!(a, Avp::SequencingRequired))
    }
}

enum_with_unknown! {
    /// StopCCN Result Code values (RFC 2661 section 4.4.2).
    pub enum StopCcnResult(u16) {
        /// General request to clear control connection.
        GeneralRequest = 1 => "General request to clear control connection",
        /// General error--Error Code indicates the problem.
        GeneralError = 2 => "General error",
        /// Control channel already exists.
        ChannelExists = 3 => "Control channel already exists",
        /// Requester is not authorized to establish a control channel.
        NotAuthorized = 4 => "Requester is not authorized to establish a control channel",
        /// The protocol version of the requester is not supported.
        UnsupportedVersion = 5 => "The protocol version of the requester is not supported",
        /// Requester is being shut down.
        ShuttingDown = 6 => "Requester is being shut down",
        /// Finite State Machine error.
        FsmError = 7 => "Finite State Machine error",
    }
}

enum_with_unknown! {
    /// CDN Result Code values (RFC 2661 section 4.4.2).
    pub enum CdnResult(u16) {
        /// Call disconnected due to loss of carrier.
        LostCarrier = 1 => "Call disconnected due to loss of carrier",
        /// Call disconnected for the reason indicated in error code.
        GeneralError = 2 => "Call disconnected for the reason indicated in error code",
        /// Call disconnected for administrative reasons.
        Administrative = 3 => "Call disconnected for administrative reasons",
        /// Call failed due to lack of appropriate facilities being
        /// available (temporary condition).
        NoFacilitiesTemporary = 4 => "Call failed due to lack of appropriate facilities being available (temporary condition)",
        /// Call failed due to lack of appropriate facilities being
        /// available (permanent condition).
        NoFacilitiesPermanent = 5 => "Call failed due to lack of appropriate facilities being available (permanent condition)",
        /// Invalid destination.
        InvalidDestination = 6 => "Invalid destination",
        /// Call failed due to no carrier detected.
        NoCarrier = 7 => "Call failed due to no carrier detected",
        /// Call failed due to detection of a busy signal.
        Busy = 8 => "Call failed due to detection of a busy signal",
        /// Call failed due to lack of a dial tone.
        NoDialTone = 9 => "Call failed due to lack of a dial tone",
        /// Call was not established within time allotted by LAC.
        Timeout = 10 => "Call was not established within time allotted by LAC",
        /// Call was connected but no appropriate framing was detected.
        NoFraming = 11 => "Call was connected but no appropriate framing was detected",
    }
}

enum_with_unknown! {
    /// General Error Codes (RFC 2661 section 4.4.2), the Error Code of a
    /// Result Code AVP.
    pub enum ErrorCode(u16) {
        /// No general error.
        NoError = 0 => "No general error",
        /// No control connection exists yet for this LAC-LNS pair.
        NoControlConnection = 1 => "No control connection exists yet for this LAC-LNS pair",
        /// Length is wrong.
        BadLength = 2 => "Length is wrong",
        /// One of the field values was out of range or reserved field was
        /// non-zero.
        BadValue = 3 => "One of the field values was out of range or reserved field was non-zero",
        /// Insufficient resources to handle this operation now.
        NoResources = 4 => "Insufficient resources to handle this operation now",
        /// The Session ID is invalid in this context.
        BadSessionId = 5 => "The Session ID is invalid in this context",
        /// A generic vendor-specific error occurred in the LAC.
        VendorError = 6 => "A generic vendor-specific error occurred in the LAC",
        /// Try another.
        TryAnother = 7 => "Try another",
        /// Session or tunnel was shutdown due to receipt of an unknown AVP
        /// with the M-bit set.
        UnknownMandatoryAvp = 8 => "Session or tunnel was shutdown due to receipt of an unknown AVP with the M-bit set",
    }
}

/// A Result Code AVP value from typed parts.
pub fn result_code(result: u16, error: Option<ErrorCode>, message: &str) -> ResultCode {
    ResultCode {
        result,
        error: error.map(u16::from),
        message: if error.is_some() {
            message.as_bytes().to_vec()
        } else {
            Vec::new()
        },
    }
}
