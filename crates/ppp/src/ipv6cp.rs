//! IPV6CP (RFC 5072): Interface-Identifier negotiation.
//!
//! Our identifier is configured or random; a peer's zero identifier, or one
//! equal to ours, is Nak'd with a new random one (RFC 5072 s4.1).
//! IPv6-Compression-Protocol (2) and unknown options are rejected.

use std::fmt;

use crate::fsm::{Negotiator, OptionVerdict};
use crate::rng::Rng;
use crate::wire::{
    emit_option, exact, write_unknown_option, OptionIter, Protocol, RawOption, WireError,
};

/// IPV6CP settings (RFC 5072).
#[derive(Debug, Clone, Default)]
pub struct Ipv6cpConfig {
    /// Our interface identifier; `None` picks a random one.
    pub local_id: Option<[u8; 8]>,
}

/// IPV6CP option types.
pub mod kind {
    /// Interface-Identifier (RFC 5072 s4.1).
    pub const INTERFACE_ID: u8 = 1;
    /// IPv6-Compression-Protocol (RFC 5072 s4.2).
    pub const COMPRESSION: u8 = 2;
}

/// One decoded IPV6CP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv6cpOption<'a> {
    /// Interface-Identifier (1).
    InterfaceId([u8; 8]),
    /// IPv6-Compression-Protocol (2).
    Compression {
        /// Compression protocol.
        protocol: u16,
        /// Its data.
        data: &'a [u8],
    },
    /// Anything else.
    Unknown(RawOption<'a>),
}

impl<'a> Ipv6cpOption<'a> {
    /// Decodes one option, checking its length for its type.
    pub fn parse(option: &RawOption<'a>) -> Result<Ipv6cpOption<'a>, WireError> {
        Ok(match option.kind {
            kind::INTERFACE_ID => Ipv6cpOption::InterfaceId(exact("IPV6CP", option, "addr", "10")?),
            kind::COMPRESSION => {
                if option.data.len() < 2 {
                    return Err(WireError::OptionBadLength {
                        protocol: "IPV6CP",
                        kind: option.kind,
                        name: "compress",
                        length: option.data.len() as u8 + 2,
                        expected: ">= 4",
                    });
                }
                Ipv6cpOption::Compression {
                    protocol: u16::from_be_bytes([option.data[0], option.data[1]]),
                    data: &option.data[2..],
                }
            }
            _ => Ipv6cpOption::Unknown(*option),
        })
    }
}

/// Parses the option list of an IPV6CP Configure-* packet.
pub fn parse_options(data: &[u8]) -> Result<Vec<Ipv6cpOption<'_>>, WireError> {
    OptionIter::new("IPV6CP", data)
        .map(|option| Ipv6cpOption::parse(&option?))
        .collect()
}

/// The link-local address of an interface identifier, as pppd prints it
/// ("fe80::6441:6fd5:c640:6ccf", every group four digits: "fe80::d911:45f9:0487:4f84").
pub fn link_local_text(id: &[u8; 8]) -> String {
    let g = |i: usize| u16::from_be_bytes([id[i], id[i + 1]]);
    format!("fe80::{:04x}:{:04x}:{:04x}:{:04x}", g(0), g(2), g(4), g(6))
}

/// pppd's text for one IPV6CP option.
pub fn describe_option(f: &mut fmt::Formatter<'_>, option: &RawOption<'_>) -> fmt::Result {
    match Ipv6cpOption::parse(option) {
        Ok(Ipv6cpOption::InterfaceId(id)) => write!(f, "addr {}", link_local_text(&id)),
        Ok(Ipv6cpOption::Compression { protocol, .. }) => write!(f, "compress {protocol:#06x}"),
        Ok(Ipv6cpOption::Unknown(raw)) => write_unknown_option(f, &raw),
        Err(e) => write!(f, "malformed: {e}"),
    }
}

/// The IPV6CP half of the automaton.
#[derive(Debug)]
pub struct Ipv6cpNegotiator {
    config: Ipv6cpConfig,
    rng: Rng,
    want_id: Option<[u8; 8]>,
    /// Our identifier (random unless configured).
    pub local_id: [u8; 8],
    /// The peer's identifier as we acked it.
    pub peer_id: [u8; 8],
}

impl Ipv6cpNegotiator {
    /// From our configuration and a seed for random identifiers.
    pub fn new(config: Ipv6cpConfig, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let local_id = config.local_id.unwrap_or_else(|| rng.nonzero_id());
        Ipv6cpNegotiator {
            config,
            rng,
            want_id: Some(local_id),
            local_id,
            peer_id: [0; 8],
        }
    }

    fn fresh_id_not(&mut self, avoid: [u8; 8]) -> [u8; 8] {
        loop {
            let id = self.rng.nonzero_id();
            if id != avoid {
                return id;
            }
        }
    }
}

impl Negotiator for Ipv6cpNegotiator {
    const PROTOCOL: Protocol = Protocol::Ipv6cp;
    const NAME: &'static str = "IPV6CP";

    fn reset(&mut self) {
        self.want_id = Some(self.local_id);
    }

    fn build_request(&mut self, out: &mut Vec<u8>) {
        if let Some(id) = self.want_id {
            emit_option(out, kind::INTERFACE_ID, &id);
        }
    }

    fn begin_request(&mut self) {
        self.peer_id = [0; 8];
    }

    fn check_option(
        &mut self,
        option: &RawOption<'_>,
        nak: &mut Vec<u8>,
    ) -> Result<OptionVerdict, WireError> {
        let Ok(parsed) = Ipv6cpOption::parse(option) else {
            return Ok(OptionVerdict::Reject);
        };
        Ok(match parsed {
            Ipv6cpOption::InterfaceId(id) if id == [0; 8] || id == self.local_id => {
                // RFC 5072 s4.1: zero or equal to ours: suggest another.
                let suggestion = self.fresh_id_not(self.local_id);
                emit_option(nak, kind::INTERFACE_ID, &suggestion);
                OptionVerdict::Nak
            }
            Ipv6cpOption::InterfaceId(id) => {
                self.peer_id = id;
                OptionVerdict::Ack
            }
            _ => OptionVerdict::Reject,
        })
    }

    fn handle_nak(&mut self, option: &RawOption<'_>) -> Result<(), WireError> {
        if let Ipv6cpOption::InterfaceId(id) = Ipv6cpOption::parse(option)? {
            if self.want_id.is_some() && self.config.local_id.is_none() {
                // Take the suggestion unless it is unusable.
                let id = if id == [0; 8] || id == self.peer_id {
                    self.fresh_id_not(self.peer_id)
                } else {
                    id
                };
                self.local_id = id;
                self.want_id = Some(id);
            }
        }
        Ok(())
    }

    fn handle_reject(&mut self, option: &RawOption<'_>) -> Result<(), WireError> {
        if option.kind == kind::INTERFACE_ID {
            self.want_id = None;
        }
        Ok(())
    }

    fn validate_option(option: &RawOption<'_>) -> Result<(), WireError> {
        Ipv6cpOption::parse(option).map(|_| ())
    }

    fn describe_option(f: &mut fmt::Formatter<'_>, option: &RawOption<'_>) -> fmt::Result {
        describe_option(f, option)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pppd_text() {
        let id = [0x64, 0x41, 0x6f, 0xd5, 0xc6, 0x40, 0x6c, 0xcf];
        assert_eq!(link_local_text(&id), "fe80::6441:6fd5:c640:6ccf");
        let options =
            parse_options(&[1, 10, 0x64, 0x41, 0x6f, 0xd5, 0xc6, 0x40, 0x6c, 0xcf]).unwrap();
        assert_eq!(options, vec![Ipv6cpOption::InterfaceId(id)]);
    }
}
