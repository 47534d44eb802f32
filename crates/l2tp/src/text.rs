//! Control messages as log text, in the detail of pppd's and xl2tpd's debug
//! logs: the message name, the header's ids and sequence numbers, then each
//! AVP as `<Name value>`:
//!
//! ```text
//! tunnel 0 session 0 Ns 0 Nr 0 SCCRQ <Protocol Version 1.0> <Host Name "lac"> <Framing Capabilities sync async> <Assigned Tunnel ID 4711>
//! tunnel 4711 session 0 Ns 1 Nr 1 ZLB
//! ```
//!
//! Octets from the peer are escaped ([`Escaped`]), so a host name cannot
//! put a line break or a terminal escape into a log line. A Proxy Authen
//! Response (a PAP password in clear, section 4.4.5) is shown by its length
//! only.

use core::fmt;

use crate::avp::{Avp, Escaped, BEARER_ANALOG, BEARER_DIGITAL, FRAMING_ASYNC, FRAMING_SYNC};
use crate::header::{Header, Kind};
use crate::message::{CdnResult, ErrorCode, Message, MessageType, StopCcnResult};

fn hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    f.write_str("0x")?;
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

fn caps(f: &mut fmt::Formatter<'_>, v: u32, one: (u32, &str), two: (u32, &str)) -> fmt::Result {
    let mut first = true;
    for (bit, name) in [one, two] {
        if v & bit != 0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(name)?;
            first = false;
        }
    }
    let rest = v & !(one.0 | two.0);
    if rest != 0 || first {
        if !first {
            f.write_str(" ")?;
        }
        write!(f, "{v:#x}")?;
    }
    Ok(())
}

/// An AVP in a message of type `message` (the Result Code's meaning depends
/// on it), as `<Name value>`.
pub struct AvpText<'a> {
    /// The AVP.
    pub avp: &'a Avp,
    /// The message it is in.
    pub message: MessageType,
}

impl fmt::Display for AvpText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let avp = self.avp;
        let name = avp.attribute_type().name().unwrap_or("?");
        write!(f, "<{name}")?;
        match avp {
            Avp::MessageType(n) => write!(f, " {}", MessageType::from(*n))?,
            Avp::ResultCode(r) => {
                match self.message {
                    MessageType::StopCcn => write!(f, " {}", StopCcnResult::from(r.result))?,
                    MessageType::Cdn => write!(f, " {}", CdnResult::from(r.result))?,
                    _ => write!(f, " {}", r.result)?,
                }
                if let Some(e) = r.error {
                    write!(f, ", error {}", ErrorCode::from(e))?;
                }
                if !r.message.is_empty() {
                    write!(f, ", \"{}\"", Escaped(&r.message))?;
                }
            }
            Avp::ProtocolVersion { version, revision } => write!(f, " {version}.{revision}")?,
            Avp::FramingCapabilities(v) | Avp::FramingType(v) => {
                f.write_str(" ")?;
                caps(f, *v, (FRAMING_SYNC, "sync"), (FRAMING_ASYNC, "async"))?
            }
            Avp::BearerCapabilities(v) | Avp::BearerType(v) => {
                f.write_str(" ")?;
                caps(
                    f,
                    *v,
                    (BEARER_DIGITAL, "digital"),
                    (BEARER_ANALOG, "analog"),
                )?
            }
            Avp::TieBreaker(t) => {
                f.write_str(" ")?;
                hex(f, t)?
            }
            Avp::ChallengeResponse(r) => {
                f.write_str(" ")?;
                hex(f, r)?
            }
            Avp::Challenge(b) | Avp::ProxyAuthenChallenge(b) | Avp::RandomVector(b) => {
                f.write_str(" ")?;
                hex(f, b)?
            }
            Avp::InitialReceivedLcpConfreq(b)
            | Avp::LastSentLcpConfreq(b)
            | Avp::LastReceivedLcpConfreq(b) => {
                f.write_str(" ")?;
                hex(f, b)?
            }
            Avp::FirmwareRevision(n) => write!(f, " {n:#06x}")?,
            Avp::HostName(b)
            | Avp::VendorName(b)
            | Avp::CalledNumber(b)
            | Avp::CallingNumber(b)
            | Avp::SubAddress(b)
            | Avp::ProxyAuthenName(b)
            | Avp::PrivateGroupId(b) => write!(f, " \"{}\"", Escaped(b))?,
            Avp::ProxyAuthenResponse(b) => write!(f, " {} octets", b.len())?,
            Avp::AssignedTunnelId(n)
            | Avp::ReceiveWindowSize(n)
            | Avp::AssignedSessionId(n)
            | Avp::ProxyAuthenType(n) => write!(f, " {n}")?,
            Avp::Q931CauseCode(q) => {
                write!(f, " cause {} msg {}", q.cause, q.message)?;
                if !q.advisory.is_empty() {
                    write!(f, " \"{}\"", Escaped(&q.advisory))?;
                }
            }
            Avp::CallSerialNumber(n)
            | Avp::MinimumBps(n)
            | Avp::MaximumBps(n)
            | Avp::TxConnectSpeed(n)
            | Avp::RxConnectSpeed(n)
            | Avp::PhysicalChannelId(n) => write!(f, " {n}")?,
            Avp::ProxyAuthenId(id) => write!(f, " {id}")?,
            Avp::CallErrors(c) => write!(
                f,
                " crc {} framing {} hw-overruns {} buf-overruns {} timeouts {} alignment {}",
                c.crc_errors,
                c.framing_errors,
                c.hardware_overruns,
                c.buffer_overruns,
                c.timeout_errors,
                c.alignment_errors
            )?,
            Avp::Accm { send, receive } => write!(f, " send {send:#010x} recv {receive:#010x}")?,
            Avp::SequencingRequired => {}
        }
        f.write_str(">")
    }
}

impl fmt::Display for Message {
    /// `SCCRQ <Protocol Version 1.0> <Host Name "lac"> ...`, unknown AVPs
    /// last.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.kind();
        match t.name() {
            Some(n) => f.write_str(n)?,
            None => write!(f, "message type {}", self.message_type)?,
        }
        for avp in &self.avps {
            write!(f, " {}", AvpText { avp, message: t })?;
        }
        for u in &self.unknown {
            write!(f, " <{u}>")?;
        }
        if self.unknown_count > self.unknown.len() {
            write!(
                f,
                " <{} more unknown AVPs>",
                self.unknown_count - self.unknown.len()
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for Header {
    /// `tunnel 4711 session 0 Ns 1 Nr 1`, with `data` first for a data
    /// message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == Kind::Data {
            f.write_str("data ")?;
        }
        write!(f, "tunnel {} session {}", self.tunnel_id, self.session_id)?;
        if let Some(s) = self.sequence {
            write!(f, " Ns {} Nr {}", s.ns, s.nr)?;
        }
        if let Some(o) = self.offset {
            write!(f, " offset {o}")?;
        }
        if self.priority {
            f.write_str(" priority")?;
        }
        Ok(())
    }
}

/// A whole datagram as one log line: the header, then `ZLB`, the message,
/// or why its body does not parse. `secret` reveals hidden AVPs.
pub struct DatagramText<'a> {
    /// The datagram.
    pub datagram: &'a [u8],
    /// The shared secret, if any.
    pub secret: Option<&'a [u8]>,
}

impl fmt::Display for DatagramText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Header::parse(self.datagram) {
            Err(e) => write!(f, "malformed: {e}"),
            Ok((h, range)) => {
                write!(f, "{h}")?;
                let body = &self.datagram[range];
                match h.kind {
                    Kind::Data => write!(f, " {} octets", body.len()),
                    Kind::Control if body.is_empty() => f.write_str(" ZLB"),
                    Kind::Control => match Message::parse(body, self.secret) {
                        Ok(m) => write!(f, " {m}"),
                        Err(e) => write!(f, " malformed: {e}"),
                    },
                }
            }
        }
    }
}
