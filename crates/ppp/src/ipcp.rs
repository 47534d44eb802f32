//! IPCP (RFC 1332) with the DNS extensions of RFC 1877.
//!
//! IP-Address (3): ours is configured or asked for with 0.0.0.0 (then the
//! peer's Nak gives it); the peer's 0.0.0.0, or a different address than
//! `ipcp.remote`, is Nak'd with `ipcp.remote`. Primary/secondary DNS
//! (129/131) are handed out from `ipcp.dns` and asked for with
//! `request_dns`. Rejected: IP-Compression-Protocol (2, Van Jacobson; we do
//! not compress), IP-Addresses (1, deprecated by RFC 1332 s3.1), NBNS
//! (130/132) and unknown options.

use std::fmt;
use std::net::Ipv4Addr;

use crate::fsm::{Negotiator, OptionVerdict};
use crate::wire::{
    emit_option, exact, write_hex, write_unknown_option, OptionIter, Protocol, RawOption, WireError,
};

/// IPCP settings (RFC 1332, RFC 1877).
#[derive(Debug, Clone, Default)]
pub struct IpcpConfig {
    /// Our address; `None` asks the peer (0.0.0.0 in our Configure-Request).
    pub local: Option<Ipv4Addr>,
    /// The address we give the peer when it asks (Nak with this address);
    /// if set, a different address requested by the peer is Nak'd to this one.
    pub remote: Option<Ipv4Addr>,
    /// DNS servers we hand out when the peer asks (primary, secondary).
    pub dns: [Option<Ipv4Addr>; 2],
    /// Ask the peer for DNS servers (pppd `usepeerdns`).
    pub request_dns: bool,
    /// The driver gives the peer's address (from a pool, the secrets file,
    /// later RADIUS): after authentication IPCP waits for
    /// `Link::set_peer_address` instead of using `remote`, and the secrets
    /// file's fixed address goes to the driver to decide.
    pub remote_from_driver: bool,
    /// Without `remote`, the peer chooses its own address: not one in
    /// these networks (the driver fills them with what the host routes
    /// elsewhere and its own addresses), nor our own, nor one that is not
    /// unicast. Such a request is Nak'd and reported
    /// ([`IpcpNegotiator::refused`]).
    pub refused_remote: Vec<Ipv4Prefix>,
}

/// An IPv4 network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Prefix {
    /// The network's address.
    pub addr: Ipv4Addr,
    /// The prefix length, 0..=32.
    pub len: u8,
}

impl Ipv4Prefix {
    /// Whether `a` lies in this network.
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.len.min(32)))
            .unwrap_or(0);
        u32::from(a) & mask == u32::from(self.addr) & mask
    }
}

impl fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// Why a peer may not take the address it asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefusedAddress {
    /// Not a unicast address a host can have (0/8, loopback, multicast,
    /// reserved, broadcast).
    NotUnicast(Ipv4Addr),
    /// Our own end of the link.
    Ours(Ipv4Addr),
    /// In a network the host routes elsewhere, or one of its addresses.
    Reserved(Ipv4Addr, Ipv4Prefix),
}

impl fmt::Display for RefusedAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefusedAddress::NotUnicast(a) => write!(f, "{a} is not a unicast host address"),
            RefusedAddress::Ours(a) => write!(f, "{a} is our own end of the link"),
            RefusedAddress::Reserved(a, net) if net.len == 32 => {
                write!(f, "{a} is an address of this gateway")
            }
            RefusedAddress::Reserved(a, net) => {
                write!(f, "{a} is in {net}, which this gateway routes elsewhere")
            }
        }
    }
}

/// IPCP option types.
pub mod kind {
    /// IP-Addresses (RFC 1172, deprecated).
    pub const IP_ADDRESSES: u8 = 1;
    /// IP-Compression-Protocol (RFC 1332 s3.2).
    pub const COMPRESSION: u8 = 2;
    /// IP-Address (RFC 1332 s3.3).
    pub const IP_ADDRESS: u8 = 3;
    /// Primary DNS Server Address (RFC 1877 s1.1).
    pub const PRIMARY_DNS: u8 = 129;
    /// Primary NBNS Server Address (RFC 1877 s1.2).
    pub const PRIMARY_NBNS: u8 = 130;
    /// Secondary DNS Server Address (RFC 1877 s1.3).
    pub const SECONDARY_DNS: u8 = 131;
    /// Secondary NBNS Server Address (RFC 1877 s1.4).
    pub const SECONDARY_NBNS: u8 = 132;
}

/// One decoded IPCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpcpOption<'a> {
    /// IP-Addresses (1): source and destination (deprecated).
    IpAddresses(Ipv4Addr, Ipv4Addr),
    /// IP-Compression-Protocol (2): protocol (0x002d = VJ) and its data.
    Compression {
        /// Compression protocol.
        protocol: u16,
        /// Max-Slot-Id, Comp-Slot-Id for VJ.
        data: &'a [u8],
    },
    /// IP-Address (3).
    IpAddress(Ipv4Addr),
    /// Primary DNS (129).
    PrimaryDns(Ipv4Addr),
    /// Primary NBNS (130).
    PrimaryNbns(Ipv4Addr),
    /// Secondary DNS (131).
    SecondaryDns(Ipv4Addr),
    /// Secondary NBNS (132).
    SecondaryNbns(Ipv4Addr),
    /// Anything else.
    Unknown(RawOption<'a>),
}

fn addr(option: &RawOption<'_>, name: &'static str) -> Result<Ipv4Addr, WireError> {
    Ok(Ipv4Addr::from(exact::<4>("IPCP", option, name, "6")?))
}

impl<'a> IpcpOption<'a> {
    /// Decodes one option, checking its length for its type.
    pub fn parse(option: &RawOption<'a>) -> Result<IpcpOption<'a>, WireError> {
        Ok(match option.kind {
            kind::IP_ADDRESSES => {
                let b = exact::<8>("IPCP", option, "addrs", "10")?;
                IpcpOption::IpAddresses(
                    Ipv4Addr::new(b[0], b[1], b[2], b[3]),
                    Ipv4Addr::new(b[4], b[5], b[6], b[7]),
                )
            }
            kind::COMPRESSION => {
                if option.data.len() < 2 {
                    return Err(WireError::OptionBadLength {
                        protocol: "IPCP",
                        kind: option.kind,
                        name: "compress",
                        length: option.data.len() as u8 + 2,
                        expected: ">= 4",
                    });
                }
                IpcpOption::Compression {
                    protocol: u16::from_be_bytes([option.data[0], option.data[1]]),
                    data: &option.data[2..],
                }
            }
            kind::IP_ADDRESS => IpcpOption::IpAddress(addr(option, "addr")?),
            kind::PRIMARY_DNS => IpcpOption::PrimaryDns(addr(option, "ms-dns1")?),
            kind::PRIMARY_NBNS => IpcpOption::PrimaryNbns(addr(option, "ms-wins")?),
            kind::SECONDARY_DNS => IpcpOption::SecondaryDns(addr(option, "ms-dns2")?),
            kind::SECONDARY_NBNS => IpcpOption::SecondaryNbns(addr(option, "ms-wins")?),
            _ => IpcpOption::Unknown(*option),
        })
    }
}

/// Parses the option list of an IPCP Configure-* packet.
pub fn parse_options(data: &[u8]) -> Result<Vec<IpcpOption<'_>>, WireError> {
    OptionIter::new("IPCP", data)
        .map(|option| IpcpOption::parse(&option?))
        .collect()
}

/// pppd's text for one IPCP option ("addr 10.98.0.1", "compress VJ 0f 01").
pub fn describe_option(f: &mut fmt::Formatter<'_>, option: &RawOption<'_>) -> fmt::Result {
    match IpcpOption::parse(option) {
        Ok(IpcpOption::IpAddresses(a, b)) => write!(f, "addrs {a} {b}"),
        Ok(IpcpOption::Compression { protocol, data }) => {
            if protocol == 0x002d {
                f.write_str("compress VJ")?;
            } else {
                write!(f, "compress {protocol:#06x}")?;
            }
            if !data.is_empty() {
                f.write_str(" ")?;
                write_hex(f, data)?;
            }
            Ok(())
        }
        Ok(IpcpOption::IpAddress(a)) => write!(f, "addr {a}"),
        Ok(IpcpOption::PrimaryDns(a)) => write!(f, "ms-dns1 {a}"),
        Ok(IpcpOption::SecondaryDns(a)) => write!(f, "ms-dns2 {a}"),
        Ok(IpcpOption::PrimaryNbns(a) | IpcpOption::SecondaryNbns(a)) => write!(f, "ms-wins {a}"),
        Ok(IpcpOption::Unknown(raw)) => write_unknown_option(f, &raw),
        Err(e) => write!(f, "malformed: {e}"),
    }
}

/// The IPCP half of the automaton.
#[derive(Debug)]
pub struct IpcpNegotiator {
    config: IpcpConfig,
    want_addr: Option<Ipv4Addr>,
    want_dns: [Option<Ipv4Addr>; 2],
    /// Our address as acked by the peer (or configured).
    pub local: Ipv4Addr,
    /// The peer's address as we acked it.
    pub peer: Ipv4Addr,
    /// DNS servers the peer acked to us.
    pub dns: [Option<Ipv4Addr>; 2],
    /// The last address the peer asked for and may not have, and why (the
    /// link logs it once).
    pub refused: Option<RefusedAddress>,
}

impl IpcpNegotiator {
    /// The peer's address, fixed after authentication (the secrets file's
    /// address column): Nak'd to this one from now on.
    pub fn set_remote(&mut self, addr: Ipv4Addr) {
        self.config.remote = Some(addr);
        self.peer = addr;
    }

    /// Our address, given by the driver (a pool's local address) before
    /// IPCP starts.
    pub fn set_local(&mut self, addr: Ipv4Addr) {
        self.config.local = Some(addr);
        self.local = addr;
    }

    /// Back to the configured peer address (the link went down: the next
    /// user may have another fixed address, or none).
    pub fn restore_remote(&mut self, configured: Option<Ipv4Addr>) {
        self.config.remote = configured;
    }

    /// From our configuration.
    pub fn new(config: IpcpConfig) -> Self {
        let mut n = IpcpNegotiator {
            config,
            want_addr: None,
            want_dns: [None; 2],
            local: Ipv4Addr::UNSPECIFIED,
            peer: Ipv4Addr::UNSPECIFIED,
            dns: [None; 2],
            refused: None,
        };
        n.reset();
        n
    }
}

impl IpcpNegotiator {
    /// Why the peer may not choose `asked` as its address, if it may not.
    fn refusal(&self, asked: Ipv4Addr) -> Option<RefusedAddress> {
        let o = asked.octets();
        let not_unicast = o[0] == 0 || asked.is_loopback() || asked.is_multicast() || o[0] >= 240;
        if not_unicast {
            return Some(RefusedAddress::NotUnicast(asked));
        }
        let ours = self.config.local.unwrap_or(self.local);
        if asked == ours {
            return Some(RefusedAddress::Ours(asked));
        }
        self.config
            .refused_remote
            .iter()
            .find(|net| net.contains(asked))
            .map(|net| RefusedAddress::Reserved(asked, *net))
    }
}

impl Negotiator for IpcpNegotiator {
    const PROTOCOL: Protocol = Protocol::Ipcp;
    const NAME: &'static str = "IPCP";

    fn reset(&mut self) {
        self.want_addr = Some(self.config.local.unwrap_or(Ipv4Addr::UNSPECIFIED));
        self.want_dns = if self.config.request_dns {
            [Some(Ipv4Addr::UNSPECIFIED); 2]
        } else {
            [None; 2]
        };
        self.local = self.config.local.unwrap_or(Ipv4Addr::UNSPECIFIED);
        // `peer` is what we acked of the peer's request, reset by
        // `begin_request` only (see the LCP negotiator's `reset`).
        self.dns = [None; 2];
    }

    fn build_request(&mut self, out: &mut Vec<u8>) {
        if let Some(a) = self.want_addr {
            emit_option(out, kind::IP_ADDRESS, &a.octets());
        }
        if let Some(a) = self.want_dns[0] {
            emit_option(out, kind::PRIMARY_DNS, &a.octets());
        }
        if let Some(a) = self.want_dns[1] {
            emit_option(out, kind::SECONDARY_DNS, &a.octets());
        }
    }

    fn begin_request(&mut self) {
        self.peer = self.config.remote.unwrap_or(Ipv4Addr::UNSPECIFIED);
    }

    fn check_option(
        &mut self,
        option: &RawOption<'_>,
        nak: &mut Vec<u8>,
    ) -> Result<OptionVerdict, WireError> {
        let Ok(parsed) = IpcpOption::parse(option) else {
            return Ok(OptionVerdict::Reject);
        };
        Ok(match parsed {
            IpcpOption::IpAddress(asked) => match self.config.remote {
                Some(remote) if asked != remote => {
                    emit_option(nak, kind::IP_ADDRESS, &remote.octets());
                    OptionVerdict::Nak
                }
                // Nothing to give a peer that asks (RFC 1332 s3.3).
                None if asked.is_unspecified() => OptionVerdict::Reject,
                None => match self.refusal(asked) {
                    // Nak'd with 0.0.0.0: we have nothing to offer instead
                    // (RFC 1332 s3.3); a peer that insists reaches
                    // Max-Failure, and without an address IPCP does not
                    // open.
                    Some(why) => {
                        self.refused = Some(why);
                        emit_option(nak, kind::IP_ADDRESS, &Ipv4Addr::UNSPECIFIED.octets());
                        OptionVerdict::Nak
                    }
                    None => {
                        self.peer = asked;
                        OptionVerdict::Ack
                    }
                },
                _ => {
                    self.peer = asked;
                    OptionVerdict::Ack
                }
            },
            IpcpOption::PrimaryDns(asked) | IpcpOption::SecondaryDns(asked) => {
                let (index, code) = if option.kind == kind::PRIMARY_DNS {
                    (0, kind::PRIMARY_DNS)
                } else {
                    (1, kind::SECONDARY_DNS)
                };
                match self.config.dns[index] {
                    Some(dns) if dns == asked => OptionVerdict::Ack,
                    Some(dns) => {
                        emit_option(nak, code, &dns.octets());
                        OptionVerdict::Nak
                    }
                    None => OptionVerdict::Reject,
                }
            }
            _ => OptionVerdict::Reject,
        })
    }

    fn handle_ack(&mut self) {
        if let Some(a) = self.want_addr {
            self.local = a;
        }
        self.dns = self.want_dns.map(|d| d.filter(|a| !a.is_unspecified()));
    }

    fn handle_nak(&mut self, option: &RawOption<'_>) -> Result<(), WireError> {
        match IpcpOption::parse(option)? {
            // Only take an address when we asked for one (`local: None`).
            IpcpOption::IpAddress(a) if self.config.local.is_none() && !a.is_unspecified() => {
                self.want_addr = Some(a);
            }
            IpcpOption::PrimaryDns(a) if self.want_dns[0].is_some() => self.want_dns[0] = Some(a),
            IpcpOption::SecondaryDns(a) if self.want_dns[1].is_some() => self.want_dns[1] = Some(a),
            _ => {}
        }
        Ok(())
    }

    fn handle_reject(&mut self, option: &RawOption<'_>) -> Result<(), WireError> {
        match option.kind {
            kind::IP_ADDRESS => self.want_addr = None,
            kind::PRIMARY_DNS => self.want_dns[0] = None,
            kind::SECONDARY_DNS => self.want_dns[1] = None,
            _ => {}
        }
        Ok(())
    }

    fn validate_option(option: &RawOption<'_>) -> Result<(), WireError> {
        IpcpOption::parse(option).map(|_| ())
    }

    fn describe_option(f: &mut fmt::Formatter<'_>, option: &RawOption<'_>) -> fmt::Result {
        describe_option(f, option)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_pppd_request() {
        // 03: <compress VJ 0f 01> <addr 0.0.0.0> <ms-dns1 0.0.0.0> <ms-dns2 0.0.0.0>
        let data = [
            2, 6, 0, 0x2d, 0x0f, 1, 3, 6, 0, 0, 0, 0, 129, 6, 0, 0, 0, 0, 131, 6, 0, 0, 0, 0,
        ];
        let options = parse_options(&data).unwrap();
        assert_eq!(options.len(), 4);
        assert_eq!(
            options[0],
            IpcpOption::Compression {
                protocol: 0x2d,
                data: &[0x0f, 1]
            }
        );
        assert_eq!(options[3], IpcpOption::SecondaryDns(Ipv4Addr::UNSPECIFIED));
        let e = parse_options(&[3, 5, 1, 2, 3]).unwrap_err();
        assert_eq!(e.to_string(), "IPCP option 3 (addr) length 5 != 6");
    }
}
