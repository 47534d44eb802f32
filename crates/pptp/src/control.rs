//! PPTP control messages (RFC 2637 section 2) and their reassembly from the
//! TCP stream.
//!
//! Every message starts with the same 12 octets (RFC 2637 section 1.4 and
//! the figure of section 2.1):
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |             Length            |       PPTP Message Type       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         Magic Cookie                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Control Message Type      |           Reserved0           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! and every one of the 15 control message types has a fixed length (its
//! figure in section 2): a message of any other length is refused.
//!
//! # The order of the checks
//!
//! PoPToP's remote overflow (CVE-2003-0213, seed 001) read `Length` octets
//! into a fixed buffer without checking `Length`. Here the header is checked
//! field by field, as the octets arrive and before anything after them is
//! read ([`check_header`]):
//!
//! 1. Length (2 octets): at least the 12-octet header and at most
//!    [`MAX_MESSAGE_LEN`] (the longest message, Incoming-Call-Request), so a
//!    reader never waits for (or buffers) more than one message;
//! 2. PPTP Message Type: 1 (Control Message; 2, Management, is "currently
//!    not defined");
//! 3. Magic Cookie: `0x1A2B3C4D` ("Loss of synchronization must result in
//!    immediate closing of the control connection's TCP session", section
//!    1.4: there is no resynchronisation);
//! 4. Control Message Type: 1 to 15;
//! 5. Length again: exactly the length of that type.
//!
//! Only then are the fields of the message read. Each failure is a
//! [`ControlError`] that names the field and the values.
//!
//! # Reserved fields
//!
//! "Any reserved fields MUST be sent as 0 values to allow for protocol
//! extensibility" (section 2): we send zeros and ignore what arrives in them
//! (pptp-linux logs a non-zero Reserved0 as a "Cisco feature?" and carries
//! on). So a parsed message emits back to the same octets except where the
//! sender broke that MUST.

use core::fmt;

use crate::text::Text;

/// The TCP port of the control connection (RFC 2637 section 1.4).
pub const TCP_PORT: u16 = 1723;
/// Size of the header every control message starts with.
pub const HEADER_LEN: usize = 12;
/// The Magic Cookie (RFC 2637 section 1.4): "always sent as the constant
/// 0x1A2B3C4D".
pub const MAGIC_COOKIE: u32 = 0x1A2B_3C4D;
/// PPTP Message Type 1, Control Message (section 1.4).
pub const CONTROL_MESSAGE: u16 = 1;
/// PPTP Message Type 2, Management Message: "currently not defined".
pub const MANAGEMENT_MESSAGE: u16 = 2;
/// Protocol Version 1, revision 0 (section 1.4: "The current value of the
/// version number field is 0x0100").
pub const PROTOCOL_VERSION: u16 = 0x0100;
/// The longest control message: Incoming-Call-Request, 220 octets.
pub const MAX_MESSAGE_LEN: usize = 220;
/// The shortest control message: 16 octets (Stop-Control-Connection-*,
/// Echo-Request, Call-Clear-Request).
pub const MIN_MESSAGE_LEN: usize = 16;

/// Framing Capabilities / Framing Type bit 1: asynchronous framing (2.1).
pub const FRAMING_ASYNC: u32 = 1;
/// Framing Capabilities / Framing Type bit 2: synchronous framing (2.1).
pub const FRAMING_SYNC: u32 = 2;
/// Bearer Capabilities / Bearer Type bit 1: analog access (2.1).
pub const BEARER_ANALOG: u32 = 1;
/// Bearer Capabilities / Bearer Type bit 2: digital access (2.1).
pub const BEARER_DIGITAL: u32 = 2;

enum_with_unknown! {
    /// Control Message Type (RFC 2637 section 1.4), with each message's
    /// name as the RFC writes it.
    pub enum ControlMessageType(u16) {
        /// Section 2.1.
        StartControlConnectionRequest = 1 => "Start-Control-Connection-Request",
        /// Section 2.2.
        StartControlConnectionReply = 2 => "Start-Control-Connection-Reply",
        /// Section 2.3.
        StopControlConnectionRequest = 3 => "Stop-Control-Connection-Request",
        /// Section 2.4.
        StopControlConnectionReply = 4 => "Stop-Control-Connection-Reply",
        /// Section 2.5.
        EchoRequest = 5 => "Echo-Request",
        /// Section 2.6.
        EchoReply = 6 => "Echo-Reply",
        /// Section 2.7.
        OutgoingCallRequest = 7 => "Outgoing-Call-Request",
        /// Section 2.8.
        OutgoingCallReply = 8 => "Outgoing-Call-Reply",
        /// Section 2.9.
        IncomingCallRequest = 9 => "Incoming-Call-Request",
        /// Section 2.10.
        IncomingCallReply = 10 => "Incoming-Call-Reply",
        /// Section 2.11.
        IncomingCallConnected = 11 => "Incoming-Call-Connected",
        /// Section 2.12.
        CallClearRequest = 12 => "Call-Clear-Request",
        /// Section 2.13.
        CallDisconnectNotify = 13 => "Call-Disconnect-Notify",
        /// Section 2.14.
        WanErrorNotify = 14 => "WAN-Error-Notify",
        /// Section 2.15.
        SetLinkInfo = 15 => "Set-Link-Info",
    }
}

impl ControlMessageType {
    /// The one length (header included) a message of this type has,
    /// from its figure in RFC 2637 section 2; `None` for an unknown type.
    pub fn length(self) -> Option<u16> {
        use ControlMessageType::*;
        Some(match self {
            StartControlConnectionRequest | StartControlConnectionReply => 156,
            StopControlConnectionRequest | StopControlConnectionReply => 16,
            EchoRequest => 16,
            EchoReply => 20,
            OutgoingCallRequest => 168,
            OutgoingCallReply => 32,
            IncomingCallRequest => 220,
            IncomingCallReply => 24,
            IncomingCallConnected => 28,
            CallClearRequest => 16,
            CallDisconnectNotify => 148,
            WanErrorNotify => 40,
            SetLinkInfo => 24,
            Unknown(_) => return None,
        })
    }
}

enum_with_unknown! {
    /// General Error Codes (RFC 2637 section 2.16), the Error Code of a
    /// reply whose Result Code is "General Error".
    pub enum GeneralError(u8) {
        /// No general error.
        None = 0 => "None",
        /// No control connection exists yet for this PAC-PNS pair.
        NotConnected = 1 => "Not-Connected",
        /// Length is wrong or Magic Cookie value is incorrect.
        BadFormat = 2 => "Bad-Format",
        /// One of the field values was out of range or reserved field was
        /// non-zero.
        BadValue = 3 => "Bad-Value",
        /// Insufficient resources to handle this command now.
        NoResource = 4 => "No-Resource",
        /// The Call ID is invalid in this context.
        BadCallId = 5 => "Bad-Call ID",
        /// A generic vendor-specific error occurred in the PAC.
        PacError = 6 => "PAC-Error",
    }
}

enum_with_unknown! {
    /// Start-Control-Connection-Reply Result Code (section 2.2).
    pub enum StartResult(u8) {
        /// Successful channel establishment.
        Success = 1 => "Successful channel establishment",
        /// General error -- Error Code indicates the problem.
        GeneralError = 2 => "General error",
        /// Command channel already exists.
        ChannelExists = 3 => "Command channel already exists",
        /// Requester is not authorized to establish a command channel.
        NotAuthorized = 4 => "Requester is not authorized",
        /// The protocol version of the requester is not supported.
        UnsupportedVersion = 5 => "Protocol version not supported",
    }
}

enum_with_unknown! {
    /// Stop-Control-Connection-Request Reason (section 2.3).
    pub enum StopReason(u8) {
        /// General request to clear control connection.
        None = 1 => "None",
        /// Can't support peer's version of the protocol.
        StopProtocol = 2 => "Stop-Protocol",
        /// Requester is being shut down.
        StopLocalShutdown = 3 => "Stop-Local-Shutdown",
    }
}

enum_with_unknown! {
    /// Stop-Control-Connection-Reply Result Code (section 2.4).
    pub enum StopResult(u8) {
        /// Control connection closed.
        Ok = 1 => "OK",
        /// Control connection not closed for reason indicated in Error Code.
        GeneralError = 2 => "General Error",
    }
}

enum_with_unknown! {
    /// Echo-Reply Result Code (section 2.6).
    pub enum EchoResult(u8) {
        /// The Echo-Reply is valid.
        Ok = 1 => "OK",
        /// Echo-Request not accepted for the reason indicated in Error Code.
        GeneralError = 2 => "General Error",
    }
}

enum_with_unknown! {
    /// Outgoing-Call-Reply Result Code (section 2.8).
    pub enum OutgoingCallResult(u8) {
        /// Call established with no errors.
        Connected = 1 => "Connected",
        /// Outgoing Call not established for the reason in Error Code.
        GeneralError = 2 => "General Error",
        /// Outgoing Call failed due to no carrier detected.
        NoCarrier = 3 => "No Carrier",
        /// Outgoing Call failed due to detection of a busy signal.
        Busy = 4 => "Busy",
        /// Outgoing Call failed due to lack of a dial tone.
        NoDialTone = 5 => "No Dial Tone",
        /// Outgoing Call was not established within time allotted by PAC.
        TimeOut = 6 => "Time-out",
        /// Outgoing Call administratively prohibited.
        DoNotAccept = 7 => "Do Not Accept",
    }
}

enum_with_unknown! {
    /// Incoming-Call-Reply Result Code (section 2.10).
    pub enum IncomingCallResult(u8) {
        /// The PAC should answer the incoming call.
        Connect = 1 => "Connect",
        /// The Incoming Call should not be established (Error Code says why).
        GeneralError = 2 => "General Error",
        /// The PAC should not accept the incoming call.
        DoNotAccept = 3 => "Do Not Accept",
    }
}

enum_with_unknown! {
    /// Call-Disconnect-Notify Result Code (section 2.13).
    pub enum DisconnectResult(u8) {
        /// Call disconnected due to loss of carrier.
        LostCarrier = 1 => "Lost Carrier",
        /// Call disconnected for the reason indicated in Error Code.
        GeneralError = 2 => "General Error",
        /// Call disconnected for administrative reasons.
        AdminShutdown = 3 => "Admin Shutdown",
        /// Call disconnected due to received Call-Clear-Request.
        Request = 4 => "Request",
    }
}

/// A 64-octet text field (Host Name, Vendor String, numbers, Subaddress).
pub type Text64 = Text<64>;
/// The 128-octet Call Statistics field of Call-Disconnect-Notify.
pub type Text128 = Text<128>;

/// Why a control message (or the stream it came in) was refused. Each one
/// names the field, the value that arrived and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// Length below the 12-octet header (PoPToP's CVE-2003-0213 came from
    /// Length 0 and 1).
    #[error("Length {length} is shorter than the 12-octet header")]
    LengthTooShort {
        /// The Length field.
        length: u16,
    },
    /// Length above the longest control message: refused as soon as the two
    /// Length octets arrive, without waiting for the rest.
    #[error(
        "Length {length} (0x{length:04x}) is longer than any control message \
         (the longest, Incoming-Call-Request, is 220 octets)"
    )]
    LengthTooLong {
        /// The Length field.
        length: u16,
    },
    /// PPTP Message Type other than 1 (Control Message).
    #[error("{}", message_type_text(*value))]
    MessageType {
        /// The PPTP Message Type field.
        value: u16,
    },
    /// The Magic Cookie is not 0x1A2B3C4D: the stream is out of sync.
    #[error("Magic Cookie 0x{value:08x} (must be 0x1a2b3c4d)")]
    MagicCookie {
        /// The Magic Cookie field.
        value: u32,
    },
    /// A Control Message Type outside 1 to 15.
    #[error("Control Message Type {value} is unknown")]
    UnknownControlMessageType {
        /// The Control Message Type field.
        value: u16,
    },
    /// Length is not the fixed length of the message type.
    #[error("Length {length} (0x{length:04x}): {} is {expected} octets", message_type.name().unwrap_or("this message"))]
    WrongLength {
        /// The Length field.
        length: u16,
        /// The Control Message Type.
        message_type: ControlMessageType,
        /// Its length from RFC 2637 section 2.
        expected: u16,
    },
    /// [`Message::parse`]: fewer octets than the header or than Length.
    #[error("{got} octets of a message whose Length says {length}")]
    Truncated {
        /// The Length field (0 when not even it arrived).
        length: u16,
        /// Octets given.
        got: usize,
    },
    /// [`Message::parse`]: octets after the message.
    #[error("{extra} octets after a message whose Length says {length}")]
    TrailingOctets {
        /// The Length field.
        length: u16,
        /// Octets after it.
        extra: usize,
    },
    /// The TCP connection ended inside a message.
    #[error("connection closed inside a message: Length says {length}, {arrived} octets arrived")]
    ClosedInsideMessage {
        /// The Length field.
        length: u16,
        /// Octets of the message that arrived.
        arrived: usize,
    },
    /// The TCP connection ended after the first octet of a Length.
    #[error("connection closed inside a message: 1 octet arrived, Length incomplete")]
    ClosedInsideLength,
}

fn message_type_text(value: u16) -> String {
    match value {
        MANAGEMENT_MESSAGE => {
            "PPTP Message Type 2 (Management Message) is not defined: only 1 (Control Message)"
                .to_string()
        }
        v => format!("PPTP Message Type {v} is unknown (must be 1, Control Message)"),
    }
}

/// What [`check_header`] learnt from a complete header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The Length field: the whole message, header included.
    pub length: u16,
    /// The Control Message Type.
    pub message_type: ControlMessageType,
}

/// Checks the header fields present in `prefix` (the first octets of a
/// message, any number of them), in the order of the module docs, and
/// stops at the first wrong one. `Ok(None)`: nothing wrong so far, but fewer
/// than 10 octets (up to the Control Message Type) arrived; `Ok(Some(h))`:
/// the header is good and the message is `h.length` octets long.
pub fn check_header(prefix: &[u8]) -> Result<Option<Header>, ControlError> {
    if prefix.len() < 2 {
        return Ok(None);
    }
    let length = be16(prefix, 0);
    if usize::from(length) < HEADER_LEN {
        return Err(ControlError::LengthTooShort { length });
    }
    if usize::from(length) > MAX_MESSAGE_LEN {
        return Err(ControlError::LengthTooLong { length });
    }
    if prefix.len() < 4 {
        return Ok(None);
    }
    let value = be16(prefix, 2);
    if value != CONTROL_MESSAGE {
        return Err(ControlError::MessageType { value });
    }
    if prefix.len() < 8 {
        // Check the octets of the cookie that arrived: a stream out of sync
        // is refused without waiting for the rest of it.
        let arrived = &prefix[4..];
        if arrived != &MAGIC_COOKIE.to_be_bytes()[..arrived.len()] {
            let mut cookie = [0u8; 4];
            cookie[..arrived.len()].copy_from_slice(arrived);
            return Err(ControlError::MagicCookie {
                value: u32::from_be_bytes(cookie),
            });
        }
        return Ok(None);
    }
    let value = be32(prefix, 4);
    if value != MAGIC_COOKIE {
        return Err(ControlError::MagicCookie { value });
    }
    if prefix.len() < 10 {
        return Ok(None);
    }
    let message_type = ControlMessageType::from(be16(prefix, 8));
    let Some(expected) = message_type.length() else {
        return Err(ControlError::UnknownControlMessageType {
            value: message_type.into(),
        });
    };
    if length != expected {
        return Err(ControlError::WrongLength {
            length,
            message_type,
            expected,
        });
    }
    Ok(Some(Header {
        length,
        message_type,
    }))
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Start-Control-Connection-Request (RFC 2637 section 2.1), 156 octets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartControlConnectionRequest {
    /// Protocol Version: the version the sender wishes to use (0x0100).
    pub protocol_version: u16,
    /// Framing Capabilities ([`FRAMING_ASYNC`], [`FRAMING_SYNC`]).
    pub framing_capabilities: u32,
    /// Bearer Capabilities ([`BEARER_ANALOG`], [`BEARER_DIGITAL`]).
    pub bearer_capabilities: u32,
    /// Maximum Channels: 0 from a PNS, "MUST be ignored by the PAC".
    pub maximum_channels: u16,
    /// Firmware Revision (PAC) or the PNS's driver version.
    pub firmware_revision: u16,
    /// Host Name: the DNS name of the sender.
    pub host_name: Text64,
    /// Vendor String.
    pub vendor_string: Text64,
}

/// Start-Control-Connection-Reply (RFC 2637 section 2.2), 156 octets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartControlConnectionReply {
    /// Protocol Version the sender wishes to use.
    pub protocol_version: u16,
    /// Result Code.
    pub result_code: StartResult,
    /// Error Code (when the Result Code is General error).
    pub error_code: GeneralError,
    /// Framing Capability.
    pub framing_capabilities: u32,
    /// Bearer Capability.
    pub bearer_capabilities: u32,
    /// Maximum Channels the PAC supports ("The PNS MUST NOT use this value
    /// to try to track the remaining number of PPP sessions").
    pub maximum_channels: u16,
    /// Firmware Revision.
    pub firmware_revision: u16,
    /// Host Name.
    pub host_name: Text64,
    /// Vendor String.
    pub vendor_string: Text64,
}

/// Stop-Control-Connection-Request (RFC 2637 section 2.3), 16 octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopControlConnectionRequest {
    /// Reason.
    pub reason: StopReason,
}

/// Stop-Control-Connection-Reply (RFC 2637 section 2.4), 16 octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopControlConnectionReply {
    /// Result Code.
    pub result_code: StopResult,
    /// Error Code.
    pub error_code: GeneralError,
}

/// Echo-Request (RFC 2637 section 2.5), 16 octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoRequest {
    /// Identifier, copied into the Echo-Reply.
    pub identifier: u32,
}

/// Echo-Reply (RFC 2637 section 2.6), 20 octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoReply {
    /// Identifier of the Echo-Request answered.
    pub identifier: u32,
    /// Result Code.
    pub result_code: EchoResult,
    /// Error Code.
    pub error_code: GeneralError,
}

/// Outgoing-Call-Request (RFC 2637 section 2.7), 168 octets, PNS to PAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingCallRequest {
    /// Call ID the PNS assigned: the PAC puts it in the GRE Key of the
    /// packets it sends for this call.
    pub call_id: u16,
    /// Call Serial Number, for logs (both ends associate it with the call).
    pub call_serial_number: u16,
    /// Minimum BPS.
    pub minimum_bps: u32,
    /// Maximum BPS.
    pub maximum_bps: u32,
    /// Bearer Type (1 analog, 2 digital, 3 any).
    pub bearer_type: u32,
    /// Framing Type (1 async, 2 sync, 3 either).
    pub framing_type: u32,
    /// Packet Recv. Window Size: data packets the PNS will buffer.
    pub packet_recv_window_size: u16,
    /// Packet Processing Delay, in tenths of a second.
    pub packet_processing_delay: u16,
    /// Phone Number Length: valid digits in Phone Number.
    pub phone_number_length: u16,
    /// Phone Number.
    pub phone_number: Text64,
    /// Subaddress.
    pub subaddress: Text64,
}

/// Outgoing-Call-Reply (RFC 2637 section 2.8), 32 octets, PAC to PNS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutgoingCallReply {
    /// Call ID the PAC assigned: the PNS puts it in the GRE Key.
    pub call_id: u16,
    /// Peer's Call ID: the Call ID of the Outgoing-Call-Request.
    pub peer_call_id: u16,
    /// Result Code.
    pub result_code: OutgoingCallResult,
    /// Error Code.
    pub error_code: GeneralError,
    /// Cause Code (Q.931 cause for ISDN).
    pub cause_code: u16,
    /// Connect Speed, bits per second.
    pub connect_speed: u32,
    /// Packet Recv. Window Size: data packets the PAC will buffer.
    pub packet_recv_window_size: u16,
    /// Packet Processing Delay, in tenths of a second.
    pub packet_processing_delay: u16,
    /// Physical Channel ID, for logs.
    pub physical_channel_id: u32,
}

/// Incoming-Call-Request (RFC 2637 section 2.9), 220 octets, PAC to PNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingCallRequest {
    /// Call ID the PAC assigned.
    pub call_id: u16,
    /// Call Serial Number.
    pub call_serial_number: u16,
    /// Call Bearer Type (1 analog, 2 digital).
    pub call_bearer_type: u32,
    /// Physical Channel ID.
    pub physical_channel_id: u32,
    /// Dialed Number Length.
    pub dialed_number_length: u16,
    /// Dialing Number Length.
    pub dialing_number_length: u16,
    /// Dialed Number.
    pub dialed_number: Text64,
    /// Dialing Number.
    pub dialing_number: Text64,
    /// Subaddress.
    pub subaddress: Text64,
}

/// Incoming-Call-Reply (RFC 2637 section 2.10), 24 octets, PNS to PAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncomingCallReply {
    /// Call ID the PNS assigned.
    pub call_id: u16,
    /// Peer's Call ID: the Call ID of the Incoming-Call-Request.
    pub peer_call_id: u16,
    /// Result Code.
    pub result_code: IncomingCallResult,
    /// Error Code.
    pub error_code: GeneralError,
    /// Packet Recv. Window Size.
    pub packet_recv_window_size: u16,
    /// Packet Transmit Delay, in tenths of a second.
    pub packet_transmit_delay: u16,
}

/// Incoming-Call-Connected (RFC 2637 section 2.11), 28 octets, PAC to PNS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncomingCallConnected {
    /// Peer's Call ID: the Call ID of the Incoming-Call-Reply.
    pub peer_call_id: u16,
    /// Connect Speed.
    pub connect_speed: u32,
    /// Packet Recv. Window Size.
    pub packet_recv_window_size: u16,
    /// Packet Transmit Delay.
    pub packet_transmit_delay: u16,
    /// Framing Type.
    pub framing_type: u32,
}

/// Call-Clear-Request (RFC 2637 section 2.12), 16 octets, PNS to PAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallClearRequest {
    /// The Call ID the PNS assigned to the call.
    pub call_id: u16,
}

/// Call-Disconnect-Notify (RFC 2637 section 2.13), 148 octets, PAC to PNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallDisconnectNotify {
    /// "The value of the Call ID assigned by the PAC to this call" (some
    /// PACs, accel-ppp among them, send the PNS's Call ID instead).
    pub call_id: u16,
    /// Result Code.
    pub result_code: DisconnectResult,
    /// Error Code.
    pub error_code: GeneralError,
    /// Cause Code.
    pub cause_code: u16,
    /// Call Statistics: vendor-specific text for logs.
    pub call_statistics: Text128,
}

/// The six cumulative counters of WAN-Error-Notify.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WanErrors {
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

/// WAN-Error-Notify (RFC 2637 section 2.14), 40 octets, PAC to PNS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WanErrorNotify {
    /// Peer's Call ID: "The Call ID assigned by the PNS to this call".
    pub peer_call_id: u16,
    /// The counters.
    pub errors: WanErrors,
}

/// Set-Link-Info (RFC 2637 section 2.15), 24 octets, PNS to PAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetLinkInfo {
    /// Peer's Call ID: "The value of the Call ID assigned by the PAC".
    pub peer_call_id: u16,
    /// Send ACCM (default 0xFFFFFFFF).
    pub send_accm: u32,
    /// Receive ACCM (default 0xFFFFFFFF).
    pub receive_accm: u32,
}

/// One control message (RFC 2637 section 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Type 1.
    StartControlConnectionRequest(StartControlConnectionRequest),
    /// Type 2.
    StartControlConnectionReply(StartControlConnectionReply),
    /// Type 3.
    StopControlConnectionRequest(StopControlConnectionRequest),
    /// Type 4.
    StopControlConnectionReply(StopControlConnectionReply),
    /// Type 5.
    EchoRequest(EchoRequest),
    /// Type 6.
    EchoReply(EchoReply),
    /// Type 7.
    OutgoingCallRequest(OutgoingCallRequest),
    /// Type 8.
    OutgoingCallReply(OutgoingCallReply),
    /// Type 9.
    IncomingCallRequest(IncomingCallRequest),
    /// Type 10.
    IncomingCallReply(IncomingCallReply),
    /// Type 11.
    IncomingCallConnected(IncomingCallConnected),
    /// Type 12.
    CallClearRequest(CallClearRequest),
    /// Type 13.
    CallDisconnectNotify(CallDisconnectNotify),
    /// Type 14.
    WanErrorNotify(WanErrorNotify),
    /// Type 15.
    SetLinkInfo(SetLinkInfo),
}

/// Reads the fields after the header, in order. The length was checked
/// against the type before a `Fields` is made, so no read runs past the end.
struct Fields<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Fields<'_> {
    fn u8(&mut self) -> u8 {
        let v = self.bytes[self.at];
        self.at += 1;
        v
    }
    fn u16(&mut self) -> u16 {
        let v = be16(self.bytes, self.at);
        self.at += 2;
        v
    }
    fn u32(&mut self) -> u32 {
        let v = be32(self.bytes, self.at);
        self.at += 4;
        v
    }
    fn skip(&mut self, n: usize) {
        self.at += n;
    }
    fn text<const N: usize>(&mut self) -> Text<N> {
        let t = Text::from_bytes(&self.bytes[self.at..self.at + N]);
        self.at += N;
        t
    }
}

impl Message {
    /// Parses exactly one message: `bytes` is the whole message, Length
    /// octets, no more and no less. The header is checked first, in the
    /// order of the module docs.
    pub fn parse(bytes: &[u8]) -> Result<Message, ControlError> {
        let header = match check_header(bytes)? {
            Some(header) => header,
            None => {
                let length = if bytes.len() >= 2 { be16(bytes, 0) } else { 0 };
                return Err(ControlError::Truncated {
                    length,
                    got: bytes.len(),
                });
            }
        };
        let length = usize::from(header.length);
        if bytes.len() < length {
            return Err(ControlError::Truncated {
                length: header.length,
                got: bytes.len(),
            });
        }
        if bytes.len() > length {
            return Err(ControlError::TrailingOctets {
                length: header.length,
                extra: bytes.len() - length,
            });
        }
        Ok(Message::parse_body(header.message_type, bytes))
    }

    /// The fields of a message whose header [`check_header`] accepted and
    /// whose `bytes` are exactly its Length.
    fn parse_body(message_type: ControlMessageType, bytes: &[u8]) -> Message {
        use ControlMessageType as T;
        let mut f = Fields {
            bytes,
            at: HEADER_LEN,
        };
        match message_type {
            T::StartControlConnectionRequest => {
                let protocol_version = f.u16();
                f.skip(2); // Reserved1
                Message::StartControlConnectionRequest(StartControlConnectionRequest {
                    protocol_version,
                    framing_capabilities: f.u32(),
                    bearer_capabilities: f.u32(),
                    maximum_channels: f.u16(),
                    firmware_revision: f.u16(),
                    host_name: f.text(),
                    vendor_string: f.text(),
                })
            }
            T::StartControlConnectionReply => {
                Message::StartControlConnectionReply(StartControlConnectionReply {
                    protocol_version: f.u16(),
                    result_code: f.u8().into(),
                    error_code: f.u8().into(),
                    framing_capabilities: f.u32(),
                    bearer_capabilities: f.u32(),
                    maximum_channels: f.u16(),
                    firmware_revision: f.u16(),
                    host_name: f.text(),
                    vendor_string: f.text(),
                })
            }
            T::StopControlConnectionRequest => {
                Message::StopControlConnectionRequest(StopControlConnectionRequest {
                    reason: f.u8().into(),
                })
            }
            T::StopControlConnectionReply => {
                Message::StopControlConnectionReply(StopControlConnectionReply {
                    result_code: f.u8().into(),
                    error_code: f.u8().into(),
                })
            }
            T::EchoRequest => Message::EchoRequest(EchoRequest {
                identifier: f.u32(),
            }),
            T::EchoReply => Message::EchoReply(EchoReply {
                identifier: f.u32(),
                result_code: f.u8().into(),
                error_code: f.u8().into(),
            }),
            T::OutgoingCallRequest => {
                let call_id = f.u16();
                let call_serial_number = f.u16();
                let minimum_bps = f.u32();
                let maximum_bps = f.u32();
                let bearer_type = f.u32();
                let framing_type = f.u32();
                let packet_recv_window_size = f.u16();
                let packet_processing_delay = f.u16();
                let phone_number_length = f.u16();
                f.skip(2); // Reserved1
                Message::OutgoingCallRequest(OutgoingCallRequest {
                    call_id,
                    call_serial_number,
                    minimum_bps,
                    maximum_bps,
                    bearer_type,
                    framing_type,
                    packet_recv_window_size,
                    packet_processing_delay,
                    phone_number_length,
                    phone_number: f.text(),
                    subaddress: f.text(),
                })
            }
            T::OutgoingCallReply => Message::OutgoingCallReply(OutgoingCallReply {
                call_id: f.u16(),
                peer_call_id: f.u16(),
                result_code: f.u8().into(),
                error_code: f.u8().into(),
                cause_code: f.u16(),
                connect_speed: f.u32(),
                packet_recv_window_size: f.u16(),
                packet_processing_delay: f.u16(),
                physical_channel_id: f.u32(),
            }),
            T::IncomingCallRequest => Message::IncomingCallRequest(IncomingCallRequest {
                call_id: f.u16(),
                call_serial_number: f.u16(),
                call_bearer_type: f.u32(),
                physical_channel_id: f.u32(),
                dialed_number_length: f.u16(),
                dialing_number_length: f.u16(),
                dialed_number: f.text(),
                dialing_number: f.text(),
                subaddress: f.text(),
            }),
            T::IncomingCallReply => Message::IncomingCallReply(IncomingCallReply {
                call_id: f.u16(),
                peer_call_id: f.u16(),
                result_code: f.u8().into(),
                error_code: f.u8().into(),
                packet_recv_window_size: f.u16(),
                packet_transmit_delay: f.u16(),
            }),
            T::IncomingCallConnected => {
                let peer_call_id = f.u16();
                f.skip(2); // Reserved1
                Message::IncomingCallConnected(IncomingCallConnected {
                    peer_call_id,
                    connect_speed: f.u32(),
                    packet_recv_window_size: f.u16(),
                    packet_transmit_delay: f.u16(),
                    framing_type: f.u32(),
                })
            }
            T::CallClearRequest => Message::CallClearRequest(CallClearRequest { call_id: f.u16() }),
            T::CallDisconnectNotify => {
                let call_id = f.u16();
                let result_code = f.u8().into();
                let error_code = f.u8().into();
                let cause_code = f.u16();
                f.skip(2); // Reserved1
                Message::CallDisconnectNotify(CallDisconnectNotify {
                    call_id,
                    result_code,
                    error_code,
                    cause_code,
                    call_statistics: f.text(),
                })
            }
            T::WanErrorNotify => {
                let peer_call_id = f.u16();
                f.skip(2); // Reserved1
                Message::WanErrorNotify(WanErrorNotify {
                    peer_call_id,
                    errors: WanErrors {
                        crc_errors: f.u32(),
                        framing_errors: f.u32(),
                        hardware_overruns: f.u32(),
                        buffer_overruns: f.u32(),
                        timeout_errors: f.u32(),
                        alignment_errors: f.u32(),
                    },
                })
            }
            T::SetLinkInfo => {
                let peer_call_id = f.u16();
                f.skip(2); // Reserved1
                Message::SetLinkInfo(SetLinkInfo {
                    peer_call_id,
                    send_accm: f.u32(),
                    receive_accm: f.u32(),
                })
            }
            // check_header refused unknown types.
            T::Unknown(_) => unreachable!("check_header accepts only types 1 to 15"),
        }
    }

    /// The Control Message Type.
    pub fn message_type(&self) -> ControlMessageType {
        use ControlMessageType as T;
        match self {
            Message::StartControlConnectionRequest(_) => T::StartControlConnectionRequest,
            Message::StartControlConnectionReply(_) => T::StartControlConnectionReply,
            Message::StopControlConnectionRequest(_) => T::StopControlConnectionRequest,
            Message::StopControlConnectionReply(_) => T::StopControlConnectionReply,
            Message::EchoRequest(_) => T::EchoRequest,
            Message::EchoReply(_) => T::EchoReply,
            Message::OutgoingCallRequest(_) => T::OutgoingCallRequest,
            Message::OutgoingCallReply(_) => T::OutgoingCallReply,
            Message::IncomingCallRequest(_) => T::IncomingCallRequest,
            Message::IncomingCallReply(_) => T::IncomingCallReply,
            Message::IncomingCallConnected(_) => T::IncomingCallConnected,
            Message::CallClearRequest(_) => T::CallClearRequest,
            Message::CallDisconnectNotify(_) => T::CallDisconnectNotify,
            Message::WanErrorNotify(_) => T::WanErrorNotify,
            Message::SetLinkInfo(_) => T::SetLinkInfo,
        }
    }

    /// The RFC's name of the message ("Outgoing-Call-Request").
    pub fn name(&self) -> &'static str {
        self.message_type().name().unwrap_or("unknown")
    }

    /// Length of the message on the wire, header included.
    pub fn wire_len(&self) -> usize {
        usize::from(self.message_type().length().unwrap_or(0))
    }

    /// Appends the message (header included, reserved fields zero) to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let length = self.message_type().length().unwrap_or(0);
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(&CONTROL_MESSAGE.to_be_bytes());
        out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        out.extend_from_slice(&u16::from(self.message_type()).to_be_bytes());
        out.extend_from_slice(&[0, 0]); // Reserved0
        let u16_ = |out: &mut Vec<u8>, v: u16| out.extend_from_slice(&v.to_be_bytes());
        let u32_ = |out: &mut Vec<u8>, v: u32| out.extend_from_slice(&v.to_be_bytes());
        match self {
            Message::StartControlConnectionRequest(m) => {
                u16_(out, m.protocol_version);
                u16_(out, 0);
                u32_(out, m.framing_capabilities);
                u32_(out, m.bearer_capabilities);
                u16_(out, m.maximum_channels);
                u16_(out, m.firmware_revision);
                out.extend_from_slice(m.host_name.as_bytes());
                out.extend_from_slice(m.vendor_string.as_bytes());
            }
            Message::StartControlConnectionReply(m) => {
                u16_(out, m.protocol_version);
                out.push(m.result_code.into());
                out.push(m.error_code.into());
                u32_(out, m.framing_capabilities);
                u32_(out, m.bearer_capabilities);
                u16_(out, m.maximum_channels);
                u16_(out, m.firmware_revision);
                out.extend_from_slice(m.host_name.as_bytes());
                out.extend_from_slice(m.vendor_string.as_bytes());
            }
            Message::StopControlConnectionRequest(m) => {
                out.extend_from_slice(&[m.reason.into(), 0, 0, 0]);
            }
            Message::StopControlConnectionReply(m) => {
                out.extend_from_slice(&[m.result_code.into(), m.error_code.into(), 0, 0]);
            }
            Message::EchoRequest(m) => u32_(out, m.identifier),
            Message::EchoReply(m) => {
                u32_(out, m.identifier);
                out.extend_from_slice(&[m.result_code.into(), m.error_code.into(), 0, 0]);
            }
            Message::OutgoingCallRequest(m) => {
                u16_(out, m.call_id);
                u16_(out, m.call_serial_number);
                u32_(out, m.minimum_bps);
                u32_(out, m.maximum_bps);
                u32_(out, m.bearer_type);
                u32_(out, m.framing_type);
                u16_(out, m.packet_recv_window_size);
                u16_(out, m.packet_processing_delay);
                u16_(out, m.phone_number_length);
                u16_(out, 0);
                out.extend_from_slice(m.phone_number.as_bytes());
                out.extend_from_slice(m.subaddress.as_bytes());
            }
            Message::OutgoingCallReply(m) => {
                u16_(out, m.call_id);
                u16_(out, m.peer_call_id);
                out.push(m.result_code.into());
                out.push(m.error_code.into());
                u16_(out, m.cause_code);
                u32_(out, m.connect_speed);
                u16_(out, m.packet_recv_window_size);
                u16_(out, m.packet_processing_delay);
                u32_(out, m.physical_channel_id);
            }
            Message::IncomingCallRequest(m) => {
                u16_(out, m.call_id);
                u16_(out, m.call_serial_number);
                u32_(out, m.call_bearer_type);
                u32_(out, m.physical_channel_id);
                u16_(out, m.dialed_number_length);
                u16_(out, m.dialing_number_length);
                out.extend_from_slice(m.dialed_number.as_bytes());
                out.extend_from_slice(m.dialing_number.as_bytes());
                out.extend_from_slice(m.subaddress.as_bytes());
            }
            Message::IncomingCallReply(m) => {
                u16_(out, m.call_id);
                u16_(out, m.peer_call_id);
                out.push(m.result_code.into());
                out.push(m.error_code.into());
                u16_(out, m.packet_recv_window_size);
                u16_(out, m.packet_transmit_delay);
                u16_(out, 0);
            }
            Message::IncomingCallConnected(m) => {
                u16_(out, m.peer_call_id);
                u16_(out, 0);
                u32_(out, m.connect_speed);
                u16_(out, m.packet_recv_window_size);
                u16_(out, m.packet_transmit_delay);
                u32_(out, m.framing_type);
            }
            Message::CallClearRequest(m) => {
                u16_(out, m.call_id);
                u16_(out, 0);
            }
            Message::CallDisconnectNotify(m) => {
                u16_(out, m.call_id);
                out.push(m.result_code.into());
                out.push(m.error_code.into());
                u16_(out, m.cause_code);
                u16_(out, 0);
                out.extend_from_slice(m.call_statistics.as_bytes());
            }
            Message::WanErrorNotify(m) => {
                u16_(out, m.peer_call_id);
                u16_(out, 0);
                let e = &m.errors;
                for v in [
                    e.crc_errors,
                    e.framing_errors,
                    e.hardware_overruns,
                    e.buffer_overruns,
                    e.timeout_errors,
                    e.alignment_errors,
                ] {
                    u32_(out, v);
                }
            }
            Message::SetLinkInfo(m) => {
                u16_(out, m.peer_call_id);
                u16_(out, 0);
                u32_(out, m.send_accm);
                u32_(out, m.receive_accm);
            }
        }
        debug_assert_eq!(out.len() - start, usize::from(length));
    }

    /// The message as a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.wire_len());
        self.emit(&mut out);
        out
    }
}

fn version(v: u16) -> String {
    format!("{}.{}", v >> 8, v & 0xff)
}

impl fmt::Display for Message {
    /// One line for logs, in pptpd's `debug` detail: the message name, call
    /// ids, result and error codes, windows, and the peer's texts escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        match self {
            Message::StartControlConnectionRequest(m) => write!(
                f,
                " version={} framing=0x{:x} bearer=0x{:x} max_channels={} firmware=0x{:04x} \
                 host=\"{}\" vendor=\"{}\"",
                version(m.protocol_version),
                m.framing_capabilities,
                m.bearer_capabilities,
                m.maximum_channels,
                m.firmware_revision,
                m.host_name,
                m.vendor_string
            ),
            Message::StartControlConnectionReply(m) => write!(
                f,
                " version={} result={} error={} framing=0x{:x} bearer=0x{:x} max_channels={} \
                 firmware=0x{:04x} host=\"{}\" vendor=\"{}\"",
                version(m.protocol_version),
                m.result_code,
                m.error_code,
                m.framing_capabilities,
                m.bearer_capabilities,
                m.maximum_channels,
                m.firmware_revision,
                m.host_name,
                m.vendor_string
            ),
            Message::StopControlConnectionRequest(m) => write!(f, " reason={}", m.reason),
            Message::StopControlConnectionReply(m) => {
                write!(f, " result={} error={}", m.result_code, m.error_code)
            }
            Message::EchoRequest(m) => write!(f, " id=0x{:08x}", m.identifier),
            Message::EchoReply(m) => write!(
                f,
                " id=0x{:08x} result={} error={}",
                m.identifier, m.result_code, m.error_code
            ),
            Message::OutgoingCallRequest(m) => write!(
                f,
                " call_id={} serial={} bps={}..{} bearer={} framing={} window={} delay={} \
                 phone=\"{}\"",
                m.call_id,
                m.call_serial_number,
                m.minimum_bps,
                m.maximum_bps,
                m.bearer_type,
                m.framing_type,
                m.packet_recv_window_size,
                m.packet_processing_delay,
                m.phone_number
            ),
            Message::OutgoingCallReply(m) => write!(
                f,
                " call_id={} peer_call_id={} result={} error={} cause={} speed={} window={} \
                 delay={} channel={}",
                m.call_id,
                m.peer_call_id,
                m.result_code,
                m.error_code,
                m.cause_code,
                m.connect_speed,
                m.packet_recv_window_size,
                m.packet_processing_delay,
                m.physical_channel_id
            ),
            Message::IncomingCallRequest(m) => write!(
                f,
                " call_id={} serial={} bearer={} channel={} dialed=\"{}\" dialing=\"{}\"",
                m.call_id,
                m.call_serial_number,
                m.call_bearer_type,
                m.physical_channel_id,
                m.dialed_number,
                m.dialing_number
            ),
            Message::IncomingCallReply(m) => write!(
                f,
                " call_id={} peer_call_id={} result={} error={} window={} delay={}",
                m.call_id,
                m.peer_call_id,
                m.result_code,
                m.error_code,
                m.packet_recv_window_size,
                m.packet_transmit_delay
            ),
            Message::IncomingCallConnected(m) => write!(
                f,
                " peer_call_id={} speed={} window={} delay={} framing={}",
                m.peer_call_id,
                m.connect_speed,
                m.packet_recv_window_size,
                m.packet_transmit_delay,
                m.framing_type
            ),
            Message::CallClearRequest(m) => write!(f, " call_id={}", m.call_id),
            Message::CallDisconnectNotify(m) => write!(
                f,
                " call_id={} result={} error={} cause={} statistics=\"{}\"",
                m.call_id, m.result_code, m.error_code, m.cause_code, m.call_statistics
            ),
            Message::WanErrorNotify(m) => write!(
                f,
                " peer_call_id={} crc={} framing={} hw_overruns={} buf_overruns={} timeouts={} \
                 alignment={}",
                m.peer_call_id,
                m.errors.crc_errors,
                m.errors.framing_errors,
                m.errors.hardware_overruns,
                m.errors.buffer_overruns,
                m.errors.timeout_errors,
                m.errors.alignment_errors
            ),
            Message::SetLinkInfo(m) => write!(
                f,
                " peer_call_id={} send_accm=0x{:08x} recv_accm=0x{:08x}",
                m.peer_call_id, m.send_accm, m.receive_accm
            ),
        }
    }
}

/// Reassembles control messages from the TCP byte stream.
///
/// Calling order: after every [`ControlReader::push`] (one `read` from the
/// socket, any size, any split), call [`ControlReader::pop`] until it returns
/// `None`; at end of stream, [`ControlReader::finish`].
///
/// Bounded memory: the header of a message is checked as its octets arrive
/// ([`check_header`]), so a Length that is impossible is refused as soon as
/// its two octets are in, and the reader never waits for more than
/// [`MAX_MESSAGE_LEN`] octets. Popping until `None` leaves less than one
/// message buffered; the next push adds one read.
///
/// After an error the reader is finished: [`ControlReader::pop`] returns the
/// error once, then `None`, and [`ControlReader::push`] drops its input
/// (section 1.4: "Loss of synchronization must result in immediate closing
/// of the control connection").
#[derive(Debug, Default, Clone)]
pub struct ControlReader {
    buf: Vec<u8>,
    start: usize,
    failed: bool,
}

impl ControlReader {
    /// An empty reader.
    pub fn new() -> ControlReader {
        ControlReader::default()
    }

    /// Adds the octets of one read.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed {
            return;
        }
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete message, or the error that ends the stream; `None`
    /// when more octets are needed (or after an error).
    pub fn pop(&mut self) -> Option<Result<Message, ControlError>> {
        if self.failed {
            return None;
        }
        let available = &self.buf[self.start..];
        match check_header(available) {
            Err(e) => {
                self.fail();
                Some(Err(e))
            }
            Ok(None) => None,
            Ok(Some(header)) => {
                let length = usize::from(header.length);
                if available.len() < length {
                    return None;
                }
                let message = Message::parse_body(header.message_type, &available[..length]);
                self.start += length;
                if self.start == self.buf.len() {
                    self.buf.clear();
                    self.start = 0;
                }
                Some(Ok(message))
            }
        }
    }

    fn fail(&mut self) {
        self.failed = true;
        self.buf = Vec::new();
        self.start = 0;
    }

    /// Octets held that are not yet a whole message.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The stream ended: an error if it ended inside a message.
    pub fn finish(&self) -> Result<(), ControlError> {
        let available = &self.buf[self.start..];
        match available.len() {
            0 => Ok(()),
            1 => Err(ControlError::ClosedInsideLength),
            arrived => Err(ControlError::ClosedInsideMessage {
                length: be16(available, 0),
                arrived,
            }),
        }
    }

    /// An error ended the stream.
    pub fn has_failed(&self) -> bool {
        self.failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_match_the_figures() {
        // RFC 2637 section 2: every figure counted in 32-bit rows.
        let rows = [
            (1, 3 + 4 + 16 + 16),
            (2, 3 + 4 + 16 + 16),
            (3, 4),
            (4, 4),
            (5, 4),
            (6, 5),
            (7, 3 + 7 + 16 + 16),
            (8, 8),
            (9, 3 + 4 + 16 + 16 + 16),
            (10, 6),
            (11, 7),
            (12, 4),
            (13, 5 + 32),
            (14, 10),
            (15, 6),
        ];
        for (t, n) in rows {
            assert_eq!(
                ControlMessageType::from(t).length(),
                Some(n * 4),
                "type {t}"
            );
        }
        assert_eq!(ControlMessageType::from(16).length(), None);
        let max = (1..=15)
            .map(|t| ControlMessageType::from(t).length().unwrap())
            .max();
        assert_eq!(max, Some(MAX_MESSAGE_LEN as u16));
    }

    #[test]
    fn header_checks_in_order() {
        assert_eq!(check_header(&[]), Ok(None));
        assert_eq!(check_header(&[0]), Ok(None));
        assert_eq!(
            check_header(&[0, 10]).unwrap_err().to_string(),
            "Length 10 is shorter than the 12-octet header"
        );
        assert_eq!(
            check_header(&[0xff, 0xff, 0xde, 0xad]),
            Err(ControlError::LengthTooLong { length: 0xffff })
        );
        assert_eq!(
            check_header(&[0, 16, 0, 2]).unwrap_err().to_string(),
            "PPTP Message Type 2 (Management Message) is not defined: only 1 (Control Message)"
        );
        assert_eq!(check_header(&[0, 16, 0, 1, 0x1a, 0x2b]), Ok(None));
        assert_eq!(
            check_header(&[0, 16, 0, 1, 0x1a, 0x2c]),
            Err(ControlError::MagicCookie { value: 0x1a2c_0000 })
        );
        assert_eq!(
            check_header(&[0, 16, 0, 1, 0xde, 0xad, 0xbe, 0xef])
                .unwrap_err()
                .to_string(),
            "Magic Cookie 0xdeadbeef (must be 0x1a2b3c4d)"
        );
        assert_eq!(
            check_header(&[0, 16, 0, 1, 0x1a, 0x2b, 0x3c, 0x4d, 0, 99])
                .unwrap_err()
                .to_string(),
            "Control Message Type 99 is unknown"
        );
        assert_eq!(
            check_header(&[0, 20, 0, 1, 0x1a, 0x2b, 0x3c, 0x4d, 0, 1])
                .unwrap_err()
                .to_string(),
            "Length 20 (0x0014): Start-Control-Connection-Request is 156 octets"
        );
        assert_eq!(
            check_header(&[0, 16, 0, 1, 0x1a, 0x2b, 0x3c, 0x4d, 0, 5]),
            Ok(Some(Header {
                length: 16,
                message_type: ControlMessageType::EchoRequest
            }))
        );
    }
}
