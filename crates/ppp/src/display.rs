//! pppd-style text of decoded packets, for logs and tests:
//! `LCP ConfReq id=0x1 <asyncmap 0x0> <magic 0x804044b9> <pcomp> <accomp>`.

use std::fmt;

use crate::wire::{write_hex, write_options, write_quoted, Code, ControlRepr, Protocol, RawOption};

/// A PPP frame's protocol and information field, displayed as pppd logs it
/// (without the surrounding `sent [` / `]`).
#[derive(Debug, Clone, Copy)]
pub struct PacketDisplay<'a> {
    /// The protocol field.
    pub protocol: u16,
    /// The information field.
    pub info: &'a [u8],
}

/// Shortcut for [`PacketDisplay`].
pub fn describe(protocol: u16, info: &[u8]) -> PacketDisplay<'_> {
    PacketDisplay { protocol, info }
}

impl fmt::Display for PacketDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let protocol = Protocol::from(self.protocol);
        let describe_option: fn(&mut fmt::Formatter<'_>, &RawOption<'_>) -> fmt::Result =
            match protocol {
                Protocol::Lcp => crate::lcp::describe_option,
                Protocol::Ipcp => crate::ipcp::describe_option,
                Protocol::Ipv6cp => crate::ipv6cp::describe_option,
                Protocol::Ccp => crate::ccp::describe_option,
                Protocol::Pap | Protocol::Chap => {
                    return crate::auth::describe(self.protocol, self.info, f)
                }
                _ => {
                    return match protocol {
                        Protocol::Unknown(n) => {
                            write!(f, "protocol {n:#06x} {} bytes", self.info.len())
                        }
                        p => write!(f, "{} {} bytes", p.name(), self.info.len()),
                    }
                }
            };
        let name = protocol.name();
        let packet = match ControlRepr::parse_bytes(self.info) {
            Ok(p) => p,
            Err(e) => return write!(f, "{name} <malformed: {e}>"),
        };
        let ccp_code = match (protocol, u8::from(packet.code)) {
            (Protocol::Ccp, crate::ccp::code::RESET_REQUEST) => Some("ResetReq"),
            (Protocol::Ccp, crate::ccp::code::RESET_ACK) => Some("ResetAck"),
            _ => None,
        };
        match ccp_code.or(packet.code.pppd_name()) {
            Some(code) => write!(f, "{name} {code} id={:#x}", packet.identifier)?,
            None => write!(
                f,
                "{name} code={:#x} id={:#x}",
                u8::from(packet.code),
                packet.identifier
            )?,
        }
        let data = packet.data;
        match packet.code {
            Code::ConfigureRequest
            | Code::ConfigureAck
            | Code::ConfigureNak
            | Code::ConfigureReject => write_options(f, name, data, describe_option),
            Code::TerminateRequest | Code::TerminateAck if !data.is_empty() => {
                f.write_str(" ")?;
                write_quoted(f, data)
            }
            Code::EchoRequest
            | Code::EchoReply
            | Code::DiscardRequest
            | Code::Identification
            | Code::TimeRemaining
                if protocol == Protocol::Lcp && data.len() >= 4 =>
            {
                let magic = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                write!(f, " magic={magic:#x}")?;
                let rest = &data[4..];
                match packet.code {
                    Code::Identification if !rest.is_empty() => {
                        f.write_str(" ")?;
                        write_quoted(f, rest)
                    }
                    Code::TimeRemaining if rest.len() >= 4 => {
                        let secs = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
                        write!(f, " seconds={secs}")?;
                        if rest.len() > 4 {
                            f.write_str(" ")?;
                            write_quoted(f, &rest[4..])?;
                        }
                        Ok(())
                    }
                    _ if !rest.is_empty() => {
                        f.write_str(" ")?;
                        write_hex(f, rest)
                    }
                    _ => Ok(()),
                }
            }
            Code::ProtocolReject if protocol == Protocol::Lcp && data.len() >= 2 => {
                let rejected = u16::from_be_bytes([data[0], data[1]]);
                write!(f, " proto={rejected:#06x}")?;
                if data.len() > 2 {
                    f.write_str(" ")?;
                    write_hex(f, &data[2..data.len().min(18)])?;
                }
                Ok(())
            }
            _ if !data.is_empty() => {
                f.write_str(" ")?;
                write_hex(f, &data[..data.len().min(32)])
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pppd_lines() {
        let req = [
            1, 1, 0, 20, 2, 6, 0, 0, 0, 0, 5, 6, 0x80, 0x40, 0x44, 0xb9, 7, 2, 8, 2,
        ];
        assert_eq!(
            describe(0xc021, &req).to_string(),
            "LCP ConfReq id=0x1 <asyncmap 0x0> <magic 0x804044b9> <pcomp> <accomp>"
        );
        let term = [
            5, 2, 0, 16, b'U', b's', b'e', b'r', b' ', b'r', b'e', b'q', b'u', b'e', b's', b't',
        ];
        assert_eq!(
            describe(0xc021, &term).to_string(),
            "LCP TermReq id=0x2 \"User request\""
        );
        let echo = [9, 0, 0, 8, 0xe5, 0xf3, 0xce, 0xdb];
        assert_eq!(
            describe(0xc021, &echo).to_string(),
            "LCP EchoReq id=0x0 magic=0xe5f3cedb"
        );
        let ident = [12, 2, 0, 12, 0, 0, 0, 1, b'H', b'O', b'M', b'E'];
        assert_eq!(
            describe(0xc021, &ident).to_string(),
            "LCP Ident id=0x2 magic=0x1 \"HOME\""
        );
        assert_eq!(
            describe(0xc021, &[1, 1, 0, 9]).to_string(),
            "LCP <malformed: packet length 9 > received 4>"
        );
    }
}
