//! ipmon(8) log lines from logged packets.
//!
//! The fields (ipmon(8) "DESCRIPTION"): interface, `@group:rule`, action
//! (`p` pass, `b` block), `src[,port] -> dst[,port]`, `PR proto`,
//! `len HEADER TOTAL`, for TCP `-FLAGS` (letters in ipmon's order
//! `ARSFUPEC`), for ICMP `icmp TYPE/CODE`, then `K-S` (keep state) and
//! `K-F` (keep frags) of the rule, and `IN`/`OUT`. Seed 000 appendix B.3:
//!
//! ```text
//! tun0 @300:2 p 192.168.1.215,3936 -> 192.168.253.1,23 PR tcp len 20 48 -S K-S K-F IN
//! ```
//!
//! Date and time are left to the writer of the log file. The rule part comes
//! from the NFLOG prefix the compiled rule carries ([`mod@crate::compile`]).

use std::net::Ipv4Addr;

use crate::ast::tcp_flag;

/// Why a log line cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IpmonError {
    /// The prefix is not one tsunagi's compiler writes.
    #[error("log prefix {0:?} is not `@GROUP:RULE p|b IN|OUT [K-S] [K-F]`")]
    Prefix(String),
    /// The logged packet is not IPv4.
    #[error("packet IP version is {0}, not 4")]
    NotIpv4(u8),
    /// The packet ends inside a header field.
    #[error("packet of {have} octets too short for the IPv4 {field}")]
    Truncated {
        /// The field.
        field: &'static str,
        /// Octets available.
        have: usize,
    },
}

/// The rule part of a log line, as carried in the NFLOG prefix
/// `@GROUP:RULE A DIR[ K-S][ K-F]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPrefix {
    /// Group number.
    pub group: u32,
    /// Rule number within group and direction.
    pub rule: u32,
    /// `true` for pass, `false` for block.
    pub pass: bool,
    /// `true` for IN.
    pub inbound: bool,
    /// The rule keeps state.
    pub keep_state: bool,
    /// The rule keeps fragments.
    pub keep_frags: bool,
}

impl LogPrefix {
    /// Parse a prefix written by the compiler; anything else is an error.
    pub fn parse(prefix: &str) -> Result<LogPrefix, IpmonError> {
        let bad = || IpmonError::Prefix(prefix.to_string());
        let mut words = prefix.split_ascii_whitespace();
        let at = words.next().ok_or_else(bad)?;
        let (group, rule) = at
            .strip_prefix('@')
            .and_then(|s| s.split_once(':'))
            .ok_or_else(bad)?;
        let group = group.parse().map_err(|_| bad())?;
        let rule = rule.parse().map_err(|_| bad())?;
        let pass = match words.next() {
            Some("p") => true,
            Some("b") => false,
            _ => return Err(bad()),
        };
        let inbound = match words.next() {
            Some("IN") => true,
            Some("OUT") => false,
            _ => return Err(bad()),
        };
        let (mut keep_state, mut keep_frags) = (false, false);
        for w in words {
            match w {
                "K-S" if !keep_state => keep_state = true,
                "K-F" if !keep_frags => keep_frags = true,
                _ => return Err(bad()),
            }
        }
        Ok(LogPrefix {
            group,
            rule,
            pass,
            inbound,
            keep_state,
            keep_frags,
        })
    }
}

/// ipmon's TCP flag letters in its print order.
const IPMON_FLAGS: [(char, u8); 8] = [
    ('A', tcp_flag::ACK),
    ('R', tcp_flag::RST),
    ('S', tcp_flag::SYN),
    ('F', tcp_flag::FIN),
    ('U', tcp_flag::URG),
    ('P', tcp_flag::PSH),
    ('E', tcp_flag::ECE),
    ('C', tcp_flag::CWR),
];

/// The ipmon line for `packet` (starting at the IPv4 header) logged by the
/// rule of `prefix` on interface `iface` (the name the rules use).
///
/// A packet cut short by the NFLOG copy range still gives a line as long as
/// the IPv4 header is there; transport fields that are missing are left out.
pub fn format_ipmon_line(iface: &str, prefix: &str, packet: &[u8]) -> Result<String, IpmonError> {
    let p = LogPrefix::parse(prefix)?;
    let first = *packet.first().ok_or(IpmonError::Truncated {
        field: "version",
        have: 0,
    })?;
    if first >> 4 != 4 {
        return Err(IpmonError::NotIpv4(first >> 4));
    }
    let hlen = usize::from(first & 0x0f) * 4;
    if hlen < 20 || packet.len() < 20 {
        return Err(IpmonError::Truncated {
            field: "header",
            have: packet.len(),
        });
    }
    let total = u16::from_be_bytes([packet[2], packet[3]]);
    let frag_offset = u16::from_be_bytes([packet[6], packet[7]]) & 0x1fff;
    let proto = packet[9];
    let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
    // Transport header only in the first fragment, and only what was copied.
    let l4 = if frag_offset == 0 {
        packet.get(hlen..).unwrap_or(&[])
    } else {
        &[]
    };
    let ports = match proto {
        6 | 17 if l4.len() >= 4 => Some((
            u16::from_be_bytes([l4[0], l4[1]]),
            u16::from_be_bytes([l4[2], l4[3]]),
        )),
        _ => None,
    };
    let mut line = format!(
        "{iface} @{}:{} {} ",
        p.group,
        p.rule,
        if p.pass { 'p' } else { 'b' }
    );
    match ports {
        Some((sp, dp)) => line.push_str(&format!("{src},{sp} -> {dst},{dp}")),
        None => line.push_str(&format!("{src} -> {dst}")),
    }
    match proto {
        6 => line.push_str(" PR tcp"),
        17 => line.push_str(" PR udp"),
        1 => line.push_str(" PR icmp"),
        n => line.push_str(&format!(" PR {n}")),
    }
    line.push_str(&format!(" len {hlen} {total}"));
    if proto == 6 {
        if let Some(&flags) = l4.get(13) {
            line.push_str(" -");
            for (c, bit) in IPMON_FLAGS {
                if flags & bit != 0 {
                    line.push(c);
                }
            }
        }
    }
    if proto == 1 && l4.len() >= 2 {
        line.push_str(&format!(" icmp {}/{}", l4[0], l4[1]));
    }
    if frag_offset != 0 {
        line.push_str(&format!(" frag @{}", u32::from(frag_offset) * 8));
    }
    if p.keep_state {
        line.push_str(" K-S");
    }
    if p.keep_frags {
        line.push_str(" K-F");
    }
    line.push_str(if p.inbound { " IN" } else { " OUT" });
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// IPv4 + TCP header of seed 000 appendix B.3's first line: a 48-octet
    /// SYN (20 + 28 with options) 192.168.1.215:3936 -> 192.168.253.1:23.
    fn syn() -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 48, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 192, 168, 1, 215, 192, 168, 253, 1,
        ];
        p.extend_from_slice(&3936u16.to_be_bytes());
        p.extend_from_slice(&23u16.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x70, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
        p.extend_from_slice(&[2, 4, 5, 0xb4, 1, 1, 4, 2]);
        p
    }

    #[test]
    fn seed_000_appendix_b_first_line() {
        let line = format_ipmon_line("tun0", "@300:2 p IN K-S K-F", &syn()).unwrap();
        assert_eq!(
            line,
            "tun0 @300:2 p 192.168.1.215,3936 -> 192.168.253.1,23 PR tcp len 20 48 -S K-S K-F IN"
        );
    }

    #[test]
    fn flags_in_ipmon_order() {
        let mut p = syn();
        p[33] = tcp_flag::SYN | tcp_flag::ACK;
        let line = format_ipmon_line("em0", "@300:2 p OUT K-S K-F", &p).unwrap();
        assert!(line.ends_with("-AS K-S K-F OUT"), "{line}");
        p[33] = tcp_flag::PSH | tcp_flag::ACK;
        let line = format_ipmon_line("em0", "@300:2 p OUT K-S K-F", &p).unwrap();
        assert!(line.ends_with("-AP K-S K-F OUT"), "{line}");
    }

    #[test]
    fn icmp_block_and_bad_inputs() {
        let p = [
            0x45, 0, 0, 84, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 8, 0, 0, 0,
        ];
        assert_eq!(
            format_ipmon_line("tun0", "@350:3 b OUT", &p).unwrap(),
            "tun0 @350:3 b 10.0.0.1 -> 10.0.0.2 PR icmp len 20 84 icmp 8/0 OUT"
        );
        assert!(matches!(
            format_ipmon_line("tun0", "@x:1 b IN", &p),
            Err(IpmonError::Prefix(_))
        ));
        assert!(matches!(
            format_ipmon_line("tun0", "@1:1 b IN", &p[..10]),
            Err(IpmonError::Truncated { .. })
        ));
        assert_eq!(
            format_ipmon_line("tun0", "@1:1 b IN", &[0x60; 40]),
            Err(IpmonError::NotIpv4(6))
        );
        // A TCP header cut after the ports: no flags, no panic.
        let line = format_ipmon_line("tun0", "@1:1 b IN", &syn()[..24]).unwrap();
        assert!(line.ends_with("PR tcp len 20 48 IN"), "{line}");
    }
}
